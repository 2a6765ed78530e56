"""Learned networks as NIR: the graph a network was learned from, with the weights learning
produced on a chip (or its emulator) written back into its ``Affine`` nodes.

The chip learns integer weights ``W_int`` with one exponent ``e`` per connection.  In NIR units
they are ``W = W_int · s`` with one scale per output row (``s_i = 2^e · v_th,i / (λ · g_i)``:
the compiler's threshold mantissa λ, the layer's threshold and its input gain, see
:mod:`neurocredit.chip.compile`), so the de-quantised weights are exact multiples of the chip's
weight step.  Each learned ``Affine`` node keeps in its metadata the integer weights
(``neurocredit.learned.weight_int``), the exponent and the row scales, and the graph's
metadata records the backend, the learning history and the rule (the learning spec is kept
as it was), so ``neurocredit inspect``, ``run`` and ``learn`` read the file like any other.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import nir
import numpy as np

from neurocredit.errors import UserError

INT_KEY = "neurocredit.learned.weight_int"
EXP_KEY = "neurocredit.learned.weight_exp"
SCALE_KEY = "neurocredit.learned.row_scale"
GRAPH_KEY = "neurocredit.learned"


def dequantise(weight_int: np.ndarray, row_scale: np.ndarray) -> np.ndarray:
    """``W = W_int · s`` row by row (see the module docstring)."""
    w = np.asarray(weight_int, dtype=np.float64)
    return w * np.asarray(row_scale, dtype=np.float64).reshape(-1, 1)


def learned_graph(graph: nir.NIRGraph, learned: Mapping[str, tuple[np.ndarray, int, np.ndarray]],
                  info: Mapping[str, Any] | None = None) -> nir.NIRGraph:
    """A copy of ``graph`` whose ``Affine``/``Linear`` nodes named in ``learned`` ({node:
    (integer weights, exponent, row scales)}) carry the de-quantised learned weights."""
    nodes = dict(graph.nodes)
    for name, (w_int, exp, scale) in learned.items():
        node = nodes.get(name)
        if node is None or type(node).__name__ not in ("Affine", "Linear"):
            raise UserError(f"learned weights for {name!r}, which is not an Affine/Linear node of the graph")
        w_int = np.asarray(w_int)
        old = np.asarray(node.weight)
        if w_int.shape != old.shape:
            raise UserError(f"node {name!r}: learned weights {list(w_int.shape)} do not fit {list(old.shape)}")
        meta = dict(getattr(node, "metadata", None) or {})
        meta.update({INT_KEY: w_int.astype(np.int64), EXP_KEY: np.asarray([int(exp)], dtype=np.int64),
                     SCALE_KEY: np.asarray(scale, dtype=np.float64)})
        w = dequantise(w_int, scale).astype(old.dtype if old.dtype.kind == "f" else np.float64)
        if type(node).__name__ == "Affine":
            new = nir.Affine(weight=w, bias=np.asarray(node.bias))
        else:
            new = nir.Linear(weight=w)
        new.metadata = meta
        nodes[name] = new
    meta = dict(getattr(graph, "metadata", None) or {})
    meta[GRAPH_KEY] = json.dumps(dict(info or {}), default=float)
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=meta, type_check=True)


def write_learned(graph: nir.NIRGraph, learned: Mapping[str, tuple[np.ndarray, int, np.ndarray]],
                  path: str | Path, info: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`learned_graph` atomically (read back with ``nir.read`` before it replaces
    anything, :func:`neurocredit.nir.export.write`)."""
    from neurocredit.nir.export import write
    return write(learned_graph(graph, learned, info), path) or Path(path)


def learned_info(graph: nir.NIRGraph) -> dict | None:
    """The learning record of a learned network (None for any other graph)."""
    raw = (getattr(graph, "metadata", None) or {}).get(GRAPH_KEY)
    if raw is None:
        return None
    if isinstance(raw, np.ndarray):
        raw = raw.item() if raw.shape == () else raw.tobytes()
    if isinstance(raw, bytes):
        raw = raw.decode()
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None
