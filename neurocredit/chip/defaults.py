"""Measured on-chip learning defaults (table ``mappings/onchip_learning.toml``) and the learning
circuit they give for a fresh network.

Every entry of the table is a measurement (``benchmarks/onchip_study.py`` ->
``benchmarks/results/onchip_study_<data>.md``): per data set the network, epochs, base learning
rate and its factor per epoch, the hidden derivative gate and the forward weight-exponent offset;
per rule a factor on the base rate.  Nothing here knows a rule by name: a rule's entry is data.
"""
from __future__ import annotations

import numpy as np

from neurocredit.chip.circuits import OnChipSpec, build_circuit, default_spec, random_feedback
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.ir import Circuit
from neurocredit.chip.profile import load_mapping
from neurocredit.rules.rule import Rule


def onchip_defaults(rule: Rule, data: str) -> dict:
    """The defaults of ``data`` for ``rule``: hidden widths, epochs, lr (x the rule's
    ``lr_factor``), lr_decay (the rule's where it sets one), gate (None: :func:`~neurocredit.chip.circuits.default_gate`'s; < 0
    off), weight_exp_offset, and ``spec``: the rule's OnChipSpec fields (e.g. a learned pathway's
    feedback_scale and third_shift).  A rule's sub-table ``[rules.<name>.<data>]`` holds the keys
    measured for one data set; they replace the rule's general keys for that data set only."""
    table = load_mapping("onchip_learning")
    if data not in table["data"]:
        raise OnChipError(f"no on-chip learning defaults for data '{data}' in mappings/onchip_learning.toml "
                          f"(known: {', '.join(table['data'])})")
    out = {"gate": None, "weight_exp_offset": 0, **table["data"][data]}
    rule_table = table.get("rules", {}).get(rule.name, {})
    # [rules.<name>.<data>]: the rule's keys measured for one data set (they replace its general ones there)
    scoped = {k: v for k, v in rule_table.items() if isinstance(v, dict)}
    if set(scoped) - set(table["data"]):
        raise OnChipError(f"mappings/onchip_learning.toml [rules.{rule.name}]: sub-tables "
                          f"{sorted(set(scoped) - set(table['data']))} name no data set (known: "
                          f"{', '.join(table['data'])})")
    rule_row = {**{k: v for k, v in rule_table.items() if k not in scoped}, **scoped.get(data, {})}
    out["lr"] = float(out["lr"]) * float(rule_row.get("lr_factor", 1.0))
    out["lr_decay"] = float(rule_row.get("lr_decay", out["lr_decay"]))
    spec_fields = set(OnChipSpec.__dataclass_fields__) - {"lr"}
    unknown = set(rule_row) - spec_fields - {"lr_factor", "lr_decay", "note"}
    if unknown:
        raise OnChipError(f"mappings/onchip_learning.toml [rules.{rule.name}]: unknown keys {sorted(unknown)} "
                          f"(lr_factor, lr_decay or OnChipSpec fields)")
    out["spec"] = {k: v for k, v in rule_row.items() if k in spec_fields}
    return out


def onchip_timing(data: str, n_hidden: int):
    """The streaming of ``data`` with ``n_hidden`` hidden layers: :func:`neurocredit.chip.session.
    stream_timing`'s, with the data's measured ``steps`` per sample where its table row sets one, and
    its measured ``target_delay`` where that is longer than the depth's (the blank at least as long)."""
    from neurocredit.chip.session import StreamTiming, stream_timing

    timing = stream_timing(n_hidden)
    row = load_mapping("onchip_learning")["data"].get(data, {})
    steps = row.get("steps")
    delay = max(timing.target_delay, int(row.get("target_delay", 0)))
    if not steps and delay == timing.target_delay:
        return timing
    return StreamTiming(int(steps or timing.steps), max(timing.blank, delay), delay)


def learning_circuit(rule: Rule, sizes: list[int], seed: int, data: str, feedback: list[np.ndarray] | None = None,
                     **overrides) -> Circuit:
    """The on-chip learning circuit of a fresh ``sizes`` spiking MLP
    (:func:`neurocredit.chip.session.initial_graph` with ``seed``, compiled) for ``rule`` with the
    defaults of ``data``: its weight-exponent offset
    (:func:`neurocredit.chip.quantise.with_weight_exponent`), lr and gate in the spec
    (:func:`~neurocredit.chip.circuits.default_spec`; ``overrides`` that are not None replace spec
    fields, ``weight_exp_offset`` the table's), random feedback from ``seed`` unless ``feedback``."""
    from neurocredit.chip.compile import compile_graph
    from neurocredit.chip.quantise import with_weight_exponent
    from neurocredit.chip.session import initial_graph

    d = onchip_defaults(rule, data)
    offset = overrides.pop("weight_exp_offset", None)
    offset = d["weight_exp_offset"] if offset is None else offset
    base = compile_graph(initial_graph(sizes, seed=seed)).fixed_circuit
    if offset:
        base = with_weight_exponent(base, int(offset))
    over = {"lr": d["lr"], "gate": d["gate"], **d["spec"], **{k: v for k, v in overrides.items() if v is not None}}
    spec = default_spec(rule, len(sizes) - 2, **over)
    return build_circuit(base, rule, feedback if feedback is not None else random_feedback(rule, sizes, seed), spec)
