"""Where a sparse feedback matrix B has its non-zeros: one rule shared by every backend (the torch
networks draw it with a torch generator, the chip compiler with numpy's), so that a sparse pathway
means the same thing in float and on chip."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def balanced_sparse_mask(rows: int, cols: int, sparsity: float,
                         permutation: Callable[[int], Sequence[int]]) -> np.ndarray:
    """Boolean (rows x cols) mask: each row keeps exactly k = max(1, round((1 − s)·cols)) distinct
    non-zeros (no silent neuron) and every column gets ⌊rows·k/cols⌋ or ⌈rows·k/cols⌉ of them
    (balanced: with DFA's cols = classes, each class drives the same number of hidden neurons).

    Row r of the unshuffled mask holds columns (r·k + j) mod cols, j < k (a round-robin over the
    columns); rows, then columns, are permuted by ``permutation(n)`` (a random permutation of
    range(n): ``torch.randperm(n, generator=g)`` or ``numpy.random.Generator.permutation``).
    Sparse B as in Han et al. 2020 (arXiv:2006.12830), balanced over the error's components."""
    if rows < 1 or cols < 1:
        raise ValueError(f"a feedback mask needs rows, cols >= 1, got {rows} x {cols}")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    keep = min(cols, max(1, round((1.0 - sparsity) * cols)))
    idx = (np.arange(rows)[:, None] * keep + np.arange(keep)[None, :]) % cols
    row_perm = np.asarray(permutation(rows), dtype=np.int64)
    col_perm = np.asarray(permutation(cols), dtype=np.int64)
    mask = np.zeros((rows, cols), dtype=bool)
    np.put_along_axis(mask, col_perm[idx], True, axis=1)
    return mask[row_perm]
