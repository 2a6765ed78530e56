"""`neurocredit rules`: the rule table (name, paper, local or not, feedback it needs, hardware)."""
from __future__ import annotations

import argparse

from neurocredit.rules import RULES, check_locality


def rule_table() -> list[dict[str, str]]:
    rows = []
    for rule in RULES.values():
        violations = check_locality(rule)
        rows.append({"rule": rule.name, "title": rule.title, "paper": rule.paper,
                     "local": "yes" if not violations else "no",
                     "hardware": "yes" if (rule.hardware and not violations) else "no",
                     "feedback": rule.feedback_needed(),
                     "why not local": "; ".join(map(str, violations))})
    return rows


def run(args: argparse.Namespace) -> int:
    rows = rule_table()
    cols = ["rule", "title", "paper", "local", "hardware", "feedback"]
    if args.verbose:
        cols.append("why not local")
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    print("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in cols))
    if args.equations:
        print()
        for rule in RULES.values():
            print(f"{rule.name:6s} {rule.equation}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rules", help="list every learning rule, its paper, locality and feedback")
    p.add_argument("--equations", action="store_true", help="also print each rule's equation")
    p.add_argument("-v", "--verbose", action="store_true", help="say what makes a rule non-local")
    p.set_defaults(func=run)
