"""Saved runs: one folder per trained model, written by ``neurocredit train`` (and
:func:`neurocredit.train` with ``out=``), read back by ``neurocredit export --from RUN``.

A run folder holds ``metrics.json`` and ``curves.png`` beside the model:

* ``model.pt`` — a rate network (:class:`~neurocredit.sim.network.Network`): rule name and
  constants, layer sizes, activation, seed and every weight and feedback matrix
  (``torch.save`` of plain tensors, read with ``weights_only=True``);
* ``spiking.pt`` — a spiking network, :func:`neurocredit.sim.spiking.save_checkpoint`'s format;
* ``model.nir`` beside ``recurrent.pt`` — a recurrent spiking run (``train --model rsnn``).

Only a spiking network is a NIR graph: a rate run is refused by the exporter with the way to
make it exportable (train with ``--spiking``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from neurocredit.errors import UserError

RATE_CHECKPOINT = "model.pt"
RATE_FORMAT = "neurocredit.rate"


def save_run(net: Any, folder: str | Path, history: list[dict] | None = None,
             seed: int = 0) -> Path:
    """Write ``net`` (a rate ``Network`` or a ``SpikingNetwork``) into ``folder`` atomically;
    the model file's path is returned.  ``seed``: the one the rate network was built with
    (its buffers that are not parameters are rebuilt from it)."""
    from neurocredit.sim.checkpoint import write_checkpoint
    from neurocredit.sim.spiking import SpikingNetwork, save_checkpoint
    folder = Path(folder)
    if isinstance(net, SpikingNetwork):
        return save_checkpoint(net, folder, history)
    if getattr(net, "specs", None):
        raise UserError("saving a network built from layer specs (conv) is not supported; "
                        "save its state_dict with torch.save")
    return write_checkpoint(folder / RATE_CHECKPOINT, RATE_FORMAT, net, seed,
                            {"activation": net.activation}, history)


def load_run(path: str | Path) -> Any:
    """The network of a run folder (or its ``model.pt`` / ``spiking.pt``): a rate ``Network``
    or a ``SpikingNetwork``.  A missing or unreadable model is one :class:`UserError`."""
    from neurocredit.sim.checkpoint import checkpoint_rule
    from neurocredit.sim.network import Network
    from neurocredit.sim.spiking import CHECKPOINT, load_checkpoint
    path = Path(path)
    if path.is_dir():
        if (path / CHECKPOINT).is_file():
            path = path / CHECKPOINT
        elif (path / RATE_CHECKPOINT).is_file():
            path = path / RATE_CHECKPOINT
        elif (path / "model.nir").is_file():          # a recurrent spiking run (--model rsnn)
            from neurocredit.nir.load import load
            return load(path / "model.nir")
        elif (path / "recurrent.pt").is_file():
            raise UserError(f"{path} holds a rate RNN (recurrent.pt), which is not a NIR graph: "
                            "train it with `--model rsnn` to export it")
        else:
            raise UserError(f"{path} holds no saved model ({RATE_CHECKPOINT} or {CHECKPOINT}); "
                            "`neurocredit train --out DIR` writes one")
    if not path.is_file():
        raise UserError(f"no saved run at {path}")
    if path.name == CHECKPOINT:
        try:
            return load_checkpoint(path)
        except (ValueError, FileNotFoundError) as exc:
            raise UserError(str(exc)) from None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any corruption is the same user error
        raise UserError(f"{path} is not a readable neurocredit model: {type(exc).__name__}") from None
    if not isinstance(payload, dict) or payload.get("format") != RATE_FORMAT:
        raise UserError(f"{path} is not a neurocredit rate model (format {RATE_FORMAT!r})")
    try:
        net = Network(payload["sizes"], checkpoint_rule(payload), payload["activation"], int(payload["seed"]))
        net.load_state_dict(payload["state"])
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"{path}: cannot rebuild the saved network: {exc}") from None
    return net
