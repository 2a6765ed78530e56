"""Emulator counterfactuals of the learned weights' precision: NOT what Lava or a Loihi chip computes.

Runs ``benchmarks/onchip_study.py`` (its arguments unchanged) with the learned forward weights of the
chosen layers held on a grid 2^E finer than the chip's 8-bit one, at the same range::

    W'_int = W_int · 2^E  (8 + E magnitude bits),   e' = e − E   (W'_int 2^e' = W_int 2^e)

the engine's accumulator widened by E bits to match and the compiled kernel bypassed (the numpy path
runs the same arithmetic on wider integers).  A weight unit is then 2^-E of the chip's: the stochastic
rounding of sub-LSB updates (Lava's per-connection r_w draw) moves a weight by 2^-E of a chip step, so
at E = 6 (the most the emulator's int16 column store holds) the learning is float to within 1/64 of a
chip weight unit: a float-weight twin of the chip's learning (the neurons, traces, error units, gate and
third factor stay the chip's integer arithmetic).  Lava refuses weights beyond 8 bits.

The float step per update must be kept by the caller's variant (a study field):

* ``--fine both``:   lr x 2^E (every layer's update 2^E units of the finer grid),
* ``--fine hidden``: lr x 2^E and output shift + E (H16m's "CF fine grid" study),
* ``--fine output``: error gain x 2^E with the hidden shift + E (the output's update x 2^E, the hidden
                     t = B_int g (z − y*) >> s unchanged, bit for bit: B_int e is a multiple of the gain),
                     which keeps |t_out| = g 2^E below the trace clip 127 for E <= 2.

    python benchmarks/emulator_counterfactuals.py --fine both --extra 6 \\
        --variants '[["CF both x64, lr x64", {"lr": 4.0}, {}]]' -- --study cf --data mnist5k --rule dfa ...

``--variants`` (JSON [[label, run fields, chip fields], ...]) becomes onchip_study's study ``cf``.
Sections are written to results/onchip_study_<data>.md as onchip_study writes them: put "CF" in --tag.
Generalised from H16m's scratch patch (session of 2026-12-01, hidden grid only)."""
from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from dataclasses import replace
from pathlib import Path

for _k in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_k, "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

MAX_EXTRA = 6        # int16 column store of the emulator: |W'| <= 2^(8+E) <= 2^14
LAYERS = ("hidden", "output", "both")


def fine_layers(circuit, layers: str) -> set[str]:
    """Names of the plastic forward connections of ``circuit`` into the chosen ``layers``
    ('hidden': every connection into a hidden layer, 'output': into the output layer, 'both')."""
    out = circuit.outputs[0]
    names = set()
    for c in circuit.connections:
        if not c.plastic or c.view != "forward":
            continue
        to_out = c.dst == out
        if layers == "both" or (layers == "output") == to_out:
            names.add(c.name)
    return names


def finer(circuit, names: set[str], extra: int):
    """``circuit`` with connections ``names`` on a 2^extra finer grid at the same range (see above)."""
    conns = tuple(replace(c, weights=np.asarray(c.weights, np.int64) << extra, weight_exp=int(c.weight_exp) - extra,
                          num_weight_bits=int(c.num_weight_bits) + extra) if c.name in names else c
                  for c in circuit.connections)
    return replace(circuit, connections=conns)


_SRC: dict[str, str] = {}


def _patch(module, name: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in ``module.name``'s source and re-define it there."""
    import inspect
    src = _SRC.get(name) or inspect.getsource(getattr(module, name))
    if src.count(old) != 1:
        raise SystemExit(f"emulator_counterfactuals: {name} changed; cannot patch {old!r}")
    _SRC[name] = src.replace(old, new)
    exec(compile(_SRC[name], f"<counterfactual {name}>", "exec"), module.__dict__)


def install(layers: str, extra: int) -> None:
    """Patch the package in this process: learning circuits come out with the chosen layers'
    weights 2^extra finer (:func:`finer`), the emulator stores and bounds them at 8 + extra bits
    and its accumulator is ``extra`` bits wider; the compiled kernel is bypassed."""
    import torch

    from neurocredit.chip import carry as CR
    from neurocredit.chip import defaults as DF
    from neurocredit.chip import emulator as E
    from neurocredit.chip import kernels as KN
    from neurocredit.neurons import fixed_point as FP

    if layers not in LAYERS or not 0 < extra <= MAX_EXTRA:
        raise SystemExit(f"--fine must be one of {LAYERS} and --extra in 1..{MAX_EXTRA}")
    orig_stored, orig_lc = FP.stored_weights, DF.learning_circuit

    def stored_weights(weights, sign_mode, num_weight_bits=8):
        if num_weight_bits <= 8:
            return orig_stored(weights, sign_mode, num_weight_bits)
        lim = 1 << num_weight_bits
        return weights.to(torch.int64).clamp(-lim, lim - 1)

    def learning_circuit(*a, **k):
        c = orig_lc(*a, **k)
        return finer(c, fine_layers(c, layers), extra)

    FP.stored_weights, DF.learning_circuit = stored_weights, learning_circuit
    KN.kernel_plan = lambda ref: "counterfactual: numpy path"
    CR.fast_plan = lambda c: None
    E.ACC_MAX, E.ACC_MIN = 2 ** (15 + extra) - 1, -(2 ** (15 + extra)) - 1
    _patch(E, "learn_columns", "r_w: np.ndarray) -> np.ndarray | None:",
           "r_w: np.ndarray, bounds=(-256, 255)) -> np.ndarray | None:")
    _patch(E, "learn_columns", "np.clip(delta, -512, 512).astype(g.dtype)[:, None, :], -256, 255)",
           "np.clip(delta, -max(512, bounds[1] + 1), max(512, bounds[1] + 1)).astype(g.dtype)[:, None, :], *bounds)")
    _patch(E, "learn_columns", "(acc & (ROUND_UNIT - 1))), -256, 255)", "(acc & (ROUND_UNIT - 1))), *bounds)")
    _patch(E, "emulate_chips", "new = learn_columns(g, cnt, dict(zip(used, tv)), live, r_w)",
           "new = learn_columns(g, cnt, dict(zip(used, tv)), live, r_w, "
           "(-(1 << max(8, c.num_weight_bits)), (1 << max(8, c.num_weight_bits)) - 1))")
    _patch(E, "emulate_chips", "w = apply_series(weights[c.name].swapaxes(1, 2), s > 0, y, c.plastic, r_y, r_w, t + 1, ex)",
           "w = apply_series(weights[c.name].swapaxes(1, 2), s > 0, y, c.plastic, r_y, r_w, t + 1, ex, "
           "(-(1 << max(8, c.num_weight_bits)), (1 << max(8, c.num_weight_bits)) - 1))")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fine", required=True, choices=LAYERS)
    ap.add_argument("--extra", type=int, default=2, help=f"extra weight bits E, 1..{MAX_EXTRA}")
    ap.add_argument("--variants", default="", help="JSON [[label, {run fields}, {chip fields}], ...] as study 'cf'")
    ap.add_argument("study", nargs=argparse.REMAINDER, help="-- then benchmarks/onchip_study.py's arguments")
    args = ap.parse_args()
    install(args.fine, args.extra)
    print(f"COUNTERFACTUAL (emulator only, NOT what Lava computes): {args.fine} learned weights 2^{args.extra} "
          f"finer ({8 + args.extra}-bit at the chip's range)", flush=True)
    rest = [a for a in args.study if a != "--"]
    sys.argv = [str(ROOT / "benchmarks" / "onchip_study.py"), *rest]
    g = runpy.run_path(sys.argv[0], run_name="onchip_study_counterfactual")
    glb = g["main"].__globals__
    if args.variants:
        rows = json.loads(args.variants)
        base, v = glb["study_variants"], glb["_v"]
        glb["study_variants"] = lambda name, lr, sh: ([v(lab, run, chip) for lab, run, chip in rows]
                                                      if name == "cf" else base(name, lr, sh))
    g["main"]()


if __name__ == "__main__":
    main()
