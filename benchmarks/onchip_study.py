"""Gap-closing study for on-chip learning (emulated fixed point): one knob at a time around the
current defaults, every variant x seed an independent chip, the chips of one schedule trained side
by side in one vectorised emulator run (:func:`neurocredit.chip.session.train_chips`, each chip
equal to its own single-chip run).  Prints one table per study and writes it to
``benchmarks/results/onchip_study_<data>.md`` (one section per study, replaced on a rerun).

    python benchmarks/onchip_study.py --data digits --rule dfa --study lr,decay,steps [--seeds 0,1,2]
                                      [--epochs 5] [--hidden 128] [--samples N]

Studies (knobs of the chip only, nothing the float network lacks):

* ``lr``      base learning rate on the engine's m·2^k grid (forward products; per rule: DRTP's
              lr_scale 0.5 halves it)
* ``decay``   learning-rate factor per epoch (re-quantised onto the grid each epoch)
* ``steps``   input steps per sample (rate code; the test uses as many)
* ``blank``   silent steps after each training sample (the target delay kept): a pathway with one more
              hop (FA reads the output neurons' error compartments, one step after the error units)
              delivers its last error step into the next sample's first input step unless blank > 4
* ``coding``  input rate gain: p = min(1, g · pixel) per step (Bernoulli)
* ``shift``   hidden error right shift (third_shift): the hidden layers' learning rate / 2^s
* ``decayepochs`` OnChipSpec.decay_epochs n: a rule's weight decay (−λW, KP's on W and B) acts in the first n
              epochs only (dropped from epoch n + 1: B has aligned with Wᵀ by then), n = 1..4 beside always
* ``decayepochs2`` decay_epochs 2 / 3 / 4 with x0.6 / x0.7 per epoch and the hidden shift +0 / +1 / +2
* ``stepslr`` 24 / 32 input steps per sample with the base lr x0.5 / x0.25 (the learning per sample kept near
              16 steps' at full lr: the rule learns on every step)
* ``outinit`` OnChipSpec.output_init: the output layer's initial weights x 0 / 0.25 (learned feedback without
              decay keeps B − Wᵀ = B0 − W0ᵀ: a small common start aligns B), and 0 with lr x2 and the hidden shift +1
* ``oshift``  output error right shift (out_third_shift): the output layer's learning rate / 2^s
* ``gain``    output error gain e = g (z − y*): both layers' rate (and the output trace's range)
* ``gate``    box-car derivative gate (fraction of threshold) on the hidden error
* ``gatelow`` the gate at 0 / 0.1 / 0.2 of threshold beside off
* ``exp``     forward weight exponent offset o: W_int / 2^o at exponent e + o (o > 0: headroom
              for learning, coarser steps; o < 0: finer, the largest clipped)
* ``fbscale`` feedback_scale (|B_int|) with the hidden shift that keeps B e / 2^s the same size;
              for learned B (KP) the scale it starts at
* ``bdecay``  weight decay of a rule's weight-only terms (KP: −λW and −λB) x factor
* ``nodecay`` the same terms dropped (λ x0) beside λ x1
* ``hold``    OnChipSpec.schedule_hold (the lr schedule stops where a constant would reach the engine's
              floor: the decay keeps its ratio to learning), with x0.7/epoch, lr /2, λ x0.5, lr x2 λ x0.5
* ``holdlr``  schedule_hold at lr /2 with x0.7 and x0.9 per epoch, and at the base lr with x0.9
* ``decayat2`` the decay on B and W2 only at λ x0.25 / x0.5
* ``holdshift`` schedule_hold at x0.6/epoch with the hidden shift +0/+1/+2, and shift +2 at the defaults
* ``decayat`` where a learned-feedback rule's weight decay acts: λ x0.25, lr x2 with λ x0.25, the decay
              on B and W2 only (dropped on the input connection), the same with schedule_hold
* ``headroom`` the output layer one weight exponent coarser (exp +1 with hidden_exp_offset −1: twice the
              integer range at the output, the hidden grid unchanged), alone (twice the output's float
              step) and with output shift 1 (the same float step) and the hidden shift −1 / −2 (a pathway
              that reads the output's error compartment gets it halved)
* ``oexp``    the same with OnChipSpec.output_exp_offset +1 (no round trip of the hidden weights): output
              shift 1 (the output's float step kept), with the hidden shift unchanged (a pathway from the
              error units) and −1 (a pathway from the output's error compartment: FA, KP, PC)
* ``target``  the target class's spike rate per step in the training stream (evenly spaced
              spikes; 1: every step, so the output error g (z - 1) pushes toward saturation)
* ``tgain``   target rate 0.5 with error gain 16 / 32 (the same error at z = 1 as rate 1 and
              gain 16 / 32 would reach at half the rate)
* ``epochs``  test accuracy after every epoch of the default schedule
* ``hop``     hop_shift: the error shift of a hidden layer whose pathway reads the next hidden
              layer's error t (FA family, 2+ hidden layers) rather than the error units; t_l =
              B_int t_(l+1) / 2^s keeps the error's scale from layer to layer at s = log2(|B_int|)
* ``hexp``    hidden forward weight exponent offset o (OnChipSpec.hidden_exp_offset: W_int / 2^o at e + o,
              o < 0 a finer grid) with the hidden shift s + o that keeps the float step lr·t·2^e the
              same (one update is 2^−o weight units), alone and with output shift 1; controls: output
              shift 1 alone, o = −1 at the default shift (half the float step), o = −1 with output shift 2
* ``carry``   OnChipSpec.tag_carry k (chip.carry): the hidden connections' sub-LSB updates low-passed on the
              synapse's tag (dt = 2^s products − 2^-k t, dw = 2^-(k+s) t) for k = 2, 4, beside off
* ``tdelay``  the target delay d (the label's target from step d to d + steps − 1 of a sample; the output's
              first spikes come a few steps after the input's, its last ones into the blank) with the blank
* ``targetgain`` OnChipSpec.target_gain g_y: the error units compute e = g z − g_y y* (g the error gain, 16): with
              y* = 1 on every step the label's error is +(g − g_y) where it spikes and −g_y where it does not, zero
              on average at spike rate g_y / g, at whichever steps (target rate r < 1 fixes the steps instead)
* ``freeze``  control: the hidden layer frozen (hidden shift 30: t = 0, only the output layer learns, a
              readout of fixed random spiking features) beside the defaults
* ``float``   the float spiking reference (neurocredit.sim.spiking, same rule, network and input
              steps) under several trainers: SGD momentum (the settings of
              mappings/spiking_training.toml), SGD with a cosine schedule, Adam with a cosine schedule, more epochs, and the chip's
              regime in float (online: batch 1, no momentum, 2-6 epochs), also with loss 'mse' (½‖a − y*‖² on the
              spike counts a, y* one-hot) instead of softmax cross-entropy

Each variant's chips share one stream length and product series (lr, decay, steps, target and bdecay are
per run; shift, gain, gate, exp, fbscale and coding per chip).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from onchip_accuracy import cost_columns, float_spiking_history, load, sizes_for  # noqa: E402  (the sibling benchmark)

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Variant:
    """One point of a study: ``run`` fields change the product series or the stream (one
    train_chips call each), ``chip`` fields change one chip (spec fields, coding gain, exponent
    offset)."""

    label: str
    run: tuple = ()          # (("lr", x), ("lr_decay", x), ("steps", n), ("bdecay", f), ("target_rate", r))
    chip: tuple = ()         # (("third_shift", s), ("gate", g), ("error_gain", g), ("feedback_scale", f),
                             #  ("coding", g), ("exp", o))


def _v(label: str, run: dict | None = None, chip: dict | None = None) -> Variant:
    return Variant(label, tuple(sorted((run or {}).items())), tuple(sorted((chip or {}).items())))


def study_variants(name: str, base_lr: float, base_shift: int) -> list[Variant]:
    """The variants of study ``name`` around the defaults (base_lr, base_shift)."""
    if name == "lr":
        return [_v(f"lr {base_lr * f:g}", {"lr": base_lr * f}) for f in (0.5, 1.0, 2.0)]
    if name == "decay":
        return [_v(f"x{d:g}/epoch", {"lr_decay": d}) for d in (1.0, 0.8, 0.6)]
    if name == "steps":
        return [_v(f"{s} steps", {"steps": s}) for s in (16, 24, 32)]
    if name == "blank":
        return [_v(f"blank {b}", {"blank": b}) for b in (4, 5, 6)]
    if name == "coding":
        return [_v(f"rate gain {g:g}", chip={"coding": g}) for g in (1.0, 2.0)]
    if name == "shift":
        return [_v(f"shift {s}", chip={"third_shift": s}) for s in range(base_shift - 1, base_shift + 3)]
    if name == "gain":
        return [_v(f"error gain {g}", chip={"error_gain": g}) for g in (8, 16, 32)]
    if name == "gate":
        return [_v(f"gate {g}", chip={"gate": g}) for g in (-1.0, 0.3, 0.6)]
    if name == "gatelow":     # the box-car gate's lower end: v >= g·threshold at the step (0: v >= 0)
        return [_v(f"gate {g}", chip={"gate": g}) for g in (-1.0, 0.0, 0.1, 0.2)]
    if name == "exp":
        return [_v(f"exp offset {o:+d}", chip={"exp": o}) for o in (-1, 0, 1)]
    if name == "fbscale":
        return [_v(f"|B| x{f:g}, shift {base_shift + s}", chip={"feedback_scale": 64.0 * f, "third_shift": base_shift + s})
                for f, s in ((1, 0), (4, 2), (16, 4), (32, 5))]
    if name == "bdecay":
        return [_v(f"λ x{f:g}", {"bdecay": f}) for f in (0.25, 0.5, 1.0, 4.0)]
    if name == "headroom":    # the output layer alone one exponent coarser (exp +1, hidden -1): twice the range
        return [_v("defaults"),
                _v("output exp +1", chip={"exp": 1, "hidden_exp_offset": -1}),
                _v("output exp +1, output shift 1", chip={"exp": 1, "hidden_exp_offset": -1, "out_third_shift": 1}),
                _v(f"output exp +1, output shift 1, shift {base_shift - 1}",
                   chip={"exp": 1, "hidden_exp_offset": -1, "out_third_shift": 1, "third_shift": base_shift - 1}),
                _v(f"output exp +1, output shift 1, shift {base_shift - 2}",
                   chip={"exp": 1, "hidden_exp_offset": -1, "out_third_shift": 1, "third_shift": base_shift - 2})]
    if name == "oexp":        # OnChipSpec.output_exp_offset: the output layer's grid alone (hidden weights untouched)
        return [_v("defaults"), _v("output exp +1, output shift 1", chip={"output_exp_offset": 1, "out_third_shift": 1}),
                _v(f"output exp +1, output shift 1, shift {base_shift - 1}",
                   chip={"output_exp_offset": 1, "out_third_shift": 1, "third_shift": base_shift - 1})]
    if name == "nodecay":     # the weight-only terms dropped (λ = 0) beside the rule's λ
        return [_v(f"λ x{f:g}", {"bdecay": f}) for f in (0.0, 1.0)]
    if name == "hold":        # OnChipSpec.schedule_hold: the lr schedule stops where a constant would reach the floor
        return [_v("defaults"), _v("hold", {"schedule_hold": True}),     # a run field: one series per run
                _v("hold, x0.7/epoch", {"lr_decay": 0.7, "schedule_hold": True}),
                _v(f"hold, lr {base_lr / 2:g}", {"lr": base_lr / 2, "schedule_hold": True}),
                _v("hold, λ x0.5", {"bdecay": 0.5, "schedule_hold": True}),
                _v(f"lr {base_lr * 2:g}, λ x0.5", {"lr": base_lr * 2, "bdecay": 0.5}),
                _v(f"hold, lr {base_lr * 2:g}, λ x0.5", {"lr": base_lr * 2, "bdecay": 0.5, "schedule_hold": True})]
    if name == "holdlr":      # schedule_hold with the per-epoch factor at the lower base lr (its decay starts nearer the floor)
        return [_v(f"hold, lr {base_lr / 2:g}, x{d:g}/epoch", {"lr": base_lr / 2, "lr_decay": d, "schedule_hold": True})
                for d in (0.7, 0.9)] + [_v(f"hold, x0.9/epoch", {"lr_decay": 0.9, "schedule_hold": True})]
    if name == "holdshift":   # a smaller hidden error (KP's aligned B reads ~3x dfa's |t|) with the faster schedule held
        return [_v(f"hold, x0.6/epoch, shift {base_shift + ds}", {"lr_decay": 0.6, "schedule_hold": True},
                   {"third_shift": base_shift + ds}) for ds in (0, 1, 2)] + \
               [_v(f"shift {base_shift + 2}", chip={"third_shift": base_shift + 2})]
    if name == "decayat2":    # the decay only on B and W2 (dropped on W1) and weaker there: W2 larger at equilibrium
        return [_v(f"λ x{f:g} on B and W2 only", {"input_nodecay": True, "bdecay": f}) for f in (0.25, 0.5)]
    if name == "decayat":     # where KP's weight decay acts: λ x0.25 (near the engine's floor), lr x2 with it, and
        # the decay kept only on the pair KP aligns (B1, W2) and dropped on the input connection W1
        return [_v("λ x0.25", {"bdecay": 0.25}), _v(f"lr {base_lr * 2:g}, λ x0.25", {"lr": base_lr * 2, "bdecay": 0.25}),
                _v("λ on B and W2 only", {"input_nodecay": True}),
                _v("λ on B and W2 only, hold", {"input_nodecay": True, "schedule_hold": True})]
    if name == "decayepochs":  # the weight decay in the first n epochs only (chip.session.epoch_circuit)
        return [_v("defaults"), *(_v(f"decay epochs {n}", {"decay_epochs": n}) for n in (1, 2, 3, 4))]
    if name == "decayepochs2":  # decay_epochs with a faster lr schedule and a smaller hidden error
        return [_v(f"decay epochs {n}, x{d:g}/epoch, shift {base_shift + ds}", {"lr_decay": d, "decay_epochs": n},
                   {"third_shift": base_shift + ds})
                for n, d, ds in ((2, 0.7, 0), (2, 0.7, 1), (2, 0.6, 1), (3, 0.6, 1), (3, 0.7, 1), (3, 0.7, 2),
                                 (4, 0.7, 1))]
    if name == "stepslr":     # more steps per sample at a lower per-step lr
        return [_v(f"{s} steps, lr {base_lr * f:g}", {"steps": s, "lr": base_lr * f})
                for s, f in ((24, 0.5), (32, 0.5), (32, 0.25))]
    if name == "outinit":     # the output layer's initial weights scaled (its grid kept): B0 − W0ᵀ small
        return [_v("defaults"), *(_v(f"output init x{f:g}", chip={"output_init": f}) for f in (0.0, 0.25)),
                _v(f"output init x0, lr {base_lr * 2:g}, shift {base_shift + 1}", {"lr": base_lr * 2},
                   {"output_init": 0.0, "third_shift": base_shift + 1})]
    if name == "oshift":
        return [_v(f"output shift {s}", chip={"out_third_shift": s}) for s in (0, 1, 2)]
    if name == "target":
        return [_v(f"target rate {r:g}", {"target_rate": r}) for r in (1.0, 0.75, 0.5, 0.25)]
    if name == "tgain":
        return [_v(f"target rate {r:g}, error gain {g}", {"target_rate": r}, {"error_gain": g})
                for r, g in ((0.5, 16), (0.5, 32), (0.5, 64))]
    if name == "epochs":
        return [_v("defaults")]
    if name == "hop":
        return [_v(f"hop shift {h}", chip={"hop_shift": h}) for h in (base_shift, base_shift + 1, base_shift + 2,
                                                                       base_shift + 3)]
    if name == "hexp":
        return [_v(f"hidden exp {o:+d}, shift {base_shift + ds}" + (f", output shift {os}" if os else ""),
                   chip={"hidden_exp_offset": o, "third_shift": base_shift + ds, "out_third_shift": os})
                for o, ds, os in ((0, 0, 0), (-1, -1, 0), (-2, -2, 0), (-1, -1, 1), (-2, -2, 1),
                                  (0, 0, 1), (-1, 0, 0), (-1, -1, 2))]   # the last three: controls
    if name == "carry":       # the tag carry of the hidden connections' updates (chip.carry), beside off
        return [_v("defaults"), *(_v(f"tag carry k {k}", {"tag_carry": k}) for k in (2, 4))]   # a run field: own series
    if name == "tdelay":      # the target window [d, d + steps) after the input's first step, d <= blank
        return [_v(f"target delay {d}, blank {b}", {"target_delay": d, "blank": b})
                for d, b in ((1, 4), (2, 4), (3, 4), (4, 4), (5, 6), (6, 6), (8, 8))]
    if name == "targetgain":  # OnChipSpec.target_gain g_y: e = g z − g_y y*, the label's error zero at rate g_y / g
        return [_v(f"target gain {g} (label rate {g / 16:g})", chip={"target_gain": g}) for g in (16, 12, 8, 4)]
    if name == "freeze":
        return [_v("defaults"), _v("hidden frozen (shift 30)", chip={"third_shift": 30})]
    if name == "float":
        return [_v(label, {"float": label}) for label in FLOAT_TRAINERS]
    raise SystemExit(f"unknown study {name!r}")


ONLINE = {"batch_size": 1, "momentum": 0.0}   # the chip's regime in float: one sample per update, no momentum
FLOAT_TRAINERS = {
    "sgd 0.005 x20": {"optimizer": "sgd", "lr": 0.005, "schedule": "constant", "epochs": 20},
    "sgd 0.005 cos x40": {"optimizer": "sgd", "lr": 0.005, "schedule": "cosine", "epochs": 40},
    "adam 1e-3 cos x30": {"optimizer": "adam", "lr": 1e-3, "schedule": "cosine", "epochs": 30},
    "adam 3e-4 cos x40": {"optimizer": "adam", "lr": 3e-4, "schedule": "cosine", "epochs": 40},
    "online sgd 0.003 cos x6": {"optimizer": "sgd", "lr": 0.003, "schedule": "cosine", "epochs": 6, **ONLINE},
    "online sgd 0.01 cos x6": {"optimizer": "sgd", "lr": 0.01, "schedule": "cosine", "epochs": 6, **ONLINE},
    "online sgd 0.01 x2": {"optimizer": "sgd", "lr": 0.01, "schedule": "constant", "epochs": 2, **ONLINE},
    "online sgd 0.003 x2": {"optimizer": "sgd", "lr": 0.003, "schedule": "constant", "epochs": 2, **ONLINE},
    # squared error on the spike counts a (one-hot target y*: sim.losses.target_vector), e = a − y*, online; a 'lif'
    # readout's a is a count (0..steps), so e is up to ~steps times ce's: smaller rates
    **{f"online sgd {lr:g} cos x6 mse": {"optimizer": "sgd", "lr": lr, "schedule": "cosine", "epochs": 6, "loss": "mse",
                                         **ONLINE} for lr in (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)}}
"""Float spiking trainers: label -> settings (keys of mappings/spiking_training.toml,
``neurocredit.sim.spiking.train_config``)."""


def float_group(rule_name: str, data_name: str, hidden: list[int], labels: list[str], seeds: list[int],
                steps: int) -> dict[str, list[list[float]]]:
    """Float spiking accuracy per trainer label: {label: [per-epoch test accuracies] per seed}
    (benchmarks/onchip_accuracy.float_spiking_history: the float column's network, data and input)."""
    out: dict[str, list[list[float]]] = {}
    for label in labels:
        for s in seeds:
            t0 = time.perf_counter()
            accs = float_spiking_history(rule_name, data_name, hidden, s, FLOAT_TRAINERS[label], steps)
            out.setdefault(label, []).append(accs)
            print(f"    float {label} seed {s}: {100 * accs[-1]:.2f} % "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return out


def scaled_decay(rule, factor: float):
    """``rule`` with every weight-only (decay) term's coefficient x ``factor``."""
    from neurocredit.rules.factors import Factor

    def scale(terms):       # factor 0: the decay terms dropped (the engine has no zero constant)
        return tuple(replace(t, coef=t.coef * factor) if tuple(t.factors) == (Factor.WEIGHT,) else t for t in terms
                     if factor or tuple(t.factors) != (Factor.WEIGHT,))
    fb = rule.feedback
    return replace(rule, forward=scale(rule.forward),
                   feedback=replace(fb, terms=scale(fb.terms)) if fb is not None and fb.terms else fb)


def coded(data, gain: float):
    """``data`` with pixels x ``gain`` (the Bernoulli spike probability per step, clipped at 1)."""
    if gain == 1.0:
        return data
    return replace(data, x_train=(data.x_train * gain).clamp(0, 1), x_test=(data.x_test * gain).clamp(0, 1))


def run_group(rule_name: str, data_name: str, hidden: list[int], variants: list[Variant], seeds: list[int],
              epochs: int, samples: int | None, defaults: dict) -> dict[str, list[list[float]]]:
    """Train variants x seeds (one schedule) as chips side by side; {label: [per-epoch accuracies]
    per seed}."""
    from neurocredit.chip import session as S
    from neurocredit.chip.defaults import learning_circuit, onchip_timing
    from neurocredit.rules import resolve_rule

    run = dict(variants[0].run)
    rule = resolve_rule(rule_name)
    if run.get("bdecay", 1.0) != 1.0:
        rule = scaled_decay(rule, run["bdecay"])
    sizes = sizes_for(data_name, hidden)
    timing = onchip_timing(data_name, len(hidden))
    steps = run.get("steps", defaults.get("steps") or timing.steps)
    base_data = {s: load(data_name, s) for s in seeds}
    circuits, datas, chip_seeds, labels = [], [], [], []
    for v in variants:
        chip = dict(v.chip)
        over = {k: chip[k] for k in ("third_shift", "gate", "error_gain", "feedback_scale", "hop_shift",
                                              "out_third_shift", "hidden_exp_offset", "output_exp_offset",
                                              "output_init", "target_gain") if k in chip}
        if run.get("decay_epochs"):     # a run field: chips run together share their product series every epoch
            over["decay_epochs"] = run["decay_epochs"]
        if "schedule_hold" in run:
            over["schedule_hold"] = run["schedule_hold"]
        if run.get("tag_carry"):
            over["tag_carry"] = run["tag_carry"]
        lr = run.get("lr", defaults["lr"])
        for s in seeds:
            circ = learning_circuit(rule, sizes, s, data_name, lr=lr, weight_exp_offset=chip.get("exp"), **over)
            if run.get("input_nodecay"):      # the weight-only (decimated) products dropped on the input connection
                from neurocredit.chip.ir import INPUT, ProductSeries
                circ = circ.with_plasticity({c.name: ProductSeries(tuple(p for p in c.plastic if p.decimation is None))
                                             for c in circ.plastic if c.src == INPUT})
            circuits.append(circ)
            datas.append(coded(base_data[s], chip.get("coding", 1.0)))
            chip_seeds.append(s)
            labels.append(v.label)
    _, hists = S.train_chips(circuits, datas, epochs, chip_seeds, steps=steps, blank=run.get("blank", timing.blank),
                             samples=samples, target_delay=run.get("target_delay", timing.target_delay),
                             lr_decay=run.get("lr_decay", defaults["lr_decay"]),
                             target_rate=run.get("target_rate", 1.0),
                             log=lambda line: print(f"    {line}", file=sys.stderr, flush=True))
    out: dict[str, list[list[float]]] = {v.label: [] for v in variants}
    for label, h in zip(labels, hists):
        out[label].append([e["test_acc"] for e in h[1:]])
    return out


def diagnose(rule_name: str, data_name: str, hidden: list[int], seed: int, epochs: int, lr: float, lr_decay: float,
             steps: int | None, probe: int = 100, spec: dict | None = None) -> list[str]:
    """Train one chip epoch by epoch (the seeds, permutations and lr schedule of
    :func:`neurocredit.chip.session.train_chips`) and after every epoch print, on ``probe`` training
    samples streamed with learning (weights then discarded): each layer's firing rate (spikes per
    neuron and step), the fraction of hidden neurons that never fire / fire on > 90 % of steps; the
    mean |third factor| of the steps where it is non-zero, the fraction of those whose weight change
    |lr_e · t| (weight units, lr_e the epoch's quantised rate) is below 1 (applied only by stochastic
    rounding) and below 1/8; mean |W| and the fraction at the ±256 bound; the test accuracy.  ``spec``:
    OnChipSpec fields of the chip (e.g. hidden_exp_offset, third_shift, out_third_shift)."""
    from neurocredit.chip import session as S
    from neurocredit.chip.defaults import learning_circuit, onchip_timing
    from neurocredit.chip.emulator import emulate, emulate_learning
    from neurocredit.chip.plasticity import scale_series
    from neurocredit.neurons.decision import tied as tied_top
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(rule_name)
    sizes = sizes_for(data_name, hidden)
    timing = onchip_timing(data_name, len(hidden))
    steps = steps or timing.steps
    data = load(data_name, seed)
    circuit = learning_circuit(rule, sizes, seed, data_name, lr=lr, **(spec or {}))
    x_tr, y_tr = data.x_train.numpy(), data.y_train.numpy()
    third = [p.name for p in circuit.populations if p.kind != "graded" and p.name != "input"
             and any(c.dst == p.name and c.dst_port == "third" for c in circuit.connections)]
    fwd = [c for c in circuit.plastic if c.view == "forward"]
    base = {c.name: c.plastic for c in circuit.plastic}
    weights = circuit.weights()
    rng = np.random.default_rng(seed)
    lines = []

    def report(epoch: int, now) -> None:
        part = x_tr[:probe], y_tr[:probe]
        stream = S.training_stream(circuit, *part, steps, timing.blank, 4242, timing.target_delay)
        _, rec = emulate_learning(now.with_weights(weights), stream, rng_seed=4242,
                                  record=[*third, *(f"err:{p}" for p in third)])
        acc = S.held_out_figures(circuit, weights, data.x_test.numpy(), data.y_test.numpy(), steps, seed + 999)["test_acc"]
        inf = S.inference_circuit(circuit, weights)         # the test's output spike counts (S.accuracy's input)
        xt = S.input_spikes(data.x_test.numpy(), steps, seed + 999)
        counts = emulate(inf, xt)[inf.outputs[0]].numpy().sum(axis=0)
        top = counts.max(axis=1)
        tied = tied_top(counts)
        ties = tied.mean()
        yt = data.y_test.numpy()
        # lost ties: the label among the tied top counts but not the first (argmax's pick): what a perfect
        # tie-break could add at most
        lost = (tied & (counts[np.arange(len(yt)), yt] == top) & (counts.argmax(axis=1) != yt)).mean()
        parts = [f"epoch {epoch}: test {100 * acc:.1f} %, test samples with a tied top count {100 * ties:.1f} % "
                 f"(label tied but not picked {100 * lost:.1f} %), "
                 f"top count {top.mean() / steps:.2f} of steps"]
        for c in fwd:
            lr_e = sum(abs(q.mant) * 2.0 ** q.exp for q in now.connection(c.name).plastic) / 2
            z = rec[c.dst].astype(bool)
            fire = z.mean(axis=0)
            t = rec[f"err:{c.dst}"]
            nz = np.abs(t[t != 0]).astype(float)
            d = lr_e * nz
            w = np.asarray(weights[c.name])
            parts.append(f"{c.dst}: rate {z.mean():.3f}, dead {(fire == 0).mean():.2f}, sat {(fire > 0.9).mean():.2f}; "
                         f"|t| {nz.mean() if nz.size else 0:.1f} on {(t != 0).mean():.3f} of steps, "
                         f"|lr t|<1 {(d < 1).mean() if d.size else 0:.2f}, <1/8 {(d < 0.125).mean() if d.size else 0:.2f} "
                         f"(lr {lr_e:g}); |W| {np.abs(w).mean():.1f}, at bound {(np.abs(w) >= 255).mean():.4f}")
        lines.append(" | ".join(parts))
        print("  " + lines[-1], flush=True)

    report(0, circuit)
    for epoch in range(1, epochs + 1):
        now = circuit.with_plasticity({k: scale_series(sr, lr_decay ** (epoch - 1)) for k, sr in base.items()}) \
            if lr_decay != 1.0 else circuit
        perm = rng.permutation(len(y_tr))
        stream = S.training_stream(circuit, x_tr[perm], y_tr[perm], steps, timing.blank, seed * 1000 + epoch,
                                   timing.target_delay)
        weights, _ = emulate_learning(now.with_weights(weights), stream, rng_seed=seed + epoch)
        report(epoch, now)
    return lines


def alignment(rule_name: str, data_name: str, hidden: list[int], seeds: list[int], epochs: int, lr: float,
              lr_decay: float, spec: dict | None = None) -> list[str]:
    """Learned feedback per epoch (the chips of :func:`neurocredit.chip.session.train_chips`, one per seed):
    ∠(B_l, W_(l+1)ᵀ) in degrees, rms |B_int| and |W_(l+1),int|, the share of B and W at the 8-bit bound
    (|w| >= 254), rms |W_l,int| of the hidden layer's forward weights; then the test accuracy per epoch.
    Kolen-Pollack (Kolen & Pollack 1994; Akrout et al. 2019): ΔB = ΔWᵀ, so B − Wᵀ only shrinks by the
    shared decay −λ(B − Wᵀ); without it (relaxed PC) B − Wᵀ = B_0 − W_0ᵀ for ever."""
    from neurocredit.chip import session as S
    from neurocredit.chip.defaults import learning_circuit, onchip_timing
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(rule_name)
    sizes = sizes_for(data_name, hidden)
    timing = onchip_timing(data_name, len(hidden))
    circuits = [learning_circuit(rule, sizes, s, data_name, lr=lr, **(spec or {})) for s in seeds]
    names = circuits[0].meta.get("learned_feedback", ())
    if not names:
        raise SystemExit(f"rule {rule_name!r} has no learned feedback")
    lines: list[str] = []

    def report(epoch: int, weights: list[dict]) -> None:
        for s, circ, w in zip(seeds, circuits, weights):
            parts = [f"seed {s} epoch {epoch}:"]
            for name in names:
                bc = circ.connection(name)
                wc = next(c for c in circ.connections if c.src == bc.dst and c.dst_port == "a" and c.plastic)
                hc = next(c for c in circ.connections if c.dst == bc.dst and c.dst_port == "a" and c.plastic)
                b, wt = np.asarray(w[name], float), np.asarray(w[wc.name], float).T
                cos = (b * wt).sum() / max(np.linalg.norm(b) * np.linalg.norm(wt), 1e-12)
                rms = lambda m: float(np.sqrt((m ** 2).mean()))  # noqa: E731
                parts.append(f"{name}: angle {np.degrees(np.arccos(np.clip(cos, -1, 1))):.1f}, rms B {rms(b):.1f} "
                             f"W {rms(wt):.1f}, at bound B {(np.abs(b) >= 254).mean():.3f} W {(np.abs(wt) >= 254).mean():.3f}; "
                             f"hidden rms W {rms(np.asarray(w[hc.name], float)):.1f}")
            lines.append(" ".join(parts))
            print("  " + lines[-1], flush=True)
    report(0, [c.weights() for c in circuits])
    _, hists = S.train_chips(circuits, [load(data_name, s) for s in seeds], epochs, seeds,
                             steps=timing.steps, blank=timing.blank, target_delay=timing.target_delay,
                             lr_decay=lr_decay, log=lambda line: print(f"    {line}", file=sys.stderr, flush=True),
                             on_epoch=report)
    for s, h in zip(seeds, hists):
        lines.append(f"seed {s} test acc per epoch: " + " ".join(f"{100 * e['test_acc']:.1f}" for e in h[1:]))
    return lines


def cost_line(rule_name: str, data_name: str, hidden: list[int], lr: float, steps: int | None) -> str:
    """The default chip's cost per training sample (seed 0, untrained, first 20 samples), as
    benchmarks/onchip_accuracy.py's cost columns (Loihi 1 per-op energy and latency, Loihi 2 cores)."""
    from neurocredit.chip import session as S
    from neurocredit.chip.defaults import learning_circuit, onchip_timing
    from neurocredit.rules import resolve_rule

    timing = onchip_timing(data_name, len(hidden))
    if steps:
        timing = S.StreamTiming(steps, timing.blank, timing.target_delay)
    sizes = sizes_for(data_name, hidden)
    c = cost_columns(learning_circuit(resolve_rule(rule_name), sizes, 0, data_name, lr=lr), data_name, timing, 0)
    return (f"cost per training sample ({'-'.join(map(str, sizes))}, {timing.steps} steps): synops {c['synops']:,.0f}, "
            f"learning updates {c['updates']:,.0f}, {c['uJ']:.1f} µJ and {c['ms']:.3f} ms (Loihi 1), "
            f"{c['cores']} cores (Loihi 2)")


def fmt(accs: list[float]) -> str:
    m = statistics.mean(accs)
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return f"{100 * m:6.2f} ± {100 * sd:4.2f}"


def write_section(path: Path, key: str, text: str) -> None:
    """Replace (or append) section ``## key`` of the results file, atomically."""
    from neurocredit.io_utils import atomic_path
    parts = path.read_text().split("\n## ") if path.exists() else ["# On-chip gap-closing study (benchmarks/onchip_study.py)\n"]
    head, sections = parts[0], [p for p in parts[1:] if not p.startswith(key + "\n")]
    body = head.rstrip("\n") + "\n" + "".join(f"\n## {s.rstrip()}\n" for s in sorted([*sections, f"{key}\n{text}"]))
    with atomic_path(path) as tmp:
        Path(tmp).write_text(body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits", choices=("digits", "mnist5k"))
    ap.add_argument("--rule", default="dfa")
    ap.add_argument("--study", default="lr,decay,steps,shift,gain,gate,exp,coding")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=None, help="default: the data's on-chip defaults")
    ap.add_argument("--hidden", type=int, nargs="+", default=None)
    ap.add_argument("--samples", type=int, default=None, help="training samples per epoch (default: all)")
    ap.add_argument("--lr", type=float, default=None, help="base lr (default: the rule's on-chip default)")
    ap.add_argument("--lr-decay", type=float, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--tag", default="", help="appended to the section name")
    ap.add_argument("--only", default="", help="run only the variants with these labels (comma separated, or '|' separated)")
    ap.add_argument("--diag", action="store_true", help="per-epoch diagnostics of one chip per seed (firing "
                    "rates, third factors, updates below one weight unit, weights) instead of a study")
    ap.add_argument("--align", action="store_true", help="learned feedback per epoch instead of a study: "
                    "∠(B, Wᵀ), rms and share at the bound of B and W (one chip per seed; --spec applies)")
    ap.add_argument("--cost", action="store_true", help="add the network's cost per training sample (the "
                    "default chip of seed 0, untrained, first 20 samples: benchmarks/onchip_accuracy.cost_columns) "
                    "under each study's table")
    ap.add_argument("--spec", default="", help="--diag only: OnChipSpec fields of the chip, e.g. "
                    "hidden_exp_offset=-1,third_shift=3,out_third_shift=1")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from neurocredit.chip.defaults import onchip_defaults, onchip_timing
    from neurocredit.rules import resolve_rule

    rule = resolve_rule(args.rule)
    d = onchip_defaults(rule, args.data)
    hidden = args.hidden or list(d["hidden"])
    epochs = args.epochs or int(d["epochs"])
    defaults = {"lr": args.lr or d["lr"], "lr_decay": args.lr_decay if args.lr_decay is not None else d["lr_decay"],
                "steps": args.steps}
    seeds = [int(s) for s in args.seeds.split(",")]
    from neurocredit.chip.circuits import default_spec
    base_shift = default_spec(rule, len(hidden), **d["spec"]).third_shift     # the table's (e.g. [rules.dfa.mnist5k])
    net = "-".join(map(str, [64 if args.data == "digits" else 784, *hidden, 10]))
    print(f"on-chip study, {args.data} {net}, rule {rule.name}, seeds {seeds}, {epochs} epochs"
          f"{'' if args.samples is None else f' of {args.samples} samples'}; defaults lr {defaults['lr']:g} "
          f"x{defaults['lr_decay']:g}/epoch, shift {base_shift}; torch threads {torch.get_num_threads()}", flush=True)
    path = RESULTS / f"onchip_study_{args.data}.md"
    if args.align:
        spec = {k: int(v) if v.lstrip("-").isdigit() else float(v)
                for k, v in (kv.split("=") for kv in args.spec.split(",") if kv)}
        text = alignment(rule.name, args.data, hidden, seeds, epochs, defaults["lr"], defaults["lr_decay"], spec)
        head = (f"{args.data} {net}, {rule.name}, seeds {seeds}, {epochs} epochs, lr {defaults['lr']:g} "
                f"x{defaults['lr_decay']:g}/epoch{''.join(f', {k} {v}' for k, v in spec.items())}")
        write_section(path, f"align · {rule.name} · {net}{args.tag}", head + "\n\n```\n" + "\n".join(text) + "\n```")
        return
    if args.diag:
        spec = {k: int(v) if v.lstrip("-").isdigit() else float(v)
                for k, v in (kv.split("=") for kv in args.spec.split(",") if kv)}
        text = []
        for s in seeds:
            text += [f"seed {s}:", *diagnose(rule.name, args.data, hidden, s, epochs, defaults["lr"],
                                              defaults["lr_decay"], args.steps, spec=spec), ""]
        head = (f"{args.data} {net}, {rule.name}, {epochs} epochs, lr {defaults['lr']:g} x{defaults['lr_decay']:g}/epoch, "
                f"steps {args.steps or 'default'}{''.join(f', {k} {v}' for k, v in spec.items())}; probe: 100 training samples streamed with learning after each epoch")
        write_section(path, f"diag · {rule.name} · {net}{args.tag}", head + "\n\n```\n" + "\n".join(text) + "\n```")
        return
    # every study's variants, the same (run, chip) point trained once: per-chip knobs of all studies
    # share one vectorised run
    studies = {name: study_variants(name, defaults["lr"], base_shift) for name in args.study.split(",")}
    if args.only:
        keep = set(args.only.split("|" if "|" in args.only else ","))     # '|' for labels with commas
        studies = {k: [v for v in vs if v.label in keep] for k, vs in studies.items()}
        studies = {k: vs for k, vs in studies.items() if vs}
    t = onchip_defaults(rule, args.data)
    spec0 = default_spec(rule, len(hidden), **{"gate": t["gate"], **t["spec"]})   # a rule row may set the gate
    base_run = {"lr": defaults["lr"], "lr_decay": defaults["lr_decay"], "bdecay": 1.0, "target_rate": 1.0,
                "schedule_hold": spec0.schedule_hold, "tag_carry": spec0.tag_carry, "decay_epochs": spec0.decay_epochs,
                "blank": onchip_timing(args.data, len(hidden)).blank,
                "target_delay": onchip_timing(args.data, len(hidden)).target_delay}
    base_chip = {"third_shift": spec0.third_shift, "gate": -1.0 if spec0.gate is None else spec0.gate,
                 "error_gain": spec0.error_gain, "feedback_scale": spec0.feedback_scale, "coding": 1.0,
                 "exp": int(t["weight_exp_offset"]),
                 "hop_shift": spec0.third_shift if spec0.hop_shift is None else spec0.hop_shift,
                 "out_third_shift": spec0.out_third_shift, "hidden_exp_offset": spec0.hidden_exp_offset,
                 "output_exp_offset": spec0.output_exp_offset, "output_init": spec0.output_init}

    def canon(v: Variant) -> tuple:
        """(run, chip) with every default filled in: the same settings are the same chips."""
        return tuple(sorted({**base_run, **dict(v.run)}.items())), tuple(sorted({**base_chip, **dict(v.chip)}.items()))
    groups: dict[tuple, dict[tuple, Variant]] = {}
    for vs in studies.values():
        for v in vs:
            run, chip = canon(v)
            groups.setdefault(run, {}).setdefault(chip, Variant(repr(chip), run, chip))
    res: dict[tuple, list[list[float]]] = {}
    t0 = time.perf_counter()
    for run, chips in groups.items():
        vs = list(chips.values())
        print(f"  run {dict(run)}: {len(vs)} chip settings x {len(seeds)} seeds", file=sys.stderr, flush=True)
        if "float" in dict(run):
            got = float_group(rule.name, args.data, hidden, [dict(run)["float"]], seeds,
                              args.steps or onchip_timing(args.data, len(hidden)).steps)
            got = {v.label: got[dict(run)["float"]] for v in vs}
        else:
            got = run_group(rule.name, args.data, hidden, vs, seeds, epochs, args.samples, defaults)
        res.update({(run, chip): got[v.label] for chip, v in chips.items()})
    secs = time.perf_counter() - t0
    for name, variants in studies.items():
        lines = [f"{args.data} {net}, {rule.name}, seeds {seeds}, {epochs} epochs"
                 f"{'' if args.samples is None else f' x {args.samples} samples'}, base lr {defaults['lr']:g} "
                 f"x{defaults['lr_decay']:g}/epoch, shift {base_shift} (all studies of this run: {secs:.0f} s, "
                 f"1 thread)", "",
                 "| variant | final test acc % (mean ± sd) | per seed | per epoch (mean) |", "|---|---:|---|---|"]
        for v in variants:
            accs = res[canon(v)]
            final = [a[-1] for a in accs]
            per_epoch = " ".join(f"{100 * statistics.mean(e):.1f}" for e in zip(*accs))
            lines.append(f"| {v.label} | {fmt(final)} | {' '.join(f'{100 * a:.1f}' for a in final)} | {per_epoch} |")
        best = max(variants, key=lambda v: statistics.mean(a[-1] for a in res[canon(v)]))
        lines += ["", f"best: {best.label}"]
        if args.cost:
            lines += ["", cost_line(rule.name, args.data, hidden, defaults["lr"], args.steps)]
        text = "\n".join(lines)
        print(f"\n## {name} · {rule.name} · {net}{args.tag}\n{text}\n", flush=True)
        write_section(path, f"{name} · {rule.name} · {net}{args.tag}", text)


if __name__ == "__main__":
    main()
