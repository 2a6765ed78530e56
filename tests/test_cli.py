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


def _subparsers():
    import argparse

    from neurocredit.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return parser, sub.choices


def test_every_option_has_help_and_its_default():
    import argparse
    _, commands = _subparsers()
    missing = []
    for name, p in commands.items():
        text = p.format_help()
        for a in p._actions:
            if isinstance(a, argparse._HelpAction) or a.help == argparse.SUPPRESS:
                continue
            label = f"{name} {'/'.join(a.option_strings) or a.dest}"
            if not a.help:
                missing.append(label + ": no help")
            elif a.option_strings and a.default is not None and not isinstance(
                    a, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                shown = "%(default)" in a.help or f"(default: {a.default})" in text.replace("\n", " ")
                if not shown and f"(default: {a.default})" not in " ".join(text.split()):
                    missing.append(label + f": default {a.default!r} not shown")
    assert not missing, "\n".join(missing)


def test_version_and_info():
    import neurocredit
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"neurocredit {neurocredit.__version__}"
    out = cli("info")
    assert out.returncode == 0, out.stderr
    assert "Lava backend: " in out.stdout and "CUDA: " in out.stdout and "threads: torch" in out.stdout


def test_argparse_errors_are_one_line():
    out = cli("train", "--epochs", "many")
    assert out.returncode == 2
    assert out.stderr.strip() == ("neurocredit train: error: argument --epochs: must be an integer "
                                  ">= 1, got 'many' (see `neurocredit train --help`)")


def test_a_closed_pipe_ends_quietly():
    """`neurocredit rules | head -1`: the reader closes the pipe; no 'error: Broken pipe' line."""
    import subprocess
    import sys
    p = subprocess.Popen([sys.executable, "-m", "neurocredit.cli", "rules", "-v"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                       # closed before the command writes its first line
    err = p.stderr.read().decode()
    p.wait(timeout=120)
    assert "Broken pipe" not in err and "Traceback" not in err, err
