"""Each rule's update on a tiny network equals a hand computation of its paper's equation."""
import pytest
import torch

from neurocredit.rules import RULES, get_rule
from neurocredit.sim.losses import target_vector
from neurocredit.sim.network import Network
from neurocredit.sim.updates import local_updates


def tiny(rule_name: str, sizes=(3, 4, 2), seed: int = 0):
    net = Network(list(sizes), get_rule(rule_name), activation="tanh", seed=seed).double()
    g = torch.Generator().manual_seed(seed + 7)
    x = torch.randn(5, sizes[0], generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 1, 0, 1]) % sizes[-1]
    return net, x, y, target_vector(y, sizes[-1], "ce").double()


def forward_by_hand(net, x):
    hs, pres = [x], []
    for i, layer in enumerate(net.layers):
        a = hs[-1] @ layer.weight.T + layer.bias
        pres.append(a)
        hs.append(torch.tanh(a) if i < len(net.layers) - 1 else a)
    return hs, pres


def dtanh(a):
    return 1 - torch.tanh(a) ** 2


def check_delta_rule(net, upd, hs, errors, n):
    """ΔW_l = −(1/n) Σ_b e_l ⊗ x_{l−1} and Δb_l = −(1/n) Σ_b e_l for every layer."""
    for l, layer in enumerate(net.layers):
        torch.testing.assert_close(upd.weight[l], -errors[l].T @ hs[l] / n)
        torch.testing.assert_close(upd.bias[l], -errors[l].sum(0) / n)


@pytest.mark.parametrize("name", ["fa", "kp", "wm", "ia"])
def test_next_layer_pathway_rules_match_their_equation(name):
    net, x, y, t = tiny(name)
    hs, pres = forward_by_hand(net, x)
    e2 = torch.softmax(pres[1], 1) - t
    e1 = (e2 @ net.B(0).T) * dtanh(pres[0])          # e_1 = (B_1 e_2) ⊙ f'(a_1)
    gen = torch.Generator().manual_seed(3)
    upd, state = local_updates(net, x, t, "ce", generator=gen)
    torch.testing.assert_close(state.errors[0], e1)
    n = x.shape[0]
    if name != "kp":
        check_delta_rule(net, upd, hs, [e1, e2], n)
    else:  # Kolen-Pollack: ΔW = −e ⊗ x − λW ; ΔB_1 = −x_1 ⊗ e_2 − λB_1
        lam = 1e-2
        for l, (e, h) in enumerate(((e1, hs[0]), (e2, hs[1]))):
            torch.testing.assert_close(upd.weight[l], -e.T @ h / n - lam * net.layers[l].weight)
        torch.testing.assert_close(upd.feedback[0], -hs[1].T @ e2 / n - lam * net.B(0))
        # the KP property: the B update is the transpose of W_2's update, decay aside
        torch.testing.assert_close(upd.feedback[0] + lam * net.B(0),
                                   (upd.weight[1] + lam * net.layers[1].weight).T)
    if name == "wm":  # mirror phase: ΔB = (1/m) Σ ξ ⊗ (W_2 ξ) / σ² − B, ξ ~ N(0, σ²)
        fb = net.rule.feedback
        m = fb.noise_batch or n                         # 0: as many noise samples as the batch
        xi = torch.randn((m, 4), generator=torch.Generator().manual_seed(3),
                         dtype=torch.float64) * fb.noise_std
        expected = xi.T @ (xi @ net.layers[1].weight.T) / m / fb.noise_std ** 2 - net.B(0)
        torch.testing.assert_close(upd.feedback[0], expected)
    if name == "ia":  # amp + 0.1·decay + null with y = W_2 x_1
        yv = hs[1] @ net.layers[1].weight.T
        B = net.B(0)
        expected = hs[1].T @ yv / n - 0.1 * B - (yv @ B.T).T @ yv / n
        torch.testing.assert_close(upd.feedback[0], expected)


@pytest.mark.parametrize("name", ["dfa", "sdfa", "drtp"])
def test_direct_pathway_rules_match_their_equation(name):
    net, x, y, t = tiny(name, sizes=(3, 6, 5, 2))
    hs, pres = forward_by_hand(net, x)
    e3 = torch.softmax(pres[2], 1) - t
    src = t if name == "drtp" else e3                    # DRTP projects the target y*
    e1 = (src @ net.B(0).T) * dtanh(pres[0])
    e2 = (src @ net.B(1).T) * dtanh(pres[1])
    upd, _ = local_updates(net, x, t, "ce")
    check_delta_rule(net, upd, hs, [e1, e2, e3], x.shape[0])


def test_sparse_feedback_has_the_declared_fraction_of_zeros_and_no_silent_neuron():
    net = Network([64, 300, 10], get_rule("sdfa"), seed=1)
    B = net.B(0)
    assert abs(float((B == 0).double().mean()) - 0.9) < 1e-9
    assert bool(((B != 0).sum(1) >= 1).all())


@pytest.mark.parametrize("name", ["usf", "brsf", "frsf"])
def test_sign_symmetry_uses_the_sign_of_the_transposed_forward_weight(name):
    net, x, y, t = tiny(name)
    B = net.effective_B(0)
    assert torch.equal(torch.sign(B), torch.sign(net.layers[1].weight.T))
    if name == "usf":
        assert torch.allclose(B.abs(), net.layers[1].weight.abs().mean().expand_as(B))
    hs, pres = forward_by_hand(net, x)
    upd, state = local_updates(net, x, t, "ce")
    if name != "brsf":  # brSF redraws its magnitudes at every call
        e2 = torch.softmax(pres[1], 1) - t
        torch.testing.assert_close(state.errors[0], (e2 @ net.effective_B(0).T) * dtanh(pres[0]))


def test_module_wise_dfa_uses_dfa_at_module_tops_and_bp_inside():
    net, x, y, t = tiny("mdfa", sizes=(3, 6, 5, 2))
    hs, pres = forward_by_hand(net, x)
    e3 = torch.softmax(pres[2], 1) - t
    e2 = (e3 @ net.layers[2].weight) * dtanh(pres[1])    # inside the top module: W_3ᵀ
    e1 = (e3 @ net.B(0).T) * dtanh(pres[0])             # top of the lower module: DFA
    _, state = local_updates(net, x, t, "ce")
    torch.testing.assert_close(state.errors[1], e2)
    torch.testing.assert_close(state.errors[0], e1)


def test_bp_rule_equals_autograd():
    net, x, y, t = tiny("bp", sizes=(3, 6, 5, 2))
    upd, _ = local_updates(net, x, t, "ce")
    loss = torch.nn.functional.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, [p for l in net.layers for p in (l.weight, l.bias)])
    for l in range(3):
        torch.testing.assert_close(upd.weight[l], -grads[2 * l])
        torch.testing.assert_close(upd.bias[l], -grads[2 * l + 1])


def test_bp_training_step_is_the_autograd_sgd_step():
    from neurocredit.sim.train import TrainConfig, make_optimizer, train_step
    net, x, y, t = tiny("bp")
    ref = [l.weight.detach().clone() for l in net.layers]
    loss = torch.nn.functional.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, [l.weight for l in net.layers])
    opt = make_optimizer(net, net.rule, TrainConfig(lr=0.1, momentum=0.0))
    train_step(net, opt, x, y, 2, "ce", torch.Generator())
    for l, layer in enumerate(net.layers):
        torch.testing.assert_close(layer.weight.detach(), ref[l] - 0.1 * grads[l])


def test_every_registered_rule_evaluates_on_a_tiny_net():
    for name, rule in RULES.items():
        if rule.dynamics not in ("feedforward", "autograd"):
            continue  # dynamical rules are covered by their own tests
        net, x, y, t = tiny(name, sizes=(3, 6, 5, 2))
        if any(f.value == "eligibility" for term in rule.forward for f in term.factors):
            # e-prop's eligibility trace exists only in recurrent models (tests/test_recurrent.py);
            # the feed-forward engine must refuse it by name, not drop the factor
            with pytest.raises(ValueError, match="eligibility"):
                local_updates(net, x, t, "ce")
            continue
        upd, _ = local_updates(net, x, t, "ce")
        assert all(torch.isfinite(w).all() for w in upd.weight), name
