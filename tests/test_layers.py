"""The direction of imports between layers (so the engine and CLI work without pytest/cluster).

The contracts themselves are import-linter's, in ``[tool.importlinter]`` of pyproject.toml; this
module runs them, proves they can fail, and checks what a static import graph cannot see: which
imports run at start-up rather than inside the command that needs them, and what the CLI really
loads when a command runs.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # import-linter itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pytest_kaudit"
POLICIES = ROOT / "fixtures" / "policies"
CONTRACTS: list[dict[str, object]] = (
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"])
CONTRACT_NAMES = {str(c["id"]): str(c["name"]) for c in CONTRACTS}


# -- import-linter's contracts ----------------------------------------------------------------

def _lint_imports(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package importable from ``cwd`` (wide lines: one per verdict)."""
    return subprocess.run(
        [sys.executable, "-c",
         "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
         "--no-cache", "--no-logo"],
        cwd=cwd, env={**os.environ, "COLUMNS": "200", **env},
        capture_output=True, text=True, timeout=300, check=False)


def _report(run: subprocess.CompletedProcess[str]) -> str:
    if "Contracts:" not in run.stdout:  # stopped before checking: missing tool, bad config
        pytest.fail("lint-imports did not check the contracts (is the test extra installed? "
                    f"pip install -e '.[test]'):\n{run.stdout}{run.stderr}", pytrace=False)
    return run.stdout


def _verdict(report: str, name: str) -> str | None:
    """``KEPT`` or ``BROKEN`` for the contract called ``name`` (None: not in the report)."""
    for line in report.splitlines():
        if line.startswith(name + " "):
            words = line[len(name):].split()
            if words and words[0] in ("KEPT", "BROKEN"):
                return words[0]
    return None


def _broken_section(report: str, name: str) -> str:
    """The report's explanation of why contract ``name`` is broken: which import, which line."""
    _, _, broken = report.partition("Broken contracts")
    lines = broken.splitlines()
    heads = [i for i, line in enumerate(lines) if line in CONTRACT_NAMES.values()]
    for n, start in enumerate(heads):
        if lines[start] == name:
            end = heads[n + 1] if n + 1 < len(heads) else len(lines)
            return "\n".join(lines[start:end]).strip()
    return report


@pytest.fixture(scope="module")
def contracts_report() -> str:
    return _report(_lint_imports(ROOT))


@pytest.mark.parametrize("contract", sorted(CONTRACT_NAMES))
def test_import_contract(contracts_report: str, contract: str) -> None:
    name = CONTRACT_NAMES[contract]
    verdict = _verdict(contracts_report, name)
    assert verdict == "KEPT", (
        f"import contract {contract!r} is {verdict or 'missing from the report'}:\n"
        + _broken_section(contracts_report, name))


def test_the_contracts_catch_planted_imports(tmp_path: Path) -> None:
    """A checker that cannot fail proves nothing: plant forbidden imports in a copy, see them."""
    shutil.copytree(PKG, tmp_path / "pytest_kaudit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    planted = {
        "policy/model.py": "import kubernetes",
        # the form a module-name-only check misses: a backend imported as a package member
        "backends/local/__init__.py": "from pytest_kaudit.backends import existing",
        "backends/k3s.py": "from pytest_kaudit.backends.kind import config",
    }
    for module, line in planted.items():
        with (tmp_path / "pytest_kaudit" / module).open("a") as f:
            f.write(f"\n{line}  # planted\n")

    report = _report(_lint_imports(tmp_path, PYTHONPATH=str(tmp_path)))

    verdicts = {c: _verdict(report, name) for c, name in CONTRACT_NAMES.items()}
    # the client reaches coverage and replay through policy
    broken = {"policy", "engines", "backends"}
    assert verdicts == {c: "BROKEN" if c in broken else "KEPT" for c in CONTRACT_NAMES}, report
    assert "pytest_kaudit.policy.model -> kubernetes" in report
    assert "pytest_kaudit.backends.local -> pytest_kaudit.backends.existing" in report
    assert "pytest_kaudit.backends.k3s -> pytest_kaudit.backends.kind.config" in report


# -- what import-linter cannot see: when an import runs --------------------------------------

def _is_our_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return name.split(".")[0] == PKG.name and (path.with_suffix(".py").is_file() or path.is_dir())


def _runs_at_start_up(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes executed when the module is loaded: not function bodies, nor the type checker's
    ``if TYPE_CHECKING:`` imports."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                yield child
                yield from _runs_at_start_up(child)
            continue
        yield node
        yield from _runs_at_start_up(node)


def imports_of(source: str, package: str, *, at_start_up: bool = False) -> set[str]:
    """The modules ``source`` imports (``package``: the one it sits in, for relative imports).

    ``from pkg import name`` imports ``pkg``, and ``pkg.name`` too when that is a module of ours:
    ``from pytest_kaudit.backends import kind_config`` loads ``kind_config``.
    """
    tree = ast.parse(source)
    names: set[str] = set()
    for node in _runs_at_start_up(tree) if at_start_up else ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names
                         if _is_our_module(f"{base}.{alias.name}"))
    return names


def _imports(path: Path, *, at_start_up: bool = False) -> set[str]:
    parts = path.relative_to(ROOT).with_suffix("").parts
    package = ".".join(parts if path.name == "__init__.py" else parts[:-1])
    return imports_of(path.read_text(), package, at_start_up=at_start_up)


def _forbidden(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


def test_from_package_import_module_counts_as_that_module() -> None:
    """``from pkg import module`` is an import of ``pkg.module`` (it once counted as ``pkg``)."""
    source = textwrap.dedent("""
        from pytest_kaudit.backends import local
        from pytest_kaudit.policy import Policy
        from . import existing
        from ..errors import KauditError
    """)
    assert imports_of(source, "pytest_kaudit.backends") == {
        "pytest_kaudit.backends", "pytest_kaudit.backends.local", "pytest_kaudit.policy",
        "pytest_kaudit.backends.existing", "pytest_kaudit.errors"}


def test_start_up_imports_leave_out_functions_and_the_type_checker() -> None:
    source = textwrap.dedent("""
        from typing import TYPE_CHECKING
        from pytest_kaudit.backends import local
        if TYPE_CHECKING:
            from pytest_kaudit.backends import kind
        else:
            import json
        def run():
            from pytest_kaudit.backends import existing
        class Command:
            import csv
    """)
    found = imports_of(source, "pytest_kaudit.cli", at_start_up=True)
    assert found == {"typing", "pytest_kaudit.backends", "pytest_kaudit.backends.local", "json",
                     "csv"}
    assert _forbidden("pytest_kaudit.backends.local", CLI_LAZY_ONLY)


#: Sub-commands that need a cluster (``up``, ``check``, ``verify``) import its backend and the
#: kubernetes client when they run; no CLI module may import them at start-up, so every other
#: command starts without them.
CLI_LAZY_ONLY = ("pytest_kaudit.backends", "pytest_kaudit.compliance.backend",
                 "pytest_kaudit.traffic.session", "kubernetes")


def test_cli_imports_backends_only_when_a_command_runs() -> None:
    bad = [f"{path.relative_to(PKG)} imports {name} at module level"
           for path in sorted((PKG / "cli").rglob("*.py"))
           for name in sorted(_imports(path, at_start_up=True))
           if _forbidden(name, CLI_LAZY_ONLY)]
    assert bad == []


# -- what the CLI really loads ----------------------------------------------------------------

#: Loaded only by commands that talk to a cluster (or, for pytest, never by the CLI).
CLUSTER_ONLY = ("kubernetes", "urllib3", "pytest", "_pytest")

_RUN_COMMANDS = textwrap.dedent("""
    import contextlib, io, json, sys
    from pytest_kaudit.cli import main

    watched = tuple(json.loads(sys.argv[2]))
    def loaded():
        return {m.split(".")[0] for m in sys.modules if m.split(".")[0] in watched}

    report, before = {}, loaded()
    for name, argv in json.loads(sys.argv[1]).items():
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        now = loaded()
        report[name] = {"code": code, "new": sorted(now - before), "err": err.getvalue()[-500:]}
        before = now
    print(json.dumps(report))
""")


def test_cli_commands_without_a_cluster_do_not_load_the_kubernetes_client(
        tmp_path: Path) -> None:
    """Each command that never talks to a cluster runs start to end without the client."""
    policy, other = str(POLICIES / "brief.yaml"), str(POLICIES / "gke-style.yaml")
    commands = {
        "--help": ["--help"],
        "lint": ["lint", policy],
        "explain": ["explain", policy, "get pods"],
        "diff": ["diff", policy, other],
        "replay": ["replay", policy, str(ROOT / "tests" / "cli" / "data" / "audit.log")],
        "kind-config": ["kind-config", policy],
        "scaffold": ["scaffold", policy, "-o", str(tmp_path / "test_scaffolded.py")],
        "check --offline": ["check", "--offline", "--format", "html", "--output",
                            str(tmp_path / "report.html"), policy],
    }
    run = subprocess.run(
        [sys.executable, "-c", _RUN_COMMANDS, json.dumps(commands), json.dumps(CLUSTER_ONLY)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])
    assert {name: r["code"] in (0, 1) for name, r in report.items()} == dict.fromkeys(
        commands, True), report  # each ran to the end: clean or findings
    assert {name: r["new"] for name, r in report.items()} == dict.fromkeys(commands, []), (
        "commands that need no cluster loaded the client (command: modules it loaded first)")
