"""`neurocredit sweep`: rules × seeds × hyper-parameters on Ray Tune, from one TOML file.

    neurocredit sweep examples/sweep_small.toml --out runs/sweep           # embedded Ray
    neurocredit sweep examples/sweep_small.toml --out runs/sweep --resume  # finish what is left
    neurocredit sweep big.toml --out /shared/sweep --address HOST:6379     # an existing cluster

The file format is in docs/sweeps.md (:mod:`neurocredit.commands.sweep_file`); trials run
:mod:`neurocredit.commands.sweep_trial` on Ray Tune (:mod:`neurocredit.commands.sweep_ray`);
the table, summary.md and plots come from :mod:`neurocredit.commands.sweep_report`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from neurocredit.errors import UserError


def run(args: argparse.Namespace) -> int:
    from neurocredit.commands.sweep_file import load_sweep
    from neurocredit.commands.sweep_ray import read_ledger, run_sweep
    from neurocredit.commands.sweep_report import write_report

    sw = load_sweep(args.file)
    check_trials(sw)
    out = Path(args.out)
    if args.max_trials is not None and args.max_trials < 1:
        raise UserError("--max-trials must be positive")
    if args.cpus is not None and args.cpus < 1:
        raise UserError("--cpus must be positive")
    if not args.report_only:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("neurocredit sweep needs Ray Tune: pip install 'ray[tune]'") from None
        n = len(sw.grid_points()) if sw.search == "grid" else sw.samples
        where = f"Ray cluster at {args.address}" if args.address else "embedded Ray"
        print(f"sweep {sw.name}: {n} trials ({sw.search} search) on {where}, "
              f"{sw.cpus_per_trial:g} CPU per trial -> {out}", flush=True)
        res = run_sweep(sw, out, address=args.address, cpus=args.cpus, resume=args.resume,
                        max_trials=args.max_trials, progress=not args.quiet)
        print(f"ran {res.ran} trials now, {res.skipped} finished before"
              + (f", {res.errors} failed (see {out / 'ray'})" if res.errors else ""), flush=True)
    ledger = read_ledger(out.resolve())
    rep = write_report(ledger, sw, out)
    for r in rep["robustness"]:
        extra = "".join(f", {k} {r[k]}" for k in sw.report.get("by", []) if k in r)
        gap = f", gap to {sw.report['reference']} {r['gap_to_ref']:+.2f} pp" if "gap_to_ref" in r else ""
        print(f"{r['rule']}{extra}: best {r['best']:.2f} %, {r['within']}/{r['n_configs']} "
              f"configurations within {sw.report.get('tolerance_pp', 1.0):g} pp of it "
              f"(fraction {r['fraction']:.2f}){gap}")
    print(f"wrote {out / 'results.csv'}, {out / 'summary.md'} and {len(rep['written']) - 2} more files "
          f"({len(ledger)} trials)")
    return 0


def check_trials(sw) -> None:
    """Before Ray starts: every rule resolves (name or file), takes its trial's metaparameters,
    and every data set exists; else one UserError line naming the file."""
    from neurocredit.commands.sweep_file import complete
    from neurocredit.commands.sweep_trial import configure_rule, resolve
    from neurocredit.data import DATASETS

    if sw.search == "grid":
        points = sw.grid_points()
    else:                            # every listed rule and data set, with the fixed keys
        def choices(key: str) -> list:
            vals = sw.axes.get(key)
            return vals if isinstance(vals, list) else [sw.fixed.get(key, "digits")]
        points = [complete({**sw.fixed, "rule": r, "data": d})
                  for r in choices("rule") for d in choices("data")]
    seen: set = set()
    for cfg in points:
        sig = (cfg["rule"], cfg["data"], *sorted((k, str(v)) for k, v in cfg.items()
                                                 if k.startswith(("feedback.", "param.")) or k.endswith("decay")))
        if sig in seen:
            continue
        seen.add(sig)
        if cfg["data"] not in DATASETS:
            raise UserError(f"{sw.path}: unknown data set '{cfg['data']}'; known: {', '.join(DATASETS)}")
        try:
            configure_rule(resolve(cfg["rule"]), cfg)
        except (ValueError, KeyError, OSError) as exc:
            msg = str(exc.args[0] if exc.args else exc).splitlines()[0]
            raise UserError(f"{sw.path}: rule '{cfg['rule']}': {msg}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="sweep rules x seeds x hyper-parameters on Ray Tune (one TOML file)")
    p.add_argument("file", help="the sweep file (TOML; see docs/sweeps.md)")
    p.add_argument("--out", default="runs/sweep", help="output folder (table, summary.md, plots, trials/)")
    p.add_argument("--address", default=None,
                   help="address of an existing Ray cluster (default: start Ray embedded here)")
    p.add_argument("--cpus", type=int, default=None, help="CPUs for embedded Ray (default: all)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in --out: finished trials (ledger.jsonl) are not run again")
    p.add_argument("--max-trials", type=int, default=None,
                   help="run at most this many new trials now (the rest stay for --resume)")
    p.add_argument("--report-only", action="store_true", help="only rebuild the table, summary and plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
