"""The compiled hot path: built as listed, and never older than its source."""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import callflow
from callflow import stale_compiled

ROOT = Path(callflow.__file__).resolve().parent.parent
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]  # .cpython-311-x86_64-linux-gnu.so


def _module(package: Path, name: str, *, compiled_at: float, edited_at: float) -> None:
    """A source and its (empty) C extension, with these modification times."""
    source, ext = package / f"{name}.py", package / f"{name}{SUFFIX}"
    source.write_text("")
    ext.write_bytes(b"")
    os.utime(ext, (compiled_at, compiled_at))
    os.utime(source, (edited_at, edited_at))


def test_a_source_edited_after_its_build_is_stale(tmp_path: Path) -> None:
    package = tmp_path / "callflow"
    (package / "agi").mkdir(parents=True)
    _module(package, "fresh", compiled_at=2000, edited_at=1000)
    _module(package / "agi", "edited", compiled_at=1000, edited_at=2000)
    (package / f"native__mypyc{SUFFIX}").write_bytes(b"")  # the shared runtime has no source
    assert stale_compiled(package) == ["callflow/agi/edited.py"]


def test_importing_callflow_with_a_stale_module_fails_and_says_what_to_run(
    tmp_path: Path,
) -> None:
    package = tmp_path / "callflow"
    package.mkdir()
    (package / "__init__.py").write_text((ROOT / "callflow" / "__init__.py").read_text())
    _module(package, "enrich", compiled_at=1000, edited_at=2000)
    run = subprocess.run(
        [sys.executable, "-c", "import callflow"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert run.returncode == 1
    assert "ImportError: callflow/enrich.py changed since they were compiled" in run.stderr
    assert "make compiled" in run.stderr


def _listed() -> list[str]:
    """The source paths in scripts/compiled-modules, as scripts/compile.py reads them."""
    spec = importlib.util.spec_from_file_location("compile", ROOT / "scripts" / "compile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    listed: list[str] = module.modules()
    return listed


def test_compiled_modules_never_wait_in_an_except_or_finally_block() -> None:
    # Compiled by mypyc 2.4.1, an exception that went through a `finally:` that awaits came
    # back out of a later such block, in another coroutine (near mypyc/mypyc#1114 and #1177);
    # one caught by an `except:` that awaits came back out of a later await (the CDR writer's
    # batch split, tried compiled).
    waits = []
    for path in _listed():
        for node in ast.walk(ast.parse((ROOT / path).read_text())):
            if isinstance(node, ast.Try | ast.TryStar):
                blocks = [*node.finalbody, *(s for h in node.handlers for s in h.body)]
                for inner in (n for stmt in blocks for n in ast.walk(stmt)):
                    if isinstance(inner, ast.Await | ast.AsyncWith | ast.AsyncFor):
                        waits.append(f"{path}:{inner.lineno}")
    assert waits == []


def test_compiled_modules_set_a_cause_explicitly() -> None:
    # mypyc ignores the `from` of `raise ... from exc`: the cause would be lost (`from None`
    # only hides the context in a traceback, so that one may stay).
    dropped = [
        f"{path}:{node.lineno}"
        for path in _listed()
        for node in ast.walk(ast.parse((ROOT / path).read_text()))
        if isinstance(node, ast.Raise)
        and node.cause is not None
        and not (isinstance(node.cause, ast.Constant) and node.cause.value is None)
    ]
    assert dropped == []


def test_every_listed_module_runs_compiled_once_built() -> None:
    if not (ROOT / "callflow" / ".compiled").exists():
        pytest.skip("make compiled has not been run: every module runs from its source")
    listed = _listed()
    assert len(listed) >= 20
    for path in listed:
        name = path.removesuffix(".py").replace("/", ".")
        assert importlib.import_module(name).__file__.endswith(SUFFIX), name
    assert set(callflow.compiled_modules()) >= {
        p.removesuffix(".py").replace("/", ".") for p in listed
    }
