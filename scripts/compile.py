#!/usr/bin/env python3
"""Compile the modules listed in scripts/compiled-modules with mypyc, in place.

Each gets a C extension beside its source, which Python imports instead of it; their shared
runtime is ``callflow/native__mypyc``, inside the package, so an editable install finds it.
``--pure`` removes them all, and the daemon runs its Python sources again.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / "scripts" / "compiled-modules"


def modules() -> list[str]:
    """The listed source paths, relative to the project root."""
    lines = (line.strip() for line in LIST.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def remove_compiled() -> None:
    """Delete every C extension in the package (those of modules no longer listed too)."""
    for ext in (ROOT / "callflow").rglob("*.so"):
        ext.unlink()


def main() -> int:
    """Build in place (``--pure``: only remove), from the project root."""
    os.chdir(ROOT)
    remove_compiled()
    if sys.argv[1:] == ["--pure"]:
        return 0
    from mypyc.build import mypycify
    from setuptools import setup

    setup(
        name="callflow-native",
        ext_modules=mypycify(modules(), group_name="callflow.native", opt_level="3"),
        script_args=["-q", "build_ext", "--inplace", "--build-temp", "build/mypyc"],
    )
    # A module's own extension is a shim that does not change when its source does, so the
    # build keeps it, with its old time; built from these sources, it is stamped as new.
    for ext in (ROOT / "callflow").rglob("*.so"):
        os.utime(ext)
    return 0


if __name__ == "__main__":
    sys.exit(main())
