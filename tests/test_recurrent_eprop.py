"""e-prop details of Bellec et al. 2020 on the recurrent spiking network: adaptive thresholds
(ALIF) with their eligibility ε^a, firing-rate regularisation with its own learning signal;
the lr warm-up of the recurrent trainer."""
import math

import pytest
import torch

from neurocredit.rules import Term, get_rule
from neurocredit.rules.factors import Factor
from neurocredit.sim.eligibility import (PlasticFactors, eligibility_online, low_pass,
                                         plastic_update)
from neurocredit.sim.losses import loss_value, target_vector
from neurocredit.sim.recurrent_spiking import RecurrentSpikingConfig, RecurrentSpikingNetwork
from neurocredit.sim.recurrent_train import RecurrentTrainConfig, lr_factor, lr_schedule


def test_adaptive_eligibility_moved_to_the_post_side_equals_the_online_trace():
    """Σ_t L[t] ē[t] with e = ψ (x̄ − β ε^a) per synapse == the post-side backward filter."""
    g = torch.Generator().manual_seed(0)
    T, B, n_post, n_pre = 14, 3, 5, 4
    psi = torch.rand(T, B, n_post, generator=g)
    pre = low_pass((torch.rand(T, B, n_pre, generator=g) < 0.3).float(), 0.9)
    third = torch.randn(T, B, n_post, generator=g)
    w = torch.randn(n_post, n_pre, generator=g)
    adapt = torch.rand(n_post, generator=g) * torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0])
    term = Term(-1.0, (Factor.THIRD, Factor.ELIGIBILITY))
    for kappa in (0.0, 0.8):
        dw, _ = plastic_update((term,), PlasticFactors(pre, None, third, psi, kappa, adapt=adapt,
                                                       rho=0.95), w)
        ref = -(third.unsqueeze(-1) * eligibility_online(psi, pre, kappa, adapt, 0.95)).sum((0, 1))
        assert torch.allclose(dw, ref / (T * B), atol=1e-6), kappa
        plain, _ = plastic_update((term,), PlasticFactors(pre, None, third, psi, kappa), w)
        assert not torch.allclose(dw, plain, atol=1e-4)     # the adaptation term is there
        assert torch.allclose(dw[2], plain[2]) and torch.allclose(dw[4], plain[4])  # β_j = 0


def _net(rule, **kw):
    cfg = RecurrentSpikingConfig(rec_gain=0.0, threshold=6.0, **kw)
    return RecurrentSpikingNetwork([6, 10, 3], get_rule(rule), cfg, seed=0)


@pytest.mark.parametrize("kw", [{"adapt": 2.0, "tau_adapt": 10.0, "adapt_fraction": 0.5},
                                {"rate_reg": 0.5, "rate_target": 0.05},
                                {"adapt": 1.0, "rate_reg": 0.3}])
def test_symmetric_eprop_equals_surrogate_bptt_with_adaptation_and_rate_regulariser(kw):
    """Bellec et al.: without hidden-to-hidden paths (R = 0) and without resets acting (no
    hidden spike), symmetric e-prop is the exact gradient, also with the adaptive threshold's
    eligibility ε^a and the firing-rate regulariser (its signal with the unfiltered e)."""
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(4, 15, 6, generator=g) * 0.3, torch.randint(0, 3, (4,), generator=g)
    net = _net("eprop_sym", **kw)
    rec = net.run(x)
    assert float(rec["z"][0].sum()) == 0.0
    with torch.no_grad():
        upd, _ = net.local_updates(x, target_vector(y, 3, "ce"), "ce")
    params = [w for w, _ in net.parameters_in_update_order()]
    with torch.enable_grad():
        rec = net.run(x, surrogate=True)
        value = loss_value(net.readout(rec), y, "ce") + net.rate_penalty(rec)
        grads = torch.autograd.grad(value, params)
    for (dw, _), gw in zip(upd, grads):
        assert torch.allclose(dw, -gw, atol=1e-6, rtol=1e-4)
    base = _net("eprop_sym")
    with torch.no_grad():
        plain, _ = base.local_updates(x, target_vector(y, 3, "ce"), "ce")
    assert not torch.allclose(plain[0][0], upd[0][0], atol=1e-6)   # the option changed W1's update


def test_adaptive_threshold_rises_with_the_neurons_own_spikes():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(8, 30, 6, generator=g) * 3
    cfg = dict(rec_gain=0.5, threshold=1.0)
    lif = RecurrentSpikingNetwork([6, 10, 3], get_rule("eprop"), RecurrentSpikingConfig(**cfg))
    alif = RecurrentSpikingNetwork([6, 10, 3], get_rule("eprop"), RecurrentSpikingConfig(
        adapt=3.0, tau_adapt=20.0, adapt_fraction=0.5, **cfg))
    z_lif, rec = lif.run(x)["z"][0], alif.run(x)
    z_alif, thr = rec["z"][0], rec["thr"][0]
    assert float(z_lif.mean()) > 0.05
    assert torch.equal(thr[:, :, 5:], torch.ones_like(thr[:, :, 5:]))      # non-adapting half
    assert float(thr[:, :, :5].max()) > 1.2                                 # θ + β a
    assert float(z_alif[:, :, :5].mean()) < float(z_lif[:, :, :5].mean())
    assert torch.equal(z_alif[0], z_lif[0])                                 # a[0] = 0
    rho = math.exp(-1 / 20.0)
    a = (1 - rho) * z_alif[0, :, :5]                                        # a[1] from z[0]
    assert torch.allclose(thr[1, :, :5], 1.0 + 3.0 * a)
    with pytest.raises(ValueError, match="adaptive threshold"):
        RecurrentSpikingNetwork([6, 10, 3], get_rule("eprop"), RecurrentSpikingConfig(adapt=-1.0))


def test_lr_warmup_then_cosine():
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(99, 100, 10, "none") == 1.0
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = lr_schedule(opt, RecurrentTrainConfig(epochs=4, schedule="cosine", warmup=1), 5)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert lrs[5] == pytest.approx(0.1) and lrs[-1] < 0.01
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    with pytest.raises(ValueError, match="warmup"):
        lr_schedule(opt, RecurrentTrainConfig(warmup=-1), 5)


def test_an_adaptive_network_is_not_exported_as_plain_lif():
    from neurocredit.nir.errors import NIRExportError
    from neurocredit.nir.export import export
    export(_net("eprop"))                       # plain LIF: exported
    with pytest.raises(NIRExportError, match="adaptive threshold"):
        export(_net("eprop", adapt=1.0))


def test_gated_trace_moved_to_the_post_side_equals_the_per_synapse_trace():
    from neurocredit.sim.eligibility import gated_reverse_filter
    g = torch.Generator().manual_seed(5)
    T, B, n_post, n_pre = 11, 2, 4, 3
    x, q = torch.rand(T, B, n_pre, generator=g), torch.randn(T, B, n_post, generator=g)
    keep = (torch.rand(T, B, n_post, generator=g) > 0.3).float()
    eps, ref = torch.zeros(B, n_post, n_pre), torch.zeros(B, n_post, n_pre)
    for t in range(T):   # ε[t] = β keep[t−1] ε[t−1] + x[t], per synapse
        eps = (0.9 * keep[t - 1].unsqueeze(-1) * eps if t else 0) + x[t].unsqueeze(-2)
        ref += q[t].unsqueeze(-1) * eps
    got = torch.einsum("tbj,tbi->bji", gated_reverse_filter(q, 0.9, keep), x)
    assert torch.allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize("kw", [{"neuron": "lif"}, {"neuron": "cubalif", "threshold": 0.5},
                                {"neuron": "lif", "adapt": 1.5, "tau_adapt": 8.0},
                                {"neuron": "lif", "rate_reg": 0.3}])
def test_reset_gated_symmetric_eprop_is_exact_with_spikes_and_resets(kw):
    """With the membrane eligibility reset by the post spike (Bellec et al.'s eq. 13 for a
    reset-to-zero neuron), symmetric e-prop is surrogate BPTT's gradient also while the hidden
    neurons spike and reset, as long as no hidden-to-hidden path exists (R = 0)."""
    g = torch.Generator().manual_seed(6)
    x, y = torch.rand(4, 15, 6, generator=g) * 3, torch.randint(0, 3, (4,), generator=g)
    kw = {"threshold": 1.0} | kw
    net = RecurrentSpikingNetwork([6, 10, 3], get_rule("eprop_sym"), RecurrentSpikingConfig(
        rec_gain=0.0, reset_trace=True, **kw), seed=0)
    assert 0.05 < float(net.run(x)["z"][0].mean()) < 0.9
    with torch.no_grad():
        upd, _ = net.local_updates(x, target_vector(y, 3, "ce"), "ce")
    params = [w for w, _ in net.parameters_in_update_order()]
    biases = [b for _, b in net.parameters_in_update_order()]
    with torch.enable_grad():
        rec = net.run(x, surrogate=True)
        value = loss_value(net.readout(rec), y, "ce") + net.rate_penalty(rec)
        grads = torch.autograd.grad(value, params + biases)
    for (dw, db), gw, gb in zip(upd, grads[:3], grads[3:]):
        assert torch.allclose(dw, -gw, atol=1e-6, rtol=1e-4)
        assert torch.allclose(db, -gb, atol=1e-6, rtol=1e-4)
    net.config.reset_trace = False                         # the ungated trace is not exact here
    with torch.no_grad():
        plain, _ = net.local_updates(x, target_vector(y, 3, "ce"), "ce")
    assert not torch.allclose(plain[0][0], -grads[0], atol=1e-4, rtol=1e-2)
