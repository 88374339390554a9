"""callflow: on-premises call tracking and call routing for Asterisk."""

import sys
from pathlib import Path

__version__ = "0.1.0"

_PACKAGE = Path(__file__).resolve().parent


def stale_compiled(package: Path = _PACKAGE) -> list[str]:
    """Sources edited since ``make compiled`` built their C extension (which Python would run)."""
    stale = []
    for ext in package.rglob("*.so"):
        source = ext.with_name(ext.name.split(".", 1)[0] + ".py")
        if source.is_file() and source.stat().st_mtime > ext.stat().st_mtime:
            stale.append(str(source.relative_to(package.parent)))
    return sorted(stale)


def compiled_modules() -> list[str]:
    """The callflow modules imported so far that run compiled (mypyc), by name."""
    return sorted(
        name
        for name, module in list(sys.modules.items())
        if name.startswith("callflow.")
        and not name.endswith("__mypyc")  # their shared runtime
        and (getattr(module, "__file__", None) or "").endswith(".so")
    )


if _stale := stale_compiled():
    raise ImportError(
        f"{', '.join(_stale)} changed since they were compiled: run `make compiled` to build "
        "them again, or `make pure` to run every module from its source"
    )
