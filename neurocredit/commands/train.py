"""`neurocredit train`: train a network with a rule, write metrics JSON and a PNG of the curves."""
from __future__ import annotations

import argparse
from pathlib import Path

from neurocredit.errors import UserError


def run(args: argparse.Namespace) -> int:
    from neurocredit.data import load_dataset
    from neurocredit.io_utils import write_json
    from neurocredit.plots import plot_history
    from neurocredit.rules import resolve_rule
    from neurocredit.sim.train import TrainConfig, train

    rule = resolve_rule(args.rule)
    if any(h < 1 for h in args.hidden):
        raise UserError(f"--hidden sizes must be positive integers, got {args.hidden}")
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        raise UserError("--epochs, --batch-size and --lr must be positive")
    data = load_dataset(args.data, seed=args.seed)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      momentum=args.momentum, seed=args.seed, device=args.device,
                      activation=args.activation, loss="ce" if data.n_classes else "mse")
    result = train(rule, data, args.hidden, cfg)
    out = Path(args.out)
    write_json(out / "metrics.json", result.to_json())
    plot_history(result.history, out / "curves.png",
                 f"{rule.name} on {data.name}, {'-'.join(map(str, result.net.sizes))}, seed {args.seed}")
    f = result.final
    score = f"test accuracy {100 * f['test_acc']:.2f} %" if "test_acc" in f else f"test loss {f['test_loss']:.4g}"
    angles = ", ".join(f"layer {r['layer']} ∠(Wᵀ,B) {r['angle_WT_B']:.1f}°"
                       for r in f.get("layers", []) if "angle_WT_B" in r)
    print(f"{rule.name} on {data.name}: {score} after {args.epochs} epochs"
          + (f"; {angles}" if angles else ""))
    print(f"wrote {out / 'metrics.json'} and {out / 'curves.png'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network with a learning rule (PyTorch backend)")
    p.add_argument("--rule", default="fa", metavar="NAME|FILE.toml",
                   help="a library rule (see `neurocredit rules`) or a rule file (docs/rule_files.md)")
    p.add_argument("--data", default="digits", help="digits | mnist5k | teacher")
    p.add_argument("--hidden", type=int, nargs="+", default=[256], help="hidden layer sizes")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--activation", default="tanh")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--out", default="runs/train", help="output folder")
    p.set_defaults(func=run)
