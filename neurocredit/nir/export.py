"""Export a spiking network, with its learning rule and feedback pathways, as a NIR graph.

Stable entry points::

    export(model) -> nir.NIRGraph
        model: neurocredit.sim.spiking.SpikingNetwork, a LoadedModel (re-export) or a NIRGraph.
        Graph: Input 'input' -> Affine 'fc1' -> LIF 'lif1' -> ... -> Affine 'fcL' ->
        LI 'readout' (or LIF 'readout' for a spiking readout) -> Output 'output'.
        graph.metadata['neurocredit'] = the learning spec (JSON, :mod:`neurocredit.nir.schema`),
        nodes['lif<l>'].metadata['neurocredit_B'] = that hidden layer's feedback matrix B_l.

    write(model, path) -> pathlib.Path
        export + nir.write to a temporary file next to ``path``, read back and checked, then
        renamed onto ``path``: a failure (NIRExportError for a model neurocredit refuses, or
        whatever nir/h5py raise) leaves no file (and no temporary) behind, and an existing file
        at ``path`` untouched.

Neuron parameters use snnTorch's convention (τ = dt/(1−β), R = τ/dt, v_leak = v_reset = 0,
dt = 1e-4 unless configured), so snnTorch's ``import_from_nir`` rebuilds the same Leaky layers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import nir
from neurocredit.io_utils import atomic_path
from neurocredit.nir import schema
from neurocredit.nir.errors import NIRExportError, NIRLoadError
from neurocredit.sim.network import pathway_source


def _np(t: Any, where: str = "") -> np.ndarray:
    a = t.detach().cpu().numpy().astype(np.float32, copy=True)
    if where and not np.all(np.isfinite(a)):
        raise NIRExportError(f"{where} has non-finite values; refusing to export")
    return a


def _neuron_node(p: Any) -> nir.NIRNode:
    from neurocredit.neurons import lif as L
    if isinstance(p, L.LIFParams):
        return nir.LIF(tau=_np(p.tau), r=_np(p.r), v_leak=_np(p.v_leak),
                       v_threshold=_np(p.v_threshold), v_reset=_np(p.v_reset))
    if isinstance(p, L.LIParams):
        return nir.LI(tau=_np(p.tau), r=_np(p.r), v_leak=_np(p.v_leak))
    raise NIRExportError(f"cannot export neuron parameters of type {type(p).__name__}")


def export_network(net: Any) -> nir.NIRGraph:
    """The NIR graph of a :class:`~neurocredit.sim.spiking.SpikingNetwork`."""
    cfg = net.config
    n_layers = len(net.layers)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array([net.sizes[0]])})}
    names_neuron = [f"lif{l + 1}" for l in range(n_layers - 1)] + ["readout"]
    pre = "input"
    edges: list[tuple[str, str]] = []
    layers_meta = []
    decays = net.trace_decays()
    params = [*net.hidden_params, net.out_params]
    for l, layer in enumerate(net.layers):
        w_name = f"fc{l + 1}"
        nodes[w_name] = nir.Affine(weight=_np(layer.weight, f"node '{w_name}': field 'weight'"),
                                   bias=_np(layer.bias, f"node '{w_name}': field 'bias'"))
        nodes[names_neuron[l]] = _neuron_node(params[l])
        edges += [(pre, w_name), (w_name, names_neuron[l])]
        layers_meta.append({"weight": w_name, "pre": pre, "post": names_neuron[l],
                            "trace_decay": float(decays[l])})
        pre = names_neuron[l]
    nodes["output"] = nir.Output(output_type={"output": np.array([net.sizes[-1]])})
    edges.append((pre, "output"))
    fb = net.rule.feedback
    feedback_meta = []
    for l in range(n_layers - 1):
        B = net.net.B(l)
        if B is None:
            continue
        src = pathway_source(fb, l, n_layers)
        source_node = {"next": names_neuron[l + 1], "output": "readout", "target": "output"}[src]
        target = names_neuron[l]
        feedback_meta.append(schema.store_feedback(
            nodes, target, src, source_node, fb, _np(B, f"node '{target}': feedback matrix")))
    spec = schema.make_spec(
        net.rule, dt=cfg.dt, discretisation=net.disc.to_dict(), layers=layers_meta,
        feedback=feedback_meta, loss=getattr(net, "loss", "ce"),
        readout="li_mean" if cfg.readout == "li" else "lif_count",
        coding={"scheme": cfg.coding, "steps": cfg.steps, "max_rate": cfg.max_rate},
        surrogate={"name": "fast_sigmoid", "slope": cfg.surrogate_slope})
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={schema.META_KEY: schema.dumps(spec)},
                         type_check=True)
    return graph


def export(model: Any) -> nir.NIRGraph:
    """``model`` (SpikingNetwork, RecurrentSpikingNetwork, LoadedModel or NIRGraph) as a nir.NIRGraph."""
    from neurocredit.sim.recurrent_spiking import RecurrentSpikingNetwork
    from neurocredit.sim.spiking import SpikingNetwork
    if isinstance(model, SpikingNetwork):
        return export_network(model)
    if isinstance(model, RecurrentSpikingNetwork):
        from neurocredit.nir.recurrent import export_recurrent
        return export_recurrent(model)
    if type(model).__name__ == "NIRGraph":
        return model
    graph = getattr(model, "graph", None)
    if graph is not None and type(graph).__name__ == "NIRGraph":
        return graph
    raise NIRExportError(f"cannot export a {type(model).__name__}; expected a SpikingNetwork, "
                       "a LoadedModel or a nir.NIRGraph")


def write(model: Any, path: str | Path) -> Path:
    """Export ``model`` and write it atomically to ``path`` (see the module docstring)."""
    path = Path(path)
    graph = export(model)
    if schema.META_KEY in (getattr(graph, "metadata", None) or {}):
        try:
            schema.read_learning(graph)
        except NIRLoadError as exc:
            raise NIRExportError(f"refusing to write: {exc}") from None
    with atomic_path(path, suffix=".nir") as tmp:
        nir.write(tmp, graph)
        try:  # the file must read back with nir's own reader before it replaces anything
            nir.read(tmp)
        except Exception as exc:  # noqa: BLE001 - nir raises ValueError, AssertionError, ...
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise NIRExportError(f"refusing to write {path}: nir.read cannot read the graph "
                                 f"back ({type(exc).__name__}: {msg})") from None
    return path
