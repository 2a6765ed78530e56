"""NIR neurons (neurocredit.neurons.lif): the Euler equations by hand, and bit-exact snnTorch."""
import pytest
import torch

snn = pytest.importorskip("snntorch")

from neurocredit.neurons import lif as L  # noqa: E402


def _lif(n=6, **kw):
    g = torch.Generator().manual_seed(3)
    base = dict(tau=torch.rand(n, generator=g) * 5e-3 + 1e-3, r=torch.rand(n, generator=g) + 0.5,
                v_leak=torch.randn(n, generator=g) * 0.1, v_threshold=torch.full((n,), 1.0),
                v_reset=torch.full((n,), -0.2))
    base.update(kw)
    return L.LIFParams(**base)


def test_euler_lif_matches_the_equation_by_hand():
    p, dt = _lif(), 1e-4 * 3
    c = L.constants(p, dt, L.PRESETS["nir"])
    g = torch.Generator().manual_seed(0)
    v = torch.zeros(4, 6)
    spikes = 0
    for _ in range(200):
        i = torch.rand(4, 6, generator=g) * 30
        u = v + dt / p.tau * (p.v_leak - v + p.r * i)         # τ dv/dt = v_leak − v + R I
        z = (u > p.v_threshold).float()
        expect = torch.where(z > 0, p.v_reset.expand_as(u), u)  # reset to v_reset
        v, zz, _ = L.lif_step(v, i, c, L.PRESETS["nir"])
        assert torch.equal(zz, z)
        assert torch.allclose(v, expect, atol=1e-6)
        spikes += int(z.sum())
    assert spikes > 50


def test_if_and_integrator_integrate_r_times_dt():
    p = L.IParams(r=torch.tensor([2.0, 0.5]))
    c = L.constants(p, 1e-3, L.PRESETS["nir"])
    v = torch.zeros(1, 2)
    for _ in range(10):
        v = L.integrator_step(v, torch.ones(1, 2), c)
    assert torch.allclose(v, torch.tensor([[0.02, 0.005]]))
    pif = L.IFParams(r=torch.ones(3), v_threshold=torch.full((3,), 0.0025), v_reset=torch.zeros(3))
    cif = L.constants(pif, 1e-3, L.PRESETS["nir"])
    v, zs = torch.zeros(1, 3), []
    for _ in range(6):
        v, z, _ = L.if_step(v, torch.ones(1, 3), cif, L.PRESETS["nir"])
        zs.append(int(z[0, 0]))
    assert zs == [0, 0, 1, 0, 0, 1]  # 1e-3 per step; fires when v > 2.5e-3, resets to 0


def test_euler_and_snntorch_modes_agree_on_the_same_ode():
    p = L.li_from_beta(0.9, 5)
    ce = L.constants(p, L.SNNTORCH_DT, L.PRESETS["nir"])
    cs = L.constants(p, L.SNNTORCH_DT, L.PRESETS["snntorch"])
    ve = vs = torch.zeros(2, 5)
    for t in range(50):
        i = torch.full((2, 5), float(t % 7))
        ve, vs = L.li_step(ve, i, ce, L.PRESETS["nir"]), L.li_step(vs, i, cs, L.PRESETS["snntorch"])
    assert torch.allclose(ve, vs, rtol=1e-4)
    assert float(ve.abs().max()) > 1


@pytest.mark.parametrize("reset,delay", [("zero", False), ("subtract", True), ("zero", True),
                                         ("subtract", False)])
def test_snntorch_mode_is_bit_exact_with_snn_leaky(reset, delay):
    n = 40
    p = L.lif_from_beta(torch.linspace(0.5, 0.95, n), 1.0, n)   # τ = dt/(1−β), R = τ/dt
    # the β snnTorch's import_from_nir computes from the stored τ (float32 numpy): 1 − dt/τ
    beta = torch.as_tensor(1 - (L.SNNTORCH_DT / p.tau.numpy()))
    leaky = snn.Leaky(beta=beta, threshold=torch.ones(n), reset_mechanism=reset,
                      reset_delay=delay)
    disc = L.Discretisation("snntorch", reset, delay)
    c = L.constants(p, L.SNNTORCH_DT, disc)
    g = torch.Generator().manual_seed(1)
    mem = leaky.init_leaky()
    v = torch.zeros(8, n)
    total = 0
    with torch.no_grad():
        for _ in range(100):
            i = torch.randn(8, n, generator=g) * 0.8 + 0.3
            spk, mem = leaky(i, mem)
            v, z, _ = L.lif_step(v, i, c, disc)
            assert torch.equal(z, spk)
            assert torch.equal(v, mem)
            total += int(spk.sum())
    assert total > 500


def test_cubalif_snntorch_mode_is_bit_exact_with_snn_synaptic():
    n = 30
    dt = L.SNNTORCH_DT
    tau_syn, tau_mem = dt / (1 - torch.full((n,), 0.7)), dt / (1 - torch.full((n,), 0.85))
    syn = snn.Synaptic(alpha=torch.as_tensor(1 - dt / tau_syn.numpy()),
                       beta=torch.as_tensor(1 - dt / tau_mem.numpy()), threshold=torch.ones(n),
                       reset_mechanism="zero", reset_delay=False)  # as import_from_nir builds it
    p = L.CubaLIFParams(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=torch.zeros(n),
                        v_threshold=torch.ones(n), v_reset=torch.zeros(n), w_in=tau_syn / dt)
    disc = L.PRESETS["snntorch"]
    c = L.constants(p, dt, disc)
    g = torch.Generator().manual_seed(2)
    s_, m_ = syn.init_synaptic()
    isyn, v = torch.zeros(4, n), torch.zeros(4, n)
    total = 0
    with torch.no_grad():
        for _ in range(100):
            x = (torch.rand(4, n, generator=g) < 0.3).float() * 0.4
            spk, s_, m_ = syn(x, s_, m_)
            isyn, v, z, _ = L.cubalif_step(isyn, v, x, c, disc)
            assert torch.equal(z, spk) and torch.equal(v, m_) and torch.equal(isyn, s_)
            total += int(spk.sum())
    assert total > 50


def test_bad_discretisation_names_the_culprit():
    with pytest.raises(ValueError, match="'rk4'"):
        L.Discretisation("rk4")
    with pytest.raises(ValueError, match="'bogus'"):
        L.get_discretisation("bogus")
    with pytest.raises(ValueError, match="dt must be > 0"):
        L.constants(_lif(), 0.0, L.PRESETS["nir"])
