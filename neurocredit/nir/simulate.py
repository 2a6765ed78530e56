"""Simulate any NIR graph in discrete time with PyTorch.

Stable entry point::

    simulate(graph, x, dt=None, discretisation=None, record=False)
        graph           a nir.NIRGraph (nested subgraphs and cycles allowed)
        x               [T, batch, *input_shape] tensor/array, or {input node: tensor} for
                        several Input nodes
        dt              step in seconds; None: the graph's neurocredit metadata dt, else the
                        step its producer's convention implies (snnTorch r = tau/dt, Rockpool,
                        Sinabs dt = 1, Norse; :mod:`neurocredit.nir.conventions`), else 1e-4
        discretisation  'nir' (forward Euler, the default), 'snntorch' (bit-exact
                        snnTorch import_from_nir), 'snntorch-leaky' (snn.Leaky defaults), a
                        :class:`~neurocredit.neurons.lif.Discretisation` or None: the graph's
                        neurocredit metadata, else 'nir'
        returns         [T, batch, *output_shape] for one Output node, else {name: tensor};
                        with record=True a pair (outputs, {node: [T, batch, ...]})

Semantics.  Each step evaluates every node once in a topological order; a node's input is the
sum of its inbound edges (neurons add them one by one, feed-forward inputs first).  In a cycle
the edges *leaving a neuron* (or Delay) carry its output of the *previous* step, the way
recurrent layers (snnTorch RLeaky/RSynaptic: ``LIF -> Affine -> LIF``) are written in NIR:
β·v + W_in·x[t] + (W_rec·z[t−1] + b_rec), bit-exact with snnTorch.  A cycle with no neuron is
broken at a depth-first back edge.  Nested NIRGraph nodes are flattened: edges to a subgraph
go to its Input node (or to ``sub.<input name>``), edges from it leave its Output node.  Input
and Output shapes with leading 1s (a batch dimension, as Rockpool writes them) are accepted.
Neurons follow :mod:`neurocredit.neurons.lif`.

Bad graphs raise :class:`~neurocredit.nir.errors.NIRLoadError` naming the node or edge.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from neurocredit.neurons import lif as L
from neurocredit.nir.errors import NIRLoadError

SUPPORTED = ("Input", "Output", "Affine", "Linear", "Scale", "Threshold", "Flatten", "Conv1d",
             "Conv2d", "SumPool2d", "AvgPool2d", "Delay", "LIF", "CubaLIF", "IF", "LI",
             "CubaLI", "I", "NIRGraph")
NEURONS = ("LIF", "CubaLIF", "IF", "LI", "CubaLI", "I")
SPIKING = ("LIF", "CubaLIF", "IF")


def _where(name: str, node: Any) -> str:
    return f"node '{name}' ({type(node).__name__})"


def _arr(node: Any, name: str, field_: str, dtype=torch.float32, device=None) -> torch.Tensor:
    value = getattr(node, field_, None)
    if value is None:
        raise NIRLoadError(f"{_where(name, node)}: field '{field_}' is missing")
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NIRLoadError(f"{_where(name, node)}: field '{field_}' is not numeric") from None
    if not np.all(np.isfinite(a)):
        raise NIRLoadError(f"{_where(name, node)}: field '{field_}' has non-finite values")
    return torch.as_tensor(np.asarray(value), device=device).to(dtype)


def _ints(node: Any, name: str, field_: str, n: int) -> tuple[int, ...]:
    value = getattr(node, field_, None)
    if value is None:
        raise NIRLoadError(f"{_where(name, node)}: field '{field_}' is missing")
    try:
        a = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    except (TypeError, ValueError):
        raise NIRLoadError(f"{_where(name, node)}: field '{field_}' is not an integer") from None
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n or np.any(a < 0) or np.any(a > 10_000):
        raise NIRLoadError(f"{_where(name, node)}: field '{field_}' must be {n} integers in [0, 10000], "
                           f"got {np.asarray(value).tolist()}")
    return tuple(int(v) for v in a)


def _shape(value: Any, where: str) -> tuple[int, ...]:
    try:
        a = np.atleast_1d(np.asarray(value)).astype(np.int64).ravel()
    except (TypeError, ValueError):
        raise NIRLoadError(f"{where}: shape {value!r} is not a list of integers") from None
    if a.size == 0 or np.any(a < 1) or np.any(a > 10_000_000):
        raise NIRLoadError(f"{where}: shape {a.tolist()} is not a list of positive sizes")
    return tuple(int(v) for v in a)


# --------------------------------------------------------------------------- operations
@dataclass
class Op:
    """One node as a step function: ``out, state = step(x, state)``."""

    name: str
    kind: str
    in_shape: tuple[int, ...] | None          # None: any (inferred from the inbound edge)
    step: Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]
    init: Callable[[int, tuple[int, ...]], Any] = lambda batch, shape: None
    out_shape: tuple[int, ...] | None = None  # set by the dry run
    declared: tuple[int, ...] | None = None   # an Output node's declared shape


def _param_dtype(node: Any) -> torch.dtype:
    """float64 if the file stores float64 parameters (snnTorch's RLeaky export), else float32:
    step constants (β = 1 − dt/τ ...) are derived in the stored precision, then cast to float32."""
    for v in vars(node).values():
        if isinstance(v, np.ndarray) and v.dtype == np.float64:
            return torch.float64
    return torch.float32


def _neuron_params(node: Any, name: str, kind: str, device) -> Any:
    dtype = _param_dtype(node)
    g = lambda f: _arr(node, name, f, dtype=dtype, device=device)  # noqa: E731
    if kind == "LIF":
        p = L.LIFParams(g("tau"), g("r"), g("v_leak"), g("v_threshold"), g("v_reset"))
    elif kind == "CubaLIF":
        p = L.CubaLIFParams(g("tau_syn"), g("tau_mem"), g("r"), g("v_leak"), g("v_threshold"),
                            g("v_reset"), g("w_in"))
    elif kind == "IF":
        p = L.IFParams(g("r"), g("v_threshold"), g("v_reset"))
    elif kind == "LI":
        p = L.LIParams(g("tau"), g("r"), g("v_leak"))
    elif kind == "CubaLI":
        p = L.CubaLIParams(g("tau_syn"), g("tau_mem"), g("r"), g("v_leak"), g("w_in"))
    else:
        p = L.IParams(g("r"))
    shapes = {f: tuple(getattr(p, f).shape) for f in p.__dataclass_fields__}
    ref = next(iter(shapes.values()))
    for f, s in shapes.items():
        if s != ref:
            raise NIRLoadError(f"{_where(name, node)}: field '{f}' has shape {list(s)}, "
                               f"other parameters have {list(ref)}")
    if len(ref) == 0:
        raise NIRLoadError(f"{_where(name, node)}: parameters are scalars; NIR neurons need "
                           "one value per neuron")
    for f in ("tau", "tau_syn", "tau_mem"):
        if f in shapes and bool(torch.any(getattr(p, f) <= 0)):
            raise NIRLoadError(f"{_where(name, node)}: field '{f}' must be > 0")
    return p


def _neuron_op(node: Any, name: str, kind: str, dt: float, disc: L.Discretisation, device) -> Op:
    p = _neuron_params(node, name, kind, device)
    c = L.cast_constants(L.constants(p, dt, disc), torch.float32)
    shape = tuple(next(iter(vars(p).values())).shape)
    zeros = lambda batch, s: torch.zeros((batch, *shape), device=device)  # noqa: E731
    if kind == "LIF":
        def step(x, v):
            v, z, _ = L.lif_step(v, x, c, disc)
            return z, v
        return Op(name, kind, shape, step, zeros)
    if kind == "IF":
        def step(x, v):
            v, z, _ = L.if_step(v, x, c, disc)
            return z, v
        return Op(name, kind, shape, step, zeros)
    if kind == "CubaLIF":
        def step(x, s):
            i, v, z, _ = L.cubalif_step(s[0], s[1], x, c, disc)
            return z, (i, v)
        return Op(name, kind, shape, step, lambda b, s: (zeros(b, s), zeros(b, s)))
    if kind == "LI":
        def step(x, v):
            v = L.li_step(v, x, c, disc)
            return v, v
        return Op(name, kind, shape, step, zeros)
    if kind == "CubaLI":
        def step(x, s):
            i, v = L.cubali_step(s[0], s[1], x, c, disc)
            return v, (i, v)
        return Op(name, kind, shape, step, lambda b, s: (zeros(b, s), zeros(b, s)))

    def step(x, v):  # I
        v = L.integrator_step(v, x, c)
        return v, v
    return Op(name, kind, shape, step, zeros)


def _conv_op(node: Any, name: str, kind: str, device) -> Op:
    nd = 1 if kind == "Conv1d" else 2
    w = _arr(node, name, "weight", device=device)
    if w.dim() != nd + 2:
        raise NIRLoadError(f"{_where(name, node)}: field 'weight' must have {nd + 2} dims, "
                           f"got shape {list(w.shape)}")
    b = _arr(node, name, "bias", device=device).reshape(-1)
    if b.numel() != w.shape[0]:
        raise NIRLoadError(f"{_where(name, node)}: field 'bias' has {b.numel()} values for "
                           f"{w.shape[0]} output channels")
    stride = _ints(node, name, "stride", nd)
    dilation = _ints(node, name, "dilation", nd)
    groups = _ints(node, name, "groups", 1)[0]
    pad = getattr(node, "padding", 0)
    if isinstance(pad, bytes):
        pad = pad.decode()
    if isinstance(pad, str):
        if pad not in ("same", "valid"):
            raise NIRLoadError(f"{_where(name, node)}: field 'padding' must be 'same', 'valid' "
                               f"or integers, got '{pad}'")
        padding: Any = pad
    else:
        padding = _ints(node, name, "padding", nd)
    if groups < 1 or w.shape[0] % groups:
        raise NIRLoadError(f"{_where(name, node)}: field 'groups' ({groups}) does not divide "
                           f"{w.shape[0]} output channels")
    fn = F.conv1d if nd == 1 else F.conv2d
    in_shape = None
    shp = getattr(node, "input_shape", None)
    if shp is not None:
        s = _shape(shp, f"{_where(name, node)}: field 'input_shape'")
        in_shape = (w.shape[1] * groups, *s[-nd:])

    def step(x, state):
        return fn(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups), state
    return Op(name, kind, in_shape, step)


def _pool_op(node: Any, name: str, kind: str) -> Op:
    k = _ints(node, name, "kernel_size", 2)
    s = _ints(node, name, "stride", 2)
    p = _ints(node, name, "padding", 2)
    if min(k) < 1 or min(s) < 1:
        raise NIRLoadError(f"{_where(name, node)}: kernel_size and stride must be >= 1")
    if any(pi * 2 > ki for pi, ki in zip(p, k)):
        raise NIRLoadError(f"{_where(name, node)}: field 'padding' {list(p)} exceeds half the "
                           f"kernel {list(k)}")
    area = k[0] * k[1]

    def step(x, state):
        y = F.avg_pool2d(x, k, s, p, count_include_pad=True)
        return (y * area if kind == "SumPool2d" else y), state
    return Op(name, kind, None, step)


def _delay_op(node: Any, name: str, dt: float, device) -> Op:
    d = _arr(node, name, "delay", torch.float64, device)
    if bool(torch.any(d < 0)):
        raise NIRLoadError(f"{_where(name, node)}: field 'delay' must be >= 0")
    steps = torch.round(d / dt).long()
    if d.dim() == 0 or int(steps.max()) > 100_000:
        raise NIRLoadError(f"{_where(name, node)}: field 'delay' must be a per-neuron array of at "
                           f"most 100000 steps of dt={dt}")
    depth = int(steps.max()) + 1
    shape = tuple(d.shape)

    def init(batch, s):
        return torch.zeros((depth, batch, *shape), device=device)

    def step(x, buf):
        buf = torch.cat([x.unsqueeze(0), buf[:-1]], 0)
        idx = steps.reshape(1, 1, *shape).expand(1, *x.shape)
        return buf.gather(0, idx).squeeze(0), buf
    return Op(name, "Delay", shape, step, init)


def make_op(name: str, node: Any, dt: float, disc: L.Discretisation, device=None) -> Op:
    """The step function of one (non-graph) NIR node."""
    kind = type(node).__name__
    ident = lambda x, s: (x, s)  # noqa: E731
    if kind == "Input":
        shp = (getattr(node, "input_type", None) or {}).get("input")
        return Op(name, kind, _shape(shp, f"{_where(name, node)}: field 'shape'"), ident)
    if kind == "Output":
        shp = (getattr(node, "output_type", None) or {}).get("output")
        return Op(name, kind, None, ident,
                  declared=None if shp is None else _shape(shp, f"{_where(name, node)}: field 'shape'"))
    if kind in ("Affine", "Linear"):
        w = _arr(node, name, "weight", device=device)
        if w.dim() != 2:
            raise NIRLoadError(f"{_where(name, node)}: field 'weight' must be a 2-D matrix, got "
                               f"shape {list(w.shape)}")
        if kind == "Affine":
            b = _arr(node, name, "bias", device=device)
            if tuple(b.shape) != (w.shape[0],):
                raise NIRLoadError(f"{_where(name, node)}: field 'bias' has shape {list(b.shape)}, "
                                   f"weight needs [{w.shape[0]}]")
            return Op(name, kind, (w.shape[1],), lambda x, s: (x @ w.T + b, s),
                      out_shape=(w.shape[0],))
        return Op(name, kind, (w.shape[1],), lambda x, s: (x @ w.T, s), out_shape=(w.shape[0],))
    if kind == "Scale":
        sc = _arr(node, name, "scale", device=device)
        return Op(name, kind, tuple(sc.shape) or None, lambda x, s: (x * sc, s),
                  out_shape=tuple(sc.shape) or None)
    if kind == "Threshold":
        th = _arr(node, name, "threshold", device=device)
        return Op(name, kind, tuple(th.shape) or None, lambda x, s: (L.heaviside(x - th), s),
                  out_shape=tuple(th.shape) or None)
    if kind == "Flatten":
        start, end = _ints_signed(node, name, "start_dim"), _ints_signed(node, name, "end_dim")
        sd = start + 1 if start >= 0 else start
        ed = end + 1 if end >= 0 else end
        shp = (getattr(node, "input_type", None) or {}).get("input")
        in_shape = None if shp is None else _shape(shp, f"{_where(name, node)}: field 'input_type'")
        return Op(name, kind, in_shape, lambda x, s: (x.flatten(sd, ed), s))
    if kind in ("Conv1d", "Conv2d"):
        return _conv_op(node, name, kind, device)
    if kind in ("SumPool2d", "AvgPool2d"):
        return _pool_op(node, name, kind)
    if kind == "Delay":
        return _delay_op(node, name, dt, device)
    if kind in NEURONS:
        op = _neuron_op(node, name, kind, dt, disc, device)
        op.out_shape = op.in_shape
        return op
    raise NIRLoadError(f"{_where(name, node)}: node type '{kind}' is not supported; "
                       f"supported: {', '.join(SUPPORTED)}")


def _ints_signed(node: Any, name: str, field_: str) -> int:
    value = getattr(node, field_, None)
    try:
        a = np.asarray(value).astype(np.int64).ravel()
        assert a.size == 1 and -64 <= a[0] <= 64
    except (TypeError, ValueError, AssertionError):
        raise NIRLoadError(f"{_where(name, node)}: field '{field_}' must be one integer, "
                           f"got {value!r}") from None
    return int(a[0])


# --------------------------------------------------------------------------- graph
def flatten_graph(graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nested NIRGraph -> flat ({name: node}, edges) with subgraph nodes named ``sub.inner``."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    ports_in: dict[str, str] = {}
    ports_out: dict[str, str] = {}
    inner_names: dict[str, set[str]] = {}
    for name, node in graph.nodes.items():
        full = f"{prefix}{name}"
        if type(node).__name__ == "NIRGraph":
            sub_nodes, sub_edges = flatten_graph(node, prefix=f"{full}.")
            ins = [k for k, n in node.nodes.items() if type(n).__name__ == "Input"]
            outs = [k for k, n in node.nodes.items() if type(n).__name__ == "Output"]
            if len(ins) == 1:
                ports_in[full] = f"{full}.{ins[0]}"
            if len(outs) == 1:
                ports_out[full] = f"{full}.{outs[0]}"
            inner_names[full] = set(node.nodes)
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
        else:
            nodes[full] = node

    def resolve(end: str, port: dict[str, str], role: str) -> str:
        full = f"{prefix}{end}"
        if full in nodes:
            return full
        if full in port:
            return port[full]
        if full in inner_names:
            raise NIRLoadError(f"edge endpoint '{full}': subgraph has no single {role} node; "
                               f"name one as '{full}.<node>'")
        raise NIRLoadError(f"edge endpoint '{full}' names no node of the graph")

    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    for edge in graph.edges:
        try:
            src, dst = edge
        except (TypeError, ValueError):
            raise NIRLoadError(f"edge {edge!r} is not a (source, target) pair") from None
        src, dst = (s.decode() if isinstance(s, bytes) else str(s) for s in (src, dst))
        if kinds.get(src) == "Output":
            raise NIRLoadError(f"edge '{prefix}{src}' -> '{prefix}{dst}' leaves an Output node")
        if kinds.get(dst) == "Input":
            raise NIRLoadError(f"edge '{prefix}{src}' -> '{prefix}{dst}' enters an Input node")
        edges.append((resolve(src, ports_out, "Output"), resolve(dst, ports_in, "Input")))
    return nodes, edges


def _sccs(names: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Strongly connected component id of every node (Kosaraju, iterative)."""
    succ: dict[str, list[str]] = {n: [] for n in names}
    pred: dict[str, list[str]] = {n: [] for n in names}
    for s, d in edges:
        succ[s].append(d)
        pred[d].append(s)
    seen: set[str] = set()
    finish: list[str] = []
    for root in names:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(succ[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                finish.append(node)
            elif nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, iter(succ[nxt])))
    comp: dict[str, int] = {}
    for root in reversed(finish):
        if root in comp:
            continue
        comp[root] = len(comp)
        cid = comp[root]
        todo = [root]
        while todo:
            node = todo.pop()
            for p in pred[node]:
                if p not in comp:
                    comp[p] = cid
                    todo.append(p)
    return comp


def _order(names: list[str], edges: list[tuple[str, str]], starts: list[str],
           stateful: set[str]) -> tuple[list[str], set[tuple[str, str]], dict[str, int]]:
    """Topological order and the delayed edges that break cycles.

    In a cycle, the edges *leaving a stateful node* (a neuron or Delay) are delayed: the
    synapse after it computes this step from the neuron's previous output (snnTorch's RLeaky:
    β·mem + input + W_rec·spk[t−1] + b_rec).  A cycle without a stateful node is broken at
    the back edges of a depth-first search from the Input nodes.
    """
    comp = _sccs(names, edges)
    size: dict[int, int] = {}
    for c in comp.values():
        size[c] = size.get(c, 0) + 1
    delayed = {(s, d) for s, d in edges
               if comp[s] == comp[d] and (size[comp[s]] > 1 or s == d) and s in stateful}
    succ: dict[str, list[str]] = {n: [] for n in names}
    for s, d in edges:
        if (s, d) not in delayed:
            succ[s].append(d)
    state: dict[str, int] = {}
    post: list[str] = []
    for root in starts + names:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop()
                state[node] = 2
                post.append(node)
            elif state.get(nxt) == 1:
                delayed.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return post[::-1], delayed, comp


@dataclass
class Program:
    """A compiled graph: ops in order, inbound edges per op, the back (delayed) edges."""

    ops: dict[str, Op]
    order: list[str]
    inbound: dict[str, list[tuple[str, bool]]]  # (source, delayed)
    inputs: list[str]
    outputs: list[str]
    device: Any = None
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def run(self, x: Any, record: bool = False):
        xs = self._inputs(x)
        T, batch = next(iter(xs.values())).shape[:2]
        state = {n: self.ops[n].init(batch, self.shapes.get(n, ())) for n in self.order}
        prev = {n: torch.zeros((batch, *self.shapes[n]), device=self.device) for n in self.order}
        outs = {n: [] for n in self.outputs}
        rec: dict[str, list[torch.Tensor]] = {n: [] for n in self.order} if record else {}
        for t in range(T):
            cur: dict[str, torch.Tensor] = {}
            for n in self.order:
                op = self.ops[n]
                if n in xs:
                    inp = xs[n][t]
                else:
                    vals = [prev[src] if delayed else cur[src] for src, delayed in self.inbound[n]]
                    if op.kind in NEURONS:   # summed inside the neuron (see neurons.lif)
                        inp = vals[0] if len(vals) == 1 else vals
                    else:
                        inp = vals[0]
                        for v in vals[1:]:
                            inp = inp + v
                out, state[n] = op.step(inp, state[n])
                cur[n] = out
                if record:
                    rec[n].append(out)
            prev = cur
            for n in self.outputs:
                outs[n].append(cur[n])
        res = {n: torch.stack(v) for n, v in outs.items()}
        result = res[self.outputs[0]] if len(res) == 1 else res
        if record:
            return result, {n: torch.stack(v) for n, v in rec.items()}
        return result

    def _inputs(self, x: Any) -> dict[str, torch.Tensor]:
        if not isinstance(x, dict):
            if len(self.inputs) != 1:
                raise NIRLoadError(f"graph has {len(self.inputs)} Input nodes "
                                   f"({', '.join(self.inputs)}); pass x as a dict")
            x = {self.inputs[0]: x}
        out = {}
        for n in self.inputs:
            if n not in x:
                raise NIRLoadError(f"no input given for Input node '{n}'")
            t = torch.as_tensor(np.asarray(x[n]) if not torch.is_tensor(x[n]) else x[n])
            t = t.to(device=self.device, dtype=torch.float32)
            want = self.shapes[n]
            if t.dim() != 2 + len(want) or tuple(t.shape[2:]) != want:
                raise NIRLoadError(f"input for node '{n}' must be [T, batch, {', '.join(map(str, want))}], "
                                   f"got {list(t.shape)}")
            out[n] = t
        return out


def compile_graph(graph: Any, dt: float, discretisation: Any = None, device: Any = None) -> Program:
    """Build and shape-check the step program of ``graph`` (one dry step at batch 1)."""
    disc = L.get_discretisation(discretisation)
    if type(graph).__name__ != "NIRGraph":
        raise NIRLoadError(f"expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes, edges = flatten_graph(graph)
    if not nodes:
        raise NIRLoadError("the graph has no nodes")
    ops = {n: make_op(n, node, dt, disc, device) for n, node in nodes.items()}
    if len(set(edges)) != len(edges):
        dup = next(e for e in edges if edges.count(e) > 1)
        raise NIRLoadError(f"edge '{dup[0]}' -> '{dup[1]}' appears twice")
    top_inputs = [f"{k}" for k, n in graph.nodes.items() if type(n).__name__ == "Input"]
    top_outputs = [f"{k}" for k, n in graph.nodes.items() if type(n).__name__ == "Output"]
    if not top_inputs:
        raise NIRLoadError("the graph has no Input node")
    if not top_outputs:
        raise NIRLoadError("the graph has no Output node")
    for s, d in edges:
        if ops[d].kind == "Input" and d in top_inputs:
            raise NIRLoadError(f"edge '{s}' -> '{d}' enters the graph's Input node")
    names = list(nodes)
    stateful = {n for n in names if ops[n].kind in (*NEURONS, "Delay")}
    order, back, comp = _order(names, edges, top_inputs, stateful)
    inbound: dict[str, list[tuple[str, bool]]] = {n: [] for n in names}
    for s, d in edges:
        inbound[d].append((s, (s, d) in back))
    for n in names:  # feed-forward inputs first, then those from the node's own cycle
        inbound[n].sort(key=lambda e, n=n: (e[1], comp[e[0]] == comp[n]))
    for n in names:
        if n not in top_inputs and not inbound[n]:
            raise NIRLoadError(f"{_where(n, nodes[n])} has no inbound edge")
    # Input shapes written with a leading batch dimension of 1 (snnTorch without ignore_dims,
    # Rockpool): drop it when every consumer declares the shape without it.
    for n in top_inputs:
        shp = ops[n].in_shape
        cons = [ops[d].in_shape for s, d in edges if s == n]
        if len(shp) > 1 and shp[0] == 1 and cons and all(c == shp[1:] for c in cons):
            ops[n].in_shape = shp[1:]
    prog = Program(ops, order, inbound, top_inputs, top_outputs, device)
    _infer_shapes(prog, nodes, back)
    return prog


def _infer_shapes(prog: Program, nodes: dict[str, Any], back: set) -> None:
    """Propagate shapes along the order with a dry step at batch 1; name the culprit."""
    shapes = prog.shapes
    # delayed sources must declare their shape (neurons, Affine/Linear do)
    pending = [n for n in prog.order]
    for n in pending:
        op = prog.ops[n]
        if n in prog.inputs:
            in_shape = op.in_shape
        else:
            in_shape = None
            for src, delayed in prog.inbound[n]:
                if src not in shapes:
                    if delayed and prog.ops[src].out_shape is not None:
                        shapes[src] = prog.ops[src].out_shape
                    else:
                        raise NIRLoadError(f"edge '{src}' -> '{n}': the shape of '{src}' is not known "
                                           "when it is needed (a cycle through a node without a "
                                           "declared shape)")
                s = shapes[src]
                if op.in_shape is not None and s != op.in_shape:
                    raise NIRLoadError(f"edge '{src}' -> '{n}': '{src}' outputs shape {list(s)} but "
                                       f"'{n}' ({op.kind}) expects {list(op.in_shape)}")
                if in_shape is not None and s != in_shape:
                    raise NIRLoadError(f"edge '{src}' -> '{n}': shape {list(s)} differs from the "
                                       f"other inputs of '{n}' ({list(in_shape)})")
                in_shape = s
        if math.prod(in_shape) > 50_000_000:
            raise NIRLoadError(f"{_where(n, nodes[n])}: input shape {list(in_shape)} is too large")
        try:
            with torch.no_grad():
                out, _ = op.step(torch.zeros((1, *in_shape), device=prog.device),
                                 op.init(1, in_shape))
        except NIRLoadError:
            raise
        except Exception as exc:  # the node's own parameters do not fit its input
            raise NIRLoadError(f"{_where(n, nodes[n])}: cannot process input of shape "
                               f"{list(in_shape)}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        out_shape = tuple(out.shape[1:])
        if n in shapes and shapes[n] != out_shape:
            raise NIRLoadError(f"{_where(n, nodes[n])}: outputs shape {list(out_shape)} but a cycle "
                               f"needs {list(shapes[n])}")
        if op.kind == "Output" and op.declared is not None and \
                _strip_ones(op.declared) != _strip_ones(out_shape):
            # (leading 1s are batch/time dims some writers include: Rockpool, snnTorch)
            raise NIRLoadError(f"{_where(n, nodes[n])}: receives shape {list(out_shape)}, declares "
                               f"{list(op.declared)}")
        shapes[n] = out_shape
        op.out_shape = out_shape


def _strip_ones(shape: tuple[int, ...]) -> tuple[int, ...]:
    i = 0
    while i < len(shape) - 1 and shape[i] == 1:
        i += 1
    return tuple(shape[i:])


def graph_dt(graph: Any, default: float = L.SNNTORCH_DT) -> float:
    """dt recorded in the graph's neurocredit metadata, else the step its producer's convention
    implies (:func:`neurocredit.nir.conventions.detect`), else ``default``."""
    from neurocredit.nir.conventions import detect
    conv = detect(graph)
    return conv.dt if conv.producer != "unknown" else default


def graph_discretisation(graph: Any) -> L.Discretisation:
    from neurocredit.nir.schema import read_learning
    spec = read_learning(graph, strict=False)
    if spec and "discretisation" in spec:
        return L.get_discretisation(spec["discretisation"])
    return L.PRESETS["nir"]


def simulate(graph: Any, x: Any, dt: float | None = None, discretisation: Any = None,
             record: bool = False, device: Any = None):
    """Run ``graph`` on ``x`` [T, batch, *input_shape] for T steps (see the module docstring)."""
    dt = graph_dt(graph) if dt is None else float(dt)
    disc = graph_discretisation(graph) if discretisation is None else discretisation
    with torch.no_grad():
        return compile_graph(graph, dt, disc, device).run(x, record=record)


def output_sources(graph: Any) -> dict[str, tuple[str, str]]:
    """{top-level Output name: (name, type) of the node that feeds it} (looking through
    Flatten/Identity nodes), e.g. a 'LIF' for a spiking output, an 'LI' for a voltage readout."""
    nodes, edges = flatten_graph(graph)
    preds: dict[str, list[str]] = {}
    for s, d in edges:
        preds.setdefault(d, []).append(s)
    out = {}
    for name, node in graph.nodes.items():
        if type(node).__name__ != "Output":
            continue
        cur, seen = name, set()
        while preds.get(cur) and cur not in seen:
            seen.add(cur)
            cur = preds[cur][0]
            if type(nodes[cur]).__name__ not in ("Flatten", "Identity", "Output", "Input"):
                break
        out[name] = (cur, type(nodes[cur]).__name__)
    return out
