"""PAL on chip (issue 8), emulated fixed point: constants generated from the rule's Terms, the
locality/engine check, and the backward weights aligning with W2ᵀ (better than FA on the same
on-chip task)."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.data import teacher_student
from neurocredit.lava import learning as LR
from neurocredit.lava import onchip_pal as PL
from neurocredit.rules import get_rule
from neurocredit.rules.dynamical import PAL_ALPHA
from neurocredit.sim.emulator_pal import PALChip, emulate_pal

TASK = dict(n_in=20, n_hidden=50, n_out=5, n_train=2000, n_test=500)


def test_pal_is_local_and_compiles_from_its_terms():
    comp = PL.compile_pal(get_rule("pal"))
    assert comp.spec.c_w == (-1, -7)                     # −η e ⊗ r at the engine's smallest constant
    assert comp.spec.c_b == (1, -7)                      # +η_B ξ ⊗ r_HP
    assert comp.spec.c_alpha == (-1, -7)
    # the decay tick keeps the rule's α: 2^-7 / every == α · 2^-7 · 2^-3
    assert comp.spec.decay_every == round(1 / (2 ** -3 * PAL_ALPHA))
    assert "y1" in comp.products["B"] and "w" in comp.products["B"]


@pytest.mark.parametrize("name,why", [("bp", "not local"), ("usf", "sign"), ("fa", "not PAL"),
                                      ("pc", "W2ᵀ")])
def test_non_pal_or_non_local_rules_are_refused(name, why):
    with pytest.raises(LR.OnChipError, match=why):
        PL.check_onchip_pal(get_rule(name), ["fc1", "fc2"])


def test_emulated_pal_is_seeded_and_shape_checked():
    w1, w2, b = PL.initial_weights(4, 6, 2, seed=0)
    rng = np.random.default_rng(0)
    x = rng.integers(-20, 20, (200, 4))
    y = rng.integers(-10, 10, (200, 2))
    a, _ = emulate_pal(w1, w2, b, x, y, PALChip(), seed=3)
    c, _ = emulate_pal(w1, w2, b, x, y, PALChip(), seed=3)
    d, _ = emulate_pal(w1, w2, b, x, y, PALChip(), seed=4)
    for k in a:
        np.testing.assert_array_equal(a[k], c[k])
    assert any((a[k] != d[k]).any() for k in a)
    with pytest.raises(ValueError, match="shape mismatch"):
        emulate_pal(w1, w2, b[:3], x, y, PALChip())


def test_pal_backward_weights_align_better_than_fa_short_run():
    data = teacher_student(**TASK, seed=0)
    runs = PL.run_pal_vs_fa(get_rule("pal"), data, hidden=50, epochs=1, seed=0, log_points=10)
    pal, fa = runs["PAL"]["angle"], runs["FA"]["angle"]
    assert pal[-1] < runs["PAL"]["angle_start"] - 30      # B turned toward W2ᵀ from ~90°
    assert pal[-1] < fa[-1] - 15
    assert max(pal[3:]) < min(fa[3:])


@pytest.mark.slow
def test_pal_angle_below_30_degrees_and_below_fa():
    data = teacher_student(**TASK, seed=0)
    runs = PL.run_pal_vs_fa(get_rule("pal"), data, hidden=50, epochs=3, seed=0, log_points=10)
    pal, fa = runs["PAL"]["angle"], runs["FA"]["angle"]
    assert pal[-1] < 30.0
    assert all(p < f for p, f in zip(pal[1:], fa[1:]))


@pytest.mark.parametrize("hidden,decay_every,steps", [(8, 7, 80), (50, None, 100)])
def test_pal_emulator_equals_lava_weight_for_weight(hidden, decay_every, steps):
    """>= 50 steps of PAL (W1, W2 and B learning every step, decay ticks included) in Lava fixed
    point (PALHidden/PALOutput/PALDense processes, RingBuffer noise) equal the emulator's."""
    pytest.importorskip("lava.proc.dense.process")
    from dataclasses import replace
    spec = PL.compile_pal(get_rule("pal")).spec
    if decay_every:
        spec = replace(spec, decay_every=decay_every)
    data = teacher_student(**TASK, seed=1)
    x, y = PL.teacher_stream(data, 1, 10, seed=1)
    x, y = x[:steps], y[:steps]
    w1, w2, b = PL.initial_weights(20, hidden, 5, seed=2)
    w_emu, _ = emulate_pal(w1, w2, b, x, y, spec, seed=3)
    w_lava = PL.run_lava_pal(w1, w2, b, x, y, spec, seed=3)
    for k, w0 in (("W1", w1), ("W2", w2), ("B", b)):
        np.testing.assert_array_equal(w_emu[k], w_lava[k], err_msg=k)
        assert int((w_emu[k] != w0).sum()) > 3, f"{k} did not learn"
