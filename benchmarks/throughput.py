"""Training throughput (samples/s) of every rule against a plain torch-autograd BP loop.

Both run in the same process on the same data (MNIST-5k inputs), interleaved batch by batch
(rotating which goes first) so that a neighbour slows both alike; on the CPU each step is
timed by the CPU time of the one torch thread (``time.thread_time``: time the OS gives to
other processes does not count), on CUDA by wall time around synchronisations.  The figure
of merit is the ratio rule / autograd-BP of the summed step times, median over repeats.  Architectures: 784-500-10 and 784-1000-1000-10 on MNIST-5k; 64-256-10 on digits
(the net of the dynamical rules' accuracy table; ``--archs 64-256-10``).

Relaxation rules (predictive coding, activation relaxation, dynamic inversion, PAL) get a
second table: the relaxation steps they ran (mean per update; their adaptive stop, rule
constant ``tolerance``), and the cost of one relaxation step against one BP training step,
from the same rule run with a fixed T = its ``steps`` (tolerance 0) and with T = 0 in the
same rotation: per step = (t(T) − t(0)) / T (a rule with its own ``solver``, exact PC's
adaptive rates, also gets that solver's step, run for all T steps the same way).  Linear relaxations (PC with fixed predictions,
frozen AR) are evaluated in closed form by default (``sim/linear_relaxation.py``; their
"steps run" are the Euler steps that closed form stands for); the per-step column times the
Euler loop itself (rule constant ``closed_form`` false).

    python benchmarks/throughput.py [--batch-size 64] [--repeats 5] [--rules fa,dfa]
        [--device cpu|cuda] [--out benchmarks/results/throughput.md]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torch import nn

from neurocredit.data import load_digits, load_mnist5k
from neurocredit.rules import RULES, get_rule
from neurocredit.rules.rule import Rule
from neurocredit.sim.losses import loss_value
from neurocredit.sim.network import Network
from neurocredit.sim.train import TrainConfig, make_optimizer, train_step

ARCHS = {"784-500-10": [784, 500, 10], "784-1000-1000-10": [784, 1000, 1000, 10],
         "64-256-10": [64, 256, 10]}
DEFAULT_ARCHS = "784-500-10,784-1000-1000-10"
RELAXATION = ("predictive_coding", "activation_relaxation", "dynamic_inversion", "pal")


def plain_bp(sizes: list[int], activation: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The baseline: nn.Sequential of Linear layers, autograd, torch SGD with momentum."""
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    mods: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(act())
    model = nn.Sequential(*mods)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def time_rotating(steps: list, x: torch.Tensor, y: torch.Tensor, batch: int,
                  device: torch.device) -> list[float]:
    """Seconds each of ``steps`` spent over one pass, rotating their order batch by batch."""
    spent = [0.0] * len(steps)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    clock = clock_for(device)
    for k, i in enumerate(range(0, x.shape[0], batch)):
        xb, yb = x[i:i + batch], y[i:i + batch]
        order = list(range(len(steps)))
        order = order[k % len(order):] + order[:k % len(order)]
        for j in order:
            sync()
            t0 = clock()
            steps[j](xb, yb)
            sync()
            spent[j] += clock() - t0
    return spent


def clock_for(device: torch.device):
    """CPU: the CPU time of this (single torch) thread, so that time the OS gives to other
    processes on a shared machine is not counted; CUDA: wall time around synchronisations."""
    return time.perf_counter if device.type == "cuda" else time.thread_time


def rule_stepper(rule, sizes, activation, device):
    net = Network(sizes, rule, activation, seed=0).to(device)
    opt = make_optimizer(net, rule, TrainConfig(lr=0.01))
    gen = torch.Generator().manual_seed(0)

    def step(xb, yb):
        train_step(net, opt, xb, yb, sizes[-1], "ce", gen)
    return step


def step_log() -> dict:
    try:
        from neurocredit.sim.relaxation import STEP_LOG
        return STEP_LOG
    except ImportError:  # an older neurocredit without the adaptive stop
        return {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rules", default=",".join(r for r in RULES if RULES[r].dynamics != "autograd"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--samples", type=int, default=2048)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--activation", default="relu")
    p.add_argument("--archs", default=DEFAULT_ARCHS, help=f"comma-separated, from {', '.join(ARCHS)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="also write the tables (markdown) here")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    sets = {}
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"torch threads: {torch.get_num_threads()}, device {device}, batch {args.batch_size}, "
        f"up to {args.samples} samples per pass, {args.repeats} rotating repeats, median ratio vs "
        "autograd BP")
    say("| net | rule | samples/s rule | samples/s autograd BP | ratio |\n|---|---|---|---|---|")
    relax_rows: list[str] = []
    for arch in args.archs.split(","):
        if arch not in ARCHS:
            raise SystemExit(f"unknown arch '{arch}'; known: {', '.join(ARCHS)}")
        sizes = ARCHS[arch]
        source = load_digits if sizes[0] == 64 else load_mnist5k
        if source not in sets:
            sets[source] = source(seed=0)
        data = sets[source]
        x, y = data.x_train[:args.samples].to(device), data.y_train[:args.samples].to(device)
        for name in args.rules.split(","):
            rule = get_rule(name)
            model, bp_opt = plain_bp(sizes, args.activation)
            model = model.to(device)
            bp_opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

            def bp_step(xb, yb):
                bp_opt.zero_grad(set_to_none=True)
                loss_value(model(xb), yb, "ce").backward()
                bp_opt.step()

            steppers = [rule_stepper(rule, sizes, args.activation, device), bp_step]
            relax = rule.dynamics in RELAXATION
            T = int(rule.param("steps", 0)) if relax else 0
            if relax and T > 0 and rule.dynamics != "pal":
                # renamed so that their steps stay out of the default rule's step log
                variant = lambda **kw: Rule(**{**rule.with_params(**kw).__dict__,  # noqa: E731
                                               "name": f"{rule.name}@{kw['steps']}"})
                # the step loop (closed_form off), so that one Euler step is what is timed
                steppers += [rule_stepper(variant(steps=T, tolerance=0.0, closed_form=False),
                                          sizes, args.activation, device),
                             rule_stepper(variant(steps=0, tolerance=0.0, closed_form=False),
                                          sizes, args.activation, device)]
                if rule.param("solver", "euler") != "euler":
                    # a rule's own solver (exact PC: adaptive rates), run for all T steps
                    steppers.append(rule_stepper(variant(steps=T, tolerance=1e-30), sizes,
                                                 args.activation, device))
            time_rotating(steppers, x[:256], y[:256], args.batch_size, device)  # warm-up
            step_log().clear()
            runs = [time_rotating(steppers, x, y, args.batch_size, device)
                    for _ in range(args.repeats)]
            n = x.shape[0]
            ratio = statistics.median(r[1] / r[0] for r in runs)
            say(f"| {arch} | {name} | {statistics.median(n / r[0] for r in runs):.0f} | "
                f"{statistics.median(n / r[1] for r in runs):.0f} | {ratio:.2f}x |")
            if relax:
                ran = step_log().get(rule.name, [])
                mean_steps = f"{statistics.mean(ran):.1f}" if ran else f"{T} (fixed)"
                per_step = (f"{statistics.median((r[2] - r[3]) / T / r[1] for r in runs):.2f}x"
                            if len(runs[0]) > 2 else "-")
                if len(runs[0]) > 4:
                    per_step += (f" (solver {rule.param('solver')}: "
                                 f"{statistics.median((r[4] - r[3]) / T / r[1] for r in runs):.2f}x)")
                relax_rows.append(f"| {arch} | {name} | {T} | {mean_steps} | {ratio:.2f}x | "
                                  f"{per_step} |")
    if relax_rows:
        say("")
        say("Relaxation rules: steps run per update (adaptive stop) and the cost of one relaxation "
            "step, both against one autograd BP training step in the same rotation")
        say("| net | rule | steps (cap) | steps run (mean) | update: BP step / update | "
            "one relaxation step / BP step |\n|---|---|---|---|---|---|")
        for row in relax_rows:
            say(row)
    if args.out:
        from neurocredit.io_utils import atomic_path
        with atomic_path(args.out) as tmp:
            tmp.write_text("# Throughput benchmark\n\n`python benchmarks/throughput.py "
                           + " ".join(sys.argv[1:]) + "`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
