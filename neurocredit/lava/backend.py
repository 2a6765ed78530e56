"""Lava backend of on-chip learning circuits: a :class:`~neurocredit.chip.ir.Circuit` with
plastic connections -> Lava processes on ``Loihi2SimCfg`` fixed point, always stopped.

    'third' population     ThirdFactorLIF (Lava's LIF + third-factor compartment, sends y1..y3)
    'graded' population    lava.proc.graded.process.GradedVec
    plastic, forward view  lava.proc.dense.process.LearningDense with the generated
                           Loihi3FLearningRule(dw = the connection's ProductSeries.dw)
    plastic, transposed    TransposedLearningDense: Lava's own engine on the transposed view
    plastic, transposed,   TransposedLearningSparse (a Lava LearningSparse): the existing
      with a synapse mask  synapses only, a CSR matrix with explicit zeros (absent ones never learn)
    'rate' / 'integrator'  RateUnits / LeakyIntegrator (graded-rate neuron dynamics, chip.rate;
      population          ports a_in, a_noise, a_third_factor_in, a_target -> s_out, s_err, s_xi, s_hp)
    fixed                  Dense (graded messages where it carries errors or graded outputs)

    plastic, with marked   ExtendedLearningDense (the one generic custom learning process):
      extension factors    the stock products on Lava's own engine, the extension products
                           (chip.extensions) added to its accumulator; fed the connection's graded
                           signal on s_in_g (a population's port 'in' = the a_out of every
                           connection into its 'a' port, fanned out)

Every stock product runs on Lava's stock engine; only a series with extension factors
(:attr:`~neurocredit.chip.ir.ProductSeries.extensions`) goes through the custom process.
"""
from __future__ import annotations

import numpy as np

from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import Circuit


def run_learning(circuit: Circuit, inputs: dict[str, np.ndarray], rng_seed: int = 0,
                 record: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run a learning circuit for the length of ``inputs`` ({source: [T, n]}); returns (final
    weights of every connection, records [T, n] of ``record``: a population's spikes / graded
    output, ``'err:<name>'`` its signed third factor is not recorded here).  Same signature and
    results as :func:`neurocredit.chip.emulator.emulate_learning`."""
    from neurocredit._setup_lava import import_lava
    import_lava()
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense, LearningDense
    from lava.proc.graded.process import GradedVec
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.utils.weightutils import SignMode

    from neurocredit.lava.processes.derivative_process import PseudoDerivativeLIF
    from neurocredit.lava.processes.process import ThirdFactorLIF

    from neurocredit.lava.processes.transposed_process import TransposedLearningDense, TransposedLearningSparse
    from neurocredit.lava.run import LavaNet, lava_session, seed_everything

    from neurocredit.lava.processes.extended_learning import ExtendedLearningDense
    from neurocredit.lava.processes.rate_process import LeakyIntegrator, RateUnits

    for c in circuit.plastic:
        if c.plastic.extensions and (c.mask is not None or c.pre_trace[1]):
            raise OnChipError(f"connection {c.name}: extension factors {', '.join(c.plastic.extensions)} on a "
                              f"sparse or tagged connection are not built in ExtendedLearningDense")

    def learning_rule(series) -> Loihi3FLearningRule:
        # the stock products (an extension series adds its own in ExtendedLearningDense); Lava wants at
        # least one product: a series of extensions only gets 0 · x0, which changes nothing
        return Loihi3FLearningRule(dw=series.stock.dw if series.stock else "0 * x0", t_epoch=1, rng_seed=rng_seed)

    def connection_rule(c) -> Loihi3FLearningRule:
        """The connection's rule; with an eligibility (chip.tags) its tag's dt and its pre trace x1."""
        if not c.pre_trace[1]:
            return learning_rule(c.plastic)
        return Loihi3FLearningRule(dw=c.plastic.dw, dt=c.tag.dw if c.tag else None, x1_impulse=c.pre_trace[0],
                                   x1_tau=c.pre_trace[1], t_epoch=1, rng_seed=rng_seed)

    seed_everything(rng_seed)
    steps = next(iter(inputs.values())).shape[0]
    record = list(record or [])
    sources = {k: Source(data=np.asarray(v, dtype=np.int32).T) for k, v in inputs.items()}
    procs = {}
    for p in circuit.populations:
        if p.kind == "graded":
            procs[p.name] = GradedVec(shape=(p.n,), vth=int(p.vth))
            continue
        if p.kind in ("rate", "integrator"):           # graded-rate neuron dynamics (chip.rate)
            q = {"act": 0, "out_shift": 0, "hp_shift": 0, "third_shift": 0, "target": 0, "leak_shift": 0,
                 **dict(p.params)}
            procs[p.name] = (LeakyIntegrator(shape=(p.n,), leak_shift=int(q["leak_shift"]), name=p.name)
                             if p.kind == "integrator" else
                             RateUnits(shape=(p.n,), act=int(q["act"]), out_shift=int(q["out_shift"]),
                                       hp_shift=int(q["hp_shift"]), third_shift=int(q["third_shift"]),
                                       target=int(q["target"]), leak_shift=int(q["leak_shift"]), name=p.name))
            continue
        plastic_in = [c for c in circuit.plastic if c.dst == p.name and c.view == "forward"]
        plastic_in = [c for c in plastic_in if c.plastic.stock] or plastic_in   # the neuron's stock rule
        # one rule per learning neuron: the same products (dependency, factors); constants may differ
        # per connection (chip.tags.exponent_steps), as each LearningDense applies its own dw
        if len({tuple(sorted((q.dependency, q.factors) for q in c.plastic.stock)) for c in plastic_in
                if c.plastic.stock}) > 1:
            raise OnChipError(f"population {p.name}: its plastic inputs learn with different rules; a Lava "
                              f"learning neuron holds one")
        # y1 = the pseudo-derivative ψ where an eligibility trace reads it (chip.tags)
        neuron, extra = (PseudoDerivativeLIF, {"psi_slope": float(p.psi_slope)}) if p.psi_slope else (ThirdFactorLIF, {})
        procs[p.name] = neuron(shape=(p.n,), du=int(p.du), dv=int(p.dv), vth=int(p.vth),
                               bias_mant=np.asarray(p.bias_mant, np.int32),
                               bias_exp=np.asarray(p.bias_exp, np.int32),
                               third_shift=int(p.third_shift), gate_lo=int(p.gate_lo),
                               learning_rule=connection_rule(plastic_in[0]) if plastic_in else None,
                               name=p.name, **extra)
    modes = {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY, "inhibitory": SignMode.INHIBITORY}
    dense = {}
    graded = {p.name for p in circuit.populations if p.kind in ("graded", "rate", "integrator")}
    graded |= {k for k, v in inputs.items() if not np.isin(np.asarray(v), (0, 1)).all()}   # graded sources
    ports = {"s": "s_out", "err": "s_err", "xi": "s_xi", "hp": "s_hp"}                     # a population's outputs
    in_ports = {"a": "a_in", "third": "a_third_factor_in", "noise": "a_noise", "target": "a_target"}
    for c in circuit.connections:
        w = np.asarray(c.weights, dtype=np.int32)
        common = dict(weight_exp=int(c.weight_exp), num_weight_bits=int(c.num_weight_bits),
                      sign_mode=modes[c.sign_mode], name=c.name)
        if c.plastic.extensions:
            gs = c.graded
            d = ExtendedLearningDense(weights_out=w, view=c.view, shift=gs.shift, deliver_shift=gs.deliver_shift,
                                      post_shift=c.graded_post.shift if c.graded_post is not None else None,
                                      x0_delay=gs.x0_delay,
                                      extended=tuple((p.mant, p.exp, p.dependency, p.factors) for p in c.plastic.extended),
                                      has_stock=bool(c.plastic.stock), learning_rule=learning_rule(c.plastic),
                                      **common)
        elif c.plastic and c.view == "transposed" and c.mask is not None:
            d = TransposedLearningSparse(weights_out=w, mask=c.mask, learning_rule=learning_rule(c.plastic), **common)
        elif c.plastic and c.view == "transposed":
            d = TransposedLearningDense(weights_out=w, learning_rule=learning_rule(c.plastic), **common)
        elif c.plastic and c.mask is not None:
            raise OnChipError(f"connection {c.name}: a sparse plastic forward connection needs Lava's "
                              f"LearningSparse, whose saturation (np.clip on a CSR matrix) fails with this "
                              f"scipy; only the transposed view (TransposedLearningSparse) is built")
        elif c.plastic:
            d = LearningDense(weights=w, learning_rule=connection_rule(c), **common)
        else:
            d = Dense(weights=w, num_message_bits=24 if (c.src in graded or c.src_port == "err") else 0, **common)
        src = sources[c.src] if c.src in sources else procs[c.src]
        if c.src_port != "in":                         # 'in': fanned out below
            (src.s_out if c.src in sources else getattr(src, ports[c.src_port])).connect(d.s_in)
        dst = procs[c.dst]
        if c.dst_port != "pred":                       # 'pred': absorbed by the value unit (chip.ir)
            d.a_out.connect(getattr(dst, in_ports[c.dst_port]))
        if c.plastic and c.view == "transposed":
            dst.s_out.connect(d.s_in_x0)
        elif c.plastic:
            dst.s_out_bap.connect(d.s_in_bap)
            dst.s_out_y1.connect(d.s_in_y1)
            dst.s_out_y2.connect(d.s_in_y2)
            dst.s_out_y3.connect(d.s_in_y3)
        dense[c.name] = d
    for c in circuit.connections:                      # graded signals: a population's input current 'in'
        feeds = [(c.src, c.src_port, dense[c.name].s_in)] if c.src_port == "in" else []
        if c.graded is not None:
            feeds.append((c.graded.src, c.graded.port, dense[c.name].s_in_g))
        if c.graded_post is not None:                  # the post side's graded factor (ry)
            feeds.append((c.graded_post.src, c.graded_post.port, dense[c.name].s_in_gp))
        for pop, port, inport in feeds:
            if port == "in":
                for k in circuit.connections:
                    if k.dst == pop and k.dst_port == "a":
                        dense[k.name].a_out.connect(inport)
            else:
                (sources[pop].s_out if pop in sources else getattr(procs[pop], ports[port])).connect(inport)
    sinks = {}
    for k in record:
        sinks[k] = Sink(shape=(circuit.population(k).n,), buffer=steps)
        procs[k].s_out.connect(sinks[k].a_in)
    net = LavaNet(next(iter(sources.values())), dense, procs, sinks, True)
    with lava_session(net) as proc:
        proc.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        weights = {k: _dense(d.weights.get()).astype(np.int64) for k, d in dense.items()}
        recs = {k: np.asarray(s.data.get()).T.astype(np.int64) for k, s in sinks.items()}
    for c in circuit.plastic:
        if c.view == "transposed":
            weights[c.name] = np.ascontiguousarray(weights[c.name].T)
    return weights, recs


def _dense(w) -> np.ndarray:
    """A weight Var's value as a dense array (a sparse connection's absent synapses are 0)."""
    from scipy.sparse import issparse
    return w.toarray() if issparse(w) else np.asarray(w)
