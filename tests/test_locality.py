"""The locality checker flags exactly the rules that need something a synapse cannot see."""
import pytest

from neurocredit.rules import RULES, LocalityError, assert_local, check_locality, get_rule


def test_declared_locality_matches_the_check_for_every_rule():
    for name, rule in RULES.items():
        assert rule.local == (not check_locality(rule)), name


@pytest.mark.parametrize("name", ["fa", "dfa", "sdfa", "drtp", "kp", "wm", "ia"])
def test_local_rules_pass(name):
    assert_local(get_rule(name), ["fc1", "fc2", "fc3"])


def test_bp_is_refused_naming_the_transposed_weight():
    with pytest.raises(LocalityError, match=r"needs W2ᵀ, the transposed weight of layer fc2"):
        assert_local(get_rule("bp"), ["fc1", "fc2", "fc3"])


@pytest.mark.parametrize("name", ["usf", "brsf", "frsf"])
def test_sign_symmetry_is_refused_naming_the_sign_of_the_transposed_weight(name):
    with pytest.raises(LocalityError, match=r"sign\(W3ᵀ\).*layer fc3"):
        assert_local(get_rule(name), ["fc1", "fc2", "fc3"])


def test_module_wise_dfa_is_refused_only_inside_modules():
    v = [str(x) for x in check_locality(get_rule("mdfa"), ["a", "b", "c", "d"])]
    # modules of 2 from the top: {c, d} backpropagates inside (c needs W4ᵀ), b gets DFA,
    # a sits inside module {a, b} and needs W2ᵀ
    assert v == ["layer a: needs W2ᵀ, the transposed weight of layer b",
                 "layer c: needs W4ᵀ, the transposed weight of layer d"]
