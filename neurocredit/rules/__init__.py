"""Rules as data: factors, terms, feedback pathways, the rule library, the locality check, and
rules as files (TOML) with one resolver for library names and file paths."""
from neurocredit.rules.factors import Factor
from neurocredit.rules.files import (RuleFileError, dump_rule, load_rule, resolve_rule,
                                     rule_from_dict, rule_to_dict, save_rule)
from neurocredit.rules.library import PRIMITIVES, RULES, get_rule, register
from neurocredit.rules.locality import LocalityError, Violation, assert_local, check_locality
from neurocredit.rules.rule import Feedback, Rule, Term

__all__ = ["Factor", "Feedback", "Rule", "Term", "RULES", "PRIMITIVES", "get_rule", "register",
           "check_locality", "assert_local", "LocalityError", "Violation", "RuleFileError",
           "dump_rule", "load_rule", "resolve_rule", "rule_from_dict", "rule_to_dict", "save_rule"]
import neurocredit.rules.dynamical  # noqa: F401
import neurocredit.rules.recurrent  # noqa: F401,E402
