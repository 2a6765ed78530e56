"""Local rules drive spiking layers through the core's terms (neurocredit.sim.spiking)."""
import pytest
import torch

from neurocredit.data import load_digits
from neurocredit.neurons import lif as L
from neurocredit.rules import get_rule
from neurocredit.sim.losses import target_vector
from neurocredit.sim.spiking import (SpikingConfig, SpikingNetwork, SpikingRuleError,
                                     SpikingTrainConfig, train_spiking)


def _batch(net, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, net.sizes[0], generator=g)
    y = torch.randint(0, net.sizes[-1], (n,), generator=g)
    return net.encode(x, g), y


def test_readout_update_is_the_exact_gradient_of_the_loss():
    """With the pre trace decaying like the LI readout, −ΔW_L equals autograd's ∂L/∂W_L."""
    net = SpikingNetwork([20, 24, 5], get_rule("dfa"), SpikingConfig(steps=15, weight_gain=2.0), seed=1)
    s, y = _batch(net)
    target = target_vector(y, 5, "ce")
    with torch.no_grad():
        upd, _ = net.local_updates(s, target, "ce")
    w = net.layers[-1].weight
    w.grad = None
    a = net.readout(net.run(s))
    torch.nn.functional.cross_entropy(a, y).backward()
    assert float(w.grad.abs().max()) > 1e-3
    assert torch.allclose(-upd.weight[-1], w.grad, rtol=1e-4, atol=1e-6)


def test_hidden_update_is_error_compartment_times_pre_trace():
    """DFA: ΔW_1 = −⟨((B e_L) ⊙ σ'(v'))[t] ⊗ x̄_0[t]⟩ over time and batch, written out by hand."""
    cfg = SpikingConfig(steps=12, weight_gain=2.0, surrogate_slope=3.0)
    net = SpikingNetwork([10, 16, 4], get_rule("dfa"), cfg, seed=2)
    s, y = _batch(net, n=8)
    target = target_vector(y, 4, "ce")
    with torch.no_grad():
        upd, a = net.local_updates(s, target, "ce")
        rec = net.run(s)
        e_out = torch.softmax(a, 1) - target
        beta = float(L.constants(net.hidden_params[0], cfg.dt, L.PRESETS["snntorch"]).decay[0])
        trace = torch.zeros(8, 10)
        total = torch.zeros(16, 10)
        for t in range(12):
            trace = beta * trace + s[t]
            u = rec["u"][0][t]
            e = (e_out @ net.net.B(0).T) / (1 + 3.0 * (u - 1.0).abs()) ** 2
            total += e.T @ trace
        expect = -total / (12 * 8)
    assert float(expect.abs().max()) > 1e-4
    assert torch.allclose(upd.weight[0], expect, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("name", ["fa", "drtp"])
def test_feedback_sources_follow_the_rule(name):
    """FA reads the next layer's error, DRTP the one-hot target (not the output error)."""
    net = SpikingNetwork([10, 12, 8, 3], get_rule(name), SpikingConfig(steps=10, weight_gain=3.0), seed=0)
    s, y = _batch(net, n=6)
    target = target_vector(y, 3, "ce")
    st, a = net.settle(s, target, "ce")
    B1 = net.net.B(1)
    assert B1.shape == (8, 3)
    src = torch.softmax(a, 1) - target if name == "fa" else target
    u = torch.stack(net.run(s)["u"][1]).reshape(-1, 8)
    expect = (src.repeat(10, 1) @ B1.T) / (1 + 2.0 * (u - 1).abs()) ** 2
    assert torch.allclose(st.errors[1], expect, atol=1e-6)
    if name == "fa":
        assert net.net.B(0).shape == (12, 8)   # fed by layer 2's error compartment


@pytest.mark.parametrize("name,why", [("bp", "autograd"), ("usf", "not local"),
                                      ("pc_lb", "error dynamics 'predictive_coding'")])
def test_rules_the_spiking_backend_cannot_train_are_refused_by_name(name, why):
    net = SpikingNetwork([4, 5, 2], get_rule(name))      # can be built, simulated, exported
    s, y = _batch(net, n=2)
    with pytest.raises(SpikingRuleError, match=f"'{name}'.*{why}"):
        net.local_updates(s, target_vector(y, 2, "ce"), "ce")


def test_latency_coding_spikes_once_brighter_first():
    net = SpikingNetwork([3, 4, 2], get_rule("dfa"), SpikingConfig(steps=10, coding="latency"))
    s = net.encode(torch.tensor([[1.0, 0.5, 0.0]]))
    assert s.sum(0).tolist() == [[1.0, 1.0, 0.0]]
    assert int(s[:, 0, 0].argmax()) < int(s[:, 0, 1].argmax())


def test_dfa_trains_a_spiking_mlp_on_digits():
    data = load_digits(seed=0, standardise=False)
    res = train_spiking(get_rule("dfa"), data, [48],
                        SpikingTrainConfig(epochs=3, lr=0.01, spiking=SpikingConfig(steps=8)))
    accs = [row["test_acc"] for row in res.history]
    assert accs[-1] > 0.80, accs
