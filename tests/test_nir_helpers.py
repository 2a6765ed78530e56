"""Helpers for the NIR tests: write an arbitrary HDF5 tree the way nir.write lays files out."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def write_tree(path: str | Path, tree: dict[str, Any], version: str = "1.0.8") -> None:
    """Write ``tree`` (nested dicts of arrays / strings / numbers) under the group 'node'."""
    import h5py

    def rec(group, d):
        for k, v in d.items():
            if isinstance(v, dict):
                rec(group.create_group(str(k)), v)
            elif isinstance(v, str):
                group.create_dataset(str(k), data=v, dtype=h5py.string_dtype())
            else:
                group.create_dataset(str(k), data=np.asarray(v))

    with h5py.File(path, "w") as f:
        f.create_dataset("version", data=version, dtype=h5py.string_dtype())
        rec(f.create_group("node"), tree)


def chain_tree(n_in: int = 4, n_hidden: int = 3, n_out: int = 2) -> dict[str, Any]:
    """A valid Input -> Affine -> LIF -> Affine -> LI -> Output graph as a raw tree."""
    f32 = lambda *s: np.ones(s, np.float32)  # noqa: E731
    lif = {"type": "LIF", "tau": f32(n_hidden) * 1e-3, "r": f32(n_hidden) * 10, "v_leak": f32(n_hidden) * 0,
           "v_threshold": f32(n_hidden), "v_reset": f32(n_hidden) * 0}
    li = {"type": "LI", "tau": f32(n_out) * 1e-3, "r": f32(n_out) * 10, "v_leak": f32(n_out) * 0}
    return {"type": "NIRGraph",
            "nodes": {"input": {"type": "Input", "shape": np.array([n_in])},
                      "fc1": {"type": "Affine", "weight": f32(n_hidden, n_in) * 0.5, "bias": f32(n_hidden) * 0},
                      "lif1": lif,
                      "fc2": {"type": "Affine", "weight": f32(n_out, n_hidden), "bias": f32(n_out) * 0},
                      "readout": li,
                      "output": {"type": "Output", "shape": np.array([n_out])}},
            "edges": np.array([[b"input", b"fc1"], [b"fc1", b"lif1"], [b"lif1", b"fc2"],
                               [b"fc2", b"readout"], [b"readout", b"output"]])}
