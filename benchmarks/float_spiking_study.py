"""Float spiking reference study: trainer settings of ``neurocredit.sim.spiking.train_spiking`` for
the float column of benchmarks/onchip_accuracy.py (same rule, network, input coding and steps as
the chip), and a convergence check of its rate BP column.  Each run prints its final test accuracy
per seed; the rows accumulate in ``benchmarks/results/float_spiking_study.json`` and are written
as the section "trainer · float spiking ..." of ``results/onchip_study_<data>.md``.

    python benchmarks/float_spiking_study.py --data mnist5k --rule dfa --hidden 256 --seeds 0 \\
        "epochs=60" "epochs=60,lr=0.01" "epochs=60,surrogate_slope=5"
    python benchmarks/float_spiking_study.py --data mnist5k --hidden 256 --seeds 0 --bp "epochs=60"

A variant is ``key=value`` pairs over the float trainer settings (base: mappings/spiking_training.toml's ``[<data>]``
table; keys: SpikingTrainConfig's and SpikingConfig's fields, e.g. epochs, lr, batch_size,
surrogate_slope, weight_gain).  The input coding, neuron constants, steps and readout are the
chip's (benchmarks/onchip_accuracy.float_spiking_history) and are not study knobs.  ``--bp``: variants over the rate BP
trainer (neurocredit.sim.train, base: benchmarks/accuracy_config.toml's ``[defaults.<data>]``):
epochs, lr, momentum, batch_size.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
STORE = RESULTS / "float_spiking_study.json"
BP_KEYS = ("epochs", "lr", "momentum", "batch_size")


def parse_variant(text: str) -> dict:
    """``"epochs=60,lr=0.01"`` -> {'epochs': 60, 'lr': 0.01} (numbers as int or float)."""
    out: dict = {}
    for part in filter(None, text.split(",")):
        if "=" not in part:
            raise SystemExit(f"variant part {part!r} is not key=value")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = int(v) if v.strip().lstrip("-").isdigit() else float(v)
        except ValueError:
            out[k.strip()] = v.strip()
    return out


def run_float(rule_name: str, data_name: str, hidden: list[int], seed: int, settings: dict) -> list[float]:
    """Per-epoch test accuracy of the float spiking network under ``settings`` (spiking_training.toml keys)."""
    sys.path.insert(0, str(HERE))
    from onchip_accuracy import float_spiking_history
    return float_spiking_history(rule_name, data_name, hidden, seed, settings)


def run_bp(data_name: str, hidden: list[int], seed: int, over: dict) -> list[float]:
    import tomllib

    from neurocredit.data import load_dataset
    from neurocredit.rules import get_rule
    from neurocredit.sim.train import TrainConfig, train
    with open(HERE / "accuracy_config.toml", "rb") as fh:
        s = {**tomllib.load(fh)["defaults"][data_name], **over}
    unknown = set(over) - set(BP_KEYS)
    if unknown:
        raise SystemExit(f"unknown BP keys {sorted(unknown)}; known: {', '.join(BP_KEYS)}")
    cfg = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], momentum=s["momentum"],
                      activation=s["activation"], seed=seed, progress=False, metrics=False)
    res = train(get_rule("bp"), load_dataset(data_name, seed=seed), hidden, cfg)
    return [h["test_acc"] for h in res.history]


def fmt(accs: list[float]) -> str:
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return f"{100 * statistics.mean(accs):.2f} ± {100 * sd:.2f}"


def section(rows: list[dict], data_name: str) -> str:
    lines = [f"Float spiking reference trainer (H14f, benchmarks/float_spiking_study.py; 1 thread). Base: "
             f"mappings/spiking_training.toml [{data_name}] at the time of the run (column 'base'); variant keys "
             "replace it. Rate BP rows: neurocredit.sim.train, accuracy_config.toml's settings with the keys given.",
             "", "| network | rule | base | variant | seeds | final test % (mean ± sd) | per seed | "
             "best epoch (mean curve) | last 5 epochs (mean) | s per seed |", "|---|---|---|---|---|---:|---|---|---|---:|"]
    for r in rows:
        if r["data"] != data_name:
            continue
        curves = r["curves"]
        mean_curve = [statistics.mean(c[i] for c in curves) for i in range(min(map(len, curves)))]
        best = max(range(len(mean_curve)), key=mean_curve.__getitem__)
        lines.append(f"| {r['net']} | {r['rule']} | {r['base']} | {r['variant'] or 'base'} | "
                     f"{' '.join(map(str, r['seeds']))} | {fmt([c[-1] for c in curves])} | "
                     f"{' '.join(f'{100 * c[-1]:.1f}' for c in curves)} | {best + 1}: {100 * mean_curve[best]:.2f} | "
                     f"{' '.join(f'{100 * a:.1f}' for a in mean_curve[-5:])} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], data_name: str, path: Path) -> None:
    """Test accuracy per epoch (mean over a row's seeds) of every float row of ``data_name``, one
    panel per network, with the rate BP rows as references."""
    from neurocredit.plots import plt, save_figure
    nets = sorted({r["net"] for r in rows if r["data"] == data_name}, key=len)
    fig, axes = plt.subplots(1, len(nets), figsize=(7 * len(nets), 4.8), squeeze=False)
    for ax, net in zip(axes[0], nets):
        for r in (r for r in rows if r["data"] == data_name and r["net"] == net):
            n = min(map(len, r["curves"]))
            mean = [100 * statistics.mean(c[i] for c in r["curves"]) for i in range(n)]
            bp = r["rule"].startswith("bp")
            ax.plot(range(1, n + 1), mean, "--" if bp else "-", lw=1.2,
                    label=f"{r['rule']} {r['variant'] or 'base'} (seeds {' '.join(map(str, r['seeds']))})")
        ax.set_ylim(85, 96)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{data_name} {net}: float spiking trainers (solid), rate BP (dashed)", fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="*", default=[""], help="key=value,... (empty: the base settings)")
    ap.add_argument("--data", default="mnist5k", choices=("digits", "mnist5k"))
    ap.add_argument("--rule", default="dfa")
    ap.add_argument("--hidden", default="256", help="hidden widths, e.g. 256 or 256,256")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--bp", action="store_true", help="variants of the rate BP reference instead")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    from onchip_accuracy import sizes_for
    from onchip_study import write_section

    from neurocredit.sim.spiking import trainer_settings

    hidden = [int(h) for h in args.hidden.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    net = "-".join(map(str, sizes_for(args.data, hidden)))
    rule = "bp (rate)" if args.bp else args.rule
    base = "accuracy_config" if args.bp else ",".join(f"{k}={v}" for k, v in sorted(trainer_settings(args.data).items()))
    print(f"float spiking study: {args.data} {net} {rule}, seeds {seeds}, torch threads {torch.get_num_threads()}; "
          f"base {base}", flush=True)
    for text in args.variants:
        over = parse_variant(text)
        t0 = time.perf_counter()
        curves = []
        for s in seeds:
            t1 = time.perf_counter()
            curve = (run_bp(args.data, hidden, s, over) if args.bp
                     else run_float(args.rule, args.data, hidden, s, {**trainer_settings(args.data), **over}))
            curves.append(curve)
            print(f"    {rule} {text or 'base'} seed {s}: {100 * curve[-1]:.2f} % ({time.perf_counter() - t1:.0f} s)",
                  file=sys.stderr, flush=True)
        row = {"data": args.data, "net": net, "rule": rule, "base": base, "variant": text, "seeds": seeds,
               "curves": curves, "seconds": (time.perf_counter() - t0) / len(seeds)}
        print(f"{net} {rule} [{text or 'base'}] seeds {seeds}: {fmt([c[-1] for c in curves])} "
              f"(per seed {' '.join(f'{100 * c[-1]:.2f}' for c in curves)}; {row['seconds']:.0f} s per seed)", flush=True)
        if args.no_write:
            continue
        from neurocredit.io_utils import atomic_path
        rows = json.loads(STORE.read_text()) if STORE.exists() else []
        key = lambda r: (r["data"], r["net"], r["rule"], r["base"], r["variant"], tuple(r["seeds"]))  # noqa: E731
        rows = [r for r in rows if key(r) != key(row)] + [row]
        with atomic_path(STORE) as tmp:
            Path(tmp).write_text(json.dumps(rows, indent=1))
        write_section(RESULTS / f"onchip_study_{args.data}.md", "trainer · float spiking reference (H14f)",
                      section(rows, args.data) + f"\nPer-epoch curves: float_spiking_study_{args.data}.png\n")
        plot(rows, args.data, RESULTS / f"float_spiking_study_{args.data}.png")


if __name__ == "__main__":
    main()
