"""The fused spiking simulator (whole-sequence GEMMs, hand-fused LIF) gives the same spikes,
bit for bit, as stepping lif_step / li_step; the fused training step equals the plain one."""
import copy

import pytest
import torch

from neurocredit.neurons import lif as L
from neurocredit.rules import get_rule
from neurocredit.sim.losses import target_vector
from neurocredit.sim.spiking import SpikingConfig, SpikingNetwork


def _stepped(net, spikes):
    """The reference: one lif_step / li_step per time step, per-step products."""
    cfg = net.config
    hid = [L.constants(p, cfg.dt, net.disc) for p in net.hidden_params]
    out_c = L.constants(net.out_params, cfg.dt, net.disc)
    T, batch = spikes.shape[:2]
    vs = [torch.zeros(batch, n) for n in net.sizes[1:-1]]
    v_out = torch.zeros(batch, net.sizes[-1])
    zs, us, vos = [[] for _ in hid], [[] for _ in hid], []
    for t in range(T):
        z = spikes[t]
        for l, c in enumerate(hid):
            vs[l], z, u = L.lif_step(vs[l], z @ net.layers[l].weight.T + net.layers[l].bias, c, net.disc)
            zs[l].append(z)
            us[l].append(u)
        i = z @ net.layers[-1].weight.T + net.layers[-1].bias
        if cfg.readout == "lif":
            v_out, _, _ = L.lif_step(v_out, i, out_c, net.disc)
        else:
            v_out = L.li_step(v_out, i, out_c, net.disc)
        vos.append(v_out)
    return [torch.stack(z) for z in zs], [torch.stack(u) for u in us], torch.stack(vos)


@pytest.mark.parametrize("disc", ["snntorch", "nir", "snntorch-leaky"])
@pytest.mark.parametrize("readout", ["li", "lif"])
def test_fused_simulation_equals_stepping_bit_for_bit(disc, readout):
    cfg = SpikingConfig(steps=25, weight_gain=2.5, discretisation=disc, readout=readout)
    net = SpikingNetwork([20, 32, 16, 5], get_rule("fa"), cfg, seed=3)
    g = torch.Generator().manual_seed(1)
    spikes = net.encode(torch.rand(6, 20, generator=g), g)
    with torch.no_grad():
        zs, us, v_out = _stepped(net, spikes)
        rec = net.run_tensors(spikes)
    assert float(zs[0].sum()) > 50          # the hidden layers do spike
    for l in range(2):
        assert torch.equal(rec["z"][l + 1], zs[l])
        assert torch.equal(rec["u"][l], us[l])
    assert torch.equal(rec["v_out"], v_out)


@pytest.mark.parametrize("name", ["dfa", "fa", "kp"])
def test_fused_spiking_training_step_equals_updates_then_sgd(name):
    cfg = SpikingConfig(steps=12, weight_gain=2.0)
    net = SpikingNetwork([10, 16, 4], get_rule(name), cfg, seed=2)
    ref = copy.deepcopy(net)
    params = lambda n: [{"params": n.net.weight_params(), "lr": 0.05}] + (  # noqa: E731
        [{"params": n.net.learned_feedback_params(), "lr": 0.05}] if n.net.learned_feedback_params() else [])
    opt = torch.optim.SGD(params(net), lr=0.05, momentum=0.9)
    ref_opt = torch.optim.SGD(params(ref), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        spikes = net.encode(torch.rand(8, 10, generator=g), g)
        target = target_vector(torch.randint(0, 4, (8,), generator=g), 4, "ce")
        net.train_step(spikes, target, opt, "ce")
        with torch.no_grad():
            upd, _ = ref.local_updates(spikes, target, "ce")
            for layer, dw, db in zip(ref.layers, upd.weight, upd.bias):
                layer.weight.grad, layer.bias.grad = -dw, -db
            for l, dB in upd.feedback.items():
                ref.net.B(l).grad = -dB
            ref_opt.step()
    for a, b in zip(net.parameters(), ref.parameters()):
        torch.testing.assert_close(a.detach(), b.detach())


@pytest.mark.parametrize("reset", [0.0, 0.3])
def test_fused_lif_and_cubalif_steps_equal_the_functional_steps(reset):
    disc = L.PRESETS["snntorch"]
    g = torch.Generator().manual_seed(4)
    n, batch = 12, 5
    lif = L.constants(L.lif_from_beta(0.85, 1.0, n), L.SNNTORCH_DT, disc)
    lif = L.Constants(**{**vars(lif), "v_reset": torch.full((n,), reset)})
    cuba = L.constants(L.CubaLIFParams(
        tau_syn=torch.full((n,), 5e-4), tau_mem=torch.full((n,), 1e-3), r=torch.full((n,), 10.0),
        v_leak=torch.zeros(n), v_threshold=torch.full((n,), 1.0), v_reset=torch.full((n,), reset),
        w_in=torch.full((n,), 5.0)), L.SNNTORCH_DT, disc)
    v, v2, isyn, isyn2 = (torch.zeros(batch, n) for _ in range(4))
    bufs = [torch.empty(batch, n) for _ in range(8)]
    spikes = 0.0
    for t in range(40):
        i = torch.rand(batch, n, generator=g) * 0.8
        ref_v, ref_z, ref_u = L.lif_step(v, i, lif, disc)
        v_new, z, u = L.lif_step_into(v, i, lif, disc, bufs[0], bufs[1], bufs[2])
        assert torch.equal(u, ref_u) and torch.equal(z, ref_z) and torch.equal(v_new, ref_v)
        v = v_new.clone()
        ref = L.cubalif_step(isyn, v2, i, cuba, disc)
        got = L.cubalif_step_into(isyn, v2, i, cuba, disc, bufs[3], bufs[4], bufs[5], bufs[6])
        assert all(torch.equal(a, b) for a, b in zip(got, ref))
        isyn, v2 = got[0].clone(), got[1].clone()
        spikes += float(ref_z.sum() + ref[2].sum())
    assert spikes > 20
