"""The compiled circuit, as frozen data: populations, connections, and for every plastic
connection the product series its learning engine evaluates.

A :class:`Circuit` holds numbers only (no Lava, no torch objects): the chip compiler
(:mod:`neurocredit.chip.compile`, :mod:`neurocredit.chip.circuits`) produces it, the emulator
(:mod:`neurocredit.chip.emulator`) runs it bit-exactly, a backend (:mod:`neurocredit.lava`)
turns it into processes.

Plasticity (Loihi 2 / Lava learning engine, one epoch per step)::

    ΔW = Σ_products  m · 2^k · dependency · Π factors

with ``dependency`` x0 (the pre spike) or u<d> (a tick every 2^d steps), ``factors`` from the
engine's vocabulary (post traces y1..y3, the weight w; see ``mappings/engine.toml``) and m 2^k
the product's signed scaling constant (m a 4-bit mantissa, k in [-7, 8]).  A factor the stock
engine lacks is an *extension* (marked in the table and by :attr:`Product.extensions`); only a
backend's generic custom learning process computes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Iterable, Mapping

import numpy as np
import torch

from neurocredit.chip.profile import load_mapping

INPUT = "input"     # the circuit's input source (spikes fed from outside)
TARGET = "target"   # the one-hot target source of a learning circuit
ERROR = "error"     # the output error units of a learning circuit

STOCK_FACTORS = frozenset({"x1", "x2", "y1", "y2", "y3", "w", "t", "d"})
"""Factors Lava's stock LearningDense evaluates (lava/magma/core/learning/string_symbols.py; t: the
synapse's tag, Lava's tag_1, learned by its own dt series)."""

# -- the engine's scale of a product: one definition for the compiler, the tags and the extensions --
MANT_BITS = 4            # Lava W_S_MANT: the scaling constant's mantissa width
ACC_BITS = 15            # Lava W_ACCUMULATOR_U: the product accumulator's unsigned width
STOCK_BITS = {"x1": 7, "x2": 7, "y1": 7, "y2": 7, "y3": 7, "w": 9, "t": 9, "d": 9}
"""Width b of each stock factor (Lava's FACTOR_TO_WIDTH_DICT: traces W_TRACE = 7, weight and tags
W_*_S = 9); the engine clips a factor to [−2^b, 2^b − 1]."""


@lru_cache(maxsize=None)
def extension_table() -> dict[str, dict]:
    """The [extensions] table of mappings/engine.toml: factor name -> what, bits, unit, dependency."""
    return {k: v for k, v in load_mapping("engine").get("extensions", {}).items() if isinstance(v, dict)}


def factor_bits(factor: str) -> int:
    """The width b of an engine factor (stock, or a marked extension's ``bits``)."""
    if factor in STOCK_BITS:
        return STOCK_BITS[factor]
    ext = extension_table()
    if factor in ext:
        return int(ext[factor]["bits"])
    raise ValueError(f"factor {factor!r} is neither a stock engine factor nor a listed extension")


def engine_shift(factors: Iterable[str]) -> int:
    """s = max(0, MANT_BITS + Σ_f b_f − ACC_BITS): the right shift the engine applies to a
    product's integer value m · dependency · Π f before adding it, << (7 + k), to the
    accumulator W << 7 (Lava LearningRuleApplierBitApprox.apply).  A product's weight change is
    therefore Δw = m 2^k Π f / 2^s (less the truncation of the shift, under 2^k per product)."""
    return max(0, MANT_BITS + sum(factor_bits(f) for f in factors) - ACC_BITS)


def engine_scale(factors: Iterable[str], units: Mapping[str, float] | None = None) -> float:
    """2^s / Π_f unit_f: the constant m 2^k a product of ``factors`` needs per unit of the rule's
    value, so that Δw = m 2^k Π f / 2^s equals η c Π (f / unit_f).  s is :func:`engine_shift`;
    unit_f is the integer value of factor f that counts as 1 in the rule's constant: ``units[f]``
    where given, a marked extension's table ``unit``, else 1 (a spike, a trace or weight LSB)."""
    factors = tuple(factors)
    ext = extension_table()
    scale = 2.0 ** engine_shift(factors)
    for f in factors:
        if units is not None and f in units:
            scale /= float(units[f])
        elif f in ext:
            scale /= float(ext[f]["unit"])
    return scale


@dataclass(frozen=True)
class Product:
    """One product ``mant · 2^exp · dependency · Π factors`` of a plastic connection's Δw.

    ``term`` names the rule term it was compiled from and ``error`` the relative quantisation
    error of its constant (m 2^k against the rule's value), for reports."""

    mant: int
    exp: int
    dependency: str
    factors: tuple[str, ...]
    term: str = ""
    error: float = 0.0

    @property
    def extensions(self) -> tuple[str, ...]:
        """Factors the stock engine cannot compute (marked extensions)."""
        return tuple(f for f in self.factors if f not in STOCK_FACTORS)

    @property
    def decimation(self) -> int | None:
        """d of a u<d> dependency (the product applies every 2^d steps), else None."""
        return int(self.dependency[1:]) if self.dependency.startswith("u") else None

    def __str__(self) -> str:
        return f"{self.mant} * 2^{self.exp} * " + " * ".join((self.dependency, *self.factors))


@dataclass(frozen=True)
class ProductSeries:
    """The Δw of one plastic connection: a sum of :class:`Product` s."""

    products: tuple[Product, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "products", tuple(self.products))

    def __bool__(self) -> bool:
        return bool(self.products)

    def __iter__(self):
        return iter(self.products)

    def __len__(self) -> int:
        return len(self.products)

    @property
    def extensions(self) -> tuple[str, ...]:
        """Every extension factor any product uses (empty: Lava's stock engine computes it)."""
        return tuple(sorted({f for p in self.products for f in p.extensions}))

    @property
    def stock(self) -> "ProductSeries":
        """The products Lava's stock engine computes (no extension factor)."""
        return ProductSeries(tuple(p for p in self.products if not p.extensions))

    @property
    def extended(self) -> "ProductSeries":
        """The products with a marked extension factor (a generic custom learning process)."""
        return ProductSeries(tuple(p for p in self.products if p.extensions))

    @property
    def dw(self) -> str:
        """The ``Loihi3FLearningRule`` dw string (generated from the products, never by hand)."""
        parts = []
        for p in self.products:
            body = " * ".join((f"{abs(p.mant)} * 2^{p.exp}", p.dependency, *p.factors))
            parts.append(("- " if p.mant < 0 else "+ ") + body)
        s = " ".join(parts)
        return s[2:] if s.startswith("+ ") else "-" + s[2:]

    def __str__(self) -> str:
        return self.dw


NO_LEARNING = ProductSeries(())


@dataclass(frozen=True, eq=False)
class Population:
    """One neuron population.  Fixed point: du, dv 12-bit ints, vth 17-bit int, bias_mant/exp
    ints per neuron.  Float: du, dv fractions, vth float, bias_mant float, bias_exp 0.

    ``kind``: 'lif' (plain LIF), 'third' (LIF with a third-factor compartment: the signed error
    t = sign(a)(|a| >> third_shift)·[v ≥ gate_lo] sent as post traces y3 = t⁺, y2 = t⁻, the spike
    as y1, and as a graded output ``err``), 'graded' (graded units: output a·[|a| > vth]), 'rate'
    and 'integrator' (graded-rate neuron dynamics of :mod:`neurocredit.chip.rate`, with their
    integer ``params``: activation, shifts of the output, high-pass, leak, third factor)."""

    name: str
    n: int
    du: float
    dv: float
    vth: float
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    spiking: bool = True            # False: a leaky integrator (NIR LI/CubaLI), output = v
    v_scale: np.ndarray | float = 1.0   # NIR voltage per unit of this population's v
    kind: str = "lif"
    third_shift: int = 0
    gate_lo: int = -(2 ** 30)
    psi_slope: float = 0.0          # > 0: y1 carries the pseudo-derivative ψ (neurocredit.chip.tags), not the spike
    params: tuple[tuple[str, int], ...] = ()   # a graded-rate kind's dynamics (chip.rate.KINDS)


@dataclass(frozen=True)
class GradedSignal:
    """A graded signal that a plastic connection's learning reads: a *marked extension* of the
    engine (``mappings/engine.toml`` [extensions]; only a backend's generic custom learning
    process evaluates it, :mod:`neurocredit.chip.extensions`).

    ``src``/``port``: the population and port whose value g it is — 'in' (the summed input
    current the population receives on its 'a' port this step, e.g. a prediction μ_l = W_l x_(l−1)
    or the forward input W_(l+1) x_l), 'err' (its signed third factor) or 's' (its output) —
    taken as sign(g)(|g| >> ``shift``).

    * forward view: g is the signed graded pre factor ``gx`` (one value per pre neuron);
    * transposed view: g is the connection's *learning payload* (one value per unit the carried
      payload comes from): it sets the payload traces y3/y2 = clip(±g, 0, 127) in place of the
      carried signal, and ``gx`` is the input the weights deliver from it to the driven neuron,
      sign(d)(|d| >> ``deliver_shift``) with d = B (y3 − y2) (the rule's ``post_input``);
      ``x0_delay`` 1: x0 is the driven neuron's spike of the previous step, the one the payload
      answers when it comes back one Dense hop later (W_(l+1) s_l(t−1) arrives at step t)."""

    src: str
    port: str = "in"
    shift: int = 0
    deliver_shift: int = 0
    x0_delay: int = 0


@dataclass(frozen=True, eq=False)
class Connection:
    """One dense connection ``src`` -> ``dst``, ``weights`` (n_dst, n_src); fixed point: ints
    with ``weight_exp`` and a sign mode.

    ``src_port``: 's' (spikes / graded output) or 'err' (a third-factor population's signed
    error); ``dst_port``: 'a' (input current) or 'third' (third-factor compartment).
    ``plastic``: the connection's product series.  ``view``: which synapse view the engine
    learns on — 'forward' (x0 = the pre spike, y = the post neuron's traces) or 'transposed'
    (learned feedback: x0 = the spike of the neuron the connection drives, y3/y2 = the signed
    payload it carries; Δ applied to the transposed matrix).  ``mask``: which synapses exist
    (bool, the shape of ``weights``; None: all of them).  An absent synapse is not a synapse: its
    weight is 0 and no learning ever changes it (a sparse learned feedback pathway; in Lava a
    ``LearningSparse`` holds only the existing synapses).  ``graded``: the graded signal its
    extension factors read (:class:`GradedSignal`; None: the stock engine's factors only);
    ``graded_post``: the graded signal of the post side's extension factor (one value per post
    neuron; a graded-rate unit's error or noise, :mod:`neurocredit.chip.rate_circuits`).
    ``dst_port`` 'pred': a prediction compartment that the value unit absorbs at the relaxation's
    fixed point (predictive coding's Γ_l μ_l; nothing reaches the error compartment)."""

    name: str
    src: str
    dst: str
    weights: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: str = "mixed"
    src_port: str = "s"
    dst_port: str = "a"
    plastic: ProductSeries = NO_LEARNING
    view: str = "forward"
    mask: np.ndarray | None = None
    graded: GradedSignal | None = None
    graded_post: GradedSignal | None = None     # the post side's graded factor (extension 'ry'), if any
    tag: ProductSeries = NO_LEARNING       # the dt series of the synapses' tag (eligibility, chip.tags)
    pre_trace: tuple[int, int] = (0, 0)    # (x1 impulse, x1 tau) of the pre trace; tau 0: none

    def __post_init__(self) -> None:
        if not isinstance(self.plastic, ProductSeries):
            object.__setattr__(self, "plastic", ProductSeries(tuple(self.plastic)))
        if self.plastic.extensions and self.graded is None:
            raise ValueError(f"connection {self.name}: products {self.plastic.dw} use extension factors "
                             f"{', '.join(self.plastic.extensions)} but the connection names no graded signal")
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            if mask.shape != np.shape(self.weights):
                raise ValueError(f"connection {self.name}: synapse mask {mask.shape} does not match weights "
                                 f"{np.shape(self.weights)}")
            if np.any(np.asarray(self.weights)[~mask] != 0):
                raise ValueError(f"connection {self.name}: absent synapses (mask False) must hold weight 0")
            object.__setattr__(self, "mask", mask)


@dataclass(frozen=True)
class Phase:
    """A scheduled phase of a learning circuit (a weight mirror's noise phase): before every
    ``every`` training samples, for ``steps`` steps, each hidden layer's neurons get
    Bernoulli(``rate``) noise spikes ξ, the next layer answers through a copy of its forward
    weights (``layers``: (learned B name, the forward W it mirrors, the response right shift)),
    and B learns with ``plastic`` on its transposed view; B then replaces the training
    circuit's (fixed) B (:mod:`neurocredit.chip.phases` builds the phase circuit)."""

    kind: str
    layers: tuple[tuple[str, str, int], ...]
    rate: float
    steps: int
    every: int
    plastic: ProductSeries


@dataclass(frozen=True, eq=False)
class Circuit:
    """Populations (in update order; any order gives the same result), connections, the
    populations whose spikes are the graph's outputs, and scheduled phases."""

    n_in: int
    populations: tuple[Population, ...]
    connections: tuple[Connection, ...]
    outputs: tuple[str, ...]
    fixed_point: bool = True
    meta: dict = field(default_factory=dict)
    phases: tuple[Phase, ...] = ()

    def __post_init__(self) -> None:
        for name in ("populations", "connections", "outputs", "phases"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise KeyError(f"no population {name!r} in the circuit")

    def connection(self, name: str) -> Connection:
        for c in self.connections:
            if c.name == name:
                return c
        raise KeyError(f"no connection {name!r} in the circuit")

    @property
    def plastic(self) -> tuple[Connection, ...]:
        """The plastic connections."""
        return tuple(c for c in self.connections if c.plastic)

    def weights(self) -> dict[str, np.ndarray]:
        """Every connection's weights by name."""
        return {c.name: np.asarray(c.weights) for c in self.connections}

    def with_weights(self, weights: dict[str, np.ndarray]) -> "Circuit":
        """A copy whose connections named in ``weights`` hold those weights."""
        conns = [replace(c, weights=weights[c.name]) if c.name in weights else c for c in self.connections]
        return replace(self, connections=tuple(conns))

    def with_plasticity(self, series: dict[str, ProductSeries]) -> "Circuit":
        """A copy whose connections named in ``series`` learn with those product series."""
        conns = [replace(c, plastic=series[c.name]) if c.name in series else c for c in self.connections]
        return replace(self, connections=tuple(conns))

    def sources(self) -> tuple[str, ...]:
        """Names connections read from that are not populations (input, target, noise ...)."""
        pops = {p.name for p in self.populations}
        return tuple(dict.fromkeys(c.src for c in self.connections if c.src not in pops))

    def decode(self, name: str, data: torch.Tensor | np.ndarray) -> np.ndarray:
        """A recorded output in NIR units: spikes as bool, an integrator's v times v_scale."""
        p = self.population(name)
        data = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
        return data != 0 if p.spiking else data.astype(np.float64) * np.asarray(p.v_scale)


def series(products: Iterable[Product]) -> ProductSeries:
    """A ProductSeries of ``products``."""
    return ProductSeries(tuple(products))
