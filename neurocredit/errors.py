"""Exceptions a user can cause; the CLI prints them as one line (``neurocredit CMD: error: ...``)
and exits non-zero, the Python API raises them as they are."""

LAVA_HINT = ("the Lava backend needs lava-nc, which is not installed here: run `neurocredit "
             "setup-lava` (or use --backend emulator)")


class UserError(Exception):
    """An error caused by the user's input (bad name, shape, file, number)."""


class LavaMissingError(UserError):
    """lava-nc is not installed (or not importable): the message says how to add it."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(LAVA_HINT + (f" ({detail})" if detail else ""))
