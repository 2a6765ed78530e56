"""e-prop on a recurrent spiking network: accuracy and the learning signal's alignment with BPTT.

A recurrent LIF network (snnTorch RLeaky form, LI readout) reads digits row by row
(``seqdigits``: 8 steps × 8 inputs, injected as currents) and learns with random e-prop
(fixed random feedback B, local) and symmetric e-prop (B = W_outᵀ, non-local), beside the
surrogate-gradient BPTT reference, each with its own optimiser settings from
``neurocredit/sim/recurrent_defaults.toml`` (the network is the same for all).  After every
epoch, on a fixed batch of training samples:

    signal alignment  cos( P̃_j[t], ∂E/∂z_j[t] )  e-prop's learning signal (κ-filtered, as
                      applied) against BPTT's total derivative of the loss w.r.t. the spikes
    update alignment  cos( ΔW_e-prop, −∇_W E_BPTT ) for the input and the recurrent weights

Writes ``recurrent_eprop.png`` (accuracy, and alignment as an angle per epoch) and
``recurrent_eprop.json`` into ``--out``.

    .venv/bin/python examples/recurrent_eprop.py [--epochs 8] [--hidden 64] [--data seqdigits]
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch


def angle(cos: float) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="seqdigits", help="seqdigits | rowmnist5k | spikepattern")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--lr", type=float, default=None,
                    help="every rule (default: each rule's own, neurocredit/sim/recurrent_defaults.toml)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", nargs="+", default=["eprop", "eprop_sym", "bptt"])
    ap.add_argument("--out", default="runs/recurrent_eprop")
    args = ap.parse_args()
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurocredit.data import load_dataset
    from neurocredit.io_utils import atomic_path, write_json
    from neurocredit.rules import get_rule
    from neurocredit.sim.recurrent_spiking import learning_signal_alignment
    from neurocredit.sim.recurrent_train import default_config, train_recurrent

    data = load_dataset(args.data, seed=args.seed)
    xb, yb = data.x_train[:256], data.y_train[:256]
    out = Path(args.out)
    runs = {}
    for name in args.rules:
        rule = get_rule(name)

        def on_epoch(epoch, net):
            if rule.dynamics == "autograd":
                return {}
            return learning_signal_alignment(net, xb, yb)

        cfg, hidden = default_config("rsnn", name, epochs=args.epochs, lr=args.lr,
                                     hidden=args.hidden, seed=args.seed)
        res = train_recurrent(rule, data, hidden, "rsnn", cfg, on_epoch=on_epoch)
        runs[name] = res.history
        last = res.final
        extra = (f"; learning signal ∠ BPTT {angle(last['signal_cos_1']):.1f}°, ΔW_in ∠ "
                 f"{angle(last['update_cos_W1']):.1f}°, ΔR ∠ {angle(last['update_cos_R1']):.1f}°"
                 if "signal_cos_1" in last else "")
        print(f"{name:9s} rsnn {data.n_features}-{args.hidden}-{data.n_out} on {data.name}: test "
              f"accuracy {100 * last['test_acc']:.2f} % after {args.epochs} epochs (lr {cfg.lr}, "
              f"{cfg.schedule}){extra}",
              flush=True)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"wspace": 0.3})
    from matplotlib.ticker import MaxNLocator
    for k, (name, hist) in enumerate(runs.items()):
        ep = [h["epoch"] for h in hist]
        color = f"C{k}"
        axes[0].plot(ep, [100 * h["test_acc"] for h in hist], "o-", color=color, label=name)
        if "signal_cos_1" in hist[0]:
            axes[1].plot(ep, [angle(h["signal_cos_1"]) for h in hist], "o-", color=color,
                         label=f"{name}: learning signal")
            axes[1].plot(ep, [angle(h["update_cos_R1"]) for h in hist], "s--", color=color,
                         label=f"{name}: ΔR (recurrent weights)")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", title=f"recurrent LIF on {data.name}")
    axes[1].axhline(90, color="gray", lw=0.8, ls=":", label="90°: orthogonal")
    axes[1].set(xlabel="epoch", ylabel="angle to BPTT (deg)", ylim=(-5, 185),
                title="alignment with surrogate BPTT")
    for ax in axes:
        ax.legend(fontsize=8)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "recurrent_eprop.png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    write_json(out / "recurrent_eprop.json", {"data": data.name, "hidden": args.hidden,
                                              "epochs": args.epochs, "runs": runs})
    print(f"wrote {out / 'recurrent_eprop.png'} and {out / 'recurrent_eprop.json'}")


if __name__ == "__main__":
    main()
