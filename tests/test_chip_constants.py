"""The rule compiler's constants against the learning engine's arithmetic, factor combination by
factor combination.

The engine (Lava's LearningRuleApplierBitApprox; the emulator's product arithmetic) adds to the
accumulator W << 7 the value (m · dependency · Π f  >> s) << (7 + k), s = max(0, 4 + Σ widths −
15): a product changes the weight by m 2^k Π f / 2^s.  The compiler must choose m 2^k so that
this equals the rule's η c Π (f / unit_f) (a spike, trace or weight LSB counts 1; a graded
extension and the eligibility trace count in their table units) up to the grid error it
reports.  Before the engine's shift was undone for stock products, x0·y1·w came out 1/32 of the
rule.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurocredit.chip import extensions as EX
from neurocredit.chip import ir
from neurocredit.chip import tags as TG
from neurocredit.chip.emulator import ACC_MAX, ACC_MIN, product_current
from neurocredit.chip.errors import OnChipError
from neurocredit.chip.plasticity import compile_term, eligibility_units, engine_factors
from neurocredit.chip.profile import load_mapping, load_profile
from neurocredit.rules.rule import Term

PROF = load_profile("loihi2")
LR = 2.0 ** -4
# known factor values, powers of two: where m · Π f is a multiple of 2^s the engine's shift
# truncates nothing and the only difference left is the constant's grid error; elsewhere (four
# factors, s up to 21) the shift truncates before the << (7 + k), by less than 2^k per product
ENGINE_VALUES = {"y1": 16, "y2": 16, "y3": 16, "w": -32, "t": 64, "x1": 32, "gx": 64, "rx": 16, "ry": 4}
SIGNED = 16                     # a signed pair "y3-y2" carries +16 (y3 = 16, y2 = 0) or −16
VIEWS = [v for v in load_mapping("engine")["views"]]


def _units(eligibility: str) -> dict[str, float]:
    units = {f: float(e["unit"]) for f, e in ir.extension_table().items()}
    units.update(eligibility_units(eligibility))
    return units


def _cases():
    """(view, factors, eligibility) for every combination of a view's rule factors (1..4 of them)."""
    for view in VIEWS:
        keys = sorted(engine_factors(view))
        for n in range(1, 5):
            for combo in itertools.combinations(keys, n):
                for elig in (("tag", "pre_trace") if "eligibility" in combo else ("tag",)):
                    yield view, combo, elig


def _engine_values(view: str, factors: tuple[str, ...], sign: int, elig: str) -> tuple[dict, float]:
    """(engine factor -> value, the rule's Π (f / unit_f)) for the rule factors ``factors``."""
    table = engine_factors(view)
    units = _units(elig)
    trace = next(iter(eligibility_units(elig)))
    values, rule = {}, 1.0
    for f in factors:
        name = table[f]
        if f == "eligibility":
            name = trace
        if name == "x0":                     # the pre spike: 1
            continue
        if "-" in name:                      # a signed quantity sent as two traces
            pos, neg = name.split("-")
            values[pos], values[neg] = max(sign * SIGNED, 0), max(-sign * SIGNED, 0)
            rule *= sign * SIGNED
            continue
        values[name] = ENGINE_VALUES[name]
        rule *= ENGINE_VALUES[name] / units.get(name, 1.0)
    return values, rule


def _engine_dw(products, values: dict) -> float:
    """Δw of one evaluation of ``products`` (x0 = 1, u<d> ticking) by the emulator's arithmetic."""
    acc = 0
    for p in products:
        cur = int(product_current(p, [values[f] for f in p.factors]))
        assert ACC_MIN < cur < ACC_MAX, f"{p}: the test values saturate the accumulator"
        acc += cur
    return acc / 128.0


def _truncation(products, values: dict) -> float:
    """The most the engine's right shift can take off: 2^k for each product whose m Π f is not a
    multiple of 2^s (0 where the shift is exact)."""
    out = 0.0
    for p in products:
        whole = p.mant * int(np.prod([values[f] for f in p.factors]))
        if whole % 2 ** ir.engine_shift(p.factors):
            out += 2.0 ** p.exp
    return out


def test_one_engine_scale_function():
    """The compiler, the tags and the extensions use the one definition in chip.ir."""
    assert TG.engine_shift is ir.engine_shift and EX.engine_shift is ir.engine_shift
    assert EX.extension_table is ir.extension_table
    assert [ir.engine_shift(fs) for fs in [("y3",), ("w",), ("y1", "w"), ("y1", "y3"), ("t", "y3"),
                                           ("x1", "y3"), ("gx", "y3"), ("rx", "ry"), ("y1", "y3", "w")]] \
        == [0, 0, 5, 3, 5, 3, 4, 0, 12]
    assert ir.engine_scale(("gx", "y3")) == 2 ** 4 / 64
    assert ir.engine_scale(("t", "y3"), {"t": 64}) == 2 ** 5 / 64


@pytest.mark.parametrize("coef", [-0.125, 0.75])
def test_every_factor_combination_gives_the_rules_value(coef):
    """For every factor combination a view offers: the compiled constant times the engine's
    arithmetic on known traces equals η c Π (f / unit_f) within the product's reported error."""
    compiled, multi = 0, set()
    for view, factors, elig in _cases():
        term = Term(coef, factors)
        try:
            prods = compile_term(term, LR, view, PROF, 1, elig)
        except OnChipError:
            continue                          # refused by name (tested below); no constant to check
        compiled += 1
        for sign in (1, -1):
            values, rule_prod = _engine_values(view, factors, sign, elig)
            live = [p for p in prods if all(values.get(f, 1) != 0 for f in p.factors)]
            d = live[0].decimation or 0
            rule = LR * coef * rule_prod * 2 ** d          # u<d>: per tick, 2^d steps' worth
            if abs(rule) * 128 > ACC_MAX / 2:
                continue                                    # beyond the accumulator: saturates by design
            chip = _engine_dw(live, values)
            err = max(p.error for p in live)
            assert abs(chip - rule) <= err * abs(rule) + _truncation(live, values) + 1e-12, \
                f"{view} {term} ({elig}): products {[str(p) for p in prods]} give {chip} per evaluation, rule {rule}"
            if ir.engine_shift(live[0].factors):
                multi.add((view, factors))
    assert compiled >= 20
    # the combinations the engine shifts (two or more trace/weight/graded factors) are among them
    assert {("forward", ("post", "pre", "weight")), ("forward", ("post", "pre", "third")),
            ("forward", ("eligibility", "post", "third")), ("transposed", ("post", "pre", "weight")),
            ("forward_graded", ("pre", "third")), ("rate_forward", ("pre", "third", "weight"))} <= multi


def test_lava_engine_agrees_on_stock_products():
    """Lava's own applier (LearningRuleApplierBitApprox on the generated dw string) changes the
    weight by the rule's value for the products it computes (x0 · y1 · w, x0 · y1 · y3, x0 · y3)."""
    from lava.magma.core.learning.learning_rule import Loihi2FLearningRule
    from lava.magma.core.learning.learning_rule_applier import LearningRuleApplierBitApprox

    for factors in [("pre", "post", "weight"), ("pre", "post", "third"), ("pre", "third"),
                    ("pre", "third", "weight")]:
        term = Term(-0.125, factors)
        prods = compile_term(term, LR, "forward", PROF)
        dw = ir.ProductSeries(prods).dw
        app = LearningRuleApplierBitApprox(Loihi2FLearningRule(dw=dw).dw)
        values, rule_prod = _engine_values("forward", factors, 1, "tag")
        w = np.full((1, 1), ENGINE_VALUES["w"], np.int64)
        acc = w << 7
        args = {f"{f}_x0": np.full((1, 1), values.get(f, 0)) for f in ("y1", "y2", "y3")}
        out = app.apply(acc.copy(), shape=w.shape, x0=np.ones((1, 1), np.int64), weights=w, **args)
        lava = float((out - acc)[0, 0]) / 128.0
        rule = LR * -0.125 * rule_prod
        err = max(p.error for p in prods)
        assert abs(lava - rule) <= err * abs(rule) + 1e-12, f"{term}: dw = {dw}: Lava {lava}, rule {rule}"


def test_post_pre_weight_is_not_scaled_down_by_the_shift():
    """The finding this file guards: −⅛ post·pre·w at η = 2^-4 is m 2^k = −2^-2 (η c 2^5), and a
    spike pair changes w = −64 by +0.5 (η c w), not by 1/32 of it."""
    (p,) = compile_term(Term(-0.125, ("post", "pre", "weight")), LR, "forward", PROF)
    assert (p.mant * 2.0 ** p.exp, p.dependency, p.factors) == (-0.25, "x0", ("y1", "w"))
    assert _engine_dw([p], {"y1": 1, "w": -64}) == LR * -0.125 * -64


def test_constant_off_the_grid_is_refused_by_name():
    """A product whose compensated constant η c 2^s leaves the m 2^k grid is refused, naming the
    term, the product and the shift."""
    with pytest.raises(OnChipError, match=r"post·pre·weight.*x0 \* y1 \* w.*right shift 5.*outside"):
        compile_term(Term(-1.0, ("post", "pre", "weight")), 1000.0, "forward", PROF)    # 32000 >> 7·2^8
    with pytest.raises(OnChipError, match=r"third·pre.*below the smallest"):
        compile_term(Term(-1.0, ("third", "pre")), 1e-4, "forward", PROF)


def test_eligibility_readout_and_tag_constants_unchanged():
    """e-prop's constants (tag and readout) are the ones the tags module compiled before the
    shift moved into the compiler: −4·2^-7 u0 y3 t (η 2^5 / 64) and −2·2^-7 u0 y3 x1 (η 2^3 / 32)."""
    from neurocredit.rules import RULES

    hidden = TG.plan(RULES["eprop"], LR, 0.9, 400)
    readout = TG.plan(RULES["eprop"], LR, None, 400)
    assert hidden.dw.dw == "-4 * 2^-7 * u0 * y3 * t + 4 * 2^-7 * u0 * y2 * t"
    assert readout.dw.dw == "-2 * 2^-7 * u0 * y3 * x1 + 2 * 2^-7 * u0 * y2 * x1"
