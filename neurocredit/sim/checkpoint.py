"""The checkpoint format every trainer writes (rate ``model.pt``, spiking ``spiking.pt``,
recurrent ``recurrent.pt``): one ``torch.save`` of plain data, read with ``weights_only=True``.

    {format, version: 1, rule, rule_params, rule_spec, sizes, seed, <model fields>, state}

``rule_spec`` is the whole rule as data (:func:`neurocredit.rules.rule_to_dict`), so a rule
written only as a file reloads without it; files written before it existed carry only the rule's
name and constants and are read through the library.  The file is written atomically, with the
run's ``metrics.json`` beside it when a history is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from neurocredit.io_utils import atomic_path, write_json
from neurocredit.rules import get_rule, rule_from_dict, rule_to_dict
from neurocredit.rules.rule import Rule


def write_checkpoint(path: str | Path, fmt: str, net: Any, seed: int, fields: dict[str, Any],
                     history: list[dict] | None = None) -> Path:
    """Save ``net`` (its rule, sizes, ``seed``, the model's own ``fields`` and every tensor of
    its state dict) to ``path`` atomically; ``history`` also writes ``metrics.json`` beside it."""
    path = Path(path)
    payload = {"format": fmt, "version": 1, "rule": net.rule.name,
               "rule_params": [[k, v] for k, v in net.rule.params],
               "rule_spec": rule_to_dict(net.rule),      # the rule travels in the file
               "sizes": list(net.sizes), "seed": int(seed), **fields,
               "state": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    if history is not None:
        write_json(path.parent / "metrics.json", {"rule": net.rule.name, "sizes": net.sizes,
                                                  "history": history})
    return path


def checkpoint_rule(payload: dict[str, Any]) -> Rule:
    """The rule of a checkpoint: its ``rule_spec``, or (older files) the library rule by name
    with the saved constants."""
    if "rule_spec" in payload:
        return rule_from_dict(payload["rule_spec"])
    return get_rule(payload["rule"]).with_params(**dict(payload["rule_params"]))
