"""The ``neurocredit`` command line.  Each sub-command lives in ``neurocredit/commands/<name>.py``
and exposes ``add_parser(subparsers)``; the parser's ``func(args)`` returns an exit code.

One handler here turns every error a user can cause into one line and a non-zero exit:
bad input (:class:`~neurocredit.errors.UserError`, ``ValueError``, a diverging run) exits 2,
a file that cannot be read or written exits 2 naming the file, a missing Lava says how to add
it, Ctrl-C exits 130 (``train`` first writes the finished epochs' metrics and plot).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from neurocredit.commands.options import Parser
from neurocredit.errors import LAVA_HINT, UserError

# sub-command modules under neurocredit.commands, in the order `--help` lists them
COMMANDS = ["rules", "train", "export", "inspect", "compile", "run", "learn", "sweep", "info", "setup-lava"]


def _version() -> str:
    from neurocredit import __version__
    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="neurocredit",
        description="Local credit-assignment rules: PyTorch training, NIR export, chip "
                    "compilation, on-chip learning (emulator or Lava).")
    parser.add_argument("--version", action="version", version=f"neurocredit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"neurocredit.commands.{name.replace('-', '_')}").add_parser(sub)
    return parser


def error_line(exc: BaseException) -> str | None:
    """The one line for an error a user can cause; ``None`` for a bug (shown as a traceback)."""
    from neurocredit.sim.train import DivergenceError
    if isinstance(exc, ModuleNotFoundError):
        if (exc.name or "").split(".")[0] == "lava":
            return LAVA_HINT
        return None
    if isinstance(exc, OSError):
        name = exc.filename if exc.filename is not None else ""
        why = exc.strerror or (exc.args[0] if exc.args else type(exc).__name__)
        return f"{name}: {why}" if name else str(why)
    if isinstance(exc, (UserError, ValueError, KeyError, DivergenceError)):
        msg = exc.args[0] if exc.args else type(exc).__name__
        return str(msg).strip().splitlines()[0] if str(msg).strip() else type(exc).__name__
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"neurocredit {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`neurocredit rules | head`): stop quietly, as the Python docs
        # advise, pointing stdout at devnull so that the interpreter's final flush cannot fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - errors a user can cause become one line
        line = error_line(exc)
        if line is None:
            raise
        print(f"{prog}: error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
