"""A rule's data-scoped sub-table in mappings/onchip_learning.toml ([rules.<name>.<data>])."""
import pytest

from neurocredit.chip import defaults, profile
from neurocredit.chip.defaults import onchip_defaults
from neurocredit.chip.errors import OnChipError
from neurocredit.rules import resolve_rule

TABLE = ('[data.digits]\nhidden = [8]\nepochs = 1\nlr = 0.0625\nlr_decay = 0.6\n'
         '[data.mnist5k]\nhidden = [8]\nepochs = 1\nlr = 0.0625\nlr_decay = 0.6\n'
         '[rules.kp]\nlr_factor = 2.0\nthird_shift = 6\n'
         '[rules.kp.digits]\nlr_decay = 0.8\nthird_shift = 5\n')


def _table(monkeypatch, text):
    monkeypatch.setattr(defaults, "load_mapping", lambda name: profile.tomllib.loads(text))


def test_data_scoped_keys_replace_the_rules_general_keys_for_that_data_only(monkeypatch):
    _table(monkeypatch, TABLE)
    kp = resolve_rule("kp")
    d, m = onchip_defaults(kp, "digits"), onchip_defaults(kp, "mnist5k")
    assert (d["lr_decay"], d["spec"]["third_shift"], d["lr"]) == (0.8, 5, 0.125)
    assert (m["lr_decay"], m["spec"]["third_shift"], m["lr"]) == (0.6, 6, 0.125)
    assert "digits" not in d["spec"] and "digits" not in m["spec"]
    assert onchip_defaults(resolve_rule("dfa"), "digits")["lr_decay"] == 0.6


def test_a_sub_table_naming_no_data_set_or_a_bad_key_is_refused(monkeypatch):
    _table(monkeypatch, TABLE + '[rules.kp.cifar]\nlr_decay = 0.9\n')
    with pytest.raises(OnChipError, match="sub-tables \\['cifar'\\] name no data set"):
        onchip_defaults(resolve_rule("kp"), "digits")
    _table(monkeypatch, TABLE + 'lr_decy = 0.9\n')
    with pytest.raises(OnChipError, match="unknown keys \\['lr_decy'\\]"):
        onchip_defaults(resolve_rule("kp"), "digits")
