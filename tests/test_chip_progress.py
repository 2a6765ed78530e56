"""The on-chip learning stream's progress bar (session.SampleBar) counts every sample streamed,
moves inside a run when the runner reports its steps (``on_step``), stays off on a
non-terminal, and never changes what is learned."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from neurocredit.chip import circuits as C
from neurocredit.chip import session as S
from neurocredit.chip.compile import compile_graph
from neurocredit.chip.emulator import emulate_learning
from neurocredit.data import load_digits
from neurocredit.rules import resolve_rule

REPORTED: list[int] = []
KW = dict(steps=8, blank=2, samples=24, target_delay=2, log=lambda s: None)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def setup():
    rule = resolve_rule("dfa")
    sizes = [64, 16, 10]
    base = compile_graph(S.initial_graph(sizes, seed=0)).fixed_circuit
    circuit = C.build_circuit(base, rule, C.random_feedback(rule, sizes, 0), C.default_spec(rule, 1))
    return circuit, load_digits(seed=0, standardise=False)


def stepping_run(circuit, inputs, rng_seed=0, on_step=None):
    """emulate_learning, then reporting its steps one by one as a runner with ``on_step`` does."""
    out = emulate_learning(circuit, inputs, rng_seed=rng_seed)
    for t in range(1, len(next(iter(inputs.values()))) + 1):
        on_step(t)
    REPORTED.append(t)
    return out


def _weights(circuit):
    return {c.name: np.asarray(c.weights) for c in circuit.plastic}


def test_progress_bar_counts_samples_and_changes_nothing(setup, monkeypatch):
    circuit, data = setup
    quiet, quiet_hist = S.train(circuit, data, 2, seed=0, progress=False, **KW)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    counts, close = [], S.SampleBar.close
    monkeypatch.setattr(S.SampleBar, "close", lambda self: (counts.append((self.bar.n, self.bar.total)), close(self)))
    shown, shown_hist = S.train(circuit, data, 2, seed=0, run=lambda *a, **k: emulate_learning(*a, **k), **KW)
    bar_run, bar_run_hist = S.train(circuit, data, 2, seed=0, run=stepping_run, **KW)
    monkeypatch.undo()
    text = term.getvalue()
    assert REPORTED == [24 * 10, 24 * 10]             # the stepping runner got on_step, each epoch
    assert "epoch 1/2 (emulator)" in text and "epoch 2/2" in text and "sample/s" in text, text
    assert counts == [(24, 24)] * 4                     # every sample counted, each epoch of both runs
    for got, hist in ((shown, shown_hist), (bar_run, bar_run_hist)):
        assert [h["test_acc"] for h in hist] == [h["test_acc"] for h in quiet_hist]
        for k, w in _weights(quiet).items():
            np.testing.assert_array_equal(w, _weights(got)[k])
    assert any(not np.array_equal(w, np.asarray(circuit.connection(k).weights)) for k, w in _weights(quiet).items())


def test_bar_moves_inside_a_run_with_on_step(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = S.SampleBar(10, "t", enabled=True)
    marks = []
    kw = bar.hook(lambda circuit, inputs, rng_seed=0, on_step=None: None, done=4, steps_per_sample=5)
    for t in range(1, 31):
        kw["on_step"](t)
        marks.append(bar.bar.n)
    assert marks[3] == 4 and marks[4] == 5 and marks[-1] == 10        # one sample per 5 steps, from 4 on
    bar.close()


def test_bar_off_on_a_non_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = S.SampleBar(10, "t", enabled=True)
    assert bar.bar.disable and bar.hook(stepping_run, 0, 5) == {}
    bar.close()
    assert S.SampleBar(10, "t", enabled=False).bar.disable
