"""`neurocredit learn`: a NIR file with its rule attached learns on chip, on the emulator and on
Lava, with the emulator checked against Lava weight for weight (small, fast)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from neurocredit.cli import main


def _export(d, rule, hidden="16", readout="lif"):
    path = d / f"{rule}_{readout}.nir"
    assert main(["export", str(path), "--rule", rule, "--epochs", "0", "--hidden", *hidden.split(","),
                 "--readout", readout]) == 0
    return path


@pytest.mark.parametrize("rule", ["dfa", "kp", "pc_onchip", "wm"])
def test_learn_on_emulator_after_checking_lava(tmp_path, capsys, rule):
    pytest.importorskip("lava.proc.dense.process")
    path = _export(tmp_path, rule)
    out = tmp_path / "w.npz"
    rc = main(["learn", str(path), "--check", "2", "--samples", "40", "--epochs", "1", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "weights identical" in text and "epoch 1: 40 samples streamed (emulator" in text
    assert f"rule {rule}" in text
    hist = json.loads(out.with_suffix(".json").read_text())["history"]
    assert len(hist) == 2 and hist[1]["samples"] == 40
    w = np.load(out)
    assert "fc1" in w.files or len(w.files) >= 2
    if rule != "dfa":                                    # learned feedback logs its angle
        assert "∠(B, Wᵀ)" in text and "dw(B)" in text


def test_learn_on_lava_backend(tmp_path, capsys):
    pytest.importorskip("lava.proc.dense.process")
    path = _export(tmp_path, "dfa")
    assert main(["learn", str(path), "--backend", "lava", "--samples", "3", "--epochs", "1"]) == 0
    assert "3 samples streamed (lava" in capsys.readouterr().out


def test_pal_file_learns_on_both_backends(tmp_path, capsys):
    """PAL goes through the generic compiler like every rule (a graded-rate circuit, graded
    inputs): checked against Lava, streamed on Lava and on the emulator, B turning toward W2ᵀ."""
    pytest.importorskip("lava.proc.dense.process")
    path = _export(tmp_path, "pal", hidden="12")
    assert main(["learn", str(path), "--backend", "lava", "--samples", "3", "--epochs", "1", "--check", "3",
                 "--cost", "0"]) == 0
    text = capsys.readouterr().out
    assert "emulator vs Lava fixed point, 3 samples (60 learning steps): weights identical" in text
    assert "rule pal" in text and "rx" in text and "3 samples streamed (lava" in text
    assert main(["learn", str(path), "--backend", "emulator", "--samples", "150", "--epochs", "2", "--cost", "0"]) == 0
    text = capsys.readouterr().out
    angles = [float(line.split("∠(B, Wᵀ) ")[1].rstrip("°")) for line in text.splitlines() if line.startswith("epoch")]
    assert len(angles) == 3 and angles[-1] < angles[0] - 20      # PAL aligns B from noise (FA keeps it)


def test_learn_takes_a_voltage_readout_and_refuses_files_without_rule(tmp_path, capsys):
    # a LI (voltage) readout compiles to a leaky graded readout with its own error (chip.readout)
    from neurocredit.chip.ir import ERROR
    from neurocredit.chip.readout import is_leaky_readout
    from neurocredit.chip.session import circuit_from_nir
    path = _export(tmp_path, "dfa", readout="li")
    circ = circuit_from_nir(str(path))[1]
    assert is_leaky_readout(circ.population(circ.outputs[0])) and ERROR not in {p.name for p in circ.populations}
    from neurocredit.chip.session import initial_graph
    from neurocredit.nir.export import write
    plain = write(initial_graph([64, 16, 10]), tmp_path / "plain.nir")
    assert main(["learn", str(plain)]) == 2
    assert "carries no learning rule" in capsys.readouterr().err
    assert main(["learn", str(tmp_path / "missing.nir")]) == 2
    assert "no such NIR file" in capsys.readouterr().err


def test_deep_fa_file_streams_with_the_deeper_timing_and_matches_lava(tmp_path, capsys):
    """Two hidden layers: FA's chained pathway (B2 from the output error, B1 from layer 2's),
    24 input steps, blank 4 x hops = 12, target delay 6 (learning.stream_timing), no gate."""
    pytest.importorskip("lava.proc.dense.process")
    path = _export(tmp_path, "fa", hidden="12,8")
    assert main(["learn", str(path), "--check", "1", "--samples", "4", "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    assert "24 steps + 12 blank per sample, target delay 6" in text
    assert "emulator vs Lava fixed point, 1 samples (36 learning steps): weights identical" in text


@pytest.mark.parametrize("rule_file", ["dfa_antihebbian_decay.toml", "sparse_fa_learned.toml"])
def test_rule_files_in_no_module_learn_on_chip_with_emulator_equal_to_lava(tmp_path, capsys, rule_file):
    """Two rules that exist only as TOML files (examples/rules/) export to NIR, compile through
    the one rule compiler with no code change, and learn on chip: >= 50 learning steps on Lava's
    own engine equal the emulator weight for weight (DFA + anti-Hebbian x0*y1*w + decay u<d>*w;
    sparse FA with error-driven learned B on TransposedLearningDense)."""
    pytest.importorskip("lava.proc.dense.process")
    from pathlib import Path
    rule = str(Path(__file__).resolve().parents[1] / "examples" / "rules" / rule_file)
    path = tmp_path / "net.nir"
    assert main(["export", str(path), "--rule", rule, "--epochs", "0", "--hidden", "12", "8", "--readout", "lif"]) == 0
    capsys.readouterr()
    assert main(["learn", str(path), "--check", "3", "--samples", "30", "--epochs", "1"]) == 0
    text = capsys.readouterr().out
    steps = int(text.split("samples (")[1].split(" learning steps")[0])
    assert steps >= 50 and "weights identical" in text, text
    assert f"rule {Path(rule_file).stem}" in text and "epoch 1: 30 samples streamed (emulator" in text
