"""chip.session.sample_stream's target rate: the target class spikes on evenly spaced steps at the
given rate, after the delay, and nowhere else; rate 1 is the old stream bit for bit."""
import numpy as np
import pytest

from neurocredit.chip import session as S
from neurocredit.chip.ir import INPUT, TARGET


@pytest.mark.parametrize("rate,expect", [(1.0, 16), (0.75, 12), (0.5, 8), (0.25, 4)])
def test_target_rate_spike_count_and_spacing(rate, expect):
    st = S.sample_stream(np.full((3, 5), 0.5), np.array([2, 0, 9]), 10, 16, 4, seed=1, delay=2, target_rate=rate)
    y = st[TARGET].reshape(3, 20, 10)
    for k, label in enumerate((2, 0, 9)):
        on = np.flatnonzero(y[k, :, label])
        assert len(on) == expect and on.min() >= 2 and on.max() < 18
        assert y[k].sum() == expect                          # only the label's column
        if rate == 0.5:
            assert np.all(np.diff(on) == 2)                  # evenly spaced


def test_target_rate_one_is_the_default_stream_and_input_unchanged():
    args = (np.random.default_rng(0).random((4, 7)), np.array([1, 2, 3, 4]), 5, 8, 2, 3)
    a, b = S.sample_stream(*args, delay=1), S.sample_stream(*args, delay=1, target_rate=1.0)
    c = S.sample_stream(*args, delay=1, target_rate=0.5)
    assert np.array_equal(a[TARGET], b[TARGET]) and np.array_equal(a[INPUT], c[INPUT])
    assert a[TARGET].sum() == 4 * 8


def test_target_rate_out_of_range_refused():
    with pytest.raises(ValueError, match="target rate"):
        S.sample_stream(np.zeros((1, 2)), np.array([0]), 2, 4, 0, 0, target_rate=0.0)
