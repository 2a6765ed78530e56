"""Recurrent spiking graphs with a learning rule: find, attach a rule, rebuild, export.

The graph shape (what snnTorch's exporter writes for ``Linear -> RLeaky|RSynaptic -> ... ->
Linear -> Leaky``, and what :func:`export_recurrent` writes)::

    Input -> Affine|Linear -> LIF|CubaLIF (+ a recurrent Affine|Linear 'x.w_rec' on itself) -> ...
          -> Affine|Linear -> LI|LIF (readout) -> Output

Hidden neuron nodes are named ``<layer>.lif`` and their recurrent weights ``<layer>.w_rec``
(snnTorch's importer wraps exactly such pairs back into RLeaky / RSynaptic); a loaded graph
keeps its own node names on re-export.

Learning metadata: the spec of :mod:`neurocredit.nir.schema` with one entry in ``layers`` per
plastic connection, the recurrent ones included (``pre`` = ``post`` = the hidden node), and a
``recurrent`` object ``{model: "rsnn", neuron: lif|cubalif, readout: li|lif,
hidden: [...], recurrent: [...]}`` (readers that do not know it ignore it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

import nir
from neurocredit.neurons import lif as L
from neurocredit.nir import schema
from neurocredit.nir.errors import NIRExportError, NIRLoadError
from neurocredit.nir.simulate import flatten_graph
from neurocredit.rules.rule import Rule

WEIGHTS = ("Affine", "Linear")
HIDDEN = ("LIF", "CubaLIF")
READOUTS = ("LI", "LIF")


@dataclass(frozen=True)
class RecurrentChain:
    """Input, feed-forward weight nodes, hidden neuron nodes + the readout, their recurrent
    weight nodes, Output."""

    input: str
    weights: list[str]
    neurons: list[str]
    recurrent: list[str]
    output: str


def find_recurrent_chain(graph: nir.NIRGraph) -> RecurrentChain | None:
    """The recurrent chain of ``graph``, or None if the graph does not have that shape."""
    nodes, edges = flatten_graph(graph)
    kind = lambda n: type(nodes[n]).__name__  # noqa: E731
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        succ[s].append(d)
        pred[d].append(s)
    rec_of: dict[str, str] = {}
    for w in nodes:
        if kind(w) in WEIGHTS and len(pred[w]) == 1 and succ[w] == pred[w] \
                and kind(pred[w][0]) in HIDDEN:
            rec_of[pred[w][0]] = w
    if not rec_of:
        return None
    inputs = [n for n in nodes if kind(n) == "Input" and not pred[n]]
    if len(inputs) != 1:
        return None
    seq, cur = [inputs[0]], inputs[0]
    while True:
        nxt = [d for d in succ[cur] if d != rec_of.get(cur)]
        if not nxt:
            break
        if len(nxt) != 1:
            return None
        cur = nxt[0]
        inbound = [s for s in pred[cur] if s != rec_of.get(cur)]
        if cur in seq or len(inbound) != 1:
            return None
        seq.append(cur)
    core = [n for n in seq if kind(n) not in ("Input", "Output") or n in (seq[0], seq[-1])]
    body = core[1:-1]
    if kind(core[-1]) != "Output" or len(body) < 4 or len(body) % 2:
        return None
    weights, neurons = body[0::2], body[1::2]
    hidden, readout = neurons[:-1], neurons[-1]
    if any(kind(w) not in WEIGHTS for w in weights) or kind(readout) not in READOUTS \
            or readout in rec_of or any(kind(n) not in HIDDEN for n in hidden):
        return None
    missing = [n for n in hidden if n not in rec_of]
    if missing:
        raise NIRLoadError(f"recurrent learning needs a recurrent connection on every hidden layer; "
                           f"node '{missing[0]}' has none")
    if len({kind(n) for n in hidden}) != 1:
        raise NIRLoadError("recurrent learning needs one neuron type in all hidden layers; found "
                           + ", ".join(f"{n} ({kind(n)})" for n in hidden))
    return RecurrentChain(core[0], weights, neurons, [rec_of[n] for n in hidden], core[-1])


def _f32(node: Any, key: str) -> Any:
    import torch
    return torch.as_tensor(np.asarray(getattr(node, key), dtype=np.float32))


def _params(node: Any) -> Any:
    f = lambda k: _f32(node, k)  # noqa: E731
    kind = type(node).__name__
    if kind == "LIF":
        return L.LIFParams(f("tau"), f("r"), f("v_leak"), f("v_threshold"), f("v_reset"))
    if kind == "CubaLIF":
        return L.CubaLIFParams(f("tau_syn"), f("tau_mem"), f("r"), f("v_leak"), f("v_threshold"),
                               f("v_reset"), f("w_in"))
    return L.LIParams(f("tau"), f("r"), f("v_leak"))


def network_from_graph(graph: nir.NIRGraph, rule: Rule, seed: int = 0, discretisation: Any = None,
                       dt: float | None = None, spec: dict | None = None):
    """A trainable :class:`~neurocredit.sim.recurrent_spiking.RecurrentSpikingNetwork` with the
    graph's weights and neurons (and the spec's feedback matrices, when ``spec`` is given)."""
    import torch
    from neurocredit.sim.recurrent_rate import RecurrentRuleError
    from neurocredit.sim.recurrent_spiking import RecurrentSpikingConfig, RecurrentSpikingNetwork
    chain = find_recurrent_chain(graph)
    if chain is None:
        raise NIRLoadError(f"rule '{rule.name}' needs a recurrent chain Input -> Affine -> "
                           "LIF|CubaLIF (+ recurrent Affine) ... -> Affine -> LI|LIF -> Output")
    nodes, _ = flatten_graph(graph)
    ws = [nodes[w] for w in chain.weights]
    sizes = [int(np.asarray(ws[0].weight).shape[1])] + [int(np.asarray(w.weight).shape[0]) for w in ws]
    surrogate = (spec or {}).get("surrogate") or {}
    disc = (spec or {}).get("discretisation") if discretisation is None else discretisation
    disc = L.get_discretisation(disc if disc is not None else "snntorch")
    cfg = RecurrentSpikingConfig(
        neuron="lif" if type(nodes[chain.neurons[0]]).__name__ == "LIF" else "cubalif",
        dt=float(dt if dt is not None else (spec or {}).get("dt", L.SNNTORCH_DT)),
        surrogate_slope=float(surrogate.get("slope", 2.0)),
        readout="li" if type(nodes[chain.neurons[-1]]).__name__ == "LI" else "lif")
    try:
        net = RecurrentSpikingNetwork(sizes, rule, cfg, seed=seed)
    except (RecurrentRuleError, ValueError) as exc:
        raise NIRLoadError(f"rule '{rule.name}' does not fit the graph: {exc}") from None
    net.disc = disc

    def copy(layer, node, name):
        w = np.asarray(node.weight, dtype=np.float32)
        if tuple(w.shape) != tuple(layer.weight.shape):
            raise NIRLoadError(f"node '{name}': weight shape {list(w.shape)} does not fit "
                               f"{list(layer.weight.shape)}")
        layer.weight.copy_(torch.as_tensor(w))
        if layer.bias is not None:
            b = getattr(node, "bias", None)
            layer.bias.copy_(torch.as_tensor(np.asarray(b, dtype=np.float32)) if b is not None
                             else torch.zeros_like(layer.bias))

    with torch.no_grad():
        for layer, name in zip(net.layers, chain.weights):
            copy(layer, nodes[name], name)
        for layer, name in zip(net.recurrent, chain.recurrent):
            copy(layer, nodes[name], name)
        for fb in (spec or {}).get("feedback", []):
            l = chain.neurons.index(fb["target"])
            B = np.asarray(nodes[fb["matrix"]["node"]].metadata[fb["matrix"]["key"]], np.float32)
            if net.net.B(l) is None or tuple(net.net.B(l).shape) != B.shape:
                raise NIRLoadError(f"node '{fb['target']}': feedback matrix of shape "
                                   f"{list(B.shape)} does not fit rule '{rule.name}'")
            net.net.B(l).copy_(torch.as_tensor(B))
    net.hidden_params = [_params(nodes[n]) for n in chain.neurons[:-1]]
    net.out_params = _params(nodes[chain.neurons[-1]])
    net.node_names = chain
    return net


def _np(t: Any, where: str) -> np.ndarray:
    a = t.detach().cpu().numpy().astype(np.float32, copy=True)
    if not np.all(np.isfinite(a)):
        raise NIRExportError(f"{where} has non-finite values; refusing to export")
    return a


def _neuron(p: Any) -> nir.NIRNode:
    n = lambda k: _np(getattr(p, k), f"neuron field '{k}'")  # noqa: E731
    if isinstance(p, L.LIFParams):
        return nir.LIF(tau=n("tau"), r=n("r"), v_leak=n("v_leak"), v_threshold=n("v_threshold"),
                       v_reset=n("v_reset"))
    if isinstance(p, L.CubaLIFParams):
        return nir.CubaLIF(tau_syn=n("tau_syn"), tau_mem=n("tau_mem"), r=n("r"), v_leak=n("v_leak"),
                           v_threshold=n("v_threshold"), v_reset=n("v_reset"), w_in=n("w_in"))
    return nir.LI(tau=n("tau"), r=n("r"), v_leak=n("v_leak"))


def default_names(n_hidden: int) -> RecurrentChain:
    """Node names of a freshly exported network (snnTorch's ``<layer>.lif`` / ``.w_rec``)."""
    return RecurrentChain("input", [f"fc{k + 1}" for k in range(n_hidden + 1)],
                          [f"rec{k + 1}.lif" for k in range(n_hidden)] + ["readout"],
                          [f"rec{k + 1}.w_rec" for k in range(n_hidden)], "output")


def export_recurrent(net: Any, names: RecurrentChain | None = None) -> nir.NIRGraph:
    """The NIR graph of a RecurrentSpikingNetwork with its rule and feedback matrices."""
    n_hidden = len(net.recurrent)
    names = names or getattr(net, "node_names", None) or default_names(n_hidden)
    cfg = net.config
    if getattr(net, "adaptive", False):
        raise NIRExportError("the hidden neurons have an adaptive threshold (ALIF: adapt > 0), "
                             "which no NIR node holds; refusing to export them as plain LIF")
    nodes: dict[str, nir.NIRNode] = {names.input: nir.Input(input_type={"input": np.array([net.sizes[0]])})}
    edges: list[tuple[str, str]] = []
    layers_meta = []
    params = [*net.hidden_params, net.out_params]
    decays = [float(L.constants(p, cfg.dt, net.disc).decay.mean()) for p in params]
    pre = names.input
    for l, layer in enumerate(net.layers):
        w, post = names.weights[l], names.neurons[l]
        nodes[w] = nir.Affine(weight=_np(layer.weight, f"node '{w}': field 'weight'"),
                              bias=_np(layer.bias, f"node '{w}': field 'bias'"))
        nodes[post] = _neuron(params[l])
        edges += [(pre, w), (w, post)]
        layers_meta.append({"weight": w, "pre": pre, "post": post, "trace_decay": decays[l]})
        if l < n_hidden:
            r, R = names.recurrent[l], net.recurrent[l]
            nodes[r] = nir.Affine(weight=_np(R.weight, f"node '{r}': field 'weight'"),
                                  bias=_np(R.bias, f"node '{r}': field 'bias'"))
            edges += [(post, r), (r, post)]
            layers_meta.append({"weight": r, "pre": post, "post": post, "trace_decay": decays[l],
                                "recurrent": True})
        pre = post
    nodes[names.output] = nir.Output(output_type={"output": np.array([net.sizes[-1]])})
    edges.append((pre, names.output))
    fb = net.rule.feedback
    feedback_meta = []
    for l in range(n_hidden):
        B = net.net.B(l)
        if B is None:
            continue
        target = names.neurons[l]
        source = "target" if fb.source == "target" else "output"
        source_node = names.output if source == "target" else names.neurons[-1]
        feedback_meta.append(schema.store_feedback(
            nodes, target, source, source_node, fb, _np(B, f"node '{target}': feedback matrix")))
    spec = schema.make_spec(
        net.rule, dt=cfg.dt, discretisation=net.disc.to_dict(), layers=layers_meta,
        feedback=feedback_meta, readout="li_mean" if cfg.readout == "li" else "lif_count",
        coding={"scheme": "current"},
        surrogate={"name": "fast_sigmoid", "slope": cfg.surrogate_slope})
    spec["recurrent"] = {"model": "rsnn", "neuron": cfg.neuron, "readout": cfg.readout,
                         "hidden": names.neurons[:-1], "recurrent": names.recurrent}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={schema.META_KEY: schema.dumps(spec)},
                        type_check=True)


def attach_recurrent_rule(graph: nir.NIRGraph, rule: Rule, seed: int = 0, discretisation: Any = None,
                          dt: float | None = None) -> nir.NIRGraph:
    """A copy of a recurrent ``graph`` carrying ``rule`` (fresh, seeded feedback matrices),
    node names kept."""
    net = network_from_graph(graph, rule, seed, discretisation, dt)
    return export_recurrent(net)


def check_recurrent_fits(graph: nir.NIRGraph, spec: dict) -> None:
    """The recurrent spec must name the graph's chain and fitting feedback matrices."""
    chain = find_recurrent_chain(graph)
    rec = spec.get("recurrent")
    if chain is None:
        raise NIRLoadError("learning metadata: field 'recurrent' is set, but the graph is not a "
                           "recurrent chain Input -> Affine -> LIF|CubaLIF (+ recurrent Affine) ... "
                           "-> Affine -> LI|LIF -> Output")
    if not isinstance(rec, dict) or list(rec.get("hidden", [])) != chain.neurons[:-1] \
            or list(rec.get("recurrent", [])) != chain.recurrent:
        raise NIRLoadError(f"learning metadata: field 'recurrent' names {json.dumps(rec)}, the "
                           f"graph has hidden {chain.neurons[:-1]} with recurrent {chain.recurrent}")
    names = {(lay["weight"], lay["post"]) for lay in spec["layers"]}
    want = set(zip(chain.weights, chain.neurons)) | set(zip(chain.recurrent, chain.neurons))
    if names != want:
        raise NIRLoadError(f"learning metadata: field 'layers' names {sorted(names)}, the graph's "
                           f"plastic connections are {sorted(want)}")
    nodes, _ = flatten_graph(graph)
    for i, fb in enumerate(spec["feedback"]):
        m = fb["matrix"]
        md = getattr(nodes.get(m["node"]), "metadata", None) or {}
        if fb["target"] not in chain.neurons[:-1] or m["key"] not in md:
            raise NIRLoadError(f"learning metadata: field 'feedback[{i}]' names node "
                               f"'{fb['target']}' / matrix '{m['node']}.{m['key']}', which the "
                               "graph does not hold")
        B = np.asarray(md[m["key"]])
        n = int(np.asarray(nodes[fb["target"]].v_threshold).size)
        if B.ndim != 2 or B.shape[0] != n or not np.all(np.isfinite(B)):
            raise NIRLoadError(f"node '{m['node']}': metadata field '{m['key']}' must be a finite "
                               f"{n} x k matrix, got shape {list(B.shape)}")
