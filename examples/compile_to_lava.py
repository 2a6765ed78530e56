"""Train a spiking digits MLP with a local rule, write it as NIR, compile it for Loihi 2, and run
it on Lava (fixed point), on the bit-exact PyTorch emulator and in torch float.

Prints the resource/quantisation report and the agreement of the three backends, and writes
``runs/compile_to_lava/digits.nir`` and ``runs/compile_to_lava/lava_vs_torch.png`` (hidden-layer
spike raster in Lava and the emulator, readout voltages in Lava fixed point and torch float).

    python examples/compile_to_lava.py [--hidden 64] [--epochs 5] [--samples 5] [--out runs/compile_to_lava]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--samples", type=int, default=5, help="test samples run in Lava")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/compile_to_lava")
    args = ap.parse_args()
    torch.set_num_threads(1)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nir

    from neurocredit.io_utils import atomic_path
    from neurocredit.chip import sample_graphs
    from neurocredit.chip.compile import compile_graph
    from neurocredit.lava.report import format_report
    from neurocredit.lava.run import run_aligned, run_lava
    from neurocredit.nir.simulate import simulate
    from neurocredit.chip.emulator import emulate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    graph, info = sample_graphs.digits_mlp(hidden=args.hidden, epochs=args.epochs, seed=args.seed,
                                 steps=args.steps, readout="li")
    path = out / "digits.nir"
    with atomic_path(path, suffix=".nir") as tmp:
        nir.write(str(tmp), graph)
    print(f"trained a 64-{args.hidden}-10 spiking MLP ({info['how']}) on digits and wrote {path}")

    program = compile_graph(nir.read(str(path)), profile="loihi2", fixed_point=True)
    print(format_report(program, True))

    data = info["data"]
    n = args.samples
    x = sample_graphs.rate_code(data.x_test[:n], args.steps, seed=args.seed + 1)
    y = data.y_test[:n].numpy()
    lava = run_aligned(program, x, backend="lava", seed=args.seed)["output"]
    emu = run_aligned(program, x, backend="emulator")["output"]
    ref = simulate(nir.read(str(path)), torch.as_tensor(x, dtype=torch.float32), dt=program.dt).numpy()
    pred = {k: v.mean(0).argmax(1) for k, v in (("lava", lava), ("emulator", emu), ("torch", ref))}
    print(f"labels:            {y.tolist()}")
    for k, v in pred.items():
        print(f"{k + ' predictions:':<19}{v.tolist()}")
    print(f"Lava fixed point == emulator (readout voltages, every step): {np.array_equal(lava, emu)}")
    err = np.abs(lava - ref).max() / max(1e-12, np.abs(ref).max())
    print(f"Lava fixed point vs torch float readout: max |dv| = {100 * err:.2f} % of the largest |v|")

    hidden = program.fixed_circuit.populations[0].name
    raw_lava = run_lava(program.fixed_circuit, x[:, :1], record=[hidden])[hidden][:, 0]
    raw_emu = emulate(program.fixed_circuit, x[:, :1], record=[hidden])[hidden][:, 0].numpy()
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    t, i = np.nonzero(raw_lava)
    ax[0].scatter(t, i, s=14, marker="|", label="Lava fixed_pt")
    t, i = np.nonzero(raw_emu)
    ax[0].scatter(t, i, s=30, facecolors="none", edgecolors="C1", label="emulator", linewidths=0.6)
    ax[0].set(xlabel="Lava step", ylabel=f"{hidden} neuron", title=f"hidden spikes, sample 0 (label {y[0]})")
    ax[0].legend(loc="upper right")
    for c in range(lava.shape[2]):
        ax[1].plot(ref[:, 0, c], color=f"C{c}", lw=1)
        ax[1].plot(lava[:, 0, c], color=f"C{c}", lw=0, marker=".", ms=4)
    ax[1].set(xlabel="step (NIR time)", ylabel="readout v", title="readout: torch float (lines), Lava fixed (dots)")
    fig.tight_layout()
    png = out / "lava_vs_torch.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
