"""e-prop on chip (issue 15): a recurrent spiking network learns ``seqdigits`` (digits read row by
row, 8 steps x 8 inputs) on the emulated chip (fixed point, only local information), beside the
float figure of the torch e-prop RSNN on the same network.

Float: ``neurocredit.sim.recurrent_spiking`` (recurrent LIF, ``--readout`` lif = spike counts or li =
a leaky readout's mean potential, random e-prop, Adam), rows injected as currents, one row per step.  On chip: the same network (the torch
net's initial weights and neurons, exported to NIR with its rule and fixed random B, compiled by
``neurocredit.chip``) learns with the compiled e-prop: eligibility traces on the synapses' tags
(``neurocredit.chip.tags``), the output error through B as the third factor, W_in, the recurrent R
and W_out plastic (a LIF readout learns from the spiking error units' e = g (z − y*); a LI readout
is a graded leaky readout with its own error e = r − y* at every step, ``neurocredit.chip.readout``); each row is rate-coded over ``--row-steps`` steps (pixels in [0, 1]); seeds run
side by side as independent chips (``session.train_chips``).  Lava's engine gives the same weights
(tests/test_chip_recurrent.py).

    python benchmarks/onchip_recurrent.py [--seeds 0,1,2] [--epochs 4] [--float-epochs 10]

Diagnostics: ``--readout-only`` / ``--freeze NAMES`` (W_in and/or R frozen on chip: who is to blame),
``--lr-scale NAME=F`` (one connection's rate), ``--engine-drift`` (the compiled hidden dw's drift under
a zero-mean learning signal: the engine's floored product shift), ``--readout-ceiling`` (a float logistic
readout of the untrained hidden spike counts, and the same weights in the chip's LIF readout),
``--readout-init zero`` (the on-chip readout W starts from zero).  With a LIF readout every epoch
prints the test decision: accuracy with the voltage tie-break (the figure), plain argmax of the
counts, and the fraction of samples whose top count is tied.

Prints the on-chip and float test accuracy (mean ± sd over seeds) and the gap; writes
benchmarks/results/onchip_recurrent.md (and .json).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def chip_seqdigits(seed: int):
    """seqdigits with pixels in [0, 1] (rate coding), the float set's split."""
    from neurocredit.data import Dataset, load_digits
    d = load_digits(seed=seed, standardise=False)
    rows = lambda t: t.reshape(t.shape[0], 8, 8)  # noqa: E731
    return Dataset("seqdigits", rows(d.x_train), d.y_train, rows(d.x_test), d.y_test, d.n_classes)


def readout_ceiling(circuit, data, steps: int) -> str:
    """Test accuracy of a float logistic regression on the hidden layer's spike counts of the
    (untrained) chip network, per sample and per row (rate-coded as on chip, emulated)."""
    from sklearn.linear_model import LogisticRegression

    from neurocredit.chip import session as S
    from neurocredit.chip.emulator import emulate
    from neurocredit.chip.readout import fitted_readout
    inf = S.inference_circuit(circuit, circuit.weights())
    hidden = next(p.name for p in inf.populations if p.name not in inf.outputs)

    def counts(x, seed):
        spikes = np.random.default_rng(seed).random((steps, len(x), x.shape[-1])) < \
            S.step_rates(x, steps).transpose(1, 0, 2)
        h = emulate(inf, spikes.astype(np.int64), record=[hidden])[hidden].numpy().astype(float)
        rows = h.reshape(x.shape[1], steps // x.shape[1], len(x), -1).sum(1).transpose(1, 0, 2)
        return h.sum(0), rows.reshape(len(x), -1)

    tr, te = counts(data.x_train.numpy(), 1), counts(data.x_test.numpy(), 2)
    y_tr, y_te = data.y_train.numpy(), data.y_test.numpy()
    fits = [LogisticRegression(max_iter=3000).fit(a, y_tr) for a in tr]
    acc = [100 * f.score(b, y_te) for f, b in zip(fits, te)]
    # the per-sample classifier's weights in the chip's own LIF readout (threshold, leak, reset,
    # 8-bit weights, its intercept as the readout's bias), decided as on chip (counts, voltage tie-break)
    lif = 100 * S.readout_figures(fitted_readout(inf, fits[0].coef_, fits[0].intercept_, steps), data.x_test.numpy(),
                                  y_te, steps, 2)["test_acc"]
    return (f"readout ceiling (float logistic regression on the untrained chip network's hidden spike counts, "
            f"seed 0): per sample {acc[0]:.1f} %, per row {acc[1]:.1f} %; its per-sample weights in the chip's "
            f"LIF readout (8-bit, intercept as bias, emulated): {lif:.1f} %")


def engine_drift(conn, steps: int = 2000, seed: int = 0) -> str:
    """The mean weight change of ``conn``'s compiled dw (a tagged hidden connection) under a
    zero-mean learning signal (y3 − y2 = L uniform in [−6, 6], tags uniform in [0, 20), every step),
    against its spread: the engine's right shift of each product floors, so every non-zero product
    loses 1/2 of an accumulator unit on average, whatever its sign."""
    from neurocredit.chip.emulator import apply_series
    rng = np.random.default_rng(seed)
    n_post, n_pre = np.shape(conn.weights)
    w = np.zeros((n_post, n_pre), np.int64)
    for step in range(steps):
        L = rng.integers(-6, 7, n_post)
        y = {"y1": np.zeros(n_post, np.int64), "y2": np.clip(-L, 0, 127), "y3": np.clip(L, 0, 127)}
        w = apply_series(w, np.ones(n_pre, bool), y, conn.plastic, rng.random(), rng.random(), step + 1,
                         {"t": rng.integers(0, 20, (n_post, n_pre))})
    return (f"engine drift of {conn.name} (dw = {conn.plastic.dw}) under a zero-mean learning signal, "
            f"{steps} steps: mean Δw {w.mean():+.2f} LSB, sd {w.std():.2f} LSB")


def hidden_rate(circuit, weights, data, steps: int, n: int = 200) -> tuple[float, int]:
    """(mean hidden spikes per neuron per step, neurons that never spike) of the chip network with
    ``weights`` on the first ``n`` test samples (rate-coded, inference circuit, emulated)."""
    from neurocredit.chip import session as S
    from neurocredit.chip.emulator import emulate
    inf = S.inference_circuit(circuit, weights)
    hidden = next(p.name for p in inf.populations if p.name not in inf.outputs)
    x = data.x_test.numpy()[:n]
    spikes = S.input_spikes(x, steps, 5, circuit.meta.get("input_coding", "rate"))
    h = emulate(inf, spikes, record=[hidden])[hidden].numpy()
    return float(h.mean()), int((h.sum((0, 1)) == 0).sum())


TWIN_LADDER = (   # (label, overrides of the float e-prop's config), cumulative: one chip condition at a time
    ("float as the paper (currents, 1 row per step; softmax error of the sample; Adam, batch 32)", {}),
    ("+ chip input coding (rows rate-coded, {row_steps} steps each, {blank} blank)",
     {"input_coding": "rate", "row_steps": None, "blank": None}),
    ("+ chip error (per step e = z − y*, B centred)", {"error": "step"}),
    ("+ SGD as the chip (online, batch 1, lr {twin_lr} ×{lr_decay}/epoch, no momentum)",
     {"optimizer": "sgd", "momentum": 0.0, "batch_size": 1, "lr": None, "lr_decay": None}),
    ("+ no bias learning (the chip learns none) = float twin", {"learn_bias": False}),
)
TWIN_ALONE = (   # one chip condition alone on the paper's float, and the twin with other input codings
    ("paper + chip error alone", {"error": "step"}),
    ("paper + SGD as the chip alone", {"optimizer": "sgd", "momentum": 0.0, "batch_size": 1, "lr": None,
                                       "lr_decay": None}),
    ("paper + no bias learning alone", {"learn_bias": False}),
    ("float twin, input coded 'regular' (deterministic evenly spaced spikes)", "regular"),
    ("float twin, input graded (each row's pixel values held {row_steps} steps: graded spikes)", "graded"),
)


def float_twin(args, seeds: list[int]) -> list[str]:
    """The float e-prop with the chip's conditions switched on one at a time (:data:`TWIN_LADDER`, then
    :data:`TWIN_ALONE`): which of input coding, error form, optimiser (and, by the gap to the chip,
    fixed point) costs the accuracy.  Prints and returns one line per row (mean ± sd over ``seeds``)."""
    from neurocredit.data import load_dataset
    from neurocredit.rules import get_rule
    from neurocredit.sim.recurrent_train import RecurrentTrainConfig, train_recurrent

    rule = get_rule("eprop")
    fill = {"row_steps": args.row_steps, "blank": args.blank, "lr": args.twin_lr, "lr_decay": args.lr_decay}
    fmt = {"row_steps": args.row_steps, "blank": args.blank, "twin_lr": args.twin_lr, "lr_decay": args.lr_decay}

    def run(over: dict) -> list[float]:
        accs = []
        for seed in seeds:
            kw = {"epochs": args.float_epochs, "lr": args.float_lr, "seed": seed, "readout": args.readout,
                  "progress": False}
            kw.update({k: fill[k] if v is None else v for k, v in over.items()})
            coded = kw.get("input_coding", "current") != "current"
            data = chip_seqdigits(seed) if coded else load_dataset("seqdigits", seed=seed)
            accs.append(100 * train_recurrent(rule, data, [args.hidden], "rsnn", RecurrentTrainConfig(**kw))
                        .final["test_acc"])
        return accs

    lines, over = [], {}
    twin = {}
    for label, extra in TWIN_LADDER:
        over = {**over, **extra}
        twin = dict(over)
        a = run(over)
        lines.append(f"float twin ladder: {label.format(**fmt)}: {np.mean(a):.2f} ± {np.std(a):.2f}  seeds "
                     + " ".join(f"{v:.1f}" for v in a))
        print(lines[-1], flush=True)
    for label, extra in TWIN_ALONE:
        over = {**twin, "input_coding": extra} if isinstance(extra, str) else dict(extra)
        a = run(over)
        lines.append(f"float twin: {label.format(**fmt)}: {np.mean(a):.2f} ± {np.std(a):.2f}  seeds "
                     + " ".join(f"{v:.1f}" for v in a))
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=4, help="on-chip epochs")
    ap.add_argument("--float-epochs", type=int, default=10)
    ap.add_argument("--float-lr", type=float, default=3e-3)
    ap.add_argument("--row-steps", type=int, default=4, help="chip steps per row")
    ap.add_argument("--blank", type=int, default=4)
    ap.add_argument("--delay", type=int, default=2, help="target delay (the two Dense hops)")
    ap.add_argument("--lr", type=float, default=2 ** -4)
    ap.add_argument("--lr-decay", type=float, default=0.6)
    ap.add_argument("--third-shift", type=int, default=4)
    ap.add_argument("--error-gain", type=int, default=16)
    ap.add_argument("--readout", choices=("lif", "li"), default="lif",
                    help="the network's readout, float and chip alike: lif (spike counts) or li (leaky, graded error)")
    ap.add_argument("--out-third-shift", type=int, default=None, help="the readout's third-factor shift (chip)")
    ap.add_argument("--rate-reg", type=float, default=0.0,
                    help="firing-rate regulariser strength λ (third-factor units per hidden spike; 0: off; "
                         "chip.tags.rate_regulariser)")
    ap.add_argument("--rate-target", type=float, default=0.1, help="its target rate f0, spikes per step")
    ap.add_argument("--target-rate", type=float, default=1.0,
                    help="the target class's spikes per step in the training stream (session.sample_stream)")
    ap.add_argument("--readout-only", action="store_true",
                    help="freeze the hidden W_in and R (chip.tags.readout_only): only the readout learns on chip")
    ap.add_argument("--readout-init", choices=("float", "zero"), default="float",
                    help="the on-chip readout W's start: the float net's initial weights, or zero "
                         "(chip.readout.zeroed_readout)")
    ap.add_argument("--freeze", default="", help="comma-separated plastic connections to freeze on chip "
                    "(chip.tags.frozen; e.g. fc1 or rec1.w_rec)")
    ap.add_argument("--lr-scale", default="", help="comma-separated name=factor: that plastic connection's "
                    "learning rate times factor on chip (chip.tags.scheduled; a tagged one is held at 1·2^-7)")
    ap.add_argument("--engine-drift", action="store_true",
                    help="also print the drift of each tagged connection's compiled dw under a zero-mean "
                         "learning signal (the engine's floored product shift)")
    ap.add_argument("--samples", type=int, default=None, help="training samples per epoch (default: all)")
    ap.add_argument("--readout-ceiling", action="store_true",
                    help="also print what a float linear readout (logistic regression) reaches on the chip "
                         "network's hidden spike counts before learning (seed 0): the information the "
                         "hidden layer already carries, against what the on-chip readout learns")
    ap.add_argument("--input-coding", choices=("rate", "regular"), default="rate",
                    help="the chip's input spikes: rate (Bernoulli draws) or regular (deterministic, evenly "
                         "spaced: chip.coding)")
    ap.add_argument("--twin", action="store_true",
                    help="first print the float twin ladder: the float e-prop with the chip's input coding, "
                         "per-step error, online SGD and no bias learning switched on one at a time "
                         "(diagnostic; the target still compares with the paper-style float)")
    ap.add_argument("--twin-lr", type=float, default=0.01,
                    help="the float twin's SGD learning rate (seed 0, online: 0.001 0.003 0.01 0.03 -> "
                         "38.3 49.2 51.9 49.2 %% with rate coding and the per-step error)")
    ap.add_argument("--out", default=None, help="results path without suffix (default: "
                    "benchmarks/results/onchip_recurrent, _li for the leaky readout)")
    args = ap.parse_args()
    torch.set_num_threads(1)

    from neurocredit.chip import session as S
    from neurocredit.chip import tags as TG
    from neurocredit.chip.readout import zeroed_readout
    from neurocredit.data import load_dataset
    from neurocredit.io_utils import atomic_path
    from neurocredit.nir.recurrent import export_recurrent
    from neurocredit.rules import get_rule
    from neurocredit.sim.recurrent_train import RecurrentTrainConfig, build_model, train_recurrent

    rule = get_rule("eprop")
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [8, args.hidden, 10]
    print(f"e-prop on seqdigits, {'-'.join(map(str, sizes))} recurrent LIF, {args.readout.upper()} readout; seeds {seeds}; "
          f"torch threads {torch.get_num_threads()}", flush=True)

    twin_lines = float_twin(args, seeds) if args.twin else []

    # float: the torch e-prop RSNN
    float_acc, float_same = [], []
    t0 = time.perf_counter()
    for seed in seeds:
        cfg = RecurrentTrainConfig(epochs=args.float_epochs, lr=args.float_lr, seed=seed, readout=args.readout,
                                   progress=False)
        res = train_recurrent(rule, load_dataset("seqdigits", seed=seed), [args.hidden], "rsnn", cfg)
        float_acc.append(100 * res.final["test_acc"])
        float_same.append(100 * res.history[min(args.epochs, len(res.history)) - 1]["test_acc"])
    print(f"float (torch e-prop, {args.float_epochs} epochs, Adam lr {args.float_lr}): "
          f"{np.mean(float_acc):.2f} ± {np.std(float_acc):.2f}  seeds "
          + " ".join(f"{a:.1f}" for a in float_acc) + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"float after {args.epochs} epochs (the chip's budget): {np.mean(float_same):.2f} ± {np.std(float_same):.2f}"
          "  seeds " + " ".join(f"{a:.1f}" for a in float_same), flush=True)

    # on chip: the same networks' initial weights, compiled with the rule, learning on the emulator
    circuits, datas = [], []
    for seed in seeds:
        cfg = RecurrentTrainConfig(seed=seed, readout=args.readout)
        torch.manual_seed(seed)
        net = build_model("rsnn", rule, sizes, cfg)
        _, circ = S.circuit_from_nir(export_recurrent(net), lr=args.lr, third_shift=args.third_shift,
                                      error_gain=args.error_gain, out_third_shift=args.out_third_shift)
        if args.rate_reg > 0:
            circ = TG.rate_regulariser(circ, args.rate_reg, args.rate_target)
        if args.readout_only:
            circ = TG.readout_only(circ)
        if args.readout_init == "zero":
            circ = zeroed_readout(circ)
        if args.freeze:
            circ = TG.frozen(circ, args.freeze.split(","))
        if args.lr_scale:
            scale = {k: float(v) for k, v in (kv.split("=") for kv in args.lr_scale.split(","))}
            circ = circ.with_plasticity({k: TG.scheduled(circ.connection(k), circ.connection(k).plastic, f)
                                         for k, f in scale.items()})
        if args.input_coding != "rate":
            circ = replace(circ, meta={**circ.meta, "input_coding": args.input_coding})
        circuits.append(circ)
        datas.append(chip_seqdigits(seed))
    c0 = circuits[0]
    print(f"on chip: dw = {c0.meta['dw']}; dt = {c0.meta['dt_tag']} (tag, κ = {c0.meta['kappa']:.3f}); "
          f"readout dw = {c0.meta['dw_out']}", flush=True)
    print("on chip, per connection (the lr times 2^(e_max − e), chip.tags.exponent_steps): "
          + "; ".join(f"{c.name} (weight exponent {c.weight_exp}): {c.plastic.dw}" for c in c0.plastic), flush=True)
    steps = 8 * args.row_steps
    if args.engine_drift:
        for c in c0.plastic:
            if c.tag:
                print(engine_drift(c), flush=True)
    if args.readout_ceiling:
        print(readout_ceiling(circuits[0], datas[0], steps), flush=True)
    rates, decisions = {}, {}

    def decision_line(epoch, weights):
        if args.readout != "lif":
            return
        decisions[epoch] = [S.held_out_figures(c, w, d.x_test.numpy(), d.y_test.numpy(), steps, s + 999)
                            for c, w, d, s in zip(circuits, weights, datas, seeds)]
        print(f"decision after epoch {epoch} (test: most spikes, tie → end-of-sample voltage / plain argmax "
              "/ top count tied): " + ", ".join(
                  f"seed {s} {100 * f['test_acc']:.2f} / {100 * f['test_acc_counts']:.2f} / {100 * f['test_tied']:.1f} %"
                  for s, f in zip(seeds, decisions[epoch])), flush=True)

    def rate_line(epoch, weights):
        decision_line(epoch, weights)
        rates[epoch] = [hidden_rate(c, w, d, steps) for c, w, d in zip(circuits, weights, datas)]
        print(f"hidden rate after epoch {epoch} (spikes per step, silent of {args.hidden}; 200 test samples): "
              + ", ".join(f"seed {s} {r:.4f} ({n} silent)" for s, (r, n) in zip(seeds, rates[epoch])), flush=True)

    rate_line(0, [c.weights() for c in circuits])
    t0 = time.perf_counter()
    _, histories = S.train_chips(circuits, datas, args.epochs, seeds, steps=steps, blank=args.blank,
                                 samples=args.samples, target_delay=args.delay, lr_decay=args.lr_decay,
                                 target_rate=args.target_rate, on_epoch=rate_line)
    chip_acc = [100 * h[-1]["test_acc"] for h in histories]
    secs = time.perf_counter() - t0
    gap = np.mean(float_acc) - np.mean(chip_acc)
    gap_same = np.mean(float_same) - np.mean(chip_acc)
    line_chip = (f"on chip (emulated fixed point, {args.epochs} epochs, {steps} steps + {args.blank} blank per "
                 f"sample): {np.mean(chip_acc):.2f} ± {np.std(chip_acc):.2f}  seeds "
                 + " ".join(f"{a:.1f}" for a in chip_acc) + f"  ({secs:.0f} s)")
    verdict = "met" if gap <= 3.0 else "NOT met"
    line_gap = f"gap float − chip: {gap:+.2f} pp (target: on chip within 3 pp of float: {verdict})"
    line_same = (f"gap float after {args.epochs} epochs − chip (the same budget): {gap_same:+.2f} pp "
                 f"(target: {'met' if gap_same <= 3.0 else 'NOT met'})")
    print(line_chip)
    print(line_gap)
    print(line_same, flush=True)

    out = Path(args.out or ROOT / "benchmarks" / "results" / ("onchip_recurrent" + ("_li" if args.readout == "li" else "")))
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"twin": twin_lines, "hidden_rate": rates, "decision": decisions, "gap": gap, "gap_same_epochs": gap_same, "seeds": seeds, "sizes": sizes, "args": vars(args), "float": float_acc, "float_same_epochs": float_same,
              "chip": chip_acc,
              "chip_history": histories, "dw": c0.meta["dw"], "dt": c0.meta["dt_tag"], "dw_out": c0.meta["dw_out"]}
    with atomic_path(out.with_suffix(".json"), suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1))
    md = ["# e-prop on chip: seqdigits", "", f"`python benchmarks/onchip_recurrent.py {' '.join(sys.argv[1:])}`", "",
          f"Network {'-'.join(map(str, sizes))}, recurrent LIF, {args.readout.upper()} readout; rule eprop (random e-prop).", "",
          "| | test accuracy (%) | seeds |", "|---|---|---|",
          f"| float (torch e-prop, {args.float_epochs} epochs) | {np.mean(float_acc):.2f} ± {np.std(float_acc):.2f} | "
          + " ".join(f"{a:.1f}" for a in float_acc) + " |",
          f"| float (torch e-prop, {args.epochs} epochs) | {np.mean(float_same):.2f} ± {np.std(float_same):.2f} | "
          + " ".join(f"{a:.1f}" for a in float_same) + " |",
          f"| on chip (emulated fixed point, {args.epochs} epochs) | {np.mean(chip_acc):.2f} ± {np.std(chip_acc):.2f} | "
          + " ".join(f"{a:.1f}" for a in chip_acc) + " |", "",
          line_gap, "", line_same, "",
          "What each side gets: float: rows injected as currents, one row per step (8 steps), the error "
          f"softmax(readout) − y* of the whole sample (readout {args.readout}: "
          + ("spike counts" if args.readout == "lif" else "mean potential") + f"), Adam lr {args.float_lr}, float "
          f"weights; chip: rows {'rate-coded' if args.input_coding == 'rate' else 'coded regular (deterministic)'} over {args.row_steps} steps each ({steps} steps + {args.blank} blank), "
          "an error at every step (" + ("spiking error units e = g (z − y*)" if args.readout == "lif" else
                                        "the leaky readout's own e = r − y*") +
          f"), the engine's fixed-point products (lr {args.lr}, x{args.lr_decay}/epoch), 8-bit weights, "
          f"the readout W from {'zero' if args.readout_init == 'zero' else 'the float initial weights'}, "
          "no optimiser state" + (", hidden layer frozen (readout only)" if args.readout_only else "") + ".", "",
          f"On chip: dw = `{c0.meta['dw']}`, dt = `{c0.meta['dt_tag']}`, readout dw = `{c0.meta['dw_out']}`."
          + (f" Rate regulariser (chip.tags.rate_regulariser): λ {args.rate_reg}, f0 {args.rate_target}."
             if args.rate_reg > 0 else ""), "",
          *(["Float twin (diagnostic: the float e-prop under the chip's conditions, switched on one at a time; "
             "the target compares the chip with the paper-style float above, not with the twin):", "",
             *[f"    {t}" for t in twin_lines], ""] if twin_lines else []),
          "Hidden rate (spikes per neuron per step on 200 test samples; silent of "
          f"{args.hidden}) after each epoch: " + "; ".join(
              f"{e}: " + " ".join(f"{r:.4f} ({n})" for r, n in v) for e, v in rates.items()), ""]
    with atomic_path(out.with_suffix(".md"), suffix=".md") as tmp:
        Path(tmp).write_text("\n".join(md))
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
