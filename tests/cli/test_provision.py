"""``kaudit provision``: the packaged script, run from the package, as an installed user runs it.

The fast tests run the real script against the real control-plane binaries (reused through
``KUBEBUILDER_ASSETS`` into a temporary cache). The slow test installs the package into a
fresh virtualenv outside the repository and runs a one-test suite with the ``kaudit`` fixture
after nothing but ``kaudit provision``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_kaudit.backends.local.binaries import find_binary
from pytest_kaudit.errors import BinaryNotFound

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def assets() -> Path:
    """The directory holding the real etcd and kube-apiserver, or skip."""
    try:
        apiserver = find_binary("kube-apiserver", None)
        etcd = find_binary("etcd", None)
    except BinaryNotFound as exc:
        pytest.skip(f"no control-plane binaries:\n{exc}")
    folder = apiserver.parent
    if not (folder / "etcd").exists() or (folder / "etcd").resolve() != etcd.resolve():
        pytest.skip("etcd and kube-apiserver are not in one directory")
    return folder


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("KUBEBUILDER_ASSETS", "TEST_ASSET_KUBE_APISERVER", "TEST_ASSET_ETCD",
                        "KAUDIT_CACHE_DIR")}
    env.update(extra)
    return env


def test_provision_prints_the_assets_directory_last(assets: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kaudit", "provision", "--cache-dir", str(cache)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env=_env(KUBEBUILDER_ASSETS=str(assets)),
    )
    assert proc.returncode == 0, proc.stderr
    published = Path(proc.stdout.splitlines()[-1])
    assert published.parent == cache / "assets"
    assert (published / "kube-apiserver").resolve() == (assets / "kube-apiserver").resolve()
    assert (published / "etcd").resolve() == (assets / "etcd").resolve()
    assert "provision: reusing KUBEBUILDER_ASSETS" in proc.stderr  # the script's own progress


def test_provision_options_are_checked_before_the_script_runs(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_kaudit", "provision", "--cache-dir", str(not_a_dir)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr == (f"kaudit: error: --cache-dir {str(not_a_dir)!r}: exists and is not "
                           "a directory\n")


def test_missing_binaries_message_names_kaudit_provision(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAUDIT_CACHE_DIR", str(tmp_path))
    with pytest.raises(BinaryNotFound) as caught:
        find_binary("kube-apiserver", None, env={"PATH": str(tmp_path)})
    text = str(caught.value)
    assert "  - run `kaudit provision` (reuses or builds etcd and kube-apiserver" in text
    assert 'export KUBEBUILDER_ASSETS="$(kaudit provision | tail -n 1)"' in text
    # this test runs from a source checkout, so the checkout's script is offered too
    assert f"from this source checkout, {REPO / 'clusters/local/provision'} does the same" in text


ONE_TEST = """\
import pytest

POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}


@pytest.mark.kaudit(policy=POLICY)
def test_pod_create_is_audited(kaudit):
    kaudit.create_pod("web", "default")
    kaudit.expect(verb="create", resource="pods", name="web").logged()
"""


@pytest.mark.slow
def test_fresh_virtualenv_outside_the_repo(assets: Path, tmp_path: Path) -> None:
    """pip install, ``kaudit provision``, then a one-test suite passes: nothing else set up.

    The virtualenv sees this machine's installed dependencies (``--system-site-packages``)
    so only the build backend is downloaded; the package itself is built from a copy of the sources and
    installed into the virtualenv, so the provisioning script must travel as package data.
    """
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "pytest_kaudit", src / "pytest_kaudit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, timeout=300)
    python = venv / "bin" / "python"
    # the build backend (setuptools, wheel) comes from the package index, as for any user
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", str(src)],
                   check=True, timeout=600, cwd=tmp_path)
    shutil.rmtree(src)  # only the installed copy is left to run from

    work = tmp_path / "user"
    work.mkdir()
    cache = tmp_path / "cache"
    where = subprocess.run([str(python), "-c", "import pytest_kaudit; print(pytest_kaudit.__file__)"],
                           capture_output=True, text=True, check=True, cwd=work).stdout.strip()
    assert where.startswith(str(venv)), where
    hint = subprocess.run(
        [str(python), "-c", "from pytest_kaudit.backends.local.binaries import find_binary\n"
         "try:\n    find_binary('kube-apiserver', None, env={'PATH': '/nonexistent'})\n"
         "except Exception as exc:\n    print(exc)\n"],
        capture_output=True, text=True, check=True, cwd=work, env=_env(KAUDIT_CACHE_DIR=str(cache)),
    ).stdout
    assert "run `kaudit provision`" in hint
    assert "clusters/local/provision" not in hint  # an installed package has no checkout script

    provision = subprocess.run(
        [str(venv / "bin" / "kaudit"), "provision"],
        capture_output=True, text=True, timeout=600, cwd=work,
        env=_env(KUBEBUILDER_ASSETS=str(assets), KAUDIT_CACHE_DIR=str(cache)),
    )
    assert provision.returncode == 0, provision.stderr
    assert Path(provision.stdout.splitlines()[-1]).parent == cache / "assets"

    (work / "test_one.py").write_text(textwrap.dedent(ONE_TEST))
    suite = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_one.py"],
        capture_output=True, text=True, timeout=600, cwd=work,
        env=_env(KAUDIT_CACHE_DIR=str(cache)),
    )
    assert suite.returncode == 0, suite.stdout + suite.stderr
    assert "1 passed" in suite.stdout
