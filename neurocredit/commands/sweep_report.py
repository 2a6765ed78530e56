"""The report of a sweep: one table, DIR/summary.md and the plots.

* ``results.csv`` (and ``results.parquet`` where pyarrow is installed): one row per finished
  trial, every axis (hidden sizes as "256-256", plus ``depth`` = number of hidden layers) and
  every final metric (test accuracy in %, loss, ∠(Wᵀ, B) per layer and their mean).
* ``summary.md``: mean ± std over seeds per configuration; per rule (and per ``[report] by``
  group) the *robustness* — the fraction of configurations whose mean accuracy lies within
  ``tolerance_pp`` percentage points of that rule's best (the metaparameter-sensitivity measure
  of Kunin et al. 2020) — and the gap of each rule's best to the ``reference`` rule's best.
* ``heatmap_acc_<rule>[_<group>].png`` / ``heatmap_angle_...``: mean accuracy and mean
  ∠(Wᵀ, B) over the two ``[report] heatmap`` axes; ``distributions.png``: per-rule accuracy
  over every trial.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from neurocredit.commands.sweep_file import SweepFile
from neurocredit.io_utils import atomic_path

ID_COLUMNS = ("key", "rule", "seed")


def _cell(v: Any) -> Any:
    if isinstance(v, list):
        return "-".join(map(str, v))
    return v


def table(ledger: dict[str, dict], sw: SweepFile):
    """The sweep's table (pandas DataFrame), one row per finished trial, in ledger order."""
    import pandas as pd
    rows = []
    for key, row in ledger.items():
        cfg, m = row["config"], row["metrics"]
        r = {"key": key, **{k: _cell(v) for k, v in cfg.items()}}
        r["depth"] = len(cfg["hidden"])
        for k, v in m.items():
            r[k] = v
        if isinstance(r.get("test_acc"), (int, float)):
            r["test_acc"] = 100.0 * r["test_acc"]        # in %
        rows.append(r)
    df = pd.DataFrame(rows)
    axes = [a for a in sw.varied() if a in df.columns]
    lead = ["key", "rule", *[a for a in axes if a != "rule"], "depth"]
    rest = [c for c in df.columns if c not in lead]
    return df[list(dict.fromkeys(lead + rest))]


def config_columns(df, sw: SweepFile) -> list[str]:
    """Columns that name a configuration: the varied axes except the seed, and ``depth``."""
    cols = ["rule"] + [a for a in sw.varied() if a not in ("seed", "rule") and a in df.columns]
    if "hidden" in cols and "depth" not in cols:
        cols.append("depth")
    return cols


def per_config(df, sw: SweepFile):
    """Mean ± std over seeds per configuration (accuracy in %, diverged runs count as NaN)."""
    cols = config_columns(df, sw)
    metrics = [c for c in ("test_acc", "angle_mean", "test_loss") if c in df.columns]
    g = df.groupby(cols, dropna=False, sort=False) if cols else df.assign(_all=0).groupby("_all")
    agg = g[metrics].agg(["mean", "std", "count"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    agg["diverged"] = g["status"].apply(lambda s: int((s != "ok").sum())).values if "status" in df else 0
    if "test_acc_mean" in agg:                   # a configuration that diverged on any seed has no mean
        agg.loc[agg["diverged"] > 0, "test_acc_mean"] = float("nan")
    return agg.reset_index()


def robustness(cfgs, sw: SweepFile) -> list[dict]:
    """Per rule (and ``by`` group): best mean accuracy, the fraction of configurations within
    ``tolerance_pp`` of it (diverged configurations count as outside), and the gap to the
    reference rule's best in the same group."""
    tol = float(sw.report.get("tolerance_pp", 1.0))
    by = [b for b in sw.report.get("by", []) if b in cfgs.columns]
    ref = sw.report.get("reference")
    out = []
    keys = ["rule", *by]
    for group, sub in cfgs.groupby(keys, sort=False):
        group = group if isinstance(group, tuple) else (group,)
        acc = sub["test_acc_mean"]
        best = float(acc.max())
        within = int(((best - acc) <= tol).sum())       # NaN compares False: outside
        row = {**dict(zip(keys, group)), "best": best, "n_configs": len(sub), "within": within,
               "fraction": within / len(sub)}
        best_cfg = sub.loc[acc.idxmax()] if acc.notna().any() else None
        row["best_std"] = float(best_cfg["test_acc_std"]) if best_cfg is not None else math.nan
        out.append(row)
    if ref:
        refs = {tuple(r[b] for b in by): r["best"] for r in out if r["rule"] == ref}
        for r in out:
            r["gap_to_ref"] = refs.get(tuple(r[b] for b in by), math.nan) - r["best"]
    return out


def _fmt(mean: float, std: float, digits: int = 2) -> str:
    if mean != mean:
        return "diverged"
    return f"{mean:.{digits}f} ± {0.0 if std != std else std:.{digits}f}"


def summary_text(df, cfgs, rob: list[dict], sw: SweepFile, notes: str = "") -> str:
    cols = config_columns(df, sw)
    tol = float(sw.report.get("tolerance_pp", 1.0))
    ref = sw.report.get("reference")
    lines = [f"# Sweep `{sw.name}` ({sw.path.name})", "",
             f"{len(df)} finished trials, {len(cfgs)} configurations, search: {sw.search}; "
             f"fixed: {', '.join(f'{k} = {_cell(v)}' for k, v in sw.fixed.items()) or 'nothing'}.", ""]
    if notes:
        lines += [notes.strip(), ""]
    if rob:
        by = [b for b in sw.report.get("by", []) if b in cfgs.columns]
        lines += [f"## Robustness: fraction of each rule's grid within {tol:g} pp of its best", "",
                  "| rule | " + " | ".join(by) + (" | " if by else "") + "best acc (%) | within | fraction"
                  + (f" | gap to {ref} (pp)" if ref else "") + " |",
                  "|---|" + "---|" * len(by) + "---|---|---|" + ("---|" if ref else "")]
        for r in rob:
            lines.append(f"| {r['rule']} | " + " | ".join(str(r[b]) for b in by) + (" | " if by else "")
                         + f"{_fmt(r['best'], r['best_std'])} | {r['within']}/{r['n_configs']} | "
                         f"{r['fraction']:.2f}" + (f" | {r['gap_to_ref']:+.2f}" if ref else "") + " |")
        lines.append("")
    lines += ["## Mean ± std over seeds per configuration", "",
              "| " + " | ".join(cols) + " | seeds | test acc (%) | ∠(Wᵀ,B) mean (°) | diverged |",
              "|" + "---|" * (len(cols) + 4)]
    for _, r in cfgs.iterrows():
        angle = _fmt(r["angle_mean_mean"], r["angle_mean_std"], 1) if "angle_mean_mean" in r and r["angle_mean_mean"] == r["angle_mean_mean"] else "—"
        acc = _fmt(r["test_acc_mean"], r["test_acc_std"]) if "test_acc_mean" in r else "—"
        lines.append("| " + " | ".join(("—" if r[c] != r[c] else f"{r[c]:g}") if isinstance(r[c], float)
                                       else str(r[c]) for c in cols)
                     + f" | {int(r['test_acc_count']) if 'test_acc_count' in r else ''} | {acc} | {angle} | {int(r['diverged'])} |")
    return "\n".join(lines) + "\n"


def _heat_axes(sw: SweepFile, sub) -> list[str]:
    """The ``[report] heatmap`` axes, or else the first two axes this rule's trials vary (seed,
    rule, hidden sizes and ``by`` axes aside); one axis gives a one-row heatmap."""
    hm = sw.report.get("heatmap")
    if hm:
        return list(hm)
    skip = {"seed", "rule", "hidden", *sw.report.get("by", [])}
    return [a for a in sw.varied() if a not in skip and a in sub.columns
            and 1 < sub[a].dropna().nunique() <= 12][:2]       # sampled real axes: no grid


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def plots(df, sw: SweepFile, out: Path) -> list[Path]:
    """Per-rule heatmaps (accuracy, mean ∠(Wᵀ,B)) and per-rule accuracy distributions."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    by = [b for b in sw.report.get("by", []) if b in df.columns]
    for group, sub in df.groupby(["rule", *by], sort=False):
        axes = _heat_axes(sw, sub)
        if not axes:
            continue
        sub = sub.assign(_row="")
        x, y = (axes + ["_row"])[:2]
        group = group if isinstance(group, tuple) else (group,)
        tag = "_".join(f"{v}" for v in group)
        label = group[0] + "".join(f", {b} {v}" for b, v in zip(by, group[1:]))
        for metric, title, cmap in (("test_acc", "test accuracy (%)", "viridis"),
                                    ("angle_mean", "mean ∠(Wᵀ,B) (°)", "magma_r")):
            if metric not in sub.columns or sub[metric].notna().sum() == 0:
                continue
            piv = sub.pivot_table(index=y, columns=x, values=metric, dropna=False,
                                 aggfunc=lambda v: v.mean(skipna=False))
            if piv.shape[0] < 1 or piv.shape[1] < 1:
                continue
            fig, ax = plt.subplots(figsize=(1.3 + 1.1 * piv.shape[1], 1.0 + 0.8 * piv.shape[0]))
            im = ax.imshow(piv.values.astype(float), cmap=cmap, aspect="auto", origin="lower")
            ax.set_xticks(range(piv.shape[1]), [f"{v:g}" if isinstance(v, float) else str(v) for v in piv.columns])
            ax.set_yticks(range(piv.shape[0]), [f"{v:g}" if isinstance(v, float) else str(v) for v in piv.index])
            ax.set_xlabel(x)
            ax.set_ylabel("" if y == "_row" else y)
            vals = piv.values.astype(float)
            lo, hi = (np.nanmin(vals), np.nanmax(vals)) if np.isfinite(vals).any() else (0.0, 1.0)
            for (i, j), v in np.ndenumerate(vals):
                bright = v == v and hi > lo and (v - lo) / (hi - lo) > 0.6
                ax.text(j, i, "div." if v != v else f"{v:.1f}", ha="center", va="center",
                        fontsize=8, color="k" if bright != (cmap == "magma_r") else "w")
            ax.set_title(f"{label}: {title}\n(mean over seeds)", fontsize=9)
            fig.colorbar(im, ax=ax, shrink=0.8)
            p = out / f"heatmap_{'acc' if metric == 'test_acc' else 'angle'}_{tag}.png"
            _save(fig, p)
            plt.close(fig)
            written.append(p)
    if "test_acc" in df.columns:
        groups = list(df.groupby(["rule", *by], sort=False))
        fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(groups) + 1), 3.5))
        data = [g["test_acc"].dropna().values for _, g in groups]
        names = [str(k[0] if isinstance(k, tuple) else k)
                 + "".join(f"\n{b} {v}" for b, v in zip(by, k[1:] if isinstance(k, tuple) else ()))
                 for k, _ in groups]
        ax.boxplot([d if len(d) else [np.nan] for d in data], showfliers=False)
        for i, d in enumerate(data, 1):
            ax.scatter(np.full(len(d), i) + np.random.default_rng(i).uniform(-0.15, 0.15, len(d)),
                       d, s=8, alpha=0.6)
        ax.set_xticks(range(1, len(groups) + 1), names, fontsize=8)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{sw.name}: accuracy over every trial, per rule" + (f" and {', '.join(by)}" if by else ""),
                     fontsize=9)
        p = out / "distributions.png"
        _save(fig, p)
        plt.close(fig)
        written.append(p)
    return written


def write_report(ledger: dict[str, dict], sw: SweepFile, out: Path, notes: str = "") -> dict[str, Any]:
    """Table, summary.md and plots of the finished trials in ``ledger``; returns what it wrote."""
    if not ledger:
        raise ValueError(f"{out}: no finished trials to report")
    df = table(ledger, sw)
    with atomic_path(out / "results.csv") as tmp:
        df.to_csv(tmp, index=False)
    written = [out / "results.csv"]
    try:
        import pyarrow  # noqa: F401
        with atomic_path(out / "results.parquet") as tmp:
            df.to_parquet(tmp, index=False)
        written.append(out / "results.parquet")
    except ImportError:
        pass
    cfgs = per_config(df, sw)
    rob = robustness(cfgs, sw) if "test_acc_mean" in cfgs.columns else []
    text = summary_text(df, cfgs, rob, sw, notes)
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(text)
    written.append(out / "summary.md")
    written += plots(df, sw, out)
    return {"table": df, "configs": cfgs, "robustness": rob, "written": written}
