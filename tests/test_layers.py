"""The direction of imports between layers (so the engine and CLI work without pytest/cluster)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pytest_kaudit"


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(sub: str) -> list[Path]:
    base = PKG / sub
    return sorted(base.rglob("*.py")) if base.is_dir() else [PKG / f"{sub}.py"]


RULES = [
    # (layer, forbidden import prefixes)
    ("errors", ("pytest", "kubernetes", "pytest_kaudit.backends")),
    ("policy", ("pytest", "_pytest", "kubernetes", "subprocess", "pytest_kaudit.backends",
                "pytest_kaudit.events", "pytest_kaudit.expect", "pytest_kaudit.cli")),
    ("events", ("pytest", "_pytest", "kubernetes", "subprocess", "pytest_kaudit.backends",
                "pytest_kaudit.expect", "pytest_kaudit.cli")),
    ("expect", ("pytest", "_pytest", "kubernetes", "pytest_kaudit.backends", "pytest_kaudit.cli")),
    ("cli", ("pytest", "_pytest", "kubernetes", "pytest_kaudit.backends.local",
             "pytest_kaudit.backends.kind.", "pytest_kaudit.plugin", "pytest_kaudit.factories")),
    ("redact", ("pytest", "kubernetes")),
    ("coverage", ("pytest", "kubernetes")),
]


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_layer_imports(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = []
    for path in _modules(layer):
        for name in _imports(path):
            if any(name == f.rstrip(".") or name.startswith(f if f.endswith(".") else f + ".")
                   or (not f.endswith(".") and name == f) for f in forbidden):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert bad == []


@pytest.mark.parametrize("backend", ["kind", "k3s", "existing", "local"])
def test_no_backend_imports_another(backend: str) -> None:
    others = {"kind", "k3s", "existing", "local"} - {backend}
    bad = []
    for path in _modules(f"backends/{backend}"):
        for name in _imports(path):
            top = name.split(".")[0]
            if any(name.startswith(f"pytest_kaudit.backends.{o}") for o in others) or \
                    top in ("pytest", "_pytest") or name.startswith("pytest_kaudit.expect"):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert bad == []
