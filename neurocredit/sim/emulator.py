"""Vectorised, batched PyTorch emulator of a Loihi/Lava circuit: LIF populations joined by
Dense connections, in the fixed-point arithmetic of lava-nc's bit-accurate models (or their float
models), with Lava's timing.

A :class:`Circuit` is plain data (numbers only, no Lava objects): the Lava compiler
(:mod:`neurocredit.lava.compile`) produces one and builds the Lava processes from the same numbers,
so that the emulator and ``Loihi2SimCfg`` run the same program.

Timing (Lava's ``LoihiProtocol``, one call of ``run_spk`` per process per step t = 1, 2, ...)::

    input spikes x[t] leave the RingBuffer source at step t
    every LIF population p updates with a_in[t] = sum over connections c -> p of buf_c
    every Dense connection c then sets buf_c = W_c s_src[t]    (so it reaches p at step t + 1)

Equations per step are those of :mod:`neurocredit.neurons.fixed_point`.  Samples in a batch
are independent and start from zero state (Lava: u = v = 0, Dense a_buff = 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from neurocredit.neurons import fixed_point as fp

INPUT = "input"   # the name of the circuit's input population (the spike source)


@dataclass
class Population:
    """One Lava LIF process.  Fixed point: du, dv 12-bit ints, vth 17-bit int, bias_mant/exp
    ints per neuron.  Float: du, dv fractions, vth float, bias_mant float, bias_exp 0."""

    name: str
    n: int
    du: float
    dv: float
    vth: float
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    spiking: bool = True            # False: a leaky integrator (NIR LI/CubaLI), output = v
    v_scale: np.ndarray | float = 1.0   # NIR voltage per unit of this population's v


@dataclass
class Connection:
    """One Lava Dense process from ``src`` (a population or :data:`INPUT`) to ``dst``.
    ``weights`` has shape (n_dst, n_src); fixed point: ints, with ``weight_exp`` and sign mode."""

    name: str
    src: str
    dst: str
    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: str = "mixed"


@dataclass
class Circuit:
    """Populations (in update order; any order gives the same result), connections, and the
    populations whose spikes are the graph's outputs."""

    n_in: int
    populations: list[Population]
    connections: list[Connection]
    outputs: list[str]
    fixed_point: bool = True
    meta: dict = field(default_factory=dict)

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(f"no population {name!r} in the circuit")

    def decode(self, name: str, data: torch.Tensor | np.ndarray) -> np.ndarray:
        """A recorded output in NIR units: spikes as bool, an integrator's v times v_scale."""
        p = self.population(name)
        data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        return data != 0 if p.spiking else data.astype(np.float64) * np.asarray(p.v_scale)


@dataclass
class _Prepared:
    pops: list[Population]
    conns: list[Connection]
    weights: list[torch.Tensor]
    biases: list[torch.Tensor]


def _prepare(circuit: Circuit, device: torch.device) -> _Prepared:
    weights, biases = [], []
    for c in circuit.connections:
        w = torch.as_tensor(np.asarray(c.weights))
        if circuit.fixed_point:
            w = fp.stored_weights(w.round().to(torch.int64), c.sign_mode, c.num_weight_bits)
            # float64 copy for an exact matmul (|sums| far below 2^53)
            weights.append(w.to(device=device, dtype=torch.float64))
        else:
            weights.append(w.to(device=device, dtype=torch.float64))
    for p in circuit.populations:
        if circuit.fixed_point:
            b = fp.effective_bias(torch.as_tensor(np.asarray(p.bias_mant, dtype=np.int64)),
                                  torch.as_tensor(np.asarray(p.bias_exp, dtype=np.int64)))
            biases.append(b.broadcast_to((p.n,)).to(device))
        else:
            b = torch.as_tensor(np.asarray(p.bias_mant, dtype=np.float64))
            biases.append(b.broadcast_to((p.n,)).to(device))
    return _Prepared(circuit.populations, circuit.connections, weights, biases)


@torch.no_grad()
def emulate(circuit: Circuit, x: torch.Tensor | np.ndarray, record: list[str] | None = None,
            device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Run ``circuit`` on input spikes ``x`` [T, batch, n_in] (0/1).  Returns a dict
    population name -> [T, batch, n] for ``record`` (default: the outputs): spikes (bool) of a
    spiking population, the voltage v after the step (Lava units, int64 or float64) of a
    non-spiking one (see :meth:`Circuit.decode`)."""
    device = torch.device(device)
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.dim() == 2:
        x = x[:, None, :]
    if x.dim() != 3 or x.shape[2] != circuit.n_in:
        raise ValueError(f"input spikes must have shape [T, batch, {circuit.n_in}], got {tuple(x.shape)}")
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("input must be binary spikes (0/1): Lava's Dense takes 1-bit spikes here")
    x = x.to(device=device, dtype=torch.float64)
    steps, batch = x.shape[0], x.shape[1]
    record = list(circuit.outputs if record is None else record)
    prep = _prepare(circuit, device)
    fixed = circuit.fixed_point
    dtype = torch.int64 if fixed else torch.float64
    index = {p.name: i for i, p in enumerate(prep.pops)}
    for c in prep.conns:
        if c.dst not in index or (c.src != INPUT and c.src not in index):
            raise ValueError(f"connection {c.name} joins unknown populations {c.src} -> {c.dst}")
    u = [torch.zeros(batch, p.n, dtype=dtype, device=device) for p in prep.pops]
    v = [torch.zeros(batch, p.n, dtype=dtype, device=device) for p in prep.pops]
    spikes = [torch.zeros(batch, p.n, dtype=torch.bool, device=device) for p in prep.pops]
    buf = [torch.zeros(batch, prep.pops[index[c.dst]].n, dtype=dtype, device=device)
           for c in prep.conns]
    incoming = [[k for k, c in enumerate(prep.conns) if c.dst == p.name] for p in prep.pops]
    out = {name: torch.zeros(steps, batch, prep.pops[index[name]].n, device=device,
                             dtype=torch.bool if prep.pops[index[name]].spiking else dtype)
           for name in record}
    for t in range(steps):
        for i, p in enumerate(prep.pops):
            a_in = torch.zeros(batch, p.n, dtype=dtype, device=device)
            for k in incoming[i]:
                a_in = a_in + buf[k]
            if fixed:
                u[i], v[i], spikes[i] = fp.lif_step_fixed(u[i], v[i], a_in, int(p.du), int(p.dv),
                                                          int(p.vth), prep.biases[i])
            else:
                u[i], v[i], spikes[i] = fp.lif_step_float(u[i], v[i], a_in, float(p.du),
                                                          float(p.dv), float(p.vth), prep.biases[i])
        for k, c in enumerate(prep.conns):
            s = x[t] if c.src == INPUT else spikes[index[c.src]]
            if fixed:
                buf[k] = fp.dense_fixed(s, prep.weights[k], int(c.weight_exp))
            else:
                buf[k] = fp.dense_float(s, prep.weights[k])
        for name in record:
            i = index[name]
            out[name][t] = spikes[i] if prep.pops[i].spiking else v[i]
    return out
