"""On-chip learning accuracy, one table rule x data x depth: emulated fixed point on chip (only
local information, every update a Loihi three-factor product) vs the same rule in float torch on
the same spiking architecture vs the rate-network BP reference, mean ± sd over seeds, with the
cost per training sample (neurocredit.chip.cost).  Rows accumulate in
``benchmarks/results/onchip_accuracy.json`` (one per data, network, rule; a rerun replaces its
row) and the table is rewritten to ``benchmarks/results/onchip_accuracy.md`` after every row.

    python benchmarks/onchip_accuracy.py [--data digits,mnist5k] [--rules dfa,fa,drtp,kp]
                                         [--seeds 0,1,2] [--depths 1] [--quick]
    python benchmarks/onchip_accuracy.py --lava 200 [--rules dfa]   # Lava == emulator on MNIST-5k

Defaults (network, epochs, base lr per data and rule, lr decay) come from
``mappings/onchip_learning.toml`` (measured: benchmarks/onchip_study.py ->
results/onchip_study_<data>.md); streaming from ``chip.defaults.onchip_timing`` (the data's steps, else
``chip.session.stream_timing``'s); the spec from
``chip.circuits.default_spec``.  ``--depths 1,2,3``: the depth table (hidden layers of the data's
width).  ``--quick``: 1 seed, 1 epoch of at most 1000 samples, float 5 epochs (a smoke run,
not a figure).  Seeds run side by side as independent chips in one emulator run
(``chip.session.train_chips``, each equal to its own single-chip run).

Float torch: ``neurocredit.sim.spiking.train_spiking`` (LIF, spike-count readout, the chip's input
steps, measured settings of ``mappings/spiking_training.toml``); rate BP: ``neurocredit.sim.train.train`` (ReLU, SGD momentum,
``benchmarks/accuracy_config.toml``'s settings, the lr of its ``[onchip_bp.<data>]`` per depth where
measured) with the same hidden widths.

Decision (chip and float alike, ``neurocredit.neurons.decision``): the class is the output neuron
with the most spikes, a tie broken by the output voltage after the sample's last step.  Every row
also prints the share of test samples whose top count ties and the accuracy of plain argmax of the
counts beside it (``decision <rule>: ...``; the row's ``decision`` field in the JSON).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import statistics
import sys
import time
import tomllib
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
def sizes_for(data_name: str, hidden: list[int]) -> list[int]:
    return [64 if data_name == "digits" else 784, *hidden, 10]


def load(data_name: str, seed: int):
    from neurocredit.data import load_digits, load_mnist5k
    return (load_digits if data_name == "digits" else load_mnist5k)(seed=seed, standardise=False)


def onchip(rule_name: str, data_name: str, hidden: list[int], seeds: list[int], epochs: int, lr: float,
           lr_decay: float, samples: int | None, steps: int | None = None) -> tuple[list[dict], object, object]:
    """Final test figures per seed (seeds side by side as chips; ``chip.session.held_out_figures``:
    'test_acc' with the chip's decision, 'test_acc_counts' plain argmax of the counts, 'test_tied');
    (figures, first circuit, timing)."""
    from neurocredit.chip import session as S
    from neurocredit.chip.defaults import learning_circuit, onchip_timing
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(rule_name)
    sizes = sizes_for(data_name, hidden)
    timing = onchip_timing(data_name, len(hidden))
    if steps:
        timing = S.StreamTiming(steps, timing.blank, timing.target_delay)
    circuits = [learning_circuit(rule, sizes, s, data_name, lr=lr) for s in seeds]
    _, hists = S.train_chips(circuits, [load(data_name, s) for s in seeds], epochs, seeds, steps=timing.steps,
                             blank=timing.blank, samples=samples, target_delay=timing.target_delay,
                             lr_decay=lr_decay,
                             log=lambda line: print(f"    {rule.name} {line}", file=sys.stderr, flush=True))
    return [h[-1] for h in hists], circuits[0], timing


def float_spiking_history(rule_name: str, data_name: str, hidden: list[int], seed: int, settings: dict,
                          steps: int | None = None) -> list[float]:
    """Test accuracy (:func:`float_spiking_epochs`' 'test_acc') after each epoch of the float spiking network (the chip's rule, sizes, rate code
    and ``steps``, default the data's chip steps; LIF spike-count readout) trained under
    ``settings`` (keys of mappings/spiking_training.toml, ``neurocredit.sim.spiking.train_config``).
    A rule with settling error dynamics trains as its one-pass settled form where it has one
    (``neurocredit.rules.dynamical.settled_rule``: fixed-prediction PC, e.g. pc_onchip); else the
    spiking backend refuses it."""
    return [h["test_acc"] for h in float_spiking_epochs(rule_name, data_name, hidden, seed, settings, steps)]


def float_spiking_epochs(rule_name: str, data_name: str, hidden: list[int], seed: int, settings: dict,
                         steps: int | None = None) -> list[dict]:
    """:func:`float_spiking_history`'s per-epoch figures (``neurocredit.sim.spiking.evaluate_figures``:
    'test_acc' with the chip's decision, 'test_acc_counts', 'test_tied')."""
    from neurocredit.chip.defaults import onchip_timing
    from neurocredit.rules import resolve_rule
    from neurocredit.rules.dynamical import settled_rule
    from neurocredit.sim.spiking import train_config, train_spiking
    steps = steps or onchip_timing(data_name, len(hidden)).steps
    cfg = train_config(settings, seed=seed, steps=steps, readout="lif")
    rule = resolve_rule(rule_name)
    try:
        rule = settled_rule(rule)
    except ValueError:
        pass
    return train_spiking(rule, load(data_name, seed), hidden, cfg).history


def float_spiking(rule_name: str, data_name: str, hidden: list[int], seed: int, settings: dict, steps: int) -> dict:
    """Final test figures of :func:`float_spiking_epochs`."""
    return float_spiking_epochs(rule_name, data_name, hidden, seed, settings, steps)[-1]


def decision_line(rule: str, chip: list[dict], flt: list[dict]) -> str:
    """One printed line per row: the share of test samples whose top output count is tied, and the
    accuracy with plain argmax of the counts (ties to the lowest index) -> with the voltage
    tie-break (the chip's decision, ``neurocredit.neurons.decision``), mean over seeds, on chip and
    in float spiking torch."""
    def part(name: str, figs: list[dict]) -> str:
        if not figs or "test_tied" not in figs[0]:
            return f"{name} —"
        m = lambda k: 100 * statistics.mean(f[k] for f in figs)  # noqa: E731
        return (f"{name} tied {m('test_tied'):.2f} % of test samples, counts only {m('test_acc_counts'):.2f} % "
                f"-> voltage tie-break {m('test_acc'):.2f} % ({m('test_acc') - m('test_acc_counts'):+.2f} pp)")
    return f"  decision {rule}: {part('on chip', chip)}; {part('float spiking', flt)}"


def rate_bp(data_name: str, hidden: list[int], seed: int, epochs: int | None) -> float:
    from neurocredit.data import load_dataset
    from neurocredit.rules import get_rule
    from neurocredit.sim.train import TrainConfig, train
    with open(Path(__file__).resolve().parent / "accuracy_config.toml", "rb") as fh:
        config = tomllib.load(fh)
    s = config["defaults"][data_name]
    lrs = config.get("onchip_bp", {}).get(data_name, {}).get("lr_by_depth", [])   # measured per depth
    lr = lrs[len(hidden) - 1] if len(hidden) <= len(lrs) else s["lr"]
    cfg = TrainConfig(epochs=epochs or s["epochs"], batch_size=s["batch_size"], lr=lr, momentum=s["momentum"],
                      activation=s["activation"], seed=seed, progress=False, metrics=False)
    return train(get_rule("bp"), load_dataset(data_name, seed=seed), hidden, cfg).final["test_acc"]


def cost_columns(circuit, data_name: str, timing, seed: int, n: int = 20) -> dict:
    """Per training sample on the untrained network, first ``n`` samples: synaptic ops, learning
    updates, Loihi 1 energy (µJ) and latency (ms) from Davies et al. 2018, cores (Loihi 2)."""
    from neurocredit.chip import cost
    d = load(data_name, seed)
    counts = cost.training_cost(circuit, d.x_train.numpy()[:n], d.y_train.numpy()[:n], timing.steps, timing.blank,
                                timing.target_delay, seed)
    ps = counts.per_sample()
    est = cost.estimate(counts, "loihi", cost.cores_used(circuit, "loihi"))
    return {"synops": ps["synops"] + ps["graded_synops"], "updates": ps["learning_updates"],
            "uJ": est.energy_uJ if est else float("nan"), "ms": est.latency_ms if est else float("nan"),
            "cores": sum(cost.cores_used(circuit, "loihi2").values())}


def ms(v: list[float]) -> str:
    if not v:
        return "—"
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{100 * statistics.mean(v):.2f} ± {100 * sd:.2f}"


HEADER = ("| data | network | steps | rule | on chip % | float spiking % | chip − float pp | rate BP % | "
          "chip per seed | epochs | synops/sample | learning updates/sample | µJ/sample (Loihi 1) | "
          "ms/sample (Loihi 1) | cores (Loihi 2) |")


SHORT = {"batch_size": "batch", "surrogate_slope": "slope", "weight_gain": "init x", "feedback_scale": "B x",
         "momentum": "momentum", "weight_decay": "wd"}


def trainer_label(ft: dict) -> str:
    """'60 ep cosine' (+ optimizer, batch, slope, ... where set) of a row's float trainer settings."""
    label = f"{ft['epochs']} ep"
    label += f" {ft['schedule']}" if ft.get("schedule", "constant") != "constant" else ""
    label += f" {ft['optimizer']}" if ft.get("optimizer", "sgd") != "sgd" else ""
    return label + "".join(f" {name} {ft[k]:g}" for k, name in SHORT.items() if k in ft)


def row_line(r: dict) -> str:
    gap = 100 * (statistics.mean(r["chip"]) - statistics.mean(r["float"])) if r["float"] and r["chip"] else float("nan")
    c = r["cost"]
    cost = (f"{c['synops']:,.0f} | {c['updates']:,.0f} | {c['uJ']:.1f} | {c['ms']:.3f} | {c['cores']}" if c
            else "— | — | — | — | —")
    ft = r.get("float_train") or {}
    trainer = f" ({trainer_label(ft)})" if ft and r["float"] else ""
    return (f"| {r['data']} | {r['net']} | {r.get('steps', '')} | {r['rule']} | {ms(r['chip'])} | {ms(r['float'])}{trainer} | {'—' if gap != gap else f'{gap:+.2f}'} | "
            f"{ms(r['bp'])} | {' '.join(f'{100 * a:.1f}' for a in r['chip'])} | {r['epochs']} | {cost} |")


def save_row(row: dict) -> dict:
    """Add ``row`` to results/onchip_accuracy.json (replacing the same data/net/rule/quick) and
    rewrite results/onchip_accuracy.md from all rows; a file lock serialises concurrent runs.
    Returns the row as stored (columns this run skipped filled from the earlier row)."""
    from neurocredit.io_utils import atomic_path
    store = RESULTS / "onchip_accuracy.json"
    with open(RESULTS / ".onchip_accuracy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = json.loads(store.read_text()) if store.exists() else []
        key = lambda r: (r["data"], r["net"], r["rule"], r.get("quick", False), r.get("steps"))  # noqa: E731
        old = next((r for r in rows if key(r) == key(row)), None)
        if old is not None:             # a column this run skipped keeps its earlier figures
            row = {**row, **{k: old[k] for k in ("chip", "float", "bp", "cost", "epochs", "chip_seconds", "float_train")
                             if k in old and not row.get(k)}}
        rows = sorted([r for r in rows if key(r) != key(row)] + [row], key=lambda r: (r.get("quick", False), r["data"],
                                                                                        len(r["net"]), r["net"], r.get("steps", 0), r["rule"]))
        with atomic_path(store) as tmp:
            Path(tmp).write_text(json.dumps(rows, indent=1))
        lines = ["# On-chip learning accuracy (benchmarks/onchip_accuracy.py)", "",
                 "On chip: fixed-point emulator (bit-exact with Lava's engine), defaults of mappings/onchip_learning.toml; "
                 "float spiking: neurocredit.sim.spiking, same rule and network; rate BP: ReLU MLP, same hidden widths. "
                 "Cost per training sample: first 20 samples, untrained network, Loihi 1 per-op figures (Davies et al. "
                 "2018), beside Renner et al. 2024's 590 µJ / 1.5 ms (400-400-10 BP on Loihi).", "",
                 HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
        lines += [row_line(r) for r in rows if not r.get("quick")]
        quick = [row_line(r) for r in rows if r.get("quick")]
        if quick:
            lines += ["", "Quick (smoke) rows, not figures:", "", HEADER, "|" + "---|" * (HEADER.count("|") - 1), *quick]
        with atomic_path(RESULTS / "onchip_accuracy.md") as tmp:
            Path(tmp).write_text("\n".join(lines) + "\n")
    return row


def lava_check(n: int, rule_name: str = "dfa", seed: int = 0) -> None:
    """Stream ``n`` MNIST-5k training samples (the data's defaults) through Lava with learning
    (``lava.backend.run_learning``, Loihi2SimCfg fixed point) and through the emulator from the
    same untrained circuit and Lava seed; print and write (results/onchip_lava_mnist.md) whether
    every learned weight is equal, and how many synapses learning changed."""
    import numpy as np

    from neurocredit.chip import session as S
    from neurocredit.chip.defaults import learning_circuit, onchip_defaults, onchip_timing
    from neurocredit.chip.emulator import emulate_learning
    from neurocredit.io_utils import atomic_path
    from neurocredit.lava.backend import run_learning
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(rule_name)
    d = onchip_defaults(rule, "mnist5k")
    sizes = sizes_for("mnist5k", list(d["hidden"]))
    timing = onchip_timing("mnist5k", len(d["hidden"]))
    circuit = learning_circuit(rule, sizes, seed, "mnist5k")
    data = load("mnist5k", seed)
    stream = S.sample_stream(data.x_train.numpy()[:n], data.y_train.numpy()[:n], 10, timing.steps, timing.blank, seed,
                             timing.target_delay)
    t0 = time.perf_counter()
    emu, _ = emulate_learning(circuit, stream, rng_seed=seed)
    t_emu = time.perf_counter() - t0
    t0 = time.perf_counter()
    lava, _ = run_learning(circuit, stream, rng_seed=seed)
    t_lava = time.perf_counter() - t0
    start = circuit.weights()
    names = [c.name for c in circuit.plastic]
    same = all(np.array_equal(lava[k], emu[k]) for k in names)
    changed = sum(int((np.asarray(emu[k]) != np.asarray(start[k])).sum()) for k in names)
    total = sum(int(np.size(start[k])) for k in names)
    line = (f"Lava vs emulator, MNIST-5k {'-'.join(map(str, sizes))} {rule.name} on chip, {n} training samples "
            f"({len(next(iter(stream.values())))} steps, seed {seed}): "
            f"learned weights equal weight for weight: {same} ({changed:,} of {total:,} plastic synapses changed by "
            f"learning); Lava {t_lava:.0f} s, emulator {t_emu:.1f} s, 1 thread")
    print(line, flush=True)
    with atomic_path(RESULTS / "onchip_lava_mnist.md") as tmp:
        Path(tmp).write_text("# Lava with learning vs the emulator on MNIST-5k (benchmarks/onchip_accuracy.py --lava N)"
                             "\n\n" + line + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits,mnist5k")
    ap.add_argument("--rules", default="dfa,fa,drtp,kp")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--depths", default="1", help="hidden layers (the data's width each): 1 or e.g. 1,2,3")
    ap.add_argument("--epochs", type=int, default=None, help="on-chip epochs (default: the data's)")
    ap.add_argument("--samples", type=int, default=None, help="training samples per epoch on chip (default: all)")
    ap.add_argument("--float-epochs", type=int, default=None, help="0: skip the float column")
    ap.add_argument("--bp-epochs", type=int, default=None, help="0: skip the rate BP column")
    ap.add_argument("--steps", type=int, default=None, help="input steps per sample, chip and float (default: "
                    "the data's table steps, else chip.session.stream_timing's for the depth)")
    ap.add_argument("--no-chip", action="store_true", help="only the float and BP columns (rows keep their "
                    "on-chip figures)")
    ap.add_argument("--quick", action="store_true", help="1 seed, 1 epoch x 1000 samples, float 5 epochs (smoke)")
    ap.add_argument("--lava", type=int, default=0, help="only: N MNIST-5k training samples in Lava with learning "
                    "and in the emulator, weights compared (results/onchip_lava_mnist.md)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.lava:
        lava_check(args.lava, args.rules.split(",")[0])
        return
    from neurocredit.chip.defaults import onchip_defaults
    from neurocredit.rules import resolve_rule
    from neurocredit.sim.spiking import trainer_settings

    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    print(f"on-chip accuracy: data {args.data}, rules {args.rules}, depths {args.depths}, seeds {seeds}"
          f"{' (quick)' if args.quick else ''}; torch threads {torch.get_num_threads()}", flush=True)
    print(HEADER, flush=True)
    bp_cache: dict[tuple, list[float]] = {}
    for data_name in args.data.split(","):
        for depth in (int(d) for d in args.depths.split(",")):
            for rule_name in args.rules.split(","):
                rule = resolve_rule(rule_name)
                d = onchip_defaults(rule, data_name)
                width = int(d["hidden"][0])
                hidden = list(d["hidden"]) if depth == len(d["hidden"]) else [width] * depth
                epochs = 1 if args.quick else (args.epochs or int(d["epochs"]))
                samples = args.samples or (1000 if args.quick else None)
                t0 = time.perf_counter()
                from neurocredit.chip.defaults import onchip_timing
                timing = onchip_timing(data_name, len(hidden))
                if args.steps:
                    timing = type(timing)(args.steps, timing.blank, timing.target_delay)
                chip, circuit, chip_figs = [], None, []
                if not args.no_chip:
                    chip_figs, circuit, timing = onchip(rule.name, data_name, hidden, seeds, epochs, d["lr"], d["lr_decay"],
                                                   samples, args.steps)
                    chip = [f["test_acc"] for f in chip_figs]
                t_chip = time.perf_counter() - t0
                fs = trainer_settings(data_name)
                fe = args.float_epochs if args.float_epochs is not None else (5 if args.quick else fs["epochs"])
                fs = {**fs, "epochs": fe}
                try:
                    flt_figs = [float_spiking(rule.name, data_name, hidden, s, fs, timing.steps) for s in seeds] if fe else []
                    flt = [f["test_acc"] for f in flt_figs]
                except Exception as exc:      # the spiking backend refuses the rule (e.g. relaxation dynamics)
                    if type(exc).__name__ != "SpikingRuleError":
                        raise
                    print(f"  float spiking: {exc}", flush=True)
                    flt, flt_figs = [], []
                be = args.bp_epochs if args.bp_epochs is not None else (5 if args.quick else None)
                key = (data_name, tuple(hidden))
                if key not in bp_cache:
                    bp_cache[key] = [rate_bp(data_name, hidden, s, be) for s in seeds] if be != 0 else []
                row = {"data": data_name, "net": "-".join(map(str, sizes_for(data_name, hidden))), "rule": rule.name,
                       "chip": chip, "float": flt, "bp": bp_cache[key], "seeds": seeds, "quick": args.quick,
                       "epochs": f"{epochs}{'' if samples is None else f' x {samples}'}", "lr": d["lr"],
                       "lr_decay": d["lr_decay"], "steps": timing.steps, "chip_seconds": round(t_chip),
                       "float_train": fs if flt else {},
                       "decision": {"chip": chip_figs, "float": flt_figs},
                       "cost": cost_columns(circuit, data_name, timing, seeds[0]) if circuit else {}}
                row = save_row(row)
                print(row_line(row) + f"  ({t_chip:.0f} s on chip)", flush=True)
                print(decision_line(rule.name, chip_figs, flt_figs), flush=True)


if __name__ == "__main__":
    main()
