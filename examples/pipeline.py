"""The whole pipeline on the command line, one network from PyTorch to on-chip learning:

    neurocredit train --spiking      a spiking network learns with a local rule (PyTorch)
    neurocredit export --from RUN    -> NIR with the rule and its feedback matrices attached
    neurocredit compile              -> the fixed-point chip circuit (resources, quantisation)
    neurocredit learn --out L.nir    learning continues on the chip (bit-exact emulator or Lava)
    neurocredit run L.nir --data     the learned network classifies the test set

with the test accuracy printed at each stage, and a plot of the five accuracies
(runs/pipeline/pipeline.png).  Run as ``python examples/pipeline.py`` (about a minute);
``--epochs``, ``--samples`` and ``--backend lava`` change the size and the chip backend.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

from neurocredit.cli import main as neurocredit


def step(title: str, argv: list[str]) -> str:
    """Run one `neurocredit` command, echo it and its output; return the output."""
    print(f"\n== {title}\n$ neurocredit {' '.join(argv)}", flush=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = neurocredit(argv)
    sys.stdout.write(buf.getvalue())
    if rc != 0:
        raise SystemExit(f"`neurocredit {' '.join(argv)}` failed (exit {rc})")
    return buf.getvalue()


def accuracy(text: str) -> float:
    """The last accuracy (in %) a command printed."""
    found = re.findall(r"accuracy ([0-9.]+) %", text)
    if not found:
        raise SystemExit("no accuracy in the output above")
    return float(found[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--rule", default="dfa", help="a local rule the chip runs (see `neurocredit rules`)")
    ap.add_argument("--hidden", type=int, default=64, help="hidden layer size")
    ap.add_argument("--epochs", type=int, default=5, help="PyTorch training epochs")
    ap.add_argument("--samples", type=int, default=400, help="training samples streamed on the chip")
    ap.add_argument("--learn-epochs", type=int, default=1, help="on-chip learning epochs")
    ap.add_argument("--backend", default="emulator", choices=["emulator", "lava"], help="chip backend")
    ap.add_argument("--out", default="runs/pipeline", help="output folder")
    args = ap.parse_args()
    out = Path(args.out)
    run, nir_file, learned = out / "run", out / "model.nir", out / "learned.nir"
    acc = {}
    text = step("1. train a spiking network with a local rule (PyTorch)",
                ["train", "--spiking", "--readout", "lif", "--rule", args.rule, "--hidden", str(args.hidden),
                 "--epochs", str(args.epochs), "--out", str(run)])
    acc["train (PyTorch float)"] = accuracy(text)
    step("2. export the saved run as NIR with its rule", ["export", str(nir_file), "--from", str(run)])
    text = step("   the NIR file, simulated in float (NIR semantics)",
                ["run", str(nir_file), "--data", "digits", "--backend", "torch", "--steps", "20"])
    acc["export (NIR, torch float)"] = accuracy(text)
    step("3. compile it for Loihi 2 in fixed point", ["compile", str(nir_file), "--fixed-point"])
    text = step("   the compiled chip circuit (bit-exact emulator)",
                ["run", str(nir_file), "--data", "digits", "--backend", "emulator", "--steps", "16"])
    acc["compile (chip, fixed point)"] = accuracy(text)
    text = step("4. learn on the chip and write the learned network",
                ["learn", str(nir_file), "--backend", args.backend, "--data", "digits", "--epochs",
                 str(args.learn_epochs), "--samples", str(args.samples), "--out", str(learned)])
    acc["learn (on chip)"] = accuracy(text)
    text = step("5. run the learned NIR file on the test set",
                ["run", str(learned), "--data", "digits", "--backend", args.backend, "--steps", "16"])
    acc["run learned NIR"] = accuracy(text)

    print("\naccuracy at each stage (digits test set):")
    for stage, a in acc.items():
        print(f"  {stage:<30s} {a:6.2f} %")
    from neurocredit.plots import plt, save_figure
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.bar(range(len(acc)), list(acc.values()), color="tab:blue", label="test accuracy")
    ax.axhline(10, color="gray", ls=":", label="chance (10 %)")
    ax.set_xticks(range(len(acc)), [s.replace(" (", "\n(") for s in acc], fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{args.rule}, 64-{args.hidden}-10 spiking, digits: one network through the pipeline")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, out / "pipeline.png")
    print(f"wrote {out / 'pipeline.png'}")


if __name__ == "__main__":
    main()
