"""Marked extensions of the learning engine (chip/extensions.py, mappings/engine.toml [extensions]):
a signed graded pre factor gx compiles only where a rule needs it, is marked on its products, runs
in the emulator and in Lava's generic custom learning process (ExtendedLearningDense: stock
products on Lava's own engine, extension products added to its accumulator) with the same
weights, and changes the weights (a run without the extension products ends elsewhere)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import compile_status
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.extensions import extension_table
from neurocredit.chip.ir import INPUT, TARGET, Connection, ProductSeries
from neurocredit.chip.plasticity import compile_terms
from neurocredit.chip import sample_graphs
from neurocredit.rules import RULES
from neurocredit.rules.dynamical import PC_GAMMA_TERMS

STEPS = 64
EXTENDED = ("ia", "pc_relaxed")


def _circuit(rule, seed=3):
    g = sample_graphs.random_graph(seed=seed, n_in=10, hidden=(12, 8), n_out=4, recurrent=False, bias=False)
    base = compile_graph(g).fixed_circuit
    spec = C.default_spec(rule, 2, third_shift=2)
    return C.build_circuit(base, rule, C.random_feedback(rule, [10, 12, 8, 4], seed), spec)


def _stream(seed=5):
    rng = np.random.default_rng(seed)
    tgt = np.zeros((STEPS, 4), np.int64)
    tgt[:, 1] = 1
    return {INPUT: (rng.random((STEPS, 10)) < 0.5).astype(np.int64), TARGET: tgt}


def test_graded_terms_compile_to_marked_products_stock_first():
    ia = compile_terms(RULES["ia"].feedback.terms, 2 ** -4 * 0.1, "transposed_graded")
    assert ia.extensions == ("gx",)
    assert [bool(p.extensions) for p in ia] == sorted(bool(p.extensions) for p in ia)   # stock first
    assert all(p.dependency.startswith("u") for p in ia.extended)                         # no pre spike: u<d>
    assert ia.stock and "gx" not in ia.stock.dw
    gamma = compile_terms(PC_GAMMA_TERMS, 2 ** -4, "forward_graded")
    assert gamma.extensions == ("gx",) and not gamma.stock
    table = extension_table()
    assert "gx" in table and all({"bits", "unit", "what"} <= set(e) for e in table.values())
    # the stock rules stay on the stock engine
    for name in ("fa", "dfa", "kp", "pc_onchip"):
        assert "marked extensions" not in compile_status(RULES[name])[1], name


def test_extension_products_need_a_graded_signal():
    series = compile_terms(PC_GAMMA_TERMS, 2 ** -4, "forward_graded")
    with pytest.raises(ValueError, match="names no graded signal"):
        Connection("G", "a", "a", np.zeros((3, 3), np.int64), plastic=series)


@pytest.mark.parametrize("name", EXTENDED)
def test_rules_with_extensions_compile_and_are_marked(name):
    ok, how = compile_status(RULES[name])
    assert ok, how
    assert "marked extensions gx" in how


@pytest.mark.parametrize("name", EXTENDED)
def test_emulator_equals_lava_custom_process_and_extensions_matter(name):
    pytest.importorskip("lava.proc.dense.process")
    from neurocredit.lava.backend import run_learning
    circ = _circuit(RULES[name])
    ext = [c for c in circ.plastic if c.plastic.extensions]
    assert ext and all(c.graded is not None for c in ext)
    emu, _ = emulate_learning(circ, _stream(), 7)
    lava, _ = run_learning(circ, _stream(), 7)
    start = circ.weights()
    for c in circ.plastic:
        np.testing.assert_array_equal(emu[c.name], lava[c.name], err_msg=c.name)
    assert sum(int((lava[c.name] != start[c.name]).sum()) for c in ext) > 20
    # without the extension products (stock ones only) the extended connections end elsewhere
    stock = circ.with_plasticity({c.name: c.plastic.stock for c in ext if c.plastic.stock})
    stock = replace(stock, connections=tuple(replace(c, plastic=ProductSeries(())) if c.plastic.extensions
                                             else c for c in stock.connections))
    plain, _ = emulate_learning(stock, _stream(), 7)
    assert any(not np.array_equal(plain[c.name], emu[c.name]) for c in ext)
