"""The 'mse' output error gets the one-hot class target (it once regressed onto the class index)."""
import torch

from neurocredit.sim.losses import loss_value, output_error, target_vector


def test_mse_target_of_class_labels_is_one_hot():
    y = torch.tensor([2, 0, 3])
    t = target_vector(y, 4, "mse")
    assert t.shape == (3, 4) and t.dtype == torch.float32
    assert torch.equal(t, target_vector(y, 4, "ce"))
    assert torch.equal(t.argmax(1), y) and torch.equal(t.sum(1), torch.ones(3))


def test_mse_real_targets_pass_through():
    y = torch.randn(5, 3)
    assert target_vector(y, 3, "mse") is y


def test_mse_error_and_loss_with_class_labels():
    a = torch.tensor([[0.2, 0.9, 0.1], [1.0, 0.0, 0.5]])
    y = torch.tensor([1, 0])
    e = output_error(a, target_vector(y, 3, "mse"), "mse")
    assert torch.allclose(e, torch.tensor([[0.2, -0.1, 0.1], [0.0, 0.0, 0.5]]))
    assert torch.isclose(loss_value(a, y, "mse"), 0.5 * (e ** 2).sum(1).mean())
