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
    """Accuracy (or loss) and per-layer alignment curves of one run, as a 3-panel PNG."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    if "test_acc" in history[0]:
        ax.plot(epochs, [100 * h["test_acc"] for h in history], "o-", label="test accuracy")
        ax.set_ylabel("test accuracy (%)")
    else:
        ax.semilogy(epochs, [h["test_loss"] for h in history], "o-", label="test loss")
        ax.set_ylabel("test loss")
    ax2 = ax.twinx()
    ax2.semilogy(epochs, [h["train_loss"] for h in history], "--", color="gray", label="train loss")
    ax2.set_ylabel("train loss")
    ax.set_xlabel("epoch")
    ax.set_title("learning")
    layers = history[0].get("layers", [])
    for key, axis, label in (("angle_WT_B", axes[1], "∠(Wᵀ, B) (deg)"),
                             ("delta_angle", axes[2], "∠(e, δ_BP) (deg)")):
        for i, row in enumerate(layers):
            if key in row:
                axis.plot(epochs, [h["layers"][i][key] for h in history], "o-",
                          label=f"layer {row['layer']}")
        axis.axhline(90, color="gray", lw=0.5, ls=":")
        axis.set_xlabel("epoch")
        axis.set_ylabel(label)
        axis.set_ylim(0, 120)
        axis.legend(fontsize=8)
        axis.set_title(label.split(" (")[0])
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
