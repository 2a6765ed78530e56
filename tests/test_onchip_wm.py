"""Weight mirror on chip: B_l learns in mirror phases (noise spikes x the next layer's response,
Lava's engine on TransposedLearningDense), emulator == Lava weight for weight, B turns toward
W_(l+1)ᵀ, and a training run alternates mirror phases with FA-style learning."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import phases as PH
from neurocredit.chip import session as S
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.rules import get_rule


def wm_circuit(sizes, seed=0, spec=None):
    base = compile_graph(S.initial_graph(sizes, seed=seed)).fixed_circuit
    rule = get_rule("wm")
    return C.build_circuit(base, rule, C.random_feedback(rule, sizes, seed), spec or C.OnChipSpec(gate=None))


def mirror(circ, w):
    (phase,) = circ.phases
    return phase, PH.phase_circuit(phase, w, circ)


def start_weights(circ):
    return {c.name: np.asarray(c.weights) for c in circ.connections}


def test_wm_compiles_with_b_fixed_in_training_and_plastic_in_the_mirror_phase():
    circ = wm_circuit([64, 16, 12, 10])
    assert circ.meta["learned_feedback"] == ("B1", "B2") and len(circ.phases) == 1
    assert all(not c.plastic for c in circ.connections if c.name in ("B1", "B2"))
    _, m = mirror(circ, start_weights(circ))
    assert {c.name for c in m.connections if c.view == "transposed" and c.plastic} == {"B1", "B2"}
    assert "x0 * y3" in circ.meta["dw_B"] and "* w" in circ.meta["dw_B"]
    from lava.magma.core.learning.learning_rule import Loihi3FLearningRule
    Loihi3FLearningRule(dw=circ.meta["dw_B"], t_epoch=1, rng_seed=0)      # Lava parses it
    ok, why = C.compile_status(get_rule("wm"))
    assert ok and "mirror" in why


def test_mirror_phase_emulator_equals_lava_weight_for_weight():
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = wm_circuit([64, 16, 12, 10], seed=1)
    phase, m = mirror(circ, start_weights(circ))
    stream = PH.phase_stream(phase, m, 80, seed=4)
    w_emu, _ = emulate_learning(m, stream, rng_seed=4)
    w_lava, _ = run_learning(m, stream, rng_seed=4)
    for name in ("B1", "B2"):
        np.testing.assert_array_equal(w_emu[name], w_lava[name], err_msg=name)
        assert int((w_emu[name] != np.asarray(start_weights(circ)[name])).sum()) > 20, f"{name} did not learn"


def test_mirror_phase_aligns_b_with_the_forward_weights():
    circ = wm_circuit([64, 64, 32, 10], seed=2)
    w = start_weights(circ)
    before = S.backward_angle(circ, w)
    after = S.backward_angle(circ, {**w, **S.run_phases(circ, w, seed=3)})
    assert before > 80 and after < 35                 # measured 89.6° -> 21° (2048 steps)


def test_mirror_mean_input_bias_removes_the_noise_mean():
    """The response neuron's bias is minus its mean input under the noise, so its payload is
    zero-mean: without it ∠(B, Wᵀ) stays far higher (rank-one p² Σ_k W_jk term)."""
    circ = wm_circuit([64, 64, 32, 10], seed=2)
    w = start_weights(circ)
    phase, m = mirror(circ, w)
    stream = PH.phase_stream(phase, m, 2048, seed=3)
    _, rec = emulate_learning(m, stream, rng_seed=3, record=["mirror_y1"])
    payload = rec["mirror_y1"][1:]
    assert abs(payload.mean()) < 0.1 * payload.std()


def test_wm_training_alternates_mirror_phases_and_keeps_b_aligned():
    from neurocredit.data import load_digits
    data = load_digits(seed=0, standardise=False)
    spec = C.OnChipSpec(gate=0.3, mirror_every=200, mirror_steps=1024)
    circ = wm_circuit([64, 32, 10], seed=0, spec=spec)
    _, hist = S.train(circ, data, epochs=1, samples=400, steps=12, log=lambda s: None)
    assert hist[0]["angle_B"] > 80 and hist[-1]["angle_B"] < 40
    assert hist[0]["test_acc"] < 0.25 and hist[-1]["test_acc"] > 0.30
