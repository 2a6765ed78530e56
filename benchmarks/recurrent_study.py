"""One study trial of a recurrent model on a temporal data set (a rule, a config), logged as a
JSON line, so that the choices behind ``recurrent_accuracy.py``'s defaults can be measured one
at a time (``benchmarks/results/recurrent_study.md``).

    .venv/bin/python benchmarks/recurrent_study.py --model rnn --rule dfa --hidden 256 \
        --set lr=1e-3 schedule=cosine --epochs 20 --seed 0 --tag h256 [--log runs/recurrent_study.jsonl]

Unset fields come from ``neurocredit/sim/recurrent_defaults.toml`` (the model's table and the
rule's own optimiser table); ``--set`` overrides them.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch


def parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def report(rows: list[dict]) -> list[str]:
    """Every trial, grouped by data, model and rule: the settings set on top of the model's
    defaults (``--set``) and the effective lr, schedule and (rate RNN) leak, hidden size, epochs,
    seed, final and best test accuracy per epoch."""
    lines = ["| data | model | rule | hidden | epochs | seed | settings (--set) | final (%) "
             "| best epoch (%) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["data"], r["model"], r["rule"], r["hidden"],
                                         r["epochs"], json.dumps(r["set"], sort_keys=True),
                                         r["seed"])):
        shown = dict(r["set"])
        for key in ("lr", "schedule") + (("leak",) if r["model"] == "rnn" else ()):
            if key in r.get("config", {}):   # the effective value, also when it came from the file
                shown[key] = r["config"][key]
        for key, usual in (("beta2", 0.999), ("reset_trace", False)):   # shown when not the usual
            if r.get("config", {}).get(key, usual) != usual:
                shown[key] = r["config"][key]
        settings = ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "defaults"
        if r.get("rule_param"):
            settings += "; rule " + ", ".join(f"{k}={v}" for k, v in r["rule_param"].items())
        lines.append(f"| {r['data']} | {r['model']} | {r['rule']} | {r['hidden']} | {r['epochs']} "
                     f"| {r['seed']} | {settings} | {100 * r['test_acc']:.2f} "
                     f"| {100 * r['best']:.2f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="rowmnist5k")
    ap.add_argument("--model", default="rnn", choices=["rnn", "rsnn"])
    ap.add_argument("--rule", default="dfa")
    ap.add_argument("--hidden", type=int, default=None, help="default: recurrent_defaults.toml")
    ap.add_argument("--epochs", type=int, default=None, help="default: recurrent_defaults.toml")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", nargs="*", default=[], help="RecurrentTrainConfig fields, key=value")
    ap.add_argument("--rule-param", nargs="*", default=[], help="rule constants, key=value")
    ap.add_argument("--tag", default="")
    ap.add_argument("--log", default="runs/recurrent_study.jsonl")
    ap.add_argument("--report", action="store_true", help="print every trial in --log as a table")
    ap.add_argument("--md", default=None, help="with --report: write the table to this file")
    # (trials logged before the defaults file existed carry lr and schedule in their --set)
    args = ap.parse_args()
    if args.report:
        lines = report([json.loads(x) for x in Path(args.log).read_text().splitlines() if x.strip()])
        print("\n".join(lines))
        if args.md:
            from neurocredit.io_utils import atomic_path
            with atomic_path(Path(args.md)) as tmp:
                Path(tmp).write_text("\n".join(lines) + "\n")
        return
    torch.set_num_threads(1)
    from neurocredit.data import load_dataset
    from neurocredit.rules import get_rule
    from neurocredit.sim.recurrent_train import default_config, train_recurrent
    over = dict(kv.split("=", 1) for kv in args.set)
    over = {k: parse_value(v) for k, v in over.items()}
    cfg, hidden = default_config(args.model, args.rule, hidden=args.hidden, epochs=args.epochs,
                                 seed=args.seed, progress=False, **over)
    args.hidden, args.epochs = hidden[0], cfg.epochs
    rule = get_rule(args.rule)
    rp = {k: parse_value(v) for k, v in (kv.split("=", 1) for kv in args.rule_param)}
    if rp:
        rule = rule.with_params(**rp)
    data = load_dataset(args.data, seed=args.seed)
    t0 = time.perf_counter()
    res = train_recurrent(rule, data, hidden, args.model, cfg)
    curve = [round(h["test_acc"], 4) for h in res.history]
    row = {"tag": args.tag, "data": args.data, "model": args.model, "rule": args.rule,
           "hidden": args.hidden, "epochs": args.epochs, "seed": args.seed, "set": over,
           "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "progress"},
           "rule_param": rp, "test_acc": curve[-1], "best": max(curve), "curve": curve,
           "s_per_epoch": round((time.perf_counter() - t0) / args.epochs, 2)}
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{args.tag} {args.model} {args.rule} h{args.hidden} e{args.epochs} s{args.seed} {over} {rp}: "
          f"{100 * curve[-1]:.2f} % (best {100 * max(curve):.2f}, {row['s_per_epoch']} s/epoch)",
          flush=True)


if __name__ == "__main__":
    main()
