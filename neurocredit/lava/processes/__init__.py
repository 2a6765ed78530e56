"""Custom Lava processes (import-safe folder: Lava's compiler imports every module here).

Nothing in this folder may have import-time side effects beyond defining classes.
"""
