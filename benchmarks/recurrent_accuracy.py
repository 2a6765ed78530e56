"""Recurrent networks on row-by-row MNIST-5k: local rules against BPTT on the same network.

Rate RNN 28-H-10 (tanh, recurrent hidden layer, mean-over-time readout): BPTT (autograd),
DFA and sparse DFA (90 % zeros) per time step (Han et al. 2020).  Recurrent spiking network
28-H-10 (recurrent LIF, LI readout, rows injected as currents): surrogate-gradient BPTT and
random e-prop (Bellec et al. 2020).  Same initial weights, optimiser (Adam), learning rate and
epochs for every rule of a model.  Issue 15's targets, on the mean of the seeds:

    rnn:  DFA within 3 pp of BPTT;  sparse DFA within 1 pp of dense DFA
    rsnn: random e-prop within 3 pp of surrogate BPTT

Each finished run is appended to ``--log`` (JSON lines), so runs can be split over processes
(``--models rnn`` and ``--models rsnn``) and the table printed from the log (``--report``);
``--md`` writes the table as markdown.

    .venv/bin/python benchmarks/recurrent_accuracy.py [--data rowmnist5k] [--epochs 12]
        [--hidden 128] [--seeds 0 1 2] [--models rnn rsnn] [--log runs/recurrent.jsonl]
        [--report] [--md benchmarks/results/recurrent.md]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

RULES = {"rnn": ["bptt", "dfa", "sdfa"], "rsnn": ["bptt", "eprop"]}
TARGETS = [("rnn", "dfa", "bptt", 3.0, "DFA within 3 pp of BPTT"),
           ("rnn", "sdfa", "dfa", 1.0, "sparse DFA within 1 pp of dense DFA"),
           ("rsnn", "eprop", "bptt", 3.0, "random e-prop within 3 pp of surrogate BPTT")]


def run(args) -> None:
    from neurocredit.data import load_dataset
    from neurocredit.rules import get_rule
    from neurocredit.sim.recurrent_train import RecurrentTrainConfig, train_recurrent
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        data = load_dataset(args.data, seed=seed)
        for model in args.models:
            for name in RULES[model]:
                cfg = RecurrentTrainConfig(epochs=args.epochs, lr=args.lr, seed=seed,
                                           progress=False)
                t0 = time.perf_counter()
                res = train_recurrent(get_rule(name), data, [args.hidden], model, cfg)
                row = {"data": args.data, "model": model, "rule": name, "seed": seed,
                       "hidden": args.hidden, "epochs": args.epochs, "lr": args.lr,
                       "test_acc": res.final["test_acc"],
                       "curve": [round(h["test_acc"], 4) for h in res.history],
                       "s_per_epoch": (time.perf_counter() - t0) / args.epochs,
                       "threads": torch.get_num_threads()}
                with log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{model:4s} {name:5s} seed {seed}: {100 * row['test_acc']:.2f} % "
                      f"({row['s_per_epoch']:.1f} s/epoch)", flush=True)


def report(args) -> list[str]:
    rows = [json.loads(line) for line in Path(args.log).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["data"] == args.data and r["epochs"] == args.epochs
            and r["hidden"] == args.hidden]
    accs: dict[tuple[str, str], dict[int, float]] = {}
    for r in rows:
        accs.setdefault((r["model"], r["rule"]), {})[r["seed"]] = 100 * r["test_acc"]
    lines = [f"{args.data}, hidden {args.hidden}, {args.epochs} epochs, Adam lr {args.lr}, batch 32, "
             f"torch threads {rows[0]['threads'] if rows else '?'}", "",
             "| model | rule | seeds | mean ± std (%) |", "|---|---|---|---|"]
    means = {}
    for (model, rule), by_seed in sorted(accs.items()):
        vals = [by_seed[s] for s in sorted(by_seed)]
        means[(model, rule)] = statistics.mean(vals)
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        lines.append(f"| {model} | {rule} | {' '.join(f'{v:.2f}' for v in vals)} "
                     f"| {means[(model, rule)]:.2f} ± {std:.2f} |")
    lines.append("")
    for model, rule, ref, tol, what in TARGETS:
        if (model, rule) not in means or (model, ref) not in means:
            lines.append(f"target {model}: {what}: not measured")
            continue
        gap = means[(model, ref)] - means[(model, rule)]
        n = min(len(accs[(model, rule)]), len(accs[(model, ref)]))
        lines.append(f"target {model}: {what}: {rule} {means[(model, rule)]:.2f} vs {ref} "
                     f"{means[(model, ref)]:.2f} -> gap {gap:+.2f} pp ({n} seeds): "
                     f"{'met' if gap <= tol else 'NOT met'}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="rowmnist5k")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["rnn", "rsnn"], choices=list(RULES))
    ap.add_argument("--log", default="runs/recurrent_accuracy.jsonl")
    ap.add_argument("--report", action="store_true", help="print the table from --log only")
    ap.add_argument("--md", default=None, help="also write the table to this markdown file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.report:
        run(args)
    lines = report(args)
    print("\n".join(lines))
    if args.md:   # one section per epoch count in the log (same data and hidden size)
        from neurocredit.io_utils import atomic_path
        rows = [json.loads(x) for x in Path(args.log).read_text().splitlines() if x.strip()]
        sections = []
        for epochs in sorted({r["epochs"] for r in rows if r["data"] == args.data
                              and r["hidden"] == args.hidden}):
            args.epochs = epochs
            sections.append(f"## {epochs} epochs\n\n" + "\n".join(report(args)))
        with atomic_path(Path(args.md)) as tmp:
            Path(tmp).write_text("# Recurrent networks: local rules vs BPTT\n\n"
                                 "Printed by `benchmarks/recurrent_accuracy.py --md` from its run log "
                                 "(one section per run length).\n\n" + "\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
