"""The ``neurocredit`` command line.  Each sub-command lives in ``neurocredit/commands/<name>.py``
and exposes ``add_parser(subparsers)``; the parser's ``func(args)`` returns an exit code.

Errors a user can cause (bad rule, data, shape, file) are printed as one line, no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from neurocredit.errors import UserError

# sub-command modules under neurocredit.commands, in the order `--help` lists them
COMMANDS = ["rules", "train", "export", "inspect", "compile", "run", "learn"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurocredit",
        description="Local credit-assignment rules: PyTorch training, NIR export, Lava compilation.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"neurocredit.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, KeyError) as exc:
        msg = exc.args[0] if exc.args else exc.__class__.__name__
        print(f"neurocredit {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
