"""Hardware target profiles (``hardware/<name>.toml``) and the NIR -> Lava mapping table
(``mappings/lava.toml``), read with :mod:`tomllib` into typed objects.

A profile is either a name (``"loihi2"`` -> ``hardware/loihi2.toml``, shipped with the package: :func:`neurocredit.io_utils.data_dir`) or a
path to a TOML file with the same sections.  :func:`load_profile` also accepts overrides
(``{"chip.cores_per_chip": 2}``) so that tests and users can describe smaller targets.
"""
from __future__ import annotations

import copy
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from neurocredit.errors import UserError

from neurocredit.io_utils import data_dir

# shipped as package data in a wheel, the checkout's top-level folders otherwise
HARDWARE_DIR = data_dir("hardware")
MAPPINGS_DIR = data_dir("mappings")


@dataclass(frozen=True)
class Profile:
    """The numbers of one target, with derived limits used by the compiler."""

    name: str
    data: dict[str, Any]

    def get(self, key: str) -> Any:
        """Value at a dotted key, e.g. ``profile.get("neuron.vth_bits")``."""
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise UserError(f"hardware profile {self.name!r} has no entry {key!r}")
            node = node[part]
        return node

    # -- derived limits -------------------------------------------------------------
    @property
    def dt(self) -> float:
        return float(self.get("time.dt"))

    @property
    def vth_max(self) -> int:
        return 2 ** int(self.get("neuron.vth_bits")) - 1

    @property
    def state_max(self) -> int:
        """Largest magnitude of u and v (Lava clips v to ±(2^23 - 1), wraps u)."""
        return 2 ** (int(self.get("neuron.state_bits")) - 1) - 1

    @property
    def decay_max(self) -> int:
        return 2 ** int(self.get("neuron.decay_bits")) - 1

    @property
    def decay_unity(self) -> int:
        return 2 ** int(self.get("neuron.decay_bits"))

    @property
    def bias_mant_max(self) -> int:
        return 2 ** (int(self.get("neuron.bias_mant_bits")) - 1) - 1

    @property
    def bias_exp_max(self) -> int:
        return int(self.get("neuron.bias_exp_max"))

    @property
    def accumulator_max(self) -> int:
        return 2 ** (int(self.get("neuron.accumulator_bits")) - 1) - 1

    @property
    def vth_shift(self) -> int:
        return int(self.get("neuron.vth_shift"))

    @property
    def act_shift(self) -> int:
        return int(self.get("neuron.act_shift"))

    @property
    def cores(self) -> int:
        return int(self.get("chip.cores_per_chip")) * int(self.get("chip.chips"))

    @property
    def neurons_per_core(self) -> int:
        return int(self.get("chip.neurons_per_core"))

    @property
    def synapse_bits_per_core(self) -> int:
        return int(self.get("chip.synaptic_memory_bits_per_core"))

    @property
    def bits_per_synapse(self) -> int:
        return int(self.get("weights.bits_per_synapse"))

    def weight_limit(self, sign_mode: str) -> int:
        """Largest usable weight magnitude: mixed-sign weights lose their lowest bit (even)."""
        wmax = int(self.get("weights.max_weight"))
        return wmax - 1 if sign_mode == "mixed" else wmax

    def cores_for(self, neurons: int, synapses: int) -> int:
        """Cores one population needs: enough for its neurons and for its incoming synapses."""
        by_neurons = math.ceil(neurons / self.neurons_per_core)
        by_synapses = math.ceil(synapses * self.bits_per_synapse / self.synapse_bits_per_core)
        return max(1, by_neurons, by_synapses)


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def load_profile(profile: str | Path | Profile = "loihi2",
                 overrides: Mapping[str, Any] | None = None) -> Profile:
    """Read ``hardware/<profile>.toml`` (or a TOML path); apply dotted-key ``overrides``."""
    if isinstance(profile, Profile):
        if not overrides:
            return profile
        data, name = copy.deepcopy(profile.data), profile.name
    else:
        path = Path(profile)
        if path.suffix != ".toml":
            path = HARDWARE_DIR / f"{profile}.toml"
        if not path.is_file():
            known = sorted(p.stem for p in HARDWARE_DIR.glob("*.toml"))
            raise UserError(f"unknown hardware target {str(profile)!r}: known targets {known}")
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        name = str(data.get("name", path.stem))
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    return Profile(name=name, data=data)


def load_mapping(name: str = "lava") -> dict[str, Any]:
    """The NIR-node -> process table ``mappings/<name>.toml``."""
    path = MAPPINGS_DIR / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"no mapping table {path}")
    with path.open("rb") as fh:
        return tomllib.load(fh)
