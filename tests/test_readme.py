"""The README runs as written: its Python API section as a script, and every `neurocredit ...`
command of its shell blocks, in order, in a fresh folder (training shortened: --epochs 1,
--hidden 16, --samples at most 20).  Commands that need Lava run in the slow suite."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from neurocredit.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    """The fenced code blocks of the README whose info string is ``lang``."""
    out, current, inside = [], [], None
    for line in README.splitlines():
        if line.startswith("```"):
            if inside is None:
                inside, current = line[3:].strip(), []
            else:
                if inside == lang:
                    out.append("\n".join(current) + "\n")
                inside = None
        elif inside is not None:
            current.append(line)
    return out


def commands() -> list[str]:
    out = []
    for block in blocks(""):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("neurocredit "):
                out.append(line)
    return out


def fast(cmd: str) -> list[str]:
    """The command with short training: epochs 1 (0 stays 0), hidden 16, samples <= 20."""
    argv = shlex.split(cmd)[1:]
    res, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--hidden":
            res += ["--hidden", "16"]
            i += 1
            while i < len(argv) and not argv[i].startswith("-"):
                i += 1
            continue
        if a in ("--epochs", "--samples", "--check") and i + 1 < len(argv):
            v = int(argv[i + 1])
            v = min(v, 1) if a == "--epochs" else min(v, 20 if a == "--samples" else 2)
            res += [a, str(v)]
            i += 2
            continue
        res.append(a)
        i += 1
    return res


def needs_lava(cmd: str) -> bool:
    return "--backend lava" in cmd or "--check" in cmd or "setup-lava" in cmd


def is_slow(cmd: str) -> bool:
    """Lava runs, and sweeps (they start Ray): the slow suite."""
    return needs_lava(cmd) or cmd.split()[1] == "sweep"


def is_template(cmd: str) -> bool:
    """A usage pattern with placeholders (FILE.toml, DIR, HOST:6379), not a command to run."""
    return re.search(r"\b(FILE|DIR|HOST|PATH|NAME|RUN)\b", cmd) is not None


def test_readme_has_the_pipeline_commands():
    cmds = commands()
    for sub in ("train", "export", "inspect", "compile", "run", "learn", "rules", "info"):
        assert any(c.split()[1] == sub for c in cmds), sub
    assert README.startswith("# neurocredit\n\n```\nmake demo\nmake test\n```")


def _run_all(tmp_path, monkeypatch, capsys, with_lava: bool):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")     # commands name files of the repository
    ran = 0
    for cmd in commands():
        if is_template(cmd) or (is_slow(cmd) and not with_lava):
            continue
        if "setup-lava" in cmd:
            continue      # installs into the environment: covered by the fresh-install transcript
        argv = fast(cmd)
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 0, f"README command failed: neurocredit {' '.join(argv)}\n{err}"
        ran += 1
    return ran


def test_readme_commands_run(tmp_path, monkeypatch, capsys):
    assert _run_all(tmp_path, monkeypatch, capsys, with_lava=False) >= 10
    assert (tmp_path / "runs" / "dfa_learned.nir").is_file()


@pytest.mark.slow
def test_readme_commands_run_with_lava(tmp_path, monkeypatch, capsys):
    assert _run_all(tmp_path, monkeypatch, capsys, with_lava=True) >= 13


def test_readme_python_api_section_runs(tmp_path):
    """The "Python API" section: train on your own arrays, export, compile, evaluate, learn."""
    section = README.split("## Python API")[1].split("\n## ")[0]
    code = [b for b in blocks("python") if b in section]
    assert len(code) == 1 and len(code[0].strip().splitlines()) <= 16
    out = subprocess.run([sys.executable, "-c", code[0]], cwd=tmp_path, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    acc = {k: float(v) for k, v in re.findall(r"^(PyTorch|chip|learned on chip): ([0-9.]+) %$",
                                              out.stdout, re.M)}
    assert set(acc) == {"PyTorch", "chip", "learned on chip"}, out.stdout
    assert all(a > 60 for a in acc.values()), acc        # two balanced classes: chance is 50 %
    assert (tmp_path / "mine.nir").is_file() and (tmp_path / "learned.nir").is_file()
