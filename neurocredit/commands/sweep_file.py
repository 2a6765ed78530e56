"""The sweep file (TOML) of ``neurocredit sweep``: what to vary, how to search, what to report.

Schema (docs/sweeps.md has the full text)::

    [sweep]                      # all optional
    name = "small"               # default: the file's stem
    search = "grid"              # grid | random | optuna
    samples = 16                 # random / optuna: trials to draw (grid: every point once)
    seed = 0                     # sampler seed (random / optuna)
    metric = "test_acc"          # what optuna optimises: test_acc (max) or test_loss (min)
    cpus_per_trial = 1
    gpus_per_trial = 0.25        # asked for only where torch.cuda is available (default 0.25)
    max_concurrent = 0           # 0: as many as the CPUs allow

    [fixed]                      # the same in every trial
    data = "digits"
    epochs = 1

    [axes]                       # grid: lists; random/optuna: lists (a choice) or
    rule = ["fa", "kp"]          # {low = .., high = .., log = true, int = false} ranges
    seed = [0, 1]
    lr = [0.01, 0.03]

    [[grid]]                     # grid only, optional: each block adds product([axes] + block)
    rule = ["wm"]                # (block keys replace the [axes] ones), for per-rule grids
    "feedback.decay" = [0.1, 1.0]

    [report]
    heatmap = ["lr", "decay"]    # two axes for the per-rule heatmaps
    by = ["depth"]               # extra grouping for robustness / heatmaps
    tolerance_pp = 1.0           # robustness: configurations within this many pp of the best
    reference = "bp"             # gap of every rule's best configuration to this rule's best

A trial is one dict of the keys in :data:`TRIAL_KEYS` (plus ``param.<name>`` rule constants);
anything else is refused with one line naming the key and the file.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocredit.errors import UserError

# every key a trial understands, with its default (None: required or taken from the rule)
TRIAL_KEYS: dict[str, Any] = {
    "rule": None,            # library name or a rule file (.toml)
    "seed": 0,
    "data": "digits",        # digits | mnist5k | teacher
    "hidden": [64],          # hidden layer sizes
    "epochs": 1,
    "lr": 0.01,
    "batch_size": 32,
    "momentum": 0.9,
    "activation": "tanh",
    "feedback_scale": 1.0,   # scale of the initial random B
    "backend": "torch",      # torch (neurocredit.sim.train) | emulator (on-chip fixed point)
    "samples": 0,            # emulator: training samples per epoch (0: all)
    "decay": None,           # weight of every decay primitive of the rule (on W and on B)
    "weight_decay": None,    # decay weight on W only
    "feedback.amp": None,    # Kunin et al.'s primitives on the learned B: amp, decay, null
    "feedback.decay": None,
    "feedback.null": None,
    "feedback.lr_scale": None,   # learning rate of B relative to lr
    "feedback.noise_std": None,  # weight mirror's noise σ
}
SEARCHES = ("grid", "random", "optuna")
METRICS = {"test_acc": "max", "test_loss": "min"}


def is_trial_key(key: str) -> bool:
    return key in TRIAL_KEYS or (key.startswith("param.") and len(key) > 6)


@dataclass(frozen=True)
class Range:
    """A sampled axis for random / optuna search: uniform (or log-uniform) on [low, high]."""

    low: float
    high: float
    log: bool = False
    integer: bool = False


@dataclass
class SweepFile:
    path: Path
    name: str
    search: str = "grid"
    samples: int = 1
    seed: int = 0
    metric: str = "test_acc"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.25    # used only where torch.cuda is available
    max_concurrent: int = 0
    fixed: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, list | Range] = field(default_factory=dict)
    grids: list[dict[str, list]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return METRICS[self.metric]

    def varied(self) -> list[str]:
        """Axis names in file order ([axes] first, then keys new in [[grid]] blocks)."""
        names = list(self.axes)
        for block in self.grids:
            names += [k for k in block if k not in names]
        return names

    def grid_points(self) -> list[dict[str, Any]]:
        """Every trial of a grid search: the union over blocks of the product of their axes."""
        blocks = self.grids or [{}]
        points, seen = [], set()
        for block in blocks:
            axes = {**self.axes, **block}
            names = list(axes)
            for values in itertools.product(*(axes[n] for n in names)):
                cfg = complete({**self.fixed, **dict(zip(names, values))})
                key = trial_key(cfg)
                if key not in seen:
                    seen.add(key)
                    points.append(cfg)
        return points


def complete(cfg: dict[str, Any]) -> dict[str, Any]:
    """A trial config with every default filled in (so that equal trials get equal keys)."""
    out = {k: v for k, v in TRIAL_KEYS.items() if v is not None}
    out.update(cfg)
    out["hidden"] = [int(h) for h in out["hidden"]]
    return out


def trial_key(cfg: dict[str, Any]) -> str:
    """A stable 12-hex-digit name of a trial config (sorted JSON, SHA-1)."""
    text = json.dumps(complete(cfg), sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _fail(path: Path, msg: str) -> UserError:
    return UserError(f"{path}: {msg}")


def _check_value(path: Path, key: str, value: Any) -> None:
    if key == "hidden":
        if not (isinstance(value, list) and value and all(isinstance(h, int) and h > 0 for h in value)):
            raise _fail(path, f"'hidden' must be a list of positive integers, got {value!r}")
    elif key in ("epochs", "batch_size", "seed", "samples"):
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if key in ("epochs", "batch_size") else 0):
            raise _fail(path, f"'{key}' must be a {'positive' if key in ('epochs', 'batch_size') else 'non-negative'} integer, got {value!r}")
    elif key in ("lr",) or key.startswith("feedback.") or key in ("decay", "weight_decay", "feedback_scale", "momentum"):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0 \
                or (key == "lr" and value == 0):
            raise _fail(path, f"'{key}' must be a {'positive' if key == 'lr' else 'non-negative'} number, got {value!r}")
    elif key == "backend" and value not in ("torch", "emulator"):
        raise _fail(path, f"'backend' must be 'torch' or 'emulator', got {value!r}")
    elif key in ("rule", "data", "activation") and not isinstance(value, str):
        raise _fail(path, f"'{key}' must be a string, got {value!r}")


def _axis(path: Path, key: str, value: Any, search: str) -> list | Range:
    if not is_trial_key(key):
        raise _fail(path, f"unknown axis '{key}'; known: {', '.join(TRIAL_KEYS)}, param.<rule constant>")
    if isinstance(value, dict):
        if search == "grid":
            raise _fail(path, f"axis '{key}' is a range; a grid search needs a list of values")
        extra = set(value) - {"low", "high", "log", "int"}
        if extra or "low" not in value or "high" not in value:
            raise _fail(path, f"axis '{key}': a range is {{low = .., high = .., log = false, int = false}}")
        r = Range(float(value["low"]), float(value["high"]), bool(value.get("log", False)),
                  bool(value.get("int", False)))
        if not r.low < r.high or (r.log and r.low <= 0):
            raise _fail(path, f"axis '{key}': need low < high (and low > 0 for log), got {value}")
        return r
    if not isinstance(value, list) or not value:
        raise _fail(path, f"axis '{key}' must be a non-empty list of values (or a range table)")
    for v in value:
        _check_value(path, key, v)
    return value


def load_sweep(path: str | Path) -> SweepFile:
    """Read and check a sweep file; any problem is one UserError line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no such sweep file: {path}")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"not valid TOML ({str(exc).splitlines()[0]})") from None
    unknown = set(doc) - {"sweep", "fixed", "axes", "grid", "report"}
    if unknown:
        raise _fail(path, f"unknown section(s) {', '.join(sorted(unknown))}; known: sweep, fixed, axes, grid, report")
    head = doc.get("sweep", {})
    known_head = {"name", "search", "samples", "seed", "metric", "cpus_per_trial", "gpus_per_trial",
                  "max_concurrent"}
    if set(head) - known_head:
        raise _fail(path, f"unknown [sweep] key(s) {', '.join(sorted(set(head) - known_head))}; known: {', '.join(sorted(known_head))}")
    sw = SweepFile(path=path, name=str(head.get("name", path.stem)))
    sw.search = head.get("search", "grid")
    if sw.search not in SEARCHES:
        raise _fail(path, f"[sweep] search must be one of {', '.join(SEARCHES)}, got {sw.search!r}")
    sw.samples = head.get("samples", 1)
    sw.seed = head.get("seed", 0)
    sw.metric = head.get("metric", "test_acc")
    if sw.metric not in METRICS:
        raise _fail(path, f"[sweep] metric must be one of {', '.join(METRICS)}, got {sw.metric!r}")
    for k in ("samples", "max_concurrent", "seed"):
        v = getattr(sw, k) if k != "max_concurrent" else head.get(k, 0)
        if not isinstance(v, int) or isinstance(v, bool) or v < (1 if k == "samples" else 0):
            raise _fail(path, f"[sweep] {k} must be a {'positive' if k == 'samples' else 'non-negative'} integer, got {v!r}")
    sw.max_concurrent = head.get("max_concurrent", 0)
    sw.cpus_per_trial = float(head.get("cpus_per_trial", 1))
    sw.gpus_per_trial = float(head.get("gpus_per_trial", 0.25))
    if sw.cpus_per_trial <= 0 or not 0 <= sw.gpus_per_trial <= 8:
        raise _fail(path, "[sweep] cpus_per_trial must be > 0 and gpus_per_trial in [0, 8]")
    fixed = doc.get("fixed", {})
    for k, v in fixed.items():
        if not is_trial_key(k):
            raise _fail(path, f"unknown [fixed] key '{k}'; known: {', '.join(TRIAL_KEYS)}, param.<rule constant>")
        _check_value(path, k, v)
    sw.fixed = dict(fixed)
    sw.axes = {k: _axis(path, k, v, sw.search) for k, v in doc.get("axes", {}).items()}
    grids = doc.get("grid", [])
    if grids and sw.search != "grid":
        raise _fail(path, "[[grid]] blocks need search = \"grid\"")
    if not isinstance(grids, list) or not all(isinstance(b, dict) for b in grids):
        raise _fail(path, "[[grid]] must be an array of tables")
    sw.grids = [{k: _axis(path, k, v, "grid") for k, v in b.items()} for b in grids]
    overlap = (set(sw.axes) | {k for b in sw.grids for k in b}) & set(sw.fixed)
    if overlap:
        raise _fail(path, f"key(s) {', '.join(sorted(overlap))} are both fixed and varied")
    names = set(sw.fixed) | set(sw.axes) | ({k for b in sw.grids for k in b} if sw.grids else set())
    if sw.grids and any("rule" not in {**sw.axes, **b} for b in sw.grids) and "rule" not in sw.fixed:
        raise _fail(path, "every [[grid]] block needs a 'rule' (in the block, [axes] or [fixed])")
    if "rule" not in names:
        raise _fail(path, "no 'rule' given: put rule = \"fa\" in [fixed] or a list in [axes]")
    rep = doc.get("report", {})
    known_rep = {"heatmap", "by", "tolerance_pp", "reference"}
    if set(rep) - known_rep:
        raise _fail(path, f"unknown [report] key(s) {', '.join(sorted(set(rep) - known_rep))}; known: {', '.join(sorted(known_rep))}")
    hm = rep.get("heatmap")
    if hm is not None and (not isinstance(hm, list) or len(hm) != 2 or not all(isinstance(a, str) for a in hm)):
        raise _fail(path, f"[report] heatmap must name two axes, got {hm!r}")
    if hm is not None:
        for a in hm:
            if a not in sw.varied():
                raise _fail(path, f"[report] heatmap axis '{a}' is not a varied axis ({', '.join(sw.varied())})")
    sw.report = dict(rep)
    return sw


def tune_space(sw: SweepFile) -> dict[str, Any]:
    """The Ray Tune ``param_space`` of a random / optuna search: lists become ``tune.choice``,
    ranges ``tune.uniform`` / ``loguniform`` / ``randint`` (``qloguniform`` for log integers)."""
    from ray import tune
    space: dict[str, Any] = dict(sw.fixed)
    for k, v in sw.axes.items():
        if isinstance(v, Range):
            if v.integer:
                space[k] = (tune.lograndint(int(v.low), int(v.high) + 1) if v.log
                            else tune.randint(int(v.low), int(v.high) + 1))
            else:
                space[k] = tune.loguniform(v.low, v.high) if v.log else tune.uniform(v.low, v.high)
        else:
            # tune.choice over lists of lists (hidden sizes) would be flattened by optuna:
            # choose an index-free JSON string and decode it in the trial
            space[k] = tune.choice([json.dumps(x) if isinstance(x, list) else x for x in v])
    return space
