"""On-chip learning: rules compiled (neurocredit.chip) to product series + feedback connections; the
fixed-point emulator's learning engine equals Lava's (PyLearningDenseModelBitApproximate)
weight for weight; non-local rules are refused with the quantity named."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import session as S
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import INPUT, TARGET
from neurocredit.chip.plasticity import compile_terms, scale_series, scaling_constant
from neurocredit.chip.profile import load_profile
from neurocredit.chip import sample_graphs
from neurocredit.rules import get_rule

STEPS = 60


def circuit(rule_name, hidden, seed=0, spec=None):
    rng = np.random.default_rng(seed)
    g = sample_graphs.random_graph(seed=seed, n_in=10, hidden=hidden, n_out=4, recurrent=False, bias=False)
    base = compile_graph(g).fixed_circuit
    sizes = list(hidden) + [4]
    rule = get_rule(rule_name)
    src = {"next": lambda l: sizes[l + 1], "output": lambda l: 4, "target": lambda l: 4}[rule.feedback.source]
    b = [rng.normal(0, 1 / np.sqrt(sizes[l]), (sizes[l], src(l))) for l in range(len(hidden))]
    return C.build_circuit(base, rule, b, spec or C.OnChipSpec())


def stream(seed, label=1):
    rng = np.random.default_rng(seed)
    x = (rng.random((STEPS, 10)) < 0.5).astype(np.int64)
    tgt = np.zeros((STEPS, 4), np.int64)
    tgt[:, label] = 1
    return {INPUT: x, TARGET: tgt}


@pytest.mark.parametrize("rule_name,hidden", [("dfa", (12,)), ("sdfa", (12,)), ("drtp", (12,)),
                                              ("fa", (12, 8)), ("wm", (12, 8))])
def test_emulator_learning_equals_lava_weight_for_weight(rule_name, hidden):
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = circuit(rule_name, hidden, seed=len(hidden))
    inputs = stream(7)
    pops = [p.name for p in circ.populations if p.kind == "third"]
    w_emu, s_emu = emulate_learning(circ, inputs, rng_seed=11, record=pops)
    w_lava, s_lava = run_learning(circ, inputs, rng_seed=11, record=pops)
    plastic = circ.plastic
    changed = 0
    for c in plastic:
        np.testing.assert_array_equal(w_emu[c.name], w_lava[c.name], err_msg=c.name)
        changed += int((w_emu[c.name] != np.asarray(c.weights)).sum())
    assert changed > 20                      # learning really happened in the 60 steps
    for k in pops:
        np.testing.assert_array_equal(s_emu[k], s_lava[k], err_msg=k)


def test_dw_string_is_generated_and_parsed_by_lava_as_emulated():
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    prof = load_profile("loihi2")
    series = compile_terms(get_rule("dfa").forward, 2 ** -4, "forward", prof)
    parsed = Loihi3FLearningRule(dw=series.dw, t_epoch=1, rng_seed=0)
    got = sorted((p.s_mantissa, p.s_exp - 7, p.factors[0].state_var, p.dependency)
                 for p in parsed.active_product_series["dw"].products)
    assert got == sorted((p.mant, p.exp, p.factors[0], p.dependency) for p in series)
    assert scaling_constant(0.3, prof) == (5, -4)          # 5 * 2^-4 = 0.3125
    with pytest.raises(OnChipError, match="below the smallest"):
        scaling_constant(1e-4, prof)


def test_learning_rate_schedule_requantises_to_the_scaling_grid():
    prof = load_profile("loihi2")
    series = compile_terms(get_rule("dfa").forward, 2 ** -4, "forward", prof)
    consts = lambda s: [(p.mant, p.exp) for p in s]  # noqa: E731
    assert consts(series) == [(-4, -6), (4, -6)]
    assert consts(scale_series(series, 0.5, prof)) == [(-4, -7), (4, -7)]
    assert consts(scale_series(series, 0.36, prof)) == [(-3, -7), (3, -7)]
    # never below the smallest constant, sign kept, factors / dependencies unchanged
    low = scale_series(series, 1e-3, prof)
    assert [(p.mant, p.exp, p.dependency, p.factors) for p in low] == [(-1, -7, "x0", ("y3",)), (1, -7, "x0", ("y2",))]


def test_output_weights_move_toward_the_target():
    circ = circuit("dfa", (12,), seed=3)
    w, _ = emulate_learning(circ, stream(3, label=2), rng_seed=0)
    w0 = np.asarray(next(c for c in circ.connections if c.name == "fc_out").weights)
    dw = (w["fc_out"] - w0).sum(axis=1)
    assert dw[2] > 0 and all(dw[i] <= 0 for i in (0, 1, 3))


@pytest.mark.parametrize("rule_name,quantity", [("bp", "W2ᵀ, the transposed weight of layer fc2"),
                                                ("usf", "sign(W2ᵀ)"), ("frsf", "sign(W3ᵀ)")])
def test_non_local_rules_are_refused_with_the_quantity(rule_name, quantity):
    with pytest.raises(OnChipError) as exc:
        C.compile_rule(get_rule(rule_name), n_layers=3)
    assert "not local" in str(exc.value) and quantity in str(exc.value)


def test_local_rules_compile_or_say_why():
    """The on-chip verdict comes from the compiler; a refusal names what the chip lacks."""
    names = ("fa", "dfa", "sdfa", "drtp", "kp", "pc_onchip", "pal", "pc_relaxed", "wm", "ia")
    ok = {name: C.compile_status(get_rule(name))[0] for name in names}
    assert ok == {"fa": True, "dfa": True, "sdfa": True, "drtp": True, "kp": True, "pc_onchip": True,
                  "pal": True, "pc_relaxed": True, "wm": True, "ia": True}
    assert "TransposedLearningDense" in C.compile_status(get_rule("kp"))[1]
    assert "dw(Γ)" in C.compile_status(get_rule("pc_relaxed"))[1]                 # learned Γ_l on the extension gx
    assert "marked extensions gx" in C.compile_status(get_rule("pc_relaxed"))[1]
    assert "mirror phases" in C.compile_status(get_rule("wm"))[1]
    assert "marked extensions gx" in C.compile_status(get_rule("ia"))[1]          # post_input as the extension gx
    assert "marked extensions rx, ry" in C.compile_status(get_rule("pal"))[1]     # graded-rate circuit (chip.rate)


def test_rule_hardware_flag_agrees_with_the_compiler():
    """Rule.hardware is read: a library rule declares hardware=True exactly when it compiles,
    and a rule that would compile but declares hardware=False is not reported on chip."""
    from dataclasses import replace

    from neurocredit.rules import RULES
    for rule in RULES.values():
        try:
            C.compile_rule(rule)
            compiles = True
        except OnChipError:
            compiles = False
        if compiles:
            assert rule.hardware, f"{rule.name} compiles but declares hardware=False"
    ok, why = C.compile_status(replace(get_rule("dfa"), hardware=False))
    assert not ok and "hardware=False" in why


def test_drtp_lr_scale_is_applied_on_chip():
    """DRTP's lr_scale 0.5 (applied in torch) halves its on-chip constants against DFA's."""
    dfa, drtp = (C.compile_rule(get_rule(n)).forward for n in ("dfa", "drtp"))
    assert [p.mant * 2.0 ** p.exp for p in drtp] == [0.5 * p.mant * 2.0 ** p.exp for p in dfa]


def test_kp_compiles_learned_feedback_and_decimated_decay():
    """KP: W and B get the same pre x signed-error products; the decay −λ·lr·w per update
    (λ = 1e-2, lr = 2^-4), spread over a 16-step sample, is far below the engine's 2^-7 per step:
    it becomes m 2^k u<d> w, which Lava's parser reads back."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    for steps in (1, 16):
        circ = circuit("kp", (12, 8), seed=2, spec=C.OnChipSpec(decay_steps=steps))
        assert circ.meta["learned_feedback"] == ("B1", "B2")
        assert {c.name for c in circ.connections if c.view == "transposed"} == {"B1", "B2"}
        w = {c.name: c.plastic for c in circ.connections}
        assert w["B1"].dw == w["B2"].dw == w[next(c.name for c in circ.connections if c.dst_port == "a" and c.plastic)].dw
        (decay,) = [p for p in w["B1"] if p.factors == ("w",)]
        want = -1e-2 * 2 ** -4 / steps
        assert decay.mant * 2.0 ** (decay.exp - decay.decimation) == pytest.approx(want, rel=0.25)
        parsed = Loihi3FLearningRule(dw=w["B1"].dw, t_epoch=1, rng_seed=0)
        assert parsed.decimate_exponent == decay.decimation
        assert f"{decay.dependency} * w" in w["B1"].dw


def test_kp_emulator_equals_lava_weight_for_weight_through_decay_ticks():
    """>= 130 steps of KP on chip (two decay ticks at u6): forward LearningDense and learned
    feedback TransposedLearningDense in Lava, both on Lava's own engine, equal the emulator's
    weights; B_l turned toward W_(l+1)ᵀ."""
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = circuit("kp", (12, 8), seed=2, spec=C.OnChipSpec(decay_steps=1))     # decay at u6
    assert "u6 * w" in circ.meta["dw_B"]
    rng = np.random.default_rng(5)
    x = (rng.random((130, 10)) < 0.5).astype(np.int64)
    tgt = np.zeros((130, 4), np.int64)
    tgt[:, 2] = 1
    inputs = {INPUT: x, TARGET: tgt}
    w_emu, _ = emulate_learning(circ, inputs, rng_seed=3)
    w_lava, _ = run_learning(circ, inputs, rng_seed=3)
    for c in circ.connections:
        if c.plastic:
            np.testing.assert_array_equal(w_emu[c.name], w_lava[c.name], err_msg=c.name)
            assert int((w_emu[c.name] != np.asarray(c.weights)).sum()) > 5, f"{c.name} did not learn"
    assert S.backward_angle(circ, w_emu) < S.backward_angle(circ, circ.weights())


def test_emulated_onchip_training_learns_digits_above_chance():
    """A short emulated on-chip DFA run (400 samples) lifts test accuracy well above chance."""
    from neurocredit.data import load_digits
    data = load_digits(seed=0, standardise=False)
    base = compile_graph(S.initial_graph([64, 32, 10], seed=0)).fixed_circuit
    b = [np.random.default_rng(1).normal(0, 1 / np.sqrt(32), (32, 10))]
    circ = C.build_circuit(base, get_rule("dfa"), b, C.OnChipSpec(gate=0.3))
    _, hist = S.train(circ, data, epochs=1, samples=400, steps=12, log=lambda s: None)
    assert hist[0]["test_acc"] < 0.25
    assert hist[-1]["test_acc"] > 0.30                # measured 37.8 % (chance 10 %)


def test_float_third_factor_lif_delivers_the_error_in_lava():
    """Float model of ThirdFactorLIF (floating_pt): dW = -C sum_t e[t-1] x[t] (the error reaches the
    third-factor port one Dense step later); exact up to the 3F trace decay exp(-1/65535)."""
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense, LearningDense
    from lava.proc.io.source import RingBuffer as Source

    from neurocredit.lava.processes.process import ThirdFactorLIF
    rng = np.random.default_rng(0)
    n_in, n_out, T = 6, 3, 40
    x = (rng.random((n_in, T)) < 0.5).astype(float)
    e = np.zeros((n_out, T))
    e[0], e[1] = -1.0, 1.0
    series = compile_terms(get_rule("dfa").forward, 0.25, "forward", load_profile("loihi2"))
    rule = Loihi3FLearningRule(dw=series.dw, t_epoch=1)
    w0 = rng.normal(0, 0.3, (n_out, n_in))
    plastic = LearningDense(weights=w0.copy(), learning_rule=rule)
    neurons = ThirdFactorLIF(shape=(n_out,), du=1.0, dv=0.1, vth=1.0, learning_rule=rule)
    err = Dense(weights=np.eye(n_out), num_message_bits=24)
    src, esrc = Source(data=x), Source(data=e)
    src.s_out.connect(plastic.s_in)
    plastic.a_out.connect(neurons.a_in)
    for a, b in [(neurons.s_out_bap, plastic.s_in_bap), (neurons.s_out_y1, plastic.s_in_y1),
                 (neurons.s_out_y2, plastic.s_in_y2), (neurons.s_out_y3, plastic.s_in_y3)]:
        a.connect(b)
    esrc.s_out.connect(err.s_in)
    err.a_out.connect(neurons.a_third_factor_in)
    try:
        neurons.run(condition=RunSteps(num_steps=T), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        w = plastic.weights.get()
    finally:
        neurons.stop()
    want = sum(-0.25 * np.outer(e[:, t - 1], x[:, t]) for t in range(1, T))
    np.testing.assert_allclose(w - w0, want, atol=1e-3)
    assert np.abs(want).sum() > 10


@pytest.mark.slow
def test_lava_onchip_dfa_run_lifts_digits_from_chance_to_60_percent():
    """In Lava itself (Loihi2SimCfg fixed point): 800 training samples streamed with on-chip DFA;
    test accuracy measured with the learned weights by Lava inference (measured: 13.6 % ->
    82.8 % with the emulator's inference, which equals Lava's)."""
    from neurocredit.data import load_digits
    from neurocredit.lava.backend import run_learning
    from neurocredit.lava.run import run_lava
    from neurocredit.neurons.decision import decide
    data = load_digits(seed=0, standardise=False)
    sizes = [64, 128, 10]
    base = compile_graph(S.initial_graph(sizes, seed=0)).fixed_circuit
    b = [np.random.default_rng(1).normal(0, 1 / np.sqrt(128), (128, 10))]
    circ = C.build_circuit(base, get_rule("dfa"), b, C.OnChipSpec(gate=0.3))
    circ, hist = S.train(circ, data, epochs=2, samples=400, steps=16, run=run_learning, log=lambda s: None)
    assert hist[0]["test_acc"] < 0.2
    inf = S.inference_circuit(circ, circ.weights())
    x = np.random.default_rng(999).random((16, *data.x_test.shape)) < data.x_test.numpy()[None]
    out = inf.outputs[0]
    rec = run_lava(inf, x.astype(np.int64), voltage=[out])     # counts, ties by v after the last step
    pred = decide(rec[out].sum(axis=0), rec[f"v:{out}"][-1])
    lava_acc = float((pred == data.y_test.numpy()).mean())
    assert lava_acc == pytest.approx(hist[-1]["test_acc"])     # Lava inference == emulator inference
    assert lava_acc >= 0.60


def test_random_feedback_shapes_follow_the_pathway_source():
    sizes = [64, 40, 20, 10]
    fa = C.random_feedback(get_rule("fa"), sizes, seed=0)
    dfa = C.random_feedback(get_rule("dfa"), sizes, seed=0)
    sdfa = C.random_feedback(get_rule("sdfa"), sizes, seed=0)
    assert [b.shape for b in fa] == [(40, 20), (20, 10)]          # from the next layer
    assert [b.shape for b in dfa] == [(40, 10), (20, 10)]         # from the output error
    zeros = np.mean(np.concatenate([(b == 0).ravel() for b in sdfa]))
    assert 0.85 < zeros < 0.95                                    # sparsity 0.9
    assert np.array_equal(dfa[0], C.random_feedback(get_rule("dfa"), sizes, seed=0)[0])


def test_stream_timing_grows_with_depth_and_the_gate_is_off_deeper():
    one, two, three = (S.stream_timing(n) for n in (1, 2, 3))
    assert (one.steps, one.blank, one.target_delay) == (16, 4, 2)
    assert (two.steps, two.blank, two.target_delay) == (24, 12, 6)
    assert three.blank > two.blank and three.target_delay > two.target_delay
    assert C.default_gate(get_rule("dfa"), 1) == 0.3 and C.default_gate(get_rule("dfa"), 2) is None
    with pytest.raises(OnChipError):
        S.stream_timing(0)
