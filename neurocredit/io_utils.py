"""Small I/O helpers: where the shipped data files live, output paths checked before work
starts, and atomic writes (temporary file in the same folder, then rename) that respect the
umask."""
from __future__ import annotations

import importlib.resources
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from neurocredit.errors import UserError

_CHECKOUT = Path(__file__).resolve().parents[1]


def data_dir(kind: str) -> Path:
    """The folder of shipped data files of one ``kind`` (``"hardware"``, ``"mappings"``).

    An installed wheel carries them as package data (``neurocredit/<kind>/``, copied from the
    repository's top-level ``<kind>/`` at build time by ``setup.py``) and they are read with
    :mod:`importlib.resources`; a source checkout or an editable install (``pip install -e .``)
    reads the top-level ``<kind>/`` folder itself, so that editing it takes effect at once."""
    shipped = importlib.resources.files("neurocredit") / kind
    if shipped.is_dir():
        return Path(str(shipped))
    return _CHECKOUT / kind


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """Refuse an output path that cannot be written, before any work starts: its folder (or
    the nearest existing ancestor, for folders still to be made) must be a writable folder,
    and the path itself must not be an existing folder (or, for a folder, a file)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, not a file")
    _check_parent(path, what)
    return path


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """Like :func:`check_output_path` for a folder that will receive several files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} exists and is not a folder")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{what} {path} is not writable")
        return path
    _check_parent(path, what)
    return path


def _check_parent(path: Path, what: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    anc = parent
    while not anc.exists():
        if anc.parent == anc:
            break
        anc = anc.parent
    if anc.exists() and not anc.is_dir():
        raise UserError(f"cannot write {what} {path}: {anc} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {what} {path}: {anc} is not writable")


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The temporary file gets the mode a plain ``open(path, "w")`` would (0666 minus the
    umask): :func:`tempfile.mkstemp` creates 0600 files, which the rename used to keep."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix or path.suffix
    tmp_path = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{suffix}"
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_current_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically (floats for anything JSON cannot hold)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=float))
