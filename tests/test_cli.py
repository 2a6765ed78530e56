"""The command line: tables, training output, one-line errors."""
import json
import subprocess
import sys

import pytest


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neurocredit.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def test_rules_table_lists_every_rule_with_locality():
    from neurocredit.rules import RULES
    out = cli("rules")
    assert out.returncode == 0
    lines = {line.split()[0]: line for line in out.stdout.splitlines()[2:] if line.strip()}
    assert set(RULES) <= set(lines)
    assert " no " in lines["bp"] and " yes " in lines["fa"]


def test_train_writes_metrics_and_plot(tmp_path):
    out = cli("train", "--rule", "dfa", "--epochs", "2", "--hidden", "32", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["rule"] == "dfa" and len(metrics["history"]) == 2
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "test accuracy" in out.stdout


@pytest.mark.parametrize("args, culprit", [
    (("--rule", "nope"), "unknown rule 'nope'"),
    (("--data", "cifar"), "unknown data set 'cifar'"),
    (("--hidden", "0"), "argument --hidden: must be an integer >= 1, got '0'"),
    (("--activation", "swish"), "unknown activation 'swish'"),
])
def test_bad_train_input_is_one_line_without_traceback(tmp_path, args, culprit):
    out = cli("train", *args, "--epochs", "1", "--out", str(tmp_path))
    assert out.returncode == 2
    assert culprit in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
