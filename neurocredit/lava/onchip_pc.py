"""Relaxed predictive coding on chip: locality check, circuit, training.

Predictive coding (Whittington & Bogacz 2017; relaxations after Millidge, Tschantz, Seth &
Buckley 2020, arXiv:2010.01047) with fixed predictions μ_l = W_l f(v_{l−1}) settles

    v_l ← v_l + γ (ε_l − B_l ε_{l+1}),   ε_l = μ_l − v_l,   ε_L = μ_L − y*

and learns ΔW_l = −η ε_l ⊗ f(v_{l−1}).  Exact PC has B_l = W_{l+1}ᵀ (and a backward derivative
f'(v_l)): a synapse of B_l would have to read the transposed weight of the next layer, so
:func:`check_onchip_pc` refuses it, naming the quantity ("needs W2ᵀ, the transposed weight of
layer fc2").  The relaxed variant that runs on chip (:data:`PC_ONCHIP`) has

* learned backward weights B_l with their own local rule ΔB_l = −η f(v_l) ⊗ ε_{l+1}
  (Term(−1, pre·post) of the feedback pathway: pre = the error ε_{l+1} the synapse carries,
  post = the spike of its post-synaptic value neuron), Kolen-Pollack-like;
* no backward derivative (the pathway's ``derivative=False``);
* one-to-one error wiring (Γ_l = I) and no weight decay: Γ_l learning (``dense_error``) is not
  compiled, and the decay λη of ``pc_relaxed`` (1e-2 · η per step) is below the learning
  engine's smallest scaling constant 2^-7 at t_epoch = 1, so rules naming them are refused
  with the reason.

The circuit (fixed point, Lava's arithmetic): value neurons are ``ThirdFactorLIF`` populations
whose spikes are f(v_l) (rate code); their third-factor compartment is the error unit ε_l.  The
output error population is a ``GradedVec`` holding ε_L = g (z_L − y*).  The hidden error
ε_l = (B_l ε_{l+1}) >> shift arrives through the plastic feedback connection B_l from layer
l+1's ``s_err``.  Every connection has a one-step delay, so the chip runs one Jacobi step of the
relaxation above per time step with γ = 1; with fixed predictions it settles (ε_l = B_l ε_{l+1})
within L − 1 steps and then tracks the input.  Weight updates are Loihi three-factor products
generated from the rule's Terms by :func:`neurocredit.lava.learning.products`:
ΔW = m 2^k x0 (y3 − y2) (pre spike × signed error), and the same products on B_l with the roles
of its pre payload and post spike exchanged (see :mod:`neurocredit.sim.emulator_pc`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from neurocredit.lava import learning as LR
from neurocredit.lava.profile import Profile, load_profile
from neurocredit.rules.dynamical import PC_PAPER, PC_STEPS
from neurocredit.rules.factors import Factor
from neurocredit.rules.library import DELTA
from neurocredit.rules.locality import check_locality
from neurocredit.rules.rule import Feedback, Rule, Term
from neurocredit.sim.emulator import Circuit

PC_ONCHIP = Rule(
    name="pc_onchip", title="Predictive coding, relaxed for the chip",
    paper=PC_PAPER,
    equation="v_l ← v_l + γ(ε_l − B_l ε_{l+1}), ε_l = μ_l − v_l (fixed predictions, γ = 1 per chip step); "
             "ΔW_l = −η ε_l ⊗ f(v_{l−1}),  ΔB_l = −η f(v_l) ⊗ ε_{l+1}",
    forward=(DELTA,),
    feedback=Feedback("learned", "next", derivative=False, drive="error",
                      terms=(Term(-1.0, (Factor.PRE, Factor.POST)),)),
    local=True, dynamics="predictive_coding", hardware=True,
    params=tuple(sorted((*PC_STEPS, ("fixed_prediction", True), ("dense_error", False)))))
"""The relaxed PC rule compiled to chip (not registered in the library: it is ``pc_relaxed``
without Γ_l learning and without the decay the learning engine cannot hold)."""


def check_onchip_pc(rule: Rule, layer_names: list[str], lr: float = 2 ** -4,
                    profile: str | Profile = "loihi2") -> None:
    """Refuse a predictive-coding rule that cannot learn on chip, naming why.

    First locality (:func:`neurocredit.rules.locality.check_locality`: exact PC needs
    W_{l+1}ᵀ), then what this compiler supports: fixed predictions, a learned feedback pathway
    from the next layer's error without backward derivative, one-to-one error units, terms
    whose constants ``lr · c`` fit the learning engine's scaling constants."""
    violations = check_locality(rule, layer_names)
    if violations:
        raise LR.OnChipError(f"rule '{rule.name}' cannot learn on chip, it is not local: "
                             + "; ".join(str(v) for v in violations))
    if rule.dynamics != "predictive_coding":
        raise LR.OnChipError(f"rule '{rule.name}' is not a predictive-coding rule (dynamics "
                             f"'{rule.dynamics}'); use neurocredit.lava.learning for one-pass pathways")
    fb = rule.feedback
    if fb is None or fb.kind != "learned" or fb.source != "next" or fb.drive != "error":
        raise LR.OnChipError(f"rule '{rule.name}': on-chip PC needs learned backward weights B_l driven by "
                             f"the next layer's error, got {rule.feedback_needed()}")
    if fb.derivative:
        raise LR.OnChipError(f"rule '{rule.name}': the backward derivative f'(v_l) on B_l ε_(l+1) is not "
                             f"compiled (use the no-derivative relaxation, derivative=False)")
    if not rule.param("fixed_prediction", False):
        raise LR.OnChipError(f"rule '{rule.name}': predictions recomputed from relaxed values are not "
                             f"compiled (fixed_prediction=True)")
    if rule.param("dense_error", False):
        raise LR.OnChipError(f"rule '{rule.name}': dense learned error connections Γ_l (dense_error) are "
                             f"not compiled; the chip wires error units one to one")
    prof = load_profile(profile)
    for where, terms, need in (("forward", rule.forward, {Factor.THIRD, Factor.PRE}),
                               ("feedback", fb.terms, {Factor.PRE, Factor.POST})):
        for term in terms:
            if set(term.factors) != need:
                raise LR.OnChipError(f"rule '{rule.name}': {where} term {term} is not compiled (supported: "
                                     f"{'·'.join(sorted(f.value for f in need))})")
            try:
                LR.scaling_constant(lr * term.coef * (fb.lr_scale if where == "feedback" else 1.0), prof)
            except LR.OnChipError as exc:
                raise LR.OnChipError(f"rule '{rule.name}': {where} term {term}: {exc}") from None


def _pathway_rule(rule: Rule) -> Rule:
    """The one-pass pathway the settled fixed-prediction relaxation reduces to, for
    :func:`neurocredit.lava.learning.build_circuit` (FA from the next layer's error, no f')."""
    return replace(rule, dynamics="feedforward", feedback=Feedback("random", "next", derivative=False))


def build_pc_circuit(base: Circuit, rule: Rule, backward: list[np.ndarray], spec: LR.OnChipSpec,
                     profile: str | Profile = "loihi2") -> Circuit:
    """On-chip relaxed-PC version of a compiled feedforward fixed-point circuit ``base``.

    ``backward[l]`` is the initial float B_l (n_l x n_{l+1}); it becomes the plastic integer
    feedback connection ``B{l+1}`` whose products come from the pathway's Terms."""
    names = [f"fc{i + 1}" for i in range(len(base.populations))]
    check_onchip_pc(rule, names, spec.lr, profile)
    if spec.gate is not None:
        raise LR.OnChipError(f"rule '{rule.name}' has no backward derivative: OnChipSpec.gate must be None")
    prof = load_profile(profile)
    circ = LR.build_circuit(base, _pathway_rule(rule), backward, spec, profile)
    fb_lr = spec.lr * rule.feedback.lr_scale
    b_prods = []
    for term in rule.feedback.terms:      # c · pre(ε_(l+1), as y2/y3) · post(spike, as x0)
        m, k = LR.scaling_constant(fb_lr * term.coef, prof)
        b_prods += [(m, k, "y3", "x0"), (-m, k, "y2", "x0")]
    transposed = []
    for c in circ.connections:
        if c.name.startswith("B") and c.dst_port == "third":
            c.plastic = tuple(b_prods)
            transposed.append(c.name)
    circ.meta.update({"rule": rule.name, "transposed": tuple(transposed),
                      "dw_B": LR.dw_string(tuple(b_prods))})
    return circ


def inference_circuit(circuit: Circuit, weights: dict[str, np.ndarray]) -> Circuit:
    """The forward network with learned weights (B connections dropped)."""
    fwd = Circuit(circuit.n_in, circuit.populations,
                  [c for c in circuit.connections if c.name not in circuit.meta.get("transposed", ())],
                  circuit.outputs, True, dict(circuit.meta))
    return LR.inference_circuit(fwd, weights)


def train_pc(circuit: Circuit, data, epochs: int, steps: int = 16, blank: int = 4, seed: int = 0,
             samples: int | None = None, log=print) -> list[dict]:
    """On-chip relaxed-PC training in the fixed-point emulator (learning every step, W and B),
    test accuracy after every epoch (argmax of output spike counts, learned integer weights).
    Each history entry also holds ``angle_B``: the mean over layers of ∠(B_l, W_{l+1}ᵀ) in degrees."""
    import time as _time
    from neurocredit.sim.emulator_pc import emulate_learning_pc
    x_tr, y_tr = data.x_train.numpy(), data.y_train.numpy()
    x_te, y_te = data.x_test.numpy(), data.y_test.numpy()
    n_classes = circuit.meta["n_target"]
    weights = {c.name: np.asarray(c.weights) for c in circuit.connections}

    def measure(epoch: int, seen: int, secs: float = 0.0) -> dict:
        acc = LR.accuracy(inference_circuit(circuit, weights), x_te, y_te, steps, seed + 999)
        return {"epoch": epoch, "samples": seen, "test_acc": acc, "angle_B": backward_angle(circuit, weights),
                "seconds": secs}

    history = [measure(0, 0)]
    log(f"epoch 0: test accuracy {100 * history[0]['test_acc']:.2f} % (untrained), "
        f"∠(B, Wᵀ) {history[0]['angle_B']:.1f}°")
    rng = np.random.default_rng(seed)
    seen = 0
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(len(y_tr))[:samples]
        stream = LR.sample_stream(x_tr[perm], y_tr[perm], n_classes, steps, blank, seed * 1000 + epoch)
        for c in circuit.connections:
            c.weights = weights[c.name]
        t0 = _time.perf_counter()
        weights, _ = emulate_learning_pc(circuit, stream, rng_seed=seed + epoch)
        seen += len(perm)
        history.append(measure(epoch, seen, _time.perf_counter() - t0))
        h = history[-1]
        log(f"epoch {epoch}: {seen} samples streamed (emulator, {h['seconds']:.1f} s), test accuracy "
            f"{100 * h['test_acc']:.2f} %, ∠(B, Wᵀ) {h['angle_B']:.1f}°")
    for c in circuit.connections:
        c.weights = weights[c.name]
    return history


def backward_angle(circuit: Circuit, weights: dict[str, np.ndarray]) -> float:
    """Mean over hidden layers of the angle (degrees) between B_l and W_{l+1}ᵀ (integer weights)."""
    fwd = [c for c in circuit.connections if c.plastic and c.name not in circuit.meta.get("transposed", ())]
    angles = []
    for l, name in enumerate(circuit.meta.get("transposed", ())):
        b = np.asarray(weights[name], float).ravel()
        w = np.asarray(weights[fwd[l + 1].name], float).T.ravel()
        cos = b @ w / max(np.linalg.norm(b) * np.linalg.norm(w), 1e-12)
        angles.append(float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
    return float(np.mean(angles)) if angles else float("nan")


def initial_backward(sizes: list[int], seed: int, scale: float = 1.0) -> list[np.ndarray]:
    """Random initial B_l (n_l x n_{l+1}), normal with std scale / sqrt(n_l), as FA's."""
    rng = np.random.default_rng(seed)
    return [rng.normal(0, scale / np.sqrt(sizes[l + 1]), (sizes[l + 1], sizes[l + 2]))
            for l in range(len(sizes) - 2)]


def circuit_from_nir(graph, spec: LR.OnChipSpec | None = None,
                     profile: str | Profile = "loihi2") -> Circuit:
    """The on-chip relaxed-PC circuit of a NIR graph (or file path) that carries its learning
    rule (``neurocredit.nir.load.attach_rule`` / export): the rule and the initial backward
    matrices B_l are read from the file, the network is compiled by
    :func:`neurocredit.lava.compile.compile_graph`."""
    from pathlib import Path

    from neurocredit.lava.compile import compile_graph
    from neurocredit.nir import schema
    from neurocredit.nir.load import read_graph

    if isinstance(graph, (str, Path)):
        graph = read_graph(graph)
    learning = schema.read_learning(graph)
    if learning is None:
        raise LR.OnChipError("the NIR graph carries no learning rule; attach one with "
                             "neurocredit.nir.load.attach_rule (or `neurocredit export --rule`)")
    rule = schema.rule_from_dict(learning["rule"])
    backward = []
    for fb in learning.get("feedback", []):
        node, key = fb["matrix"]["node"], fb["matrix"]["key"]
        meta = getattr(graph.nodes.get(node), "metadata", None) or {}
        if key not in meta:
            raise LR.OnChipError(f"feedback matrix {key!r} of node {node!r} is missing from the NIR graph")
        backward.append(np.asarray(meta[key], dtype=np.float64))
    base = compile_graph(graph, profile).fixed_circuit
    return build_pc_circuit(base, rule, backward, spec or LR.OnChipSpec(), profile)


def run_lava_pc(circuit: Circuit, inputs: dict[str, np.ndarray], rng_seed: int = 0,
                record: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run an on-chip relaxed-PC circuit in Lava (Loihi2SimCfg fixed point) for the length of
    ``inputs``; returns (final weights, recorded spikes [T, n]).

    As :func:`neurocredit.lava.learning.run_lava`: ``ThirdFactorLIF`` value neurons, a
    ``GradedVec`` output error, forward ``LearningDense`` with the generated
    ``Loihi3FLearningRule`` (Lava's own engine).  The learned backward connections B_l are
    :class:`~neurocredit.lava.processes.pc_process.PostPlasticDense` (Lava's ``LearningDense``
    cannot take a signed graded pre factor; see that module)."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense, LearningDense
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.utils.weightutils import SignMode

    from neurocredit.lava.processes.pc_process import PostPlasticDense
    from neurocredit.lava.processes.process import ThirdFactorLIF
    from neurocredit.lava.run import LavaNet, lava_session, seed_everything

    seed_everything(rng_seed)
    steps = next(iter(inputs.values())).shape[0]
    record = list(record or [])
    transposed = set(circuit.meta.get("transposed", ()))
    sources = {k: Source(data=np.asarray(v, dtype=np.int32).T) for k, v in inputs.items()}
    procs = {}
    for p in circuit.populations:
        if p.kind == "graded":
            procs[p.name] = GradedVec(shape=(p.n,), vth=int(p.vth))
            continue
        plastic_in = [c for c in circuit.connections if c.dst == p.name and c.plastic and c.name not in transposed]
        rule = (Loihi3FLearningRule(dw=LR.dw_string(plastic_in[0].plastic), t_epoch=1, rng_seed=rng_seed)
                if plastic_in else None)
        procs[p.name] = ThirdFactorLIF(shape=(p.n,), du=int(p.du), dv=int(p.dv), vth=int(p.vth),
                                       bias_mant=np.asarray(p.bias_mant, np.int32),
                                       bias_exp=np.asarray(p.bias_exp, np.int32),
                                       third_shift=int(p.third_shift), gate_lo=int(p.gate_lo),
                                       learning_rule=rule, name=p.name)
    modes = {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY, "inhibitory": SignMode.INHIBITORY}
    dense = {}
    for c in circuit.connections:
        w = np.asarray(c.weights, dtype=np.int32)
        graded = c.src == LR.ERROR or c.src_port == "err"
        common = dict(weight_exp=int(c.weight_exp), num_weight_bits=int(c.num_weight_bits),
                      sign_mode=modes[c.sign_mode], name=c.name)
        if c.name in transposed:
            prods = np.array([(m, k, int(tr[1])) for m, k, tr, _ in c.plastic], dtype=np.int64)
            d = PostPlasticDense(weights=w, products=prods, rng_seed=rng_seed, num_message_bits=24, **common)
        elif c.plastic:
            rule = Loihi3FLearningRule(dw=LR.dw_string(c.plastic), t_epoch=1, rng_seed=rng_seed)
            d = LearningDense(weights=w, learning_rule=rule, **common)
        else:
            d = Dense(weights=w, num_message_bits=24 if graded else 0, **common)
        src = sources[c.src] if c.src in sources else procs[c.src]
        (src.s_out if c.src in sources or c.src_port == "s" else src.s_err).connect(d.s_in)
        dst = procs[c.dst]
        d.a_out.connect(dst.a_third_factor_in if c.dst_port == "third" else dst.a_in)
        if c.name in transposed:
            dst.s_out.connect(d.s_in_post)
        elif c.plastic:
            dst.s_out_bap.connect(d.s_in_bap)
            dst.s_out_y1.connect(d.s_in_y1)
            dst.s_out_y2.connect(d.s_in_y2)
            dst.s_out_y3.connect(d.s_in_y3)
        dense[c.name] = d
    sinks = {}
    for k in record:
        sinks[k] = Sink(shape=(circuit.population(k).n,), buffer=steps)
        procs[k].s_out.connect(sinks[k].a_in)
    net = LavaNet(next(iter(sources.values())), dense, procs, sinks, True)
    with lava_session(net) as proc:
        proc.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        weights = {k: np.asarray(d.weights.get()).astype(np.int64) for k, d in dense.items()}
        recs = {k: np.asarray(s.data.get()).T.astype(np.int64) for k, s in sinks.items()}
    return weights, recs
