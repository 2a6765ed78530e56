"""Calibrated quantisation: per layer, the fixed-point parameters whose output on calibration
inputs is closest to the float circuit's.

The default quantisation (:func:`neurocredit.chip.compile.quantise_population`) takes, per layer,
the largest threshold mantissa lambda the profile's limits allow and, per Dense, the smallest
weight exponent that holds the largest weight.  Calibration searches around it, per layer::

    lambda = floor(lambda_max * s),   s in split           (state vs weight precision)
    e_c    = e_c(default) + o,        o in exponent offsets (o < 0: finer weights, largest clipped)
    vth    = round(lambda * k),       k in threshold scales (a spiking layer's threshold)

Layer by layer (no compounding of errors in the search): the layer runs in fixed point on the
emulator fed the *float* spikes of its sources (the input, earlier layers, the onset
populations), keeping its own recurrent connections live, and its output is compared with the
float circuit's output of that layer on the same inputs.  The default is one candidate and is
kept unless another has a strictly smaller error, so calibration never does worse than the
default on its calibration set.  The chosen layers are then measured end to end.

Spike agreement of a layer (fixed point A, float B, sets of (step, sample, neuron) spike events)::

    agreement   = |A ∩ B| / |A ∪ B|        (1: every spike at the same neuron and step; 1 if none)
    count corr  = Pearson r of the spike counts per (sample, neuron)

Error of a spiking layer: 1 - agreement; of a leaky integrator (output v): the relative RMS error
of v in NIR units.  Calibration inputs: the user's spike trains, or Bernoulli (Poisson) spike
trains from :func:`poisson_inputs` with a seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from neurocredit.chip.circuits import regridded
from neurocredit.chip.compile import FloatLayer, LayerReport, Program, quantise_population
from neurocredit.chip.emulator import emulate
from neurocredit.chip.graph import Refusal
from neurocredit.chip.ir import INPUT, Circuit, Connection, Population
from neurocredit.chip.timing import CLOCK, ONSET

SPLITS = (1.0, 0.5)
EXP_OFFSETS = (0, -1, -2, -3, -4, 1)
VTH_SCALES = (1.0, 0.97, 1.03)


def poisson_inputs(n_in: int, steps: int = 100, samples: int = 64, rate: float = 0.2,
                   seed: int = 0) -> np.ndarray:
    """Bernoulli spike trains [steps, samples, n_in] (each input's rate drawn in [0, 2 rate])."""
    rng = np.random.default_rng(seed)
    p = np.clip(rng.random((samples, n_in)) * 2 * rate, 0.0, 1.0)
    return (rng.random((steps, samples, n_in)) < p[None]).astype(np.int64)


def spike_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """|A ∩ B| / |A ∪ B| over (step, sample, neuron) spike events (1.0 when neither spikes)."""
    a, b = np.asarray(a) != 0, np.asarray(b) != 0
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def count_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r of spike counts per (sample, neuron) (nan when either has no variance)."""
    ca, cb = (np.asarray(v).astype(np.float64).sum(axis=0).ravel() for v in (a, b))
    if ca.std() == 0 or cb.std() == 0:
        return float("nan") if ca.std() != cb.std() or not np.array_equal(ca, cb) else 1.0
    return float(np.corrcoef(ca, cb)[0, 1])


@dataclass
class Choice:
    """One layer's calibration: default and chosen parameters, errors and zeroed weights."""

    name: str
    spiking: bool
    default: dict
    chosen: dict
    error_default: float            # layer error (float inputs) of the default quantisation
    error_chosen: float
    zeroed_default: int             # non-zero float weights that round to 0
    zeroed_chosen: int
    nonzero: int
    candidates: int
    agreement_default: float = float("nan")   # end to end (fixed circuit vs float circuit)
    agreement_chosen: float = float("nan")
    corr_default: float = float("nan")
    corr_chosen: float = float("nan")


@dataclass
class Calibration:
    """The calibrated program and the per-layer table."""

    program: Program
    layers: list[Choice] = field(default_factory=list)

    def table(self) -> str:
        """The per-layer table (agreements end to end; layer error with float inputs)."""
        head = (f"{'layer':<14} {'lam':>7} {'w exp':>9} {'vth x':>7} {'zeroed':>11} {'layer err':>15} "
                f"{'agreement':>15} {'count r':>13}")
        rows = [head, " " * 15 + "default -> chosen in each column"]
        for c in self.layers:
            exp = lambda d: ",".join(str(e) for e in d["exp"]) or "-"  # noqa: E731
            rows.append(f"{c.name:<14} {c.default['lam']:>3}->{c.chosen['lam']:<3} "
                        f"{exp(c.default):>4}->{exp(c.chosen):<4} "
                        f"{c.chosen['vth_scale']:>7.2f} "
                        f"{c.zeroed_default:>4}->{c.zeroed_chosen:<4}/{c.nonzero:<4} "
                        f"{c.error_default:>7.3f}->{c.error_chosen:<7.3f} "
                        f"{c.agreement_default:>7.3f}->{c.agreement_chosen:<7.3f} "
                        f"{c.corr_default:>6.3f}->{c.corr_chosen:<6.3f}")
        return "\n".join(rows)

    def below(self, min_agreement: float) -> Choice | None:
        """The first spiking layer whose end-to-end agreement is below ``min_agreement``."""
        for c in self.layers:
            if c.spiking and not c.agreement_chosen >= min_agreement:
                return c
        return None


def _float_layer(p: Population, kind: str) -> FloatLayer:
    fl = FloatLayer(p.name, kind, p.n, float(p.du), float(p.dv), float(p.vth),
                    np.asarray(p.bias_mant, dtype=np.float64).copy())
    fl.spiking, fl.v_scale = p.spiking, p.v_scale
    return fl


def _zeroed(float_conns: list[Connection], fixed_conns: list[Connection]) -> tuple[int, int]:
    nz = sum(int((np.asarray(c.weights) != 0).sum()) for c in float_conns)
    zero = sum(int(((np.asarray(f.weights) != 0) & (np.asarray(q.weights) == 0)).sum())
               for f, q in zip(float_conns, fixed_conns))
    return zero, nz


def _layer_error(p: Population, out: np.ndarray, ref: np.ndarray, circuit: Circuit) -> float:
    if p.spiking:
        return 1.0 - spike_agreement(out, ref)
    v = out.astype(np.float64) * np.asarray(p.v_scale)
    den = float(np.sqrt((ref ** 2).mean())) or 1.0
    return float(np.sqrt(((v - ref) ** 2).mean())) / den


def _sub_circuit(pop: Population, conns: list[Connection], sources: list[str],
                 widths: dict[str, int]) -> Circuit:
    """``pop`` alone, its external sources concatenated into one input (recurrence kept)."""
    offset, total = {}, 0
    for s in sources:
        offset[s], total = total, total + widths[s]
    sub = []
    for c in conns:
        if c.src == pop.name:
            sub.append(c)
            continue
        w = np.zeros((pop.n, total), dtype=np.asarray(c.weights).dtype)
        w[:, offset[c.src]:offset[c.src] + widths[c.src]] = c.weights
        sub.append(replace(c, src=INPUT, weights=w))
    return Circuit(total, (pop,), tuple(sub), (pop.name,), fixed_point=True)


def calibrate(program: Program, x: np.ndarray, splits=SPLITS, exp_offsets=EXP_OFFSETS,
              vth_scales=VTH_SCALES, progress: bool = False) -> Calibration:
    """Calibrate ``program``'s fixed-point layers on input spikes ``x`` [T, batch, n_in]
    (see the module docstring); returns the calibrated program and the per-layer table."""
    flt = program.float_circuit
    if program.fixed_circuit is None:
        raise ValueError("the program has no fixed-point circuit to calibrate (its default "
                         "quantisation was refused)")
    x = np.asarray(x, dtype=np.int64)
    if x.ndim == 2:
        x = x[:, None, :]
    names = [p.name for p in flt.populations]
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in emulate(flt, x, record=names).items()}
    ref_nir = {p.name: (ref[p.name] if p.spiking else flt.decode(p.name, ref[p.name]))
               for p in flt.populations}
    widths = {p.name: p.n for p in flt.populations} | {INPUT: flt.n_in}
    feed = dict(ref) | {INPUT: x}
    reports = {l.name: l for l in program.layers}
    fixed = program.fixed_circuit
    new_pops = {p.name: p for p in fixed.populations}
    new_conns = {c.name: c for c in fixed.connections}
    layers = [p for p in flt.populations if p.name not in (CLOCK, ONSET)]
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(layers), desc="calibrating", unit="layer", leave=False)
    choices: list[Choice] = []
    for p in layers:
        fconns = [c for c in flt.connections if c.dst == p.name]
        sources = list(dict.fromkeys(c.src for c in fconns if c.src != p.name))
        xs = np.concatenate([feed[s] != 0 for s in sources], axis=2).astype(np.int64) if sources \
            else np.zeros((x.shape[0], x.shape[1], 0), np.int64)
        fl = _float_layer(p, reports[p.name].kind)
        scales = vth_scales if p.spiking else (1.0,)
        seen, results = set(), []
        for s in splits:
            for o in exp_offsets:
                rep = LayerReport(p.name, fl.kind, p.n, 0, 0, 0, fl.du, fl.dv)
                q = quantise_population(fl, fconns, program.profile, rep, [], lam_scale=s, exp_offset=o)
                if q is None:
                    continue
                qpop, qconns = q
                for k in scales:
                    vth = int(np.clip(round(qpop.vth * k), 1, program.profile.vth_max)) if p.spiking \
                        else qpop.vth
                    key = (qpop.vth, vth, tuple(c.weight_exp for c in qconns),
                           tuple(np.asarray(c.weights).tobytes() for c in qconns))
                    if key in seen:
                        continue
                    seen.add(key)
                    cpop = replace(qpop, vth=vth)
                    sub = _sub_circuit(cpop, qconns, sources, widths)
                    with torch.no_grad():
                        out = emulate(sub, xs, record=[p.name])[p.name].numpy()
                    err = _layer_error(cpop, out, ref_nir[p.name], sub)
                    params = {"lam": int(qpop.vth) if p.spiking else rep.vth_mantissa, "split": s,
                              "exp_offset": o, "exp": [c.weight_exp for c in qconns if c.src not in (CLOCK, ONSET)],
                              "vth_scale": k, "vth": vth}
                    results.append((err, params, cpop, qconns))
        default = results[0]          # s = 1, o = 0, k = 1: the compiler's own choice
        best = min(results, key=lambda r: r[0])
        if not best[0] < default[0]:
            best = default
        zd, nz = _zeroed(fconns, default[3])
        zc, _ = _zeroed(fconns, best[3])
        choices.append(Choice(p.name, p.spiking, default[1], best[1], default[0], best[0], zd, zc, nz,
                              len(results)))
        new_pops[p.name] = best[2]
        for c in best[3]:
            new_conns[c.name] = c
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    calibrated = replace(fixed, populations=tuple(new_pops[p.name] for p in fixed.populations),
                         connections=tuple(new_conns[c.name] for c in fixed.connections))
    # end to end: every layer of the default and the calibrated circuit against the float one
    for label, circ in (("default", fixed), ("chosen", calibrated)):
        with torch.no_grad():
            out = {k: v.numpy() for k, v in emulate(circ, x, record=[c.name for c in choices]).items()}
        for c in choices:
            pop = circ.population(c.name)
            if pop.spiking:
                setattr(c, f"agreement_{label}", spike_agreement(out[c.name], ref[c.name]))
                setattr(c, f"corr_{label}", count_correlation(out[c.name], ref[c.name]))
            else:
                setattr(c, f"agreement_{label}", 1.0 - _layer_error(pop, out[c.name], ref_nir[c.name], circ))
    return Calibration(replace(program, fixed_circuit=calibrated), choices)


def refusal(cal: Calibration, min_agreement: float) -> Refusal | None:
    """A one-line refusal naming the first spiking layer below ``min_agreement``, else None."""
    c = cal.below(min_agreement)
    if c is None:
        return None
    return Refusal(c.name, "quantisation", f"layer {c.name!r}: spike agreement with float "
                   f"{c.agreement_chosen:.3f} after calibration is below --min-agreement {min_agreement:g}")


def with_weight_exponent(circuit: Circuit, offset: int) -> Circuit:
    """``circuit`` with every Dense's weight exponent moved by ``offset`` and its integer weights
    rescaled to keep W_int · 2^e::

        W'_int = clip(round(W_int / 2^offset), −2^b, 2^b − 1),   e' = e + offset

    offset > 0 leaves headroom in the b-bit range for learned weights to grow (coarser steps:
    one learning unit is worth 2^offset more); offset < 0 gives finer steps and clips the
    largest weights."""
    conns = []
    for c in circuit.connections:
        w, e = regridded(c, offset)
        conns.append(replace(c, weights=w, weight_exp=e))
    return replace(circuit, connections=tuple(conns))
