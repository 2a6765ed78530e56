"""Load NIR files written by neurocredit, snnTorch or any NIR library; attach a rule on import.

Stable entry point::

    load(path, rule=None, *, seed=0, discretisation=None) -> LoadedModel
        path            a .nir (HDF5) file
        rule            None: keep the file's learning metadata (if any);
                        a rule name ('dfa') or a Rule: attach it with fresh feedback matrices
                        (seeded), replacing any learning metadata in the file
        discretisation  how ``LoadedModel.simulate`` steps the neurons; None: the file's
                        metadata, else 'nir' (Euler).  Use 'snntorch' for snnTorch files.
        raises          NIRLoadError — and only NIRLoadError — naming the file, node, field
                        or edge for: unreadable / truncated / non-HDF5 files, unknown node
                        types, missing or malformed fields, mismatched edge shapes, malformed
                        learning metadata, a rule that does not fit the graph.

The HDF5 file is read in a forked child process (see :func:`read_graph`): h5py/HDF5 can
segfault on a corrupted file, which no ``except`` catches.

A :class:`LoadedModel` holds the validated ``graph`` (nested subgraphs, cycles and all node
types of :data:`neurocredit.nir.simulate.SUPPORTED`), its learning ``spec`` and ``rule``
(or None), and can ``simulate`` it or turn a feed-forward chain
``Input -> (Affine|Linear -> LIF)* -> Affine|Linear -> LI|LIF -> Output`` into a trainable
:class:`~neurocredit.sim.spiking.SpikingNetwork` (``to_network``).
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import nir
from neurocredit.neurons import lif as L
from neurocredit.nir import schema
from neurocredit.nir.errors import NIRLoadError
from neurocredit.nir.simulate import SUPPORTED, compile_graph, flatten_graph
from neurocredit.rules.rule import Rule

__all__ = ["NIRLoadError", "LoadedModel", "load", "read_graph", "attach_rule", "find_chain"]

MAX_NODES = 10_000


# --------------------------------------------------------------------------- file -> graph
def _str(v: Any) -> str | None:
    if isinstance(v, bytes):
        try:
            return v.decode("utf8")
        except UnicodeDecodeError:
            return None
    if isinstance(v, np.ndarray) and v.shape == ():
        return _str(v.item())
    return v if isinstance(v, str) else None


def _required_fields(cls: type) -> tuple[set[str], set[str]]:
    """(required, allowed) constructor fields of a nir node class as stored in a file."""
    if cls.__name__ in ("Input", "Output"):
        return {"shape"}, {"shape"}
    req, allowed = set(), set()
    for f in dataclasses.fields(cls):
        if not f.init or f.name == "metadata":
            continue
        allowed.add(f.name)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            req.add(f.name)
    if cls.__name__ == "Flatten":
        req.discard("input_type")
    return req, allowed


def _metadata(d: Any, where: str) -> dict[str, Any]:
    md = d.get("metadata", {}) if isinstance(d, dict) else {}
    if not isinstance(md, dict):
        raise NIRLoadError(f"{where}: field 'metadata' must be a group")
    return md


def build_node(d: Any, name: str, warnings: list[str], depth: int = 0) -> nir.NIRNode:
    """One node dict (as read from HDF5) -> a nir node; NIRLoadError names the node/field."""
    if depth > 32:
        raise NIRLoadError(f"node '{name}': subgraphs nested deeper than 32 levels")
    if not isinstance(d, dict):
        raise NIRLoadError(f"node '{name}': is a dataset, expected a group with a 'type' field")
    if "type" not in d:
        raise NIRLoadError(f"node '{name}': field 'type' is missing")
    t = _str(d["type"])
    if t is None:
        raise NIRLoadError(f"node '{name}': field 'type' is not a string")
    if t not in SUPPORTED:
        raise NIRLoadError(f"node '{name}': unknown node type '{t}'; supported: {', '.join(SUPPORTED)}")
    where = f"node '{name}' ({t})"
    md = _metadata(d, where)
    if t == "NIRGraph":
        sub = d.get("nodes")
        if not isinstance(sub, dict):
            raise NIRLoadError(f"{where}: field 'nodes' is missing or not a group")
        if len(sub) > MAX_NODES:
            raise NIRLoadError(f"{where}: more than {MAX_NODES} nodes")
        nodes = {str(k): build_node(v, f"{name}.{k}" if name else str(k), warnings, depth + 1)
                 for k, v in sub.items()}
        edges = _edges(d.get("edges"), where)
        try:
            return nir.NIRGraph(nodes=nodes, edges=edges, metadata=md, type_check=False)
        except Exception as exc:
            raise NIRLoadError(f"{where}: {exc}") from None
    cls = getattr(nir, t)
    req, allowed = _required_fields(cls)
    missing = sorted(req - set(d))
    if missing:
        raise NIRLoadError(f"{where}: field '{missing[0]}' is missing")
    extra = sorted(set(d) - allowed - {"type", "metadata"})
    if extra:
        warnings.append(f"{where}: ignored unknown field(s) {', '.join(extra)}")
    kwargs = {k: d[k] for k in allowed if k in d}
    for k, v in kwargs.items():
        if isinstance(v, dict):
            raise NIRLoadError(f"{where}: field '{k}' is a group, expected an array")
    try:
        if t == "Input":
            return nir.Input(input_type={"input": np.atleast_1d(np.asarray(kwargs["shape"]))}, metadata=md)
        if t == "Output":
            return nir.Output(output_type={"output": np.atleast_1d(np.asarray(kwargs["shape"]))}, metadata=md)
        if t == "Flatten":
            return nir.Flatten(input_type={"input": kwargs.get("input_type")},
                               start_dim=kwargs.get("start_dim", 1), end_dim=kwargs.get("end_dim", -1),
                               metadata=md)
        arrays = {k: (np.asarray(v) if not isinstance(v, str) else v) for k, v in kwargs.items()}
        return cls(**arrays, metadata=md)
    except NIRLoadError:
        raise
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NIRLoadError(f"{where}: invalid fields: {msg}") from None


def _edges(raw: Any, where: str) -> list[tuple[str, str]]:
    if raw is None:
        raise NIRLoadError(f"{where}: field 'edges' is missing")
    a = np.asarray(raw, dtype=object)
    if a.size == 0:
        return []
    if a.ndim != 2 or a.shape[1] != 2:
        raise NIRLoadError(f"{where}: field 'edges' must be a list of (source, target) pairs, "
                           f"got shape {list(a.shape)}")
    out = []
    for src, dst in a:
        s, d = _str(src), _str(dst)
        if s is None or d is None:
            raise NIRLoadError(f"{where}: field 'edges' holds a non-string endpoint {src!r} -> {dst!r}")
        out.append((s, d))
    return out


READ_TIMEOUT_S = 60.0


def _read_raw(path: Path) -> dict:
    """hdf2dict of the file's 'node' group, in this process (errors -> NIRLoadError)."""
    import h5py
    from nir.serialization import hdf2dict
    try:
        with h5py.File(path, "r") as f:
            if "node" not in f:
                raise NIRLoadError(f"file '{path}': no 'node' group; not a NIR file")
            return hdf2dict(f["node"])
    except NIRLoadError:
        raise
    except Exception as exc:  # h5py raises OSError, KeyError, ValueError, RuntimeError ...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NIRLoadError(f"file '{path}' is not a readable HDF5/NIR file (truncated or not "
                           f"HDF5?): {msg}") from None


def _read_raw_isolated(path: Path, timeout: float | None = None) -> dict:
    """:func:`_read_raw` in a forked child process.

    The HDF5 C library can crash (segmentation fault) or loop on a corrupted file -- seen
    here with h5py 3 / HDF5 on files with flipped bytes -- which no Python ``except`` can
    catch.  ``timeout`` defaults to the module's READ_TIMEOUT_S.  The child reads the file and pickles the result (or the error) back through a
    pipe; a crash or a read longer than ``timeout`` s becomes a NIRLoadError.
    """
    import pickle
    import select
    import signal
    timeout = READ_TIMEOUT_S if timeout is None else timeout
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: read, report, exit without running any parent cleanup
        code = 0
        try:
            import faulthandler
            faulthandler.disable()          # the crash is expected and reported by the parent
            os.close(r)
            try:
                result = ("ok", _read_raw(path))
            except NIRLoadError as exc:
                result = ("error", str(exc))
            except BaseException as exc:  # noqa: BLE001
                result = ("error", f"file '{path}' could not be read: {type(exc).__name__}: {exc}")
            data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(w, "wb") as f:
                f.write(data)
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    with os.fdopen(r, "rb", buffering=0) as f:
        while True:
            left = deadline - time.monotonic()
            ready = select.select([f], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise NIRLoadError(f"file '{path}': reading it did not finish in {timeout:g} s "
                                   "(corrupt HDF5 file?)")
            chunk = f.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise NIRLoadError(f"file '{path}' crashed the HDF5 library (signal "
                           f"{os.WTERMSIG(status)}): a corrupt HDF5 file")
    try:
        kind, value = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001
        raise NIRLoadError(f"file '{path}' could not be read (the reader exited with status "
                           f"{os.WEXITSTATUS(status) if os.WIFEXITED(status) else status})") from None
    if kind != "ok":
        raise NIRLoadError(value)
    return value


def read_graph(path: str | Path, warnings: list[str] | None = None,
               isolate: bool | None = None) -> nir.NIRGraph:
    """Read a NIR HDF5 file into a nir.NIRGraph without nir's asserts (errors name the culprit).

    ``isolate`` (default: where ``os.fork`` exists, unless NEUROCREDIT_NIR_ISOLATE=0) reads the
    HDF5 file in a forked child process so that a corrupt file that crashes the HDF5 library is
    a NIRLoadError, not a dead interpreter (about 20 ms per load).
    """
    warnings = [] if warnings is None else warnings
    path = Path(path)
    if not path.exists():
        raise NIRLoadError(f"file '{path}' does not exist")
    if path.is_dir():
        raise NIRLoadError(f"file '{path}' is a folder, not a NIR file")
    if isolate is None:
        isolate = hasattr(os, "fork") and os.environ.get("NEUROCREDIT_NIR_ISOLATE", "1") != "0"
    raw = _read_raw_isolated(path) if isolate else _read_raw(path)
    if not isinstance(raw, dict) or _str(raw.get("type")) != "NIRGraph":
        raise NIRLoadError(f"file '{path}': the top node is not a NIRGraph "
                           f"(type {raw.get('type')!r})")
    return build_node(raw, "", warnings)


# --------------------------------------------------------------------------- chain / rule
@dataclass(frozen=True)
class Chain:
    """A feed-forward chain: Input, then (weight node, neuron node) pairs, then Output."""

    input: str
    weights: list[str]
    neurons: list[str]
    output: str


def find_chain(graph: nir.NIRGraph, why: str = "local learning") -> Chain:
    """The chain structure a rule needs, or NIRLoadError naming the node that breaks it."""
    nodes, edges = flatten_graph(graph)
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        succ[s].append(d)
        pred[d].append(s)
    inputs = [n for n, v in nodes.items() if type(v).__name__ == "Input" and not pred[n]]
    if len(inputs) != 1:
        raise NIRLoadError(f"{why} needs one Input node, the graph has {len(inputs)}")
    seq = [inputs[0]]
    seen = {inputs[0]}
    cur = inputs[0]
    while True:
        nxt = succ[cur]
        if not nxt:
            break
        if len(nxt) != 1:
            raise NIRLoadError(f"{why} needs a feed-forward chain: node '{cur}' fans out to "
                               f"{', '.join(nxt)}")
        cur = nxt[0]
        if cur in seen:
            raise NIRLoadError(f"{why} needs a feed-forward chain: node '{cur}' is in a recurrent "
                               "cycle")
        if len(pred[cur]) != 1:
            raise NIRLoadError(f"{why} needs a feed-forward chain: node '{cur}' has "
                               f"{len(pred[cur])} inbound edges ({', '.join(pred[cur])}), i.e. a "
                               "recurrent or merging connection")
        seen.add(cur)
        seq.append(cur)
    # drop pass-through nodes of flattened subgraphs
    core = [n for n in seq if type(nodes[n]).__name__ not in ("Input", "Output") or n in (seq[0], seq[-1])]
    if type(nodes[core[-1]]).__name__ != "Output":
        raise NIRLoadError(f"{why} needs the chain to end in an Output node; it ends at '{core[-1]}'")
    body = core[1:-1]
    if len(body) < 2 or len(body) % 2:
        raise NIRLoadError(f"{why} needs alternating Affine/Linear and neuron nodes between Input "
                           f"and Output; got {', '.join(f'{n} ({type(nodes[n]).__name__})' for n in body) or 'nothing'}")
    weights, neurons = body[0::2], body[1::2]
    for w in weights:
        if type(nodes[w]).__name__ not in ("Affine", "Linear"):
            raise NIRLoadError(f"{why} needs an Affine or Linear node at '{w}', found "
                               f"{type(nodes[w]).__name__}")
    for k, n in enumerate(neurons):
        kind = type(nodes[n]).__name__
        ok = ("LIF",) if k < len(neurons) - 1 else ("LIF", "LI")
        if kind not in ok:
            raise NIRLoadError(f"{why} needs {' or '.join(ok)} neurons at '{n}', found {kind}")
    return Chain(core[0], weights, neurons, core[-1])


def _rule_of(rule: str | Rule) -> Rule:
    from neurocredit.rules import resolve_rule
    if isinstance(rule, Rule):
        return rule
    try:
        return resolve_rule(str(rule))      # a library name or a .toml rule file
    except ValueError as exc:
        raise NIRLoadError(str(exc)) from None


def attach_rule(graph: nir.NIRGraph, rule: str | Rule, seed: int = 0,
                discretisation: Any = None, dt: float | None = None) -> nir.NIRGraph:
    """A copy of ``graph`` carrying ``rule``: learning spec + freshly drawn feedback matrices."""
    from neurocredit.nir.export import export_network
    from neurocredit.nir.recurrent import attach_recurrent_rule, find_recurrent_chain
    rule = _rule_of(rule)
    if find_recurrent_chain(graph) is not None:   # recurrent LIF/CubaLIF layers (RLeaky ...)
        return attach_recurrent_rule(graph, rule, seed, discretisation, dt)
    net = _network_from_chain(graph, rule, seed, discretisation, dt, spec=None)
    out = export_network(net)
    # keep the original node names and non-neurocredit metadata of the file
    chain = find_chain(graph, f"rule '{rule.name}'")
    rename = {"input": chain.input, "output": chain.output}
    for k, (w, n) in enumerate(zip(chain.weights, chain.neurons)):
        rename[f"fc{k + 1}"] = w
        rename[f"lif{k + 1}" if k < len(chain.neurons) - 1 else "readout"] = n
    return _rename(out, rename)


def _rename(graph: nir.NIRGraph, rename: dict[str, str]) -> nir.NIRGraph:
    import json
    r = lambda n: rename.get(n, n)  # noqa: E731
    nodes = {r(k): v for k, v in graph.nodes.items()}
    edges = [(r(a), r(b)) for a, b in graph.edges]
    spec = json.loads(graph.metadata[schema.META_KEY])
    for layer in spec["layers"]:
        for k in ("weight", "pre", "post"):
            layer[k] = r(layer[k])
    for fb in spec["feedback"]:
        fb["target"], fb["source_node"] = r(fb["target"]), r(fb["source_node"])
        fb["matrix"]["node"] = r(fb["matrix"]["node"])
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={schema.META_KEY: schema.dumps(spec)},
                        type_check=False)


def _params_of(node: Any, name: str) -> Any:
    f = lambda k: L._t(np.asarray(getattr(node, k), dtype=np.float32))  # noqa: E731
    kind = type(node).__name__
    if kind == "LIF":
        return L.LIFParams(f("tau"), f("r"), f("v_leak"), f("v_threshold"), f("v_reset"))
    if kind == "LI":
        return L.LIParams(f("tau"), f("r"), f("v_leak"))
    raise NIRLoadError(f"node '{name}' ({kind}) cannot be a layer of a trainable spiking network")


def _network_from_chain(graph: nir.NIRGraph, rule: Rule, seed: int, discretisation: Any,
                        dt: float | None, spec: dict | None):
    import torch
    from neurocredit.sim.spiking import SpikingConfig, SpikingNetwork, SpikingRuleError
    chain = find_chain(graph, f"rule '{rule.name}'")
    nodes, _ = flatten_graph(graph)
    ws = [nodes[w] for w in chain.weights]
    sizes = [int(np.asarray(ws[0].weight).shape[1])] + [int(np.asarray(w.weight).shape[0]) for w in ws]
    out_kind = type(nodes[chain.neurons[-1]]).__name__
    coding = (spec or {}).get("coding") or {}
    surrogate = (spec or {}).get("surrogate") or {}
    disc = (spec or {}).get("discretisation") if discretisation is None else discretisation
    disc = L.get_discretisation(disc if disc is not None else "snntorch")
    cfg = SpikingConfig(steps=int(coding.get("steps", 20)),
                        dt=float(dt if dt is not None else (spec or {}).get("dt", L.SNNTORCH_DT)),
                        coding=str(coding.get("scheme", "rate")),
                        max_rate=float(coding.get("max_rate", 1.0)),
                        surrogate_slope=float(surrogate.get("slope", 2.0)),
                        readout="li" if out_kind == "LI" else "lif")
    try:
        net = SpikingNetwork(sizes, rule, cfg, seed=seed)
    except (SpikingRuleError, ValueError) as exc:
        raise NIRLoadError(f"rule '{rule.name}' does not fit the graph: {exc}") from None
    net.disc = disc
    with torch.no_grad():
        for layer, w in zip(net.layers, ws):
            layer.weight.copy_(torch.as_tensor(np.asarray(w.weight, dtype=np.float32)))
            bias = getattr(w, "bias", None)
            layer.bias.copy_(torch.as_tensor(np.asarray(bias, dtype=np.float32)) if bias is not None
                             else torch.zeros_like(layer.bias))
    net.hidden_params = [_params_of(nodes[n], n) for n in chain.neurons[:-1]]
    net.out_params = _params_of(nodes[chain.neurons[-1]], chain.neurons[-1])
    return net


def check_learning_fits(graph: nir.NIRGraph, spec: dict) -> None:
    """The spec's layers and feedback matrices must name nodes of the graph with fitting shapes."""
    if spec.get("recurrent"):
        from neurocredit.nir.recurrent import check_recurrent_fits
        return check_recurrent_fits(graph, spec)
    nodes, _ = flatten_graph(graph)
    rule = schema.rule_from_dict(spec["rule"])
    chain = find_chain(graph, f"the learning rule '{rule.name}' in the file")
    if len(spec["layers"]) != len(chain.weights):
        raise NIRLoadError(f"learning metadata: field 'layers' lists {len(spec['layers'])} "
                           f"connections, the graph has {len(chain.weights)}")
    size = lambda n: int(np.prod(np.asarray(getattr(nodes[n], "output_type", {}).get("output", [0]))))  # noqa: E731
    for i, (layer, w, n) in enumerate(zip(spec["layers"], chain.weights, chain.neurons)):
        if layer["weight"] != w or layer["post"] != n:
            raise NIRLoadError(f"learning metadata: field 'layers[{i}]' names weight "
                               f"'{layer['weight']}' -> '{layer['post']}', the graph has '{w}' -> '{n}'")
    if rule.feedback is not None:
        from neurocredit.sim.network import pathway_kind
        n = len(chain.weights)
        expected = {chain.neurons[l] for l in range(n - 1)
                    if pathway_kind(rule.feedback, l, n) in ("random", "sparse", "learned")}
        listed = {fb["target"] for fb in spec["feedback"]}
        if expected - listed:
            raise NIRLoadError(f"learning metadata: field 'feedback' has no pathway into hidden "
                               f"node '{sorted(expected - listed)[0]}' that rule '{rule.name}' needs")
    for i, fb in enumerate(spec["feedback"]):
        where = f"learning metadata: field 'feedback[{i}]'"
        for key in ("target", "source_node"):
            if fb[key] not in nodes:
                raise NIRLoadError(f"{where}.{key} names node '{fb[key]}', which is not in the graph")
        m = fb["matrix"]
        if m["node"] not in nodes:
            raise NIRLoadError(f"{where}.matrix.node names node '{m['node']}', which is not in the graph")
        md = getattr(nodes[m["node"]], "metadata", None) or {}
        if m["key"] not in md:
            raise NIRLoadError(f"node '{m['node']}': metadata field '{m['key']}' (the feedback matrix "
                               f"of feedback[{i}]) is missing")
        B = np.asarray(md[m["key"]])
        if B.dtype.kind not in "fiu" or B.ndim != 2 or not np.all(np.isfinite(B)):
            raise NIRLoadError(f"node '{m['node']}': metadata field '{m['key']}' must be a finite 2-D "
                               f"numeric matrix, got dtype {B.dtype} shape {list(B.shape)}")
        want = (size(fb["target"]), size(fb["source_node"]))
        if tuple(B.shape) != tuple(fb["shape"]) or tuple(B.shape) != want:
            raise NIRLoadError(f"node '{m['node']}': metadata field '{m['key']}' has shape "
                               f"{list(B.shape)}; feedback into '{fb['target']}' from "
                               f"'{fb['source_node']}' needs {list(want)}")


# --------------------------------------------------------------------------- model
@dataclass
class LoadedModel:
    """A validated NIR graph, its learning spec/rule (or None), and how to run it."""

    graph: nir.NIRGraph
    spec: dict | None = None
    rule: Rule | None = None
    path: Path | None = None
    discretisation: L.Discretisation = field(default_factory=lambda: L.PRESETS["nir"])
    dt: float = L.SNNTORCH_DT
    warnings: list[str] = field(default_factory=list)
    conventions: Any = None     # neurocredit.nir.conventions.Conventions detected from the file

    def simulate(self, x: Any, dt: float | None = None, discretisation: Any = None,
                 record: bool = False):
        """:func:`neurocredit.nir.simulate.simulate` with this model's dt and discretisation."""
        from neurocredit.nir.simulate import simulate
        return simulate(self.graph, x, self.dt if dt is None else dt,
                        self.discretisation if discretisation is None else discretisation, record)

    def feedback_matrices(self) -> dict[str, np.ndarray]:
        """{hidden node: B} from the learning spec."""
        if not self.spec:
            return {}
        nodes, _ = flatten_graph(self.graph)
        return {fb["target"]: np.asarray(nodes[fb["matrix"]["node"]].metadata[fb["matrix"]["key"]])
                for fb in self.spec["feedback"]}

    def to_network(self, seed: int = 0):
        """A trainable SpikingNetwork with this graph's weights, neurons and feedback matrices."""
        import torch
        if self.rule is None:
            raise NIRLoadError("the graph carries no learning rule; load it with rule=... "
                               "(e.g. `--rule dfa`) to train it")
        if self.spec and self.spec.get("recurrent"):   # a RecurrentSpikingNetwork
            from neurocredit.nir.recurrent import network_from_graph
            return network_from_graph(self.graph, self.rule, seed, self.discretisation, self.dt,
                                      self.spec)
        net = _network_from_chain(self.graph, self.rule, seed, self.discretisation, self.dt, self.spec)
        index = {n: l for l, n in enumerate(find_chain(self.graph).neurons)}
        with torch.no_grad():
            for target, B in self.feedback_matrices().items():
                l = index[target]
                if net.net.B(l) is None or tuple(net.net.B(l).shape) != B.shape:
                    raise NIRLoadError(f"node '{target}': feedback matrix of shape {list(B.shape)} "
                                       f"does not fit rule '{self.rule.name}'")
                net.net.B(l).copy_(torch.as_tensor(B, dtype=torch.float32))
        return net


def load(path: str | Path, rule: str | Rule | None = None, *, seed: int = 0,
         discretisation: Any = None) -> LoadedModel:
    """Read, validate and (optionally) attach ``rule`` — see the module docstring."""
    warnings: list[str] = []
    graph = read_graph(path, warnings)
    spec = schema.read_learning(graph)  # strict: a malformed spec is an error
    try:
        disc = L.get_discretisation(discretisation if discretisation is not None
                                    else (spec or {}).get("discretisation"))
    except ValueError as exc:
        raise NIRLoadError(f"discretisation: {exc}") from None
    from neurocredit.nir.conventions import detect
    conventions = detect(graph)
    dt = float(spec["dt"]) if spec and "dt" in spec else conventions.dt
    if conventions.producer not in ("neurocredit", "unknown"):
        warnings.append(f"dt = {dt:g} s from the producer's convention: {conventions.reason}")
    compile_graph(graph, dt, disc)  # node fields, edge shapes, cycles: names the culprit
    rule_obj = None
    if rule is not None:
        rule_obj = _rule_of(rule)
        graph = attach_rule(graph, rule_obj, seed, disc, dt)
        spec = schema.read_learning(graph)
        compile_graph(graph, dt, disc)
    elif spec is not None:
        rule_obj = schema.rule_from_dict(spec["rule"])
    if spec is not None:
        check_learning_fits(graph, spec)
    return LoadedModel(graph, spec, rule_obj, Path(path), disc, dt, warnings, conventions)
