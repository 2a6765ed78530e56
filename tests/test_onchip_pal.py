"""PAL on chip (issue 8), emulated fixed point: constants generated from the rule's Terms, the
locality/engine check, the NIR path (torch model with rule 'pal' -> NIR file -> pal_from_nir)
and its refusals, the backward weights aligning with W2ᵀ (better than FA on the same on-chip
task), and the emulator equal to the Lava process models (two implementations) weight for
weight from a NIR file."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.data import teacher_student
from neurocredit.chip.errors import OnChipError
from neurocredit.lava import onchip_pal as PL
from neurocredit.rules import get_rule
from neurocredit.rules.dynamical import PAL_ALPHA
from neurocredit.sim.emulator_pal import PALChip, emulate_pal


@pytest.fixture(autouse=True)
def _one_thread():
    import torch
    torch.set_num_threads(1)


def _quantised(model, scale=256.0):
    q = lambda t: np.clip(np.round(scale * t.detach().numpy().astype(np.float64)), -256, 255)  # noqa: E731
    return q(model.layers[0].weight), q(model.layers[1].weight), q(model.net.B(0))


def test_nir_file_gives_the_models_quantised_weights(tmp_path):
    from neurocredit.nir.export import write
    model = PL.pal_model(20, 8, 5, seed=4)
    path = write(model, tmp_path / "pal.nir")
    net = PL.pal_from_nir(path)
    assert net.rule.name == "pal" and net.sizes == (20, 8, 5)
    for got, want in zip((net.w1, net.w2, net.b), _quantised(model)):
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(net.w1, PL.initial_weights(20, 8, 5, seed=4)[0])
    assert net.compiled.spec == PL.compile_pal(get_rule("pal")).spec
    # another scale quantises the same file differently, with the same convention (and clipping)
    net4 = PL.pal_from_nir(PL.export_pal_model(20, 8, 5, seed=4), scale=1024.0)
    for got, want in zip((net4.w1, net4.w2, net4.b), _quantised(model, 1024.0)):
        np.testing.assert_array_equal(got, want)
    assert net4.w1.max() <= 255 and net4.w1.min() >= -256


def _graph_with(rule_name="pal", sizes=(6, 4, 3)):
    from neurocredit.nir.export import export
    from neurocredit.sim.spiking import SpikingNetwork
    return export(SpikingNetwork(list(sizes), get_rule(rule_name), seed=0))


def test_nir_refusals_name_the_problem():
    g = _graph_with()
    g.metadata = {}
    with pytest.raises(OnChipError, match="carries no learning rule"):
        PL.pal_from_nir(g)
    with pytest.raises(OnChipError, match="not PAL"):
        PL.pal_from_nir(_graph_with("fa"))
    with pytest.raises(OnChipError, match="not local"):
        PL.pal_from_nir(_graph_with("bp"))
    with pytest.raises(OnChipError, match="exactly two Affine layers"):
        PL.pal_from_nir(_graph_with(sizes=(6, 4, 4, 3)))
    g = _graph_with()
    g.nodes["lif1"].metadata = {}
    with pytest.raises(OnChipError, match="feedback matrix B .* missing"):
        PL.pal_from_nir(g)
    g = _graph_with()
    g.nodes["fc2"].bias[0] = 0.5
    with pytest.raises(OnChipError, match="'fc2' has non-zero biases"):
        PL.pal_from_nir(g)

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
    with pytest.raises(OnChipError, match=why):
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


def test_run_pal_vs_fa_from_a_nir_file_is_the_direct_run(tmp_path):
    from neurocredit.nir.export import write
    data = teacher_student(20, 50, 5, 150, 50, seed=0)
    direct = PL.run_pal_vs_fa(get_rule("pal"), data, hidden=12, epochs=1, seed=0, log_points=5)
    net = PL.pal_from_nir(write(PL.pal_model(20, 12, 5, seed=1), tmp_path / "pal.nir"))
    via_nir = PL.run_pal_vs_fa(None, data, epochs=1, seed=0, log_points=5, network=net)
    for label in ("PAL", "FA"):
        assert via_nir[label]["angle"] == direct[label]["angle"]
        for k in ("W1", "W2", "B"):
            np.testing.assert_array_equal(via_nir[label]["weights"][k], direct[label]["weights"][k])
    with pytest.raises(ValueError, match="does not fit"):
        PL.run_pal_vs_fa(None, teacher_student(10, 20, 5, 50, 10, seed=0), network=net)


@pytest.mark.slow
def test_pal_angle_below_30_degrees_and_below_fa():
    data = teacher_student(**TASK, seed=0)
    runs = PL.run_pal_vs_fa(get_rule("pal"), data, hidden=50, epochs=3, seed=0, log_points=10)
    pal, fa = runs["PAL"]["angle"], runs["FA"]["angle"]
    assert pal[-1] < 30.0
    assert all(p < f for p, f in zip(pal[1:], fa[1:]))


def test_lava_models_do_not_import_the_emulator():
    import ast
    import inspect

    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.processes import pal_models
    tree = ast.parse(inspect.getsource(pal_models))
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.startswith("neurocredit.sim") for m in mods), mods


@pytest.mark.parametrize("hidden,decay_every,steps", [(8, 7, 80), (50, None, 100)])
def test_pal_emulator_equals_lava_weight_for_weight(hidden, decay_every, steps, tmp_path):
    """>= 50 steps of PAL (W1, W2 and B learning every step, decay ticks included), starting from
    a NIR file, in Lava fixed point (PALHidden/PALOutput/PALDense processes with their own
    integer learning engine, RingBuffer noise) equal the emulator's."""
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.nir.export import write
    path = write(PL.pal_model(20, hidden, 5, seed=2), tmp_path / "pal.nir")
    net = PL.pal_from_nir(path, decay_every=decay_every) if decay_every else PL.pal_from_nir(path)
    spec = net.compiled.spec
    assert spec.decay_every == (decay_every or 160)
    data = teacher_student(**TASK, seed=1)
    x, y = PL.teacher_stream(data, 1, 10, seed=1)
    x, y = x[:steps], y[:steps]
    w1, w2, b = net.weights()
    w_emu, _ = emulate_pal(w1, w2, b, x, y, spec, seed=3)
    w_lava = PL.run_lava_pal(w1, w2, b, x, y, spec, seed=3)
    for k, w0 in (("W1", w1), ("W2", w2), ("B", b)):
        np.testing.assert_array_equal(w_emu[k], w_lava[k], err_msg=k)
        assert int((w_emu[k] != w0).sum()) > 3, f"{k} did not learn"
