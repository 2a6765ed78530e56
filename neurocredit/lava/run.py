"""Build the Lava processes of a compiled circuit and run them on ``Loihi2SimCfg`` (float or
fixed point), always stopping the runtime.

Processes: one ``lava.proc.io.source.RingBuffer`` holding the input spikes of every step of every
sample, one ``lava.proc.dense.process.Dense`` per connection, one ``lava.proc.lif.process.LIF``
per population, one ``lava.proc.io.sink.RingBuffer`` per recorded population.  Samples run one
after the other; between samples u, v of every LIF and ``a_buff`` of every Dense are set back to
0, so each sample starts from Lava's initial state (the emulator's batch semantics).

Lava is imported inside the functions: importing it forces the ``fork`` start method.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from neurocredit._setup_lava import import_lava
from neurocredit.errors import UserError
from neurocredit.chip.ir import INPUT, Circuit


@dataclass
class LavaNet:
    """The processes built for one circuit."""

    source: Any
    dense: dict[str, Any]
    lif: dict[str, Any]
    sinks: dict[str, Any]
    fixed_point: bool


def _sign_mode(name: str):
    import_lava()
    from lava.utils.weightutils import SignMode
    return {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY,
            "inhibitory": SignMode.INHIBITORY}[name]


def build(circuit: Circuit, data: np.ndarray, record: list[str], voltage: list[str] | None = None) -> LavaNet:
    """Processes and connections for ``circuit``; ``data`` is the source buffer [n_in, steps];
    a ``Read`` probe on ``v`` (sink ``'v:<name>'``) for each population in ``voltage``."""
    import_lava()
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import Read
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    fixed = circuit.fixed_point
    steps = data.shape[1]
    source = Source(data=data.astype(np.int32) if fixed else data.astype(np.float64))
    lif: dict[str, Any] = {}
    for p in circuit.populations:
        if fixed:
            lif[p.name] = LIF(shape=(p.n,), du=int(p.du), dv=int(p.dv), vth=int(p.vth),
                              bias_mant=np.asarray(p.bias_mant, dtype=np.int32).reshape(p.n),
                              bias_exp=np.asarray(p.bias_exp, dtype=np.int32).reshape(p.n),
                              name=p.name)
        else:
            lif[p.name] = LIF(shape=(p.n,), du=float(p.du), dv=float(p.dv), vth=float(p.vth),
                              bias_mant=np.asarray(p.bias_mant, dtype=np.float64).reshape(p.n),
                              bias_exp=np.zeros(p.n), name=p.name)   # vth = inf: integrator
    dense: dict[str, Any] = {}
    for c in circuit.connections:
        if fixed:
            d = Dense(weights=np.asarray(c.weights, dtype=np.int32), weight_exp=int(c.weight_exp),
                      num_weight_bits=int(c.num_weight_bits), sign_mode=_sign_mode(c.sign_mode),
                      name=c.name)
        else:
            d = Dense(weights=np.asarray(c.weights, dtype=np.float64), name=c.name)
        (source.s_out if c.src == INPUT else lif[c.src].s_out).connect(d.s_in)
        d.a_out.connect(lif[c.dst].a_in)
        dense[c.name] = d
    sinks = {}
    for name in record:
        pop = circuit.population(name)
        if pop.spiking:
            sinks[name] = Sink(shape=(pop.n,), buffer=steps)
            lif[name].s_out.connect(sinks[name].a_in)
        else:   # a leaky integrator's output is its voltage, read after every step
            sinks[name] = Read(buffer=steps)
            sinks[name].connect_var(lif[name].v)
    for name in voltage or []:      # v after every step (after reset): one read per neuron per step
        sinks[f"v:{name}"] = Read(buffer=steps)
        sinks[f"v:{name}"].connect_var(lif[name].v)
    return LavaNet(source, dense, lif, sinks, fixed)


@contextmanager
def lava_session(net: LavaNet) -> Iterator[Any]:
    """Yield a process to drive the run; ``stop()`` the runtime on exit, also after errors."""
    anchor = net.source
    try:
        yield anchor
    finally:
        try:
            if getattr(anchor, "runtime", None) is not None:
                anchor.stop()
        except Exception:   # a runtime that never started or already stopped
            pass


def seed_everything(seed: int) -> None:
    """Seed every generator a Lava run may draw from (numpy's global one, ``random``)."""
    np.random.seed(seed)
    random.seed(seed)


def run_lava(circuit: Circuit, x: np.ndarray, record: list[str] | None = None,
             seed: int = 0, voltage: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run ``circuit`` in Lava on spikes ``x`` [T, batch, n_in]; returns population ->
    [T, batch, n]: spikes (bool), or v (Lava units) of a non-spiking population; and
    ``'v:<name>'`` -> [T, batch, n], v after every step, of each population in ``voltage`` (a
    ``Read`` probe on the LIF's ``v``: what the emulator's ``emulate(voltage=...)`` records and
    :mod:`neurocredit.neurons.decision` breaks count ties with).  Fixed-point circuits run ``Loihi2SimCfg(select_tag="fixed_pt")``,
    float ones ``select_tag="floating_pt"``."""
    import_lava()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    x = np.asarray(x)
    if x.ndim == 2:
        x = x[:, None, :]
    if x.ndim != 3 or x.shape[2] != circuit.n_in:
        raise UserError(f"input spikes must have shape [T, batch, {circuit.n_in}], got {x.shape}")
    if not np.isin(x, (0, 1)).all():
        raise UserError("input must be binary spikes (0/1) for the Lava target")
    steps, batch = x.shape[0], x.shape[1]
    record = list(circuit.outputs if record is None else record)
    seed_everything(seed)
    data = np.transpose(x, (2, 1, 0)).reshape(circuit.n_in, batch * steps)   # sample-major time
    for name in voltage or []:
        circuit.population(name)          # a clear error for an unknown population
    net = build(circuit, data, record, voltage)
    cfg = Loihi2SimCfg(select_tag="fixed_pt" if circuit.fixed_point else "floating_pt")
    with lava_session(net) as proc:
        for b in range(batch):
            if b > 0:
                for p in circuit.populations:
                    net.lif[p.name].u.set(np.zeros(p.n))
                    net.lif[p.name].v.set(np.zeros(p.n))
                for c in circuit.connections:
                    net.dense[c.name].a_buff.set(np.zeros(np.asarray(c.weights).shape[0]))
            proc.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        out = {name: np.asarray(s.data.get()) for name, s in net.sinks.items()}
    res = {}
    for name, d in out.items():
        d = d.reshape(d.shape[0], batch, steps).transpose(2, 1, 0)
        res[name] = d if name.startswith("v:") or not circuit.population(name).spiking else d != 0
    return res


def run_aligned(program, x: np.ndarray, backend: str = "lava", fixed_point: bool = True,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Outputs of ``program`` (a :class:`~neurocredit.chip.compile.Program`) in NIR time and units.

    Lava delays every Dense by one step, so an output at depth d answers the input of step t at
    step t + d.  The input is padded with d_max silent steps, each output is read from step d on,
    and an integrator's voltage is converted back to NIR units.  Returns NIR Output name ->
    [T, batch, n] (bool spikes or float voltages)."""
    import torch

    from neurocredit.chip.emulator import emulate

    circuit = program.circuit(fixed_point)
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[:, None, :]
    steps = x.shape[0]
    pad = max((program.depth.get(p, 0) for p in program.outputs.values()), default=0)
    xp = np.concatenate([x, np.zeros((pad, *x.shape[1:]), dtype=x.dtype)], axis=0)
    pops = list(dict.fromkeys(program.outputs.values()))
    if backend == "lava":
        raw = run_lava(circuit, xp, record=pops, seed=seed)
    elif backend == "emulator":
        with torch.no_grad():
            raw = {k: v.cpu().numpy() for k, v in emulate(circuit, xp, record=pops).items()}
    else:
        raise UserError(f"unknown backend {backend!r} (lava | emulator)")
    out = {}
    for node, pop in program.outputs.items():
        d = program.depth.get(pop, 0)
        out[node] = circuit.decode(pop, raw[pop][d:d + steps])
    return out
