"""`neurocredit rules`: the rule table, or one rule in full.

    neurocredit rules                       # table: rule, title, local, on-chip, feedback
    neurocredit rules -v                    # one block per rule: paper, equation, locality, on-chip
    neurocredit rules kp                    # one rule: title, paper, equation, terms, feedback, verdicts
    neurocredit rules my_rule.toml dfa      # rule files (docs/rule_files.md) and names, each in full
    neurocredit rules kp --toml > mine.toml # a library rule as a rule file, to start your own

The on-chip verdict is asked of the on-chip compiler in one place (:func:`onchip_verdict`); the
locality verdict of :func:`neurocredit.rules.check_locality`.  Everything is wrapped to
``--width`` columns.
"""
from __future__ import annotations

import argparse
import textwrap

from neurocredit.rules import RULES, Rule, check_locality, resolve_rule
from neurocredit.rules.rule import Feedback


def onchip_verdict(rule: Rule) -> tuple[bool, str]:
    """(compiles to on-chip learning, how or why not), from the on-chip compiler itself."""
    from neurocredit.chip import compile_status
    return compile_status(rule)


def rule_table(rules: list[Rule] | None = None) -> list[dict[str, str]]:
    """One row per rule (default: the library): locality and on-chip verdicts with reasons."""
    rows = []
    for rule in (list(RULES.values()) if rules is None else rules):
        violations = check_locality(rule)
        onchip, how = onchip_verdict(rule)
        rows.append({"rule": rule.name, "title": rule.title, "paper": rule.paper,
                     "local": "yes" if not violations else "no",
                     "on-chip": "yes" if onchip else "no",
                     "feedback": rule.feedback_needed(),
                     "why not local": "; ".join(map(str, violations)),
                     "on-chip compilation": how})
    return rows


# --------------------------------------------------------------------------- formatting
def wrapped_table(rows: list[dict[str, str]], cols: list[str], width: int) -> list[str]:
    """A table whose cells wrap inside their column so that no line exceeds ``width``.

    The first column (the key) and short columns keep their natural width; the rest share what
    is left in proportion to their longest cell.
    """
    gap = 2
    natural = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    room = width - gap * (len(cols) - 1)
    widths = dict(natural)
    if sum(natural.values()) > room:
        fixed = {cols[0]} | {c for c in cols if natural[c] <= 10}
        free = room - sum(natural[c] for c in fixed)
        flexible = [c for c in cols if c not in fixed]
        total = sum(natural[c] for c in flexible)
        for c in flexible:
            widths[c] = max(len(c), 8, natural[c] * free // total)
    lines = ["  ".join(c.ljust(widths[c]) for c in cols).rstrip(),
             "  ".join("-" * widths[c] for c in cols)]
    for r in rows:
        cells = [textwrap.wrap(r[c], widths[c], break_on_hyphens=False) or [""] for c in cols]
        for i in range(max(map(len, cells))):
            lines.append("  ".join((cell[i] if i < len(cell) else "").ljust(widths[c])
                                   for c, cell in zip(cols, cells)).rstrip())
    return lines


def _field(label: str, text: str, width: int, indent: int = 14) -> list[str]:
    """'label       text' with ``text`` wrapped under itself."""
    head = f"  {label:<{indent - 2}}"
    return textwrap.wrap(text, width, initial_indent=head, subsequent_indent=" " * indent,
                         break_on_hyphens=False) or [head.rstrip()]


def _sum_of_terms(terms) -> str:
    return " ".join(str(t) for t in terms) if terms else "(none)"


def describe_rule(rule: Rule, width: int = 100, verbose_paper: bool = True) -> list[str]:
    """One rule as a block of lines: what it is, its terms and pathway, both verdicts."""
    import dataclasses
    violations = check_locality(rule)
    onchip, how = onchip_verdict(rule)
    out = [f"{rule.name} -- {rule.title}" if rule.title else rule.name]
    if verbose_paper:
        out += _field("paper", rule.paper or "(none given)", width)
    out += _field("equation", rule.equation or "(none given)", width)
    out += _field("forward", "ΔW = η · (" + _sum_of_terms(rule.forward) + ")", width)
    fb = rule.feedback
    if fb is None:
        out += _field("feedback", "none", width)
    else:
        defaults = {f.name: f.default for f in dataclasses.fields(Feedback)}
        said = {"kind", "source", "terms", "module_size", "within_module"}   # in feedback_needed
        said |= {"sign": {"magnitude"}, "sparse": {"sparsity"}}.get(fb.kind, set())
        extra = [f"{k}={getattr(fb, k)}" for k, d in defaults.items()
                 if k not in said and getattr(fb, k) != d]
        out += _field("feedback", rule.feedback_needed() + (f"; {', '.join(extra)}" if extra else ""),
                      width)
        if fb.terms:
            out += _field("ΔB", f"η·{fb.lr_scale:g} · (" + _sum_of_terms(fb.terms) + f"), "
                                f"{fb.drive}-driven", width)
    out += _field("dynamics", rule.dynamics, width)
    if rule.params:
        out += _field("params", ", ".join(f"{k}={v}" for k, v in rule.params), width)
    declared = "declared local" if rule.local else "declared non-local"
    verdict = ("yes" if not violations else "no: " + "; ".join(map(str, violations)))
    wrong = " -- the declaration is wrong" if rule.local == bool(violations) else ""
    out += _field("local", f"{verdict} ({declared}{wrong})", width)
    out += _field("on-chip", ("yes: " if onchip else "no: ") + how, width)
    return out


# --------------------------------------------------------------------------- command
def run(args: argparse.Namespace) -> int:
    if args.width < 60:
        raise ValueError(f"--width must be at least 60 columns, got {args.width}")
    width = args.width
    names = list(args.names) + ([args.rule] if args.rule else [])
    if names:
        rules = [resolve_rule(n) for n in names]          # every name checked before printing
        if args.toml:
            from neurocredit.rules import dump_rule
            print("\n".join(dump_rule(r) for r in rules), end="")
            return 0
        print("\n\n".join("\n".join(describe_rule(r, width)) for r in rules))
        return 0
    if args.toml:
        raise ValueError("--toml prints given rules: name them (neurocredit rules kp --toml)")
    if args.verbose:
        blocks = ["\n".join(describe_rule(rule, width)) for rule in RULES.values()]
        print("\n\n".join(blocks))
        return 0
    cols = ["rule", "title", "local", "on-chip", "feedback"]
    print("\n".join(wrapped_table(rule_table(), cols, width)))
    if args.equations:
        print()
        for rule in RULES.values():
            print("\n".join(_field(rule.name, rule.equation, width, indent=16)))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rules", help="list the learning rules, or show one (a name or a .toml rule file)",
                       description="The rule library: locality and on-chip verdicts, feedback "
                                   "pathways; with a NAME or a .toml file, that one rule in full.")
    p.add_argument("names", nargs="*", default=[], metavar="NAME|FILE.toml",
                   help="show these rules in full: library names (see the table) or rule files "
                        "(docs/rule_files.md); none: the table of all rules")
    p.add_argument("--rule", default=None, metavar="NAME|FILE.toml",
                   help="the same as NAME (as in train, export and learn)")
    p.add_argument("--toml", action="store_true",
                   help="print the rule as a TOML rule file (a start for your own rule)")
    p.add_argument("--equations", action="store_true", help="also print each rule's equation")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="one block per rule: paper, equation, terms, feedback, locality and "
                        "on-chip verdicts with reasons")
    p.add_argument("--width", type=int, default=100, help="wrap the output to this many columns")
    p.set_defaults(func=run)
