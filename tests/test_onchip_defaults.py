"""On-chip learning defaults as data (mappings/onchip_learning.toml) and the weight-exponent
rescaling the accuracy study measures (chip.quantise.with_weight_exponent)."""
import numpy as np
import pytest

from neurocredit.chip.defaults import onchip_defaults
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.quantise import with_weight_exponent
from neurocredit.chip.session import initial_graph
from neurocredit.rules import resolve_rule


def test_defaults_per_data_and_rule():
    dfa = onchip_defaults(resolve_rule("dfa"), "mnist5k")
    drtp = onchip_defaults(resolve_rule("drtp"), "mnist5k")
    assert dfa["hidden"] and dfa["epochs"] >= 1 and 0 < dfa["lr_decay"] <= 1
    # DRTP's table lr_factor (2) on top of the data's base rate (its lr_scale 0.5 applies on chip)
    assert drtp["lr"] == pytest.approx(2 * dfa["lr"])
    with pytest.raises(OnChipError, match="no on-chip learning defaults for data 'cifar'"):
        onchip_defaults(resolve_rule("dfa"), "cifar")


@pytest.mark.parametrize("offset", [-1, 1, 2])
def test_weight_exponent_keeps_the_effective_weights(offset):
    from neurocredit.chip.compile import compile_graph
    base = compile_graph(initial_graph([20, 16, 5], seed=3)).fixed_circuit
    moved = with_weight_exponent(base, offset)
    for a, b in zip(base.connections, moved.connections):
        assert b.weight_exp == a.weight_exp + offset
        wa = np.asarray(a.weights, float) * 2.0 ** a.weight_exp
        wb = np.asarray(b.weights, float) * 2.0 ** b.weight_exp
        lim = 2 ** a.num_weight_bits
        assert np.all(np.abs(b.weights) <= lim)
        inside = np.abs(np.asarray(a.weights) / 2.0 ** offset) < lim - 1     # not clipped
        assert np.all(np.abs(wa - wb)[inside] <= 2.0 ** (b.weight_exp - 1) + 1e-9)
        if offset > 0:          # headroom: the largest weight now uses at most half the range
            assert np.abs(b.weights).max() <= lim / 2 ** offset + 1


def test_rule_rows_set_spec_fields(tmp_path, monkeypatch):
    from neurocredit.chip import defaults, profile
    from neurocredit.chip.defaults import learning_circuit

    kp = resolve_rule("kp")
    row = onchip_defaults(kp, "digits")["spec"]
    circuit = learning_circuit(kp, [12, 8, 3], 0, "digits")
    hidden = circuit.populations[0]
    assert hidden.third_shift == row.get("third_shift", 4)
    # an override beats the table
    assert learning_circuit(kp, [12, 8, 3], 0, "digits", third_shift=2).populations[0].third_shift == 2
    # a misspelt key in a rule's row is refused, named
    bad = tmp_path / "onchip_learning.toml"
    bad.write_text('[data.digits]\nhidden = [8]\nepochs = 1\nlr = 0.0625\nlr_decay = 1.0\n'
                   '[rules.kp]\nthird_shfit = 6\n')
    monkeypatch.setattr(defaults, "load_mapping", lambda name: profile.tomllib.loads(bad.read_text()))
    with pytest.raises(OnChipError, match="unknown keys \\['third_shfit'\\]"):
        onchip_defaults(kp, "digits")
