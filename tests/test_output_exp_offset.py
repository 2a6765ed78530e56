"""OnChipSpec.output_exp_offset: the forward weights into the output layer alone on a coarser
(o > 0) or finer grid, W_int / 2^o at exponent e + o, the hidden layers' untouched
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


def _base(even_output: bool = False):
    base = compile_graph(initial_graph(SIZES, seed=0)).fixed_circuit
    if even_output:       # output weights that are multiples of 4: halving them is exact (and stays even)
        out = base.populations[-1].name
        conns = tuple(replace(c, weights=(np.asarray(c.weights) // 4) * 4) if c.dst == out else c
                      for c in base.connections)
        base = replace(base, connections=conns)
    return base


def _circuit(base, **spec):
    rule = resolve_rule("fa")
    return C.build_circuit(base, rule, C.random_feedback(rule, SIZES, 0), C.default_spec(rule, 1, **spec))


def _forward(circ, base):
    return {c.dst: c for c in circ.connections if c.plastic and c.name in {b.name for b in base.connections}}


def test_offset_moves_only_the_output_layers_weights_and_exponent():
    base = _base()
    out = base.populations[-1].name
    plain, coarse = _forward(_circuit(base), base), _forward(_circuit(base, output_exp_offset=1), base)
    assert set(plain) == {p.name for p in base.populations}
    for dst, c in plain.items():
        k = coarse[dst]
        if dst == out:
            assert k.weight_exp == c.weight_exp + 1
            assert np.array_equal(k.weights, np.round(np.asarray(c.weights) / 2).astype(np.int64))
            assert not np.array_equal(k.weights, c.weights)
        else:
            assert k.weight_exp == c.weight_exp and np.array_equal(k.weights, c.weights)
    # the default (0) is the circuit without the field
    assert all(np.array_equal(_forward(_circuit(base, output_exp_offset=0), base)[d].weights, c.weights)
               for d, c in plain.items())


def test_exact_coarser_output_grid_computes_the_same_network():
    """(Σ (W/2) s) << (k + 1) = (Σ W s) << k where W/2 is exact: the same output spikes."""
    base = _base(even_output=True)
    plain, coarse = _circuit(base), _circuit(base, output_exp_offset=1)
    x = (np.random.default_rng(3).random((16, 20, SIZES[0])) < 0.4).astype(np.int64)
    outs = [emulate(S.inference_circuit(c, c.weights()), x)[c.outputs[0]].numpy() for c in (plain, coarse)]
    assert outs[0].sum() > 0
    assert np.array_equal(outs[0], outs[1])
