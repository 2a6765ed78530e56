"""`neurocredit info`: versions of neurocredit and its main dependencies, whether Lava and
CUDA are present, and the thread counts torch uses."""
from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import platform
import sys

PACKAGES = ("torch", "numpy", "nir", "snntorch", "scikit-learn", "matplotlib", "lava-nc")


def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    import torch

    from neurocredit import __version__
    from neurocredit._setup_lava import lava_status

    print(f"neurocredit {__version__} (Python {platform.python_version()}, {sys.executable})")
    for dist in PACKAGES:
        print(f"  {dist:<13s} {_version(dist)}")
    ok, why = lava_status()
    print(f"Lava backend: {'present' if ok else 'absent'} ({why})")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        print(f"CUDA: present, torch CUDA {torch.version.cuda}: {names}")
    else:
        print(f"CUDA: absent (torch build {torch.__version__}; use --device cpu)")
    print(f"threads: torch {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} "
          f"inter-op; {os.cpu_count()} CPUs"
          + (f"; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}" if "OMP_NUM_THREADS" in os.environ else ""))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="versions, whether Lava and CUDA are present, threads")
    p.set_defaults(func=run)
