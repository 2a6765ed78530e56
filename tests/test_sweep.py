"""`neurocredit sweep` on Ray Tune: the sweep file, a tiny sweep end to end on embedded Ray,
an interrupted sweep resumed without re-running finished trials, and (slow) a local Ray head
reached with --address."""
from __future__ import annotations

import csv
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.tune")

from neurocredit.cli import main  # noqa: E402
from neurocredit.commands.sweep_file import load_sweep, trial_key  # noqa: E402
from neurocredit.commands.sweep_trial import configure_rule, resolve  # noqa: E402

TINY = """
[sweep]
name = "tiny"
cpus_per_trial = 1
{extra}

[fixed]
data = "digits"
epochs = {epochs}
hidden = [16]

[axes]
rule = ["fa", "kp"]
seed = [0, 1]
lr = [0.01, 0.05]
"""


def _file(tmp_path: Path, epochs: int = 1, extra: str = "") -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY.format(epochs=epochs, extra=extra))
    return p


def _events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _ledger_keys(out: Path) -> list[str]:
    return [json.loads(line)["key"] for line in (out / "ledger.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("text, words", [
    ("[axes]\nrule = ['fa']\nlrate = [0.1]\n", "unknown axis 'lrate'"),
    ("[axes]\nrule = ['fa']\nlr = {low = 0.1, high = 1.0}\n", "a grid search needs a list"),
    ("[fixed]\nlr = 0.1\n", "no 'rule' given"),
    ("[fixed]\nrule = 'fa'\nhidden = [0]\n", "'hidden' must be a list of positive integers"),
    ("[sweep]\nsearch = 'bayes'\n[fixed]\nrule = 'fa'\n", "search must be one of grid, random, optuna"),
    ("[fixed\nrule = 'fa'\n", "not valid TOML"),
    ("[axes]\nrule = ['fa', 'nosuchrule']\n", "unknown rule 'nosuchrule'"),
    ("[axes]\nrule = ['fa']\n'feedback.decay' = [0.1]\n", "needs a rule with learned feedback"),
    ("[fixed]\nrule = 'fa'\ndata = 'cifar'\n", "unknown data set 'cifar'"),
    ("[fixed]\nrule = 'fa'\n[axes]\nlr = [0.1]\n[report]\nheatmap = ['lr', 'seed']\n",
     "heatmap axis 'seed' is not a varied axis"),
])
def test_bad_sweep_file_is_one_line(tmp_path, capsys, text, words):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    assert main(["sweep", str(p), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and str(p) in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_grid_points_union_of_blocks_and_keys(tmp_path):
    p = tmp_path / "g.toml"
    p.write_text("[fixed]\nepochs = 2\n[axes]\nlr = [0.1, 0.2]\nseed = [0, 1]\n"
                 "[[grid]]\nrule = ['bp']\n[[grid]]\nrule = ['wm']\n'feedback.decay' = [0.1, 1.0, 10.0]\n")
    pts = load_sweep(p).grid_points()
    assert len(pts) == 2 * 2 + 2 * 2 * 3
    assert len({trial_key(c) for c in pts}) == len(pts)
    assert sum(c["rule"] == "wm" and c["feedback.decay"] == 10.0 for c in pts) == 4


def test_configure_rule_sets_kunin_primitives():
    kp = configure_rule(resolve("kp"), {"decay": 0.1})
    decays = [t.coef for t in (*kp.forward, *kp.feedback.terms) if [f.value for f in t.factors] == ["weight"]]
    assert decays == [-0.1, -0.1]
    wm = configure_rule(resolve("wm"), {"feedback.decay": 10.0, "feedback.null": 2.0,
                                        "feedback.lr_scale": 0.5})
    coefs = sorted(t.coef for t in wm.feedback.terms)
    assert coefs == [-10.0, -2.0, 1.0] and wm.feedback.lr_scale == 0.5
    with pytest.raises(ValueError, match="needs a rule with learned feedback"):
        configure_rule(resolve("fa"), {"feedback.decay": 1.0})


def test_emulator_backend_trial():
    """backend = 'emulator': the on-chip fixed-point learning of `neurocredit learn`."""
    from neurocredit.commands.sweep_file import complete
    from neurocredit.commands.sweep_trial import run_trial
    res = run_trial(complete({"rule": "kp", "backend": "emulator", "hidden": [16], "epochs": 1,
                              "samples": 30, "lr": 2 ** -4}))
    assert res["status"] == "ok" and len(res["history"]) == 2       # epoch 0 (untrained) and 1
    assert 0.0 <= res["test_acc"] <= 1.0 and 0.0 < res["angle_mean"] < 180.0


def test_tiny_sweep_end_to_end(tmp_path, capsys):
    """2 rules x 2 seeds x 2 learning rates, digits, 1 epoch, on embedded Ray."""
    out = tmp_path / "sweep"
    assert main(["sweep", str(_file(tmp_path)), "--out", str(out), "--cpus", "2", "--quiet"]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 8
    assert {(r["rule"], int(r["seed"]), float(r["lr"])) for r in rows} == {
        (rule, s, lr) for rule in ("fa", "kp") for s in (0, 1) for lr in (0.01, 0.05)}
    for r in rows:
        assert r["status"] == "ok" and 10.0 < float(r["test_acc"]) <= 100.0
        assert 0.0 < float(r["angle_l1"]) < 180.0          # ∠(Wᵀ,B) of the hidden layer
        m = json.loads((out / "trials" / f"{r['rule']}-{r['key']}" / "metrics.json").read_text())
        assert abs(100 * m["test_acc"] - float(r["test_acc"])) < 1e-9 and len(m["history"]) == 1
    # summary: mean ± std over the two seeds per configuration, recomputed here from the table
    summary = (out / "summary.md").read_text()
    for rule in ("fa", "kp"):
        for lr in (0.01, 0.05):
            accs = [float(r["test_acc"]) for r in rows if r["rule"] == rule and float(r["lr"]) == lr]
            line = f"| {rule} | {lr:g} | 2 | {statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f} |"
            assert line in summary, line
    assert (out / "heatmap_acc_fa.png").stat().st_size > 1000
    assert (out / "distributions.png").is_file()
    assert "fraction" in capsys.readouterr().out


def _check_resumed(out: Path, first: list[str]) -> None:
    keys = _ledger_keys(out)
    assert len(keys) == len(set(keys)) == 8
    starts = [e["key"] for e in _events(out) if e["event"] == "start"]
    for k in first:
        assert starts.count(k) == 1, f"finished trial {k} ran again"
    assert len(list(csv.DictReader(open(out / "results.csv")))) == 8


@pytest.fixture
def running_ray():
    """One embedded Ray for both halves of a test (the sweep uses a Ray that is already up and
    leaves it running); shut down at the end whatever happens."""
    import ray
    os.environ.setdefault("RAY_worker_niceness", "0")      # as the sweep's own embedded start
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_stopped_sweep_resumes_without_rerunning(tmp_path, capsys, running_ray):
    """A sweep stopped after 3 of 8 trials (--max-trials), then --resume: the 3 finished trials
    have exactly one start each, the other 5 run, the table holds 8."""
    sweep_file = _file(tmp_path)
    out = tmp_path / "sweep"
    args = ["sweep", str(sweep_file), "--out", str(out), "--cpus", "2", "--quiet"]
    assert main(args + ["--max-trials", "3"]) == 0
    first = _ledger_keys(out)
    assert len(first) == 3
    assert main(args) == 2                                   # no silent overwrite
    assert "pass --resume" in capsys.readouterr().err
    assert main(args + ["--resume"]) == 0
    _check_resumed(out, first)
    assert "ran 5 trials now, 3 finished before" in capsys.readouterr().out


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_rerunning(tmp_path):
    """Ctrl-C (SIGINT) in the middle of a sweep, then --resume: every trial finished before the
    interruption has exactly one start, and the table ends with all 8."""
    sweep_file = _file(tmp_path, epochs=2, extra="max_concurrent = 1")
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "neurocredit.cli", "sweep", str(sweep_file), "--out", str(out),
           "--cpus", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (out / "ledger.jsonl").is_file() and len(_ledger_keys(out)) >= 2:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        log, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    first = _ledger_keys(out)
    assert 2 <= len(first) < 8, log
    assert main(["sweep", str(sweep_file), "--out", str(out), "--cpus", "1", "--quiet"]) == 2
    assert main(["sweep", str(sweep_file), "--out", str(out), "--cpus", "2", "--quiet",
                 "--resume"]) == 0
    _check_resumed(out, first)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sweep_on_a_local_ray_head(tmp_path, monkeypatch):
    """`ray start --head` on a free port, the same file run with --address, the head stopped.
    The head runs with --block in its own process group and is stopped by signalling that group:
    a bare `ray stop` would also stop every other Ray instance on this machine."""
    port = _free_port()
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")     # a throw-away head on this machine only
    ray_bin = str(Path(sys.executable).with_name("ray"))
    temp = Path(f"/tmp/rayh_{os.getpid()}")
    head = subprocess.Popen([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=2",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--block"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=os.environ.copy())
    try:
        out = tmp_path / "sweep"
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:                 # wait until the head's GCS port answers
            if head.poll() is not None:
                pytest.fail(f"ray start --head exited: {head.stdout.read()}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        time.sleep(2)
        # the driver in its own process, as on a cluster (and Ray's auth state stays out of pytest)
        run = subprocess.run([sys.executable, "-m", "neurocredit.cli", "sweep", str(_file(tmp_path)),
                              "--out", str(out), "--address", address, "--quiet"],
                             capture_output=True, text=True, timeout=600, env=os.environ.copy())
        assert run.returncode == 0, run.stderr[-2000:]
        assert f"on Ray cluster at {address}" in run.stdout
        rows = list(csv.DictReader(open(out / "results.csv")))
        assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
        assert "| fa | 0.01 | 2 |" in (out / "summary.md").read_text()
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("search", ["random", "optuna"])
def test_sampled_search_and_resume(tmp_path, search, running_ray):
    """Random search and Optuna (through Ray Tune's OptunaSearch) draw `samples` trials from
    ranges and choices; stopped after 2 and resumed, they end with exactly `samples` trials."""
    p = tmp_path / "s.toml"
    p.write_text(f"[sweep]\nsearch = '{search}'\nsamples = 4\nseed = 3\n"
                 "[fixed]\nrule = 'kp'\nepochs = 1\n"
                 "[axes]\nlr = {low = 0.005, high = 0.1, log = true}\n"
                 "hidden = [[16], [16, 16]]\ndecay = [0.001, 0.01]\n")
    out = tmp_path / "o"
    args = ["sweep", str(p), "--out", str(out), "--quiet"]
    assert main(args + ["--max-trials", "2"]) == 0
    first = _ledger_keys(out)
    assert len(first) == 2
    assert main(args + ["--resume"]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 4 and len({r["key"] for r in rows}) == 4
    assert all(0.005 <= float(r["lr"]) <= 0.1 and r["hidden"] in ("16", "16-16") for r in rows)
    starts = [e["key"] for e in _events(out) if e["event"] == "start"]
    assert all(starts.count(k) == 1 for k in first)
