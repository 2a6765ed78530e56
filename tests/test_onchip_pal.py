"""PAL on chip through the one rule compiler (issue 13; before: a hand-written stack): the rule
compiles to a graded-rate circuit (OU noise from leaky integrators, high-passed potentials,
graded extension factors rx·ry, B learning at every step), read from a NIR file with its rule,
refusals named, constants generated from the rule's Terms (the decay keeps the rule's α), the
backward weights aligning with W2ᵀ better than FA on the same on-chip task, and the emulator
equal to Lava (RateUnits / LeakyIntegrator processes, the generic ExtendedLearningDense) weight
for weight."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from neurocredit.chip import circuits as C
from neurocredit.chip import rate as R
from neurocredit.chip import session as S
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import NO_LEARNING
from neurocredit.chip.rate_circuits import quantise, rate_streams
from neurocredit.data import teacher_student
from neurocredit.rules import get_rule
from neurocredit.rules.dynamical import PAL_ALPHA


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _student(sizes=(20, 12, 5), seed=1, rule="pal"):
    """A torch model with the rule attached and FA's initialisation, biases zero."""
    from neurocredit.sim.spiking import SpikingNetwork
    net = SpikingNetwork(list(sizes), get_rule(rule), seed=seed)
    with torch.no_grad():
        for layer in net.layers:
            layer.bias.zero_()
    return net


def _graph(sizes=(20, 12, 5), seed=1, rule="pal"):
    from neurocredit.nir.export import export
    return export(_student(sizes, seed, rule))


def _angle(b, w_t) -> float:
    b, w_t = np.ravel(b).astype(float), np.ravel(w_t).astype(float)
    return float(np.degrees(np.arccos(np.clip(b @ w_t / np.linalg.norm(b) / np.linalg.norm(w_t), -1, 1))))


def test_nir_file_gives_a_graded_rate_circuit_with_the_models_quantised_weights(tmp_path):
    from neurocredit.nir.export import write
    model = _student(seed=4)
    rule, circ = S.circuit_from_nir(write(model, tmp_path / "pal.nir"))
    assert rule.name == "pal" and circ.meta["graded_io"]
    kinds = {p.name: p.kind for p in circ.populations}
    assert kinds == {"xi1": R.INTEGRATOR, "layer1": R.RATE, "layer2": R.RATE}
    q = lambda t: quantise(t.detach().numpy().astype(np.float64), 256.0)  # noqa: E731
    np.testing.assert_array_equal(circ.connection("W1").weights, q(model.layers[0].weight))
    np.testing.assert_array_equal(circ.connection("W2").weights, q(model.layers[1].weight))
    np.testing.assert_array_equal(circ.connection("B1").weights, q(model.net.B(0)))
    assert circ.connection("W1").weight_exp == -8 and circ.connection("W2").weight_exp == -7
    b1 = circ.connection("B1")
    assert (b1.src, b1.src_port, b1.dst, b1.dst_port) == ("layer2", "err", "layer1", "third")
    assert (b1.graded.src, b1.graded.port, b1.graded_post.src, b1.graded_post.port) == ("layer2", "hp", "layer1", "xi")
    assert circ.connection("xi1->layer1").dst_port == "noise"


def test_nir_refusals_name_the_problem():
    g = _graph()
    g.metadata = {}
    with pytest.raises(OnChipError, match="carries no learning rule"):
        S.circuit_from_nir(g)
    with pytest.raises(OnChipError, match="not local"):
        S.circuit_from_nir(_graph(rule="bp"))
    g = _graph()
    g.nodes["lif1"].metadata = {}
    with pytest.raises(OnChipError, match="feedback matrix B .* missing"):
        S.circuit_from_nir(g)
    g = _graph()
    g.nodes["fc2"].bias[0] = 0.5
    with pytest.raises(OnChipError, match="non-zero biases"):
        S.circuit_from_nir(g)


def test_pal_compiles_from_its_terms_with_the_rules_alpha():
    """W: −η · rx · ry on a tick every 8 steps (η = 2^-10 per integer product is below the engine's
    smallest constant 2^-7); B: +η_B ξ·r_HP every step (read 3 bits coarser, the constant 8x
    larger) and the decay −α η_B B on a decimated tick: the ratio of the two is the rule's α."""
    rule, circ = S.circuit_from_nir(_graph())
    (w1,) = {c.plastic.dw for c in circ.plastic if c.name.startswith("W")}
    assert w1 == "-1 * 2^-7 * u3 * ry * rx"
    b = circ.connection("B1").plastic
    hebb = next(p for p in b if p.extensions)
    decay = next(p for p in b if p.factors == ("w",))
    assert (hebb.mant, hebb.exp, hebb.dependency) == (1, -7, "u0") and set(hebb.factors) == {"rx", "ry"}
    spec = circ.meta["how"]
    assert "rate_noise" in spec and "marked extensions rx, ry" in spec
    read = 2 ** (R.RateSpec().hp_read_shift + R.RateSpec().xi_read_shift)
    per_integer_product = hebb.mant * 2.0 ** hebb.exp / read
    per_step_decay = -decay.mant * 2.0 ** (decay.exp - decay.decimation)
    assert per_step_decay / per_integer_product == pytest.approx(PAL_ALPHA, rel=decay.error + 1e-9)
    assert decay.error <= 1 / 16 + 1e-9                  # the compiler's reported quantisation error
    assert C.compile_status(get_rule("pal"))[0]


def test_pal_from_rule_compiles_with_the_rules_alpha_and_lr_scale():
    """W: −η·dt · rx·ry and B: +η·lr_scale·dt · rx·ry in integer units (rate.product_scales: the
    product keeps the rule's value in float units), the decay −α η_B dt B on a decimated tick: the
    constants are the rule's η, lr_scale, dt and α within the reported quantisation errors."""
    rule, circ = S.circuit_from_nir(_graph(), lr=0.01, rate=R.RateSpec(from_rule=True))
    spec = C.default_spec(rule, 1, lr=0.01, rate=R.RateSpec(from_rule=True))
    rs, _ = R.for_rule(dict(rule.params), spec.rate)
    scale_w, scale_b = R.product_scales(rs)
    dt = rule.param("dt")
    value = lambda p: p.mant * 2.0 ** (p.exp - (p.decimation or 0))  # noqa: E731
    (w,) = {c.plastic for c in circ.plastic if c.name.startswith("W")}
    (pw,) = list(w)
    assert set(pw.factors) == {"rx", "ry"}
    assert value(pw) == pytest.approx(-spec.lr * dt * scale_w, rel=pw.error + 1e-9)
    b = circ.connection("B1").plastic
    hebb = next(p for p in b if p.extensions)
    decay = next(p for p in b if p.factors == ("w",))
    eta_b = spec.lr * rule.feedback.lr_scale * dt
    assert value(hebb) == pytest.approx(eta_b * scale_b, rel=hebb.error + 1e-9)
    assert -value(decay) == pytest.approx(eta_b * PAL_ALPHA, rel=decay.error + 1e-9)
    assert max(pw.error, hebb.error, decay.error) <= 1 / 8 + 1e-9     # the compiler's reported errors
    how = circ.meta["how"]
    assert "rate_noise" in how and "marked extensions rx, ry" in how and "dynamics from the rule" in how
    assert C.compile_status(get_rule("pal"))[0]
    fast = C.compile_rule(rule, C.default_spec(rule, 1, lr=4 * spec.lr, rate=spec.rate), n_layers=2)
    assert value(next(p for p in fast.feedback if p.extensions)) > 2 * value(hebb)   # B's rate follows lr · lr_scale


def test_dynamics_integers_come_from_the_rules_params():
    """One chip step = the rule's dt: leaks 2^-k nearest dt/τ, noise increments std
    potential_scale · σ · sqrt(2 · 2^-k), the noise read shift fitting ±3 stationary stds in 4 bits;
    the library's PAL params give leaks 1/2 and σ 4.8; dt 0.025 and σ 0.707 give the integers the
    hand-written stack used (leaks 1/4, increments 8, read shift 2); a τ off the 2^k grid reports
    its error; a rule without the params keeps RateSpec's integers."""
    base = R.RateSpec()
    spec, err = R.for_rule(dict(get_rule("pal").params), base)
    assert (spec.xi_shift, spec.hp_shift, spec.xi_read_shift) == (1, 1, 1)
    assert spec.noise_std == pytest.approx(16 * 0.3) and max(err.values()) == 0.0
    old, _ = R.for_rule({"dt": 0.025, "tau_xi": 0.1, "tau_hp": 0.1, "noise_std": 0.707}, base)
    assert (old.xi_shift, old.hp_shift, old.xi_read_shift) == (2, 2, 2) and round(old.noise_std) == 8
    off, err = R.for_rule({"dt": 0.05, "tau_xi": 0.15, "tau_hp": 0.1}, base)
    assert off.xi_shift == 2 and err["xi_shift"] == pytest.approx(abs(0.25 - 1 / 3) * 3)
    assert R.for_rule({}, base) == (base, {})
    with pytest.raises(ValueError, match="dt <= tau"):
        R.for_rule({"dt": 0.5, "tau_xi": 0.1}, base)
    steps = 4000
    xi = np.zeros(1)
    vals = []
    for n in R.white_noise(steps, 1, spec.noise_std, 0)[:, 0]:
        xi = xi - np.sign(xi) * (np.abs(xi).astype(np.int64) >> spec.xi_shift) + n
        vals.append(xi[0])
    assert np.std(vals[100:]) == pytest.approx(16 * 0.3 / np.sqrt(1 - 0.25), rel=0.15)   # the rule's OU std


@pytest.mark.parametrize("name,why", [("bp", "not local"), ("usf", "sign")])
def test_non_local_rules_are_refused(name, why):
    with pytest.raises(OnChipError, match=why):
        C.compile_rule(get_rule(name), n_layers=2)


def test_emulated_pal_is_seeded_and_shape_checked():
    from neurocredit.chip.rate_circuits import build_rate_circuit
    rule, circ = S.circuit_from_nir(_graph(sizes=(4, 6, 2)))
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 1, (10, 4)), rng.normal(0, 1, (10, 2))
    a, _ = emulate_learning(circ, rate_streams(circ, x, y, 20, 0, seed=3), 1)
    c, _ = emulate_learning(circ, rate_streams(circ, x, y, 20, 0, seed=3), 1)
    d, _ = emulate_learning(circ, rate_streams(circ, x, y, 20, 0, seed=4), 1)
    for k in a:
        np.testing.assert_array_equal(a[k], c[k])
    assert any((a[k] != d[k]).any() for k in a)
    compiled = C.compile_rule(rule, C.default_spec(rule, 1), n_layers=2)
    with pytest.raises(OnChipError, match="B1 has shape"):
        build_rate_circuit([np.zeros((6, 4)), np.zeros((2, 6))], [np.zeros((3, 2))], compiled, R.RateSpec())


def _pal_vs_fa(samples: int, hidden: int, seed: int = 0, epochs: int = 1, points: int = 10):
    data = teacher_student(20, 50, 5, 2000, 100, seed=seed)
    _, circ = S.circuit_from_nir(_graph(sizes=(20, hidden, 5), seed=seed + 1))
    order = np.concatenate([np.random.default_rng(seed + e).permutation(2000)[:samples] for e in range(epochs)])
    stream = rate_streams(circ, data.x_train.numpy()[order], data.y_train.numpy()[order], 20, 0, seed)
    every = len(stream["input"]) // points
    b0 = circ.connection("B1").weights
    out = {"start": _angle(b0, circ.connection("W2").weights.T)}
    for label, c in (("PAL", circ), ("FA", circ.with_plasticity({"B1": NO_LEARNING}))):
        _, rec = emulate_learning(c, stream, seed, snapshot_every=every)
        bs = rec.get("w:B1", [b0] * points)
        out[label] = [_angle(b, w2.T) for b, w2 in zip(bs, rec["w:W2"])]
    return out


def test_pal_backward_weights_align_better_than_fa_short_run():
    runs = _pal_vs_fa(samples=400, hidden=20)
    pal, fa = runs["PAL"], runs["FA"]
    assert pal[-1] < runs["start"] - 30                  # B turned toward W2ᵀ from ~90°
    assert pal[-1] < fa[-1] - 15
    assert max(pal[5:]) < min(fa[5:])


@pytest.mark.slow
def test_pal_angle_below_30_degrees_and_below_fa():
    runs = _pal_vs_fa(samples=2000, hidden=50, epochs=3)
    pal, fa = runs["PAL"], runs["FA"]
    assert pal[-1] < 30.0
    assert all(p < f for p, f in zip(pal[1:], fa[1:]))


def test_lava_rate_models_do_not_import_the_emulators_dynamics():
    import ast
    import inspect

    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.processes import rate_models
    tree = ast.parse(inspect.getsource(rate_models))
    mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.startswith("neurocredit.chip") for m in mods), mods


@pytest.mark.parametrize("hidden,samples", [(8, 26), (50, 5)])
def test_pal_emulator_equals_lava_weight_for_weight(hidden, samples):
    """>= 100 steps of PAL (W1, W2 and B learning, the decay's u9 tick at step 512 included for
    the small net), from a NIR file, in Lava fixed point equal the emulator's."""
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    _, circ = S.circuit_from_nir(_graph(sizes=(20, hidden, 5), seed=2))
    data = teacher_student(20, 50, 5, 200, 10, seed=1)
    stream = rate_streams(circ, data.x_train.numpy()[:samples], data.y_train.numpy()[:samples], 20, 0, seed=3)
    same, steps, got = S.check_backends(circ, stream, {"emulator": emulate_learning, "lava": run_learning}, seed=3)
    assert steps >= 100
    for c in circ.plastic:
        np.testing.assert_array_equal(got["emulator"][c.name], got["lava"][c.name], err_msg=c.name)
        assert int((got["lava"][c.name] != c.weights).sum()) > 3, f"{c.name} did not learn"
    assert same


def test_pal_trains_on_digits_through_the_session_and_chips_together_equal_each():
    """session.train streams graded values into the graded-rate circuit and evaluates its rates;
    train_chips (two seeds side by side) gives each seed's train() history and weights."""
    from neurocredit.chip.compile import compile_graph
    from neurocredit.data import Dataset, load_digits
    rule = get_rule("pal")
    circuits, datas = [], []
    for seed in (0, 1):
        d = load_digits(seed=seed, standardise=False)
        datas.append(Dataset(d.name, d.x_train[:100], d.y_train[:100], d.x_test[:40], d.y_test[:40], d.n_classes))
        prog = compile_graph(S.initial_graph([64, 8, 10], seed=seed))
        circuits.append(C.build_circuit(prog.fixed_circuit, rule, C.random_feedback(rule, [64, 8, 10], seed),
                                        C.default_spec(rule, 1), float_base=prog.float_circuit))
    kw = dict(steps=8, blank=2, samples=20, target_delay=1, log=lambda s: None)
    together, hists = S.train_chips(circuits, datas, 1, [0, 1], **kw)
    for k, seed in enumerate((0, 1)):
        alone, hist = S.train(circuits[k], datas[k], 1, seed=seed, **kw)
        assert [h["test_acc"] for h in hist] == [h["test_acc"] for h in hists[k]]
        assert hist[-1]["angle_B"] < hist[0]["angle_B"]
        for c in alone.plastic:
            np.testing.assert_array_equal(alone.connection(c.name).weights, together[k].connection(c.name).weights)
