"""Cost per training sample (neurocredit.chip.cost): counts on a hand-built circuit against hand
computation, monotonicity, energy = Σ count × per-op figure, cores from the profile."""
from __future__ import annotations

import numpy as np
import pytest

from neurocredit.chip import cost
from neurocredit.chip.emulator import emulate_learning
from neurocredit.chip.ir import INPUT, Circuit, Connection, Population, Product, series
from neurocredit.chip.profile import load_profile


def _tiny(plastic=()) -> Circuit:
    """in (2) -> h (3 LIF, fires on any input) -> o (2 LIF); in -> h optionally plastic."""
    z3, z2 = np.zeros(3, np.int64), np.zeros(2, np.int64)
    h = Population("h", 3, 4095, 4095, 1, z3, z3)
    o = Population("o", 2, 4095, 4095, 1000, z2, z2)
    c1 = Connection("c1", INPUT, "h", np.full((3, 2), 200), plastic=series(plastic))
    c2 = Connection("c2", "h", "o", np.full((2, 3), 2))
    return Circuit(2, (h, o), (c1, c2), ("o",))


X = np.array([[1, 0], [1, 1], [0, 0], [0, 1], [0, 0], [1, 1]], np.int64)   # 6 steps, 6 input spikes


def _run(circuit, x=X, samples=1):
    return cost.measure(circuit, {INPUT: x}, samples=samples)


def test_counts_by_hand():
    products = (Product(1, 0, "x0", ("y1",)), Product(1, 0, "u1", ("w",)))
    circ = _tiny(products)
    counts = _run(circ)
    _, rec = emulate_learning(circ, {INPUT: X}, record=["h", "o"])
    h_spikes = int(rec["h"].sum())
    assert h_spikes > 0                                   # the hand numbers below are not all zero
    tot = counts.totals
    assert int(X.sum()) == 6
    assert tot["synops"] == 6 * 3 + h_spikes * 2         # input spikes x fan-out 3, h spikes x fan-out 2
    assert tot["messages"] == 6 + h_spikes
    assert tot["spikes"] == h_spikes + int(rec["o"].sum())
    # x0: each input spike touches its 3 synapses; u1 ticks on steps 2, 4, 6 (all 6 synapses)
    x0 = [X[t].sum() * 3 for t in range(6)]
    expect = sum(6 if (t + 1) % 2 == 0 else x0[t] for t in range(6))
    assert tot["learning_updates"] == expect
    # neuron updates: 5 per step in all; h is active on the step after an input spike
    assert tot["neuron_active"] + tot["neuron_inactive"] == 5 * 6
    h_active = counts.per_population["h"]["neuron_active"]
    assert list(h_active[1:] == 3) == [bool(X[t].any()) for t in range(5)]
    assert counts.per_sample()["steps"] == 6


def test_no_learning_without_plasticity_and_per_sample_division():
    counts = _run(_tiny(), samples=3)
    assert counts.totals["learning_updates"] == 0
    assert counts.per_sample()["synops"] == pytest.approx(counts.totals["synops"] / 3)


def test_more_input_spikes_cost_more():
    more = X.copy()
    more[2] = 1                                            # a superset of X's spikes
    a, b = _run(_tiny()), _run(_tiny(), more)
    assert b.totals["synops"] > a.totals["synops"]
    assert cost.estimate(b, "loihi").energy_uJ > cost.estimate(a, "loihi").energy_uJ


def test_energy_is_sum_of_counts_times_figures():
    counts = _run(_tiny((Product(1, 0, "x0", ("y1",)),)))
    fig = cost.figures("loihi")
    tot = counts.totals
    by_hand = (tot["synops"] * fig["synop_energy_pJ"] + tot["messages"] * fig["spike_energy_pJ"]
               + tot["neuron_active"] * fig["neuron_update_active_energy_pJ"]
               + tot["neuron_inactive"] * fig["neuron_update_inactive_energy_pJ"]
               + tot["learning_updates"] * fig["synaptic_update_energy_pJ"]) * 1e-6
    est = cost.estimate(counts, "loihi")
    assert est.energy_uJ == pytest.approx(by_hand, rel=1e-12)
    assert sum(est.energy_by_kind.values()) == pytest.approx(est.energy_uJ)
    # latency: at least the barrier on every step, at most every op done serially
    serial = sum(v.sum() * fig.get(cost.TIME_KEYS.get(k, ""), 0.0)
                 for ops in counts.per_population.values() for k, v in ops.items()) + 6 * fig["barrier_sync_time_ns"]
    assert 6 * fig["barrier_sync_time_ns"] * 1e-6 < est.latency_ms <= serial * 1e-6


def test_profile_without_figures_gives_no_estimate():
    assert cost.figures("loihi2") is None
    assert cost.estimate(_run(_tiny()), "loihi2") is None
    ref = cost.reference("loihi")
    assert ref["energy_uJ"] == 590.0 and ref["latency_ms"] == 1.5


def test_cores_from_profile():
    circ = _tiny()
    assert cost.cores_used(circ, "loihi2") == {"h": 1, "o": 1}
    small = load_profile("loihi2", {"chip.neurons_per_core": 2})
    assert cost.cores_used(circ, small) == {"h": 2, "o": 1}
    # synapse-bound: 1 synapse of 8 bits per core -> h needs its 6 synapses' cores
    tight = load_profile("loihi2", {"chip.synaptic_memory_bits_per_core": 8})
    assert cost.cores_used(circ, tight) == {"h": 6, "o": 6}


def test_training_cost_of_a_compiled_learning_circuit():
    """A compiled DFA circuit (64-128-10) streamed as a session streams: steps and the input
    synaptic ops follow the stream; every forward synop on a plastic x0 connection is also a
    learning update; the summary line names both profiles."""
    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.rules import resolve_rule

    rule, sizes = resolve_rule("dfa"), [64, 128, 10]
    base = compile_graph(S.initial_graph(sizes, seed=0)).fixed_circuit
    circ = C.build_circuit(base, rule, C.random_feedback(rule, sizes, 0), C.default_spec(rule, 1))
    rng = np.random.default_rng(0)
    x, y = rng.random((3, 64)) * 0.5, np.array([1, 2, 3])
    counts = cost.training_cost(circ, x, y, steps=16, blank=4, delay=2, seed=0)
    assert counts.steps == 3 * 20 and counts.samples == 3
    stream = S.sample_stream(x, y, 10, 16, 4, 0, 2)
    n_hidden = circ.connection(next(c.name for c in circ.connections if c.src == INPUT)).weights.shape[0]
    in_synops = counts.per_population[next(c.dst for c in circ.connections if c.src == INPUT)]["synops"]
    assert in_synops.sum() == stream[INPUT].sum() * n_hidden     # the hidden layer's only spike input
    tot = counts.totals
    assert tot["learning_updates"] > 0 and tot["learning_updates"] <= tot["synops"]
    line = cost.summary(circ, counts)
    assert "loihi2:" in line and "loihi:" in line and "µJ" in line


def test_missing_record_is_named():
    circ = _tiny()
    with pytest.raises(ValueError, match="'h'"):
        cost.count_activity(circ, {INPUT: X}, {"o": np.zeros((6, 2))})
