"""No dead code in the package: vulture finds no unused names (its allow-list, with a reason for
each name, is ``[tool.vulture]`` in pyproject.toml), no ``except`` handler is redundant, and the
pytest configuration names no missing folder."""

from __future__ import annotations

import ast
import builtins
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # vulture itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_kaudit"


_TRY = (ast.Try, getattr(ast, "TryStar", ast.Try))  # try/except* from Python 3.11


def _vulture(*paths: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("vulture")
    return subprocess.run([sys.executable, "-m", "vulture", *paths], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_vulture_finds_no_unused_code() -> None:
    run = _vulture()
    assert run.returncode in (0, 3), run.stderr  # 3: it found something
    assert run.stdout.splitlines() == []


def test_vulture_would_report_an_unused_function(tmp_path: Path) -> None:
    """The check above can fail: with the same settings, a planted unused function is seen."""
    planted = tmp_path / "planted.py"
    planted.write_text("def never_called() -> None:\n    pass\n")
    run = _vulture("pytest_kaudit", str(planted))
    assert "unused function 'never_called'" in run.stdout, run.stdout + run.stderr


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _namespace(module: str, tree: ast.Module) -> dict[str, object]:
    """The module's globals plus every absolute import it makes, local ones included."""
    names = dict(vars(builtins)) | dict(vars(importlib.import_module(module)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            try:
                exec(compile(ast.Module([node], []), module, "exec"), names)
            except ImportError:  # its own tests report that; the names stay unresolved here
                continue
    return names


def _classes(handler: ast.ExceptHandler, names: dict[str, object]) -> list[tuple[str, type]]:
    if handler.type is None:
        return []
    exprs = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    out = []
    for expr in exprs:
        try:
            value = eval(compile(ast.Expression(expr), "<except>", "eval"), names)
        except Exception:  # a local variable (``except decode_error``): not checkable here
            continue
        if isinstance(value, type):
            out.append((ast.unparse(expr), value))
    return out


def redundant_handlers(module: str, source: str) -> list[tuple[int, str, str]]:
    """(line, class, covering class) for every exception a handler names that an earlier class
    of the same handler, or an earlier handler of the same ``try``, already catches; and
    (line, "same body", ...) for two neighbouring handlers that do exactly the same."""
    tree = ast.parse(source)
    names = _namespace(module, tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, _TRY):
            continue
        earlier: list[tuple[str, type]] = []
        previous: ast.ExceptHandler | None = None
        for handler in node.handlers:
            own = _classes(handler, names)
            for i, (name, cls) in enumerate(own):
                others = earlier + own[:i] + own[i + 1:]
                cover = next((n for n, c in others if n != name and issubclass(cls, c)), None)
                if cover:
                    found.append((handler.lineno, name, cover))
            if previous is not None and previous.name == handler.name and ast.dump(
                    ast.Module(previous.body, [])) == ast.dump(ast.Module(handler.body, [])):
                found.append((handler.lineno, "same body", "the handler before it"))
            earlier += own
            previous = handler
    return found


def test_no_except_handler_is_redundant() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {name} is caught by {cover}"
             for module, path in _modules()
             for line, name, cover in redundant_handlers(module, path.read_text())]
    assert found == []


def test_redundant_handlers_are_seen() -> None:
    """The check above can fail: it sees a subclass beside its base, an unreachable handler and
    two handlers doing the same."""
    source = (
        "from pytest_kaudit.errors import KauditError, PolicyError\n"
        "try:\n    pass\nexcept (FileNotFoundError, OSError):\n    pass\n"
        "try:\n    pass\nexcept KauditError:\n    raise\nexcept PolicyError:\n    pass\n"
        "try:\n    pass\nexcept KeyError:\n    pass\nexcept IndexError:\n    pass\n"
    )
    assert redundant_handlers("pytest_kaudit.errors", source) == [
        (4, "FileNotFoundError", "OSError"),
        (10, "PolicyError", "KauditError"),
        (16, "same body", "the handler before it"),
    ]


def test_pytest_configuration_names_no_missing_folder() -> None:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    for key in ("pytester_example_dir", "testpaths"):
        for value in ([ini[key]] if isinstance(ini.get(key), str) else ini.get(key, [])):
            assert (ROOT / value).is_dir(), f"pyproject.toml [tool.pytest.ini_options] {key}"
