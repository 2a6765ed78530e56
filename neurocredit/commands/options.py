"""Argument types for the ``neurocredit`` sub-commands: every numeric option is checked when
it is parsed (finite, sign, range), so a bad value stops the command before any work starts
with one line naming the option (``argument --lr: must be a finite number > 0, got 'nan'``)."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def _number(kind: type, low: float | None, high: float | None, low_open: bool,
            what: str) -> Callable[[str], float | int]:
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    parse.__name__ = what          # argparse names the type in its own messages
    return parse


positive_int = _number(int, 0, None, True, "an integer >= 1")
nonneg_int = _number(int, 0, None, False, "an integer >= 0")
any_int = _number(int, None, None, False, "an integer")
positive_float = _number(float, 0.0, None, True, "a finite number > 0")
nonneg_float = _number(float, 0.0, None, False, "a finite number >= 0")
finite_float = _number(float, None, None, False, "a finite number")
probability = _number(float, 0.0, 1.0, False, "a probability in [0, 1]")
unit_interval = _number(float, 0.0, 1.0, True, "a number in (0, 1]")
momentum_float = _number(float, None, None, False, "a momentum in [0, 1)")
seed_int = _number(int, 0, 2 ** 32 - 1, False, "a seed in [0, 2^32 - 1]")


def momentum(text: str) -> float:
    """SGD momentum: [0, 1)."""
    value = momentum_float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a momentum in [0, 1), got {text!r}")
    return value


def threads_int(text: str) -> int:
    """Thread count: 1 .. 1024."""
    value = positive_int(text)
    if value > 1024:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, 1024], got {text!r}")
    return value


class DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows every option's default, except ``None`` (the help says what it means)
    and the ``False`` of on/off flags."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or isinstance(action, (argparse._StoreTrueAction,
                                                         argparse._StoreFalseAction,
                                                         argparse._VersionAction,
                                                         argparse._HelpAction)):
            return action.help or ""
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and whose help lists
    defaults; every sub-command parser is one of these."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
