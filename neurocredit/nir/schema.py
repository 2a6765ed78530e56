"""The learning-metadata schema neurocredit writes beside a NIR graph (version 1).

Nested dicts do not survive ``nir.write``/``nir.read`` (values come back as numpy scalars and
byte arrays), so the structured part is one JSON string; matrices are numpy arrays.

Graph metadata ``graph.metadata["neurocredit"]`` = JSON object::

    schema          "neurocredit.learning"
    version         1
    rule            the Rule as data (:func:`neurocredit.rules.files.rule_to_dict`, the same
                    schema as a TOML rule file, docs/rule_files.md): every field of the core's
                    Rule -- name, title, paper, equation, local, hardware, dynamics,
                    params [[name, value], ...], forward [{coef, factors: [factor, ...]}, ...],
                    feedback null | {every field of the core's Feedback dataclass, terms as
                    forward's}.  The rule travels in the file: nothing looks its name up.
    dt              simulation step (s)
    discretisation  {mode: euler|snntorch, reset: zero|subtract, reset_delay: bool}
    loss            "ce" | "mse"
    readout         "li_mean": logits = mean over the T steps of the LI readout membrane
    coding          {scheme: rate|latency, steps: T, max_rate}
    surrogate       {name: "fast_sigmoid", slope}
    layers          one per plastic connection, input to output:
                    {weight: node, pre: neuron node (or Input), post: neuron node,
                     trace_decay: λ of the pre trace}
    feedback        one per hidden neuron layer with a stored matrix:
                    {target: neuron node receiving e_l, source: "next" | "output" | "target",
                     source_node: the neuron node whose error (or the Output node whose
                     target) feeds it, kind, derivative, learned: bool,
                     matrix: {node: target, key: "neurocredit_B"}, shape: [n_target, n_source]}
    training        {lr, momentum}  (informative)

Node metadata ``nodes[target].metadata["neurocredit_B"]`` = the float32 B matrix
(rows: the target layer's neurons, columns: the source's).  Readers ignore unknown keys.
"""
from __future__ import annotations

import json
from typing import Any

from neurocredit.nir.errors import NIRLoadError
from neurocredit.rules import files
from neurocredit.rules.files import rule_to_dict
from neurocredit.rules.rule import Feedback, Rule

SCHEMA = "neurocredit.learning"
SCHEMA_VERSION = 1
META_KEY = "neurocredit"
B_KEY = "neurocredit_B"
_REQUIRED = ("schema", "version", "rule", "dt", "discretisation", "layers", "feedback")


def _err(field: str, msg: str) -> NIRLoadError:
    return NIRLoadError(f"learning metadata '{META_KEY}': field '{field}' {msg}")


# --------------------------------------------------------------------------- rule <-> dict
# The rule object is the rules floor's plain-data form (neurocredit.rules.files): written by
# rule_to_dict, read back (and every field checked) by rule_from_dict; errors become NIRLoadError.
def rule_from_dict(d: Any, path: str = "rule.") -> Rule:
    """Rebuild a Rule; a malformed entry raises NIRLoadError naming the field."""
    try:
        return files.rule_from_dict(d, where=f"learning metadata '{META_KEY}'", path=path.rstrip("."))
    except files.RuleFileError as exc:
        raise NIRLoadError(str(exc)) from None


def _need(d: Any, key: str, types: Any, path: str) -> Any:
    """d[key], checked to be of ``types`` (float accepts ints; bools are never numbers)."""
    if not isinstance(d, dict) or key not in d:
        raise _err(f"{path}{key}", "is missing")
    v = d[key]
    if types is float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        v = float(v) if ok else v
    elif types is bool:
        ok = isinstance(v, bool)
    else:
        ok = isinstance(v, types) and not isinstance(v, bool)
    if not ok:
        raise _err(f"{path}{key}", f"must be {getattr(types, '__name__', types)}, "
                   f"got {type(v).__name__}")
    return v


# --------------------------------------------------------------------------- spec
def make_spec(rule: Rule, *, dt: float, discretisation: dict, layers: list[dict],
              feedback: list[dict], loss: str = "ce", readout: str = "li_mean",
              coding: dict | None = None, surrogate: dict | None = None,
              training: dict | None = None) -> dict[str, Any]:
    return {"schema": SCHEMA, "version": SCHEMA_VERSION, "rule": rule_to_dict(rule),
            "dt": float(dt), "discretisation": dict(discretisation), "loss": loss,
            "readout": readout, "coding": coding or {}, "surrogate": surrogate or {},
            "layers": layers, "feedback": feedback, "training": training or {}}


def dumps(spec: dict[str, Any]) -> str:
    return json.dumps(spec, sort_keys=True, allow_nan=False)


def validate_spec(spec: Any) -> dict[str, Any]:
    """Check the schema's fields and types (not the graph); returns the spec."""
    if not isinstance(spec, dict):
        raise _err("(root)", f"must be a JSON object, got {type(spec).__name__}")
    for k in _REQUIRED:
        if k not in spec:
            raise _err(k, "is missing")
    if spec["schema"] != SCHEMA:
        raise _err("schema", f"is {spec['schema']!r}, expected {SCHEMA!r}")
    v = spec["version"]
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise _err("version", f"must be a positive integer, got {v!r}")
    if v > SCHEMA_VERSION:
        raise _err("version", f"is {v}; this neurocredit reads versions up to {SCHEMA_VERSION}")
    rule_from_dict(spec["rule"])
    dt = spec["dt"]
    if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not dt > 0:
        raise _err("dt", f"must be a positive number, got {dt!r}")
    from neurocredit.neurons.lif import Discretisation
    try:
        Discretisation.from_dict(spec["discretisation"])
    except (ValueError, TypeError) as exc:
        raise _err("discretisation", f"is invalid: {exc}") from None
    if not isinstance(spec["layers"], list) or not spec["layers"]:
        raise _err("layers", "must be a non-empty list")
    for i, layer in enumerate(spec["layers"]):
        for k in ("weight", "pre", "post"):
            _need(layer, k, str, f"layers[{i}].")
        td = layer.get("trace_decay", 0.0)
        if not isinstance(td, (int, float)) or isinstance(td, bool):
            raise _err(f"layers[{i}].trace_decay", f"must be a number, got {td!r}")
    if not isinstance(spec["feedback"], list):
        raise _err("feedback", "must be a list")
    for i, fb in enumerate(spec["feedback"]):
        p = f"feedback[{i}]."
        _need(fb, "target", str, p)
        src = _need(fb, "source", str, p)
        if src not in ("next", "output", "target"):
            raise _err(f"{p}source", f"'{src}' is not next, output or target")
        _need(fb, "source_node", str, p)
        _need(fb, "derivative", bool, p)
        _need(fb, "learned", bool, p)
        m = _need(fb, "matrix", dict, p)
        _need(m, "node", str, f"{p}matrix.")
        _need(m, "key", str, f"{p}matrix.")
        shape = _need(fb, "shape", list, p)
        if len(shape) != 2 or not all(isinstance(s, int) and s > 0 for s in shape):
            raise _err(f"{p}shape", f"must be two positive integers, got {shape!r}")
    return spec


def parse(text: Any) -> dict[str, Any]:
    """JSON text (str or bytes) -> validated spec."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf8")
        except UnicodeDecodeError:
            raise _err("(root)", "is not UTF-8 text") from None
    if hasattr(text, "item") and getattr(text, "shape", None) == ():
        text = text.item()
        if isinstance(text, bytes):
            text = text.decode("utf8", errors="replace")
    if not isinstance(text, str):
        raise _err("(root)", f"must be a JSON string, got {type(text).__name__}")
    try:
        spec = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _err("(root)", f"is not valid JSON: {exc}") from None
    return validate_spec(spec)


def read_learning(graph: Any, strict: bool = True) -> dict[str, Any] | None:
    """The validated spec in ``graph.metadata`` (None if absent; errors raise unless not strict)."""
    meta = getattr(graph, "metadata", None)
    if not isinstance(meta, dict) or META_KEY not in meta:
        return None
    try:
        return parse(meta[META_KEY])
    except NIRLoadError:
        if strict:
            raise
        return None


def store_feedback(nodes: dict, target: str, source: str, source_node: str, fb: Feedback,
                   B: Any) -> dict[str, Any]:
    """Put feedback matrix ``B`` (rows: ``target``'s neurons, columns: the source's) on node
    ``target``'s metadata under :data:`B_KEY` and return its entry of the graph metadata's
    ``feedback`` list (see the module docstring)."""
    nodes[target].metadata = {B_KEY: B}
    return {"target": target, "source": source, "source_node": source_node,
            "kind": fb.kind, "derivative": bool(fb.derivative), "learned": fb.kind == "learned",
            "matrix": {"node": target, "key": B_KEY}, "shape": [int(B.shape[0]), int(B.shape[1])]}
