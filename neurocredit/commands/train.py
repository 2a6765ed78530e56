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
    sizes = "-".join(map(str, [data.n_in, *args.hidden, data.n_out]))
    title = f"{rule.name} on {data.name}, {sizes}{' spiking' if args.spiking else ''}, seed {args.seed}"
    try:
        result = _train(args, rule, data)
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


def _train(args: argparse.Namespace, rule, data):
    if args.model in ("rnn", "rsnn"):
        from neurocredit.sim.recurrent_train import RecurrentTrainConfig, train_recurrent
        cfg = RecurrentTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                   optimizer=args.optimizer, momentum=args.momentum,
                                   seed=args.seed, activation=args.activation,
                                   readout=args.readout)
        return train_recurrent(rule, data, args.hidden, args.model, cfg)
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
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[256], help="hidden layer sizes")
    p.add_argument("--epochs", type=positive_int, default=30, help="passes over the training set")
    p.add_argument("--batch-size", type=positive_int, default=32, help="samples per update")
    p.add_argument("--lr", type=positive_float, default=0.01, help="learning rate η")
    p.add_argument("--momentum", type=momentum, default=0.9, help="SGD momentum")
    p.add_argument("--activation", default="tanh", help="hidden activation of a rate network")
    p.add_argument("--model", default="mlp", choices=["mlp", "rnn", "rsnn"],
                   help="mlp (feed-forward); rnn: rate RNN, rsnn: recurrent LIF network, both "
                        "on sequences (--data seqdigits | rowmnist5k | spikepattern)")
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"],
                   help="optimiser of --model rnn|rsnn (the rule's −Δ is its gradient)")
    p.add_argument("--spiking", action="store_true",
                   help="train a spiking (LIF, rate-coded) network that `export --from` writes as NIR")
    p.add_argument("--steps", type=positive_int, default=20, help="time steps per sample (--spiking)")
    p.add_argument("--readout", default="li", choices=["li", "lif"],
                   help="output layer (--spiking): LI voltage readout (learns on chip as a leaky graded unit with its own error), or LIF spikes (spiking error units on chip)")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the split, init and batches")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--out", default="runs/train", help="output folder (model, metrics.json, curves.png)")
    p.set_defaults(func=run)
