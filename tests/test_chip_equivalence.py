"""For every rule the compiler accepts (the library's and the example rule files), the bit-exact
emulator equals Lava fixed point weight for weight over >= 50 learning steps, on Lava's own
learning engine (LearningDense with the generated Loihi3FLearningRule, TransposedLearningDense for
learned feedback; ExtendedLearningDense, the generic custom process, where a series has marked
extension factors: its stock products still on Lava's engine), scheduled phases included; and
every local rule it refuses is refused with what the chip lacks named."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import compile_status
from neurocredit.chip import session as S
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.ir import INPUT, TARGET
from neurocredit.chip import sample_graphs
from neurocredit.rules import RULES, resolve_rule

RULE_FILES = sorted(str(p) for p in (Path(__file__).resolve().parents[1] / "examples" / "rules").glob("*.toml"))
COMPILING = [name for name, r in RULES.items() if compile_status(r)[0]] + RULE_FILES
STEPS = 60


def _circuit(rule, hidden=(12, 8), seed=0):
    g = sample_graphs.random_graph(seed=seed, n_in=10, hidden=hidden, n_out=4, recurrent=False, bias=False)
    prog = compile_graph(g)
    sizes = [10, *hidden, 4]
    spec = C.default_spec(rule, len(hidden), third_shift=2, mirror_steps=STEPS)
    return C.build_circuit(prog.fixed_circuit, rule, C.random_feedback(rule, sizes, seed), spec,
                           float_base=prog.float_circuit)      # a graded-rate rule (PAL) reads the float weights


def _stream_for(circuit, seed):
    """_stream, or for a graded-rate circuit (PAL) graded inputs and targets and its noise, as long."""
    if not circuit.meta.get("graded_io"):
        return _stream(seed)
    from neurocredit.chip.rate_circuits import rate_streams
    rng = np.random.default_rng(seed)
    return rate_streams(circuit, rng.normal(0, 1, (STEPS // 20, 10)), np.ones(STEPS // 20, np.int64), 20, 0, seed)


def _stream(seed):
    rng = np.random.default_rng(seed)
    tgt = np.zeros((STEPS, 4), np.int64)
    tgt[:, 1] = 1
    return {INPUT: (rng.random((STEPS, 10)) < 0.5).astype(np.int64), TARGET: tgt}


def test_most_local_rules_compile():
    local = [r for r in RULES.values() if r.local and r.feedback is not None
             and "eligibility" not in {f.value for t in r.forward for f in t.factors}]
    ok = [r.name for r in local if compile_status(r)[0]]
    assert len(local) == 14 and len(ok) >= 12, ok
    for r in local:
        good, why = compile_status(r)
        if not good:                                   # refused with what is missing named
            assert any(k in why for k in ("needs", "not compiled", "no learning-engine", "not built")), why


@pytest.mark.parametrize("name", COMPILING)
def test_emulator_equals_lava_for_every_rule_that_compiles(name):
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    rule = resolve_rule(name)
    circ = _circuit(rule, seed=3)
    same, steps, got = S.check_backends(circ, _stream_for(circ, 5), {"emulator": emulate_learning, "lava": run_learning},
                                        seed=7)
    assert steps >= 50
    start = circ.weights()
    for c in circ.plastic:
        np.testing.assert_array_equal(got["emulator"][c.name], got["lava"][c.name], err_msg=c.name)
    assert same
    moved = sum(int((got["lava"][c.name] != start[c.name]).sum()) for c in circ.plastic)
    assert moved > 20, f"{name}: only {moved} weights changed"
    for k in (k for k in got["lava"] if k.startswith("phase:")):    # a weight mirror's phase
        assert int((got["lava"][k] != start[k.split(":")[1]]).sum()) > 20


def test_independent_chips_in_one_run_equal_their_single_chip_runs():
    """emulate_chips: three chips (different initial weights, streams and Lava seeds) vectorised
    in one run give, chip for chip, the weights and spikes of three separate runs."""
    from neurocredit.chip.emulator import emulate_chips
    rule = resolve_rule("kp")
    circuits = [_circuit(rule, seed=s) for s in (1, 2, 3)]
    streams = [_stream(10 + s) for s in range(3)]
    pops = [p.name for p in circuits[0].populations if p.kind == "third"]
    many_w, many_r = emulate_chips(circuits, streams, [4, 5, 6], record=pops)
    for i, (circ, stream, seed) in enumerate(zip(circuits, streams, (4, 5, 6))):
        w, r = emulate_learning(circ, stream, rng_seed=seed, record=pops)
        for c in circ.plastic:
            np.testing.assert_array_equal(many_w[i][c.name], w[c.name], err_msg=f"chip {i} {c.name}")
        for k in pops:
            np.testing.assert_array_equal(many_r[i][k], r[k])
    assert not np.array_equal(many_w[0]["B1"], many_w[1]["B1"])


@pytest.mark.parametrize("name", ["dfa", "wm"])
def test_training_chips_together_equals_training_each(name):
    """session.train_chips (seeds side by side in one vectorised emulator run, mirror phases
    included) gives each seed's train() history and weights exactly."""
    from neurocredit.data import load_digits
    rule = resolve_rule(name)
    circuits, datas = [], []
    for seed in (0, 1):
        datas.append(load_digits(seed=seed, standardise=False))
        base = compile_graph(S.initial_graph([64, 16, 10], seed=seed)).fixed_circuit
        spec = C.default_spec(rule, 1, mirror_every=15, mirror_steps=64)
        circuits.append(C.build_circuit(base, rule, C.random_feedback(rule, [64, 16, 10], seed), spec))
    kw = dict(steps=8, blank=2, samples=30, target_delay=2, lr_decay=0.6, log=lambda s: None)
    together, hists = S.train_chips(circuits, datas, 2, [0, 1], **kw)
    for k, seed in enumerate((0, 1)):
        alone, hist = S.train(circuits[k], datas[k], 2, seed=seed, **kw)
        assert [h["test_acc"] for h in hist] == [h["test_acc"] for h in hists[k]]
        for c in alone.plastic:
            np.testing.assert_array_equal(alone.connection(c.name).weights, together[k].connection(c.name).weights)
        if name == "wm":
            np.testing.assert_array_equal(alone.connection("B1").weights, together[k].connection("B1").weights)


def test_sparse_learned_feedback_keeps_its_absent_synapses_in_the_emulator_and_in_lava():
    """examples/rules/sparse_fa_learned.toml: B has 80 % absent synapses.  After >= 50 learning
    steps they are still exactly 0 in the emulator and in Lava (TransposedLearningSparse), the
    existing ones learned, and the two agree weight for weight.  Without the mask the same run
    fills absent synapses in (the defect this guards)."""
    pytest.importorskip("lava.proc.sparse.process")
    from dataclasses import replace

    from neurocredit.lava.backend import run_learning
    rule = resolve_rule(next(f for f in RULE_FILES if f.endswith("sparse_fa_learned.toml")))
    circ = _circuit(rule, seed=3)
    stream = _stream(5)
    fb = [c for c in circ.plastic if c.view == "transposed"]
    assert fb and all(c.mask is not None and 0.6 < 1 - c.mask.mean() < 0.95 for c in fb)
    emu, _ = emulate_learning(circ, stream, rng_seed=7)
    lava, _ = run_learning(circ, stream, rng_seed=7)
    assert STEPS >= 50
    moved = 0
    for c in fb:
        np.testing.assert_array_equal(emu[c.name], lava[c.name], err_msg=c.name)
        assert not emu[c.name][~c.mask].any() and not lava[c.name][~c.mask].any(), c.name
        moved += int((emu[c.name] != np.asarray(c.weights)).sum())
    assert moved > 10, f"the existing feedback synapses barely learned ({moved} changed)"
    dense = replace(circ, connections=tuple(replace(c, mask=None) for c in circ.connections))
    filled, _ = emulate_learning(dense, stream, rng_seed=7)
    assert any(filled[c.name][~c.mask].any() for c in fb), "the unmasked run should fill absent synapses"
