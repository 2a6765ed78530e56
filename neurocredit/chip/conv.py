"""Convolution and pooling (NIR Conv1d, Conv2d, SumPool2d, AvgPool2d) as chip connectivity.

Each such node is a linear map of its (flattened) input, ``y = A x + c``; the chip holds ``A`` as
the sparse connectivity of a Dense connection: synapse (o, i) exists where output o's kernel
window covers input i, its weight is the kernel entry (or 1 for a sum pool, 1/k^2 for an average
pool) that window applies.  ``A`` is read off the same step function the torch NIR simulation
uses (:mod:`neurocredit.nir.simulate`), applied to the unit inputs e_i::

    A[:, i] = op(e_i) - op(0),     c = op(0)     (the bias, per output position)

so padding, stride, dilation and groups mean exactly what they mean in the simulation.  A
convolution's synapses share its C_out x C_in/groups x k^d weights: :func:`shared_weights`
counts them for the resource report.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

CONV_TYPES = ("Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")
MAX_ENTRIES = 64_000_000        # A's n_out x n_in entries (float64: 512 MB)


def node_shapes(graph: Any) -> Any:
    """The torch NIR program of ``graph`` (its ops and every node's output shape), or None when
    the simulation cannot shape it (the compiler then refuses the conv node, named)."""
    from neurocredit.nir.errors import NIRLoadError
    from neurocredit.nir.simulate import compile_graph
    try:
        return compile_graph(graph, 1.0, "nir")
    except (NIRLoadError, ValueError, RuntimeError):
        return None


def unrolled(program: Any, name: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """(A, c, input shape) of conv/pool node ``name`` of ``program`` (module docstring)."""
    if program is None or name not in program.ops:
        raise ValueError(f"node {name!r}: its input shape is unknown (the graph does not simulate)")
    srcs = program.inbound[name]
    if len(srcs) != 1:
        raise ValueError(f"node {name!r}: a convolution or pooling node takes one input, it has {len(srcs)}")
    in_shape = program.shapes[srcs[0][0]]
    op = program.ops[name]
    n_in = int(np.prod(in_shape))
    n_out = int(np.prod(program.shapes[name]))
    if n_in * n_out > MAX_ENTRIES:
        raise ValueError(f"node {name!r}: {n_out} x {n_in} connectivity is too large to unroll")
    with torch.no_grad():
        c = op.step(torch.zeros((1, *in_shape)), op.init(1, in_shape))[0].reshape(-1).double()
        cols = []
        for start in range(0, n_in, 1024):
            stop = min(n_in, start + 1024)
            basis = torch.zeros((stop - start, n_in))
            basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            y = op.step(basis.reshape(stop - start, *in_shape), op.init(stop - start, in_shape))[0]
            cols.append(y.reshape(stop - start, -1).double() - c)
    a = torch.cat(cols).T.contiguous().numpy()
    a[np.abs(a) < 1e-12 * max(1.0, float(np.abs(a).max(initial=0.0)))] = 0.0   # exact structural zeros
    return a, c.numpy(), tuple(in_shape)


def shared_weights(node: Any) -> int:
    """Distinct weights a weight node holds: a conv's or Affine's weight array, a Scale's factors,
    one for a pool (identity-like nodes: 0).  A path through a conv shares these among its
    synapses."""
    kind = type(node).__name__
    if kind in ("SumPool2d", "AvgPool2d"):
        return 1
    w = getattr(node, "weight", getattr(node, "scale", None))
    return int(np.size(w)) if w is not None else 0
