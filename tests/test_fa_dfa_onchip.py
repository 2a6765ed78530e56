"""FA and DFA at one hidden layer compile to the same on-chip circuit but for where B_1 reads the
output error: DFA from the graded error units, FA from the output neurons' third-factor
compartments, which relay the same error one step later (out_third_shift 0: the same values, sign
and scale).  So FA's hidden error is DFA's delayed by one step (benchmarks/results/
onchip_study_digits.md, "lr · fa / dfa ... (10 epochs, 6 seeds)": equal within the seed spread)."""
from __future__ import annotations

from dataclasses import fields

import numpy as np

from neurocredit.chip import session as S
from neurocredit.chip.defaults import learning_circuit, onchip_timing
from neurocredit.chip.emulator import emulate_learning
from neurocredit.rules import resolve_rule

SIZES = [64, 32, 10]


def _circuits(gate: float = 0.3):
    """Both rules with the same lr and gate (the digits table sets them per rule)."""
    return {r: learning_circuit(resolve_rule(r), SIZES, 3, "digits", lr=0.125, gate=gate) for r in ("fa", "dfa")}


def test_fa_and_dfa_differ_only_in_b1_source():
    c = _circuits()
    fa, dfa = c["fa"], c["dfa"]
    assert len(fa.populations) == len(dfa.populations)
    for a, b in zip(fa.populations, dfa.populations):
        for f in fields(a):
            assert np.array_equal(np.asarray(getattr(a, f.name)), np.asarray(getattr(b, f.name))), (a.name, f.name)
    assert [k.name for k in fa.connections] == [k.name for k in dfa.connections]
    for a, b in zip(fa.connections, dfa.connections):
        assert np.array_equal(np.asarray(a.weights), np.asarray(b.weights)), a.name
        assert (a.dst, a.dst_port, a.weight_exp, a.plastic) == (b.dst, b.dst_port, b.weight_exp, b.plastic), a.name
        if a.name != "B1":
            assert (a.src, a.src_port) == (b.src, b.src_port)
    out = fa.populations[-2].name if fa.populations[-1].kind == "graded" else fa.populations[-1].name
    assert (fa.connection("B1").src, fa.connection("B1").src_port) == (out, "err")
    assert dfa.connection("B1").src_port == "s" and dfa.connection("B1").src != out
    assert fa.population(out).third_shift == 0          # the relay passes the error unchanged


def test_fa_hidden_error_is_dfa_one_step_later():
    # gate off: the hidden third factor is B e itself (no dependence on the hidden voltage)
    c = _circuits(gate=-1.0)
    data_x = np.random.default_rng(0).random((2, 64))
    timing = onchip_timing("digits", 1)
    hidden = c["fa"].populations[0].name
    rec = {}
    for rule, circ in c.items():
        stream = S.training_stream(circ, data_x, np.array([3, 7]), timing.steps, timing.blank, 5,
                                   timing.target_delay)
        _, r = emulate_learning(circ, stream, rng_seed=1, record=[f"err:{hidden}"])
        rec[rule] = r[f"err:{hidden}"]
    # no weight has changed the error units' input before step 7: DFA's hidden error at steps 4..7
    # (from the error units at 3..6) is FA's at 5..8
    assert np.abs(rec["dfa"][4:8]).sum() > 0
    assert np.array_equal(rec["fa"][5:9], rec["dfa"][4:8])
    assert not rec["fa"][4].any()                         # one hop more: nothing reaches FA's layer at 4
