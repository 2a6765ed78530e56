"""Weight mirror on chip: B_l learns in mirror phases (noise spikes x the next layer's response,
Lava's engine on TransposedLearningDense), emulator == Lava weight for weight, B turns toward
W_(l+1)ᵀ, and a training run alternates mirror phases with FA-style learning."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.lava import learning as LR
from neurocredit.lava import onchip_wm as WM
from neurocredit.lava.compile import compile_graph
from neurocredit.rules import get_rule
from neurocredit.sim.emulator import emulate_learning


def wm_circuit(sizes, seed=0, spec=None):
    base = compile_graph(LR.initial_graph(sizes, seed=seed)).fixed_circuit
    rule = get_rule("wm")
    return LR.build_circuit(base, rule, LR.random_feedback(rule, sizes, seed), spec or LR.OnChipSpec(gate=None))


def start_weights(circ):
    return {c.name: np.asarray(c.weights) for c in circ.connections}


def test_wm_compiles_with_b_fixed_in_training_and_plastic_in_the_mirror_phase():
    circ = wm_circuit([64, 16, 12, 10])
    assert circ.meta["mirror"] == ("B1", "B2") and "transposed" not in circ.meta
    assert all(not c.plastic for c in circ.connections if c.name in ("B1", "B2"))
    mirror = WM.mirror_circuit(circ, start_weights(circ))
    assert mirror.meta["transposed"] == ("B1", "B2")
    assert "x0 * y3" in circ.meta["dw_B"] and "* w" in circ.meta["dw_B"]
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    Loihi3FLearningRule(dw=circ.meta["dw_B"], t_epoch=1, rng_seed=0)      # Lava parses it
    ok, why = LR.onchip_status(get_rule("wm"))
    assert ok and "mirror" in why


def test_mirror_phase_emulator_equals_lava_weight_for_weight():
    pytest.importorskip("lava.proc.dense.process")
    circ = wm_circuit([64, 16, 12, 10], seed=1)
    spec = circ.meta["mirror_spec"]
    mirror = WM.mirror_circuit(circ, start_weights(circ))
    stream = WM.mirror_stream(mirror, 80, spec.mirror_rate, seed=4)
    w_emu, _ = emulate_learning(mirror, stream, rng_seed=4)
    w_lava, _ = LR.run_lava(mirror, stream, rng_seed=4)
    for name in ("B1", "B2"):
        np.testing.assert_array_equal(w_emu[name], w_lava[name], err_msg=name)
        assert int((w_emu[name] != np.asarray(start_weights(circ)[name])).sum()) > 20, f"{name} did not learn"


def test_mirror_phase_aligns_b_with_the_forward_weights():
    circ = wm_circuit([64, 64, 32, 10], seed=2)
    w = start_weights(circ)
    before = LR.backward_angle(circ, w)
    after = LR.backward_angle(circ, {**w, **WM.run_mirror(circ, w, seed=3)})
    assert before > 80 and after < 35                 # measured 89.6° -> 21° (2048 steps)


def test_mirror_mean_input_bias_removes_the_noise_mean():
    """The response neuron's bias is minus its mean input under the noise, so its payload is
    zero-mean: without it ∠(B, Wᵀ) stays far higher (rank-one p² Σ_k W_jk term)."""
    circ = wm_circuit([64, 64, 32, 10], seed=2)
    w = start_weights(circ)
    spec = circ.meta["mirror_spec"]
    mirror = WM.mirror_circuit(circ, w)
    stream = WM.mirror_stream(mirror, 2048, spec.mirror_rate, seed=3)
    _, rec = emulate_learning(mirror, stream, rng_seed=3, record=["mirror_y1"])
    payload = rec["mirror_y1"][1:]
    assert abs(payload.mean()) < 0.1 * payload.std()


def test_wm_training_alternates_mirror_phases_and_keeps_b_aligned():
    from neurocredit.data import load_digits
    data = load_digits(seed=0, standardise=False)
    spec = LR.OnChipSpec(gate=0.3, mirror_every=200, mirror_steps=1024)
    circ = wm_circuit([64, 32, 10], seed=0, spec=spec)
    hist = LR.train(circ, data, epochs=1, samples=400, steps=12, log=lambda s: None)
    assert hist[0]["angle_B"] > 80 and hist[-1]["angle_B"] < 40
    assert hist[0]["test_acc"] < 0.25 and hist[-1]["test_acc"] > 0.30
