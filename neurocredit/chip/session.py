"""Streaming on-chip learning sessions: samples one after the other (rate-coded steps, blank
steps, a delayed one-hot target), scheduled phases, learning-rate schedules, test accuracy of
the learned integer weights; and reading a NIR file that carries its rule into a learning
circuit.  A session runs on any backend given as a function ``run(circuit, inputs, rng_seed)
-> (weights, records)``: :func:`neurocredit.chip.emulator.emulate_learning` by default, Lava's
``neurocredit.lava.backend.run_learning`` with the same signature.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from neurocredit.chip.circuits import OnChipSpec, build_circuit, default_spec
from neurocredit.chip.emulator import emulate, emulate_learning
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import INPUT, TARGET, Circuit, Connection, Population
from neurocredit.chip.phases import phase_circuit, phase_stream
from neurocredit.chip.tags import scheduled
from neurocredit.chip.readout import is_leaky_readout
from neurocredit.chip.profile import Profile
from neurocredit.rules.rule import Rule

Runner = Callable[..., tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


@dataclass(frozen=True)
class StreamTiming:
    """``steps`` input steps per sample, ``blank`` silent steps after it, the target one-hot from
    ``target_delay`` steps after the input starts to ``target_delay`` steps after it ends."""

    steps: int
    blank: int
    target_delay: int


def stream_timing(n_hidden: int) -> StreamTiming:
    """Default streaming for ``n_hidden`` hidden layers (measured on digits,
    benchmarks/onchip_accuracy.py): one hidden layer 16 steps, blank 4, target delay 2 (the two
    Dense hops); deeper: 24 steps, blank 4·hops, delay 2·hops (the untrained output answers
    about 2 steps per hop; FA's error reaches layer 1 one feedback hop per layer later)."""
    if n_hidden < 1:
        raise OnChipError(f"an on-chip learning circuit needs at least one hidden layer, got {n_hidden}")
    if n_hidden == 1:
        return StreamTiming(steps=16, blank=4, target_delay=2)
    hops = n_hidden + 1
    return StreamTiming(steps=24, blank=4 * hops, target_delay=2 * hops)


def step_rates(rates: np.ndarray, steps: int) -> np.ndarray:
    """Spike probabilities per step: a sample [N, n_in] the same on every step ([N, 1, n_in]); a
    sequence [N, rows, n_in] (e.g. seqdigits) row by row, row r on steps [r T/rows, (r+1) T/rows)
    of the T = ``steps`` ([N, T, n_in])."""
    rates = np.clip(np.asarray(rates, dtype=np.float64), 0, 1)
    if rates.ndim == 2:
        return rates[:, None, :]
    if rates.ndim != 3 or rates.shape[1] > steps:
        raise OnChipError(f"a sequence of {rates.shape[1] if rates.ndim == 3 else '?'} rows needs at least as many "
                          f"steps per sample (got {steps}); rates must be [N, n_in] or [N, rows, n_in]")
    return rates[:, np.arange(steps) * rates.shape[1] // steps]


def target_steps(steps: int, rate: float = 1.0) -> np.ndarray:
    """The steps (of ``steps``) on which the target class spikes at ``rate`` in (0, 1], evenly
    spaced: step j spikes where floor((j+1) r) > floor(j r) (rate 1: every step)."""
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"the target rate must be in (0, 1], got {rate}")
    j = np.arange(steps)
    return j[np.floor((j + 1) * rate + 1e-9) > np.floor(j * rate + 1e-9)]


def sample_stream(rates: np.ndarray, labels: np.ndarray, n_classes: int, steps: int, blank: int,
                  seed: int, delay: int = 0, target_rate: float = 1.0, coding: str = "rate") -> dict[str, np.ndarray]:
    """Samples one after the other: ``steps`` rate-coded steps, then ``blank`` silent steps; the
    one-hot target for ``steps`` steps from ``delay`` steps after the input starts, spiking at
    ``target_rate`` per step (:func:`target_steps`); ``coding`` 'regular': deterministic evenly
    spaced input spikes in place of the draws (:mod:`neurocredit.chip.coding`).
    {INPUT: [N(T+b), n_in], TARGET: [N(T+b), n_classes]}."""
    if delay > blank:
        raise ValueError(f"the target delay ({delay}) must fit in the blank steps ({blank})")
    rng = np.random.default_rng(seed)
    n, n_in = rates.shape[0], rates.shape[-1]
    x = np.zeros((n, steps + blank, n_in), np.int64)
    if coding != "rate":
        from neurocredit.chip.coding import coded_spikes
        p = np.broadcast_to(step_rates(rates, steps), (n, steps, n_in))
        x[:, :steps] = coded_spikes(p, rates.shape[1] if np.ndim(rates) == 3 else 1, coding, rng)
    else:
        x[:, :steps] = rng.random((n, steps, n_in)) < step_rates(rates, steps)   # a sequence: row by row
    y = np.zeros((n, steps + blank, n_classes), np.int64)
    y[np.arange(n)[:, None], delay + target_steps(steps, target_rate)[None, :], np.asarray(labels)[:, None]] = 1
    return {INPUT: x.reshape(-1, n_in), TARGET: y.reshape(-1, n_classes)}


def training_stream(circuit: Circuit, x: np.ndarray, y: np.ndarray, steps: int, blank: int, seed: int,
                    delay: int = 0, target_rate: float = 1.0) -> dict[str, np.ndarray]:
    """The source streams of ``circuit`` for samples ``x`` and labels / targets ``y``: graded
    values for a graded-rate circuit (``meta['graded_io']``,
    :func:`neurocredit.chip.rate_circuits.rate_streams`), else :func:`sample_stream`'s spikes."""
    if circuit.meta.get("graded_io"):
        from neurocredit.chip.rate_circuits import rate_streams
        return rate_streams(circuit, x, y, steps, blank, seed, delay)
    return sample_stream(x, y, circuit.meta["n_target"], steps, blank, seed, delay, target_rate,
                         circuit.meta.get("input_coding", "rate"))


def held_out_figures(circuit: Circuit, weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, steps: int,
                 seed: int) -> dict[str, float]:
    """Test figures of ``circuit`` with ``weights``: {'test_acc', 'test_acc_counts', 'test_tied'}
    of the inference circuit (:func:`readout_figures`: spike counts, ties by the end-of-sample
    voltage), for a graded-rate circuit its evaluation (:func:`neurocredit.chip.rate_circuits.evaluate`)."""
    if circuit.meta.get("graded_io"):
        from neurocredit.chip.rate_circuits import evaluate
        return evaluate(circuit.with_weights(weights), x, y, steps, seed)
    if any(is_leaky_readout(p) for p in circuit.populations):
        return {"test_acc": leaky_accuracy(circuit, weights, x, y, steps, seed)}
    return readout_figures(inference_circuit(circuit, weights), x, y, steps, seed)


def input_spikes(rates: np.ndarray, steps: int, seed: int, coding: str = "rate") -> np.ndarray:
    """Rate-coded test spikes [T, N, n_in] (a sequence [N, rows, n_in] row by row, :func:`step_rates`);
    ``coding`` 'regular': deterministic (:mod:`neurocredit.chip.coding`)."""
    if coding != "rate":
        from neurocredit.chip.coding import coded_spikes
        p = np.broadcast_to(step_rates(rates, steps), (len(rates), steps, np.shape(rates)[-1]))
        rows = np.shape(rates)[1] if np.ndim(rates) == 3 else 1
        return coded_spikes(p, rows, coding, np.random.default_rng(seed)).transpose(1, 0, 2).copy()
    if np.ndim(rates) == 3:
        x = np.random.default_rng(seed).random((steps, len(rates), rates.shape[-1])) < \
            step_rates(rates, steps).transpose(1, 0, 2)
    else:
        x = np.random.default_rng(seed).random((steps, *rates.shape)) < rates[None]
    return x.astype(np.int64)


def leaky_accuracy(circuit: Circuit, weights: dict[str, np.ndarray], rates: np.ndarray, labels: np.ndarray,
                   steps: int, seed: int) -> float:
    """Test accuracy of a learning circuit with a leaky readout (:mod:`neurocredit.chip.readout`):
    the hidden layers batched in the emulator, the answer argmax Σ_t r[t] of the readout in its
    integer arithmetic (:func:`neurocredit.chip.readout.logits`)."""
    from neurocredit.chip.readout import logits
    out = next(p for p in circuit.populations if is_leaky_readout(p))
    conn = next(c for c in circuit.connections if c.dst == out.name and c.plastic and c.dst_port == "a")
    full = inference_circuit(circuit, weights)
    hidden = Circuit(full.n_in, [p for p in full.populations if p.name != out.name],
                     [c for c in full.connections if c.dst != out.name], (conn.src,), True, dict(full.meta))
    z = emulate(hidden, input_spikes(rates, steps, seed, circuit.meta.get("input_coding", "rate")),
                record=[conn.src])[conn.src].numpy()
    total = logits(out, weights[conn.name], int(conn.weight_exp), "mixed", conn.num_weight_bits, z)
    return float((total.argmax(axis=1) == np.asarray(labels)).mean())


def _figure(h: dict) -> str:
    return f"test accuracy {100 * h['test_acc']:.2f} %" if "test_acc" in h else f"test mse {h['test_mse']:.4f}"


def inference_circuit(circuit: Circuit, weights: dict[str, np.ndarray]) -> Circuit:
    """The forward network of a learning circuit with the given (learned) weights, as a plain
    fixed-point circuit for batched inference (a frozen forward connection between the kept
    populations, e.g. :func:`neurocredit.chip.tags.readout_only`'s hidden layer, stays)."""
    pops = [Population(p.name, p.n, p.du, p.dv, p.vth, p.bias_mant, p.bias_exp) for p in circuit.populations
            if p.kind != "graded"]
    kept = {p.name for p in pops} | {INPUT}
    conns = [Connection(c.name, c.src, c.dst, weights[c.name], c.weight_exp, c.num_weight_bits, "mixed")
             for c in circuit.connections if c.view == "forward" and c.dst_port == "a"
             and (c.plastic or (c.src in kept and c.dst in kept and c.src_port == "s"))]
    return Circuit(circuit.n_in, pops, conns, circuit.outputs, True, dict(circuit.meta))


def readout_figures(circuit: Circuit, rates: np.ndarray, labels: np.ndarray, steps: int, seed: int
                    ) -> dict[str, float]:
    """Test figures of an inference circuit (batched emulator) on rate-coded ``rates``
    (:func:`input_spikes`): {'test_acc': the class of :func:`neurocredit.neurons.decision.decide`,
    the most output spikes, a tie broken by the output neurons' voltage v after the sample's last
    step; 'test_acc_counts': plain argmax of the counts (ties to the lowest index); 'test_tied':
    the fraction of samples whose top count is tied}.  On the chip the tie-break reads v of each
    output neuron once per sample (a Lava probe on the LIF's ``v``:
    ``neurocredit.lava.run.run_lava(voltage=...)``); a non-spiking output has no ties: its
    argmax of Σ_t v is the class."""
    from neurocredit.neurons.decision import decision_figures

    name = circuit.outputs[0]
    x = input_spikes(rates, steps, seed, circuit.meta.get("input_coding", "rate"))
    if not circuit.population(name).spiking:
        total = emulate(circuit, x)[name].numpy().sum(axis=0)
        return decision_figures(total, None, labels)
    rec = emulate(circuit, x, voltage=[name])
    return decision_figures(rec[name].numpy().sum(axis=0), rec[f"v:{name}"].numpy()[-1], labels)


def accuracy(circuit: Circuit, rates: np.ndarray, labels: np.ndarray, steps: int, seed: int) -> float:
    """Test accuracy of an inference circuit (batched emulator): the most output spikes, a tie
    broken by the end-of-sample voltage (:func:`readout_figures`' 'test_acc')."""
    return readout_figures(circuit, rates, labels, steps, seed)["test_acc"]


def backward_angle(circuit: Circuit, weights: dict[str, np.ndarray]) -> float:
    """Mean over hidden layers of ∠(B_l, W_{l+1}ᵀ) in degrees (integer weights); NaN without
    learned feedback."""
    angles = []
    for name in circuit.meta.get("learned_feedback", ()):
        b_conn = circuit.connection(name)
        w_conn = next(c for c in circuit.connections if c.src == b_conn.dst and c.dst_port == "a" and c.plastic)
        b = np.asarray(weights[name], float).ravel()
        w = np.asarray(weights[w_conn.name], float).T.ravel()
        cos = b @ w / max(np.linalg.norm(b) * np.linalg.norm(w), 1e-12)
        angles.append(float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
    return float(np.mean(angles)) if angles else float("nan")


class SampleBar:
    """A tqdm bar of the samples streamed in one epoch (samples/s as its rate), off when
    ``enabled`` is False or stderr is not a terminal.  A runner whose signature takes ``on_step``
    (a callable given the steps run so far in this call) moves it inside a run; any other runner
    moves it once per run.  It only reads counts: results never depend on it."""

    def __init__(self, total: int, desc: str, enabled: bool = True) -> None:
        from tqdm.auto import tqdm
        self.bar = tqdm(total=total, desc=desc, unit="sample", leave=False, dynamic_ncols=True,
                        disable=None if enabled else True)

    def hook(self, run: Callable, done: int, steps_per_sample: int) -> dict:
        """Keyword arguments for ``run`` that report its progress from ``done`` samples on."""
        if self.bar.disable or "on_step" not in inspect.signature(run).parameters:
            return {}
        return {"on_step": lambda t: self.reach(done + t // steps_per_sample)}

    def reach(self, n: int) -> None:
        """Move the bar to ``n`` samples streamed."""
        if n > self.bar.n:
            self.bar.update(n - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def run_phases(circuit: Circuit, weights: dict[str, np.ndarray], seed: int, run: Runner = emulate_learning,
               steps: int | None = None) -> dict[str, np.ndarray]:
    """Run every scheduled phase of ``circuit`` once on ``weights``; returns the weights the
    phases learned (by name)."""
    learned: dict[str, np.ndarray] = {}
    for phase in circuit.phases:
        pc = phase_circuit(phase, {**weights, **learned}, circuit)
        out, _ = run(pc, phase_stream(phase, pc, steps or phase.steps, seed), rng_seed=seed)
        learned.update({b: out[b] for b, _, _ in phase.layers})
    return learned


def schedule_factor(circuit: Circuit, factor: float, profile: str | Profile = "loihi2") -> float:
    """The factor an epoch's lr schedule applies to ``circuit``'s product series: ``factor``, or where the
    circuit was built with ``OnChipSpec.schedule_hold`` no lower than the largest
    :func:`neurocredit.chip.plasticity.floor_factor` of its plastic connections (the schedule stops
    where the first constant would reach the engine's floor, so the decay keeps its ratio to the
    learning terms instead of being held there while they fall)."""
    from neurocredit.chip.plasticity import floor_factor

    if not circuit.meta.get("schedule_hold"):
        return factor
    return max(factor, max((floor_factor(c.plastic, profile) for c in circuit.plastic), default=0.0))


def epoch_circuit(circuit: Circuit, epoch: int, lr_decay: float = 1.0, profile: str | Profile = "loihi2") -> Circuit:
    """The circuit that epoch ``epoch`` (1, 2, ...) of a session runs: every product series times the lr
    schedule's factor lr_decay^(epoch − 1) (:func:`schedule_factor`, re-quantised by
    :func:`neurocredit.chip.tags.scheduled`), and after the circuit's ``OnChipSpec.decay_epochs`` (meta
    ``decay_epochs`` = n > 0) without its weight-decay products
    (:func:`neurocredit.chip.plasticity.without_decay`: −λW acts in epochs 1..n only)."""
    from neurocredit.chip.plasticity import without_decay

    n = int(circuit.meta.get("decay_epochs", 0))
    drop = bool(n) and epoch > n
    if lr_decay == 1.0 and not drop:
        return circuit
    f = schedule_factor(circuit, lr_decay ** (epoch - 1), profile)

    def series(c: Connection):
        s = scheduled(c, c.plastic, f, profile) if lr_decay != 1.0 else c.plastic
        return without_decay(s) if drop else s
    return circuit.with_plasticity({c.name: series(c) for c in circuit.plastic})


def train(circuit: Circuit, data, epochs: int, steps: int = 16, blank: int = 4, seed: int = 0,
          run: Runner = emulate_learning, samples: int | None = None, log=print,
          target_delay: int = 0, lr_decay: float = 1.0, label: str = "emulator",
          progress: bool = True) -> tuple[Circuit, list[dict]]:
    """On-chip training on ``data`` (pixels in [0, 1]): the training set streamed sample by
    sample through ``run`` (learning every step, only local information), scheduled phases run
    before every ``phase.every`` samples, the learning rate multiplied by ``lr_decay`` per epoch
    (re-quantised, :func:`neurocredit.chip.tags.scheduled`), test accuracy after every
    epoch.  Returns (the circuit with the learned weights, history); with learned feedback the
    history also has ``angle_B`` = mean ∠(B_l, W_{l+1}ᵀ).  ``progress``: a bar of the samples
    streamed inside each epoch (:class:`SampleBar`; off on a non-terminal)."""
    x_tr, y_tr = data.x_train.numpy(), data.y_train.numpy()
    x_te, y_te = data.x_test.numpy(), data.y_test.numpy()
    weights = circuit.weights()
    learned = bool(circuit.meta.get("learned_feedback"))

    def measure(epoch: int, seen: int, secs: float = 0.0) -> dict:
        h = {"epoch": epoch, "samples": seen, "seconds": secs,
             **held_out_figures(circuit, weights, x_te, y_te, steps, seed + 999)}
        if learned:
            h["angle_B"] = backward_angle(circuit, weights)
        return h

    def angle(h: dict) -> str:
        return f", ∠(B, Wᵀ) {h['angle_B']:.1f}°" if learned else ""

    history = [measure(0, 0)]
    log(f"epoch 0: {_figure(history[0])} (untrained){angle(history[0])}")
    rng = np.random.default_rng(seed)
    seen = 0
    for epoch in range(1, epochs + 1):
        now = epoch_circuit(circuit, epoch, lr_decay)
        perm = rng.permutation(len(y_tr))[:samples]
        every = min((p.every for p in circuit.phases if p.every > 0), default=len(perm)) or len(perm)
        t0 = time.perf_counter()
        bar = SampleBar(len(perm), f"epoch {epoch}/{epochs} ({label})", progress)
        for i, start in enumerate(range(0, len(perm), every)):
            part = perm[start:start + every]
            run_seed = seed * 1000 + epoch + 7919 * i
            if circuit.phases:
                weights = {**weights, **run_phases(circuit, weights, run_seed, run)}
            stream = training_stream(circuit, x_tr[part], y_tr[part], steps, blank, run_seed, target_delay)
            weights, _ = run(now.with_weights(weights), stream, rng_seed=seed + epoch + 7919 * i,
                             **bar.hook(run, start, steps + blank))
            bar.reach(start + len(part))
        bar.close()
        seen += len(perm)
        history.append(measure(epoch, seen, time.perf_counter() - t0))
        h = history[-1]
        log(f"epoch {epoch}: {seen} samples streamed ({label}, {h['seconds']:.1f} s), "
            f"{_figure(h)}{angle(h)}")
    return circuit.with_weights(weights), history


def train_chips(circuits: list[Circuit], datas: list, epochs: int, seeds: list[int], steps: int = 16,
                blank: int = 4, samples: int | None = None, log=print, target_delay: int = 0,
                lr_decay: float = 1.0, progress: bool = True,
                target_rate: float = 1.0, on_epoch=None) -> tuple[list[Circuit], list[list[dict]]]:
    """:func:`train` for N independent chips of one structure at once in the emulator
    (:func:`neurocredit.chip.emulator.emulate_chips`): chip k learns on ``datas[k]`` with seed
    ``seeds[k]``, its phases included; each chip's result equals its own :func:`train` run.
    ``target_rate``: the target class's spikes per step in the training stream (:func:`sample_stream`).
    ``progress``: a bar of the samples each chip has streamed in the epoch (:class:`SampleBar`)."""
    from neurocredit.chip.emulator import emulate_chips

    weights = [c.weights() for c in circuits]
    learned = bool(circuits[0].meta.get("learned_feedback"))

    def measure(k: int, epoch: int, seen: int, secs: float = 0.0) -> dict:
        d = datas[k]
        h = {"epoch": epoch, "samples": seen, "seconds": secs,
             **held_out_figures(circuits[k], weights[k], d.x_test.numpy(), d.y_test.numpy(), steps, seeds[k] + 999)}
        if learned:
            h["angle_B"] = backward_angle(circuits[k], weights[k])
        return h

    histories = [[measure(k, 0, 0)] for k in range(len(circuits))]
    rngs = [np.random.default_rng(s) for s in seeds]
    phases = circuits[0].phases
    seen = 0
    for epoch in range(1, epochs + 1):
        now = [epoch_circuit(circ, epoch, lr_decay) for circ in circuits]
        perms = [rng.permutation(len(d.y_train))[:samples] for rng, d in zip(rngs, datas)]
        if len({len(p) for p in perms}) != 1:
            raise ValueError("chips trained together need training sets of one length")
        every = min((p.every for p in phases if p.every > 0), default=len(perms[0])) or len(perms[0])
        t0 = time.perf_counter()
        bar = SampleBar(len(perms[0]), f"epoch {epoch}/{epochs} ({len(circuits)} chips)", progress)
        for i, start in enumerate(range(0, len(perms[0]), every)):
            run_seeds = [s * 1000 + epoch + 7919 * i for s in seeds]
            for ph in phases:
                pcs = [phase_circuit(circ.phases[phases.index(ph)], w, circ) for circ, w in zip(circuits, weights)]
                out, _ = emulate_chips(pcs, [phase_stream(circ.phases[phases.index(ph)], pc, ph.steps, rs)
                                             for circ, pc, rs in zip(circuits, pcs, run_seeds)], run_seeds)
                weights = [{**w, **{b: o[b] for b, _, _ in ph.layers}} for w, o in zip(weights, out)]
            streams = [training_stream(circ, d.x_train.numpy()[p[start:start + every]],
                                       d.y_train.numpy()[p[start:start + every]], steps, blank, rs, target_delay,
                                       target_rate)
                       for circ, d, p, rs in zip(circuits, datas, perms, run_seeds)]
            weights, _ = emulate_chips([c.with_weights(w) for c, w in zip(now, weights)], streams,
                                       [s + epoch + 7919 * i for s in seeds],
                                       **bar.hook(emulate_chips, start, steps + blank))
            bar.reach(min(start + every, len(perms[0])))
        bar.close()
        seen += len(perms[0])
        for k in range(len(circuits)):
            histories[k].append(measure(k, epoch, seen, time.perf_counter() - t0))
        log(f"epoch {epoch}: {seen} samples streamed ({len(circuits)} chips, {time.perf_counter() - t0:.1f} s), "
            + ", ".join(_figure(h[-1]) for h in histories))
        if on_epoch is not None:         # on_epoch(epoch, [weights per chip]): per-epoch diagnostics
            on_epoch(epoch, weights)
    return [c.with_weights(w) for c, w in zip(circuits, weights)], histories


def check_backends(circuit: Circuit, inputs: dict[str, np.ndarray], runs: dict[str, Runner], seed: int,
                   ) -> tuple[bool, int, dict[str, dict[str, np.ndarray]]]:
    """Run the same stream (and, with scheduled phases, a phase as long) on every backend in
    ``runs`` from the same start: (all learned weights equal, learning steps, weights by backend)."""
    n = len(next(iter(inputs.values())))
    got = {}
    start = circuit.weights()
    for name, run in runs.items():
        w, _ = run(circuit, inputs, rng_seed=seed)
        if circuit.phases:
            w = {**w, **{f"phase:{k}": v for k, v in run_phases(circuit, start, seed, run, steps=n).items()}}
        got[name] = w
    first = next(iter(got.values()))
    keys = [c.name for c in circuit.plastic] + [k for k in first if k.startswith("phase:")]
    same = all(np.array_equal(first[k], other[k]) for other in got.values() for k in keys)
    return same, n * (2 if circuit.phases else 1), got


# -- NIR in ------------------------------------------------------------------------------------
def initial_graph(sizes: list[int], seed: int = 0, tau: float = 1e-3, dt: float = 1e-4):
    """An untrained spiking MLP as NIR (Affine -> LIF per layer, zero bias, uniform init with
    variance 1/n_in, snnTorch convention R = tau/dt): the network learning starts from."""
    import nir
    rng = np.random.default_rng(seed)
    nodes = [nir.Input(input_type=np.array([sizes[0]]))]
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w = rng.uniform(-1, 1, (n_out, n_in)) * np.sqrt(3.0 / n_in)
        nodes += [nir.Affine(weight=w, bias=np.zeros(n_out)),
                  nir.LIF(tau=np.full(n_out, tau), r=np.full(n_out, tau / dt), v_leak=np.zeros(n_out),
                          v_threshold=np.ones(n_out))]
    nodes.append(nir.Output(output_type=np.array([sizes[-1]])))
    return nir.NIRGraph.from_list(*nodes)


def read_learning_graph(graph_or_path) -> tuple:
    """(graph, rule, learning spec, where) of a NIR graph or file that carries its learning rule;
    refuses a graph without one."""
    from neurocredit.nir import schema
    from neurocredit.nir.load import read_graph

    where, graph = "the NIR graph", graph_or_path
    if isinstance(graph_or_path, (str, Path)):
        where, graph = f"NIR file '{graph_or_path}'", read_graph(graph_or_path)
    learning = schema.read_learning(graph)
    if learning is None:
        raise OnChipError(f"{where} carries no learning rule; attach one with "
                          "neurocredit.nir.load.attach_rule (or `neurocredit export --rule`)")
    return graph, schema.rule_from_dict(learning["rule"]), learning, where


def feedback_matrices(graph, learning: dict, where: str = "the NIR graph") -> list[np.ndarray]:
    """The float feedback matrices B_l the learning spec locates in node metadata, in layer order."""
    out = []
    for l, fb in enumerate(learning.get("feedback", [])):
        node, key = fb["matrix"]["node"], fb["matrix"]["key"]
        meta = getattr(graph.nodes.get(node), "metadata", None) or {}
        if key not in meta:
            raise OnChipError(f"{where}: feedback matrix B of hidden layer {l + 1} ({key!r} of node {node!r}) "
                              f"is missing")
        out.append(np.asarray(meta[key], dtype=np.float64))
    return out


def circuit_from_nir(graph, spec: OnChipSpec | None = None, profile: str | Profile = "loihi2",
                     **overrides) -> tuple[Rule, Circuit]:
    """(rule, on-chip learning circuit) of a NIR graph or file that carries its rule: the rule
    and its feedback matrices from the file, the network compiled by
    :func:`neurocredit.chip.compile.compile_graph`, the spec :func:`default_spec` for the rule
    (``overrides`` that are not None replace its fields) unless ``spec`` is given."""
    from neurocredit.chip.compile import compile_graph

    graph, rule, learning, where = read_learning_graph(graph)
    backward = feedback_matrices(graph, learning, where)
    spec = spec or default_spec(rule, len(backward), **overrides)
    prog = compile_graph(graph, profile, exact_timing=False)
    return rule, build_circuit(prog.fixed_circuit, rule, backward, spec, profile,   # layers only: no onset populations
                               float_base=prog.float_circuit)
