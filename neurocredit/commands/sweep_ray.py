"""Running a sweep on Ray Tune: embedded Ray (or a cluster at ``address``), a ``ray.tune.Tuner``
with grid, random or Optuna search, and a ledger of finished trials for ``--resume``.

Files in the output folder ``DIR``:

    ledger.jsonl          one line per finished trial (key, config, scalar metrics), appended
                          by the driver as each trial completes; --resume skips these keys
    events.jsonl          one line per trial start / finish / error (key, event, time)
    trials/<rule>-<key>/metrics.json   the trial's full metrics (history, per-layer angles)
    ray/                  Ray Tune's own experiment folders

A grid search hands Tune the explicit list of points not yet in the ledger
(``tune.grid_search``); random search draws ``samples`` minus the finished ones from Tune's
search space; Optuna (``ray.tune.search.optuna.OptunaSearch``) is warm-started with the finished
trials (``points_to_evaluate`` + ``evaluated_rewards``), so a resumed study continues.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neurocredit.commands.sweep_file import SweepFile, complete, trial_key, tune_space
from neurocredit.commands.sweep_trial import decode, run_trial
from neurocredit.io_utils import write_json

SCALARS = ("test_acc", "test_loss", "train_loss", "angle_mean", "seconds", "status")


def read_ledger(out: Path) -> dict[str, dict]:
    """Finished trials by key (a torn last line, from a kill mid-write, is ignored)."""
    path = out / "ledger.jsonl"
    done: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[row["key"]] = row
    return done


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def trial_dir(out: Path, cfg: dict) -> Path:
    rule = Path(str(cfg["rule"])).stem
    return out / "trials" / f"{rule}-{trial_key(cfg)}"


def trainable(config: dict) -> None:
    """The Ray Tune function trainable: one trial, reported once with its full metrics."""
    from ray import tune
    cfg = complete(decode(config))
    import torch
    gpu = torch.cuda.is_available() and bool(config.get("_gpu"))
    cfg.pop("_gpu", None)
    cfg.pop("_threads", None)
    res = run_trial(cfg, threads=int(config.get("_threads", 1)), device="cuda" if gpu else "cpu")
    scalars = {k: v for k, v in res.items() if k in SCALARS or k.startswith("angle_l")}
    tune.report({**scalars, "key": trial_key(cfg), "metrics_json": json.dumps(res, default=float)})


def _callback(out: Path, total: int, done_before: int, progress: bool):
    from ray.tune import Callback
    from tqdm.auto import tqdm

    class Ledger(Callback):
        """Driver-side: writes each finished trial's metrics.json and ledger line at once."""

        def __init__(self) -> None:
            self.bar = tqdm(total=total, initial=done_before, desc="sweep", unit="trial",
                            disable=not progress, dynamic_ncols=True)

        def on_trial_start(self, iteration, trials, trial, **info):
            _append(out / "events.jsonl", {"key": _key_of(trial.config), "event": "start",
                                           "time": time.time()})

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if "metrics_json" not in result:
                return
            res = json.loads(result["metrics_json"])
            cfg = _strip(res["config"])
            key = trial_key(cfg)
            write_json(trial_dir(out, cfg) / "metrics.json", res)
            scalars = {k: v for k, v in res.items() if k in SCALARS or k.startswith("angle_l")}
            _append(out / "ledger.jsonl", {"key": key, "config": cfg, "metrics": scalars})
            _append(out / "events.jsonl", {"key": key, "event": "finish", "time": time.time()})
            self.bar.update(1)
            acc = res.get("test_acc")
            if acc is not None:
                self.bar.set_postfix_str(f"{res['rule']} acc {100 * acc:.1f} %" if acc == acc else
                                         f"{res['rule']} {res['status']}")

        def on_trial_error(self, iteration, trials, trial, **info):
            _append(out / "events.jsonl", {"key": _key_of(trial.config), "event": "error",
                                           "time": time.time()})

        def on_experiment_end(self, trials, **info):
            self.bar.close()

    return Ledger()


def _strip(cfg: dict) -> dict:
    return {k: v for k, v in cfg.items() if not k.startswith("_")}


def _key_of(tune_config: dict) -> str:
    """The trial key of a Tune trial's config (grid points sit under 'trial')."""
    cfg = tune_config.get("trial", tune_config)
    return trial_key(_strip(complete(decode(cfg))))


@dataclass
class SweepRun:
    total: int          # trials the sweep holds (grid) or asks for (random / optuna)
    ran: int            # trials run now
    skipped: int        # finished before (--resume)
    errors: int


def run_sweep(sw: SweepFile, out: Path, address: str | None = None, cpus: int | None = None,
              resume: bool = False, max_trials: int | None = None,
              progress: bool = True) -> SweepRun:
    """Run the sweep ``sw`` into ``out`` on Ray Tune; embedded Ray unless ``address``.

    ``max_trials`` runs at most that many new trials now (the rest stay for ``--resume``)."""
    import ray
    import torch
    from ray import tune

    out = out.resolve()
    done = read_ledger(out)
    if done and not resume:
        raise ValueError(f"{out} already holds {len(done)} finished trials of a sweep: pass "
                         "--resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    extra = {"_threads": max(1, int(sw.cpus_per_trial)), "_gpu": bool(cuda and sw.gpus_per_trial > 0)}
    search_alg = None
    if sw.search == "grid":
        points = sw.grid_points()
        total = len(points)
        todo = [p for p in points if trial_key(p) not in done]
        if max_trials is not None:
            todo = todo[:max_trials]
        n_new = len(todo)
        space = {"trial": tune.grid_search(todo)}
        num_samples = 1
    else:
        total = sw.samples
        n_new = max(0, sw.samples - len(done))
        if max_trials is not None:
            n_new = min(n_new, max_trials)
        space = tune_space(sw)
        num_samples = n_new
        if sw.search == "optuna":
            from ray.tune.search.optuna import OptunaSearch
            prior = [{k: (json.dumps(v) if isinstance(v, list) else v)
                      for k, v in row["config"].items() if k in sw.axes} for row in done.values()]
            worst = -math.inf if sw.mode == "max" else math.inf
            rewards = [row["metrics"].get(sw.metric) for row in done.values()]
            rewards = [r if isinstance(r, (int, float)) and math.isfinite(r) else
                       (0.0 if sw.metric == "test_acc" else 1e9) for r in rewards]
            del worst
            search_alg = OptunaSearch(metric=sw.metric, mode=sw.mode, seed=sw.seed + len(done),
                                      points_to_evaluate=prior or None,
                                      evaluated_rewards=rewards or None)
            # warm-start points are re-reported by Optuna, not re-run: they cost no trial
        else:
            from ray.tune.search import BasicVariantGenerator
            search_alg = BasicVariantGenerator(random_state=sw.seed + len(done))
    if n_new == 0:
        return SweepRun(total, 0, len(done), 0)

    started = not ray.is_initialized()   # ours to shut down (also if ray.init fails half-way)
    try:
        if started and address:
            ray.init(address=address, log_to_driver=False)
        elif started:
            # trials are the work: Ray's default worker niceness (15) starves them behind
            # anything else on a shared machine (set RAY_worker_niceness to choose another)
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False)
        if sw.search == "grid":
            def fn(config: dict) -> None:
                trainable({**config["trial"], **extra})
        else:
            def fn(config: dict) -> None:
                trainable({**config, **extra})
        resources = {"cpu": sw.cpus_per_trial}
        if cuda and sw.gpus_per_trial > 0:
            resources["gpu"] = sw.gpus_per_trial
        callback = _callback(out, total, len(done), progress)
        tuner = tune.Tuner(
            tune.with_resources(fn, resources),
            param_space=space,
            tune_config=tune.TuneConfig(
                num_samples=num_samples, search_alg=search_alg,
                metric=sw.metric if search_alg is not None else None,
                mode=sw.mode if search_alg is not None else None,
                max_concurrent_trials=sw.max_concurrent or None, reuse_actors=True),
            run_config=tune.RunConfig(
                name=f"{sw.name}-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=str(out / "ray"),
                verbose=0, callbacks=[callback]))
        grid = tuner.fit()
        errors = sum(1 for r in grid if r.error is not None)
    finally:
        if started:
            ray.shutdown()
    ran = len(read_ledger(out)) - len(done)
    return SweepRun(total, ran, len(done), errors)
