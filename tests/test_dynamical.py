"""Dynamical rules: predictive coding, activation relaxation, dynamic inversion, PAL, conv."""
from __future__ import annotations

import math
import warnings

import pytest
import torch

from neurocredit.data import load_digits, teacher_student
from neurocredit.rules import RULES, check_locality, get_rule
from neurocredit.sim.losses import target_vector
from neurocredit.sim.metrics import bp_reference, cosine
from neurocredit.sim.network import Network
from neurocredit.sim.updates import local_updates

torch.set_num_threads(1)

DYNAMICAL = ["pc", "pc_fp", "pc_lb", "pc_nd", "pc_dense", "pc_relaxed", "ar", "ar_simplified",
             "ar_nf", "di", "pal"]


@pytest.fixture(scope="module")
def batch():
    d = load_digits(seed=0)
    return d.x_train[:64], d.y_train[:64]


def updates_and_grads(rule, x, y, sizes=(64, 48, 32, 10), activation="tanh", seed=0):
    net = Network(list(sizes), rule, activation, seed=seed)
    with torch.no_grad():
        upd, state = local_updates(net, x, target_vector(y, 10, "ce"), "ce")
    deltas, grads = bp_reference(net, x, y, "ce")
    return net, upd, state, deltas, grads


def test_every_dynamical_rule_is_registered():
    for name in DYNAMICAL:
        assert name in RULES
        assert RULES[name].dynamics != "feedforward"


@pytest.mark.parametrize("name", ["pc_fp", "ar"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_exact_rules_match_backprop_per_layer(batch, name, activation):
    x, y = batch
    _, upd, _, _, grads = updates_and_grads(get_rule(name), x, y, activation=activation)
    cosines = [cosine(dw, -g) for dw, g in zip(upd.weight, grads)]
    assert min(cosines) >= 0.99, cosines


def test_classic_pc_is_close_to_backprop_but_not_exact(batch):
    x, y = batch
    _, upd, _, _, grads = updates_and_grads(get_rule("pc"), x, y)
    cosines = [cosine(dw, -g) for dw, g in zip(upd.weight, grads)]
    assert min(cosines) > 0.8
    assert max(cosines) < 0.9999     # predictions move, so not BP's update exactly


def whole_net_cosine(upd, grads) -> float:
    return cosine(torch.cat([d.flatten() for d in upd.weight]),
                  torch.cat([-g.flatten() for g in grads]))


def test_relaxation_converges_with_steps(batch):
    x, y = batch
    for name in ("pc", "pc_fp", "ar"):
        cos = []
        for steps in (1, 5, 40):   # the T-step Euler trajectory (fixed-step mode, tolerance 0)
            rule = get_rule(name).with_params(steps=steps, tolerance=0.0)
            _, upd, _, _, grads = updates_and_grads(rule, x, y)
            cos.append(whole_net_cosine(upd, grads))
        assert cos[0] < cos[1] < cos[2], (name, cos)
        assert cos[0] < 0.9


def test_no_derivative_switch_drops_f_prime(batch):
    x, y = batch
    # fixed steps (tolerance 0): this checks the fixed point itself to 1e-4
    _, _, s_fp, _, _ = updates_and_grads(get_rule("pc_fp").with_params(tolerance=0.0), x, y)
    net, _, s_nd, _, _ = updates_and_grads(get_rule("pc_nd").with_params(tolerance=0.0), x, y)
    # with fixed prediction the no-derivative error settles to W_{l+1}ᵀ ε_{l+1}
    expect = s_nd.errors[2] @ net.layers[2].weight
    assert torch.allclose(s_nd.errors[1], expect, atol=1e-4)
    assert not torch.allclose(s_fp.errors[1], s_nd.errors[1], atol=1e-3)


def test_learned_backward_weights_follow_kolen_pollack(batch):
    x, y = batch
    for name in ("pc_lb", "ar_simplified"):
        rule = get_rule(name)
        net, upd, state, _, _ = updates_and_grads(rule, x, y)
        decay = [t for t in rule.feedback.terms if t.factors == ("weight",)][0].coef
        for l in (0, 1):
            hebb_b = upd.feedback[l] - decay * net.B(l)
            hebb_w = upd.weight[l + 1] - decay * net.layers[l + 1].weight
            assert torch.allclose(hebb_b, hebb_w.T, atol=1e-5), name


def test_dense_error_weights_exist_learn_and_do_not_change_the_fixed_point(batch):
    x, y = batch
    rule = get_rule("pc_dense").with_params(steps=80)
    net, upd, state, _, grads = updates_and_grads(rule, x, y)
    gamma = net.error_weight(0)
    assert gamma is not None and gamma.shape == (48, 48)
    assert (gamma.detach() != 0).float().mean() > 0.99          # dense, not one-to-one
    assert gamma.grad is not None and gamma.grad.abs().sum() > 0
    assert gamma in net.learned_feedback_params()
    assert min(cosine(dw, -g) for dw, g in zip(upd.weight, grads)) > 0.99
    _, upd_few, _, _, grads_few = updates_and_grads(get_rule("pc_dense").with_params(steps=3), x, y)
    assert whole_net_cosine(upd_few, grads_few) < 0.9            # the random Γ matters early on


def test_locality_declarations():
    for name in ("pc", "pc_fp", "pc_nd", "pc_dense", "ar"):
        violations = check_locality(get_rule(name))
        assert violations and any("W2ᵀ" in str(v) for v in violations), name
        assert not get_rule(name).local
    for name in ("pc_lb", "pc_relaxed", "ar_simplified", "ar_nf", "di", "pal"):
        assert check_locality(get_rule(name)) == [], name
        assert get_rule(name).local


def test_relaxed_pc_has_all_three_switches():
    r = get_rule("pc_relaxed")
    assert r.feedback.kind == "learned" and not r.feedback.derivative and r.param("dense_error")


# -- conv layers ------------------------------------------------------------------------

def test_conv_layer_outer_and_transpose_match_autograd():
    from neurocredit.sim.layers import Conv2d
    g = torch.Generator().manual_seed(0)
    conv = Conv2d((3, 8, 8), 5, kernel=3, stride=2, generator=g, bias=False)
    x = torch.randn(4, 3 * 64, requires_grad=True)
    a = conv(x)
    e = torch.randn_like(a)
    (a * e).sum().backward()
    assert torch.allclose(conv.outer(e, x.detach()), conv.weight.grad, atol=1e-5)
    assert torch.allclose(conv.transpose(e).flatten(1), x.grad, atol=1e-5)
    m = conv.dense_matrix()
    assert torch.allclose(x.detach() @ m.T, a.detach().flatten(1), atol=1e-5)


def test_network_from_specs_and_plain_constructor_agree():
    a = Network([64, 32, 10], get_rule("fa"), seed=4)
    b = Network.from_specs((64,), ["dense:32", "dense:10"], get_rule("fa"), seed=4)
    assert a.sizes == b.sizes
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k])


@pytest.mark.parametrize("spec", ["conv:0:3", "pool:2", "dense", "conv:a:3",
                                  {"type": "conv", "channels": 4, "kernel": 9, "padding": 0}])
def test_bad_layer_specs_are_refused(spec):
    with pytest.raises(ValueError):
        Network.from_specs((1, 8, 8), [spec, "flatten", "dense:10"], get_rule("fa"))


def test_conv_after_flatten_is_refused():
    with pytest.raises(ValueError, match="conv"):
        Network.from_specs((1, 8, 8), ["flatten", "conv:4:3", "dense:10"], get_rule("fa"))


@pytest.mark.parametrize("name", ["ar", "pc_fp"])
def test_exact_relaxation_on_a_conv_net_matches_backprop(batch, name):
    x, y = batch
    net = Network.from_specs((1, 8, 8), ["conv:4:3", "conv:8:3:2", "flatten", "dense:10"],
                             get_rule(name).with_params(steps=60), "tanh")
    with torch.no_grad():
        upd, _ = local_updates(net, x, target_vector(y, 10, "ce"), "ce")
    _, grads = bp_reference(net, x, y, "ce")
    assert min(cosine(d, -g) for d, g in zip(upd.weight, grads)) > 0.99


@pytest.mark.parametrize("name", ["dfa", "sdfa", "mdfa", "ar_simplified"])
def test_feedback_rules_train_a_conv_net(name):
    from neurocredit.sim.train import TrainConfig, train
    d = load_digits(seed=0)
    net = Network.from_specs((1, 8, 8), ["conv:4:3", "flatten", "dense:32", "dense:10"],
                             get_rule(name), "relu", seed=0)
    before = [layer.weight.detach().clone() for layer in net.layers]
    res = train(get_rule(name), d, [], TrainConfig(epochs=2, progress=False, activation="relu"),
                net=net)
    assert res.final["test_acc"] > 0.6
    assert not torch.equal(before[0], net.layers[0].weight)     # the conv layer learned
    assert "angle_WT_B" in res.final["layers"][0]


# -- dynamic inversion ----------------------------------------------------------------

def test_dynamic_inversion_fixed_point_is_the_leaky_inverse(batch):
    from neurocredit.sim import feedback_control as di
    x, y = batch
    rule = get_rule("di").with_params(steps=400, leak=1.0, tolerance=0.0)  # fixed steps: a fixed-point check
    net = Network([64, 40, 10], rule, "tanh", seed=0)
    report = di.stability(net)
    assert all(r.stable for r in report)
    with torch.no_grad():
        _, state = local_updates(net, x, target_vector(y, 10, "ce"), "ce")
    W, B = net.layers[1].weight, net.B(0)
    M = W @ B - 1.0 * torch.eye(10)
    g_star = state.errors[1] @ torch.linalg.inv(M).T @ B.T      # B (WB − αI)⁻¹ e
    expect = g_star * net.act.df(state.cache.pre[0])
    assert torch.allclose(state.errors[0], expect, atol=1e-4)


def test_dynamic_inversion_inverts_the_forward_map_when_the_leak_is_small(batch):
    x, y = batch
    rule = get_rule("di").with_params(steps=3000, leak=1e-4, dt=0.5, tolerance=0.0).with_params(
        on_unstable="warn")                                  # fixed steps: a fixed-point check
    net = Network([64, 40, 10], rule, "linear", seed=0)
    # a stable loop: feedback close to −Wᵀ (set here only to test the fixed point)
    with torch.no_grad():
        net.B(0).copy_(-net.layers[1].weight.T)
        _, state = local_updates(net, x, target_vector(y, 10, "ce"), "ce")
    assert torch.allclose(state.errors[0] @ net.layers[1].weight.T, state.errors[1], atol=2e-3)


def test_dynamic_inversion_refuses_or_warns_when_unstable(batch):
    from neurocredit.sim.feedback_control import DynamicInversionWarning, InstabilityError
    x, y = batch
    t = target_vector(y, 10, "ce")
    net = Network([64, 64, 48, 10], get_rule("di").with_params(leak=0.05), "tanh", seed=0)
    with pytest.raises(InstabilityError, match=r"max Re eig\(W2·B1 − αI\) = \+"):
        local_updates(net, x, t, "ce")
    net = Network([64, 64, 48, 10], get_rule("di").with_params(leak=0.05, on_unstable="warn"),
                  "tanh", seed=0)
    b_before = net.B(0).detach().clone()
    with pytest.warns(DynamicInversionWarning, match="UNSTABLE"):
        local_updates(net, x, t, "ce")
    assert torch.equal(b_before, net.B(0))                        # no silent fix-up of B


def test_dynamic_inversion_instability_is_a_clean_cli_error(tmp_path, capsys):
    from neurocredit.cli import main
    code = main(["train", "--rule", "di", "--hidden", "64", "48", "--epochs", "1",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "unstable" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.json").exists()


# -- PAL --------------------------------------------------------------------------------

def test_pal_learns_backward_weights_that_align_with_w_transpose():
    from neurocredit.sim.noisy_prospective import feedback_angles, train_pal
    data = teacher_student(n_in=10, n_hidden=20, n_out=3, n_train=512, n_test=128, seed=0)
    net = Network([10, 16, 3], get_rule("pal"), "tanh", seed=1)
    start = feedback_angles(net)[0]
    run = train_pal(net, data, epochs=4, lr=0.2, lr_feedback=1.0, batch_size=64, log_every=4)
    assert start > 60
    assert run.angles[-1][0] < 25, run.angles
    fa = Network([10, 16, 3], get_rule("pal"), "tanh", seed=1)
    b0 = fa.B(0).detach().clone()
    run_fa = train_pal(fa, data, epochs=4, lr=0.2, lr_feedback=1.0, batch_size=64, log_every=4,
                       plastic_feedback=False)
    assert torch.equal(b0, fa.B(0))
    assert run.angles[-1][0] < run_fa.angles[-1][0]


def test_pal_updates_are_the_rules_terms():
    from neurocredit.sim.noisy_prospective import PALParams, PALState
    net = Network([6, 5, 2], get_rule("pal"), "tanh", seed=0)
    state = PALState(net, 8, PALParams.from_rule(net), torch.Generator().manual_seed(0))
    x, t = torch.randn(8, 6), torch.randn(8, 2)
    for _ in range(3):
        state.step(x, t, "mse")
    dB = state.feedback_deltas()[0]
    alpha = -get_rule("pal").feedback.terms[1].coef
    expect = state.xi[0].T @ state.r_hp[1] / 8 - alpha * net.B(0)
    assert torch.allclose(dB, expect, atol=1e-6)
    dws, _ = state.forward_deltas()
    assert torch.allclose(dws[1], -(state.errors[1].T @ state.rate[0]) / 8, atol=1e-6)


def test_pal_prospective_rates_have_no_lag():
    from neurocredit.sim.noisy_prospective import PALParams, PALState
    net = Network([6, 5, 2], get_rule("pal").with_params(noise_std=0.0), "tanh", seed=0)
    state = PALState(net, 4, PALParams.from_rule(net))
    x = torch.randn(4, 6)
    state.step(x, torch.zeros(4, 2), "mse", noise=False)
    # the membrane has barely moved (dt ≪ τ), the prospective rate is already the input's
    assert state.u[0].abs().max() < 0.2 * net.layers[0](x).abs().max()
    assert torch.allclose(state.rate[0], torch.tanh(net.layers[0](x)), atol=1e-5)


# -- trainer / CLI ------------------------------------------------------------------------

@pytest.mark.parametrize("name", DYNAMICAL)
def test_every_rule_trains_one_epoch_with_the_shared_trainer(name):
    from neurocredit.sim.train import TrainConfig, train
    d = load_digits(seed=0)
    res = train(get_rule(name), d, [32], TrainConfig(epochs=1, progress=False, activation="tanh"))
    assert math.isfinite(res.final["train_loss"])
    assert res.final["test_acc"] > 0.1


def test_cli_lists_and_trains_a_dynamical_rule(tmp_path, capsys):
    from neurocredit.cli import main
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for name in DYNAMICAL:
        assert f"\n{name} " in out
    assert main(["train", "--rule", "pc_relaxed", "--hidden", "32", "--epochs", "2",
                 "--out", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "metrics.json").exists()
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("name,floor", [("pc", 95), ("pc_fp", 95), ("pc_relaxed", 95), ("ar", 95),
                                        ("ar_simplified", 95), ("di", 93), ("pal", 93)])
def test_digits_accuracy_one_seed(name, floor):
    from neurocredit.sim.train import TrainConfig, train
    d = load_digits(seed=0)
    res = train(get_rule(name), d, [256], TrainConfig(epochs=30, progress=False, metrics=False,
                                                      activation="relu"))
    assert 100 * res.final["test_acc"] >= floor
