"""Ship the repository's top-level ``hardware/`` and ``mappings/`` (the editable source of the
target profiles and NIR mapping tables) inside the built package as ``neurocredit/hardware/``
and ``neurocredit/mappings/``, where :func:`neurocredit.io_utils.data_dir` reads them with
:mod:`importlib.resources`.  Everything else is declared in ``pyproject.toml``.

An editable install (``pip install -e .``) copies nothing: ``data_dir`` then reads the
top-level folders of the checkout directly, so edits take effect without reinstalling."""
from pathlib import Path
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

DATA_DIRS = ("hardware", "mappings")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        root = Path(__file__).resolve().parent
        for kind in DATA_DIRS:
            src = root / kind
            if not src.is_dir():
                raise SystemExit(f"setup.py: {src} is missing; cannot ship the {kind} files")
            dst = Path(self.build_lib) / "neurocredit" / kind
            dst.mkdir(parents=True, exist_ok=True)
            for f in sorted(src.glob("*.toml")):
                shutil.copyfile(f, dst / f.name)


setup(cmdclass={"build_py": BuildPyWithData})
