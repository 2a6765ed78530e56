"""OnChipSpec.hidden_exp_offset: the forward weights into hidden layers on a finer (o < 0) or
coarser grid, W_int / 2^o at exponent e + o, the output layer's untouched
(chip.circuits.build_circuit, chip.circuits.regridded)."""
from dataclasses import replace

import numpy as np

from neurocredit.chip import circuits as C
from neurocredit.chip import session as S
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate
from neurocredit.chip.session import initial_graph
from neurocredit.rules import resolve_rule

SIZES = [12, 8, 3]


def _base(halve_hidden: bool = False):
    base = compile_graph(initial_graph(SIZES, seed=0)).fixed_circuit
    if halve_hidden:      # even hidden weights below 128 (a mixed-sign Dense drops the low bit): doubling is exact
        conns = tuple(replace(c, weights=(np.asarray(c.weights) // 4) * 2) if c.dst != base.populations[-1].name else c
                      for c in base.connections)
        base = replace(base, connections=conns)
    return base


def _circuit(base, **spec):
    rule = resolve_rule("dfa")
    return C.build_circuit(base, rule, C.random_feedback(rule, SIZES, 0), C.default_spec(rule, 1, **spec))


def _forward(circ):
    return {c.dst: c for c in circ.connections if c.view == "forward" and c.plastic and c.name in
            {b.name for b in _base().connections}}


def test_offset_moves_only_the_hidden_layers_weights_and_exponent():
    base = _base()
    out = base.populations[-1].name
    plain, fine = _forward(_circuit(base)), _forward(_circuit(base, hidden_exp_offset=-1))
    for dst, c in plain.items():
        f = fine[dst]
        if dst == out:
            assert f.weight_exp == c.weight_exp and np.array_equal(f.weights, c.weights)
        else:
            assert f.weight_exp == c.weight_exp - 1
            assert np.array_equal(f.weights, np.clip(2 * np.asarray(c.weights), -256, 255))
            assert (np.abs(np.asarray(f.weights)) >= 255).any()      # the largest weights clip at the bound
    coarse = _forward(_circuit(base, hidden_exp_offset=1))
    for dst, c in plain.items():
        if dst != out:
            assert coarse[dst].weight_exp == c.weight_exp + 1
            assert np.array_equal(coarse[dst].weights, np.round(np.asarray(c.weights) / 2).astype(np.int64))


def test_unclipped_finer_grid_computes_the_same_network():
    """(Σ 2W s) << (k − 1) = (Σ W s) << k: without clipping the finer grid's spikes are the same."""
    base = _base(halve_hidden=True)
    plain, fine = _circuit(base), _circuit(base, hidden_exp_offset=-1)
    assert not np.array_equal(plain.weights()["affine"], fine.weights()["affine"])
    x = (np.random.default_rng(3).random((16, 20, SIZES[0])) < 0.4).astype(np.int64)
    outs = [emulate(S.inference_circuit(c, c.weights()), x)[c.outputs[0]].numpy() for c in (plain, fine)]
    assert outs[0].sum() > 0
    assert np.array_equal(outs[0], outs[1])
