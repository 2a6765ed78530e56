"""The float spiking trainer's optimiser and schedule options (neurocredit.sim.spiking)."""
import math
from dataclasses import replace

import pytest
import torch

from neurocredit.data import load_digits
from neurocredit.rules import get_rule
from neurocredit.sim.spiking import SpikingConfig, SpikingTrainConfig, train_spiking


def test_adam_with_a_cosine_schedule_trains_dfa_on_digits():
    data = load_digits(seed=0, standardise=False)
    res = train_spiking(get_rule("dfa"), data, [48],
                        SpikingTrainConfig(epochs=3, lr=1e-2, optimizer="adam", schedule="cosine",
                                           spiking=SpikingConfig(steps=8)))
    accs = [row["test_acc"] for row in res.history]
    assert accs[-1] > 0.80, accs


def test_cosine_schedule_sets_each_epochs_rate(monkeypatch):
    """lr_e = lr (1 + cos(π (e − 1) / E)) / 2 at the start of epoch e (recorded by the optimiser's step)."""
    seen = []
    step = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *a, **k)
    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    monkeypatch.setattr("neurocredit.sim.spiking.sgd_fusable", lambda opt: False)   # every step through opt.step
    data = load_digits(seed=0, standardise=False)
    small = replace(data, x_train=data.x_train[:64], y_train=data.y_train[:64])
    train_spiking(get_rule("dfa"), small, [16],
                  SpikingTrainConfig(epochs=4, lr=0.01, batch_size=32, schedule="cosine", spiking=SpikingConfig(steps=4)))
    want = [0.01 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert seen[::2] == pytest.approx(want) and seen[1::2] == pytest.approx(want)


def test_unknown_optimizer_is_refused():
    data = load_digits(seed=0, standardise=False)
    with pytest.raises(ValueError, match="optimizer"):
        train_spiking(get_rule("dfa"), data, [8], SpikingTrainConfig(epochs=1, optimizer="rmsprop"))


def test_weight_decay_shrinks_forward_weights_and_zero_keeps_the_fused_path(monkeypatch):
    """weight_decay 0 leaves SGD fused (bit-identical to before); > 0 is torch's L2 on W and b:
    with lr > 0 the forward weights end smaller than without it, from the same start."""
    data = load_digits(seed=0, standardise=False)
    small = replace(data, x_train=data.x_train[:128], y_train=data.y_train[:128])
    base = SpikingTrainConfig(epochs=2, lr=0.01, spiking=SpikingConfig(steps=6))
    plain = train_spiking(get_rule("dfa"), small, [16], base).net
    decayed = train_spiking(get_rule("dfa"), small, [16], replace(base, weight_decay=0.5)).net
    norm = lambda net: sum(float(l.weight.detach().norm()) for l in net.layers)   # noqa: E731
    assert norm(decayed) < 0.95 * norm(plain)
    from neurocredit.sim import updates
    fused = []

    def spy(opt):
        fused.append(updates.sgd_fusable(opt))
        return fused[-1]
    monkeypatch.setattr("neurocredit.sim.spiking.sgd_fusable", spy)
    train_spiking(get_rule("dfa"), small, [16], replace(base, epochs=1))
    assert fused and all(fused)
    with pytest.raises(ValueError, match="weight_decay"):
        train_spiking(get_rule("dfa"), small, [16], replace(base, weight_decay=-1.0))
