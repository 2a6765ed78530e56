"""Cost per training sample of on-chip learning circuits, printed beside Renner et al. 2024
(backprop on Loihi, MNIST 400-400-10: 0.59 mJ and 1.5 ms per training sample).

For each rule and network the learning circuit is compiled (neurocredit.chip: the network from
an untrained NIR graph, the rule's product series and feedback pathway), the first ``--samples``
training samples are streamed through the emulator as a training session streams them
(session.stream_timing: input steps, blank steps, delayed target; learning every step), and
neurocredit.chip.cost counts what the chip does: synaptic ops (spikes × fan-out, graded messages
× fan-out), spikes, learning-engine updates (synapses touched), time steps, cores (Loihi 2 and
Loihi 1 capacities).  Energy and latency use Loihi 1's per-operation figures (Davies et al. 2018
Table 2, hardware/loihi.toml): Loihi 2 per-op figures were not found (hardware/loihi2.toml), so
its energy is n/a.  Renner's figures are whole-chip measurements on Loihi 1 (static power
included), ours a sum of dynamic per-op energies: a lower bound, not a like-for-like measurement.

    python benchmarks/onchip_cost.py [--rules fa,dfa,kp,drtp] [--samples 20] [--out FILE.md]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

NETWORKS = {"digits": [64, 128, 10], "mnist5k": [784, 400, 400, 10]}


def circuit_for(rule_name: str, data_name: str, seed: int):
    """(learning circuit, stream timing, data) of ``rule_name`` on ``data_name``'s network."""
    from neurocredit.chip import circuits as C
    from neurocredit.chip import session as S
    from neurocredit.chip.compile import compile_graph
    from neurocredit.commands.pipeline import load_data
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(rule_name)
    sizes = NETWORKS[data_name]
    n_hidden = len(sizes) - 2
    base = compile_graph(S.initial_graph(sizes, seed=seed)).fixed_circuit
    circuit = C.build_circuit(base, rule, C.random_feedback(rule, sizes, seed), C.default_spec(rule, n_hidden))
    return circuit, S.stream_timing(n_hidden), load_data(data_name, seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default="fa,dfa,kp,drtp")
    ap.add_argument("--data", default="digits,mnist5k")
    ap.add_argument("--samples", type=int, default=20, help="training samples streamed per circuit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="", help="also write the table (markdown) to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurocredit.chip import cost

    ref = cost.reference("loihi")
    lines = [f"cost per training sample, first {args.samples} training samples from the untrained network, "
             f"seed {args.seed}; energy/latency: Loihi 1 per-op figures (Davies et al. 2018 Table 2); "
             f"Loihi 2 per-op figures not found (energy n/a); 1 thread",
             "",
             "| rule | network | synops | graded synops | spikes | learning updates | steps | cores L2 | "
             "cores L1 | energy µJ (L1) | latency ms (L1) | Renner 2024 µJ | Renner 2024 ms | E / Renner | "
             "latency / Renner |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for line in lines:
        print(line, flush=True)
    for data_name in args.data.split(","):
        for rule_name in args.rules.split(","):
            t0 = time.process_time()
            circuit, timing, data = circuit_for(rule_name, data_name, args.seed)
            x = data.x_train.numpy()[:args.samples]
            y = data.y_train.numpy()[:args.samples]
            counts = cost.training_cost(circuit, x, y, timing.steps, timing.blank, timing.target_delay, args.seed)
            ps = counts.per_sample()
            c2 = sum(cost.cores_used(circuit, "loihi2").values())
            c1 = cost.cores_used(circuit, "loihi")
            est = cost.estimate(counts, "loihi", c1)
            net = "-".join(map(str, NETWORKS[data_name]))
            row = (f"| {rule_name} | {data_name} {net} | {ps['synops']:,.0f} | {ps['graded_synops']:,.0f} | "
                   f"{ps['spikes']:,.0f} | {ps['learning_updates']:,.0f} | {ps['steps']:.0f} | {c2} | "
                   f"{sum(c1.values())} | {est.energy_uJ:.1f} | {est.latency_ms:.4f} | {ref['energy_uJ']:.0f} | "
                   f"{ref['latency_ms']} | {est.energy_uJ / ref['energy_uJ']:.3f} | "
                   f"{est.latency_ms / ref['latency_ms']:.2f} |")
            lines.append(row)
            print(row, flush=True)
            split = ", ".join(f"{k} {v:.1f}" for k, v in est.energy_by_kind.items())
            print(f"  {rule_name} {data_name}: energy split µJ: {split} ({time.process_time() - t0:.1f} s CPU)",
                  file=sys.stderr, flush=True)
    notes = ["",
             "Energy (L1) = Σ count × Davies 2018 Table 2 figure: synaptic op 23.6 pJ (graded ops charged "
             "the same), spike message 1.7 pJ, neuron update 81 / 52 pJ (active / inactive), synaptic "
             "(learning) update 120 pJ; static power, barrier energy, tile hops and host I/O are not "
             "counted (not found), so it is a lower bound beside Renner's measured whole-chip figure.",
             "Latency (L1) = Σ over steps of (the slowest population's ops × time per op / its cores + the "
             "465 ns mesh barrier): 3.5 ns per synaptic op, 6.1 ns per synaptic update, 8.4 / 5.3 ns per "
             "neuron update.  Counts are the emulator's (bit-exact to Lava's fixed point), per sample."]
    for line in notes:
        print(line)
    lines += notes
    if args.out:
        out = Path(args.out)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
