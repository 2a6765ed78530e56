"""`neurocredit train`: train a network with a rule; write the model (``model.pt``, or
``spiking.pt`` with ``--spiking``), metrics JSON and a PNG of the curves into ``--out``.

A spiking run (``--spiking``: LIF neurons, rate-coded input) is what ``neurocredit export
--from RUN`` turns into a NIR file; a rate run is the fast PyTorch reference with alignment
metrics.  Ctrl-C keeps the finished epochs: their metrics and plot are written and named."""
from __future__ import annotations

import argparse
from pathlib import Path

from neurocredit.commands.options import momentum, positive_float, positive_int, seed_int
from neurocredit.errors import UserError


def _write(result, out: Path, title: str, seed: int) -> None:
    from neurocredit.io_utils import write_json
    from neurocredit.nir.runs import save_run
    from neurocredit.plots import plot_history
    if getattr(result, "model", None) in ("rnn", "rsnn"):      # recurrent: recurrent.pt (+ .nir)
        from neurocredit.sim.recurrent_train import save_recurrent
        save_recurrent(result.net, out)
        if result.model == "rsnn":
            from neurocredit.nir.export import write
            write(result.net, out / "model.nir")
    else:
        save_run(result.net, out, seed=seed)
    write_json(out / "metrics.json", result.to_json())
    if result.history:
        plot_history(result.history, out / "curves.png", title)


def run(args: argparse.Namespace) -> int:
    from neurocredit.io_utils import check_output_dir
    from neurocredit.rules import resolve_rule

    out = check_output_dir(args.out, "--out folder")
    rule = resolve_rule(args.rule)
    recurrent = args.model in ("rnn", "rsnn")
    if recurrent and args.spiking:
        raise UserError("--spiking trains a spiking MLP; a recurrent spiking network is --model rsnn")
    if args.spiking:
        from neurocredit.commands.pipeline import load_data
        data = load_data(args.data, args.seed)
    else:
        from neurocredit.data import load_dataset
        try:
            data = load_dataset(args.data, seed=args.seed)
        except ValueError as exc:
            raise UserError(f"--data: {exc}") from None
        if recurrent and not data.temporal:
            raise UserError(f"--model {args.model} reads sequences; --data {args.data} is not one "
                            "(use seqdigits, rowmnist5k or spikepattern)")
    recurrent_cfg = _resolve_defaults(args, rule)
    sizes = "-".join(map(str, [data.n_in, *args.hidden, data.n_out]))
    title = f"{rule.name} on {data.name}, {sizes}{' spiking' if args.spiking else ''}, seed {args.seed}"
    try:
        result = _train(args, rule, data, recurrent_cfg)
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "partial_result", None)
        if partial is not None and partial.history:
            _write(partial, out, title + f" (interrupted after {len(partial.history)} epochs)", args.seed)
            print(f"interrupted after {len(partial.history)} finished epoch(s): wrote "
                  f"{out / 'metrics.json'} and {out / 'curves.png'}")
        raise
    _write(result, out, title, args.seed)
    f = result.final
    score = f"test accuracy {100 * f['test_acc']:.2f} %" if "test_acc" in f else f"test loss {f['test_loss']:.4g}"
    angles = ", ".join(f"layer {r['layer']} ∠(Wᵀ,B) {r['angle_WT_B']:.1f}°"
                       for r in f.get("layers", []) if "angle_WT_B" in r)
    print(f"{rule.name} on {data.name}: {score} after {args.epochs} epochs"
          + (f"; {angles}" if angles else ""))
    model = ("recurrent.pt and model.nir" if args.model == "rsnn" else "recurrent.pt" if recurrent
             else "spiking.pt" if args.spiking else "model.pt")
    print(f"wrote {out / model}, {out / 'metrics.json'} and {out / 'curves.png'}"
          + (f"; export it with `neurocredit export MODEL.nir --from {out}`" if args.spiking else ""))
    return 0


MLP_DEFAULTS = {"hidden": [256], "epochs": 30, "batch_size": 32, "lr": 0.01, "momentum": 0.9,
                "activation": "tanh", "optimizer": "adam", "readout": "li"}
"""Defaults of a feed-forward run; a recurrent run (--model rnn|rsnn) takes its network and the
rule's optimiser settings from sim/recurrent_defaults.toml (the measured choices), and only the
options given on the command line override them."""


def _resolve_defaults(args: argparse.Namespace, rule):
    """Fill the options left unset (None): from MLP_DEFAULTS, or for a recurrent model from
    :func:`neurocredit.sim.recurrent_train.default_config` (returned, with the options given
    applied)."""
    if args.model not in ("rnn", "rsnn"):
        for key, value in MLP_DEFAULTS.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
        return None
    from neurocredit.sim.recurrent_train import default_config
    given = {k: getattr(args, k) for k in MLP_DEFAULTS if k != "hidden"}
    try:
        cfg, hidden = default_config(args.model, rule.name, hidden=args.hidden, seed=args.seed, **given)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    args.hidden, args.epochs = hidden, cfg.epochs
    return cfg


def _train(args: argparse.Namespace, rule, data, recurrent_cfg=None):
    if args.model in ("rnn", "rsnn"):
        from neurocredit.sim.recurrent_train import train_recurrent
        return train_recurrent(rule, data, args.hidden, args.model, recurrent_cfg)
    if args.spiking:
        from neurocredit.sim.spiking import SpikingConfig, SpikingTrainConfig, train_spiking
        cfg = SpikingTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 momentum=args.momentum, seed=args.seed,
                                 spiking=SpikingConfig(steps=args.steps, readout=args.readout))
        return train_spiking(rule, data, args.hidden, cfg, progress=True)
    from neurocredit.sim.train import TrainConfig, train
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      momentum=args.momentum, seed=args.seed, device=args.device,
                      activation=args.activation, loss="ce" if data.n_classes else "mse")
    return train(rule, data, args.hidden, cfg)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a network with a learning rule and save it (PyTorch backend)")
    p.add_argument("--rule", default="fa", metavar="NAME|FILE.toml",
                   help="a library rule (see `neurocredit rules`) or a rule file (docs/rule_files.md)")
    p.add_argument("--data", default="digits", help="digits | mnist5k | teacher (--spiking: digits | mnist5k); sequences "
                        "(--model rnn|rsnn): seqdigits | rowmnist5k | spikepattern")
    p.add_argument("--hidden", type=positive_int, nargs="+", default=None,
                   help="hidden layer sizes (default 256; --model rnn|rsnn: sim/recurrent_defaults.toml)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="passes over the training set (default 30; rnn|rsnn: the rule's measured default)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="samples per update (default 32)")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate η (default 0.01; rnn|rsnn: the rule's measured default)")
    p.add_argument("--momentum", type=momentum, default=None, help="SGD momentum (default 0.9)")
    p.add_argument("--activation", default=None, help="hidden activation of a rate network (default tanh)")
    p.add_argument("--model", default="mlp", choices=["mlp", "rnn", "rsnn"],
                   help="mlp (feed-forward); rnn: rate RNN, rsnn: recurrent LIF network, both "
                        "on sequences (--data seqdigits | rowmnist5k | spikepattern)")
    p.add_argument("--optimizer", default=None, choices=["adam", "sgd"],
                   help="optimiser of --model rnn|rsnn (the rule's −Δ is its gradient)")
    p.add_argument("--spiking", action="store_true",
                   help="train a spiking (LIF, rate-coded) network that `export --from` writes as NIR")
    p.add_argument("--steps", type=positive_int, default=20, help="time steps per sample (--spiking)")
    p.add_argument("--readout", default=None, choices=["li", "lif"],
                   help="output layer (--spiking): LI voltage readout (learns on chip as a leaky graded unit with its own error), or LIF spikes (spiking error units on chip)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the split, init and batches")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--out", default="runs/train", help="output folder (model, metrics.json, curves.png)")
    p.set_defaults(func=run)
