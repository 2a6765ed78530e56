"""Recurrent networks on row-by-row MNIST-5k: local rules against BPTT on the same network.

Rate RNN 28-H-10 (tanh, leaky recurrent hidden layer, mean-over-time readout): BPTT (autograd),
DFA and sparse DFA (90 % zeros) per time step (Han et al. 2020).  Recurrent spiking network
28-H-10 (recurrent LIF, LI readout, rows injected as currents): surrogate-gradient BPTT and
random e-prop (Bellec et al. 2020).  Every rule of a model trains the same network from the
same initial weights; each rule has its own optimiser settings (learning rate, schedule,
epochs), all read from ``neurocredit/sim/recurrent_defaults.toml`` and printed with the
results (the study behind them: ``benchmarks/results/recurrent_study.md``).  Issue 15's
targets, on the mean of the seeds:

    rnn:  DFA within 3 pp of BPTT;  sparse DFA within 1 pp of dense DFA
    rsnn: random e-prop within 3 pp of surrogate BPTT

Each finished run is appended to ``--log`` (JSON lines) under ``--label``, so runs can be split
over processes (``--models rnn`` and ``--models rsnn``, ``--rules``, ``--seeds``) and the table
printed from the log (``--report``); ``--md`` writes every label's table as markdown.
``--epochs``/``--lr``/``--hidden`` override the defaults for every rule.

    .venv/bin/python benchmarks/recurrent_accuracy.py [--data rowmnist5k] [--seeds 0 1 2]
        [--models rnn rsnn] [--label defaults] [--log runs/recurrent_accuracy.jsonl]
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
SHOWN = ("lr", "schedule", "epochs")   # the per-rule settings printed beside each result


def run(args) -> None:
    from neurocredit.data import load_dataset
    from neurocredit.rules import get_rule
    from neurocredit.sim.recurrent_train import default_config, train_recurrent
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        data = load_dataset(args.data, seed=seed)
        for model in args.models:
            for name in RULES[model]:
                if args.rules and name not in args.rules:
                    continue
                cfg, hidden = default_config(model, name, epochs=args.epochs, lr=args.lr,
                                             hidden=args.hidden, seed=seed, progress=False)
                t0 = time.perf_counter()
                res = train_recurrent(get_rule(name), data, hidden, model, cfg)
                row = {"label": args.label, "data": args.data, "model": model, "rule": name,
                       "seed": seed, "hidden": hidden[0], "epochs": cfg.epochs, "lr": cfg.lr,
                       "schedule": cfg.schedule, "test_acc": res.final["test_acc"],
                       "curve": [round(h["test_acc"], 4) for h in res.history],
                       "s_per_epoch": (time.perf_counter() - t0) / cfg.epochs,
                       "threads": torch.get_num_threads()}
                with log.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{model:4s} {name:5s} seed {seed}: {100 * row['test_acc']:.2f} % "
                      f"(lr {cfg.lr}, {cfg.schedule}, {cfg.epochs} epochs, "
                      f"{row['s_per_epoch']:.1f} s/epoch)", flush=True)


def label_of(row: dict) -> str:
    """A row's section: its ``label``, or (runs before labels) its shared epochs and lr."""
    return row.get("label") or f"{row['epochs']} epochs, Adam lr {row['lr']} for every rule"


def report(rows: list[dict], data: str, label: str) -> list[str]:
    rows = [r for r in rows if r["data"] == data and label_of(r) == label]
    accs: dict[tuple[str, str], dict[int, float]] = {}
    settings: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        accs.setdefault((r["model"], r["rule"]), {})[r["seed"]] = 100 * r["test_acc"]
        settings.setdefault((r["model"], r["rule"]), set()).add(
            f"h{r['hidden']}, lr {r['lr']}, {r.get('schedule', 'none')}, {r['epochs']} ep")
    lines = [f"{data}, {label}: Adam, batch 32, torch threads "
             f"{rows[0]['threads'] if rows else '?'}", "",
             "| model | rule | hidden, lr, schedule, epochs | seeds | mean ± std (%) |",
             "|---|---|---|---|---|"]
    means = {}
    for (model, rule), by_seed in sorted(accs.items()):
        vals = [by_seed[s] for s in sorted(by_seed)]
        means[(model, rule)] = statistics.mean(vals)
        std = statistics.stdev(vals) if len(vals) > 1 else 0.0
        lines.append(f"| {model} | {rule} | {'; '.join(sorted(settings[(model, rule)]))} "
                     f"| {' '.join(f'{v:.2f}' for v in vals)} "
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
    ap.add_argument("--epochs", type=int, default=None, help="every rule (default: per rule)")
    ap.add_argument("--hidden", type=int, default=None, help="every model (default: per model)")
    ap.add_argument("--lr", type=float, default=None, help="every rule (default: per rule)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["rnn", "rsnn"], choices=list(RULES))
    ap.add_argument("--rules", nargs="+", default=None, help="only these rules of the models")
    ap.add_argument("--label", default="defaults", help="section of the log these runs join")
    ap.add_argument("--log", default="runs/recurrent_accuracy.jsonl")
    ap.add_argument("--report", action="store_true", help="print the table from --log only")
    ap.add_argument("--md", default=None, help="also write every label's table to this markdown file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.report:
        run(args)
    rows = [json.loads(x) for x in Path(args.log).read_text().splitlines() if x.strip()]
    print("\n".join(report(rows, args.data, args.label)))
    if args.md:   # one section per label in the log (same data), in order of first appearance
        from neurocredit.io_utils import atomic_path
        labels = list(dict.fromkeys(label_of(r) for r in rows if r["data"] == args.data))
        sections = [f"## {label}\n\n" + "\n".join(report(rows, args.data, label))
                    for label in labels]
        with atomic_path(Path(args.md)) as tmp:
            Path(tmp).write_text("# Recurrent networks: local rules vs BPTT\n\n"
                                 "Printed by `benchmarks/recurrent_accuracy.py --md` from its run log "
                                 "(one section per label; settings per rule from "
                                 "`neurocredit/sim/recurrent_defaults.toml`).\n\n"
                                 + "\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
