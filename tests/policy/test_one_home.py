"""Each fact about how kube-apiserver audits is written once; a copy coming back fails here.

The check reads every module's syntax tree for literal tables (tuples, lists, sets, and dicts
used as rank tables) that restate a fact outside its home. It is deliberately simple: it
catches the copies that were actually made (a subresource set, a stage or level table, a verb
list, a sensitive-resource list, a stage set, attributes built from an event by hand).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_kaudit.policy.model import LEVEL_NAMES, STAGE_NAMES, Level, Stage
from pytest_kaudit.policy.request import (
    LONG_RUNNING_SUBRESOURCES,
    NON_RESOURCE_VERBS,
    RESOURCE_VERBS,
)

PACKAGE = Path(__file__).resolve().parents[2] / "pytest_kaudit"

STAGE_MEMBERS = {s.name for s in Stage}


def _strings(node: ast.expr) -> set[str]:
    """The strings of a literal collection, also inside its rows (tuples or constructor calls)."""
    elts = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
    out = set()
    for e in elts:
        row = (e.elts if isinstance(e, (ast.Tuple, ast.List)) else
               e.args if isinstance(e, ast.Call) else [e])
        out |= {x.value for x in row if isinstance(x, ast.Constant) and isinstance(x.value, str)}
    return out


def _stage_members(node: ast.expr) -> set[str]:
    elts = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else []
    return {e.attr for e in elts if isinstance(e, ast.Attribute) and e.attr in STAGE_MEMBERS
            and isinstance(e.value, ast.Name) and e.value.id == "Stage"}


def _rank_table_keys(node: ast.expr) -> set[str]:
    """Keys of a ``{"name": int, ...}`` dict (a rank table)."""
    if not isinstance(node, ast.Dict) or not node.values:
        return set()
    if not all(isinstance(v, ast.Constant) and type(v.value) is int for v in node.values):
        return set()
    return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}


#: fact -> (home modules, test of one literal table: True when it restates the fact)
FACTS = {
    "long-running subresources": (
        {"policy/request.py"},
        lambda n: {"exec", "portforward"} <= _strings(n),
    ),
    "stage names": (
        {"policy/model.py"},
        lambda n: len(_strings(n) & set(STAGE_NAMES)) >= 2
        or len(_rank_table_keys(n) & set(STAGE_NAMES)) >= 2,
    ),
    "level names": (
        {"policy/model.py"},
        lambda n: len(_strings(n) & set(LEVEL_NAMES)) >= 3
        or len(_rank_table_keys(n) & set(LEVEL_NAMES)) >= 2,
    ),
    "stage sets (which stages a request emits)": (
        {"policy/stages.py"},
        lambda n: len(_stage_members(n)) >= 2,
    ),
    "resource-request verbs": (
        {"policy/request.py"},
        lambda n: len(_strings(n) & set(RESOURCE_VERBS)) >= 6,
    ),
    "non-resource verbs": (
        {"policy/request.py"},
        lambda n: {"post", "put", "head"} <= _strings(n),
    ),
    "sensitive resources": (
        {"policy/sensitive.py"},
        lambda n: {"secrets", "tokenreviews"} <= _strings(n),
    ),
}


@functools.cache
def _parsed() -> tuple[tuple[str, ast.Module], ...]:
    return tuple((path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(), str(path)))
                 for path in sorted(PACKAGE.rglob("*.py")))


def _modules() -> Iterator[tuple[str, ast.Module]]:
    yield from _parsed()


def _copies(home: set[str], restates: object) -> list[str]:
    found = []
    for name, tree in _modules():
        if name in home:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.expr) and restates(node):  # type: ignore[operator]
                found.append(f"{name}:{node.lineno}")
    return found


@pytest.mark.parametrize("fact", list(FACTS))
def test_the_fact_lives_only_in_its_home(fact: str) -> None:
    home, restates = FACTS[fact]
    assert _copies(home, restates) == [], f"{fact} restated outside {sorted(home)}"


@pytest.mark.parametrize("fact", list(FACTS))
def test_the_home_still_holds_the_fact(fact: str) -> None:
    """The scan sees the table in its home, so an empty result above means something."""
    home, restates = FACTS[fact]
    if fact == "stage names" or fact == "level names":
        pytest.skip("derived from the enum class body, which holds no literal table")
    everywhere = _copies(set(), restates)
    assert {hit.split(":")[0] for hit in everywhere} & home, everywhere


def test_the_scan_catches_a_planted_copy(tmp_path: Path) -> None:
    planted = ast.parse('STREAMS = frozenset({"log", "exec", "attach", "portforward"})\n'
                        'ORDER = ("RequestReceived", "ResponseStarted")\n'
                        'RANK = {"None": 0, "Metadata": 1}\n'
                        'EMITS = {Stage.REQUEST_RECEIVED, Stage.RESPONSE_COMPLETE}\n')
    hits = {fact for fact, (_, restates) in FACTS.items()
            for node in ast.walk(planted) if isinstance(node, ast.expr) and restates(node)}  # type: ignore[operator]
    assert hits == {"long-running subresources", "stage names", "level names",
                    "stage sets (which stages a request emits)"}


def test_tables_follow_the_enums() -> None:
    assert tuple(s.value for s in Stage) == STAGE_NAMES
    assert tuple(lv.value for lv in Level) == LEVEL_NAMES
    assert [s.rank for s in Stage] == [0, 1, 2, 3]
    assert LONG_RUNNING_SUBRESOURCES == {"attach", "exec", "proxy", "log", "portforward"}
    assert "options" in NON_RESOURCE_VERBS and "proxy" in RESOURCE_VERBS


def test_event_readers_build_no_request_attributes_themselves() -> None:
    """Attributes come from ``events/attributes.py`` (a logged event), ``from_http`` (a sent
    request), the request space (``policy/space.py``) or the user's words (``kaudit explain``).
    """
    allowed = {"events/attributes.py", "policy/request.py", "policy/space.py", "cli/explain.py"}
    found = [f"{name}:{node.lineno}" for name, tree in _modules() if name not in allowed
             for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
             and node.func.id == "RequestAttributes"]
    assert found == []
