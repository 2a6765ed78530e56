"""The data's measured steps per sample (mappings/onchip_learning.toml) over chip.session.stream_timing."""
from neurocredit.chip import defaults
from neurocredit.chip.defaults import onchip_timing
from neurocredit.chip.profile import tomllib
from neurocredit.chip.session import stream_timing


def test_table_steps_replace_the_depth_default(monkeypatch):
    table = tomllib.loads('[data.a]\nhidden = [8]\nepochs = 1\nlr = 0.0625\nlr_decay = 1.0\nsteps = 24\n'
                          '[data.b]\nhidden = [8]\nepochs = 1\nlr = 0.0625\nlr_decay = 1.0\n')
    monkeypatch.setattr(defaults, "load_mapping", lambda name: table)
    for depth in (1, 3):
        got, ref = onchip_timing("a", depth), stream_timing(depth)
        assert got.steps == 24 and (got.blank, got.target_delay) == (ref.blank, ref.target_delay)
        assert onchip_timing("b", depth) == ref


def test_shipped_mnist5k_steps():
    assert onchip_timing("mnist5k", 1).steps == 24            # measured: 16 / 24 / 32 steps 87.10 / 88.03 / 87.00
    assert onchip_timing("digits", 1) == stream_timing(1)
