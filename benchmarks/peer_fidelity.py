"""How faithfully a compiled peer model keeps its behaviour: a spiking CNN on digits (two Conv2d,
SumPool2d, AvgPool2d, Flatten, Affine; built with the nir package) classified by the torch float
NIR simulation and by the fixed-point chip (the emulator, bit-exact with Lava), and their
agreement; plus the exact-timing check of float chip vs torch on graphs with biases and leaks.

The CNN is a ReLU network trained in torch (backprop, a few seconds) and converted to LIF neurons
with nearly no leak by data-based threshold normalisation (each layer's 99.9th-percentile
activation becomes its threshold), written with ``neurocredit.chip.sample_graphs.cnn_graph``.  Both runs get
the same seeded rate-coded spike trains; chip outputs are read in NIR time
(``neurocredit.lava.run.run_aligned``: each Dense delays by one step).  Optionally the first
``--lava-samples`` test samples also run in Lava fixed point and are checked against the emulator.

    python benchmarks/peer_fidelity.py [--steps 40] [--epochs 30] [--lava-samples 0] [--rsnn-seeds 0 1 2]
        [--calib-samples 128] [--only-rsnn] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F


def train_relu_cnn(data, c1: int, c2: int, epochs: int, seed: int) -> dict:
    """A ReLU CNN with the CNN graph's structure (pool1 a sum pool, pool2 an average pool)."""
    torch.manual_seed(seed)
    conv1, conv2 = torch.nn.Conv2d(1, c1, 3, padding=1), torch.nn.Conv2d(c1, c2, 3, padding=1)
    fc = torch.nn.Linear(c2 * 4, 10)
    params = [*conv1.parameters(), *conv2.parameters(), *fc.parameters()]
    opt = torch.optim.Adam(params, lr=3e-3)
    x, y = data.x_train.float().reshape(-1, 1, 8, 8), data.y_train.long()

    def forward(x):
        a1 = F.relu(conv1(x))
        a2 = F.relu(conv2(F.avg_pool2d(a1, 2) * 4))
        return a1, a2, fc(F.avg_pool2d(a2, 2).flatten(1))

    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(forward(x[idx])[2], y[idx]).backward()
            opt.step()
    with torch.no_grad():
        a1, a2, out = forward(x)
        lam1, lam2 = float(torch.quantile(a1.flatten(), 0.999)), float(torch.quantile(a2.flatten(), 0.999))
        lam3 = float(torch.quantile(F.relu(out).flatten(), 0.999))
        xt = data.x_test.float().reshape(-1, 1, 8, 8)
        ann_acc = float((forward(xt)[2].argmax(1) == data.y_test).float().mean())
    d = lambda t: t.detach().double().numpy()  # noqa: E731
    return {"conv1": d(conv1.weight) / lam1, "b1": d(conv1.bias) / lam1,
            "conv2": d(conv2.weight) * lam1 / lam2, "b2": d(conv2.bias) / lam2,
            "fc": d(fc.weight) * lam2 / lam3, "bfc": d(fc.bias) / lam3, "ann_acc": ann_acc}


def cnn_fidelity(args) -> list[str]:
    from neurocredit.chip.compile import compile_graph
    from neurocredit.data import load_digits
    from neurocredit.chip import sample_graphs
    from neurocredit.lava.run import run_aligned
    from neurocredit.nir.simulate import simulate

    data = load_digits(seed=args.seed, standardise=False)
    t0 = time.perf_counter()
    w = train_relu_cnn(data, 8, 16, args.epochs, args.seed)
    graph = sample_graphs.cnn_graph(seed=args.seed, channels=(8, 16), weights=w, tau=1.0)
    program = compile_graph(graph, fixed_point=True)
    n = len(data.y_test) if args.samples is None else args.samples
    x = sample_graphs.rate_code(data.x_test[:n], args.steps, seed=args.seed + 1)      # [T, N, 64]
    y = data.y_test[:n].numpy()
    with torch.no_grad():
        ref = simulate(graph, torch.as_tensor(x.reshape(args.steps, n, 1, 8, 8), dtype=torch.float32),
                       dt=program.dt).numpy()
    fixed = run_aligned(program, x, backend="emulator", fixed_point=True)["output"]
    flt = run_aligned(program, x, backend="emulator", fixed_point=False)["output"]
    from neurocredit.chip.quantise import calibrate
    t1 = time.perf_counter()
    cal = calibrate(program, sample_graphs.rate_code(data.x_train[:args.calib_samples], args.steps, seed=args.seed + 20))
    t_cal = time.perf_counter() - t1
    calib = run_aligned(cal.program, x, backend="emulator", fixed_point=True)["output"]
    pred = {k: v.reshape(args.steps, n, -1).sum(axis=0).argmax(axis=1) for k, v in
            (("torch", ref), ("fixed", fixed), ("float", flt), ("calibrated", calib))}
    acc = {k: 100 * float((p == y).mean()) for k, p in pred.items()}
    agree = 100 * float((pred["torch"] == pred["fixed"]).mean())
    exact = bool(np.array_equal(flt.reshape(ref.shape), ref != 0))
    rep = {l.name: l for l in program.layers}
    lines = [f"CNN on digits ({n} test samples, {args.steps} steps, rate-coded; conv 1->8 3x3, sum pool 2, "
             f"conv 8->16 3x3, avg pool 2, dense 64->10; trained + converted in "
             f"{time.perf_counter() - t0:.1f} s)",
             f"  ReLU CNN (before conversion): {100 * w['ann_acc']:.2f} %",
             f"  torch float (NIR simulation): {acc['torch']:.2f} %",
             f"  chip float (emulator):        {acc['float']:.2f} %  (output spikes equal torch's: {exact})",
             f"  chip fixed point (emulator):  {acc['fixed']:.2f} %",
             f"  chip fixed point, calibrated (chip.quantise on {args.calib_samples} training digits, "
             f"{t_cal:.1f} s): {acc['calibrated']:.2f} %",
             *("    " + r for r in cal.table().splitlines()),
             f"  torch float vs fixed point: classification agreement {agree:.2f} % of test samples",
             "  layers: " + "; ".join(f"{l.name} {l.neurons} neurons {l.synapses} synapses "
                                      f"({l.shared_weights} shared weights), w err "
                                      f"{100 * (l.weight_rel_rms_error or 0):.2f} %"
                                      for l in program.layers if l.kind != "onset")]
    if args.lava_samples:
        from neurocredit.lava.run import run_lava
        k = args.lava_samples
        circuit = program.fixed_circuit
        names = [p.name for p in circuit.populations]
        from neurocredit.chip.emulator import emulate
        lava = run_lava(circuit, x[:, :k], record=names)
        emu = emulate(circuit, x[:, :k], record=names)
        same = all(np.array_equal(lava[p], emu[p].numpy()) for p in names)
        lines.append(f"  Lava fixed point == emulator on the first {k} samples, every layer: {same}")
    return lines


def timing(args) -> list[str]:
    """Float chip vs torch with biases and leaks, with and without the onset construction."""
    from neurocredit.chip.compile import compile_graph
    from neurocredit.chip.emulator import emulate
    from neurocredit.chip.timing import CLOCK, ONSET
    from neurocredit.chip import sample_graphs
    from neurocredit.nir.simulate import simulate

    lines = ["Float chip vs torch, graphs with Affine biases and leaks (v_leak != 0), 200 steps, 4 samples:"]
    for seed, rec in ((3, False), (4, True), (8, True)):
        g = sample_graphs.random_graph(seed=seed, recurrent=rec, bias=True, hidden=(16, 12))
        rng = np.random.default_rng(seed)
        for node in g.nodes.values():
            if type(node).__name__ in ("LIF", "CubaLIF"):
                node.v_leak[:] = rng.normal(0, 0.3)
        x = sample_graphs.rate_code(rng.random((4, 10)), 200, seed=seed, max_rate=0.5)
        row = []
        for exact in (False, True):
            p = compile_graph(g, fixed_point=False, exact_timing=exact)
            names = [q.name for q in p.float_circuit.populations if q.name not in (CLOCK, ONSET)]
            emu = emulate(p.float_circuit, x, record=names)
            _, ref = simulate(g, torch.as_tensor(x, dtype=torch.float32), dt=p.dt, record=True)
            diff = sum(int((emu[n].numpy()[p.depth[n]:] != (ref[n].numpy()[:-p.depth[n]] != 0)).sum())
                       for n in names)
            total = sum(int((ref[n].numpy() != 0).sum()) for n in names)
            row.append(f"{'onset populations' if exact else 'bias from step 1'}: {diff} of {total} spikes differ")
        lines.append(f"  seed {seed} ({'recurrent' if rec else 'feed-forward'}): " + "; ".join(row))
    return lines


def train_rsynaptic(data, hidden: int, steps: int, epochs: int, seed: int):
    """An snnTorch network Linear -> RSynaptic (recurrent CubaLIF) -> Linear -> Synaptic (CubaLIF),
    reset to zero (as Lava's LIF), trained by BPTT with snnTorch's surrogate gradient on spike
    counts of rate-coded digits; exported with ``snntorch.export_nir.export_to_nir``."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    from neurocredit.chip import sample_graphs

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = torch.nn.Linear(64, hidden)
            self.rsyn = snn.RSynaptic(alpha=torch.full((hidden,), 0.8), beta=torch.full((hidden,), 0.9),
                                      threshold=torch.ones(hidden), linear_features=hidden,
                                      reset_mechanism="zero")
            self.fc2 = torch.nn.Linear(hidden, 10)
            self.out = snn.Synaptic(alpha=torch.full((10,), 0.8), beta=torch.full((10,), 0.9),
                                    threshold=torch.ones(10), reset_mechanism="zero")

        def forward(self, x):          # one step (what the exporter traces)
            return self.step(x, *self.init())

        def init(self):
            s1, i1, m1 = self.rsyn.init_rsynaptic()
            i2, m2 = self.out.init_synaptic()
            return s1, i1, m1, i2, m2

        def step(self, x, s1, i1, m1, i2, m2):
            s1, i1, m1 = self.rsyn(self.fc1(x), s1, i1, m1)
            s2, i2, m2 = self.out(self.fc2(s1), i2, m2)
            return s2, s1, i1, m1, i2, m2

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xtr = torch.as_tensor(sample_graphs.rate_code(data.x_train, steps, seed=seed + 10), dtype=torch.float32)
    ytr = data.y_train.long()
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(ytr), generator=g).split(64):
            state = net.init()
            count = 0
            for t in range(steps):
                s2, *state = net.step(xtr[t, idx], *state)
                count = count + s2
            opt.zero_grad()
            F.cross_entropy(count, ytr[idx]).backward()
            opt.step()
    return export_to_nir(net, torch.zeros(1, 64), ignore_dims=[0])


def rsnn_quantisation(args) -> list[str]:
    """Fixed point vs float on a recurrent CubaLIF network, default and calibrated quantisation."""
    from neurocredit.chip.compile import compile_graph
    from neurocredit.chip.emulator import emulate
    from neurocredit.chip.quantise import calibrate, count_correlation, spike_agreement
    from neurocredit.data import load_digits
    from neurocredit.chip import sample_graphs
    from neurocredit.lava.run import run_aligned
    from neurocredit.nir.simulate import simulate

    data = load_digits(seed=args.seed, standardise=False)
    steps = args.rsnn_steps
    t0 = time.perf_counter()
    graph = train_rsynaptic(data, args.rsnn_hidden, steps, args.rsnn_epochs, args.seed)
    t_train = time.perf_counter() - t0
    program = compile_graph(graph, fixed_point=True)
    # calibration: rate-coded training digits (never the test set), another seed than training
    xc = sample_graphs.rate_code(data.x_train[:args.calib_samples], steps, seed=args.seed + 20)
    t0 = time.perf_counter()
    cal = calibrate(program, xc)
    t_cal = time.perf_counter() - t0
    n = len(data.y_test) if args.samples is None else args.samples
    x = sample_graphs.rate_code(data.x_test[:n], steps, seed=args.seed + 1)
    y = data.y_test[:n].numpy()
    with torch.no_grad():
        ref = simulate(graph, torch.as_tensor(x, dtype=torch.float32), dt=program.dt).numpy()
    counts = {"torch float": ref.reshape(steps, n, -1).sum(axis=0)}
    for label, prog, fixed in (("chip float", program, False), ("fixed default", program, True),
                               ("fixed calibrated", cal.program, True)):
        counts[label] = run_aligned(prog, x, backend="emulator", fixed_point=fixed)["output"] \
            .reshape(steps, n, -1).sum(axis=0)
    acc = {k: 100 * float((c.argmax(axis=1) == y).mean()) for k, c in counts.items()}
    names = [c.name for c in cal.layers]
    with torch.no_grad():
        rec = {lab: {k: v.numpy() for k, v in emulate(circ, x, record=names).items()}
               for lab, circ in (("float", program.float_circuit), ("default", program.fixed_circuit),
                                 ("calibrated", cal.program.fixed_circuit))}
    lines = [f"seed {args.seed}: recurrent CubaLIF (snnTorch RSynaptic {args.rsnn_hidden} hidden -> Synaptic 10, reset zero, "
             f"exported with export_to_nir) on rate-coded digits, {steps} steps, {args.rsnn_epochs} epochs "
             f"BPTT in {t_train:.1f} s; calibrated on {args.calib_samples} training digits in {t_cal:.1f} s",
             "  per-layer table on the calibration set (chip.quantise; layer err with float inputs):"]
    lines += ["    " + r for r in cal.table().splitlines()]
    lines.append(f"  test set ({n} samples), chip layer vs chip float, end to end:")
    for name in names:
        parts = [f"{lab} agreement {spike_agreement(rec[lab][name], rec['float'][name]):.3f} "
                 f"count r {count_correlation(rec[lab][name], rec['float'][name]):.3f}"
                 for lab in ("default", "calibrated")]
        lines.append(f"    {name}: " + "; ".join(parts))
    # sensitivity: float chip with every weight times (1 + r N(0, 1)), against float
    from dataclasses import replace
    rng = np.random.default_rng(args.seed)
    flt = program.float_circuit
    sens = []
    for r in (1e-3, 1e-2):
        noisy = replace(flt, connections=tuple(replace(c, weights=np.asarray(c.weights) * (
            1 + r * rng.standard_normal(np.shape(c.weights)))) for c in flt.connections))
        with torch.no_grad():
            out = {k: v.numpy() for k, v in emulate(noisy, x, record=names).items()}
        sens.append(f"{100 * r:g} %: " + ", ".join(f"{k} {spike_agreement(out[k], rec['float'][k]):.3f}"
                                                  for k in names))
    werr = ", ".join(f"{l.name} {100 * (l.weight_rel_rms_error or 0):.2f} %" for l in program.layers
                     if l.name in names)
    lines.append(f"  sensitivity (float, weights x (1 + r N(0,1)), agreement with float): " + "; ".join(sens)
                 + f"; default fixed-point weight rel. rms error: {werr}")
    lines.append("  test accuracy: " + ", ".join(f"{k} {v:.2f} %" for k, v in acc.items()))
    gap = {k: acc["torch float"] - acc[k] for k in ("fixed default", "fixed calibrated")}
    lines.append(f"  fixed point below torch float: default {gap['fixed default']:.2f} pp, calibrated "
                 f"{gap['fixed calibrated']:.2f} pp (goal: within 1 pp)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--samples", type=int, default=None, help="test samples (default: all 360)")
    ap.add_argument("--lava-samples", type=int, default=0, help="also run this many samples in Lava")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rsnn-hidden", type=int, default=48)
    ap.add_argument("--rsnn-seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="one recurrent network trained per seed (data split, weights, spike trains)")
    ap.add_argument("--rsnn-steps", type=int, default=25)
    ap.add_argument("--rsnn-epochs", type=int, default=15)
    ap.add_argument("--calib-samples", type=int, default=128)
    ap.add_argument("--only-rsnn", action="store_true", help="only the recurrent quantisation part")
    ap.add_argument("--out", default=None, help="also write the lines to this Markdown file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lines = [f"peer_fidelity (torch threads: {args.threads})"]
    if not args.only_rsnn:
        lines += cnn_fidelity(args) + timing(args)
    for seed in args.rsnn_seeds:
        lines += rsnn_quantisation(argparse.Namespace(**{**vars(args), "seed": seed}))
    for line in lines:
        print(line, flush=True)
    if args.out:
        from pathlib import Path

        from neurocredit.io_utils import atomic_path
        with atomic_path(args.out, suffix=".md") as tmp:
            Path(tmp).write_text("# peer_fidelity\n\n```\n" + "\n".join(lines) + "\n```\n")
if __name__ == "__main__":
    main()
