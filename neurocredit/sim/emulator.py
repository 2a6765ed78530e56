"""Vectorised, batched PyTorch emulator of a Loihi/Lava circuit: LIF populations joined by
Dense connections, in the fixed-point arithmetic of lava-nc's bit-accurate models (or their float
models), with Lava's timing.

A :class:`Circuit` is plain data (numbers only, no Lava objects): the Lava compiler
(:mod:`neurocredit.lava.compile`) produces one and builds the Lava processes from the same numbers,
so that the emulator and ``Loihi2SimCfg`` run the same program.

Timing (Lava's ``LoihiProtocol``, one call of ``run_spk`` per process per step t = 1, 2, ...)::

    input spikes x[t] leave the RingBuffer source at step t
    every LIF population p updates with a_in[t] = sum over connections c -> p of buf_c
    every Dense connection c then sets buf_c = W_c s_src[t]    (so it reaches p at step t + 1)

Equations per step are those of :mod:`neurocredit.neurons.fixed_point`.  Samples in a batch
are independent and start from zero state (Lava: u = v = 0, Dense a_buff = 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from neurocredit.neurons import fixed_point as fp

INPUT = "input"   # the name of the circuit's input population (the spike source)


@dataclass
class Population:
    """One Lava LIF process.  Fixed point: du, dv 12-bit ints, vth 17-bit int, bias_mant/exp
    ints per neuron.  Float: du, dv fractions, vth float, bias_mant float, bias_exp 0."""

    name: str
    n: int
    du: float
    dv: float
    vth: float
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    spiking: bool = True            # False: a leaky integrator (NIR LI/CubaLI), output = v
    v_scale: np.ndarray | float = 1.0   # NIR voltage per unit of this population's v
    kind: str = "lif"               # "lif" | "third" (ThirdFactorLIF) | "graded" (GradedVec)
    third_shift: int = 0            # third: t = trunc(a_third / 2^third_shift)
    gate_lo: int = -(2 ** 30)       # third: t counts where v (before reset) >= gate_lo


@dataclass
class Connection:
    """One Lava Dense process from ``src`` (a population or :data:`INPUT`) to ``dst``.
    ``weights`` has shape (n_dst, n_src); fixed point: ints, with ``weight_exp`` and sign mode."""

    name: str
    src: str
    dst: str
    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: str = "mixed"
    src_port: str = "s"             # "s": spikes / graded output, "err": a ThirdFactorLIF's s_err
    dst_port: str = "a"             # "a": a_in, "third": a_third_factor_in
    plastic: tuple = ()             # Lava dw products (mantissa, exponent, factor "y2"|"y3"|"w", dependency "x0"|"u<d>")


@dataclass
class Circuit:
    """Populations (in update order; any order gives the same result), connections, and the
    populations whose spikes are the graph's outputs."""

    n_in: int
    populations: list[Population]
    connections: list[Connection]
    outputs: list[str]
    fixed_point: bool = True
    meta: dict = field(default_factory=dict)

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(f"no population {name!r} in the circuit")

    def decode(self, name: str, data: torch.Tensor | np.ndarray) -> np.ndarray:
        """A recorded output in NIR units: spikes as bool, an integrator's v times v_scale."""
        p = self.population(name)
        data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        return data != 0 if p.spiking else data.astype(np.float64) * np.asarray(p.v_scale)


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
            device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Run ``circuit`` on input spikes ``x`` [T, batch, n_in] (0/1).  Returns a dict
    population name -> [T, batch, n] for ``record`` (default: the outputs): spikes (bool) of a
    spiking population, the voltage v after the step (Lava units, int64 or float64) of a
    non-spiking one (see :meth:`Circuit.decode`)."""
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
    return out


# -- on-chip learning (fixed point) -----------------------------------------------------------
# Lava's learning engine (lava/magma/core/model/py/connection.py
# LearningConnectionModelBitApproximate with learning_rule_applier.LearningRuleApplierBitApprox),
# for Loihi3FLearningRule dw strings of products  mant * 2^exp * x0 * y  (y = y2 or y3), t_epoch 1:
#
#   y_eval  = floor(y e^(-1/65535)) + (r_y < frac)     3F post traces decay with tau 65535,
#                                                      r_y: the post-trace random of this step
#   acc     = W << 7 ;  for each product:  acc = clip(acc + clip((x0 y_eval mant) << (7 + exp)))
#   W       = clip((floor(acc / 128) + (r_w < frac(acc / 128))) * 128 >> 7, -256, 255)
#
# with r_w from ConnVarRandom (numpy default_rng(2), one draw per step) and r_y from the y
# TraceRandom decay stream (default_rng(rng_seed + 2), two draws per step).  Clips are to the
# 16-bit signed accumulator [-(2^15) - 1, 2^15 - 1].
Y_TAU = 65535          # Loihi3FLearningRule: y1..y3 taus = np.iinfo(np.uint16).max
ACC_MAX = 2 ** 15 - 1
ACC_MIN = -(2 ** 15) - 1
ACC_SHIFT = 7          # W_ACCUMULATOR_S - W_SYN_VAR_S = 16 - 9
ROUND_UNIT = 128       # 2^(W_ACCUMULATOR_U - W_WEIGHTS_U) = 2^(15 - 8)


class _LavaRandoms:
    """The random streams one Lava LearningDense draws from, in Lava's order."""

    def __init__(self, rng_seed: int) -> None:
        self._w = np.random.default_rng(2)            # ConnVarRandom() default seed
        self._w.random(1)
        self._y = np.random.default_rng(rng_seed + 2)  # y TraceRandom, trace-decay stream
        self._y.random(1)

    def step(self) -> tuple[float, float]:
        """(r_y, r_w) for one step: two y-trace advances (recv_traces), one weight advance."""
        self._y.random(1)
        r_y = float(self._y.random(1)[0])
        r_w = float(self._w.random(1)[0])
        return r_y, r_w


def learning_update(w: np.ndarray, x0: np.ndarray, y: dict[str, np.ndarray], products: tuple,
                    r_y: float, r_w: float, time_step: int = 1) -> np.ndarray:
    """One learning epoch (t_epoch = 1) of Lava's bit-approximate engine
    (``LearningRuleApplierBitApprox``) for ``products`` ((mant, exp, factor, dependency), ...):

    * ``(m, k, "y2"|"y3", "x0")``: m 2^k x0 y (pre spike x post trace);
    * ``(m, k, "w", "u<d>")``: m 2^k w, applied when the time step is a multiple of 2^d (Lava's
      decimated dependency u<d>: a weight decay slower than the smallest constant 2^-7 per step).

    Each product is accumulated at 2^7 x the weight resolution (saturating at 16 bits), the sum
    is stochastically rounded to an integer weight.  ``w`` (n_post, n_pre) ints, ``x0`` (n_pre,)
    bool, ``y[trace]`` (n_post,) ints, ``time_step`` Lava's (1 on the first step).  Returns the
    new integer weights."""
    acc = w.astype(np.int64) << ACC_SHIFT
    decay = np.exp(-1 / Y_TAU)
    for mant, exp, factor, dep in products:
        if dep == "x0":
            yv = decay * y[factor].astype(np.int64)
            frac = yv % 1
            yv = (np.floor(yv) + (r_y < frac)).astype(np.int64)
            yv = np.clip(yv, -(2 ** 7), 2 ** 7 - 1)
            cur = x0.astype(np.int64)[None, :] * yv[:, None] * int(mant)
        elif dep.startswith("u") and factor == "w":
            if time_step % (1 << int(dep[1:])):
                continue
            cur = np.clip(w.astype(np.int64), -(2 ** 9), 2 ** 9 - 1) * int(mant)
        else:
            raise ValueError(f"product {mant} * 2^{exp} * {dep} * {factor} is not emulated "
                             f"(x0 * y2/y3 and u<k> * w are)")
        cur = np.clip(cur << (7 + int(exp)), ACC_MIN, ACC_MAX)
        acc = np.clip(acc + cur, ACC_MIN, ACC_MAX)
    q = acc / ROUND_UNIT
    frac = q % 1
    q = (np.floor(q) + (r_w < frac)).astype(np.int64)
    return np.clip((q * ROUND_UNIT) >> ACC_SHIFT, -256, 255)


@torch.no_grad()
def engine_state(circuit: "Circuit", rng_seed: int):
    """Fresh fixed-point state of a learning circuit: (neuron u/v, population outputs s/err/y2/y3,
    stored integer weights, Dense output buffers, Lava's seeded random streams per plastic
    connection, the connections into each population port, the effective integer biases)."""
    pops = {p.name: p for p in circuit.populations}
    z = lambda n: np.zeros(n, np.int64)  # noqa: E731
    state = {p.name: dict(u=z(p.n), v=z(p.n)) for p in circuit.populations}
    outs = {p.name: {"s": z(p.n), "err": z(p.n), "y2": z(p.n), "y3": z(p.n)} for p in circuit.populations}
    weights = {c.name: fp.stored_weights(torch.as_tensor(np.asarray(c.weights)).round().to(torch.int64),
                                         c.sign_mode, c.num_weight_bits).numpy() for c in circuit.connections}
    bufs = {c.name: z(pops[c.dst].n) for c in circuit.connections}
    randoms = {c.name: _LavaRandoms(rng_seed) for c in circuit.connections if c.plastic}
    into = {(p.name, port): [c.name for c in circuit.connections if c.dst == p.name and c.dst_port == port]
            for p in circuit.populations for port in ("a", "third")}
    bias = {p.name: fp.effective_bias(torch.as_tensor(np.asarray(p.bias_mant, np.int64)),
                                      torch.as_tensor(np.asarray(p.bias_exp, np.int64))).numpy()
            for p in circuit.populations}
    return state, outs, weights, bufs, randoms, into, bias


def decay_np(x: np.ndarray, d: int, off: int) -> np.ndarray:
    """fp.decay in numpy: x · (4096 − (d + off)) >> 12, rounded toward zero."""
    prod = x * (fp.DECAY_UNITY - (d + off))
    return np.sign(prod) * (np.abs(prod) >> fp.DECAY_SHIFT)


def third_factor_lif_step(p, st: dict, o: dict, a: np.ndarray, bias: np.ndarray,
                          third: np.ndarray) -> None:
    """One fixed-point ThirdFactorLIF step of population ``p`` (Lava's bit-accurate LIF):

        u ← wrap24(decay(u, du) + a << 6),  v ← clip(decay(v, dv) + u + bias),  s = v > vth << 6,
        and for 'third' populations the gated, shifted third factor e = sign(t)(|t| >> k)·[v ≥ gate]
        sent as y3 = clip(e, 0, 127), y2 = clip(−e, 0, 127).
    Updates the state ``st`` (u, v; v resets to 0 on a spike) and the outputs ``o`` in place."""
    u = decay_np(st["u"], int(p.du), fp.DS_OFFSET) + (a << fp.ACT_SHIFT)
    wrapped = np.where(u > fp.MAX_UV, u - 2 * fp.MAX_UV, u)       # fp.wrap_current
    u = np.where(wrapped <= -fp.MAX_UV, u + 2 * fp.MAX_UV, wrapped)
    v = np.clip(decay_np(st["v"], int(p.dv), fp.DM_OFFSET) + u + bias,
                -(fp.MAX_UV - 1), fp.MAX_UV - 1)
    spikes = v > (int(p.vth) << fp.VTH_SHIFT)
    if p.kind == "third":
        gate = v >= int(p.gate_lo)
        tt = np.sign(third) * (np.abs(third) >> int(p.third_shift)) * gate
        o["y2"], o["y3"], o["err"] = np.clip(-tt, 0, 127), np.clip(tt, 0, 127), tt
    st["u"], st["v"] = u, np.where(spikes, 0, v)
    o["s"] = spikes.astype(np.int64)


def emulate_learning(circuit: Circuit, inputs: dict[str, np.ndarray], rng_seed: int = 0,
                     record: list[str] | None = None, snapshot_every: int = 0,
                     ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run a fixed-point circuit with ThirdFactorLIF / GradedVec populations and plastic
    connections on ``inputs`` {source name: [T, n]} (one sample stream, learning every step).

    Plastic forward connections learn from (pre spike x post traces y2/y3 that the post neuron
    sends), as Lava's ``LearningDense`` with the generated ``Loihi3FLearningRule``.  The
    *transposed* plastic connections named in ``circuit.meta['transposed']`` (learned feedback:
    Kolen-Pollack, relaxed predictive coding's B_l) learn from what their synapse sees, the post
    neuron's spike and the signed graded payload ε they carry,

        ΔB_l[i, j] = c · s_{l,i} · ε_{l+1,j},

    computed by the same engine on the transposed matrix (the spike is the x0 dependency, the
    payload's negative/positive parts the traces y2/y3), as
    :class:`~neurocredit.lava.processes.transposed_process.TransposedLearningDense` does in Lava.

    Returns (final integer weights of every connection, records [T, n] of ``record``: a
    population name for its spikes / graded output, ``'err:<name>'`` for its signed third
    factor); with ``snapshot_every`` > 0 the records also hold ``'w:<name>'`` arrays
    [T // snapshot_every, *shape] of every plastic connection's weights."""
    steps = next(iter(inputs.values())).shape[0]
    record = list(record or [])
    transposed = set(circuit.meta.get("transposed", ()))
    names = {c.name for c in circuit.connections}
    if transposed - names:
        raise ValueError(f"transposed-plastic connections {sorted(transposed - names)} are not in the circuit")
    pops = {p.name: p for p in circuit.populations}
    state, outs, weights, bufs, randoms, into, bias = engine_state(circuit, rng_seed)
    rec = {k: np.zeros((steps, pops[k.split(":")[-1]].n), np.int64) for k in record}
    snaps: dict[str, list[np.ndarray]] = {c.name: [] for c in circuit.connections if c.plastic}

    for t in range(steps):
        for p in circuit.populations:
            a = np.zeros(p.n, np.int64)
            for k in into[(p.name, "a")]:
                a = a + bufs[k]
            o = outs[p.name]
            if p.kind == "graded":
                o["s"] = a * (np.abs(a) > int(p.vth))
                o["err"] = o["s"]
                continue
            third_factor_lif_step(p, state[p.name], o, a, bias[p.name],
                                  sum((bufs[k] for k in into[(p.name, "third")]),
                                      np.zeros(p.n, np.int64)))
        for c in circuit.connections:
            if c.src in inputs:
                s = np.asarray(inputs[c.src][t], dtype=np.int64)
            else:
                s = outs[c.src]["err" if c.src_port == "err" else "s"]
            acc = weights[c.name] @ s
            e = int(c.weight_exp)
            bufs[c.name] = acc << e if e > 0 else acc >> (-e)
            if c.plastic:
                r_y, r_w = randoms[c.name].step()
                if c.name in transposed:       # post spike x signed payload, on the transposed matrix
                    y = {"y2": np.clip(-s, 0, 127), "y3": np.clip(s, 0, 127)}
                    w_t = learning_update(weights[c.name].T, outs[c.dst]["s"] > 0, y, c.plastic, r_y, r_w, t + 1)
                    weights[c.name] = np.ascontiguousarray(w_t.T)
                else:
                    y = {"y2": outs[c.dst]["y2"], "y3": outs[c.dst]["y3"]}
                    weights[c.name] = learning_update(weights[c.name], s > 0, y, c.plastic, r_y, r_w, t + 1)
                if snapshot_every and (t + 1) % snapshot_every == 0:
                    snaps[c.name].append(weights[c.name].copy())
        for k in record:
            port, _, name = k.rpartition(":")
            rec[k][t] = outs[name]["err" if port == "err" else "s"]
    if snapshot_every:
        rec.update({f"w:{k}": np.asarray(v) for k, v in snaps.items()})
    return weights, rec
