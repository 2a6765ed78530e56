"""Spiking digits with local learning, exported to NIR with the rule attached, and re-imported.

Trains a 64-128-128-10 spiking MLP (LIF hidden layers, LI readout, rate-coded input over
20 steps) on scikit-learn's digits with FA, DFA, sparse DFA and DRTP (the core's rule
definitions drive the spiking layers), writes each network as a NIR file carrying its rule and
feedback matrices, loads the file back and checks that the NIR simulation gives the same
spikes as the trained network.  Writes runs/spiking_digits/{<rule>.nir, spiking_digits.png}.

    .venv/bin/python examples/spiking_digits.py [--epochs 15] [--out runs/spiking_digits]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", default="runs/spiking_digits")
    ap.add_argument("--rules", nargs="+", default=["fa", "dfa", "sdfa", "drtp"])
    args = ap.parse_args()
    torch.set_num_threads(1)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurocredit.data import load_digits
    from neurocredit.io_utils import atomic_path
    from neurocredit.nir.export import write
    from neurocredit.nir.load import load
    from neurocredit.rules import get_rule
    from neurocredit.sim.spiking import SpikingTrainConfig, train_spiking

    out = Path(args.out)
    data = load_digits(seed=0, standardise=False)
    fig, (ax_acc, ax_raster) = plt.subplots(1, 2, figsize=(12, 4.5))
    raster = None
    for name in args.rules:
        res = train_spiking(get_rule(name), data, [128, 128], SpikingTrainConfig(epochs=args.epochs))
        acc = [100 * h["test_acc"] for h in res.history]
        ax_acc.plot(range(1, len(acc) + 1), acc, "o-", ms=3, label=f"{name} ({acc[-1]:.1f} %)")
        path = write(res.net, out / f"{name}.nir")
        model = load(path)
        spikes = res.net.encode(data.x_test[:16], torch.Generator().manual_seed(0))
        rec = res.net.run(spikes)
        sim, nodes = model.simulate(spikes, record=True)
        same = torch.equal(sim, torch.stack(rec["v_out"])) and torch.equal(
            nodes["lif1"], torch.stack(rec["z"][1]))
        fb = ", ".join(f"{f['target']} <- {f['source_node']} B{f['shape']}" for f in model.spec["feedback"])
        print(f"{name:5s} test accuracy {acc[-1]:.2f} % after {args.epochs} epochs; wrote {path} "
              f"(rule {model.rule.name}, feedback {fb}); NIR simulation identical: {same}")
        if raster is None:
            raster = torch.stack(rec["z"][1])[:, 0, :64]
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_title("spiking 64-128-128-10 on digits, local rules")
    ax_acc.legend()
    t, n = torch.nonzero(raster, as_tuple=True)
    ax_raster.plot(t.numpy(), n.numpy(), "|k", ms=5)
    ax_raster.set_xlabel("time step")
    ax_raster.set_ylabel("hidden neuron (first 64)")
    ax_raster.set_title(f"layer-1 spikes, one test digit ({args.rules[0]})")
    fig.tight_layout()
    png = out / "spiking_digits.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
