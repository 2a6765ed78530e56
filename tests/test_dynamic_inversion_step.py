"""Dynamic inversion's one-product step (u ← dt·e + u (I + dt M)ᵀ) is the paper's Euler step
du/dt = e_{l+1} − W_{l+1} g_l − αu_l, g_l = −B_l u_l, written out here literally."""
import warnings

import pytest
import torch

from neurocredit.data import load_digits
from neurocredit.rules import get_rule
from neurocredit.sim import feedback_control as di
from neurocredit.sim.dynamics import get_scheme
from neurocredit.sim.losses import output_error, target_vector
from neurocredit.sim.network import Network


def _literal(net: Network, x: torch.Tensor, t: torch.Tensor, steps: int, dt: list[float],
             alpha: float) -> list[torch.Tensor]:
    cache = net.forward_cache(x)
    n = net.n_layers
    e_out = output_error(cache.output, t, "ce")
    u = [torch.zeros(x.shape[0], net.weight_matrix(l + 1).shape[0]) for l in range(n - 1)]

    def errors():
        es = []
        for l in range(n - 1):
            g = -(u[l] @ net.effective_B(l).T)                    # g_l = −B_l u_l
            es.append(net.act.df(cache.pre[l]) * g)               # e_l = f'(a_l) ⊙ g_l
        return es + [e_out]

    e = errors()
    for _ in range(steps):
        new = []
        for l in range(n - 1):
            g = -(u[l] @ net.effective_B(l).T)
            du = e[l + 1] - g @ net.weight_matrix(l + 1).T - alpha * u[l]
            new.append(u[l] + dt[l] * du)
        u = new
        e = errors()
    return e


@pytest.mark.parametrize("sizes", [[64, 256, 10], [64, 48, 32, 10]])
def test_one_product_step_is_the_euler_step(sizes):
    d = load_digits(seed=0)
    x, t = d.x_train[:16], target_vector(d.y_train[:16], 10, "ce")
    rule = get_rule("di").with_params(tolerance=0.0, steps=9, on_unstable="warn")
    net = Network(sizes, rule, "relu", seed=0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", di.DynamicInversionWarning)   # the deeper net is unstable
        report = di.stability(net)
        got = get_scheme("dynamic_inversion")(net, x, t, "ce")
        want = _literal(net, x, t, 9, [r.dt for r in report], float(rule.param("leak")))
    assert got.steps == 9
    for a, b in zip(got.errors, want):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
