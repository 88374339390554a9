"""Dataclasses with a written-out ``__init__`` set exactly their fields, as generated would.

mypyc compiles a method written in the class, but a dataclass's generated ``__init__`` runs
interpreted (about 20x slower to build an object). The hot path's dataclasses therefore say
``init=False`` and write ``__init__`` out; this test keeps each one equal to its field list.
"""

from __future__ import annotations

import ast
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callflow.call.dialing import DialLog
from callflow.rules.facts import CallFacts
from callflow.rules.trace import TargetCheck

PACKAGE = Path(__file__).resolve().parents[2] / "callflow"


def _keyword(call: ast.Call, name: str) -> bool:
    """Whether ``name=True`` is among a call's keywords."""
    return any(
        k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in call.keywords
    )


def _written_out() -> list[tuple[Path, ast.ClassDef, ast.Call]]:
    """Every dataclass in the package declared with ``init=False`` and its own ``__init__``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Name)
                    and deco.func.id == "dataclass"
                    and any(
                        k.arg == "init" and isinstance(k.value, ast.Constant) and not k.value.value
                        for k in deco.keywords
                    )
                ):
                    found.append((path, node, deco))
    return found


def _fields(cls: ast.ClassDef) -> list[tuple[str, str, str | None, bool]]:
    """Each field: name, annotation, default (source text or None), and whether init takes it."""
    out = []
    for stmt in cls.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        default: str | None = None
        init = True
        value = stmt.value
        if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "field":
            for k in value.keywords:
                if k.arg == "default":
                    default = ast.unparse(k.value)
                elif k.arg == "init":
                    init = bool(ast.literal_eval(k.value))
                elif k.arg == "default_factory":  # only ``lambda: SHARED`` (an immutable)
                    assert isinstance(k.value, ast.Lambda), f"{cls.name}.{stmt.target.id}"
                    default = ast.unparse(k.value.body)
        elif value is not None:
            default = ast.unparse(value)
        out.append((stmt.target.id, ast.unparse(stmt.annotation), default, init))
    return out


def _init(cls: ast.ClassDef) -> ast.FunctionDef:
    """The class's own ``__init__``."""
    for stmt in cls.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            return stmt
    pytest.fail(f"{cls.name} says init=False but writes no __init__")


def _assigned(cls: ast.ClassDef, init: ast.FunctionDef, frozen: bool) -> list[tuple[str, str]]:
    """Each field the body sets, with the source of the value it is set to."""
    body = list(init.body)
    if any(isinstance(s, ast.FunctionDef) and s.name == "__post_init__" for s in cls.body):
        last = ast.unparse(body.pop())  # the generated __init__ ends by calling it
        assert last == "self.__post_init__()", f"{cls.name}: __init__ ends with {last}"
    out = []
    for stmt in body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # the docstring
        if frozen:
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            assert isinstance(call, ast.Call), ast.unparse(stmt)
            assert ast.unparse(call.func) == "object.__setattr__", ast.unparse(stmt)
            this, name, value = call.args
            assert ast.unparse(this) == "self", ast.unparse(stmt)
            assert isinstance(name, ast.Constant), ast.unparse(stmt)
            out.append((name.value, ast.unparse(value)))
        else:
            assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, ast.unparse(stmt)
            target = stmt.targets[0]
            assert isinstance(target, ast.Attribute), ast.unparse(stmt)
            assert ast.unparse(target.value) == "self", ast.unparse(stmt)
            out.append((target.attr, ast.unparse(stmt.value)))
    return out


CASES = _written_out()


def test_the_hot_path_has_written_inits() -> None:
    names = {cls.name for _, cls, _ in CASES}
    assert {"CallFacts", "TargetCheck", "Header", "DialContext", "CallerInfo"} <= names


@pytest.mark.parametrize(
    ("path", "cls", "deco"), CASES, ids=[f"{p.stem}.{c.name}" for p, c, _ in CASES]
)
def test_written_init_matches_the_fields(path: Path, cls: ast.ClassDef, deco: ast.Call) -> None:
    fields = _fields(cls)
    init = _init(cls)
    kw_only = _keyword(deco, "kw_only")
    params = init.args.kwonlyargs if kw_only else init.args.args[1:]
    assert init.args.args[0].arg == "self"
    if kw_only:
        assert init.args.args[1:] == [], "kw_only: every field is keyword-only"
    else:
        assert init.args.kwonlyargs == []
    defaults = init.args.kw_defaults if kw_only else init.args.defaults
    if not kw_only:  # positional defaults align with the last parameters
        defaults = [None] * (len(params) - len(defaults)) + list(defaults)
    taken = [(n, a, d) for n, a, d, init_ in fields if init_]
    written = [
        (p.arg, ast.unparse(p.annotation) if p.annotation else "", ast.unparse(d) if d else None)
        for p, d in zip(params, defaults, strict=True)
    ]
    if kw_only:  # in any order (mypyc 2.4 fails on a required one after an optional one)
        written.sort()
        taken.sort()
    assert written == taken, f"{path.name}: {cls.name}.__init__ differs from its fields"
    assigned = _assigned(cls, init, _keyword(deco, "frozen"))
    assert [n for n, _ in assigned] == [n for n, *_ in fields], f"{cls.name}: fields set"
    for (name, value), (_, _, _, init_) in zip(assigned, fields, strict=True):
        if init_:
            assert value == name, f"{cls.name}.{name} is set to {value}, not its parameter"


def test_written_inits_keep_what_the_dataclass_gave() -> None:
    check = TargetCheck("g", "t1", True, "step 1")
    assert check == TargetCheck("g", "t1", True, "step 1") != TargetCheck("g", "t2", True, "")
    assert repr(check) == "TargetCheck(group='g', target='t1', taken=True, reason='step 1')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        check.reason = "changed"  # type: ignore[misc]
    assert dataclasses.replace(check, taken=False).taken is False
    facts = CallFacts(now=datetime(2026, 1, 1, tzinfo=UTC), dnis="8005550100", campaign="c")
    assert facts.ivr == {} and facts.tracking_number is None and facts.repeat_caller is False
    assert facts.with_ivr("main", "2").ivr == {"main": "2"} and facts.ivr == {}
    with pytest.raises(TypeError):
        CallFacts("8005550100")  # type: ignore[misc]  # keyword-only, as the dataclass was
    log = DialLog()
    log.refused.append("t1")
    assert DialLog().refused == [] and log.refused == ["t1"]  # no list shared between logs
    assert log != DialLog() and DialLog() == DialLog()
