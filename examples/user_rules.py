"""Rules a user writes: two learning rules that exist in no module of neurocredit, written only
as TOML files (``examples/rules/*.toml``, schema in ``docs/rule_files.md``), taken through the
whole pipeline with no code change:

1. checked for locality (:func:`neurocredit.rules.check_locality`);
2. trained in PyTorch, a rate network (tanh) on digits: test accuracy;
3. trained as a spiking network (LIF, LIF readout) and exported to NIR with the rule attached --
   the rule travels in the file, nothing looks its name up;
4. learned on chip from scratch: an untrained spiking network is exported with the rule, the
   file's rule is compiled to Loihi-style product series and the training set is streamed
   through the bit-exact fixed-point emulator (``--check N``: first N samples on the emulator
   and on Lava, learned weights compared).  A rule the compiler refuses is printed with the
   product or pathway it cannot build.

    python examples/user_rules.py                           # both rule files, ~1-2 min
    python examples/user_rules.py --epochs 2 --chip-samples 100 --check 5   # faster; + Lava
    python examples/user_rules.py path/to/my_rule.toml      # your own rule file

Writes ``--out``/accuracy.png (test accuracy of every stage per rule) and the NIR files.
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULE_FILES = [HERE / "rules" / "dfa_antihebbian_decay.toml", HERE / "rules" / "sparse_fa_learned.toml"]


def on_chip(nir_path: Path, args: argparse.Namespace) -> tuple[list[float], str]:
    """(test accuracies before and after each on-chip epoch, what happened) for a NIR file."""
    from neurocredit.commands.learn import learn_on_chip
    from neurocredit.data import load_digits
    from neurocredit.errors import UserError

    data = load_digits(seed=args.seed, standardise=False)     # rate coding needs x in [0, 1]
    check = args.check
    if check and importlib.util.find_spec("lava") is None:
        print("  on chip: --check skipped, Lava is not installed (`neurocredit setup-lava`)")
        check = 0
    try:
        _, _, history, same = learn_on_chip(nir_path, data, epochs=args.chip_epochs,
                                            samples=args.chip_samples, seed=args.seed, check=check,
                                            log=lambda s: print(f"  on chip: {s}"))
    except (UserError, ValueError) as exc:          # the compiler's refusal, one line
        return [], f"refused: {exc}"
    if same is False:
        return [], "emulator and Lava DIFFER"
    accs = [h["test_acc"] for h in history]
    note = f"test accuracy {100 * accs[0]:.2f} % (untrained) -> {100 * accs[-1]:.2f} %"
    return accs, note + (f"; emulator == Lava on {check} samples" if same else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("rules", nargs="*", default=[str(f) for f in RULE_FILES],
                   help="rule files (.toml) or library rule names")
    p.add_argument("--epochs", type=int, default=5, help="rate-network training epochs")
    p.add_argument("--spiking-epochs", type=int, default=2, help="spiking-network training epochs")
    p.add_argument("--hidden", type=int, default=64, help="hidden layer size")
    p.add_argument("--chip-epochs", type=int, default=1, help="on-chip learning epochs")
    p.add_argument("--chip-samples", type=int, default=600, help="training samples per on-chip epoch")
    p.add_argument("--check", type=int, default=0,
                   help="compare emulator and Lava weights on this many samples first (needs Lava)")
    p.add_argument("--seed", type=int, default=0, help="seed of data split, weights and feedback")
    p.add_argument("--out", default="runs/user_rules", help="folder for the NIR files and the plot")
    args = p.parse_args()
    if min(args.epochs, args.spiking_epochs, args.hidden, args.chip_samples) < 1 or args.chip_epochs < 0:
        p.error("--epochs, --spiking-epochs, --hidden and --chip-samples must be >= 1, --chip-epochs >= 0")

    if args.check and importlib.util.find_spec("lava") is not None:
        # Lava sets the 'fork' start method on import: before anything else (tqdm) fixes it
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    import torch

    import neurocredit as nc
    from neurocredit.nir.export import write
    from neurocredit.rules import check_locality, resolve_rule
    from neurocredit.sim.spiking import SpikingConfig, SpikingNetwork
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for spec in args.rules:
        rule = resolve_rule(spec)            # a .toml file (or a library name)
        violations = check_locality(rule)
        print(f"{rule.name} ({spec}): {rule.title}\n  {rule.equation}")
        print(f"  locality: {'local' if not violations else '; '.join(map(str, violations))}")
        rate = nc.train(rule, "digits", hidden=[args.hidden], epochs=args.epochs, seed=args.seed)
        print(f"  torch, rate {'-'.join(map(str, rate.net.sizes))}: test accuracy "
              f"{100 * rate.final['test_acc']:.2f} % after {args.epochs} epochs")
        spiking = nc.train(rule, "digits", hidden=[args.hidden], epochs=args.spiking_epochs,
                           seed=args.seed, spiking=True, readout="lif", steps=16)
        nir_path = nc.export(spiking, out / f"{rule.name}.nir")
        print(f"  torch, spiking (LIF readout): test accuracy {100 * spiking.final['test_acc']:.2f} % "
              f"after {args.spiking_epochs} epochs; exported to {nir_path} (rule attached)")
        fresh = SpikingNetwork([64, args.hidden, 10], rule, SpikingConfig(steps=16, readout="lif"),
                               seed=args.seed)
        fresh_path = write(fresh, out / f"{rule.name}_untrained.nir")
        chip, note = on_chip(fresh_path, args)
        print(f"  on chip from scratch (emulator, {args.chip_samples} samples x {args.chip_epochs} "
              f"epoch(s)): {note}")
        results[rule.name] = {"rate": rate.final["test_acc"], "spiking": spiking.final["test_acc"],
                              "chip": chip[-1] if chip else None}
    plot(results, out / "accuracy.png")
    print(f"wrote {out / 'accuracy.png'} and the NIR files in {out}")


def plot(results: dict[str, dict[str, float | None]], path: Path) -> None:
    """Grouped bars: test accuracy per rule for the rate, spiking and on-chip stages."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurocredit.io_utils import atomic_path
    stages = [("rate", "torch, rate"), ("spiking", "torch, spiking"),
              ("chip", "on chip from scratch (emulator)")]
    fig, ax = plt.subplots(figsize=(2.5 + 2.2 * len(results), 4.6))
    w = 0.8 / len(stages)
    for i, (key, label) in enumerate(stages):
        xs = [j + (i - 1) * w for j in range(len(results))]
        ys = [100 * (r[key] or 0.0) for r in results.values()]
        bars = ax.bar(xs, ys, w, label=label)
        for b, r in zip(bars, results.values()):
            ax.annotate("refused" if r[key] is None else f"{100 * r[key]:.1f}",
                        (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8)
    ax.axhline(10, color="grey", ls=":", label="chance (10 %)")
    ax.set_xticks(range(len(results)), list(results))
    ax.set_ylabel("test accuracy on digits (%)")
    ax.set_ylim(0, 105)
    ax.set_title("rule files through torch, NIR and the chip")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


if __name__ == "__main__":
    main()
