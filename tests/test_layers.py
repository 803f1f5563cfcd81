"""The direction of imports between layers (so the engine and CLI work without pytest/cluster)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "pytest_kaudit"


def _imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    names: set[str] = set()
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _forbidden(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f.rstrip(".") or name.startswith(f if f.endswith(".") else f + ".")
               for f in forbidden)


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
    ("cli", ("pytest", "_pytest", "kubernetes", "pytest_kaudit.plugin",
             "pytest_kaudit.factories")),
    ("redact", ("pytest", "kubernetes")),
    ("coverage", ("pytest", "kubernetes")),
]


#: Sub-commands that need a cluster (``up``, ``check``) import its backend when they run; no
#: CLI module may import one at start-up, so every other command starts without it.
CLI_LAZY_ONLY = ("pytest_kaudit.backends.local", "pytest_kaudit.backends.kind")


@pytest.mark.parametrize(("layer", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_layer_imports(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = []
    for path in _modules(layer):
        for name in _imports(path):
            if _forbidden(name, forbidden):
                bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert bad == []


def test_cli_imports_backends_only_when_a_command_runs() -> None:
    bad = [f"{path.relative_to(PKG)} imports {name} at module level"
           for path in _modules("cli") for name in _imports(path, top_level_only=True)
           if _forbidden(name, CLI_LAZY_ONLY)]
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
