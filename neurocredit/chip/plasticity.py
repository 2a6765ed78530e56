"""Rule terms -> product series: the one plasticity compiler.

A rule term ``c · Π factors`` (:class:`neurocredit.rules.rule.Term`) of a plastic connection
with learning rate η becomes products of the learning engine (:mod:`neurocredit.chip.ir`)::

    η c · pre · third        (forward view)  ->  m 2^k x0 y3  −  m 2^k x0 y2      (m 2^k ≈ η c)
    η c · pre · post         (forward view)  ->  m 2^k x0 y1
    η c · pre · post         (transposed)    ->  m 2^k x0 y3  −  m 2^k x0 y2
    η c · weight                             ->  m 2^k u<d> w   (m 2^k / 2^d ≈ η c / decay_steps)
    η c · pre · post · weight (forward view) ->  m 2^k x0 y1 w  (m 2^k ≈ η c · 2^5)

Every constant is the rule's value times the product's engine scale (:func:`neurocredit.chip.ir.
engine_scale`): the engine shifts a product's integer value right by s = max(0, 4 + Σ widths − 15)
(Lava's LearningRuleApplierBitApprox; 5 for y1·w, 3 for two traces, 0 for one trace or w alone),
so m 2^k ≈ η c · 2^s / Π unit_f makes the on-chip Δw = m 2^k Π f / 2^s equal the rule's
η c Π (f / unit_f), each factor counted in its unit (a spike, a trace or weight LSB; a marked
extension's table ``unit``).

following the factor table ``mappings/engine.toml`` (which engine factor each rule factor is on
each synapse view; signed quantities are pairs of unsigned traces).  Constants are quantised
onto the engine's m·2^k grid (m a signed ``scaling_mantissa_bits`` mantissa, k in
[scaling_exponent_min, scaling_exponent_max] of ``hardware/<target>.toml``); every product
carries its relative quantisation error.  A weight-only term (decay) is below the smallest
constant 2^-7 per step for useful rates, so it rides on a decimated dependency u<d> that ticks
every 2^d steps.  A factor with no engine counterpart, a term with no dependency (no pre spike
and not weight-only), a constant off the grid: each raises :class:`OnChipError` naming the
term, the product and the limit.
"""
from __future__ import annotations

import math
from functools import lru_cache

from neurocredit.chip.errors import OnChipError
from neurocredit.chip.extensions import is_extension, ordered
from neurocredit.chip.ir import Product, ProductSeries, engine_scale, engine_shift
from neurocredit.chip.profile import Profile, load_mapping, load_profile
from neurocredit.rules.factors import Factor
from neurocredit.rules.rule import Term


@lru_cache(maxsize=None)
def _table() -> dict:
    return load_mapping("engine")


def engine_factors(view: str) -> dict[str, str]:
    """Rule factor -> engine factor on synapse ``view`` ('forward' | 'transposed')."""
    views = _table()["views"]
    if view not in views:
        raise OnChipError(f"no synapse view {view!r} in mappings/engine.toml (known: {', '.join(views)})")
    return {k: v for k, v in views[view].items() if k != "note"}


def max_decimation() -> int:
    return int(_table()["dependencies"]["max_decimation"])


def _grid(profile: Profile) -> tuple[int, int, int]:
    m_bits = int(profile.get("learning.scaling_mantissa_bits"))
    return (2 ** (m_bits - 1) - 1, int(profile.get("learning.scaling_exponent_min")),
            int(profile.get("learning.scaling_exponent_max")))


def scaling_constant(value: float, profile: Profile, what: str = "learning-rate constant") -> tuple[int, int]:
    """(m, k) with m 2^k nearest to ``value`` on the engine's grid; refuses a value that
    quantises to 0 or lies outside the grid."""
    m_max, k_lo, k_hi = _grid(profile)
    if value == 0 or not math.isfinite(value):
        raise OnChipError(f"{what} {value} cannot be a scaling constant")
    k = min(max(math.ceil(math.log2(abs(value) / m_max)), k_lo), k_hi)
    m = int(min(max(round(value / 2 ** k), -m_max - 1), m_max))
    if m == 0:
        raise OnChipError(f"{what} {value:.3g} is below the smallest scaling constant 1·2^{k_lo} "
                          f"of the learning engine")
    if abs(m * 2.0 ** k - value) > 0.5 * abs(value):
        raise OnChipError(f"{what} {value:.3g} is outside the scaling constant range "
                          f"[-{m_max + 1}·2^{k_hi}, {m_max}·2^{k_hi}]")
    return m, k


def decimated_constant(value: float, profile: Profile) -> tuple[int, int, int]:
    """(m, k, d) with m 2^k / 2^d nearest to ``value`` (per step): the smallest decimation d
    within 1/16 of ``value``, else the closest; refuses a value no (m, k, d) reaches."""
    best = None
    for d in range(max_decimation() + 1):
        try:
            m, k = scaling_constant(value * 2 ** d, profile)
        except OnChipError:
            continue
        err = abs(m * 2.0 ** (k - d) - value) / abs(value)
        if best is None or err < best[0]:
            best = (err, m, k, d)
        if err <= 1 / 16:
            break
    if best is None or best[0] > 0.5:
        raise OnChipError(f"weight-decay constant {value:.3g} per step is outside what m 2^k u<d> reaches "
                          f"(d <= {max_decimation()})")
    return best[1], best[2], best[3]


def compile_term(term: Term, lr: float, view: str, profile: Profile, decay_steps: int = 1,
                 eligibility: str = "tag") -> tuple[Product, ...]:
    """The products of one rule term on synapse ``view`` (see the module docstring);
    ``eligibility``: which trace of engine.toml [eligibility] holds the rule's eligibility factor
    ('tag': the synapse's tag t, counted in tag_unit; 'pre_trace': the pre trace x1 itself,
    counted in pre_unit — a readout's, :mod:`neurocredit.chip.tags`)."""
    table = engine_factors(view)
    names = []
    for f in term.factors:
        f = Factor(f)
        if f.value not in table:
            raise OnChipError(f"term {term}: factor '{f.value}' has no learning-engine counterpart on a "
                              f"{view} synapse (mappings/engine.toml [views.{view}] maps "
                              f"{', '.join(sorted(table))})")
        names.append(table[f.value])
    label = str(term)
    graded = [n for n in names if is_extension(n)]
    if graded and "x0" not in names:
        return _graded_products(term, names, lr, view, profile)
    if names == ["w"]:
        value = lr * term.coef / decay_steps * engine_scale(names)
        m, k, d = decimated_constant(value, profile)
        return (Product(m, k, f"u{d}", ("w",), label, abs(m * 2.0 ** (k - d) - value) / abs(value)),)
    dep, units = "x0", None
    elig = _table().get("eligibility", {})
    if elig and elig["tag"] in names:     # an eligibility term: the tag is read every step (chip.tags)
        units = eligibility_units(eligibility)
        trace = next(iter(units))
        names = [trace if n == elig["tag"] else n for n in names]
        if "x0" in names:
            raise OnChipError(f"term {term}: the eligibility trace already holds the pre spike's trace; a "
                              f"product of it with the pre spike x0 is not an eligibility term")
        dep = elig["dependency"]
        names = [dep, *names]
    if names.count(dep) != 1:
        raise OnChipError(f"term {term}: the engine evaluates a product on a dependency (the pre spike x0 "
                          f"or a decimated tick u<d> for a weight-only term); on a {view} synapse this term "
                          f"has {'none' if dep not in names else 'two'} (factors {' · '.join(names)})")
    rest = [n for n in names if n != dep]
    combos = _within_factor_limit(term, dep, _signed_combos(rest), profile)   # "y3-y2" doubles the products
    out = []
    for s, fs in combos:
        value = lr * term.coef * engine_scale(fs, units)
        m, k = scaling_constant(value, profile, f"term {term}: {_constant_name(dep, fs, units)} =")
        out.append(Product(s * m, k, dep, fs, label, abs(m * 2.0 ** k - value) / abs(value)))
    return tuple(out)


def eligibility_units(which: str = "tag") -> dict[str, float]:
    """{engine factor: unit} of the trace that holds the eligibility (``which``: 'tag' or
    'pre_trace' of engine.toml [eligibility]; the unit, tag_unit or pre_unit, is the value that
    counts as 1 in the rule's constant), as :func:`neurocredit.chip.ir.engine_scale` reads it."""
    elig = _table()["eligibility"]
    units = {"tag": "tag_unit", "pre_trace": "pre_unit"}
    if which not in units:
        raise OnChipError(f"eligibility trace {which!r} is not one of {', '.join(units)}")
    return {elig[which]: float(elig[units[which]])}


def _constant_name(dep: str, factors: tuple[str, ...], units: dict[str, float] | None = None) -> str:
    """How a product's constant is named in a refusal: η·c, times its engine scale where it has one."""
    scale = engine_scale(factors, units)
    if scale == 1:
        return "constant η·c"
    return (f"constant η·c·{scale:g} of product {' * '.join((dep, *factors))} (the engine's right shift "
            f"{engine_shift(factors)} undone, factors in their units)")


def _signed_combos(names: list[str]) -> list[tuple[int, tuple[str, ...]]]:
    """Expand signed pairs "y3-y2" into products of opposite sign: [(sign, factors), ...]."""
    combos: list[tuple[int, tuple[str, ...]]] = [(1, ())]
    for n in names:
        if "-" in n:
            pos, neg = n.split("-")
            combos = [(s * t, fs + (f,)) for s, fs in combos for t, f in ((1, pos), (-1, neg))]
        else:
            combos = [(s, fs + (n,)) for s, fs in combos]
    return combos


def _within_factor_limit(term: Term, dep: str, combos: list[tuple[int, tuple[str, ...]]],
                         profile: Profile) -> list[tuple[int, tuple[str, ...]]]:
    """``combos`` unchanged if every product has at most the engine's factors per term; else the
    refusal naming the product and the limit."""
    limit = int(profile.get("learning.max_factors_per_term"))
    for _, fs in combos:
        if len(fs) > limit:
            raise OnChipError(f"term {term}: product {dep} * {' * '.join(fs)} has more factors than the "
                              f"engine's limit {limit}")
    return combos


def _graded_products(term: Term, names: list[str], lr: float, view: str, profile: Profile) -> tuple[Product, ...]:
    """A term with a graded extension factor and no pre spike: products on a decimated tick u<d>
    (every 2^d steps) whose constant m 2^k / 2^d ≈ η c · engine_scale(factors) = η c · 2^s / unit^n
    — s the engine's right shift undone, each of the n graded factors counted in its table
    ``unit`` (the value worth one spike)."""
    combos = _within_factor_limit(term, "u", _signed_combos(names), profile)
    out = []
    for s, fs in combos:
        value = lr * term.coef * engine_scale(fs)
        try:
            m, k, d = decimated_constant(value, profile)
        except OnChipError as exc:
            raise OnChipError(f"term {term}: {_constant_name('u', fs)}: {exc}") from None
        out.append(Product(s * m, k, f"u{d}", fs, str(term), abs(m * 2.0 ** (k - d) - value) / abs(value)))
    return tuple(out)


def compile_terms(terms, lr: float, view: str, profile: str | Profile = "loihi2",
                  decay_steps: int = 1, eligibility: str = "tag") -> ProductSeries:
    """The product series of ``terms`` on synapse ``view`` with learning rate ``lr`` (weight
    units per pre spike x factor unit); a weight term spread over ``decay_steps`` learning
    steps (the rule decays once per update, the chip learns every step of a sample)."""
    prof = load_profile(profile)
    prods = ordered(p for t in terms for p in compile_term(t, lr, view, prof, decay_steps, eligibility))
    limit = int(prof.get("learning.max_product_terms"))
    if len(prods) > limit:
        raise OnChipError(f"{len(prods)} products ({', '.join(map(str, prods))}) exceed the engine's limit "
                          f"of {limit} per product series")
    return ProductSeries(prods)


def scale_series(series: ProductSeries, factor: float, profile: str | Profile = "loihi2") -> ProductSeries:
    """``series`` with every constant multiplied by ``factor`` and re-quantised (a learning-rate
    schedule between runs): never below the smallest constant 1·2^k_min (a decay may move to a
    slower decimation, at the slowest u<max>), signs and factors kept."""
    prof = load_profile(profile)
    _, k_lo, _ = _grid(prof)
    out = []
    for p in series:
        d = p.decimation
        if d is not None:
            try:
                m, k, d2 = decimated_constant(p.mant * 2.0 ** (p.exp - d) * factor, prof)
            except OnChipError:
                m, k, d2 = (1 if p.mant > 0 else -1), k_lo, max_decimation()
            out.append(Product(m, k, f"u{d2}", p.factors, p.term, p.error))
            continue
        out.append(requantised(p, factor, prof))
    return ProductSeries(tuple(out))


def requantised(p: Product, factor: float, profile: str | Profile = "loihi2") -> Product:
    """``p`` on its own dependency with its constant m·2^k times ``factor``, re-quantised on the
    engine's m·2^k grid and held at the smallest, ±1·2^k_min, where it would fall below it."""
    prof = load_profile(profile)
    try:
        m, k = scaling_constant(p.mant * 2.0 ** p.exp * factor, prof)
    except OnChipError:
        m, k = (1 if p.mant > 0 else -1), _grid(prof)[1]
    return Product(m, k, p.dependency, p.factors, p.term, p.error)


def floor_factor(series: ProductSeries, profile: str | Profile = "loihi2") -> float:
    """The smallest schedule factor f at which every product of ``series`` is still above the
    engine's floor (:func:`scale_series` holds a constant there): max over products of
    floor_p / |m 2^k / 2^d|, floor_p = 2^k_min for a product on the pre spike and 2^k_min / 2^d_max
    on a decimated tick (the slowest decay the engine applies).  Below f the schedule would shrink
    some constants but not others (a decay held at 1·2^k_min u<d_max> while the learning terms keep
    falling): the ratio of the constants changes."""
    prof = load_profile(profile)
    _, k_lo, _ = _grid(prof)
    out = 0.0
    for p in series:
        d = p.decimation
        floor = 2.0 ** k_lo / (2 ** max_decimation() if d is not None else 1)
        out = max(out, floor / (abs(p.mant) * 2.0 ** (p.exp - (d or 0))))
    return out


def without_decay(series: ProductSeries) -> ProductSeries:
    """``series`` without its weight-decay products, those of a weight-only term −η λ w (on a
    decimated tick u<d> with the weight as their only factor): the rule's ΔW = −η e ⊗ x − λW
    becomes ΔW = −η e ⊗ x.  A between-run switch (the host reloads the series), used by
    ``OnChipSpec.decay_epochs``: the engine's weakest decay, 1·2^k_min on u<d_max>, is still many
    times the float trainer's per-epoch decay, so learned feedback that has aligned (Kolen-Pollack:
    B − Wᵀ shrinks by the shared decay, Akrout et al. 2019) keeps learning without it."""
    return ProductSeries(tuple(p for p in series if not (p.decimation is not None and tuple(p.factors) == ("w",))))
