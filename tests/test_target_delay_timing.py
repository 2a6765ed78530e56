"""A data set's measured target delay (mappings/onchip_learning.toml [data.X] target_delay) in
chip.defaults.onchip_timing: it replaces the depth's delay where longer, the blank grows to hold it."""
from neurocredit.chip import defaults
from neurocredit.chip.defaults import onchip_timing
from neurocredit.chip.profile import tomllib
from neurocredit.chip.session import StreamTiming, stream_timing

ROW = 'hidden = [8]\nepochs = 1\nlr = 0.0625\nlr_decay = 1.0\n'


def test_table_target_delay_where_longer_than_the_depths(monkeypatch):
    table = tomllib.loads(f'[data.a]\n{ROW}steps = 24\ntarget_delay = 5\n[data.b]\n{ROW}target_delay = 3\n')
    monkeypatch.setattr(defaults, "load_mapping", lambda name: table)
    assert stream_timing(1) == StreamTiming(16, 4, 2)
    assert onchip_timing("a", 1) == StreamTiming(24, 5, 5)          # the blank holds the delay
    assert onchip_timing("b", 1) == StreamTiming(16, 4, 3)
    deep = stream_timing(3)                                          # delay 8, blank 16: longer than the table's
    assert onchip_timing("a", 3) == StreamTiming(24, deep.blank, deep.target_delay)
    assert onchip_timing("b", 3) == deep


def test_shipped_mnist5k_target_delay():
    t = onchip_timing("mnist5k", 1)
    assert t.steps == 24 and t.target_delay == 4 and t.blank >= t.target_delay
    assert onchip_timing("digits", 1) == stream_timing(1)
