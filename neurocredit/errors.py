"""Exceptions a user can cause; the CLI prints them as one line."""


class UserError(Exception):
    """An error caused by the user's input (bad name, shape, file)."""
