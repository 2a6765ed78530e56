"""OnChipSpec.decay_epochs: a rule's weight-decay products (−λW on a decimated tick u<d>) act in the
first n epochs of a session only (chip.session.epoch_circuit, chip.plasticity.without_decay); the
learning products and the lr schedule are untouched, and decay_epochs 0 (the default) changes nothing.
OnChipSpec.output_init: the output layer's initial weights scaled (learned feedback without decay)."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import session as S
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.plasticity import without_decay
from neurocredit.chip.tags import scheduled
from neurocredit.data import load_digits
from neurocredit.rules import resolve_rule

SIZES = [64, 16, 10]


def _circuit(decay_epochs: int = 0, rule: str = "kp"):
    r = resolve_rule(rule)
    base = compile_graph(S.initial_graph(SIZES, seed=0)).fixed_circuit
    spec = C.default_spec(r, 1, lr=2 ** -3, decay_epochs=decay_epochs)
    return C.build_circuit(base, r, C.random_feedback(r, SIZES, 0), spec)


def _is_decay(p) -> bool:
    return p.decimation is not None and tuple(p.factors) == ("w",)


def test_without_decay_drops_only_the_weight_only_products():
    for conn in _circuit().plastic:                 # KP: W1, W2 and B1 each carry −λ·w on u<d>
        series = list(conn.plastic)
        kept = list(without_decay(conn.plastic))
        assert any(_is_decay(p) for p in series)
        assert kept == [p for p in series if not _is_decay(p)] and len(kept) == len(series) - 1
    dfa = _circuit(rule="dfa")                      # no decay term: the series is unchanged
    assert all(list(without_decay(c.plastic)) == list(c.plastic) for c in dfa.plastic)


@pytest.mark.parametrize("lr_decay", [1.0, 0.7])
def test_epoch_circuit_drops_the_decay_after_n_epochs(lr_decay):
    plain, timed = _circuit(0), _circuit(2)
    assert "decay_epochs" not in plain.meta and timed.meta["decay_epochs"] == 2
    for epoch in (1, 2, 3, 5):
        f = lr_decay ** (epoch - 1)
        a, b = S.epoch_circuit(plain, epoch, lr_decay), S.epoch_circuit(timed, epoch, lr_decay)
        for conn in plain.plastic:
            want = scheduled(conn, conn.plastic, f) if lr_decay != 1.0 else conn.plastic
            assert list(a.connection(conn.name).plastic) == list(want)          # 0: the schedule alone
            got = list(b.connection(conn.name).plastic)
            assert got == (list(want) if epoch <= 2 else [p for p in want if not _is_decay(p)])
    assert S.epoch_circuit(plain, 4, 1.0) is plain


def test_training_differs_only_after_the_decay_epochs():
    """30 samples per epoch: with decay_epochs 1 the weights equal the plain run's after epoch 1 and
    differ after epoch 2; decay_epochs 2 equals the plain run over 2 epochs; train_chips == train."""
    data = load_digits(seed=0, standardise=False)

    def weights(n: int, epochs: int):
        trained, _ = S.train(_circuit(n), data, epochs, seed=0, samples=30, lr_decay=0.8, log=lambda s: None,
                             progress=False)
        return {c.name: np.asarray(c.weights) for c in trained.plastic}

    def same(a, b):
        return all(np.array_equal(a[k], b[k]) for k in a)
    assert same(weights(0, 1), weights(1, 1))
    assert not same(weights(0, 2), weights(1, 2))
    assert same(weights(0, 2), weights(2, 2))
    chips, _ = S.train_chips([_circuit(1)], [data], 2, [0], samples=30, lr_decay=0.8, log=lambda s: None,
                             progress=False)
    assert same({c.name: np.asarray(c.weights) for c in chips[0].plastic}, weights(1, 2))


@pytest.mark.parametrize("scale", [0.0, 0.25])
def test_output_init_scales_only_the_output_layers_start(scale):
    """OnChipSpec.output_init: the output layer's initial integer weights x scale (rounded), its exponent
    and every other connection unchanged; 1 (the default) is the untrained network's."""
    r = resolve_rule("pc_onchip")
    base = compile_graph(S.initial_graph(SIZES, seed=0)).fixed_circuit

    def build(**kw):
        return C.build_circuit(base, r, C.random_feedback(r, SIZES, 0), C.default_spec(r, 1, **kw))
    plain, scaled = build(), build(output_init=scale)
    out = plain.outputs[0]
    for a, b in zip(plain.connections, scaled.connections):
        if a.dst == out and a.dst_port == "a" and a.plastic:
            assert b.weight_exp == a.weight_exp and np.abs(np.asarray(a.weights)).max() > 0
            assert np.array_equal(b.weights, np.round(np.asarray(a.weights) * scale).astype(np.int64))
        else:
            assert np.array_equal(np.asarray(a.weights), np.asarray(b.weights))
    assert np.array_equal(build(output_init=1.0).connection("affine_1").weights, plain.connection("affine_1").weights)
