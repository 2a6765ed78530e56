"""`neurocredit setup-lava`: install lava-nc 0.10.0 into this environment by the two-step
recipe (its pinned dependencies, then lava-nc itself with ``--no-deps
--ignore-requires-python``) and apply and verify the one-line Python 3.11 fix
(:mod:`neurocredit._setup_lava`).  The Makefile runs this same command."""
from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from neurocredit._setup_lava import install

    install(quiet=args.quiet, index_url=args.index_url)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("setup-lava", help="install lava-nc 0.10.0 (two steps) and its Python 3.11 fix")
    p.add_argument("--quiet", action="store_true", help="pass -q to pip")
    p.add_argument("--index-url", default=None, help="pip --index-url (default: pip's own setting)")
    p.set_defaults(func=run)
