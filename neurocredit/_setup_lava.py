"""Apply and verify the one-line Python 3.11 fix that lava-nc 0.10.0 needs.

lava-nc 0.10.0 declares ``Requires-Python <3.11``. On 3.11 ``import lava`` fails in
``lava/magma/compiler/var_model.py`` because dataclass fields use the mutable default
``ByteEncoder()``; Python 3.11 requires ``field(default_factory=ByteEncoder)``.
This module rewrites those fields in the installed copy (idempotently), then imports
``lava.magma.core.process.process`` and exits non-zero if either step fails.

Run as ``python -m neurocredit._setup_lava`` (the Makefile does this after installing).
"""
from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

_MUTABLE_DEFAULT = re.compile(r"^(\s+\w+: ByteEncoder) = ByteEncoder\(\)\s*$", re.M)
_IMPORT_LINE = "from dataclasses import dataclass, InitVar"


def var_model_path() -> Path:
    """Location of the installed ``lava/magma/compiler/var_model.py`` (without importing lava)."""
    spec = importlib.util.find_spec("lava")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("lava-nc is not installed in this environment")
    return Path(list(spec.submodule_search_locations)[0]) / "magma" / "compiler" / "var_model.py"


def patch(path: Path) -> int:
    """Rewrite ``x: ByteEncoder = ByteEncoder()`` fields; return the number of lines changed."""
    text = path.read_text()
    new, count = _MUTABLE_DEFAULT.subn(r"\1 = field(default_factory=ByteEncoder)", text)
    if count:
        if _IMPORT_LINE not in new:
            raise SystemExit(f"unexpected layout of {path}: '{_IMPORT_LINE}' not found")
        new = new.replace(_IMPORT_LINE, _IMPORT_LINE + ", field", 1)
        tmp = path.with_suffix(".py.tmp")
        tmp.write_text(new)
        tmp.replace(path)
    return count


def verify() -> None:
    """Import lava's process module in a fresh interpreter; raise SystemExit on failure."""
    result = subprocess.run(
        [sys.executable, "-c", "import lava.magma.core.process.process"],
        capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise SystemExit("lava still fails to import after the fix:\n" + result.stderr[-2000:])


def main() -> None:
    path = var_model_path()
    changed = patch(path)
    if _MUTABLE_DEFAULT.search(path.read_text()):
        raise SystemExit(f"the ByteEncoder fix did not apply to {path}")
    verify()
    print(f"lava-nc: {'patched ' + str(changed) + ' fields in' if changed else 'already patched:'} {path}; "
          "import lava.magma.core.process.process OK")


if __name__ == "__main__":
    main()
