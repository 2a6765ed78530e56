"""`neurocredit export`: train a spiking network (or load one) and write it as a NIR file with
its learning rule and feedback pathways attached.

    neurocredit export model.nir --rule dfa --epochs 10 [--save-run runs/dfa]   # fresh train
    neurocredit export model.nir --from runs/dfa      # any saved run (train --spiking, --save-run)
    neurocredit export model.nir --from snntorch.nir --rule dfa                 # attach a rule
    neurocredit export model.nir --rule pc_onchip --epochs 0                    # untrained (any rule)
"""
from __future__ import annotations

import argparse
from pathlib import Path

from neurocredit.commands.options import nonneg_int, positive_float, positive_int, seed_int
from neurocredit.errors import UserError


def _fresh(args: argparse.Namespace):
    from neurocredit.rules import resolve_rule
    from neurocredit.sim.spiking import SpikingConfig, SpikingTrainConfig, train_spiking

    if args.data not in ("digits", "mnist5k"):
        raise UserError(f"--data must be digits or mnist5k for a spiking classifier, got '{args.data}'")
    rule = resolve_rule(args.rule or "dfa")
    from neurocredit import data as D
    loader = D.load_digits if args.data == "digits" else D.load_mnist5k
    data = loader(seed=args.seed, standardise=False)      # spike coding needs x in [0, 1]
    cfg = SpikingTrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed,
                             spiking=SpikingConfig(steps=args.steps, coding=args.coding, readout=args.readout))
    if args.epochs == 0:          # untrained, with the rule attached: the start of on-chip learning
        from neurocredit.sim.spiking import SpikingNetwork
        net = SpikingNetwork([data.n_in, *args.hidden, data.n_out], rule, cfg.spiking, cfg.seed,
                             cfg.feedback_scale)
        print(f"built an untrained spiking {'-'.join(map(str, net.sizes))} network with {rule.name} "
              f"(--epochs 0: nothing trained)")
        return net
    res = train_spiking(rule, data, args.hidden, cfg, progress=args.verbose)
    acc = res.final.get("test_acc")
    print(f"trained a spiking {'-'.join(map(str, res.net.sizes))} network with {rule.name} on "
          f"{data.name} for {args.epochs} epochs" + (f": test accuracy {100 * acc:.2f} %" if acc is not None else ""))
    if args.save_run:
        from neurocredit.sim.spiking import save_checkpoint
        p = save_checkpoint(res.net, args.save_run, res.history)
        print(f"saved the run to {p.parent} ({p.name}, metrics.json)")
    return res.net


def run(args: argparse.Namespace) -> int:
    from neurocredit.nir.errors import NIRExportError, NIRLoadError
    from neurocredit.nir.export import write

    from neurocredit.io_utils import check_output_dir, check_output_path
    out = check_output_path(args.out, "NIR file")
    if args.save_run:
        check_output_dir(args.save_run, "--save-run folder")
    try:
        if args.source is None:
            model = _fresh(args)
        else:
            src = Path(args.source)
            if src.is_dir() or src.suffix == ".pt":
                from neurocredit.nir.runs import load_run
                model = load_run(src)
                if type(model).__name__ == "Network":
                    raise UserError(f"{src} holds a rate network, which is not a NIR graph: train it "
                                    f"with `neurocredit train --spiking` to export it")
                if args.rule:
                    raise UserError("--rule cannot change the rule of a trained run; export it "
                                    "and load the .nir with --rule instead")
                sizes = "-".join(map(str, getattr(model, "sizes", []))) or "recurrent, model.nir"
                print(f"loaded the saved run {src} ({model.rule.name if model.rule else 'no rule'}, {sizes})")
            else:
                from neurocredit.nir.load import load
                from neurocredit.rules import resolve_rule
                model = load(src, rule=resolve_rule(args.rule) if args.rule else None, seed=args.seed,
                             discretisation=args.discretisation)
                what = f"attached rule {model.rule.name}" if args.rule else (
                    f"rule {model.rule.name}" if model.rule else "no learning rule")
                print(f"loaded {src} ({what})")
        write(model, out)
    except (NIRLoadError, NIRExportError) as exc:
        raise UserError(str(exc)) from None
    print(f"wrote {out}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a spiking network and its learning rule as a NIR file")
    p.add_argument("out", help="the .nir file to write (atomically)")
    p.add_argument("--from", dest="source", default=None,
                   help="a saved run folder (`train --spiking --out DIR`, `export --save-run DIR`) or a "
                        ".nir file; default: train a new network")
    p.add_argument("--rule", default=None, metavar="NAME|FILE.toml",
                   help="rule to train with / attach: a library name or a rule file "
                        "(docs/rule_files.md); default dfa for a fresh train")
    p.add_argument("--data", default="digits", help="digits | mnist5k (fresh train)")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[256, 256],
                   help="hidden layer sizes (fresh train)")
    p.add_argument("--epochs", type=nonneg_int, default=10, help="training epochs (0: untrained, rule attached)")
    p.add_argument("--lr", type=positive_float, default=0.01, help="learning rate (fresh train)")
    p.add_argument("--steps", type=positive_int, default=20, help="time steps per sample")
    p.add_argument("--coding", default="rate", choices=["rate", "latency"],
                   help="input spike coding: rate (Bernoulli per step) or latency (one spike, earlier for brighter)")
    p.add_argument("--readout", default="li", choices=["li", "lif"],
                   help="output layer: LI voltage readout (learns on chip as a leaky graded unit with its own error), or LIF spikes (spiking error units on chip)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the split, init and feedback matrices")
    p.add_argument("--dt", type=positive_float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--discretisation", default=None,
                   help="for --from FILE.nir: nir | snntorch | snntorch-leaky (default: the file's)")
    p.add_argument("--save-run", default=None, help="also save the trained network to this folder")
    p.add_argument("--verbose", action="store_true", help="print every epoch")
    p.set_defaults(func=run)
