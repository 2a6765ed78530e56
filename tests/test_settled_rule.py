"""rules.dynamical.settled_rule: fixed-prediction predictive coding settles to the one-pass pathway of
the next layer's error (pc_onchip: learned B, no f'), so its float spiking column can train that form;
rules without such a form are refused."""
from __future__ import annotations

import pytest
import torch

from neurocredit.rules import resolve_rule
from neurocredit.rules.dynamical import settled_rule
from neurocredit.sim.dynamics import get_scheme
from neurocredit.sim.network import Network
from neurocredit.sim.spiking import SpikingRuleError, check_rule


@pytest.mark.parametrize("name", ["pc_onchip", "pc_lb"])
def test_settled_errors_equal_the_relaxation(name):
    """The rate network relaxed for many steps (Euler loop, γ 0.2) ends at the one-pass errors of the
    settled rule, with the same weights and B, for 2 hidden layers."""
    rule = resolve_rule(name).with_params(steps=300, closed_form=False)
    one = settled_rule(rule)
    assert one.dynamics == "feedforward" and one.forward == rule.forward and one.feedback == rule.feedback
    sizes = [12, 9, 7, 4]
    relaxed, direct = Network(sizes, rule, seed=3), Network(sizes, one, seed=3)
    direct.load_state_dict(relaxed.state_dict())
    x = torch.randn(5, 12, generator=torch.Generator().manual_seed(0))
    y = torch.nn.functional.one_hot(torch.arange(5) % 4, 4).float()
    a = get_scheme("predictive_coding")(relaxed, x, y, "mse")
    b = get_scheme("feedforward")(direct, x, y, "mse")
    assert a.steps == 300
    for ea, eb in zip(a.errors, b.errors):
        assert torch.allclose(ea, eb, atol=1e-5), (ea - eb).abs().max()
        assert eb.abs().max() > 1e-3                       # a real error, not zeros on both sides
    check_rule(settled_rule(resolve_rule("pc_onchip")))    # the spiking backend trains it


def test_rules_without_a_settled_form_are_refused():
    assert settled_rule(resolve_rule("dfa")) is resolve_rule("dfa")
    for name in ("pc", "pc_dense", "ar_simplified"):       # exact PC, dense Γ, activation relaxation
        with pytest.raises(ValueError, match="no one-pass settled form"):
            settled_rule(resolve_rule(name))
    with pytest.raises(SpikingRuleError):
        check_rule(resolve_rule("pc_onchip"))
