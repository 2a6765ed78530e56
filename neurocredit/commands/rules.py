"""`neurocredit rules`: the rule table (name, paper, local or not, compiles to on-chip learning,
feedback it needs; -v adds why a rule is not local and how or why not it compiles)."""
from __future__ import annotations

import argparse

from neurocredit.rules import RULES, check_locality


def rule_table() -> list[dict[str, str]]:
    """One row per rule; 'on-chip' is what the Lava compiler accepts today
    (:func:`neurocredit.lava.learning.onchip_status`), with its reason."""
    from neurocredit.lava.learning import onchip_status
    rows = []
    for rule in RULES.values():
        violations = check_locality(rule)
        onchip, how = onchip_status(rule)
        rows.append({"rule": rule.name, "title": rule.title, "paper": rule.paper,
                     "local": "yes" if not violations else "no",
                     "on-chip": "yes" if onchip else "no",
                     "feedback": rule.feedback_needed(),
                     "why not local": "; ".join(map(str, violations)),
                     "on-chip compilation": how})
    return rows


def run(args: argparse.Namespace) -> int:
    rows = rule_table()
    cols = ["rule", "title", "local", "on-chip", "feedback"]
    if args.verbose:
        cols = ["rule", "title", "paper", "local", "on-chip", "feedback", "why not local",
                "on-chip compilation"]
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
    p.add_argument("-v", "--verbose", action="store_true",
                   help="add the paper, what makes a rule non-local and its on-chip compilation")
    p.set_defaults(func=run)
