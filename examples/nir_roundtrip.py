"""snnTorch -> NIR -> neurocredit (train with DFA here) -> NIR -> snnTorch, spike for spike.

1. builds a 64-128-128-10 snnTorch Leaky network and exports it with snnTorch's exporter;
2. loads the file here and checks 100 steps of spikes against snnTorch;
3. attaches the DFA rule on import and keeps training it on digits (local learning only);
4. exports the trained network with its rule and feedback matrices, imports it back into
   snnTorch with ``import_from_nir`` and checks spikes and accuracy match.
Writes runs/nir_roundtrip/{snntorch.nir, trained.nir, nir_roundtrip.png}.

    .venv/bin/python examples/nir_roundtrip.py [--epochs 8]
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch


def run_snntorch(module, x):
    from snntorch import utils
    utils.reset(module)
    out = []
    with torch.no_grad():
        for t in range(x.shape[0]):
            o = module(x[t])
            out.append(o[0] if isinstance(o, tuple) else o)
    return torch.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--out", default="runs/nir_roundtrip")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nir
    import snntorch as snn
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    from neurocredit.data import load_digits
    from neurocredit.io_utils import atomic_path
    from neurocredit.nir.export import write
    from neurocredit.nir.load import load
    from neurocredit.rules import get_rule
    from neurocredit.sim.spiking import SpikingTrainConfig, train_spiking

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    leaky = lambda n, **k: snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n), **kw, **k)  # noqa: E731
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), leaky(128), torch.nn.Linear(128, 128), leaky(128),
                              torch.nn.Linear(128, 10), leaky(10, output=True))
    src = out / "snntorch.nir"
    nir.write(src, export_to_nir(net, torch.randn(1, 64), ignore_dims=[0]))

    data = load_digits(seed=0, standardise=False)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(100, 16, 64, generator=g) < data.x_test[:16]).float()   # 100 steps, rate-coded
    ours = load(src, discretisation="snntorch").simulate(x)
    theirs = run_snntorch(net, x)
    print(f"1. snnTorch file {src} loaded: 100 steps x 16 digits, output spikes identical: "
          f"{torch.equal(ours, theirs)} ({int(theirs.sum())} spikes)")

    model = load(src, rule="dfa", discretisation="snntorch")
    print(f"2. attached rule {model.rule.name} on import; feedback: "
          + ", ".join(f"{f['target']} <- {f['source_node']} B{f['shape']}" for f in model.spec["feedback"]))
    res = train_spiking(get_rule("dfa"), data, [], SpikingTrainConfig(epochs=args.epochs), net=model.to_network())
    acc = [100 * h["test_acc"] for h in res.history]
    print(f"3. trained here with DFA for {args.epochs} epochs: test accuracy {acc[-1]:.2f} %")

    trained = write(res.net, out / "trained.nir")
    back = import_from_nir(nir.read(trained))
    mine = torch.stack(res.net.run(x)["z_out"])
    theirs2 = run_snntorch(back, x)
    with torch.no_grad():
        xs = res.net.encode(data.x_test, torch.Generator().manual_seed(2))
        acc_ours = float((res.net(xs).argmax(1) == data.y_test).float().mean())
        acc_snn = float((run_snntorch(back, xs).sum(0).argmax(1) == data.y_test).float().mean())
    print(f"4. {trained} imported into snnTorch: spikes identical: {torch.equal(mine, theirs2)}; "
          f"test accuracy here {100 * acc_ours:.2f} %, in snnTorch {100 * acc_snn:.2f} %")

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.plot(range(1, len(acc) + 1), acc, "o-")
    a1.set_xlabel("epoch")
    a1.set_ylabel("test accuracy (%)")
    a1.set_title("snnTorch net trained here with DFA")
    a2.bar([0, 1], [100 * acc_ours, 100 * acc_snn], tick_label=["neurocredit", "snnTorch (re-imported)"])
    a2.set_ylabel("test accuracy (%)")
    a2.set_title("same network, two simulators")
    fig.tight_layout()
    png = out / "nir_roundtrip.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110)
    print(f"wrote {png}")


if __name__ == "__main__":
    main()
