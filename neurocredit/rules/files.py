"""Rules as files: a Rule <-> plain data (dicts, JSON, TOML), and one resolver for names and paths.

The schema *is* the core dataclasses (:class:`~neurocredit.rules.rule.Rule`,
:class:`~neurocredit.rules.rule.Feedback`, :class:`~neurocredit.rules.rule.Term`): the field
lists, the types and the allowed values of ``Literal`` fields are read from them, so a field
added to the core is written and read here without a change.  A rule file (documented with a
complete annotated example in ``docs/rule_files.md``)::

    schema = "neurocredit.rule"      # optional header; version 1 is the only one so far
    version = 1
    name = "dfa_hebbian_decay"       # required
    title = "..."  paper = "..."  equation = "..."     # optional text, default ""
    local = true                     # required: the declaration the locality checker verifies
    hardware = true                  # optional, default true
    dynamics = "feedforward"         # optional; 'autograd' or a scheme of neurocredit.sim.dynamics

    [[forward]]                      # ΔW = η Σ_k coef_k Π factors_k, one table per term
    coef = -1.0
    factors = ["third", "pre"]       # pre | post | third | post_input | weight

    [feedback]                       # optional: every field of Feedback, defaults as there
    kind = "learned"                 # random | sparse | learned | transpose | sign
    source = "next"                  # next | output | target
    [[feedback.terms]]               # a learned pathway's own plasticity terms
    coef = -1.0
    factors = ["pre", "post"]

    [params]                         # the rule's constants: name = number | bool | string
    lr_scale = 0.5

The plain-data form (:func:`rule_to_dict`) is what neurocredit's NIR learning metadata (version 1)
stores as JSON: the same fields, ``params`` as ``[[name, value], ...]`` and absent values as
``null``.  :func:`rule_from_dict` reads both forms.  Every malformed entry raises
:class:`RuleFileError`, one line naming the file, the field and what was expected.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Mapping

from neurocredit.rules.rule import Feedback, Rule, Term

FILE_SCHEMA = "neurocredit.rule"
FILE_VERSION = 1
_HEADER = ("schema", "version")          # keys a rule file may carry besides the Rule's fields
_OPTIONAL_TEXT = ("title", "paper", "equation")   # Rule fields a file may omit (default "")
_PARAM_TYPES = (bool, int, float, str)


class RuleFileError(ValueError):
    """A rule file or rule dict that does not follow the schema (one line: where, field, what)."""

    def __init__(self, where: str, field: str | None, what: str) -> None:
        self.where, self.field, self.what = where, field, what
        super().__init__(f"{where}: field '{field}' {what}" if field else f"{where}: {what}")


# --------------------------------------------------------------------------- the schema
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def schema_fields(cls: type) -> dict[str, tuple[Any, Any]]:
    """{field: (type hint, default or MISSING)} of a core dataclass, in declaration order.

    Fields whose type admits None default to None; a Rule's title, paper and equation default
    to "" in files.
    """
    hints = _hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        default = _default(f)
        if default is dataclasses.MISSING and _allows_none(hints[f.name]):
            default = None
        if default is dataclasses.MISSING and cls is Rule and f.name in _OPTIONAL_TEXT:
            default = ""
        out[f.name] = (hints[f.name], default)
    return out


def _allows_none(hint: Any) -> bool:
    return _is_union(hint) and type(None) in typing.get_args(hint)


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _describe(hint: Any) -> str:
    """'a number', 'one of random, sparse, ...' -- what a field expects, for error messages."""
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a finite number"
    if hint is str:
        return "a string"
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if isinstance(hint, type) and issubclass(hint, Enum):
        return "one of " + ", ".join(m.value for m in hint)
    if _is_union(hint):
        return " or ".join("absent" if a is type(None) else _describe(a) for a in typing.get_args(hint))
    if dataclasses.is_dataclass(hint):
        return f"a table of {hint.__name__} fields (" + ", ".join(schema_fields(hint)) + ")"
    if _is_pairs(hint):
        return "a table of name = number | bool | string"
    if typing.get_origin(hint) is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0])}"
    return str(hint)


def _is_pairs(hint: Any) -> bool:
    """tuple[tuple[str, ...], ...]: a Rule's params, sorted (name, value) pairs."""
    args = typing.get_args(hint)
    return (typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is Ellipsis
            and typing.get_origin(args[0]) is tuple)


def _kind(v: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table", type(None): "nothing"}.get(type(v), type(v).__name__)


# --------------------------------------------------------------------------- data -> Rule
def _convert(value: Any, hint: Any, where: str, path: str) -> Any:
    """``value`` as an instance of ``hint`` (a core dataclass field type), or RuleFileError."""
    def bad(what: str | None = None) -> RuleFileError:
        got = f"'{value}'" if isinstance(value, str) else _kind(value)
        return RuleFileError(where, path, what or f"must be {_describe(hint)}, got {got}")

    if _is_union(hint):
        if value is None and type(None) in typing.get_args(hint):
            return None
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _convert(value, options[0], where, path)
        if isinstance(value, _PARAM_TYPES) and all(o in _PARAM_TYPES for o in options):
            return _convert(value, type(value), where, path)
        raise bad()
    if hint is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if hint is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad()
        return value
    if hint is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise bad()
        if not math.isfinite(value):
            raise bad(f"must be {_describe(hint)}, got {value}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad()
        return value
    if typing.get_origin(hint) is Literal:
        if value not in typing.get_args(hint):
            raise bad()
        return value
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise bad() from None
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where, path)
    if _is_pairs(hint):
        return _params(value, where, path)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad()
        item = typing.get_args(hint)[0]
        return tuple(_convert(v, item, where, f"{path}[{i}]") for i, v in enumerate(value))
    raise RuleFileError(where, path, f"has a type the schema cannot read ({hint})")  # pragma: no cover


def _params(value: Any, where: str, path: str) -> tuple[tuple[str, Any], ...]:
    """A table {name: value} (rule files) or [[name, value], ...] (NIR metadata) -> sorted pairs."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)) and all(isinstance(p, (list, tuple)) and len(p) == 2
                                                  for p in value):
        items = [tuple(p) for p in value]
    else:
        raise RuleFileError(where, path, f"must be a table of name = number | bool | string "
                                         f"(or a list of [name, value] pairs), got {_kind(value)}")
    out = {}
    for k, v in items:
        if not isinstance(k, str):
            raise RuleFileError(where, path, f"has a non-string name {k!r}")
        if not isinstance(v, _PARAM_TYPES) or (isinstance(v, float) and not math.isfinite(v)):
            raise RuleFileError(where, f"{path}.{k}", f"must be a finite number, a boolean or a "
                                                      f"string, got {_kind(v)}")
        if k in out:
            raise RuleFileError(where, f"{path}.{k}", "is given twice")
        out[k] = v
    return tuple(sorted(out.items()))


def _build(cls: type, data: Any, where: str, path: str) -> Any:
    """An instance of the core dataclass ``cls`` from a table; unknown or missing fields named."""
    prefix = f"{path}." if path else ""
    if not isinstance(data, Mapping):
        raise RuleFileError(where, path or "(root)", f"must be a table of {cls.__name__} fields, "
                                                     f"got {_kind(data)}")
    fields = schema_fields(cls)
    extra = [k for k in data if k not in fields and not (cls is Rule and not path and k in _HEADER)]
    if extra:
        raise RuleFileError(where, f"{prefix}{extra[0]}", f"is not a field of {cls.__name__}; "
                                                          f"expected one of {', '.join(fields)}")
    own = {f.name: _default(f) for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, (hint, default) in fields.items():
        if name in data:
            kwargs[name] = _convert(data[name], hint, where, f"{prefix}{name}")
        elif default is dataclasses.MISSING:
            raise RuleFileError(where, f"{prefix}{name}", f"is missing; expected {_describe(hint)}")
        elif own[name] is dataclasses.MISSING:      # a default of the file schema, not the class
            kwargs[name] = default
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise RuleFileError(where, path or "(root)", f"is invalid: {exc}") from None


def rule_from_dict(data: Any, where: str = "rule", path: str = "") -> Rule:
    """A Rule from plain data (a parsed rule file or NIR learning metadata's ``rule`` object).

    ``where`` names the source in errors (e.g. "rule file 'x.toml'"), ``path`` prefixes field
    names (e.g. "rule" -> "rule.forward[0].factors").  Raises :class:`RuleFileError`.
    """
    if isinstance(data, Mapping) and not path:
        if "schema" in data and data["schema"] != FILE_SCHEMA:
            raise RuleFileError(where, "schema", f"is {data['schema']!r}; expected {FILE_SCHEMA!r}")
        if "version" in data:
            v = data["version"]
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= FILE_VERSION:
                raise RuleFileError(where, "version", f"is {v!r}; this neurocredit reads rule "
                                                      f"files up to version {FILE_VERSION}")
    return _build(Rule, data, where, path)


# --------------------------------------------------------------------------- Rule -> data
def _to_data(value: Any, hint: Any) -> Any:
    if value is None:
        return None
    if _is_union(hint):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _to_data(value, options[0] if len(options) == 1 else type(value))
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value):
        return {n: _to_data(getattr(value, n), h) for n, (h, _) in schema_fields(type(value)).items()}
    if _is_pairs(hint):
        return [[k, v] for k, v in value]
    if isinstance(value, tuple):
        item = typing.get_args(hint)[0] if typing.get_args(hint) else Any
        return [_to_data(v, item) for v in value]
    if hint is float:
        return float(value)
    return value


def rule_to_dict(rule: Rule) -> dict[str, Any]:
    """A Rule as JSON-ready data: every Rule field; terms as {coef, factors}; params as
    [[name, value], ...]; absent values None (the inverse of :func:`rule_from_dict`)."""
    return _to_data(rule, Rule)


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def dump_rule(rule: Rule) -> str:
    """The rule as a TOML rule file (read back by :func:`load_rule` to an equal Rule)."""
    import tomli_w

    d = rule_to_dict(rule)
    scalars = {k: v for k, v in d.items() if not isinstance(v, (list, dict))}
    doc: dict[str, Any] = {"schema": FILE_SCHEMA, "version": FILE_VERSION, **scalars,
                           "forward": d["forward"]}
    if d["feedback"] is not None:
        doc["feedback"] = {k: v for k, v in d["feedback"].items() if not (k == "terms" and not v)}
    if rule.params:
        doc["params"] = dict(rule.params)
    from neurocredit.rules.factors import Factor
    head = (f"# neurocredit rule '{rule.name}' (schema: docs/rule_files.md)\n"
            f"# ΔW = η Σ_k coef_k Π factors_k  (factors: {', '.join(f.value for f in Factor)})\n")
    return head + tomli_w.dumps(_drop_none(doc))


def load_rule(path: str | Path) -> Rule:
    """The Rule in the TOML file ``path``; RuleFileError (one line) for anything malformed."""
    import tomllib

    path = Path(path)
    where = f"rule file '{path}'"
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RuleFileError(where, None, "does not exist") from None
    except IsADirectoryError:
        raise RuleFileError(where, None, "is a directory, not a .toml file") from None
    except UnicodeDecodeError:
        raise RuleFileError(where, None, "is not UTF-8 text") from None
    except OSError as exc:
        raise RuleFileError(where, None, f"cannot be read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(where, None, f"is not valid TOML: {exc}") from None
    return rule_from_dict(data, where)


def save_rule(rule: Rule, path: str | Path) -> Path:
    """Write ``rule`` as a TOML file (temp file + rename: nothing half-written)."""
    import os
    import tempfile

    path = Path(path)
    text = dump_rule(rule)
    fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------- resolver
def looks_like_path(name: str) -> bool:
    """True for 'x.toml', 'dir/x' and other strings that name a file rather than a library rule."""
    return name.endswith(".toml") or "/" in name or "\\" in name or Path(name).is_file()


def resolve_rule(name_or_path: str | Path | Rule) -> Rule:
    """A library rule by name ('dfa'), or the rule in a TOML file ('rules/mine.toml').

    A string that is neither raises ValueError (one line) naming the known rules.
    """
    from neurocredit.rules.library import RULES

    if isinstance(name_or_path, Rule):
        return name_or_path
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or looks_like_path(text):
        return load_rule(text)
    rule = RULES.get(text.lower())
    if rule is None:
        raise ValueError(f"unknown rule '{text}'; known rules: {', '.join(RULES)} (or a path to a "
                         ".toml rule file)")
    return rule
