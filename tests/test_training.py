"""Training loop, metrics, data splits, divergence detection."""
import math

import pytest
import torch

from neurocredit.data import load_digits, load_mnist5k, teacher_student
from neurocredit.rules import get_rule
from neurocredit.sim.metrics import angle
from neurocredit.sim.train import DivergenceError, TrainConfig, train


def test_angle_is_zero_for_parallel_and_ninety_for_orthogonal():
    a = torch.randn(5, 7)
    assert angle(a, 3 * a) < 1e-5
    assert abs(angle(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])) - 90) < 1e-9
    assert abs(angle(a, -a) - 180) < 1e-4


def test_splits_are_fixed_by_seed_and_differ_across_seeds():
    a, b, c = load_digits(0), load_digits(0), load_digits(1)
    assert torch.equal(a.x_test, b.x_test) and not torch.equal(a.x_test, c.x_test)
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)


def test_mnist5k_ships_offline():
    d = load_mnist5k(0)
    assert d.x_train.shape == (4000, 784) and d.n_classes == 10


def test_teacher_student_is_reproducible():
    assert torch.equal(teacher_student(seed=3).y_train, teacher_student(seed=3).y_train)


@pytest.mark.parametrize("name", ["fa", "dfa", "kp"])
def test_short_training_learns_digits_and_logs_metrics(name):
    d = load_digits(0)
    r = train(get_rule(name), d, [64], TrainConfig(epochs=3, progress=False, activation="relu"))
    assert r.final["test_acc"] > 0.85
    assert len(r.history) == 3
    layer1 = r.final["layers"][0]
    for key in ("angle_WT_B", "delta_angle", "dw_cosine", "B_over_W"):
        assert math.isfinite(layer1[key])


def test_kolen_pollack_aligns_B_with_W_transpose_and_fa_does_not():
    d = load_digits(0)
    cfg = TrainConfig(epochs=20, progress=False, activation="relu")
    kp = train(get_rule("kp"), d, [64], cfg).history
    fa = train(get_rule("fa"), d, [64], cfg).final["layers"][0]["angle_WT_B"]
    kp_angles = [h["layers"][0]["angle_WT_B"] for h in kp]
    assert kp_angles[-1] < 25 < 50 < fa
    assert kp_angles[-1] < kp_angles[0] - 20


def test_divergence_is_reported_with_rule_and_epoch():
    # an exploding loss is stopped before it reaches inf: the message names the rule, the epoch,
    # the batch, the loss against the first batch's, and a smaller learning rate to try
    with pytest.raises(DivergenceError, match=r"rule 'fa', epoch \d+, batch \d+: loss (is (inf|nan)"
                       r"|[\d.e+]+ is over 20 x the first batch's [\d.e+]+ \(lr 10\); lower --lr \(try 1\))"):
        train(get_rule("fa"), teacher_student(), [32],
              TrainConfig(epochs=3, lr=10, progress=False, metrics=False))


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        train(get_rule("fa"), load_digits(0), [8], TrainConfig(epochs=1, device="cuda",
                                                                progress=False))
