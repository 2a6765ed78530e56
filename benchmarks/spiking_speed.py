"""Spiking simulation and training speed against snnTorch, same weights, same spikes, same run.

A 64-256-10 spiking MLP (LIF hidden layer, LI readout, snnTorch discretisation, rate-coded
digits, batch 256, T = 100) three ways, interleaved repeat by repeat; on the CPU each is timed
by the CPU time of the one torch thread (time the OS gives to other processes on a shared
machine does not count), on CUDA by wall time; figures are ratios of times measured in the
same run (median over repeats), never absolute times:

* forward: neurocredit's simulator (whole-sequence GEMMs, hand-fused LIF) vs snnTorch's
  ``Linear -> Leaky -> Linear -> Leaky(reset none)`` stepped over T (its own NIR semantics:
  reset to zero in the spiking step), and vs the per-step ``lif_step`` loop (the previous
  simulator's algorithm).  The hidden spike counts and readout membranes must be identical.
* training step: one update of a local rule (default DFA; neurocredit's fused SGD step) vs
  one BPTT step of the same snnTorch network (fast-sigmoid surrogate, autograd, SGD).

    python benchmarks/spiking_speed.py [--threads 1] [--repeats 7] [--device cpu|cuda]
        [--out benchmarks/results/spiking_speed.md]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from neurocredit.data import load_digits
from neurocredit.io_utils import atomic_path
from neurocredit.neurons import lif as L
from neurocredit.rules import get_rule
from neurocredit.sim.losses import target_vector
from neurocredit.sim.spiking import SpikingConfig, SpikingNetwork


def snntorch_twin(net: SpikingNetwork, surrogate_slope: float) -> nn.Sequential:
    """snnTorch's Leaky net with ``net``'s weights and the exact β and θ it simulates with."""
    import snntorch as snn
    from snntorch import surrogate
    cfg = net.config
    hid = L.constants(net.hidden_params[0], cfg.dt, net.disc)
    out = L.constants(net.out_params, cfg.dt, net.disc)
    grad = surrogate.fast_sigmoid(slope=surrogate_slope)
    lin1, lin2 = nn.Linear(*net.sizes[:2]), nn.Linear(*net.sizes[1:])
    with torch.no_grad():
        for lin, layer in ((lin1, net.layers[0]), (lin2, net.layers[1])):
            lin.weight.copy_(layer.weight)
            lin.bias.copy_(layer.bias)
    return nn.Sequential(
        lin1, snn.Leaky(beta=hid.decay.clone(), threshold=hid.threshold.clone(), init_hidden=True,
                        reset_mechanism="zero", reset_delay=False, spike_grad=grad),
        lin2, snn.Leaky(beta=out.decay.clone(), threshold=torch.ones(net.sizes[-1]), init_hidden=True,
                        reset_mechanism="none", output=True, spike_grad=grad))


def snntorch_run(model: nn.Sequential, spikes: torch.Tensor, count_spikes: bool = True
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden spike count, readout a = mean_t membrane) of snnTorch stepped over T."""
    from snntorch import utils
    utils.reset(model)
    lin1, leaky1, lin2, leaky2 = model
    count = torch.zeros((), device=spikes.device)
    mems = []
    for t in range(spikes.shape[0]):
        z = leaky1(lin1(spikes[t]))
        if count_spikes:
            count = count + z.sum()
        _, mem = leaky2(lin2(z))
        mems.append(mem)
    return count, torch.stack(mems).mean(0)


def stepped_run(net: SpikingNetwork, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-step loop: one product and one lif_step / li_step per layer and step."""
    cfg = net.config
    dev = spikes.device
    hid = L.constants(_to(net.hidden_params[0], dev), cfg.dt, net.disc)
    out = L.constants(_to(net.out_params, dev), cfg.dt, net.disc)
    w1, b1, w2, b2 = (net.layers[0].weight, net.layers[0].bias, net.layers[1].weight,
                      net.layers[1].bias)
    v = torch.zeros(spikes.shape[1], net.sizes[1], device=dev)
    v_out = torch.zeros(spikes.shape[1], net.sizes[2], device=dev)
    count = torch.zeros((), device=dev)
    v_outs = []
    for t in range(spikes.shape[0]):
        v, z, _ = L.lif_step(v, spikes[t] @ w1.T + b1, hid, net.disc)
        count = count + z.sum()
        v_out = L.li_step(v_out, z @ w2.T + b2, out, net.disc)
        v_outs.append(v_out)
    return count, torch.stack(v_outs).mean(0)


def _to(p, device):
    return type(p)(**{k: v.to(device) for k, v in vars(p).items()})


def timed(fn, device: torch.device) -> float:
    """CPU: CPU time of this (single torch) thread, so that other processes on a shared machine
    do not count; CUDA: wall time around synchronisations."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        return time.perf_counter() - t0
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--rule", default="dfa")
    p.add_argument("--weight-gain", type=float, default=2.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="also write the table (markdown) here")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available on this machine")
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    data = load_digits(seed=0, standardise=False)
    x = data.x_train[:args.batch_size].clamp(0, 1)
    y = data.y_train[:args.batch_size]
    sizes = [data.n_in, args.hidden, data.n_out]
    cfg = SpikingConfig(steps=args.steps, weight_gain=args.weight_gain)
    net = SpikingNetwork(sizes, get_rule(args.rule), cfg, seed=0).to(device)
    twin = snntorch_twin(net, cfg.surrogate_slope).to(device)
    spikes = net.encode(x, torch.Generator().manual_seed(0)).to(device)
    target = target_vector(y, data.n_out, "ce").to(device)
    y = y.to(device)

    with torch.no_grad():
        rec = net.run_tensors(spikes)
        ours_count, ours_a = rec["z"][1].sum(), net.readout_tensors(rec)
        snn_count, snn_a = snntorch_run(twin, spikes)
        step_count, step_a = stepped_run(net, spikes)
    same = bool(torch.equal(ours_count, snn_count) and torch.equal(ours_a, snn_a)
                and torch.equal(ours_count, step_count) and torch.equal(ours_a, step_a))
    say(f"# Spiking speed ({'-'.join(map(str, sizes))} LIF + LI readout, batch {args.batch_size}, "
        f"T = {args.steps}, device {device}, torch threads {torch.get_num_threads()})")
    say(f"hidden spikes: neurocredit {int(ours_count)}, snnTorch {int(snn_count)}, per-step loop "
        f"{int(step_count)} ({float(ours_count) / spikes.shape[0] / spikes.shape[1] / sizes[1]:.3f} "
        f"per neuron and step); readout identical: {same}")
    if not same:
        raise SystemExit("the simulators disagree: speed figures would be meaningless")

    def ours_forward():
        with torch.no_grad():
            net(spikes)

    def snn_forward():
        with torch.no_grad():
            snntorch_run(twin, spikes, count_spikes=False)

    def step_forward():
        with torch.no_grad():
            stepped_run(net, spikes)

    lr = 0.005
    opt = torch.optim.SGD([{"params": net.net.weight_params()}] + (
        [{"params": net.net.learned_feedback_params()}] if net.net.learned_feedback_params() else []),
        lr=lr, momentum=0.9)
    twin_opt = torch.optim.SGD(twin.parameters(), lr=lr, momentum=0.9)

    def ours_train():
        net.train_step(spikes, target, opt, "ce")

    def snn_train():
        twin_opt.zero_grad(set_to_none=True)
        _, a = snntorch_run(twin, spikes, count_spikes=False)
        torch.nn.functional.cross_entropy(a, y).backward()
        twin_opt.step()

    fns = {"ours_fwd": ours_forward, "snn_fwd": snn_forward, "step_fwd": step_forward,
           "ours_train": ours_train, "snn_train": snn_train}
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    order = list(fns)
    for r in range(args.repeats):
        for k in (order if r % 2 == 0 else order[::-1]):
            times[k].append(timed(fns[k], device))
    ratio = lambda a, b: statistics.median(tb / ta for ta, tb in zip(times[a], times[b]))  # noqa: E731
    say(f"{args.repeats} interleaved repeats, median of per-repeat ratios (higher = neurocredit faster)")
    say("| what | ratio |\n|---|---|")
    say(f"| forward: neurocredit vs snnTorch | {ratio('ours_fwd', 'snn_fwd'):.2f}x |")
    say(f"| forward: neurocredit vs per-step lif_step loop | {ratio('ours_fwd', 'step_fwd'):.2f}x |")
    say(f"| forward: per-step lif_step loop vs snnTorch | {ratio('step_fwd', 'snn_fwd'):.2f}x |")
    say(f"| training step: {args.rule} (neurocredit) vs snnTorch BPTT | "
        f"{ratio('ours_train', 'snn_train'):.2f}x |")
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text("\n".join(lines) + "\n\n`" + " ".join(["python benchmarks/spiking_speed.py",
                                                                 *_argv()]) + "`\n")


def _argv() -> list[str]:
    import sys
    return sys.argv[1:]


if __name__ == "__main__":
    main()
