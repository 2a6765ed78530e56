"""NIR graph analysis for the Lava compiler: inline sub-graphs, classify nodes, and reduce every
chain of weight nodes (Affine, Linear, Scale, Flatten) between two spiking nodes to one matrix.

After :func:`analyse`, a graph is a set of *populations* (spiking neuron nodes), one *input*
(the NIR ``Input``), *paths* ``src -> dst`` each carrying a composed matrix ``M`` (n_dst x n_src)
and a composed bias ``b`` (added to the post neurons), and *outputs* (populations read by NIR
``Output`` nodes).  Recurrent graphs are fine as long as every cycle passes through a neuron.
Nothing here imports Lava.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nir
import numpy as np

from neurocredit.chip.conv import CONV_TYPES, node_shapes, unrolled

NEURON_TYPES = ("LIF", "CubaLIF", "IF", "LI", "CubaLI")
SPIKING_TYPES = ("LIF", "CubaLIF", "IF")
LINEAR_TYPES = ("Affine", "Linear", "Scale", "Flatten", "Identity", "_Pass") + CONV_TYPES


@dataclass
class Refusal:
    """Why the target cannot hold ``node``: the node's name, the limit, and the message."""

    node: str
    kind: str           # "unsupported" | "capacity" | "fan-in" | "quantisation" | "structure"
    message: str


@dataclass
class Path:
    """``out = matrix @ s_src + bias``; ``matrix`` None stands for the identity (n_out = n_src)."""

    src: str
    dst: str
    matrix: np.ndarray | None
    bias: np.ndarray
    via: list[str]

    @property
    def n_out(self) -> int:
        return self.bias.shape[0]

    def dense(self) -> np.ndarray:
        return np.eye(self.n_out) if self.matrix is None else self.matrix


@dataclass
class Analysis:
    nodes: dict[str, nir.NIRNode]
    edges: list[tuple[str, str]]
    input: str | None
    input_size: int
    populations: dict[str, nir.NIRNode]
    paths: list[Path]
    outputs: dict[str, str]                      # Output node -> population it reads
    refusals: list[Refusal] = field(default_factory=list)
    folded: dict[str, str] = field(default_factory=dict)   # weight node -> "src->dst"


class _Pass:
    """Identity stand-in for a sub-graph's inner Input/Output nodes."""

    def __init__(self, size: int) -> None:
        self.size = size


def _size(shape) -> int:
    return int(np.prod(np.asarray(shape, dtype=np.int64))) if shape is not None else 0


def _node_out_size(node: nir.NIRNode) -> int | None:
    t = getattr(node, "output_type", None)
    if isinstance(t, dict) and t:
        val = next(iter(t.values()))
        if val is not None and np.size(val) > 0:
            return _size(val)
    return None


def inline(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    """Flatten nested ``NIRGraph`` nodes into one level (names ``outer.inner``)."""
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = inline(node, full + ".")
            ins = [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Input)]
            outs = [full + "." + k for k, n in node.nodes.items() if isinstance(n, nir.Output)]
            for k in ins + outs:
                size = _node_out_size(sub_nodes[k]) or _size(
                    next(iter(getattr(sub_nodes[k], "input_type", {"x": [0]}).values())))
                sub_nodes[k] = _Pass(size)
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            entry[full], exit_[full] = ins, outs
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + a, prefix + b
        srcs = exit_.get(a, [a])
        dsts = entry.get(b, [b])
        edges.extend((s, d) for s in srcs for d in dsts)
    return nodes, edges


def population_size(node: nir.NIRNode) -> int:
    ref = node.v_threshold if hasattr(node, "v_threshold") else node.r
    return _size(np.shape(ref))


def _linear_map(name: str, node: nir.NIRNode, n_in: int, program=None) -> tuple[np.ndarray | None, np.ndarray]:
    """(A, c) with y = A x + c for a weight node fed ``n_in`` values (A None: identity); conv
    and pool nodes are unrolled into their sparse connectivity (:mod:`neurocredit.chip.conv`)."""
    kind = type(node).__name__
    if kind in CONV_TYPES:
        a, c, _ = unrolled(program, name)
        if a.shape[1] != n_in:
            raise ValueError(f"node {name!r} ({kind}): takes {a.shape[1]} inputs but receives {n_in}")
        return a, c
    if kind in ("Affine", "Linear"):
        w = np.asarray(node.weight, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"node {name!r} ({kind}): weight must be 2-D, got shape {w.shape}")
        if w.shape[1] != n_in:
            raise ValueError(f"node {name!r} ({kind}): weight has {w.shape[1]} inputs but receives {n_in}")
        c = np.asarray(node.bias, dtype=np.float64).reshape(-1) if kind == "Affine" else np.zeros(w.shape[0])
        return w, c
    if kind == "Scale":
        s = np.asarray(node.scale, dtype=np.float64).reshape(-1)
        if s.size not in (1, n_in):
            raise ValueError(f"node {name!r} (Scale): {s.size} factors for {n_in} inputs")
        return np.diag(np.broadcast_to(s, (n_in,))), np.zeros(n_in)
    return None, np.zeros(n_in)   # Flatten, Identity, inner Input/Output: the identity


def analyse(graph: nir.NIRGraph, unsupported_reason: str = "") -> Analysis:
    """Reduce ``graph`` to populations, one input and weight paths; collect refusals."""
    nodes, edges = inline(graph)
    refusals: list[Refusal] = []
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            refusals.append(Refusal(a if a not in nodes else b, "structure",
                                    f"edge {a} -> {b} names a node that is not in the graph"))
            continue
        preds[b].append(a)
    inputs = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    populations = {n: v for n, v in nodes.items() if type(v).__name__ in NEURON_TYPES}
    for n, v in nodes.items():
        kind = type(v).__name__
        if kind not in NEURON_TYPES + LINEAR_TYPES + ("Input", "Output"):
            refusals.append(Refusal(n, "unsupported", f"node {n!r} ({kind}) is not supported by the "
                                    f"Lava target: it supports Input, Output, Affine, Linear, Scale, "
                                    f"Flatten, Conv1d, Conv2d, SumPool2d, AvgPool2d, LIF, CubaLIF, IF, "
                                    f"LI, CubaLI" + (f" ({unsupported_reason})"
                                                                    if unsupported_reason else "")))
    if len(inputs) != 1:
        refusals.append(Refusal(",".join(inputs) or "graph", "structure",
                                f"the Lava target takes exactly one Input node, the graph has {len(inputs)}"))
    inp = inputs[0] if inputs else None
    input_size = _size(next(iter(nodes[inp].input_type.values()))) if inp else 0

    program = node_shapes(graph) if any(type(v).__name__ in CONV_TYPES for v in nodes.values()) else None
    memo: dict[str, list[Path]] = {}
    visiting: set[str] = set()
    folded: dict[str, str] = {}
    bad = {r.node for r in refusals}

    def out_size(name: str) -> int:
        node = nodes[name]
        if name == inp:
            return input_size
        if name in populations:
            return population_size(node)
        raise RuntimeError(name)

    def resolve(name: str) -> list[Path]:
        """Paths whose sum is the output of node ``name`` (spiking sources end the recursion)."""
        if name == inp or name in populations:
            n = out_size(name)
            return [Path(name, name, None, np.zeros(n), [])]
        if name in memo:
            return memo[name]
        if name in visiting:
            raise ValueError(f"node {name!r}: a cycle through weight nodes only (no neuron on it) "
                             f"cannot run on the target")
        if name in bad or isinstance(nodes[name], nir.Output):
            raise ValueError(f"node {name!r} cannot be compiled")
        visiting.add(name)
        try:
            incoming = [p for pr in preds[name] for p in resolve(pr)]
            if not incoming:
                raise ValueError(f"node {name!r} has no input")
            n_in = incoming[0].n_out
            if any(p.n_out != n_in for p in incoming):
                raise ValueError(f"node {name!r}: its inputs have different sizes")
            a, c = _linear_map(name, nodes[name], n_in, program)
            out = [Path(p.src, name, p.matrix, p.bias, p.via + [name]) if a is None else
                   Path(p.src, name, a if p.matrix is None else a @ p.matrix, a @ p.bias, p.via + [name])
                   for p in incoming]
            out[0].bias = out[0].bias + c
        finally:
            visiting.discard(name)
        memo[name] = out
        return out

    paths: list[Path] = []
    for name, node in populations.items():
        if name in bad:
            continue
        n = population_size(node)
        try:
            incoming = [p for pr in preds[name] for p in resolve(pr)]
        except ValueError as exc:
            refusals.append(Refusal(name, "structure", f"layer {name!r}: {exc.args[0]}"))
            continue
        merged: dict[str, Path] = {}
        for p in incoming:
            if p.n_out != n:
                refusals.append(Refusal(name, "structure", f"layer {name!r} has {n} neurons but "
                                        f"receives {p.n_out} values from {p.via or p.src}"))
                break
            if p.src in merged:
                merged[p.src].matrix = merged[p.src].dense() + p.dense()
                merged[p.src].bias = merged[p.src].bias + p.bias
                merged[p.src].via += p.via
            else:
                merged[p.src] = Path(p.src, name, p.dense().copy(), p.bias.copy(), list(p.via))
        for p in merged.values():
            paths.append(p)
            for w in p.via:
                folded[w] = f"{p.src} -> {name}"
    outputs: dict[str, str] = {}
    for name, node in nodes.items():
        if not isinstance(node, nir.Output) or name in bad:
            continue
        try:
            srcs = [p for pr in preds[name] for p in resolve(pr)]
        except ValueError as exc:
            refusals.append(Refusal(name, "structure", f"output {name!r}: {exc.args[0]}"))
            continue
        ok = (len(srcs) == 1 and srcs[0].src in populations and srcs[0].matrix is None
              and not np.any(srcs[0].bias))      # only identity nodes (Flatten, sub-graph ports)
        if not ok:
            what = ", ".join(sorted({p.src for p in srcs} | {w for p in srcs for w in p.via}))
            refusals.append(Refusal(name, "unsupported", f"output {name!r} reads {what or 'nothing'}: "
                                    f"an Output must be fed directly by one neuron layer (LIF, "
                                    f"CubaLIF, IF spikes or LI, CubaLI voltages) on the Lava target"))
            continue
        outputs[name] = srcs[0].src
    return Analysis(nodes, edges, inp, input_size, populations, paths, outputs, refusals, folded)


def depths(analysis: Analysis) -> dict[str, int]:
    """Fewest Dense hops from the input to each population (Lava delays each hop by one step)."""
    depth = {analysis.input: 0} if analysis.input else {}
    changed = True
    while changed:
        changed = False
        for p in analysis.paths:
            if p.src in depth and depth[p.src] + 1 < depth.get(p.dst, 1 << 30):
                depth[p.dst] = depth[p.src] + 1
                changed = True
    depth.pop(analysis.input, None)
    return depth
