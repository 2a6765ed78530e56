"""CLI sub-commands, one module each (see neurocredit/cli.py)."""
