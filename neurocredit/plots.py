"""Plots of training runs (matplotlib, Agg backend, written atomically)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neurocredit.io_utils import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` as a PNG atomically (no partial file on failure) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def plot_history(history: list[dict], path: str | Path, title: str = "") -> None:
    """Accuracy (or loss) and per-layer alignment curves of one run, as a 3-panel PNG: every
    curve in a legend, the 90° reference (orthogonal: no alignment) labelled, and the angle
    axes spanning 0..180° so that no curve is clipped."""
    epochs = [h["epoch"] for h in history]
    from matplotlib.ticker import MaxNLocator
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), gridspec_kw={"wspace": 0.45})
    ax = axes[0]
    if "test_acc" in history[0]:
        lines = ax.plot(epochs, [100 * h["test_acc"] for h in history], "o-", label="test accuracy")
        ax.set_ylabel("test accuracy (%)")
    else:
        lines = ax.semilogy(epochs, [h["test_loss"] for h in history], "o-", label="test loss")
        ax.set_ylabel("test loss")
    ax2 = ax.twinx()
    lines += ax2.semilogy(epochs, [h["train_loss"] for h in history], "--", color="gray",
                          label="train loss (right axis)")
    ax2.set_ylabel("train loss")
    ax.legend(lines, [l.get_label() for l in lines], fontsize=8, loc="center right")
    ax.set_xlabel("epoch")
    ax.set_title("learning")
    layers = history[0].get("layers", [])
    for key, axis, label in (("angle_WT_B", axes[1], "∠(Wᵀ, B) (deg)"),
                             ("delta_angle", axes[2], "∠(e, δ_BP) (deg)")):
        values = []
        for i, row in enumerate(layers):
            if key in row:
                ys = [h["layers"][i][key] for h in history]
                values += ys
                axis.plot(epochs, ys, "o-", label=f"layer {row['layer']}")
        axis.axhline(90, color="gray", lw=0.8, ls=":", label="90°: orthogonal (no alignment)")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.set_ylim(-5, 185)          # 0° and 180° curves stay visible
        axis.set_yticks(range(0, 181, 30))
        axis.legend(fontsize=8)
        axis.set_title(label.split(" (")[0] + ("" if values else ": not measured for this rule"))
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.14, top=0.85)
    save_figure(fig, path)
