"""Predictive coding on chip (issue 8): the on-chip check refuses exact PC naming the
transposed weight and accepts the relaxed variant; relaxed PC's learned backward weights learn
on the fixed-point emulator with their own local rule (Kolen-Pollack: ΔB_l = ΔW_{l+1}ᵀ)."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import session as S
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import INPUT, TARGET
from neurocredit.chip.plasticity import compile_terms
from neurocredit.chip import sample_graphs
from neurocredit.rules import get_rule
from neurocredit.rules.locality import check_locality

NAMES = ["fc1", "fc2", "fc3"]
PC_ONCHIP = get_rule("pc_onchip")


def initial_backward(sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1 / np.sqrt(sizes[l + 1]), (sizes[l + 1], sizes[l + 2])) for l in range(len(sizes) - 2)]


@pytest.mark.parametrize("name", ["pc", "pc_fp", "pc_nd", "pc_dense"])
def test_exact_pc_is_refused_naming_the_transposed_weight(name):
    with pytest.raises(OnChipError) as exc:
        C.compile_rule(get_rule(name), n_layers=3)
    msg = str(exc.value)
    assert "not local" in msg
    assert "W2ᵀ, the transposed weight of layer fc2" in msg
    assert "W3ᵀ, the transposed weight of layer fc3" in msg


def test_relaxed_pc_is_local_and_accepted():
    C.compile_rule(PC_ONCHIP, n_layers=3)                  # no exception
    assert check_locality(PC_ONCHIP, NAMES) == []
    assert check_locality(get_rule("pc_relaxed"), NAMES) == []
    assert check_locality(get_rule("pc_lb"), NAMES) == []


@pytest.mark.parametrize("name,why", [("pc", "W2ᵀ")])
def test_local_pc_variants_the_chip_cannot_run_are_refused_with_the_reason(name, why):
    with pytest.raises(OnChipError, match=why):
        C.compile_rule(get_rule(name), n_layers=3)


def test_pc_with_dense_error_weights_learns_gamma_on_the_graded_extension():
    """pc_relaxed: dense learned Γ_l (ΔΓ_l = −η ε_l ⊗ μ_l) with the prediction μ_l as the marked
    extension gx (chip.extensions); its products carry no pre spike."""
    compiled = C.compile_rule(get_rule("pc_relaxed"), n_layers=3)
    assert compiled.error.extensions == ("gx",) and not compiled.error.stock
    assert all(p.dependency.startswith("u") for p in compiled.error)
    assert C.compile_rule(PC_ONCHIP, n_layers=3).error == type(compiled.error)(())


def test_pc_with_backward_derivative_compiles_with_the_box_car_gate():
    """pc_lb: f'(v_l) on B_l ε_(l+1) is the receiving neuron's box-car gate; weight decay on W and B
    as decimated u<d> * w products."""
    rule = get_rule("pc_lb")
    compiled = C.compile_rule(rule, n_layers=2)
    assert any(p.factors == ("w",) for p in compiled.forward) and any(p.factors == ("w",) for p in compiled.feedback)
    assert C.default_spec(rule, 1).gate == 0.3 and C.default_spec(rule, 1).third_shift == 7


def test_pc_weight_decay_compiles_to_a_decimated_product():
    """λη = 1e-2 · 2^-4 per step is below the engine's 2^-7: it becomes m 2^k u<d> w with
    m 2^k / 2^d = λη (here 5 · 2^-7 every 2^6 steps), accepted by the check."""
    from dataclasses import replace
    from neurocredit.rules.dynamical import KP_B_TERMS
    rule = replace(PC_ONCHIP, feedback=replace(PC_ONCHIP.feedback, terms=KP_B_TERMS))
    C.compile_rule(rule, n_layers=3)
    series = compile_terms(KP_B_TERMS, 2 ** -4, "transposed")
    (decay,) = [p for p in series if p.factors == ("w",)]
    assert decay.dependency.startswith("u")
    assert decay.mant * 2.0 ** (decay.exp - decay.decimation) == pytest.approx(-1e-2 * 2 ** -4, rel=1 / 16)


def _circuit(hidden=(12,), seed=0, shift=4):
    g = sample_graphs.random_graph(seed=seed, n_in=10, hidden=hidden, n_out=4, recurrent=False, bias=False)
    base = compile_graph(g).fixed_circuit
    sizes = [10, *hidden, 4]
    return C.build_circuit(base, PC_ONCHIP, initial_backward(sizes, seed + 1), C.OnChipSpec(third_shift=shift))


def _stream(steps, seed, label=1):
    rng = np.random.default_rng(seed)
    x = (rng.random((steps, 10)) < 0.5).astype(np.int64)
    tgt = np.zeros((steps, 4), np.int64)
    tgt[:, label] = 1
    return {INPUT: x, TARGET: tgt}


def test_dw_strings_come_from_the_rule_terms():
    circ = _circuit()
    assert circ.meta["learned_feedback"] == ("B1",) and circ.connection("B1").view == "transposed"
    b = circ.connection("B1")
    w = [c for c in circ.connections if c.plastic and c.name != "B1"]
    assert b.plastic and all(c.plastic.dw == b.plastic.dw for c in w)   # both Term(-1, ...) at the same lr
    assert "x0 * y3" in circ.meta["dw_B"] and "x0 * y2" in circ.meta["dw_B"]


def test_backward_weights_learn_the_transpose_of_the_forward_update():
    """KP on chip: B_1 and W_2 see the same pre/post products and the same Lava random draws,
    so ΔB_1 = ΔW_2ᵀ bit for bit wherever neither clipped, after >= 50 learning steps."""
    circ = _circuit(hidden=(12,), seed=3)
    b0 = np.asarray(next(c for c in circ.connections if c.name == "B1").weights).copy()
    w_out = [c for c in circ.connections if c.plastic and c.name != "B1"][-1]
    w0 = np.asarray(w_out.weights).copy()
    from neurocredit.neurons.fixed_point import stored_weights
    import torch
    b0 = stored_weights(torch.as_tensor(b0), "mixed").numpy()
    w0 = stored_weights(torch.as_tensor(w0), "mixed").numpy()
    w, _ = emulate_learning(circ, _stream(80, 5), rng_seed=4)
    db, dw = w["B1"] - b0, (w[w_out.name] - w0).T
    inside = (np.abs(w["B1"]) < 250) & (np.abs(w[w_out.name].T) < 250)
    assert int((dw != 0).sum()) > 10                      # the output layer learned
    np.testing.assert_array_equal(db[inside], dw[inside])


def test_hidden_error_is_the_backward_projection_of_the_output_error():
    """The relaxation settles on chip: hidden error ε_1[t] = trunc((B_1 ε_2[t-1]) / 2^shift),
    with B_1 as it was before step t's update."""
    circ = _circuit(hidden=(12,), seed=2, shift=2)
    hid, out = [p.name for p in circ.populations if p.kind == "third"]
    inputs = _stream(60, 9)
    _, rec = emulate_learning(circ, inputs, rng_seed=0, record=[f"err:{hid}", f"err:{out}"],
                                 snapshot_every=1)
    e_h, e_o, bs = rec[f"err:{hid}"], rec[f"err:{out}"], rec["w:B1"]
    assert np.abs(e_o).sum() > 0 and np.abs(e_h).sum() > 0
    for t in range(2, 60):
        a = bs[t - 2] @ e_o[t - 1]
        np.testing.assert_array_equal(e_h[t], np.sign(a) * (np.abs(a) >> 2), err_msg=f"step {t}")


def test_emulated_onchip_pc_learns_digits_above_chance():
    from neurocredit.data import load_digits
    data = load_digits(seed=0, standardise=False)
    sizes = [64, 128, 10]
    base = compile_graph(S.initial_graph(sizes, seed=0)).fixed_circuit
    circ = C.build_circuit(base, PC_ONCHIP, initial_backward(sizes, 1), C.default_spec(PC_ONCHIP, 1))
    assert circ.populations[0].third_shift == 7             # the relaxation's error shift, from the rule
    _, hist = S.train(circ, data, 1, seed=0, samples=250, log=lambda s: None)
    assert hist[0]["test_acc"] < 0.25
    assert hist[-1]["test_acc"] > 0.40
    assert hist[-1]["angle_B"] < hist[0]["angle_B"] - 3.0   # B turns toward W_2ᵀ


def test_nir_with_rule_attached_compiles_learns_and_runs_on_lava_and_emulator(tmp_path):
    """NIR graph + relaxed PC rule -> NIR file -> compile -> on-chip learning on both backends
    (equal weights) -> the learned network runs in Lava fixed point and in the emulator, spike
    for spike."""
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.chip.emulator import emulate
    from neurocredit.lava.backend import run_learning
    from neurocredit.lava.run import run_lava
    from neurocredit.nir.export import write
    from neurocredit.nir.load import attach_rule

    path = write(attach_rule(S.initial_graph([10, 12, 4], seed=0), PC_ONCHIP, seed=1), tmp_path / "pc.nir")
    _, circ = S.circuit_from_nir(path, third_shift=2)
    assert circ.meta["rule"] == "pc_onchip" and circ.meta["learned_feedback"] == ("B1",)
    w, _ = emulate_learning(circ, _stream(80, 2), rng_seed=1)
    changed = sum(int((w[c.name] != np.asarray(c.weights)).sum()) for c in circ.connections if c.plastic)
    assert changed > 10
    w_lava, _ = run_learning(circ, _stream(80, 2), rng_seed=1)      # the same learning in Lava
    for c in circ.connections:
        if c.plastic:
            np.testing.assert_array_equal(w[c.name], w_lava[c.name], err_msg=c.name)
    inf = S.inference_circuit(circ, w)
    x = (np.random.default_rng(3).random((30, 10)) < 0.5).astype(np.int64)
    lava = run_lava(inf, x, record=[p.name for p in inf.populations])
    emu = emulate(inf, x, record=[p.name for p in inf.populations])
    for k in lava:
        np.testing.assert_array_equal(lava[k], emu[k].numpy(), err_msg=k)
    assert any(lava[k].any() for k in lava)


def test_nir_without_rule_is_refused(tmp_path):
    from neurocredit.nir.export import write
    path = write(S.initial_graph([10, 12, 4], seed=0), tmp_path / "plain.nir")
    with pytest.raises(OnChipError, match="no learning rule"):
        S.circuit_from_nir(path)


@pytest.mark.parametrize("hidden,seed", [((12,), 3), ((10, 8), 5)])
def test_relaxed_pc_emulator_equals_lava_weight_for_weight(hidden, seed):
    """>= 50 steps of relaxed-PC learning: forward weights (Lava's LearningDense engine) and
    learned backward weights (TransposedLearningDense, Lava's engine too) equal the emulator's, and so do the spikes."""
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = _circuit(hidden=hidden, seed=seed, shift=2)
    inputs = _stream(60, seed + 2)
    pops = [p.name for p in circ.populations if p.kind == "third"]
    w_emu, s_emu = emulate_learning(circ, inputs, rng_seed=4, record=pops)
    w_lava, s_lava = run_learning(circ, inputs, rng_seed=4, record=pops)
    for c in circ.connections:
        if c.plastic:
            np.testing.assert_array_equal(w_emu[c.name], w_lava[c.name], err_msg=c.name)
            assert int((w_emu[c.name] != np.asarray(c.weights)).sum()) > 5, f"{c.name} did not learn"
    for k in pops:
        np.testing.assert_array_equal(s_emu[k], s_lava[k], err_msg=k)
