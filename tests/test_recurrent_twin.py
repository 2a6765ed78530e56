"""The float e-prop under the chip's conditions (the float twin, benchmarks/onchip_recurrent.py --twin):
input codings, the per-step error with centred B, online SGD with the chip's per-epoch schedule,
no bias learning; the defaults stay the paper's."""
from __future__ import annotations

import pytest
import torch

from neurocredit.data import Dataset
from neurocredit.rules import get_rule
from neurocredit.sim.recurrent_spiking import RecurrentSpikingConfig, RecurrentSpikingNetwork
from neurocredit.sim.recurrent_train import (RecurrentTrainConfig, coded_input, rate_coded, regular_coded,
                                             train_recurrent)


def test_codings_shape_and_refusals():
    x = torch.rand(5, 8, 3)
    g = torch.Generator().manual_seed(0)
    r = rate_coded(x, 4, 2, g)
    assert r.shape == (5, 34, 3) and set(r.unique().tolist()) <= {0.0, 1.0} and not r[:, 32:].any()
    # the draws follow the probabilities: a row at 1 spikes every step, at 0 never
    ones = rate_coded(torch.ones(2, 2, 3), 4, 0, g)
    assert ones.all() and not rate_coded(torch.zeros(2, 2, 3), 4, 0, g).any()
    assert regular_coded(torch.full((1, 1, 1), 0.5), 4, 0).flatten().tolist() == [1, 0, 1, 0]
    cfg = RecurrentTrainConfig(input_coding="graded", row_steps=3, blank=1)
    held = coded_input(x, cfg)
    assert held.shape == (5, 25, 3) and torch.equal(held[:, 3:6], x[:, 1:2].expand(5, 3, 3))
    assert torch.equal(coded_input(x, RecurrentTrainConfig()), x)            # the paper's input: unchanged
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rate_coded(x - 0.5, 4, 0)
    with pytest.raises(ValueError, match="coding"):
        coded_input(x, RecurrentTrainConfig(input_coding="poisson"))


def test_step_error_targets_the_window_and_centres_b():
    rule = get_rule("eprop")
    net = RecurrentSpikingNetwork([3, 6, 4], rule, RecurrentSpikingConfig(readout="lif", error="step",
                                                                         target_delay=1, blank=2), seed=0)
    target = torch.eye(4)[[1, 2]]
    ystar = net.step_target(target, 7)            # on steps [1, 7 − 2 + 1) = 1..5
    assert ystar[:, 0].argmax(1).tolist() == [0, 1, 1, 1, 1, 1, 0] and ystar[0].sum() == 0 and ystar[6].sum() == 0
    e = torch.randn(7, 2, 4)
    rec = {"z": [torch.zeros(7, 2, 6)]}
    base = net.learning_signals(rec, e, target)[0]
    fb = net.net.effective_B(0)
    centred = fb - fb.mean(1, keepdim=True)     # a common part of B over the classes does not pass
    assert torch.allclose(base, e @ centred.T, atol=1e-6)
    assert not torch.allclose(base, e @ fb.T, atol=1e-3)
    # the paper's sample error keeps B as it is
    paper = RecurrentSpikingNetwork([3, 6, 4], rule, RecurrentSpikingConfig(readout="lif"), seed=0)
    assert torch.allclose(paper.learning_signals(rec, e, target)[0], e @ paper.net.effective_B(0).T, atol=1e-6)
    with pytest.raises(ValueError, match="error form"):
        RecurrentSpikingNetwork([3, 6, 4], rule, RecurrentSpikingConfig(error="global"), seed=0)


def test_online_sgd_with_the_chips_schedule_and_no_bias_learning():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(24, 4, 3, generator=g), torch.arange(24) % 3
    data = Dataset("seqdigits", x[:16], y[:16], x[16:], y[16:], 3)
    cfg = dict(lr=0.05, optimizer="sgd", momentum=0.0, batch_size=1, learn_bias=False, readout="lif",
               input_coding="regular", row_steps=2, blank=1, error="step", progress=False)
    rule = get_rule("eprop")
    one = train_recurrent(rule, data, [8], "rsnn", RecurrentTrainConfig(epochs=1, **cfg)).net
    res = train_recurrent(rule, data, [8], "rsnn", RecurrentTrainConfig(epochs=3, lr_decay=1e-9, **cfg))
    net = res.net
    assert all(b is None or not b.any() for _, b in net.parameters_in_update_order())   # biases never learned
    start = RecurrentSpikingNetwork([3, 8, 3], rule, RecurrentSpikingConfig(readout="lif"), seed=0)
    assert not torch.equal(start.layers[0].weight, net.layers[0].weight)                   # weights did
    # epochs 2 and 3 run at lr × 1e-9, × 1e-18: the weights stay those of epoch 1
    for (w1, _), (w3, _) in zip(one.parameters_in_update_order(), net.parameters_in_update_order()):
        assert torch.allclose(w1, w3, atol=1e-6)
    with pytest.raises(ValueError, match="lr_decay"):
        train_recurrent(rule, data, [8], "rsnn",
                        RecurrentTrainConfig(epochs=1, lr_decay=0.5, schedule="cosine", progress=False))
