"""Kunin et al. 2020, "Two Routes to Scalable Credit Assignment without Weight Symmetry",
reproduced with `neurocredit sweep`: metaparameter sensitivity of weight mirror (wm), Kolen-Pollack
(kp) and information alignment (ia) against backprop on MNIST-5k, 2 and 3 hidden layers, 3 seeds.

    python benchmarks/kunin.py                 # run (or resume) the sweep, then report
    python benchmarks/kunin.py --report-only   # report the trials finished so far

The sweep (benchmarks/kunin_sweep.toml) runs into runs/kunin/; the table, summary.md and the
heatmaps are written to benchmarks/results/kunin/.  Printed per rule and depth: the robustness
(fraction of the rule's 3 x 3 grid — learning rate x decay weight — whose mean accuracy over
seeds is within 1 pp of the rule's best; a configuration that diverged on any seed is outside)
and the gap of the rule's best to BP's best; then the seed paper's two claims checked:
(1) wm is more sensitive to its metaparameters than ia (smaller fraction at every depth);
(2) ia's gap to BP grows with depth.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neurocredit.cli import main as cli_main  # noqa: E402
from neurocredit.commands.sweep_file import load_sweep  # noqa: E402
from neurocredit.commands.sweep_ray import read_ledger  # noqa: E402
from neurocredit.commands.sweep_report import write_report  # noqa: E402

SIZING = """Sizing (2 shared CPU cores, ~45 min wall): MNIST-5k (4,000 train / 1,000 test), tanh,
hidden layers of 256 (784-256-256-10 and 784-256-256-256-10), 8 epochs, batch 32, SGD momentum
0.9, 1 CPU per trial on embedded Ray.  Grid per rule: learning rate {0.003, 0.01, 0.03} x the
rule's decay weight ten times below / at / above the library default (wm: β in ΔB = η_B(amp −
β·B), {0.1, 1, 10}; ia: β in amp + β·decay + null, {0.01, 0.1, 1}; kp: λ on W and B, {0.001,
0.01, 0.1}); BP over the same learning rates; seeds 0, 1, 2 (initialisation and split).  Feedback
learning rates stay at the library defaults (wm, ia: 0.1 η; kp: η)."""


def meta_sensitivity(df) -> list[dict]:
    """Per rule (bp aside) and depth, with the learning rate held fixed: the largest change of
    mean accuracy over the rule's decay weight (max − min over the 3 weights, worst learning
    rate), and at the rule's best learning rate the fraction of decay weights within 1 pp of
    the best.  Diverged configurations count as 0 % here."""
    df = df.assign(meta=df["feedback.decay"].fillna(df["decay"]) if "decay" in df else df["feedback.decay"])
    rows = []
    for (rule, depth), sub in df[df["rule"] != "bp"].groupby(["rule", "depth"], sort=False):
        mean = sub.groupby(["lr", "meta"])["test_acc"].apply(lambda v: v.fillna(0.0).mean()).unstack("meta")
        spread = (mean.max(axis=1) - mean.min(axis=1))
        best_lr = mean.max(axis=1).idxmax()
        at_best = mean.loc[best_lr]
        rows.append({"rule": rule, "depth": depth, "spread": float(spread.max()),
                     "spread_lr": float(spread.idxmax()), "best_lr": float(best_lr),
                     "within": int((at_best.max() - at_best <= 1.0).sum()), "n": len(at_best)})
    return rows


def claims(rob: list[dict], meta: list[dict] | None = None) -> list[str]:
    """The two claims of the seed paper, checked on the robustness rows."""
    get = {(r["rule"], r["depth"]): r for r in rob}
    depths = sorted({r["depth"] for r in rob})
    lines = []
    pairs = [(get[("wm", d)]["fraction"], get[("ia", d)]["fraction"]) for d in depths
             if ("wm", d) in get and ("ia", d) in get]
    if pairs:
        holds = all(w < i for w, i in pairs)
        lines.append("claim 1, wm more sensitive to metaparameters than ia (fraction within 1 pp, "
                     "by depth " + ", ".join(map(str, depths)) + "): wm "
                     + " / ".join(f"{w:.2f}" for w, _ in pairs) + " vs ia "
                     + " / ".join(f"{i:.2f}" for _, i in pairs)
                     + f" -> {'holds' if holds else 'does not hold'} here")
    if meta:
        m = {(r["rule"], r["depth"]): r for r in meta}
        sp = [(m[("wm", d)]["spread"], m[("ia", d)]["spread"]) for d in depths
              if ("wm", d) in m and ("ia", d) in m]
        if sp:
            lines.append("claim 1 at a fixed learning rate (largest change of accuracy over the decay "
                         "weight): wm " + " / ".join(f"{w:.1f}" for w, _ in sp) + " pp vs ia "
                         + " / ".join(f"{i:.1f}" for _, i in sp) + " pp -> "
                         + ("holds" if all(w > i for w, i in sp) else "does not hold") + " here")
    gaps = [get[("ia", d)].get("gap_to_ref") for d in depths if ("ia", d) in get]
    if len(gaps) >= 2 and all(g is not None for g in gaps):
        grows = all(b > a for a, b in zip(gaps, gaps[1:]))
        lines.append("claim 2, ia's gap to BP grows with depth: "
                     + " -> ".join(f"{g:+.2f} pp (depth {d})" for g, d in zip(gaps, depths))
                     + f" -> {'holds' if grows else 'does not hold'} here")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", default=str(ROOT / "benchmarks" / "kunin_sweep.toml"))
    ap.add_argument("--runs", default=str(ROOT / "runs" / "kunin"), help="the sweep's folder")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "kunin"))
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--cpus", type=int, default=None)
    args = ap.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    t0 = time.perf_counter()
    if not args.report_only:
        cmd = ["sweep", args.file, "--out", str(runs), "--quiet"]
        if args.cpus:
            cmd += ["--cpus", str(args.cpus)]
        if (runs / "ledger.jsonl").is_file():
            cmd.append("--resume")
        code = cli_main(cmd)
        if code:
            return code
    sw = load_sweep(args.file)
    ledger = read_ledger(runs.resolve())
    total = len(sw.grid_points())
    out.mkdir(parents=True, exist_ok=True)
    rep = write_report(ledger, sw, out, notes=SIZING)   # first pass: robustness rows
    meta = meta_sensitivity(rep["table"])
    verdicts = claims(rep["robustness"], meta)
    wall = ""
    if (runs / "events.jsonl").is_file():
        import json
        times = [json.loads(line)["time"] for line in (runs / "events.jsonl").read_text().splitlines()]
        wall = f" Wall time from the first trial's start to the last one's finish: {(max(times) - min(times)) / 60:.0f} min."
    notes = (SIZING + f"\n\n{len(ledger)} of {total} trials finished.{wall}\n\n## The seed paper's claims\n\n"
             + "\n".join(f"* {v}" for v in verdicts)
             + "\n\n## Sensitivity to the decay weight at a fixed learning rate\n\n"
             + "\n".join(f"* {r['rule']}, depth {r['depth']}: accuracy changes by up to {r['spread']:.1f} pp "
                         f"over the decay weight (at lr {r['spread_lr']:g}); at its best lr {r['best_lr']:g}, "
                         f"{r['within']}/{r['n']} decay weights within 1 pp" for r in meta))
    write_report(ledger, sw, out, notes=notes)
    print(f"kunin sweep: {len(ledger)}/{total} trials, report in {out}.{wall}")
    for r in rep["robustness"]:
        gap = f", gap to bp {r['gap_to_ref']:+.2f} pp" if r["rule"] != "bp" else ""
        print(f"{r['rule']} depth {r['depth']}: best {r['best']:.2f} ± {r['best_std']:.2f} %, "
              f"{r['within']}/{r['n_configs']} within 1 pp (fraction {r['fraction']:.2f}){gap}")
    for r in meta:
        print(f"{r['rule']} depth {r['depth']}: accuracy changes by up to {r['spread']:.1f} pp over the "
              f"decay weight (at lr {r['spread_lr']:g}); at its best lr {r['best_lr']:g}, "
              f"{r['within']}/{r['n']} decay weights within 1 pp")
    for v in verdicts:
        print(v)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
