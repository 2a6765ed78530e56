"""Apply and verify the one-line Python 3.11 fix that lava-nc 0.10.0 needs.

lava-nc 0.10.0 declares ``Requires-Python <3.11``. On 3.11 ``import lava`` fails in
``lava/magma/compiler/var_model.py`` because dataclass fields use the mutable default
``ByteEncoder()``; Python 3.11 requires ``field(default_factory=ByteEncoder)``.
This module rewrites those fields in the installed copy (idempotently), then imports
``lava.magma.core.process.process`` and exits non-zero if either step fails.

:func:`install` is the whole recipe behind ``neurocredit setup-lava`` (which the Makefile runs):
lava-nc's pinned dependencies, then ``pip install --no-deps --ignore-requires-python
lava-nc==0.10.0`` (one step with the flag pulls a scipy source release that needs 3.12), then
the fix.  ``python -m neurocredit._setup_lava`` applies and verifies the fix alone.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

LAVA_VERSION = "0.10.0"
# lava-nc 0.10.0's Requires-Dist, installed first (pyproject.toml repeats them)
LAVA_DEPS = ("numpy>=1.24.4,<2", "scipy>=1.10.1,<2", "scikit-learn>=1.5,<2", "networkx<=2.8.7",
             "asteval>=0.9.31,<0.10")

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


def lava_status() -> tuple[bool, str]:
    """(usable, why) without importing lava: lava-nc installed at the right version and the
    3.11 fix applied to its ``var_model.py``."""
    import importlib.metadata as md
    try:
        version = md.version("lava-nc")
    except md.PackageNotFoundError:
        return False, "lava-nc not installed; run `neurocredit setup-lava`"
    spec = importlib.util.find_spec("lava")
    if spec is None or not spec.submodule_search_locations:
        return False, f"lava-nc {version} metadata found but no lava package; run `neurocredit setup-lava`"
    path = var_model_path()
    if not path.is_file() or _MUTABLE_DEFAULT.search(path.read_text()):
        return False, f"lava-nc {version} without its Python 3.11 fix; run `neurocredit setup-lava`"
    return True, f"lava-nc {version}, Python 3.11 fix applied"


LAVA_MP_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"


def import_lava() -> None:
    """Import Lava's runtime whatever fixed multiprocessing's start method before.

    Lava 0.10 calls ``multiprocessing.set_start_method('fork')`` when its message
    infrastructure is first imported, which raises "context has already been set" if anything
    (tqdm's lock, a progress bar) fixed the start method earlier.  Here that call runs with
    ``force=True`` (fork is Linux's default, so nothing else changes).  Idempotent; call it
    before any Lava import where a Lava run starts."""
    import multiprocessing as mp
    if LAVA_MP_MODULE in sys.modules:
        return
    original = mp.set_start_method

    def forced(method: str | None, force: bool = False) -> None:
        original(method, force=True)

    mp.set_start_method = forced
    try:
        importlib.import_module(LAVA_MP_MODULE)
        importlib.import_module("lava.magma.core.process.process")
    finally:
        mp.set_start_method = original


def require_lava() -> None:
    """Stop before any work when the Lava backend is asked for and lava-nc is not usable:
    :class:`~neurocredit.errors.LavaMissingError`, one line that says how to add it."""
    ok, why = lava_status()
    if not ok:
        from neurocredit.errors import LavaMissingError
        detail = why.split(";")[0]
        raise LavaMissingError("" if detail == "lava-nc not installed" else detail)


def _pip(args: list[str], quiet: bool, index_url: str | None) -> None:
    cmd = [sys.executable, "-m", "pip", "install", *(["-q"] if quiet else []),
           *(["--index-url", index_url] if index_url else []), *args]
    print("$ " + " ".join(cmd[2:]), flush=True)
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit(f"neurocredit setup-lava: `{' '.join(cmd[2:])}` failed")


def install(quiet: bool = False, index_url: str | None = None) -> None:
    """The two-step lava-nc install and the verified fix; idempotent (an installed lava-nc of
    the right version is kept, the fix is applied once)."""
    import importlib.metadata as md
    try:
        have = md.version("lava-nc")
    except md.PackageNotFoundError:
        have = None
    if have != LAVA_VERSION:
        _pip(list(LAVA_DEPS), quiet, index_url)                                   # step 1
        _pip(["--no-deps", "--ignore-requires-python", f"lava-nc=={LAVA_VERSION}"],  # step 2
             quiet, index_url)
        importlib.invalidate_caches()
    else:
        print(f"lava-nc {have} already installed")
    main()


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
