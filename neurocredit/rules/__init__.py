"""Rules as data: factors, terms, feedback pathways, the rule library and the locality check."""
from neurocredit.rules.factors import Factor
from neurocredit.rules.library import PRIMITIVES, RULES, get_rule, register
from neurocredit.rules.locality import LocalityError, Violation, assert_local, check_locality
from neurocredit.rules.rule import Feedback, Rule, Term

__all__ = ["Factor", "Feedback", "Rule", "Term", "RULES", "PRIMITIVES", "get_rule", "register",
           "check_locality", "assert_local", "LocalityError", "Violation"]
import neurocredit.rules.dynamical  # noqa: F401
