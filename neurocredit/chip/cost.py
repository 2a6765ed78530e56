"""Cost per training sample of a learning circuit: what the chip does while a stream of samples
learns (synaptic operations, spikes, neuron and learning-engine updates, time steps, cores), and
energy and latency estimates from the per-operation figures of a hardware profile's ``[cost]``
section (``hardware/loihi.toml``: Davies et al. 2018, IEEE Micro 38(1), Table 2).

Counts come from the records of one stream (:func:`measure` runs the emulator, or any backend
with its signature, recording every population's output); per step t and connection c with
``e_c[t]`` non-zero source events (spikes, or graded values: a third-factor population's error,
a graded population's output)::

    synaptic ops        Σ_c e_c[t] · n_dst(c)                  (graded ones counted apart)
    messages            Σ_c e_c[t]                             (one per source event per connection)
    neuron updates      Σ_p n_p, "active" where p received an event (sent at t − 1), has a bias,
                        or fires at t; "inactive" the others
    learning updates    per plastic connection: pre events · fan-out for x0 products (forward view:
                        the source's positive outputs × n_dst; transposed view: the destination's
                        spikes × n_src); every synapse on a step where a u<d> product ticks

    energy  = Σ_kind count_kind · E_kind                       (pJ per operation, from the profile)
    latency = Σ_t [ max_p work_p[t] / cores_p + barrier ]      work_p: the ops of p's synapses and
                                                               neurons × their time per op

Cores per population: :meth:`Profile.cores_for` (its neurons and its incoming synapses).  Input
and target sources are fed from outside and cost nothing here; phases (weight mirrors) are not
counted.  The latency treats a population's cores as working in parallel and the barrier as the
whole-mesh figure: an estimate, not a measurement.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from neurocredit.chip.ir import Circuit, Connection
from neurocredit.chip.profile import Profile, load_profile

KINDS = ("synops", "graded_synops", "messages", "spikes", "neuron_active", "neuron_inactive",
         "learning_updates")
"""Counted operation kinds (totals over a stream)."""

ENERGY_KEYS = {"synops": "synop_energy_pJ", "graded_synops": "synop_energy_pJ",
               "messages": "spike_energy_pJ", "neuron_active": "neuron_update_active_energy_pJ",
               "neuron_inactive": "neuron_update_inactive_energy_pJ",
               "learning_updates": "synaptic_update_energy_pJ"}
"""Counted kind -> the profile's ``[cost]`` energy figure it is charged with."""

TIME_KEYS = {"synops": "synop_time_ns", "graded_synops": "synop_time_ns",
             "neuron_active": "neuron_update_active_time_ns",
             "neuron_inactive": "neuron_update_inactive_time_ns",
             "learning_updates": "synaptic_update_time_ns"}
"""Counted kind -> the profile's ``[cost]`` time figure (per operation, within one core)."""


@dataclass
class Counts:
    """Operations counted over one stream of ``samples`` samples and ``steps`` time steps.
    ``per_population[p][kind]``: [steps] arrays of the operations done by population p's cores
    (its neurons, its incoming synapses, their learning); ``totals``: sums over p and t."""

    samples: int
    steps: int
    per_population: dict[str, dict[str, np.ndarray]]
    cores: dict[str, int] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, int]:
        out = {k: 0 for k in KINDS}
        for ops in self.per_population.values():
            for k, v in ops.items():
                out[k] += int(np.sum(v))
        return out

    def per_sample(self) -> dict[str, float]:
        """Totals (and time steps) divided by the number of samples."""
        return {**{k: v / self.samples for k, v in self.totals.items()}, "steps": self.steps / self.samples}


def recorded_outputs(circuit: Circuit) -> list[str]:
    """The record names :func:`count_activity` needs: every population's output, and the signed
    error ``err:<name>`` of every population a connection reads it from."""
    names = [p.name for p in circuit.populations]
    names += [f"err:{n}" for n in dict.fromkeys(c.src for c in circuit.connections if c.src_port == "err")]
    return names


def _source(c: Connection, inputs: dict[str, np.ndarray], records: dict[str, np.ndarray]) -> np.ndarray:
    if c.src in inputs:
        return np.asarray(inputs[c.src])
    key = f"err:{c.src}" if c.src_port == "err" else c.src
    if key not in records:
        raise ValueError(f"connection {c.name} reads {key!r}, which is neither an input nor recorded "
                         f"(record cost.recorded_outputs(circuit))")
    return np.asarray(records[key])


def count_activity(circuit: Circuit, inputs: dict[str, np.ndarray], records: dict[str, np.ndarray],
                   samples: int = 1) -> Counts:
    """The operations of one stream from its inputs {source: [T, n]} and the records
    (:func:`recorded_outputs`) a run of it produced (module docstring: the equations)."""
    pops = {p.name: p for p in circuit.populations}
    steps = len(next(iter(inputs.values())))
    z = lambda: np.zeros(steps, np.int64)  # noqa: E731
    ops = {name: {k: z() for k in KINDS} for name in pops}
    received = {name: np.zeros(steps, bool) for name in pops}
    for c in circuit.connections:
        s = _source(c, inputs, records).reshape(steps, -1)
        n_dst, n_src = np.shape(c.weights)
        events = np.count_nonzero(s, axis=1)
        graded = c.src_port == "err" or (c.src in pops and pops[c.src].kind == "graded")
        ops[c.dst]["graded_synops" if graded else "synops"] += events * n_dst
        ops[c.dst]["messages"] += events
        received[c.dst][1:] |= events[:-1] > 0          # Lava timing: sent at t, integrated at t + 1
        if not c.plastic:
            continue
        if c.view == "transposed":
            pre = np.count_nonzero(np.asarray(records[c.dst]).reshape(steps, -1) > 0, axis=1) * n_src
        else:
            pre = np.count_nonzero(s > 0, axis=1) * n_dst
        touched = pre if any(p.dependency == "x0" for p in c.plastic) else z()
        t = np.arange(1, steps + 1)
        for p in c.plastic:
            if p.decimation is not None:
                touched = np.where(t % (1 << p.decimation) == 0, n_dst * n_src, touched)
        ops[c.dst]["learning_updates"] += touched
    for name, p in pops.items():
        out = np.asarray(records[name]).reshape(steps, -1)
        fired = np.count_nonzero(out, axis=1)
        if p.kind != "graded":
            ops[name]["spikes"] += fired
        biased = bool(np.any(np.asarray(p.bias_mant) != 0))
        whole = received[name] | biased
        active = np.where(whole, p.n, fired)
        ops[name]["neuron_active"] += active
        ops[name]["neuron_inactive"] += p.n - active
    return Counts(samples, steps, ops)


def cores_used(circuit: Circuit, profile: str | Profile = "loihi2") -> dict[str, int]:
    """Cores per population on ``profile``: enough for its neurons and its incoming synapses
    (:meth:`Profile.cores_for`)."""
    prof = load_profile(profile)
    syn = {p.name: 0 for p in circuit.populations}
    for c in circuit.connections:
        syn[c.dst] += int(np.prod(np.shape(c.weights)))
    return {p.name: prof.cores_for(p.n, syn[p.name]) for p in circuit.populations}


def measure(circuit: Circuit, inputs: dict[str, np.ndarray], samples: int = 1, rng_seed: int = 0,
            run: Callable | None = None) -> Counts:
    """Run one stream through ``run`` (default: the emulator's ``emulate_learning``), recording
    every output, and count its operations (:func:`count_activity`)."""
    if run is None:
        from neurocredit.chip.emulator import emulate_learning as run
    _, records = run(circuit, inputs, rng_seed=rng_seed, record=recorded_outputs(circuit))
    return count_activity(circuit, inputs, records, samples)


def figures(profile: str | Profile) -> dict[str, float] | None:
    """The profile's per-operation ``[cost]`` figures (pJ, ns), or None where it has none."""
    prof = load_profile(profile)
    cost = prof.data.get("cost")
    if not cost:
        return None
    return {k: float(v) for k, v in cost.items() if isinstance(v, (int, float))}


@dataclass(frozen=True)
class Estimate:
    """Energy (µJ) and latency (ms) per sample, the energy split by kind (µJ per sample)."""

    energy_uJ: float
    latency_ms: float
    energy_by_kind: dict[str, float]


def estimate(counts: Counts, profile: str | Profile, cores: dict[str, int] | None = None) -> Estimate | None:
    """Energy = Σ count × per-op energy; latency = Σ over steps of the slowest population's work
    over its cores, plus the barrier (module docstring); per sample.  None if ``profile`` has no
    ``[cost]`` figures.  A figure the profile lacks counts as 0 for its kind."""
    fig = figures(profile)
    if fig is None:
        return None
    totals = counts.totals
    by_kind = {k: totals[k] * fig.get(ENERGY_KEYS[k], 0.0) * 1e-6 / counts.samples
               for k in KINDS if k in ENERGY_KEYS}
    cores = cores or {name: 1 for name in counts.per_population}
    work = np.zeros(counts.steps)
    for name, ops in counts.per_population.items():
        t_p = sum(ops[k].astype(float) * fig.get(key, 0.0) for k, key in TIME_KEYS.items())
        work = np.maximum(work, t_p / max(1, cores.get(name, 1)))
    latency_ns = float(np.sum(work + fig.get("barrier_sync_time_ns", 0.0)))
    return Estimate(sum(by_kind.values()), latency_ns * 1e-6 / counts.samples, by_kind)


def reference(profile: str | Profile, name: str = "renner2024") -> dict | None:
    """A published per-sample anchor from the profile's ``[reference.<name>]`` table, or None."""
    return load_profile(profile).data.get("reference", {}).get(name)


def training_cost(circuit: Circuit, rates: np.ndarray, labels: np.ndarray, steps: int, blank: int,
                  delay: int = 0, seed: int = 0, run: Callable | None = None) -> Counts:
    """Counts of streaming the samples ``rates`` [N, n_in] (pixels in [0, 1]) with ``labels``
    through the learning circuit as a training session does
    (:func:`neurocredit.chip.session.sample_stream`: ``steps`` input steps, ``blank`` silent
    steps, the target ``delay`` steps late), learning every step."""
    from neurocredit.chip.session import training_stream
    stream = training_stream(circuit, rates, labels, steps, blank, seed, delay)   # graded values for a rate circuit
    return measure(circuit, stream, samples=len(labels), rng_seed=seed, run=run)


def summary(circuit: Circuit, counts: Counts, profiles: tuple[str, ...] = ("loihi2", "loihi")) -> str:
    """One line: operations per training sample, cores and, where a profile has figures, energy
    and latency per sample."""
    ps = counts.per_sample()
    parts = [f"{ps['synops'] + ps['graded_synops']:,.0f} synaptic ops ({ps['graded_synops']:,.0f} graded)",
             f"{ps['spikes']:,.0f} spikes", f"{ps['learning_updates']:,.0f} learning updates",
             f"{ps['steps']:.0f} steps"]
    for prof in profiles:
        cores = cores_used(circuit, prof)
        est = estimate(counts, prof, cores)
        parts.append(f"{prof}: {sum(cores.values())} cores" +
                     (f", {est.energy_uJ:.1f} µJ, {est.latency_ms:.3f} ms" if est else ", energy n/a"))
    return "cost per training sample: " + "; ".join(parts)
