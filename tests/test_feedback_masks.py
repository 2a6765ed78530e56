"""The sparse feedback mask is one rule (rules.feedback_masks) for torch and chip."""
import numpy as np
import pytest
import torch

from neurocredit.chip.circuits import random_feedback
from neurocredit.rules import get_rule
from neurocredit.rules.feedback_masks import balanced_sparse_mask
from neurocredit.sim.network import Network


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chip_sparse_feedback_is_balanced_like_torch(seed):
    """sdfa 64-128-10 on chip: every hidden neuron hears exactly one class, every class drives
    12 or 13 of the 128 (the independent zeros drawn before left some neurons deaf)."""
    rule = get_rule("sdfa")
    (b,) = random_feedback(rule, [64, 128, 10], seed)
    nz = b != 0
    assert (nz.sum(1) == 1).all()
    assert nz.sum(0).min() == 12 and nz.sum(0).max() == 13
    assert np.allclose(np.abs(b[nz]).mean() * np.sqrt(128 * 0.1), 0.8, atol=0.2)   # N(0,1/n)/sqrt(1-s)
    (other,) = random_feedback(rule, [64, 128, 10], seed + 10)
    assert not np.array_equal(nz, other != 0)
    (t,) = [p for p in Network([64, 128, 10], rule, seed=seed).feedback]
    assert np.array_equal((t != 0).sum(0).sort().values.numpy(), np.sort(nz.sum(0)))


@pytest.mark.parametrize("rows,cols,s", [(128, 10, 0.9), (64, 10, 0.5), (30, 30, 0.8), (5, 10, 0.95), (7, 3, 0.0)])
def test_balanced_mask_rows_and_columns(rows, cols, s):
    m = balanced_sparse_mask(rows, cols, s, np.random.default_rng(0).permutation)
    k = min(cols, max(1, round((1 - s) * cols)))
    assert (m.sum(1) == k).all()
    assert m.sum(0).min() == rows * k // cols and m.sum(0).max() == -(-rows * k // cols)
    g = torch.Generator().manual_seed(3)
    tm = Network._sparse_mask(rows, cols, s, g)
    assert tm.dtype == torch.float32 and (tm.sum(1) == k).all()


def test_balanced_mask_refuses_bad_sizes():
    with pytest.raises(ValueError, match="sparsity"):
        balanced_sparse_mask(4, 4, 1.0, np.random.default_rng(0).permutation)
    with pytest.raises(ValueError, match="rows, cols"):
        balanced_sparse_mask(0, 4, 0.5, np.random.default_rng(0).permutation)
