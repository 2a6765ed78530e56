"""Compile a NIR graph to a Lava program for a hardware profile (``hardware/*.toml``), following
the conversions of ``mappings/lava.toml``.

Steps:

1. :func:`neurocredit.chip.graph.analyse` reduces the graph to spiking populations joined by
   composed weight paths (Affine/Linear/Scale/Flatten chains; Conv1d/Conv2d/SumPool2d/AvgPool2d
   unrolled into their sparse connectivity by :mod:`neurocredit.chip.conv`), one input,
   monitored outputs.  A bias or leak starts with the layer's first input
   (:mod:`neurocredit.chip.timing`).
2. Each population becomes a Lava ``LIF`` (float parameters, NIR discretised with step dt)::

       LIF      du = 1,           dv = dt/tau,      gain = dt r / tau
       CubaLIF  du = dt/tau_syn,  dv = dt/tau_mem,  gain = r w_in dt^2 / (tau_mem tau_syn)
       IF       du = 1,           dv = 0,           gain = dt r
       W_lava[i, :] = gain_i c_i W[i, :],  bias_i = c_i (leak_i + bias gain_i b_i),
       c_i = vth_ref / v_threshold_i   (per-neuron thresholds folded into the rows)

   Each path becomes a Lava ``Dense`` (one step of delay, as every Lava Dense has).
3. Fixed point (:func:`quantise_population`): the layer's threshold mantissa lambda is the
   largest integer every limit of the profile allows (17-bit vth, 8-bit weights times 2^7,
   13-bit bias mantissa times 2^7, the 16-bit dendritic accumulator for the worst-case input of
   a step, the 24-bit current); weights get one exponent per Dense::

       vth = lambda,  W_int = round(lambda W / vth_ref / 2^e),  bias = round(64 lambda b / vth_ref)
       du_int = round(4096 du) - 1,  dv_int = round(4096 dv)

   The quantisation error of every layer is measured and reported.
4. Resources (neurons, synapses, cores) are counted against the profile.

Anything the target cannot hold raises :class:`CompileError` naming the layer and the limit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import nir
import numpy as np
import torch

from neurocredit.errors import UserError
from neurocredit.chip.graph import SPIKING_TYPES, Analysis, Refusal, analyse, depths, population_size
from neurocredit.chip.profile import Profile, load_mapping, load_profile
from neurocredit.neurons.fixed_point import sign_mode_of
from neurocredit.chip.ir import INPUT, Circuit, Connection, Population
from neurocredit.chip.conv import CONV_TYPES, shared_weights
from neurocredit.chip.timing import CLOCK, ONSET, drive_connections, onset_populations


class CompileError(UserError):
    """The target cannot hold the graph; ``refusals`` name each layer and limit."""

    def __init__(self, refusals: list[Refusal]) -> None:
        self.refusals = refusals
        lines = [r.message for r in refusals]
        super().__init__(lines[0] if len(lines) == 1 else
                         f"{len(lines)} problems: " + "; ".join(lines))


@dataclass
class FloatLayer:
    """One population in Lava float parameters (after folding gains and thresholds)."""

    name: str
    kind: str
    n: int
    du: float
    dv: float
    vth: float
    bias: np.ndarray
    notes: list[str] = field(default_factory=list)
    spiking: bool = True
    v_scale: np.ndarray | float = 1.0     # NIR voltage per unit of the Lava float voltage


@dataclass
class LayerReport:
    """Resources and quantisation of one population (and its incoming Dense connections)."""

    name: str
    kind: str
    neurons: int
    synapses: int
    fan_in: int
    cores: int
    du: float
    dv: float
    vth_mantissa: int | None = None
    weight_exp: dict[str, int] = field(default_factory=dict)
    weight_rel_rms_error: float | None = None    # ||W_q - W|| / ||W||
    weight_max_error: float | None = None        # max |W_q - W| in units of the threshold
    bias_max_error: float | None = None          # max |b_q - b| in units of the threshold
    zeroed_fraction: float | None = None         # non-zero weights that became 0
    decay_error: tuple[float, float] | None = None   # |du_q - du|, |dv_q - dv|
    binding_limit: str | None = None
    notes: list[str] = field(default_factory=list)
    shared_weights: int = 0          # distinct weights of its convolutions (0: none)


@dataclass
class Program:
    """A compiled graph: the float and fixed-point circuits (same structure), reports."""

    profile: Profile
    dt: float
    float_circuit: Circuit
    fixed_circuit: Circuit | None
    layers: list[LayerReport]
    outputs: dict[str, str]
    depth: dict[str, int]
    folded: dict[str, str]
    analysis: Analysis
    quantisation_refusals: list[Refusal] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)   # all (non-strict compiles only)

    def circuit(self, fixed_point: bool) -> Circuit:
        if fixed_point:
            if self.fixed_circuit is None:
                raise CompileError(self.quantisation_refusals)
            return self.fixed_circuit
        return self.float_circuit

    @property
    def totals(self) -> dict[str, int]:
        return {"neurons": sum(l.neurons for l in self.layers),
                "synapses": sum(l.synapses for l in self.layers),
                "cores": sum(l.cores for l in self.layers)}


# -- 2. neuron conversion ---------------------------------------------------------------
def _arr(node: nir.NIRNode, attr: str, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(getattr(node, attr), dtype=np.float64).reshape(-1)
                           if np.size(getattr(node, attr)) > 1 else
                           np.asarray(getattr(node, attr), dtype=np.float64).reshape(()), (n,)).copy()


def _uniform(name: str, label: str, values: np.ndarray, refusals: list[Refusal]) -> float:
    if not np.all(np.isfinite(values)):
        refusals.append(Refusal(name, "quantisation", f"layer {name!r}: {label} is not finite"))
        return float("nan")
    if np.ptp(values) > 1e-6 * max(1e-30, float(np.abs(values).max())):
        refusals.append(Refusal(name, "capacity", f"layer {name!r}: {label} differs between "
                                f"neurons ({values.min():.4g}..{values.max():.4g}); a Lava LIF "
                                f"process has one {label} per layer (scalar du/dv)"))
    return float(values.mean())


def convert_neuron(name: str, node: nir.NIRNode, dt: float,
                   refusals: list[Refusal]) -> tuple[FloatLayer, np.ndarray, np.ndarray]:
    """Float Lava parameters of one population; returns (layer, row gain, bias gain).

    Leaky integrators (LI, CubaLI) become a Lava LIF that never spikes (vth = inf in float,
    the largest 17-bit vth in fixed point) whose voltage is read out."""
    kind = type(node).__name__
    n = population_size(node)
    spiking = kind in SPIKING_TYPES
    vth = _arr(node, "v_threshold", n) if spiking else np.ones(n)
    v_reset = _arr(node, "v_reset", n) if getattr(node, "v_reset", None) is not None else np.zeros(n)
    r = _arr(node, "r", n)
    notes: list[str] = []
    if np.any(v_reset != 0):
        refusals.append(Refusal(name, "unsupported", f"layer {name!r}: v_reset = {v_reset.max():.4g} "
                                f"is not supported (Lava's LIF resets v to 0)"))
    if not np.all(np.isfinite(vth)) or np.any(vth <= 0):
        refusals.append(Refusal(name, "unsupported", f"layer {name!r}: v_threshold must be finite and "
                                f"> 0 (Lava spikes when v > vth >= 0)"))
        vth = np.ones(n)
    if kind in ("LIF", "LI"):
        tau = _arr(node, "tau", n)
        dv = _uniform(name, "dt/tau", dt / tau, refusals)
        du, gain, bias_gain = 1.0, dt * r / tau, dt * r / tau
        leak = dt / tau * _arr(node, "v_leak", n)
    elif kind in ("CubaLIF", "CubaLI"):
        tau_s, tau_m = _arr(node, "tau_syn", n), _arr(node, "tau_mem", n)
        w_in = _arr(node, "w_in", n)
        du = _uniform(name, "dt/tau_syn", dt / tau_s, refusals)
        dv = _uniform(name, "dt/tau_mem", dt / tau_m, refusals)
        gain = r * w_in * dt * dt / (tau_m * tau_s)
        bias_gain = r * w_in * dt / tau_m
        leak = dt / tau_m * _arr(node, "v_leak", n)
    else:  # IF
        du, dv = 1.0, 0.0
        gain = bias_gain = dt * r
        leak = np.zeros(n)
    for label, d in (("dt/tau (du)", du), ("dt/tau (dv)", dv)):
        if math.isfinite(d) and not 0.0 <= d <= 1.0:
            refusals.append(Refusal(name, "unsupported", f"layer {name!r}: {label} = {d:.4g} is outside "
                                    f"[0, 1]: the time constant is shorter than dt = {dt:g} s"))
    if not spiking and not dv > 0:
        refusals.append(Refusal(name, "unsupported", f"layer {name!r}: a leaky integrator needs "
                                f"dt/tau > 0 to keep its voltage within the 24-bit state"))
    vth_ref = float(vth.max())
    c = vth_ref / vth
    layer = FloatLayer(name, kind, n, du, dv, vth_ref if spiking else float("inf"), c * leak, notes)
    layer.v_scale = 1.0 / c
    layer.spiking = spiking
    return layer, gain * c, bias_gain * c


# -- 3. fixed point -----------------------------------------------------------------------
def _round_even(x: np.ndarray) -> np.ndarray:
    return 2.0 * np.round(x / 2.0)


def quantise_population(layer: FloatLayer, conns: list[Connection], profile: Profile,
                        report: LayerReport, refusals: list[Refusal],
                        lam_scale: float = 1.0, exp_offset: int = 0,
                        ) -> tuple[Population, list[Connection]] | None:
    """Fixed-point LIF and Dense parameters for one population (see the module docstring).

    ``lam_scale`` (<= 1) lowers the threshold mantissa below the largest the limits allow and
    ``exp_offset`` shifts every Dense's weight exponent from the one that fits its largest weight
    (negative: finer weights, the largest clipped); :mod:`neurocredit.chip.quantise` searches them."""
    name = layer.name
    ref = layer.vth if layer.spiking else 1.0     # float units that become lambda << 6
    wn = [np.asarray(c.weights, dtype=np.float64) / ref for c in conns]
    bn = np.asarray(layer.bias, dtype=np.float64) / ref
    if any(not np.all(np.isfinite(w)) for w in wn) or not np.all(np.isfinite(bn)):
        refusals.append(Refusal(name, "quantisation", f"layer {name!r}: weights or bias are not "
                                f"finite (NaN/inf cannot be quantised to {profile.get('weights.mantissa_bits')}-bit weights)"))
        return None
    e_min, e_max = int(profile.get("weights.exponent_min")), int(profile.get("weights.exponent_max"))
    row_sum = sum(np.abs(w).sum(axis=1) for w in wn) if wn else np.zeros(layer.n)
    worst = float(np.max(row_sum)) if layer.n else 0.0
    fan_in = sum(w.shape[1] for w in wn)
    caps: dict[str, float] = {"vth": float(profile.vth_max)}
    for c, w in zip(conns, wn):
        m = float(np.abs(w).max()) if w.size else 0.0
        if m > 0:
            caps[f"weights of {c.name}"] = profile.weight_limit(sign_mode_of(torch.as_tensor(w))) * 2.0 ** e_max / m
    bmax = float(np.abs(bn).max()) if bn.size else 0.0
    if bmax > 0:
        caps["bias"] = profile.bias_mant_max * 2.0 ** profile.bias_exp_max / (2 ** profile.vth_shift * bmax)
    if worst > 0:
        caps["accumulator"] = profile.accumulator_max / worst
        caps["current"] = profile.state_max / (2 ** profile.act_shift * worst / max(layer.du, 1e-12))
    if not layer.spiking and (worst > 0 or bmax > 0):
        # v of an integrator is not reset: keep its worst case below the never-reached threshold
        v_room = (profile.vth_max << profile.vth_shift) - 1
        caps["voltage"] = v_room / (2 ** profile.act_shift * (worst / max(layer.du, 1e-12) + bmax)
                                    / max(layer.dv, 1e-12))
    binding = min(caps, key=caps.get)
    lam = int(math.floor(min(caps.values()) * min(1.0, lam_scale)))
    report.binding_limit = binding
    floor = int(profile.get("compiler.min_threshold_mantissa"))
    if lam < floor:
        if binding == "accumulator":
            need = math.ceil(math.log2(floor * worst + 1)) + 1
            msg = (f"layer {name!r}: fan-in {fan_in} with a worst-case input of {worst:.4g} x threshold "
                   f"per step needs a {need}-bit dendritic accumulator at the minimum threshold "
                   f"resolution {floor}; the target's accumulator holds "
                   f"{profile.get('neuron.accumulator_bits')} bits (max {profile.accumulator_max})")
            refusals.append(Refusal(name, "fan-in", msg))
        elif binding == "current":
            refusals.append(Refusal(name, "fan-in", f"layer {name!r}: worst-case synaptic current "
                                    f"{worst / max(layer.du, 1e-12):.4g} x threshold overflows the "
                                    f"{profile.get('neuron.state_bits')}-bit current at the minimum "
                                    f"threshold resolution {floor}"))
        elif binding == "voltage":
            refusals.append(Refusal(name, "capacity", f"layer {name!r}: the worst-case voltage of this "
                                    f"leaky integrator (input {worst:.4g} per step, dt/tau = {layer.dv:.4g}) "
                                    f"overflows the {profile.get('neuron.state_bits')}-bit state at the "
                                    f"minimum resolution {floor}"))
        else:
            what = "bias" if binding == "bias" else "weights"
            big = bmax if binding == "bias" else max(float(np.abs(w).max()) for w in wn)
            limit = (f"{profile.bias_mant_max}·2^{profile.bias_exp_max}" if binding == "bias"
                     else f"{profile.get('weights.max_weight')}·2^{e_max}")
            refusals.append(Refusal(name, "quantisation", f"layer {name!r}: {what} up to {big:.4g} x "
                                    f"threshold do not quantise: at the minimum threshold resolution "
                                    f"{floor} they exceed the largest {what[:-1] if what == 'weights' else what} "
                                    f"{limit} of the target"))
        return None
    # weights: one exponent per Dense, 8-bit mantissa, mixed sign even
    q_conns, err2, ref2, max_err, zeroed, nonzero = [], 0.0, 0.0, 0.0, 0, 0
    for c, w in zip(conns, wn):
        wa = lam * w
        mode = sign_mode_of(torch.as_tensor(wa))
        wlim = profile.weight_limit(mode)
        m = float(np.abs(wa).max()) if wa.size else 0.0
        e = 0 if m == 0 else int(np.clip(math.ceil(math.log2(m / wlim)) + exp_offset, e_min, e_max))
        scaled = wa / 2.0 ** e
        wi = _round_even(scaled) if mode == "mixed" else np.round(scaled)
        lo = -wlim if mode in ("mixed", "inhibitory") else 0
        hi = wlim if mode in ("mixed", "excitatory") else 0
        wi = np.clip(wi, lo, hi).astype(np.int64)
        back = wi * 2.0 ** e / lam
        err2 += float(((back - w) ** 2).sum())
        ref2 += float((w ** 2).sum())
        max_err = max(max_err, float(np.abs(back - w).max()) if w.size else 0.0)
        nz = w != 0
        nonzero += int(nz.sum())
        zeroed += int((nz & (wi == 0)).sum())
        report.weight_exp[c.name] = e
        q_conns.append(Connection(c.name, c.src, c.dst, wi, e, 8, sign_mode_of(torch.as_tensor(wi))))
    report.weight_rel_rms_error = math.sqrt(err2 / ref2) if ref2 > 0 else 0.0
    report.weight_max_error = max_err
    report.zeroed_fraction = zeroed / nonzero if nonzero else 0.0
    limit = float(profile.get("compiler.max_zeroed_weight_fraction"))
    if report.zeroed_fraction > limit:
        refusals.append(Refusal(name, "quantisation", f"layer {name!r}: {100 * report.zeroed_fraction:.0f} % "
                                f"of its non-zero weights round to 0 with "
                                f"{profile.get('weights.mantissa_bits')}-bit weights and one exponent per "
                                f"connection (limit {100 * limit:.0f} %): the weights do not quantise"))
        return None
    # bias: mantissa 13-bit signed, exponent 0..7, in v units (threshold = lam << 6)
    bv = 2.0 ** profile.vth_shift * lam * bn
    exp = np.zeros(layer.n, dtype=np.int64)
    while True:
        over = np.abs(np.round(bv / 2.0 ** exp)) > profile.bias_mant_max
        if not over.any() or (exp[over] >= profile.bias_exp_max).all():
            break
        exp[over & (exp < profile.bias_exp_max)] += 1
    mant = np.clip(np.round(bv / 2.0 ** exp), -profile.bias_mant_max - 1, profile.bias_mant_max).astype(np.int64)
    report.bias_max_error = float(np.abs(mant * 2.0 ** exp / (2.0 ** profile.vth_shift * lam) - bn).max()) \
        if layer.n else 0.0
    # decays: Lava decays u by (4096 - du - 1)/4096 and v by (4096 - dv)/4096
    unity, dmax = profile.decay_unity, profile.decay_max
    du_i = int(np.clip(round(unity * layer.du) - 1, 0, dmax))
    dv_i = int(np.clip(round(unity * layer.dv), 0, dmax))
    report.decay_error = (abs((du_i + 1) / unity - layer.du), abs(dv_i / unity - layer.dv))
    report.vth_mantissa = lam
    v_scale = np.asarray(layer.v_scale) * ref / float(lam << profile.vth_shift)
    vth_i = lam if layer.spiking else profile.vth_max
    return Population(name, layer.n, du_i, dv_i, vth_i, mant, exp, layer.spiking, v_scale), q_conns


# -- 4. resources ----------------------------------------------------------------------------
def check_resources(layers: list[LayerReport], profile: Profile, refusals: list[Refusal]) -> None:
    core_bits = profile.synapse_bits_per_core
    for l in layers:
        if l.fan_in * profile.bits_per_synapse > core_bits:
            refusals.append(Refusal(l.name, "capacity", f"layer {l.name!r}: fan-in {l.fan_in} synapses x "
                                    f"{profile.bits_per_synapse} bits exceeds one core's synaptic memory "
                                    f"({core_bits} bits), and a neuron's synapses cannot be split across cores"))
    total = sum(l.cores for l in layers)
    if total > profile.cores:
        big = max(layers, key=lambda l: l.cores)
        refusals.append(Refusal(big.name, "capacity", f"the graph needs {total} cores, more than the "
                                f"{profile.cores} of target {profile.name!r} "
                                f"({profile.get('chip.chips')} chip(s) x {profile.get('chip.cores_per_chip')} "
                                f"cores); largest: layer {big.name!r} with {big.neurons} neurons and "
                                f"{big.synapses} synapses = {big.cores} cores "
                                f"({profile.neurons_per_core} neurons/core, {core_bits} synapse bits/core)"))
    syn = sum(l.synapses for l in layers)
    syn_max = int(profile.get("chip.synapses_per_chip")) * int(profile.get("chip.chips"))
    if syn > syn_max:
        big = max(layers, key=lambda l: l.synapses)
        refusals.append(Refusal(big.name, "capacity", f"the graph has {syn} synapses, more than the "
                                f"{syn_max} of target {profile.name!r}; largest: layer {big.name!r} "
                                f"({big.synapses})"))


# -- driver ------------------------------------------------------------------------------------
def graph_dt(graph: nir.NIRGraph, profile: Profile, dt: float | None) -> float:
    if dt is not None:
        return float(dt)
    meta = getattr(graph, "metadata", None) or {}
    if "dt" in meta:
        return float(np.asarray(meta["dt"]))
    # neurocredit's learning metadata, else the producer's convention (snnTorch r = tau/dt,
    # Rockpool, Sinabs dt = 1, Norse): neurocredit.nir.conventions
    from neurocredit.nir.conventions import detect
    conv = detect(graph)
    return conv.dt if conv.producer != "unknown" else profile.dt


def reset_refusals(graph: nir.NIRGraph, analysis: Analysis) -> list[Refusal]:
    """Lava's LIF resets v to 0 in the step of the spike; a graph whose neurocredit metadata says it
    was trained with another reset (snnTorch's subtract, or a delayed reset) would run differently."""
    try:
        from neurocredit.nir.schema import read_learning
        spec = read_learning(graph, strict=False)
    except ImportError:
        return []
    disc = (spec or {}).get("discretisation") or {}
    if not isinstance(disc, dict) or (disc.get("reset", "zero") == "zero" and not disc.get("reset_delay")):
        return []
    how = f"reset={disc.get('reset')!r}, reset_delay={disc.get('reset_delay')}"
    return [Refusal(name, "unsupported", f"layer {name!r}: the graph was trained with {how}; Lava's LIF "
                    f"resets v to 0 in the step it spikes (reset='zero', no delay)")
            for name, node in analysis.populations.items() if type(node).__name__ in SPIKING_TYPES]


def compile_graph(graph: nir.NIRGraph | str, profile: str | Profile = "loihi2",
                  fixed_point: bool = True, dt: float | None = None,
                  strict: bool = True, exact_timing: bool = True) -> Program:
    """Compile ``graph`` (a ``nir.NIRGraph`` or a path to a NIR file) for ``profile``.

    ``fixed_point`` makes quantisation failures refusals (otherwise they are kept in
    ``Program.quantisation_refusals`` and only the float circuit exists).  With ``strict``
    every refusal raises :class:`CompileError`; otherwise the program is returned as far as it
    goes (used by :mod:`neurocredit.lava.acceptance`).  With ``exact_timing`` (default) a layer's
    bias and leak start with its first input (:mod:`neurocredit.chip.timing`: two small onset
    populations), so that the circuit equals the NIR simulation shifted by each layer's depth;
    without, they are the neurons' own bias, acting from step 1.
    """
    if isinstance(graph, str):
        from neurocredit.nir.load import read_graph
        graph = read_graph(graph)         # the tolerant reader every command uses
    prof = load_profile(profile)
    mapping = load_mapping("lava")
    dt = graph_dt(graph, prof, dt)
    analysis = analyse(graph, mapping.get("unsupported", {}).get("reason", ""))
    refusals = list(analysis.refusals) + reset_refusals(graph, analysis)
    float_pops, float_conns, layers, fl_layers = [], [], [], []
    qrefusals: list[Refusal] = []
    depth = depths(analysis)
    max_depth = max(depth.values(), default=0)
    order = sorted(analysis.populations, key=lambda n: (depth.get(n, 1 << 30), n))
    for name in order:
        node = analysis.populations[name]
        if any(r.node == name for r in refusals):
            continue
        fl, gain, bias_gain = convert_neuron(name, node, dt, refusals)
        incoming = [p for p in analysis.paths if p.dst == name]
        path_bias = sum((p.bias for p in incoming), np.zeros(fl.n))
        d = depth.get(name)
        drive: list[Connection] = []
        if exact_timing and d and (np.any(path_bias != 0) or np.any(fl.bias != 0)):
            # bias and leak from the layer's first input on, through the onset populations
            drive = drive_connections(name, d, max_depth, gain * path_bias, fl.bias, fl.du)
            fl.bias = np.zeros(fl.n)
            fl.notes.append(f"bias/leak driven from step {d + 1} by the onset populations (exact timing)")
        else:
            fl.bias = fl.bias + bias_gain * path_bias
            if fl.kind in ("CubaLIF", "CubaLI") and np.any(path_bias != 0):
                fl.notes.append("Affine bias applied to v at its steady state (its transient through "
                                "the synapse, about tau_syn/dt steps, is not reproduced)")
            if np.any(fl.bias != 0):
                fl.notes.append("bias acts from step 1, before the layer's first input (exact_timing off)")
        bias = fl.bias
        conns = []
        sparse: set[str] = {c.name for c in drive}     # counted by their synapses, not n x columns
        shared = 0
        for p in incoming:
            src = INPUT if p.src == analysis.input else p.src
            cname = "+".join(p.via) if p.via else f"{p.src}->{name}"
            conns.append(Connection(cname, src, name, gain[:, None] * p.dense(), 0, 8, "mixed"))
            convs = [v for v in p.via if type(analysis.nodes[v]).__name__ in CONV_TYPES]
            if convs:
                sparse.add(cname)
                shared += sum(shared_weights(analysis.nodes[v]) for v in p.via)
        conns += drive
        float_pops.append(Population(name, fl.n, fl.du, fl.dv, fl.vth, bias, np.zeros(fl.n, np.int64),
                                     fl.spiking, fl.v_scale))
        float_conns.extend(conns)
        # a convolution's synapses exist where its kernel covers the input (and share its weights)
        nnz = [np.count_nonzero(c.weights, axis=1) if c.name in sparse else np.full(fl.n, c.weights.shape[1])
               for c in conns]
        per_neuron = sum(nnz, np.zeros(fl.n, np.int64))
        fan_in = int(per_neuron.max()) if fl.n else 0
        syn = int(per_neuron.sum())
        if shared:
            fl.notes.append(f"convolution/pooling: {syn} synapses share {shared} distinct weights")
        rep = LayerReport(name, fl.kind, fl.n, syn, fan_in, prof.cores_for(fl.n, syn), fl.du, fl.dv,
                          notes=list(fl.notes), shared_weights=shared)
        layers.append(rep)
        fl_layers.append((fl, conns, rep))
    clocked = any(c.src in (CLOCK, ONSET) for c in float_conns)
    if clocked:
        pops_f, conns_f = onset_populations(max_depth, fixed_point=False)
        float_pops = pops_f + float_pops
        float_conns = conns_f + float_conns
        n_on = sum(p.n for p in pops_f)       # both share one core
        for p in reversed(pops_f):
            layers.insert(0, LayerReport(p.name, "onset", p.n, p.n * max_depth, max_depth,
                                         prof.cores_for(n_on, n_on * max_depth) if p.name == CLOCK else 0,
                                         1.0, 0.0, notes=["bias onset at each layer's depth "
                                                          "(chip/timing.py); clock and onset share a core"]
                                         if p.name == CLOCK else []))
    check_resources(layers, prof, refusals)
    fixed_pops, fixed_conns = [], []
    if clocked:
        fixed_pops, fixed_conns = onset_populations(max_depth, fixed_point=True)
    for fl, conns, rep in fl_layers:
        q = quantise_population(fl, conns, prof, rep, qrefusals)
        if q is not None:
            fixed_pops.append(q[0])
            fixed_conns.extend(q[1])
    outputs = analysis.outputs
    out_pops = list(dict.fromkeys(outputs.values()))
    float_circuit = Circuit(analysis.input_size, float_pops, float_conns, out_pops, False,
                            {"dt": dt})
    fixed_circuit = None
    if not qrefusals and not refusals:
        fixed_circuit = Circuit(analysis.input_size, fixed_pops, fixed_conns, out_pops, True, {"dt": dt})
    if fixed_point:
        refusals.extend(qrefusals)
    if strict and refusals:
        raise CompileError(refusals)
    if strict and not out_pops:
        raise CompileError([Refusal("graph", "structure", "the graph has no Output fed by a spiking layer")])
    return Program(prof, dt, float_circuit, fixed_circuit, layers, outputs, depth,
                   analysis.folded, analysis, qrefusals, refusals)
