"""One trial of a sweep: a config dict -> a trained network -> a metrics dict.

The rule is a library name or a rule file, with the config's metaparameters applied
(:func:`configure_rule`); training is :func:`neurocredit.sim.train.train` (torch) or the
on-chip fixed-point emulation that ``neurocredit learn --backend emulator`` runs
(:func:`emulator_run`, the one adapter to that code).  A diverging run is a result
(``status = 'diverged'``, accuracy NaN), not a crash: sensitivity sweeps are about those.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from typing import Any

from neurocredit.rules import PRIMITIVES, Rule, Term
from neurocredit.rules.factors import Factor


def resolve(name: str) -> Rule:
    """A library rule or a rule file (``neurocredit.rules.resolve_rule`` where present)."""
    try:
        from neurocredit.rules import resolve_rule
    except ImportError:                      # older tree: library names only
        from neurocredit.rules import get_rule as resolve_rule
    return resolve_rule(name)


def _set_primitive(terms: tuple[Term, ...], name: str, weight: float) -> tuple[Term, ...]:
    """``terms`` with Kunin et al.'s primitive ``name`` at ``weight`` (coef = weight × the
    primitive's sign; added when absent, dropped at weight 0)."""
    prim = PRIMITIVES[name]
    kept = tuple(t for t in terms if t.factors != prim.factors)
    return kept + ((Term(prim.coef * weight, prim.factors),) if weight != 0 else ())


def configure_rule(rule: Rule, cfg: dict[str, Any]) -> Rule:
    """Apply a trial's metaparameters to ``rule``.

    ``decay``           λ on every decay term the rule has (−λW on W, −λB on a learned B);
    ``weight_decay``    −λW on the forward weights only;
    ``feedback.amp|decay|null``  the weights α, β, γ of ΔB = η_B(α·amp + β·decay + γ·null)
                        (Kunin et al. 2020, "Two Routes to Scalable Credit Assignment without
                        Weight Symmetry"), amp = x_l ⊗ y, decay = −B_l, null = −(B_l y) ⊗ y;
    ``feedback.lr_scale``  η_B / η;  ``feedback.noise_std``  the mirror noise σ;
    ``param.<name>``    a rule constant (``Rule.with_params``).
    """
    weight_term = (Factor.WEIGHT,)
    forward, fb = rule.forward, rule.feedback
    learned = fb is not None and fb.kind == "learned"

    def need_learned(key: str) -> None:
        if not learned:
            raise ValueError(f"'{key}' needs a rule with learned feedback; rule '{rule.name}' has "
                             f"{fb.kind if fb else 'no'} feedback")

    if cfg.get("decay") is not None:
        lam = float(cfg["decay"])
        has_w = any(t.factors == weight_term for t in forward)
        has_b = learned and any(t.factors == weight_term for t in fb.terms)
        if not (has_w or has_b):
            raise ValueError(f"'decay': rule '{rule.name}' has no decay term (use weight_decay "
                             "or feedback.decay to add one)")
        if has_w:
            forward = _set_primitive(forward, "decay", lam)
        if has_b:
            fb = dataclasses.replace(fb, terms=_set_primitive(fb.terms, "decay", lam))
    if cfg.get("weight_decay") is not None:
        forward = _set_primitive(forward, "decay", float(cfg["weight_decay"]))
    for prim in ("amp", "decay", "null"):
        key = f"feedback.{prim}"
        if cfg.get(key) is not None:
            need_learned(key)
            fb = dataclasses.replace(fb, terms=_set_primitive(fb.terms, prim, float(cfg[key])))
    for attr in ("lr_scale", "noise_std"):
        key = f"feedback.{attr}"
        if cfg.get(key) is not None:
            need_learned(key)
            fb = dataclasses.replace(fb, **{attr: float(cfg[key])})
    if learned and not fb.terms:
        raise ValueError(f"rule '{rule.name}': every feedback primitive weight is 0")
    params = {k[6:]: v for k, v in cfg.items() if k.startswith("param.")}
    out = dataclasses.replace(rule, forward=forward, feedback=fb)
    return out.with_params(**params) if params else out


def decode(cfg: dict[str, Any]) -> dict[str, Any]:
    """Undo the JSON strings :func:`neurocredit.commands.sweep_file.tune_space` puts in choices."""
    out = dict(cfg)
    for k, v in cfg.items():
        if isinstance(v, str) and v.startswith("["):
            out[k] = json.loads(v)
    return out


def emulator_run(rule: Rule, cfg: dict[str, Any]) -> dict[str, Any]:
    """On-chip learning in the fixed-point emulator, as ``neurocredit learn --backend
    emulator`` runs it (:func:`neurocredit.commands.learn.learn_on_chip`): an untrained spiking
    net with ``rule`` -> NIR graph -> on-chip circuit -> the digits stream.  The one adapter
    between sweeps and the chip code."""
    from neurocredit.commands.learn import learn_on_chip
    from neurocredit.data import load_digits
    from neurocredit.nir.export import export
    from neurocredit.sim.spiking import SpikingConfig, SpikingNetwork

    if cfg["data"] != "digits":
        raise ValueError(f"backend 'emulator' trains on digits, got data '{cfg['data']}'")
    data = load_digits(seed=cfg["seed"], standardise=False)      # rates in [0, 1]
    net = SpikingNetwork([data.n_in, *cfg["hidden"], data.n_out], rule, SpikingConfig(readout="lif"),
                         cfg["seed"], cfg["feedback_scale"])
    _, _, history, _ = learn_on_chip(export(net), data, epochs=cfg["epochs"],
                                     samples=cfg.get("samples") or None, backend="emulator",
                                     seed=cfg["seed"], log=lambda *_: None, lr=cfg["lr"])
    last = history[-1]
    out = {"history": history, "test_acc": last["test_acc"]}
    if "angle_B" in last:                    # the chip reports the mean over layers only
        out["angle_mean"] = last["angle_B"]
    return out


def run_trial(cfg: dict[str, Any], threads: int = 1, device: str = "cpu") -> dict[str, Any]:
    """Train one configuration; the metrics.json content of the trial (scalars at the top)."""
    import torch

    from neurocredit.data import load_dataset
    from neurocredit.sim.train import DivergenceError, TrainConfig, train

    torch.set_num_threads(max(1, int(threads)))
    rule = configure_rule(resolve(cfg["rule"]), cfg)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"config": cfg, "rule": rule.name, "status": "ok"}
    if cfg["backend"] == "emulator":
        res = emulator_run(rule, cfg)
        out.update(res)
        layers = []
    else:
        data = load_dataset(cfg["data"], seed=cfg["seed"])
        tc = TrainConfig(epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                         momentum=cfg["momentum"], seed=cfg["seed"], device=device,
                         activation=cfg["activation"], feedback_scale=cfg["feedback_scale"],
                         loss="ce" if data.n_classes else "mse", progress=False)
        try:
            result = train(rule, data, cfg["hidden"], tc)
            final = result.final
            out.update(test_loss=final["test_loss"], train_loss=final["train_loss"],
                       history=result.history)
            if "test_acc" in final:
                out["test_acc"] = final["test_acc"]
            layers = final.get("layers", [])
        except DivergenceError as exc:
            out.update(status="diverged", error=str(exc), test_acc=math.nan, test_loss=math.nan)
            layers = []
    angles = {f"angle_l{r['layer']}": r["angle_WT_B"] for r in layers if "angle_WT_B" in r}
    out.update(angles)
    if angles and "angle_mean" not in out:
        out["angle_mean"] = sum(angles.values()) / len(angles)
    out["seconds"] = time.perf_counter() - t0
    return out
