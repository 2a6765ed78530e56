"""Readout ceiling of on-chip learning: how much of a rule's gap to float lies in the hidden layer's
features and how much in the output layer's learning.

    python benchmarks/onchip_readout.py --data digits --rules pc_onchip,dfa,kp [--seeds 0,1,2]
                                        [--variants defaults,centered,gate0,readout] [--tag TEXT]

Per rule and seed, the chip learns with the rule's on-chip defaults (``chip.defaults.onchip_defaults``,
the table's epochs and schedule; seeds side by side as chips, ``chip.session.train_chips``).  Then the
training and test sets stream through the learned network (the inference circuit, batched emulator,
the test input spikes of ``chip.session.held_out_figures``) and two float linear readouts are fitted to
the hidden layer's spike counts per sample:

* logistic: multinomial logistic regression (softmax cross-entropy, the float column's objective:
  ``sim.losses`` 'ce', e_L = softmax(a) − y, whose components sum to zero);
* ridge: least squares to the one-hot target (an MSE objective, like the chip's output error
  e = g (z − y*) per step), the best of α ∈ {0.1, 1, 10, 100} on the test set (an upper bound).

The chip's own figure (its spike-count decision, ties by voltage) beside them: chip < ridge ≈ logistic
says the output layer's learning loses what the features hold; ridge ≈ chip < logistic, the objective.
Also printed: the hidden firing rate (spikes per neuron and step on the training set) and the share of
hidden neurons silent on every training sample.

Counterfactual variants (tests of where the gap lies, not rules; none is what a rule compiles to):

* ``centered``: the output error units compute a zero-sum error e = g (I − J/n)(z − y*) (g = 20: the
  weights 18 / −2 are even, as Lava keeps mixed-sign weights; mixed-sign out->error and target->error),
  like softmax-CE's;
* ``gate0``: the rule's feedback given a backward derivative, with the box-car gate at 0 of threshold
  (learn where v ≥ 0; KP's gate on digits) — the compiler refuses the gate for a rule without f';
* ``readout``: after the schedule, 5 more epochs of the output layer alone (hidden error shift 30: t = 0)
  from the base lr at x0.6/epoch: does more readout learning on the same features approach the ceiling?

Prints one table per rule and writes it to ``benchmarks/results/onchip_study_<data>.md`` (section
``readout · <rule> · <net><tag>``, replaced on a rerun).  One thread, as benchmarks/onchip_study.py.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onchip_accuracy import load, sizes_for  # noqa: E402  (the sibling benchmarks)
from onchip_study import RESULTS, write_section  # noqa: E402

CENTER_GAIN = 20        # error gain whose centring g/n is an even integer for n = 10 outputs
VARIANTS = ("defaults", "centered", "gate0", "readout")


def centered(circuit, n_out: int):
    """``circuit`` with zero-sum output error units: out->error g (I − J/n), target->error −g (I − J/n)."""
    from neurocredit.chip.ir import Connection
    if (CENTER_GAIN * 2) % n_out:
        raise SystemExit(f"centered: error gain {CENTER_GAIN} / {n_out} outputs is not an even integer")
    eye, ones = np.eye(n_out, dtype=np.int64), np.ones((n_out, n_out), np.int64)
    m = CENTER_GAIN * eye - (CENTER_GAIN // n_out) * ones
    conns = [replace(c, weights=(m if c.name == "out->error" else -m), sign_mode="mixed")
             if c.name in ("out->error", "target->error") else c for c in circuit.connections]
    if not all(isinstance(c, Connection) for c in conns):
        raise SystemExit("centered: unexpected connection type")
    return replace(circuit, connections=conns)


def chips_for(rule_name: str, variant: str, data_name: str, sizes: list[int], seeds: list[int]):
    """The learning circuits (one per seed) of ``variant`` and the rule's (lr_decay, epochs)."""
    from neurocredit.chip.defaults import learning_circuit, onchip_defaults
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(rule_name)
    d = onchip_defaults(rule, data_name)
    over: dict = {}
    if variant == "gate0":
        rule = replace(rule, feedback=replace(rule.feedback, derivative=True))
        over["gate"] = 0.0
    if variant == "centered":
        over["error_gain"] = CENTER_GAIN
    circuits = [learning_circuit(rule, sizes, s, data_name, **over) for s in seeds]
    if variant == "centered":
        circuits = [centered(c, sizes[-1]) for c in circuits]
    return circuits, d["lr_decay"], int(d["epochs"])


def readout_only(circuits: list, learned: list):
    """The learned chips with the hidden layers' error shift 30 (t = 0: only the output layer learns)
    and the base product series (the schedule restarts at the base lr)."""
    out = []
    for base, c in zip(circuits, learned):
        outs = set(c.outputs)
        pops = [replace(p, third_shift=30) if (p.kind == "third" and p.name not in outs) else p for p in c.populations]
        series = {k.name: k.plastic for k in base.connections}
        out.append(replace(c, populations=pops, connections=[replace(k, plastic=series[k.name]) for k in c.connections]))
    return out


def counts(circuit, x: np.ndarray, steps: int, seed: int) -> tuple[np.ndarray, str]:
    """Hidden spike counts per sample [N, n_hidden] of the (last) hidden layer of an inference circuit."""
    from neurocredit.chip import session as S
    from neurocredit.chip.emulator import emulate
    hidden = [p.name for p in circuit.populations if p.name not in circuit.outputs][-1]
    return emulate(circuit, S.input_spikes(x, steps, seed), record=[hidden])[hidden].numpy().sum(axis=0), hidden


def ceilings(circuit, weights: dict, data, steps: int, seed: int) -> dict:
    """Float readouts of the learned chip's hidden counts: logistic / ridge test accuracy, hidden rate, dead share."""
    from sklearn.linear_model import LogisticRegression, RidgeClassifier
    from neurocredit.chip import session as S
    inf = S.inference_circuit(circuit, weights)
    h_tr, _ = counts(inf, data.x_train.numpy(), steps, seed + 5)
    h_te, _ = counts(inf, data.x_test.numpy(), steps, seed + 999)      # the test spikes of held_out_figures
    y_tr, y_te = data.y_train.numpy(), data.y_test.numpy()
    logistic = LogisticRegression(max_iter=3000).fit(h_tr, y_tr).score(h_te, y_te)
    ridge = max(RidgeClassifier(alpha=a).fit(h_tr, y_tr).score(h_te, y_te) for a in (0.1, 1.0, 10.0, 100.0))
    return {"logistic": logistic, "ridge": ridge, "rate": float(h_tr.mean() / steps), "dead": float((h_tr.sum(0) == 0).mean())}


def fmt(v: list[float], pct: bool = True) -> str:
    k = 100 if pct else 1
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{k * statistics.mean(v):.2f} ± {k * sd:.2f}" if pct else f"{statistics.mean(v):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits", choices=("digits", "mnist5k"))
    ap.add_argument("--rules", default="pc_onchip")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default="defaults")
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurocredit.chip import session as S
    from neurocredit.chip.defaults import onchip_defaults, onchip_timing
    from neurocredit.rules import resolve_rule

    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    bad = set(variants) - set(VARIANTS)
    if bad:
        raise SystemExit(f"unknown variants {sorted(bad)} (known: {', '.join(VARIANTS)})")
    datas = [load(args.data, s) for s in seeds]
    quiet = lambda line: print(f"    {line}", file=sys.stderr, flush=True)  # noqa: E731
    for rule_name in args.rules.split(","):
        hidden = list(onchip_defaults(resolve_rule(rule_name), args.data)["hidden"])
        sizes = sizes_for(args.data, hidden)
        timing = onchip_timing(args.data, len(hidden))
        net = "-".join(map(str, sizes))
        t0 = time.perf_counter()
        rows = []
        for variant in variants:
            circuits, lr_decay, epochs = chips_for(rule_name, "defaults" if variant == "readout" else variant,
                                                   args.data, sizes, seeds)
            kw = dict(steps=timing.steps, blank=timing.blank, target_delay=timing.target_delay, log=quiet)
            learned, hists = S.train_chips(circuits, datas, epochs, seeds, lr_decay=lr_decay, **kw)
            label = variant
            if variant == "readout":
                learned, h2 = S.train_chips(readout_only(circuits, learned), datas, 5, [s + 100 for s in seeds],
                                            lr_decay=0.6, **kw)
                hists = [h + g[1:] for h, g in zip(hists, h2)]
                label = "readout only +5 epochs"
            per = [ceilings(c, c.weights(), d, timing.steps, s) for c, d, s in zip(learned, datas, seeds)]
            chip = [h[-1]["test_acc"] for h in hists]
            pairs = " ".join(f"{100 * a:.1f}/{100 * p['logistic']:.1f}" for a, p in zip(chip, per))
            rows.append(f"| {label} | {fmt(chip)} | {fmt([p['logistic'] for p in per])} | {fmt([p['ridge'] for p in per])} | "
                        f"{pairs} | "
                        f"{fmt([p['rate'] for p in per], False)} | {fmt([p['dead'] for p in per], False)} |")
            print(rows[-1], flush=True)
        head = (f"{args.data} {net}, {rule_name}, seeds {seeds}, its on-chip defaults (table epochs and schedule); "
                f"readouts of the learned chip's hidden spike counts (benchmarks/onchip_readout.py: "
                f"{time.perf_counter() - t0:.0f} s, 1 thread)")
        text = "\n".join([head, "", "| variant | chip % | logistic readout % | ridge readout % | per seed chip/logistic | "
                          "hidden rate | hidden dead |", "|---|---:|---:|---:|---|---:|---:|", *rows])
        print(f"\n## readout · {rule_name} · {net}{args.tag}\n{text}\n", flush=True)
        write_section(RESULTS / f"onchip_study_{args.data}.md", f"readout · {rule_name} · {net}{args.tag}", text)


if __name__ == "__main__":
    main()
