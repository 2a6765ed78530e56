"""Accuracy and alignment of every rule: digits (5 seeds) and MNIST-5k (3 seeds).

Prints a table of mean ± std test accuracy and the final per-layer ∠(Wᵀ, B), and writes
it as markdown (benchmarks/results/accuracy.md).  Settings: benchmarks/accuracy_config.toml.

    python benchmarks/accuracy.py                       # everything
    python benchmarks/accuracy.py --data digits --rules fa,dfa --seeds 2
"""
from __future__ import annotations

import argparse
import statistics
import time
import tomllib
from pathlib import Path

import torch

from neurocredit.data import load_dataset
from neurocredit.io_utils import atomic_path
from neurocredit.rules import RULES, get_rule
from neurocredit.sim.train import TrainConfig, train

HERE = Path(__file__).parent


def settings(config: dict, data: str, rule: str) -> dict:
    """Defaults for ``data`` overridden by [rules.<rule>] and [rules.<rule>.<data>]."""
    s = dict(config["defaults"][data])
    over = config.get("rules", {}).get(rule, {})
    s.update({k: v for k, v in over.items() if not isinstance(v, dict)})
    s.update(over.get(data, {}))
    return s


def run_rule(rule_name: str, data_name: str, s: dict, seeds: int, device: str) -> dict:
    rule = get_rule(rule_name)
    accs, angles, t0 = [], [], time.perf_counter()
    for seed in range(seeds):
        data = load_dataset(data_name, seed=seed)
        cfg = TrainConfig(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
                          momentum=s["momentum"], activation=s["activation"], seed=seed,
                          device=device, progress=False, metrics=False)
        result = train(rule, data, list(s["hidden"]), cfg)
        from neurocredit.sim.train import measure
        layers = measure(result.net, data.to(device), cfg)
        accs.append(100 * result.final["test_acc"])
        angles.append([r["angle_WT_B"] for r in layers if "angle_WT_B" in r])
    mean_angles = [statistics.mean(a[i] for a in angles) for i in range(len(angles[0]))] if angles[0] else []
    return {"rule": rule_name, "data": data_name, "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "accs": accs,
            "angles": mean_angles, "seconds": time.perf_counter() - t0,
            "local": rule.local, "net": "-".join(map(str, s["hidden"]))}


def fmt_row(r: dict) -> str:
    ang = ", ".join(f"{a:.1f}°" for a in r["angles"]) or "-"
    return (f"| {r['data']} | {r['rule']} | {'yes' if r['local'] else 'no'} | {r['net']} | "
            f"{r['mean']:.2f} ± {r['std']:.2f} | {ang} | {len(r['accs'])} | {r['seconds']:.0f} s |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="digits,mnist5k")
    p.add_argument("--rules", default=",".join(RULES))
    p.add_argument("--seeds", type=int, default=0, help="override the configured seed count")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--config", default=str(HERE / "accuracy_config.toml"))
    p.add_argument("--out", default=str(HERE / "results" / "accuracy.md"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    config = tomllib.loads(Path(args.config).read_text())
    header = ("| data | rule | local | hidden | test acc % (mean ± std) | final ∠(Wᵀ,B) per hidden layer "
              "| seeds | time |\n|---|---|---|---|---|---|---|---|")
    print(f"torch threads: {torch.get_num_threads()}, device: {args.device}")
    print(header)
    rows = []
    for data_name in args.data.split(","):
        for rule_name in args.rules.split(","):
            s = settings(config, data_name, rule_name)
            seeds = args.seeds or s["seeds"]
            r = run_rule(rule_name, data_name, s, seeds, args.device)
            rows.append(r)
            print(fmt_row(r), flush=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text("# Accuracy benchmark\n\n" + header + "\n" + "\n".join(map(fmt_row, rows)) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
