"""The emulator's fast path changes nothing: Lava's random streams drawn in blocks equal the
draw-by-draw streams; the learning engine on the gathered active columns (learn_columns, with
its one-delta-per-row shortcut) equals apply_series on whole matrices for product series with
mixed signs, the weight factor, saturating currents and chips without a spike; W s from the
gathered columns equals the dense product; and whole runs of N chips (forward and transposed
views, weight decay on u<d>, a synapse mask) give the same weights, spikes and snapshots with
the column path as with apply_series on every synapse; so does the compiled kernel
(chip.kernels), which runs in chunks when progress is reported and declines circuits it does not
cover."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import kernels as KN
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import (EngineRandoms, apply_series, column_products, column_sum, emulate_chips,
                                       learn_columns, padded_columns, trace_values)
from neurocredit.chip.ir import INPUT, TARGET, Product, ProductSeries
from neurocredit.chip import sample_graphs
from neurocredit.rules import resolve_rule

SERIES = {
    "dfa": [Product(-4, -6, "x0", ("y3",)), Product(4, -6, "x0", ("y2",))],
    "same_sign": [Product(3, -5, "x0", ("y1",)), Product(5, -4, "x0", ("y3",))],
    "mixed": [Product(7, -3, "x0", ("y1",)), Product(-6, -2, "x0", ("y3",)), Product(2, -7, "x0", ())],
    "weight": [Product(-3, -7, "x0", ("y1", "w")), Product(5, -5, "x0", ("y2",))],
    "saturating": [Product(7, 6, "x0", ("y3",)), Product(-8, 5, "x0", ("y2",)), Product(7, 8, "x0", ("y1",))],
    "decay_off_tick": [Product(-4, -6, "x0", ("y3",)), Product(-3, -7, "u2", ("w",))],
}


def test_engine_randoms_in_blocks_equal_draw_by_draw():
    seeds = [0, 5, 11]
    er = EngineRandoms(seeds, block=7)
    w_g = [np.random.default_rng(2) for _ in seeds]
    y_g = [np.random.default_rng(s + 2) for s in seeds]
    for g in (*w_g, *y_g):
        g.random(1)
    for _ in range(30):                                  # crosses several blocks
        r_y, r_w = er.step()
        for g in y_g:
            g.random(1)
        np.testing.assert_array_equal(r_y, [g.random(1)[0] for g in y_g])
        np.testing.assert_array_equal(r_w, [g.random(1)[0] for g in w_g])


@pytest.mark.parametrize("name", sorted(SERIES))
def test_learn_columns_equals_apply_series(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    series = ProductSeries(SERIES[name])
    k, rows, cols = 6, 9, 13
    changed = 0
    for t in range(1, 41):
        w = rng.integers(-256, 256, (k, rows, cols))
        w[0, :, 0] = [-256, 255, 0, -256, 255, 1, -1, 200, -200]       # extremes meet saturating currents
        x0 = rng.random((k, cols)) < rng.uniform(0, 0.6, (k, 1))
        x0[1] = False                                                  # a chip without a spike
        tt = rng.integers(-127, 128, (k, rows)) * (rng.random((k, rows)) < 0.6)
        y = {"y1": rng.integers(0, 128, (k, rows)) * (rng.random((k, rows)) < 0.5),
             "y2": np.clip(-tt, 0, 127), "y3": np.clip(tt, 0, 127)}
        r_y, r_w = rng.random(k), rng.random(k)
        ref = apply_series(w, x0, y, series, r_y, r_w, t)
        live = column_products(series, t)
        if live is None:                                               # a ticking u<d> step: apply_series only
            assert name == "decay_off_tick" and t % 4 == 0
            continue
        m = np.ascontiguousarray(w.swapaxes(1, 2)).astype(np.int16)    # column-major, as emulate_chips holds it
        idx, cnt = padded_columns(x0)
        traces = {f: trace_values(y[f], r_y[:, None]) for f in ("y1", "y2", "y3")}
        new = learn_columns(m[np.arange(k)[:, None], idx], cnt, traces, live, r_w)
        if new is not None:
            m[np.arange(k)[:, None], idx] = new
        np.testing.assert_array_equal(m.swapaxes(1, 2), ref, err_msg=f"step {t}")
        changed += int((ref != w).sum())
    assert changed > 100, changed


def test_column_sum_equals_the_dense_product():
    rng = np.random.default_rng(3)
    w = rng.integers(-256, 256, (5, 7, 11))
    for graded in (False, True):
        s = (rng.random((5, 11)) < 0.3).astype(np.int64)
        s[2] = 0
        if graded:
            s = s * rng.integers(-40, 41, s.shape)
        m = np.ascontiguousarray(w.swapaxes(1, 2)).astype(np.int16)
        idx, cnt = padded_columns(s)
        got = column_sum(m[np.arange(5)[:, None], idx], cnt, np.take_along_axis(s, idx, 1) if graded else None)
        np.testing.assert_array_equal(got, np.einsum("kij,kj->ki", w, s))


def _circuit(rule, seed, sparse=False):
    g = sample_graphs.random_graph(seed=seed, n_in=10, hidden=(12,), n_out=4, recurrent=False, bias=False)
    spec = C.default_spec(rule, 1, third_shift=2, mirror_steps=40)
    fb = C.random_feedback(rule, [10, 12, 4], seed)
    return C.build_circuit(compile_graph(g).fixed_circuit, rule, fb, spec)


def _stream(seed, steps=120):
    rng = np.random.default_rng(seed)
    tgt = np.zeros((steps, 4), np.int64)
    tgt[:, seed % 4] = 1
    return {INPUT: (rng.random((steps, 10)) < 0.4).astype(np.int64), TARGET: tgt}


RULE_FILES = Path(__file__).resolve().parents[1] / "examples" / "rules"


def _with_decay(circ):
    """``circ`` with a weight decay on u2 added to every plastic connection (apply_series every
    4th step, the column path in between)."""
    conns = [replace(c, plastic=ProductSeries(tuple(c.plastic) + (Product(-3, -7, "u2", ("w",)),)))
             if c.plastic else c for c in circ.connections]
    return replace(circ, connections=conns)


@pytest.mark.parametrize("name", ["dfa", "fa", "kp", "drtp", str(RULE_FILES / "sparse_fa_learned.toml"), "dfa+decay",
                                  "kp+decay"])
@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "numpy"])
def test_chips_with_the_column_path_equal_apply_series_everywhere(name, kernel):
    """The compiled kernel (chip.kernels) and the numpy column path each equal apply_series on every
    synapse: weights, spikes, error records and snapshots (u2 decay: a tick every 4th step)."""
    rule = resolve_rule(name.split("+")[0])
    circuits = [_circuit(rule, s) for s in (1, 2, 3)]
    if name.endswith("+decay"):
        circuits = [_with_decay(c) for c in circuits]
    assert KN.kernel_plan(circuits[0]) is None          # the kernel covers these circuits
    streams = [_stream(10 + s) for s in range(3)]
    pops = [p.name for p in circuits[0].populations]
    pops += [f"err:{p.name}" for p in circuits[0].populations if p.kind == "third"]
    fast_w, fast_r = emulate_chips(circuits, streams, [4, 5, 6], record=pops, snapshot_every=9, kernel=kernel)
    ref_w, ref_r = emulate_chips(circuits, streams, [4, 5, 6], record=pops, snapshot_every=9, columns=False)
    moved = 0
    for i, circ in enumerate(circuits):
        for c in circ.connections:
            np.testing.assert_array_equal(fast_w[i][c.name], ref_w[i][c.name], err_msg=f"chip {i} {c.name}")
            assert fast_w[i][c.name].dtype == np.int64
        assert sorted(fast_r[i]) == sorted(ref_r[i])
        for key in ref_r[i]:
            np.testing.assert_array_equal(fast_r[i][key], ref_r[i][key], err_msg=f"chip {i} {key}")
        moved += sum(int((fast_w[i][c.name] != circ.weights()[c.name]).sum()) for c in circ.plastic)
    assert moved > 30, f"{name}: only {moved} weights moved"


def test_kernel_progress_chunks_change_nothing():
    """on_step runs the kernel in chunks of steps: same weights, and the steps reported reach T."""
    circuits = [_circuit(resolve_rule("kp"), s) for s in (1, 2)]
    streams = [_stream(20 + s, steps=150) for s in range(2)]
    seen: list[int] = []
    w_a, _ = emulate_chips(circuits, streams, [1, 2], on_step=seen.append)
    w_b, _ = emulate_chips(circuits, streams, [1, 2], kernel=False)
    assert seen and seen[-1] == 150 and seen == sorted(seen)
    for i in range(2):
        for k in w_b[i]:
            np.testing.assert_array_equal(w_a[i][k], w_b[i][k])


def test_kernel_declines_what_it_does_not_cover():
    circ = _circuit(resolve_rule("dfa"), 1)
    first = circ.plastic[0]
    odd = replace(circ, connections=[replace(c, plastic=ProductSeries(tuple(c.plastic) + (Product(1, -7, "y0", ()),)))
                                     if c.name == first.name else c for c in circ.connections])
    assert "dependency" in KN.kernel_plan(odd)


def test_trace_values_table_equals_the_float_reading():
    rng = np.random.default_rng(8)
    for lo, hi in ((0, 128), (-5, 300)):                       # inside the table, and outside it
        y = rng.integers(lo, hi, (4, 50))
        r_y = rng.random((4, 1))
        yv = np.exp(-1 / 65535) * y
        np.testing.assert_array_equal(trace_values(y, r_y), (np.floor(yv) + (r_y < yv % 1)).astype(np.int64))
