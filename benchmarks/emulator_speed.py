"""On-chip learning speed: training samples per second of the fixed-point emulator for one chip,
of N chips (default 64) learning at once in one vectorised run (``emulate_chips``, as
``session.train_chips`` streams them; aggregate and per chip), and of Lava with learning
(``lava.backend.run_learning``, Loihi2SimCfg fixed point, stopped by its context manager), all
in the same run, printed with the thread count and the ratios (issue 14 goal: >= 20x Lava per
chip, >= 500x aggregated over 64 chips).  The Lava run's learned weights are compared with the
emulator's on the same samples (they must be equal), and the first ``--ref-chips`` chips of the
N-chip run with the reference engine (apply_series on every synapse, ``columns=False``): the
active-column fast path must not change a weight.  Streams are built before the clocks start.
The emulator runs the compiled kernel (``chip.kernels``, numba) where it covers the circuit; its
compile (or cache load) is paid in a warm-up call and printed apart, and the numpy column path
(``emulate_chips(kernel=False)``, the code before the kernel) is timed in the same run and its
weights compared (``--numpy-path 0`` skips it).  Every timing is the median of ``--repeats`` runs
(Lava's steady-state rate moves a lot with the machine's load); ``--threads`` sets torch's and
numba's thread counts (the kernel spreads chips over numba's threads).

Circuits: DFA (the rule's default spec) on digits 64-128-10 and MNIST-5k 784-256-10, from an
untrained NIR graph (chip k from seed k), streamed as a training session streams
(session.stream_timing: 16 input steps + 4 blank per sample).  Lava is timed, after a warm-up
run, on ``--lava-samples`` samples and on 1 sample: the steady-state rate is (n - 1) samples over
the difference, the whole-call rate includes build, compile and runtime start.  Ratios are taken
in this run only (the machine is shared).

    python benchmarks/emulator_speed.py [--data digits,mnist5k] [--chips 64] [--samples 20]
                                        [--lava-samples 21] [--ref-chips 4]
                                        [--out benchmarks/results/emulator_speed.md]
    python benchmarks/emulator_speed.py --inference     # the earlier inference-only comparison
    python benchmarks/emulator_speed.py --check-rev 7f51aa8   # learned weights == the code of a revision

The inference-only comparison (``--inference``): Lava fixed point vs the emulator on a trained
64-H-10 digits MLP, time per sample on the same graph in the same run, outputs compared.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch


NETWORKS = {"digits": [64, 128, 10], "mnist5k": [784, 256, 10]}


def learning_circuits(data_name: str, rule_name: str, seeds: list[int]):
    """(circuits, one per seed, of ``rule_name`` on ``data_name``'s network; timing; data)."""
    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.commands.pipeline import load_data
    from neurocredit.rules import resolve_rule

    rule, sizes = resolve_rule(rule_name), NETWORKS[data_name]
    spec = C.default_spec(rule, len(sizes) - 2)
    circuits = [C.build_circuit(compile_graph(S.initial_graph(sizes, seed=s)).fixed_circuit, rule,
                                C.random_feedback(rule, sizes, s), spec) for s in seeds]
    return circuits, S.stream_timing(len(sizes) - 2), load_data(data_name, seeds[0])


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all threads) and by its children that ended."""
    import resource
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + ch.ru_utime + ch.ru_stime


def learning_speed(data_name: str, args, say) -> None:
    """Print samples/s of 1 chip, of ``args.chips`` chips in one run, and of Lava with learning."""
    from neurocredit.chip import kernels as KN
    from neurocredit.chip import session as S
    from neurocredit.chip.emulator import emulate_chips, emulate_learning
    from neurocredit.lava.backend import run_learning

    seeds = list(range(args.seed, args.seed + args.chips))
    circuits, timing, data = learning_circuits(data_name, args.rule, seeds)
    per = timing.steps + timing.blank
    x, y = data.x_train.numpy(), data.y_train.numpy()
    n_cls = circuits[0].meta["n_target"]

    def stream(k: int, n: int) -> dict:
        idx = (np.arange(n) + k * n) % len(y)
        return S.sample_stream(x[idx], y[idx], n_cls, timing.steps, timing.blank, seeds[k], timing.target_delay)

    say(f"{data_name} {'-'.join(map(str, NETWORKS[data_name]))} {args.rule} learning circuit, "
        f"{timing.steps} + {timing.blank} steps/sample, torch threads {torch.get_num_threads()}, numba threads "
        f"{KN.numba.get_num_threads() if KN.available() else '-'}, "
        f"OMP_NUM_THREADS {os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs seen")
    n1, reps = args.samples, max(1, args.repeats)
    one_stream = stream(0, n1)
    plan = KN.kernel_plan(circuits[0])
    emulate_learning(circuits[0], stream(0, 1), rng_seed=seeds[0])     # warm-up: the kernel's compile
    say(f"  compiled kernel (chip.kernels, numba {KN.numba.__version__ if KN.available() else '-'}): "
        f"{'used' if plan is None else 'not used: ' + plan}; compile or cache load {KN.compile_seconds():.2f} s, "
        f"paid once per process, outside the clocks; every rate below is the median of {reps} runs")

    cpu_rates: dict[str, float] = {}

    def median_rate(run, n: int, key: str = "") -> tuple[float, object]:
        times, cpus, out = [], [], None
        for _ in range(reps):
            t, c = time.perf_counter(), cpu_seconds()
            out = run()
            times.append(time.perf_counter() - t)
            cpus.append(cpu_seconds() - c)
        cpu_rates[key] = n / max(sorted(cpus)[len(cpus) // 2], 1e-9)
        return n / sorted(times)[len(times) // 2], out

    one, _ = median_rate(lambda: emulate_learning(circuits[0], one_stream, rng_seed=seeds[0]), n1, "one")
    say(f"  emulator, 1 chip, {n1} samples:             {one:9.1f} samples/s")
    nk = max(1, args.chips_samples)
    streams = [stream(k, nk) for k in range(len(circuits))]
    agg, (many_w, _) = median_rate(lambda: emulate_chips(circuits, streams, seeds), len(circuits) * nk, "agg")
    each = agg / len(circuits)
    say(f"  emulator, {len(circuits)} chips in one run, {nk} samples each: {agg:9.1f} samples/s aggregate, "
        f"{each:.2f} samples/s per chip ({len(circuits) * nk / agg:.2f} s)")
    if args.numpy_path:     # before: the numpy column path (emulate_chips(kernel=False)), same run
        one_np, _ = median_rate(lambda: emulate_chips([circuits[0]], [one_stream], seeds[:1], kernel=False), n1)
        agg_np, (np_w, _) = median_rate(lambda: emulate_chips(circuits, streams, seeds, kernel=False),
                                        len(circuits) * nk)
        same_np = all(np.array_equal(many_w[k][c.name], np_w[k][c.name])
                      for k in range(len(circuits)) for c in circuits[0].plastic)
        say(f"  numpy column path (kernel=False), before: 1 chip {one_np:.1f} samples/s, {len(circuits)} chips "
            f"{agg_np:.1f} samples/s aggregate; kernel / numpy: {one / one_np:.1f}x, {agg / agg_np:.1f}x; learned "
            f"weights of all {len(circuits)} chips equal: {same_np}")
    nref = min(args.ref_chips, len(circuits))
    if nref:    # the fast path changes nothing: apply_series on every synapse, chip for chip
        t = time.perf_counter()
        ref_w, _ = emulate_chips(circuits[:nref], streams[:nref], seeds[:nref], columns=False)
        tr = time.perf_counter() - t
        same_ref = all(np.array_equal(many_w[k][c.name], ref_w[k][c.name])
                       for k in range(nref) for c in circuits[0].plastic)
        say(f"  learned weights of chips 0-{nref - 1} equal to the reference engine (apply_series on every "
            f"synapse, {nref * nk / tr:.1f} samples/s): {same_ref}")
    nl = args.lava_samples
    lava_1, lava_n = stream(0, 1), stream(0, nl)
    run_learning(circuits[0], lava_1, rng_seed=seeds[0])      # warm-up: imports, first compile
    runs = []
    lava_cpu = []
    for _ in range(reps):       # Lava's rate moves with the load: the median of reps (1-sample, n-sample) pairs
        t, c = time.perf_counter(), cpu_seconds()
        run_learning(circuits[0], lava_1, rng_seed=seeds[0])
        t1, c1 = time.perf_counter() - t, cpu_seconds() - c
        t, c = time.perf_counter(), cpu_seconds()
        lava_w, _ = run_learning(circuits[0], lava_n, rng_seed=seeds[0])
        tn, cn = time.perf_counter() - t, cpu_seconds() - c
        runs.append(((nl - 1) / max(tn - t1, 1e-9), nl / tn, t1, tn))
        lava_cpu.append((nl - 1) / max(cn - c1, 1e-9))
    runs.sort()
    lava_steady, lava_all, t1, tn = runs[len(runs) // 2]
    lava_cpu_rate = sorted(lava_cpu)[len(lava_cpu) // 2]
    emu_w, _ = emulate_learning(circuits[0], lava_n, rng_seed=seeds[0])
    same = all(np.array_equal(lava_w[c.name], emu_w[c.name]) for c in circuits[0].plastic)
    say(f"  Lava with learning, {nl} samples: {tn:.1f} s -> {lava_all:.2f} samples/s all included, "
        f"{lava_steady:.2f} samples/s steady state (1 sample: {t1:.1f} s; steady state of the {reps} runs: "
        f"{', '.join(f'{r[0]:.2f}' for r in runs)}); learned weights equal to the emulator's: {same}")
    say(f"  ratio 1 chip / Lava:              {one / lava_steady:8.1f}x steady state ({one / lava_all:.1f}x all "
        f"included); goal >= 20x: {'met' if one / lava_steady >= 20 else 'NOT met'}")
    say(f"  ratio per chip of {len(circuits)} / Lava:        {each / lava_steady:8.2f}x steady state")
    say(f"  {len(circuits)} chips in one run vs 1 chip (aggregate / single-chip samples/s): {agg / one:.2f}x")
    say(f"  ratio {len(circuits)} chips aggregate / Lava:  {agg / lava_steady:8.1f}x steady state "
        f"({agg / lava_all:.1f}x all included); goal >= 500x over 64 chips: "
        f"{'met' if agg / lava_steady >= 500 and len(circuits) >= 64 else 'NOT met'}")
    say(f"  per CPU-second (this process and its finished children, e.g. Lava's runtime processes; the machine's "
        f"load moves wall time): emulator 1 chip {cpu_rates['one']:.1f}, {len(circuits)} chips "
        f"{cpu_rates['agg']:.1f} samples per CPU-s; Lava {lava_cpu_rate:.2f} (steady state); ratios "
        f"{cpu_rates['one'] / lava_cpu_rate:.1f}x, {cpu_rates['agg'] / lava_cpu_rate:.1f}x")


def check_against_revision(rev: str, data_name: str, rules: list[str], n_chips: int, n: int, say) -> None:
    """Learned weights (and spikes) of emulate_chips now against the emulator module of git
    revision ``rev`` (loaded from ``git show``) on the same fixed run: ``n_chips`` chips x ``n``
    samples of ``data_name`` for each rule."""
    import importlib.util
    import subprocess
    import sys
    import tempfile

    from neurocredit.chip import session as S
    from neurocredit.chip.emulator import emulate_chips

    text = subprocess.run(["git", "show", f"{rev}:neurocredit/chip/emulator.py"], capture_output=True, text=True,
                          check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "emulator_at_rev.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("emulator_at_rev", path)
        old = importlib.util.module_from_spec(spec)
        sys.modules["emulator_at_rev"] = old
        spec.loader.exec_module(old)
    for rule in rules:
        seeds = list(range(n_chips))
        circuits, timing, data = learning_circuits(data_name, rule, seeds)
        x, y = data.x_train.numpy(), data.y_train.numpy()
        streams = [S.sample_stream(x[k * n:(k + 1) * n], y[k * n:(k + 1) * n], circuits[0].meta["n_target"],
                                   timing.steps, timing.blank, k, timing.target_delay) for k in seeds]
        pops = [p.name for p in circuits[0].populations]
        t = time.perf_counter()
        w_old, r_old = old.emulate_chips(circuits, streams, seeds, record=pops)
        t_old = time.perf_counter() - t
        t = time.perf_counter()
        w_new, r_new = emulate_chips(circuits, streams, seeds, record=pops)
        t_new = time.perf_counter() - t
        same = all(np.array_equal(w_old[k][c], w_new[k][c]) for k in seeds for c in w_old[k])
        same_r = all(np.array_equal(r_old[k][c], r_new[k][c]) for k in seeds for c in r_old[k])
        moved = sum(int((w_new[k][c.name] != circuits[k].weights()[c.name]).sum()) for k in seeds
                    for c in circuits[0].plastic)
        say(f"  {rule} {data_name}, {n_chips} chips x {n} samples: learned weights identical to revision {rev}: "
            f"{same}, spikes identical: {same_r} ({moved} weights moved; {t_old:.2f} s then, {t_new:.2f} s now)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inference", action="store_true", help="the inference-only comparison (below)")
    ap.add_argument("--data", default="digits,mnist5k")
    ap.add_argument("--rule", default="dfa")
    ap.add_argument("--chips", type=int, default=64)
    ap.add_argument("--chips-samples", type=int, default=10, help="samples per chip in the N-chip run")
    ap.add_argument("--lava-samples", type=int, default=21)
    ap.add_argument("--check-rev", default="", help="instead of timing: compare learned weights with the "
                    "emulator of this git revision (e.g. 7f51aa8, before the active-column path) on fixed runs")
    ap.add_argument("--check-rules", default="dfa,fa,kp,drtp")
    ap.add_argument("--ref-chips", type=int, default=4, help="chips of the N-chip run rerun on the reference "
                    "engine (emulate_chips(columns=False)) and compared weight for weight; 0: skip")
    ap.add_argument("--numpy-path", type=int, default=1, help="also time the numpy column path "
                    "(emulate_chips(kernel=False)) in the same run, and compare its weights; 0: skip")
    ap.add_argument("--out", default="", help="also write the printed lines (markdown) to this file")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--samples", type=int, default=20, help="samples run in Lava (--inference); samples "
                    "streamed through 1 chip (learning)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of every timing (median): emulator, "
                    "numpy path and Lava")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from neurocredit.chip import kernels as KN
    if KN.available():          # the kernel spreads chips over numba's threads: as many as torch's
        KN.numba.set_num_threads(min(args.threads, KN.numba.config.NUMBA_NUM_THREADS))
    if not args.inference:
        lines: list[str] = []

        def say(line: str) -> None:
            print(line, flush=True)
            lines.append(line)

        for name in args.data.split(","):
            if args.check_rev:
                check_against_revision(args.check_rev, name, args.check_rules.split(","), 8, 3, say)
            else:
                learning_speed(name, args, say)
        if args.out:
            out = Path(args.out)
            tmp = out.with_suffix(out.suffix + ".tmp")
            tmp.write_text("# On-chip learning speed (benchmarks/emulator_speed.py)\n\n```\n" + "\n".join(lines)
                           + "\n```\n")
            os.replace(tmp, out)
            print(f"wrote {out}")
        return

    from neurocredit.chip import sample_graphs
    from neurocredit.chip.compile import compile_graph
    from neurocredit.lava.run import run_lava
    from neurocredit.chip.emulator import emulate

    graph, info = sample_graphs.digits_mlp(hidden=args.hidden, epochs=args.epochs, seed=args.seed, steps=20,
                                 readout="lif")
    circuit = compile_graph(graph).fixed_circuit
    data = info["data"]
    x_all = sample_graphs.rate_code(data.x_test, args.steps, seed=args.seed + 7)
    n = args.samples
    x = x_all[:, :n]
    names = [p.name for p in circuit.populations]

    t0 = time.perf_counter()
    lava1 = run_lava(circuit, x[:, :1], record=names)
    t1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    lava = run_lava(circuit, x, record=names)
    tn = time.perf_counter() - t0

    def timed(xx):
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = emulate(circuit, xx, record=names)
            ts.append(time.perf_counter() - t)
        return sorted(ts)[len(ts) // 2], out

    te_n, emu = timed(x)
    te_all, _ = timed(x_all)
    same = all(np.array_equal(lava[k], emu[k].numpy()) for k in names)
    same1 = all(np.array_equal(lava1[k], emu[k].numpy()[:, :1]) for k in names)
    lava_total = tn / n
    lava_steady = (tn - t1) / (n - 1) if n > 1 else float("nan")
    emu_n, emu_all = te_n / n, te_all / x_all.shape[1]
    spikes = sum(int(emu[k].sum()) for k in names)
    print(f"graph: 64-{args.hidden}-10 LIF ({info['how']}), {args.steps} steps/sample, "
          f"torch threads {torch.get_num_threads()}; {spikes} spikes in the {n} Lava samples")
    print(f"Lava fixed_pt, {n} samples:       {tn:8.2f} s  -> {1e3 * lava_total:9.2f} ms/sample "
          f"(all included), {1e3 * lava_steady:9.2f} ms/sample steady state (1 sample: {t1:.2f} s)")
    print(f"emulator, same {n} samples:       {te_n:8.4f} s  -> {1e3 * emu_n:9.3f} ms/sample")
    print(f"emulator, {x_all.shape[1]} samples (test set): {te_all:8.4f} s  -> {1e3 * emu_all:9.3f} ms/sample")
    print(f"outputs identical (Lava vs emulator, every layer, every step): {same and same1}")
    print(f"ratio Lava/emulator, same {n} samples:  {lava_total / emu_n:8.1f}x  (steady state {lava_steady / emu_n:.1f}x)")
    print(f"ratio Lava/emulator, emulator batched over the test set: {lava_total / emu_all:8.1f}x "
          f"(steady state {lava_steady / emu_all:.1f}x); goal >= 100x: "
          f"{'met' if lava_steady / emu_all >= 100 else 'NOT met'}")


if __name__ == "__main__":
    main()
