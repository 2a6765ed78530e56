"""Vectorised, batched PyTorch emulator of a Loihi/Lava circuit: LIF populations joined by
Dense connections, in the fixed-point arithmetic of lava-nc's bit-accurate models (or their float
models), with Lava's timing.

A :class:`Circuit` is plain data (numbers only, no Lava objects): the Lava compiler
(:mod:`neurocredit.chip.compile`) produces one and the Lava backend builds processes from the same numbers,
so that the emulator and ``Loihi2SimCfg`` run the same program.

Timing (Lava's ``LoihiProtocol``, one call of ``run_spk`` per process per step t = 1, 2, ...)::

    input spikes x[t] leave the RingBuffer source at step t
    every LIF population p updates with a_in[t] = sum over connections c -> p of buf_c
    every Dense connection c then sets buf_c = W_c s_src[t]    (so it reaches p at step t + 1)

Equations per step are those of :mod:`neurocredit.neurons.fixed_point`.  Samples in a batch
are independent and start from zero state (Lava: u = v = 0, Dense a_buff = 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from neurocredit.chip import extensions as EX
from neurocredit.chip import rate as RATE
from neurocredit.chip import tags as TG
from neurocredit.chip import carry as CR
from neurocredit.chip import kernels as KN
from neurocredit.chip.ir import INPUT, Circuit, Connection, Population, engine_shift, factor_bits
from neurocredit.neurons import fixed_point as fp

@dataclass
class _Prepared:
    pops: list[Population]
    conns: list[Connection]
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]


def _prepare(circuit: Circuit, device: torch.device) -> _Prepared:
    weights, biases = [], []
    for c in circuit.connections:
        w = torch.as_tensor(np.asarray(c.weights))
        if circuit.fixed_point:
            w = fp.stored_weights(w.round().to(torch.int64), c.sign_mode, c.num_weight_bits)
            # float64 copy for an exact matmul (|sums| far below 2^53)
            weights.append(w.to(device=device, dtype=torch.float64))
        else:
            weights.append(w.to(device=device, dtype=torch.float64))
    for p in circuit.populations:
        if circuit.fixed_point:
            b = fp.effective_bias(torch.as_tensor(np.asarray(p.bias_mant, dtype=np.int64)),
                                  torch.as_tensor(np.asarray(p.bias_exp, dtype=np.int64)))
            biases.append(b.broadcast_to((p.n,)).to(device))
        else:
            b = torch.as_tensor(np.asarray(p.bias_mant, dtype=np.float64))
            biases.append(b.broadcast_to((p.n,)).to(device))
    return _Prepared(circuit.populations, circuit.connections, weights, biases)


@torch.no_grad()
def emulate(circuit: Circuit, x: torch.Tensor | np.ndarray, record: list[str] | None = None,
            device: str | torch.device = "cpu", voltage: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Run ``circuit`` on input spikes ``x`` [T, batch, n_in] (0/1).  Returns a dict
    population name -> [T, batch, n] for ``record`` (default: the outputs): spikes (bool) of a
    spiking population, the voltage v after the step (Lava units, int64 or float64) of a
    non-spiking one (see :meth:`Circuit.decode`); and ``'v:<name>'`` -> [T, batch, n] for each
    population in ``voltage`` (default none): its v after every step (after reset), what a
    Lava probe on the LIF's ``v`` reads (:func:`neurocredit.lava.run.run_lava`'s ``voltage``)."""
    device = torch.device(device)
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.dim() == 2:
        x = x[:, None, :]
    if x.dim() != 3 or x.shape[2] != circuit.n_in:
        raise ValueError(f"input spikes must have shape [T, batch, {circuit.n_in}], got {tuple(x.shape)}")
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("input must be binary spikes (0/1): Lava's Dense takes 1-bit spikes here")
    x = x.to(device=device, dtype=torch.float64)
    steps, batch = x.shape[0], x.shape[1]
    record = list(circuit.outputs if record is None else record)
    prep = _prepare(circuit, device)
    fixed = circuit.fixed_point
    dtype = torch.int64 if fixed else torch.float64
    index = {p.name: i for i, p in enumerate(prep.pops)}
    for c in prep.conns:
        if c.dst not in index or (c.src != INPUT and c.src not in index):
            raise ValueError(f"connection {c.name} joins unknown populations {c.src} -> {c.dst}")
    u = [torch.zeros(batch, p.n, dtype=dtype, device=device) for p in prep.pops]
    v = [torch.zeros(batch, p.n, dtype=dtype, device=device) for p in prep.pops]
    spikes = [torch.zeros(batch, p.n, dtype=torch.bool, device=device) for p in prep.pops]
    buf = [torch.zeros(batch, prep.pops[index[c.dst]].n, dtype=dtype, device=device)
           for c in prep.conns]
    incoming = [[k for k, c in enumerate(prep.conns) if c.dst == p.name] for p in prep.pops]
    out = {name: torch.zeros(steps, batch, prep.pops[index[name]].n, device=device,
                             dtype=torch.bool if prep.pops[index[name]].spiking else dtype)
           for name in record}
    for name in voltage or []:
        if name not in index:
            raise ValueError(f"no population {name!r} to record the voltage of; known: {', '.join(index)}")
        out[f"v:{name}"] = torch.zeros(steps, batch, prep.pops[index[name]].n, device=device, dtype=dtype)
    for t in range(steps):
        for i, p in enumerate(prep.pops):
            a_in = torch.zeros(batch, p.n, dtype=dtype, device=device)
            for k in incoming[i]:
                a_in = a_in + buf[k]
            if fixed:
                u[i], v[i], spikes[i] = fp.lif_step_fixed(u[i], v[i], a_in, int(p.du), int(p.dv),
                                                          int(p.vth), prep.biases[i])
            else:
                u[i], v[i], spikes[i] = fp.lif_step_float(u[i], v[i], a_in, float(p.du),
                                                          float(p.dv), float(p.vth), prep.biases[i])
        for k, c in enumerate(prep.conns):
            s = x[t] if c.src == INPUT else spikes[index[c.src]]
            if fixed:
                buf[k] = fp.dense_fixed(s, prep.weights[k], int(c.weight_exp))
            else:
                buf[k] = fp.dense_float(s, prep.weights[k])
        for name in record:
            i = index[name]
            out[name][t] = spikes[i] if prep.pops[i].spiking else v[i]
        for name in voltage or []:
            out[f"v:{name}"][t] = v[index[name]]
    return out


# -- learning (fixed point) ---------------------------------------------------------------------
# One learning engine for every circuit: Lava's bit-approximate applier
# (lava/magma/core/learning/learning_rule_applier.py LearningRuleApplierBitApprox, with
# lava/magma/core/model/py/connection.py LearningConnectionModelBitApproximate), t_epoch = 1.
# Per step, for the products  m 2^k · dependency · f_1 · ... · f_n  of a connection:
#
#   y_eval  = floor(y e^(-1/65535)) + (r_y < frac)      post traces (3F taus 65535), r_y the step's
#                                                       trace random
#   cur     = dependency · Π clip(f_i, ±2^width_i) · m >> max(0, Σ width_i + 4 − 15) << (7 + k)
#   acc     = clip(acc + clip(cur)),  acc starting at W << 7       (16-bit signed accumulator)
#   W       = clip((floor(acc / 128) + (r_w < frac(acc / 128))) * 128 >> 7, −256, 255)
#
# with r_w from ConnVarRandom (numpy default_rng(2), one draw per step) and r_y from the y
# TraceRandom stream (default_rng(rng_seed + 2), two draws per step).
Y_TAU = 65535
ACC_MAX = 2 ** 15 - 1
ACC_MIN = -(2 ** 15) - 1
ACC_SHIFT = 7            # W_ACCUMULATOR_S - W_SYN_VAR_S = 16 - 9
ROUND_UNIT = 128         # 2^(W_ACCUMULATOR_U - W_WEIGHTS_U)
TRACE_MAX = 127


class EngineRandoms:
    """The random streams Lava's LearningDense of one connection draws from, in Lava's order, for
    each of N independent chips (one ``rng_seed`` each).  Draws are made ``block`` steps at a
    time (``Generator.random(n)`` yields the same numbers as n calls of ``random(1)``), so the
    streams are Lava's draw for draw without a Python call per chip and step."""

    def __init__(self, rng_seeds: list[int], block: int = 256) -> None:
        self._w = [np.random.default_rng(2) for _ in rng_seeds]
        self._y = [np.random.default_rng(s + 2) for s in rng_seeds]
        for g in (*self._w, *self._y):
            g.random(1)
        self._block, self._i = block, block
        self._ry = self._rw = np.zeros((len(rng_seeds), 0))

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """(r_y, r_w) per chip for one step: two y-trace advances (recv_traces), the second
        used, and one weight advance."""
        if self._i == self._block:
            self._ry = np.stack([g.random(2 * self._block)[1::2] for g in self._y], axis=1)
            self._rw = np.stack([g.random(self._block) for g in self._w], axis=1)
            self._i = 0
        self._i += 1
        return self._ry[self._i - 1], self._rw[self._i - 1]


def apply_series(w: np.ndarray, x0: np.ndarray, y: dict[str, np.ndarray], series, r_y, r_w,
                 time_step: int, extra: dict[str, np.ndarray] | None = None,
                 bounds: tuple[int, int] = (-256, 255)) -> np.ndarray:
    """One learning epoch of the engine (see above) for the products of ``series`` on integer
    weights ``w`` ([chips,] n_post, n_pre): ``x0`` ([chips,] n_pre) the pre spikes, ``y[trace]``
    ([chips,] n_post) the post traces, ``r_y``, ``r_w`` the step's randoms (a scalar or one per
    chip), ``time_step`` Lava's (1 on the first step).  Returns the new weights.  ``extra``: further
    factors by name (the pre trace x1, the tag t: :mod:`neurocredit.chip.tags`), broadcastable to
    ``w``; ``bounds``: the learned variable's range (a tag's is (-257, 255))."""
    w = w.astype(np.int64)
    ticks = any(p.decimation is not None and time_step % (1 << p.decimation) == 0 for p in series)
    if not ticks and all(p.dependency == "x0" and any(f in ("y1", "y2", "y3") for f in p.factors) for p in series):
        # only synapses whose pre spiked and whose post trace is non-zero can change (elsewhere the
        # accumulator holds W << 7 exactly and the rounding keeps W): compute on that block
        cols = np.flatnonzero(np.asarray(x0).reshape(-1, np.shape(x0)[-1]).any(axis=0))
        used = {f for p in series for f in p.factors if f in ("y1", "y2", "y3")}
        rows = np.flatnonzero(np.any([np.asarray(y[f]).reshape(-1, w.shape[-2]).any(axis=0) for f in used], axis=0))
        if len(cols) == 0 or len(rows) == 0:
            return w
        if len(cols) < w.shape[-1] or len(rows) < w.shape[-2]:
            block = np.ix_(rows, cols)
            sub = apply_series(w[(..., *block)], np.asarray(x0)[..., cols],
                               {f: np.asarray(y[f])[..., rows] for f in used}, series, r_y, r_w, time_step)
            out = w.copy()
            out[(..., *block)] = sub
            return out
    r_y = np.asarray(r_y, np.float64)[..., None]            # per chip, broadcast over post
    r_w = np.asarray(r_w, np.float64)[..., None, None]      # per chip, broadcast over the matrix
    acc = w << ACC_SHIFT
    decay = np.exp(-1 / Y_TAU)
    traces: dict[str, np.ndarray] = {}
    for p in series:
        if p.dependency == "x0":
            cur = np.broadcast_to(x0.astype(np.int64)[..., None, :], w.shape)
        elif p.decimation is not None:
            if time_step % (1 << p.decimation):
                continue
            cur = np.ones(w.shape, np.int64)
        else:
            raise ValueError(f"product {p}: dependency {p.dependency!r} is not emulated (x0, u<d> are)")
        for f in p.factors:
            if f in ("y1", "y2", "y3"):
                if f not in traces:
                    yv = decay * np.asarray(y[f], np.int64)
                    traces[f] = (np.floor(yv) + (r_y < yv % 1)).astype(np.int64)
                val = traces[f][..., :, None]
            elif f == "w":
                val = w
            elif extra is not None and f in extra:
                val = extra[f]
            else:
                raise ValueError(f"product {p}: factor {f!r} is not emulated")
            bits = factor_bits(f)
            cur = cur * np.clip(val, -(2 ** bits), 2 ** bits - 1)
        cur = (cur * int(p.mant)) >> engine_shift(p.factors)
        cur = np.clip(cur << (7 + int(p.exp)), ACC_MIN, ACC_MAX)
        acc = np.clip(acc + cur, ACC_MIN, ACC_MAX)
    q = acc / ROUND_UNIT
    q = (np.floor(q) + (r_w < q % 1)).astype(np.int64)
    return np.clip((q * ROUND_UNIT) >> ACC_SHIFT, *bounds)


# -- the same engine on the active columns only (the fast path of emulate_chips) -----------------
# An x0 product is 0 on every synapse whose x0 is 0, where the accumulator keeps W << 7 and the
# rounding W: a step changes only the columns (per chip) whose x0 is 1.  Those are gathered from a
# matrix M [chips, columns, rows] (columns contiguous: W^T for the forward view, W for the
# transposed one) and updated by the same arithmetic as apply_series.  When no product reads w
# and, per (chip, row), the non-zero currents share one sign, the clipped sum equals the sum
# clipped once and W·128 has no low bits, so the update is  W ← clip(W + δ[chip, row], −256, 255)
# with δ = (D >> 7) + (r_w·128 < D & 127), D = Σ currents: one δ per row, added to every active
# column (otherwise the accumulator is run element by element).
COLUMN_FACTORS = frozenset({"y1", "y2", "y3", "w"})
POST_TRACES = ("y1", "y2", "y3")


def column_products(series, time_step: int) -> list | None:
    """The products of ``series`` applied at ``time_step`` if every one of them is an x0 product
    of factors in COLUMN_FACTORS (a u<d> product that does not tick is skipped, as in
    apply_series); None when the step must go through :func:`apply_series`."""
    live = []
    for p in series:
        if p.decimation is not None:
            if time_step % (1 << p.decimation) == 0:
                return None
            continue
        if p.dependency != "x0" or not set(p.factors) <= COLUMN_FACTORS:
            return None
        live.append(p)
    return live


def trace_values(y: np.ndarray, r_y: np.ndarray) -> np.ndarray:
    """The engine's reading of post traces ``y`` [chips, n]: floor(y e^(-1/65535)) + (r_y < frac),
    ``r_y`` [chips, 1] (as in :func:`apply_series`; floor and frac looked up for 0 <= y <= 127)."""
    y = np.asarray(y, np.int64)
    if not (y & ~TRACE_MAX).any():
        return _TRACE_FLOOR[y] + (r_y < _TRACE_FRAC[y])
    yv = np.exp(-1 / Y_TAU) * y
    return (np.floor(yv) + (r_y < yv % 1)).astype(np.int64)


_yv = np.exp(-1 / Y_TAU) * np.arange(TRACE_MAX + 1, dtype=np.int64)     # the same products as above
_TRACE_FLOOR, _TRACE_FRAC = np.floor(_yv).astype(np.int64), _yv % 1


def product_current(p, values: list) -> np.ndarray:
    """One product's accumulator increment where x0 = 1:
    clip((m Π clip(f_i, ±2^width_i) >> max(0, Σ width_i + 4 − 15)) << (7 + k))."""
    cur = np.int64(1)
    for f, val in zip(p.factors, values):
        bits = factor_bits(f)
        cur = cur * np.clip(val, -(2 ** bits), 2 ** bits - 1)
    cur = (cur * int(p.mant)) >> engine_shift(p.factors)
    return np.clip(cur << (7 + int(p.exp)), ACC_MIN, ACC_MAX)


@lru_cache(maxsize=256)
def _single_factor_constants(live: tuple) -> tuple[np.ndarray, ...]:
    """Per product (each of one factor): the factor's clip bounds, m, the right and the left
    shift of :func:`product_current`, as [products, 1, 1] arrays."""
    bits = np.array([factor_bits(p.factors[0]) for p in live])
    col = lambda v: np.asarray(v, np.int64)[:, None, None]  # noqa: E731
    return (col(-(2 ** bits)), col(2 ** bits - 1), col([int(p.mant) for p in live]),
            col([engine_shift(p.factors) for p in live]), col([7 + int(p.exp) for p in live]))


def row_currents(live: tuple, traces: dict[str, np.ndarray]) -> np.ndarray:
    """[products, chips, rows]: :func:`product_current` of each product of ``live`` (none
    reading w) on the per-row ``traces``, all products at once when each has one factor."""
    if all(len(p.factors) == 1 for p in live):
        lo, hi, mant, right, left = _single_factor_constants(live)
        val = np.clip(np.stack([traces[p.factors[0]] for p in live]), lo, hi)
        return np.clip(((val * mant) >> right) << left, ACC_MIN, ACC_MAX)
    shape = next(iter(traces.values())).shape if traces else (1, 1)
    return np.stack([np.broadcast_to(product_current(p, [traces[f] for f in p.factors]), shape) for p in live])


def padded_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per chip (row of ``x`` [chips, n]) the indices of its non-zero entries, padded to the
    largest count by repeating its last one (0 for a chip with none): (idx [chips, P], count
    [chips]).  A repeated column is computed twice with the same values (harmless to write)."""
    if x.shape[0] == 1:                                       # one chip: no padding
        col = np.flatnonzero(x[0])
        return (col if len(col) else np.zeros(1, np.intp))[None], np.array([len(col)])
    chip, col = np.nonzero(x)
    cnt = np.bincount(chip, minlength=x.shape[0])
    if len(col) == 0:
        return np.zeros((x.shape[0], 1), np.intp), cnt
    end = np.cumsum(cnt)
    pos = np.minimum((end - cnt)[:, None] + np.arange(int(cnt.max())), np.maximum(end - 1, 0)[:, None])
    idx = col[pos]
    idx[cnt == 0] = 0
    return idx, cnt


def column_sum(g: np.ndarray, cnt: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
    """Σ over the gathered columns ``g`` [chips, P, rows] of each chip's ``cnt`` distinct ones
    (padded ones repeat the last), weighted by ``values`` [chips, P] (None: spikes, all 1) ->
    [chips, rows] int64: W s restricted to the sources that sent something."""
    if values is None:                     # int16 columns: |Σ| < 2^15 · P fits int32
        total = g.sum(1, dtype=np.int32 if g.dtype == np.int16 and g.shape[1] < 2 ** 16 else np.int64
                      ).astype(np.int64)
        short = g.shape[1] - cnt
        return total - short[:, None] * g[:, -1].astype(np.int64) if short.any() else total
    return np.einsum("kpr,kp->kr", g.astype(np.int64), values * (np.arange(g.shape[1]) < cnt[:, None]))


def learn_columns(g: np.ndarray, cnt: np.ndarray, traces: dict[str, np.ndarray], live: list,
                  r_w: np.ndarray) -> np.ndarray | None:
    """New weights of the gathered active columns ``g`` [chips, P, rows] (x0 = 1 on each chip's
    first ``cnt`` columns, the rest repeats; a chip with cnt 0 keeps its weights): ``traces``
    {factor: [chips, rows]} as :func:`trace_values` reads them, ``live`` the step's x0 products,
    ``r_w`` [chips] the step's weight randoms.  Equal to :func:`apply_series` on those columns
    (see above); None when no weight changes."""
    if not live:
        return None
    r128 = np.asarray(r_w, np.float64)[:, None] * ROUND_UNIT          # r_w < q % 1  <=>  128 r_w < acc & 127
    if not any("w" in p.factors for p in live):
        curs = row_currents(tuple(live), traces)                       # [products, chips, rows]
        if not ((curs > 0).any(0) & (curs < 0).any(0)).any():
            d = curs.sum(0)
            delta = ((d >> ACC_SHIFT) + (r128 < (d & (ROUND_UNIT - 1)))) * (cnt > 0)[:, None]
            if not delta.any():
                return None
            # |g| <= 256: clipping delta to ±512 keeps clip(g + delta) and fits g's dtype (int16)
            return np.clip(g + np.clip(delta, -512, 512).astype(g.dtype)[:, None, :], -256, 255)
    w = g.astype(np.int64)
    acc = w << ACC_SHIFT
    for p in live:
        cur = product_current(p, [w if f == "w" else traces[f][:, None, :] for f in p.factors])
        acc = np.clip(acc + cur, ACC_MIN, ACC_MAX)
    q = np.clip((acc >> ACC_SHIFT) + (r128[:, :, None] < (acc & (ROUND_UNIT - 1))), -256, 255)
    return np.where((cnt > 0)[:, None, None], q, w)


def decay_np(x: np.ndarray, d: int, off: int) -> np.ndarray:
    """fp.decay in numpy: x · (4096 − (d + off)) >> 12, rounded toward zero."""
    prod = x * (fp.DECAY_UNITY - (d + off))
    return np.sign(prod) * (np.abs(prod) >> fp.DECAY_SHIFT)


def _decayed(x: np.ndarray, mul) -> np.ndarray:
    """x · mul >> 12 rounded toward zero (decay_np with mul = 4096 − (d + off) given)."""
    prod = x * mul
    return np.sign(prod) * (np.abs(prod) >> fp.DECAY_SHIFT)


def population_step(p: Population, st: dict, o: dict, a: np.ndarray, bias: np.ndarray,
                    third: np.ndarray, q: dict | None = None) -> None:
    """One fixed-point step of population ``p`` (Lava's bit-accurate LIF for 'lif'/'third')::

        u ← wrap24(decay(u, du) + a << 6),  v ← clip(decay(v, dv) + u + bias),  s = v > vth << 6
        'third': e = sign(t)(|t| >> third_shift)·[v ≥ gate_lo], sent as y3 = clip(e, 0, 127),
                 y2 = clip(−e, 0, 127), y1 = s, and as the graded output err = e
        'graded': s = err = a · [|a| > vth]

    Updates the state ``st`` (u, v; v resets to 0 on a spike) and the outputs ``o`` in place
    (arrays [chips, n]); ``q`` holds the integer parameters per chip ([chips, 1] arrays: du, dv,
    vth, third_shift, gate_lo; default: ``p``'s)."""
    q = q or {k: np.int64(getattr(p, k)) for k in ("du", "dv", "vth", "third_shift", "gate_lo")}
    if p.kind == "graded":
        o["s"] = a * (np.abs(a) > q["vth"])
        o["err"] = o["s"]
        return
    if "_u_mul" not in q:             # the step's constants, kept in q for the next steps
        q["_u_mul"] = fp.DECAY_UNITY - (q["du"] + fp.DS_OFFSET)
        q["_v_mul"] = fp.DECAY_UNITY - (q["dv"] + fp.DM_OFFSET)
        q["_vth"] = q["vth"] << fp.VTH_SHIFT
    u = _decayed(st["u"], q["_u_mul"]) + (a << fp.ACT_SHIFT)
    if (np.abs(u) >= fp.MAX_UV).any():                  # wrap24 (a no-op inside the range)
        wrapped = np.where(u > fp.MAX_UV, u - 2 * fp.MAX_UV, u)
        u = np.where(wrapped <= -fp.MAX_UV, u + 2 * fp.MAX_UV, wrapped)
    v = np.minimum(np.maximum(_decayed(st["v"], q["_v_mul"]) + u + bias, -(fp.MAX_UV - 1)), fp.MAX_UV - 1)
    spikes = v > q["_vth"]
    s = spikes.astype(np.int64)
    if p.kind == "third":
        if third.any():
            tt = np.sign(third) * (np.abs(third) >> q["third_shift"]) * (v >= q["gate_lo"])
            o["y2"] = np.minimum(np.maximum(-tt, 0), TRACE_MAX)
            o["y3"], o["err"] = np.minimum(np.maximum(tt, 0), TRACE_MAX), tt
        else:                         # no third factor this step: e = 0
            o["y2"] = o["y3"] = o["err"] = np.zeros_like(v)
        o["y1"] = TG.psi_of(p, v, q["vth"]) if p.psi_slope else s
    st["u"], st["v"] = u, np.where(spikes, 0, v)
    o["s"] = s


def _stack(arrays: list[np.ndarray], transpose: bool, dtype) -> np.ndarray:
    """[len(arrays), *shape] of ``dtype``, each array transposed if ``transpose`` (written in
    place: no int64 copy of all chips; the caller picks a ``dtype`` that holds the values: stored
    weights of b mantissa bits lie within ±2^(b+1))."""
    out = np.empty((len(arrays), *(arrays[0].T if transpose else arrays[0]).shape), dtype)
    for i, a in enumerate(arrays):
        out[i] = a.T if transpose else a
    return out


def _stack_stream(arrays: list[np.ndarray]) -> np.ndarray:
    """The chips' streams of one source stacked [chips, T, n]: int8 when every value is 0 or 1
    (spikes: an eighth of the memory), int64 otherwise."""
    binary = all(a.dtype == bool or (np.issubdtype(a.dtype, np.integer) and not (a & ~1).any()) for a in arrays)
    return _stack(arrays, False, np.int8 if binary else np.int64)


def summed(arrays: list[np.ndarray], zeros, n: int) -> np.ndarray:
    """Σ of ``arrays``: the array itself when there is one (never written to), zeros(n) when none."""
    if len(arrays) == 1:
        return arrays[0]
    return sum(arrays[1:], arrays[0]) if arrays else zeros(n)


def _stored(c: Connection) -> np.ndarray:
    return fp.stored_weights(torch.as_tensor(np.asarray(c.weights)).round().to(torch.int64),
                             c.sign_mode, c.num_weight_bits).numpy()


def _mask(c: Connection) -> np.ndarray:
    return np.ones(np.shape(c.weights), np.int64) if c.mask is None else np.asarray(c.mask, np.int64)


def emulate_chips(circuits: list[Circuit], inputs: list[dict[str, np.ndarray]], rng_seeds: list[int],
                  record: list[str] | None = None, snapshot_every: int = 0, on_step=None,
                  columns: bool = True, kernel: bool = True,
                  ) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]]:
    """N independent chips in one vectorised run: ``circuits`` of one structure (the same
    populations, connections, shapes and product series; weights, biases and streams may differ),
    chip k fed ``inputs[k]`` {source name: [T, n]} (T the same for all) with Lava's random
    streams seeded by ``rng_seeds[k]``.  Each chip's results equal its single-chip
    :func:`emulate_learning` run.  Returns (weights per chip, records per chip).  ``columns``
    False: every learning step through :func:`apply_series` on whole matrices (the reference
    the active-column path is tested against; same results, slower).  ``kernel`` (with
    ``columns``): the compiled kernel of :mod:`neurocredit.chip.kernels` where it covers the
    circuit (same results; False: the numpy column path)."""
    ref = circuits[0]
    n_chips = len(circuits)
    if not (len(inputs) == len(rng_seeds) == n_chips):
        raise ValueError(f"{n_chips} circuits need as many input streams and seeds, got {len(inputs)} and "
                         f"{len(rng_seeds)}")
    for c in circuits[1:]:
        same = [(x.name, x.src, x.dst, np.shape(x.weights), x.plastic.dw, x.view)
                for x in c.connections] == [(x.name, x.src, x.dst, np.shape(x.weights), x.plastic.dw, x.view)
                                            for x in ref.connections]
        if not same or [p.name for p in c.populations] != [p.name for p in ref.populations]:
            raise ValueError("chips run together must share the circuit's structure and product series")
    steps = next(iter(inputs[0].values())).shape[0]
    record = list(record or [])
    pops = {p.name: p for p in ref.populations}
    missing = [s for s in ref.sources() if s not in inputs[0]]
    if missing:
        raise ValueError(f"the circuit reads sources {missing} that the inputs do not provide")
    src = {k: _stack_stream([np.asarray(i[k]) for i in inputs]) for k in inputs[0]}   # [chips, T, n]
    z = lambda n: np.zeros((n_chips, n), np.int64)  # noqa: E731
    state = {p.name: dict(u=z(p.n), v=z(p.n)) for p in ref.populations}
    outs = {p.name: {"s": z(p.n), "err": z(p.n), "y1": z(p.n), "y2": z(p.n), "y3": z(p.n)} for p in ref.populations}
    # a plastic connection is held column-major, M [chips, columns, rows] (learn_columns): the
    # forward view as W^T (a column = a pre neuron), the transposed view as W; as int16 (|W| <= 256)
    fwd = {c.name for c in ref.plastic if c.view != "transposed"}
    bufs = {c.name: z(pops[c.dst].n) for c in ref.connections}
    randoms = {c.name: EngineRandoms(list(rng_seeds)) for c in ref.plastic}
    elig = TG.EligibilityState(ref, n_chips, list(rng_seeds))   # pre traces x1 and tags t (chip.tags)
    carried = {c.name: CR.fast_plan(c) for c in ref.plastic if c.name in elig.tags} if columns else {}
    # existing synapses of a sparse plastic connection (chip by chip): learning never touches the rest
    masks = {c.name: np.stack([_mask(ch.connection(c.name)) for ch in circuits]) for c in ref.plastic
             if any(ch.connection(c.name).mask is not None for ch in circuits)}
    into = {(p.name, port): [c.name for c in ref.connections if c.dst == p.name and c.dst_port == port]
            for p in ref.populations for port in ("a", "third", *RATE.IN_PORTS)}
    bias = {p.name: np.stack([fp.effective_bias(torch.as_tensor(np.asarray(ch.population(p.name).bias_mant, np.int64)),
                                                torch.as_tensor(np.asarray(ch.population(p.name).bias_exp, np.int64))
                                                ).broadcast_to((p.n,)).numpy() for ch in circuits])
            for p in ref.populations}
    params = {p.name: {k: np.array([[int(getattr(ch.population(p.name), k))] for ch in circuits], np.int64)
                       for k in ("du", "dv", "vth", "third_shift", "gate_lo")} for p in ref.populations}
    exps = {c.name: np.array([[int(ch.connection(c.name).weight_exp)] for ch in circuits], np.int64)
            for c in ref.connections}
    rec = {k: np.zeros((n_chips, steps, pops[k.split(":")[-1]].n), np.int64) for k in record}
    snaps: dict[str, list[np.ndarray]] = {c.name: [] for c in ref.plastic}
    for name in masks:                # laid out as the weights
        masks[name] = _stack(list(masks[name]), name in fwd, np.int16)
    narrow = lambda w: w if w.dtype == np.int16 else w.astype(np.int16)  # noqa: E731
    # the weight exponent as two shifts, (acc << max(e, 0)) >> max(-e, 0); None where e = 0
    # the column path's products of a step on which no u<d> ticks, the decimations that do tick,
    # the post traces read, and whether every product reads one (so zero traces change nothing)
    plan = {}
    for c in ref.plastic:
        base = column_products(c.plastic, 1) if columns else None     # step 1: only a u0 ticks
        used = sorted({f for p in base or () for f in p.factors if f in POST_TRACES})
        plan[c.name] = (base, [p.decimation for p in c.plastic if p.decimation], used,
                        bool(base) and all(set(p.factors) & set(POST_TRACES) for p in base))
    shifts = {k: (np.maximum(e, 0), np.maximum(-e, 0)) if e.any() else None for k, e in exps.items()}
    if columns and kernel and KN.kernel_plan(ref) is None:      # the compiled kernel (chip.kernels)
        return KN.run_chips(circuits, src, next(iter(randoms.values()), None), fwd, masks, bias, params, exps,
                            record, snapshot_every, on_step)
    weights = {c.name: _stack([_stored(ch.connection(c.name)) for ch in circuits], c.name in fwd,
                              np.int16 if c.plastic and c.num_weight_bits <= 14 else np.int64)
               for c in ref.connections}

    def w_of(name: str) -> np.ndarray:        # W [chips, post, pre] as int64 (transposed chip by chip)
        m = weights[name]
        if name not in fwd:
            return m.astype(np.int64)
        out = np.empty((m.shape[0], m.shape[2], m.shape[1]), np.int64)
        for i in range(len(m)):
            out[i] = m[i].T
        return out
    ix = np.arange(n_chips)[:, None]

    def signal(g, t: int):            # a GradedSignal's value this step (a source's, or a population port's)
        return None if g is None else src_at(g.src, t) if g.src in src else outs[g.src][g.port]
    spikes = {k: v.dtype == np.int8 for k, v in src.items()}   # a source of 0/1 only
    src_at = lambda k, t: src[k][:, t].astype(np.int64)  # noqa: E731
    held: dict[str, np.ndarray] = {}  # x0 of the previous step (GradedSignal.x0_delay, chip.extensions)
    for t in range(steps):
        for p in ref.populations:
            a, third = (summed([bufs[k] for k in into[(p.name, port)]], z, p.n) for port in ("a", "third"))
            if p.kind in RATE.KINDS:      # graded-rate neuron dynamics (chip.rate)
                RATE.step(p, state[p.name], outs[p.name],
                          {port: sum((bufs[k] for k in into[(p.name, port)]), z(p.n)) for port in RATE.IN_PORTS})
            else:
                population_step(p, state[p.name], outs[p.name], a, bias[p.name], third, params[p.name])
            outs[p.name]["in"] = a            # its summed input current: a graded signal (chip.extensions)
        for c in ref.connections:
            s = src_at(c.src, t) if c.src in src else outs[c.src][c.src_port if c.src_port in outs[c.src] else "s"]
            if c.name in fwd:             # W s from the columns of the pre neurons that sent something
                binary = spikes[c.src] if c.src in src else (c.src_port not in ("err", "in")
                                                             and pops[c.src].kind not in RATE.KINDS)
                idx, cnt = padded_columns(s)
                g = weights[c.name][ix, idx]                                   # [chips, P, post]
                acc = column_sum(g, cnt, None if binary else np.take_along_axis(s, idx, 1))
            else:
                acc = np.einsum("kij,kj->ki", weights[c.name], s)
            bufs[c.name] = acc if shifts[c.name] is None else (acc << shifts[c.name][0]) >> shifts[c.name][1]
            if not c.plastic:
                continue
            r_y, r_w = randoms[c.name].step()
            live, ticks, used, traced = plan[c.name]       # = column_products(c.plastic, t + 1)
            if live is not None and any((t + 1) % (1 << d) == 0 for d in ticks):
                live = None
            # marked extensions: graded factors (and a transposed view's learning payload traces)
            gx, gy = EX.graded_factors(c, signal(c.graded, t), w_of(c.name), signal(c.graded_post, t)) \
                if c.graded else (None, None)
            if c.view == "transposed":
                y = gy or {"y1": np.zeros_like(s), "y2": np.clip(-s, 0, TRACE_MAX), "y3": np.clip(s, 0, TRACE_MAX)}
                x0 = outs[c.dst]["s"] > 0
                if c.graded is not None and c.graded.x0_delay:   # the payload answers the previous step's spike
                    x0, held[c.name] = held.get(c.name, np.zeros_like(x0)), x0
                if live is None:
                    w_t = apply_series(weights[c.name].swapaxes(1, 2), x0, y, c.plastic, r_y, r_w, t + 1, gx)
                    weights[c.name] = np.ascontiguousarray(w_t.swapaxes(1, 2))
                else:
                    idx, cnt = padded_columns(x0)
                    g = weights[c.name][ix, idx]
            else:
                y = outs[c.dst]
                if live is None and carried.get(c.name) is not None:   # a tag carry (chip.carry), in place
                    elig.factors(c.name, s > 0)
                    CR.carry_step(weights[c.name], elig.tags[c.name], s > 0,
                                  trace_values(np.stack([y[f] for f in CR.TRACES]), r_y[:, None]), carried[c.name], r_w)
                elif live is None:
                    # eligibility: x1 advanced, the tag learns by its dt from the same (old) values
                    ex = elig.factors(c.name, s > 0) if c.name in elig else gx
                    w = apply_series(weights[c.name].swapaxes(1, 2), s > 0, y, c.plastic, r_y, r_w, t + 1, ex)
                    if c.name in elig.tags:
                        elig.tags[c.name] = apply_series(ex["t"], s > 0, y, c.tag, r_y, r_w, t + 1, ex, TG.TAG_BOUNDS)
                    weights[c.name] = np.ascontiguousarray(w.swapaxes(1, 2))
                elif not binary and (s < 0).any():       # graded pre: x0 = [s > 0]
                    idx, cnt = padded_columns(s > 0)
                    g = weights[c.name][ix, idx]
            if live is not None and cnt.any() and not (traced and not any(y[f].any() for f in used)):
                tv = trace_values(np.stack([y[f] for f in used]), r_y[:, None]) if used else []
                new = learn_columns(g, cnt, dict(zip(used, tv)), live, r_w)
                if new is not None:          # back to int16 after an apply_series step (int64)
                    weights[c.name] = narrow(weights[c.name])
                    weights[c.name][ix, idx] = new * masks[c.name][ix, idx] if c.name in masks else new
            if c.name in masks and (t == 0 or live is None):     # W <- W' ⊙ mask (once in full)
                weights[c.name] = weights[c.name] * masks[c.name]
            if snapshot_every and (t + 1) % snapshot_every == 0:
                snaps[c.name].append(w_of(c.name).copy())
        for k in record:
            port, _, name = k.rpartition(":")
            rec[k][:, t] = outs[name]["err" if port == "err" else "s"]
        if on_step is not None:          # progress only (session.SampleBar): steps run so far
            on_step(t + 1)
    final = {k: w_of(k) for k in weights}
    per_chip_w = [{k: v[i] for k, v in final.items()} for i in range(n_chips)]
    per_chip_r = [{k: v[i] for k, v in rec.items()} for i in range(n_chips)]
    if snapshot_every:
        for i in range(n_chips):
            per_chip_r[i].update({f"w:{k}": np.asarray([w[i] for w in v]) for k, v in snaps.items()})
    return per_chip_w, per_chip_r


def emulate_learning(circuit: Circuit, inputs: dict[str, np.ndarray], rng_seed: int = 0,
                     record: list[str] | None = None, snapshot_every: int = 0, on_step=None,
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run a fixed-point learning circuit on ``inputs`` {source name: [T, n]} (one stream,
    learning every step): every plastic connection applies its product series each step
    (:func:`apply_series`) on its view — 'forward': x0 = the pre spike, y1..y3 the post
    neuron's traces; 'transposed' (learned feedback): x0 = the spike of the neuron it drives,
    y3/y2 the +/- parts of the signed payload it carries, Δ on the transposed matrix (as
    ``TransposedLearningDense`` does in Lava).  A connection with a synapse ``mask`` learns on
    its existing synapses only (W ← W' ⊙ mask; absent ones stay 0, as Lava's LearningSparse).  One chip of :func:`emulate_chips`.

    Returns (final integer weights of every connection, records [T, n] of ``record``: a
    population name for its spikes / graded output, ``'err:<name>'`` for its signed third
    factor); with ``snapshot_every`` > 0 the records also hold ``'w:<name>'`` arrays
    [T // snapshot_every, *shape] of every plastic connection's weights."""
    weights, rec = emulate_chips([circuit], [inputs], [rng_seed], record, snapshot_every, on_step)
    return weights[0], rec[0]
