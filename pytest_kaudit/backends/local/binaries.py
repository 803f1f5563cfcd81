"""Finding etcd and kube-apiserver, and learning what the apiserver binary supports."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_kaudit.errors import BinaryNotFound


def provision_cache() -> Path:
    """The provisioning cache root (``$KAUDIT_CACHE_DIR`` or the XDG cache)."""
    if os.environ.get("KAUDIT_CACHE_DIR"):
        return Path(os.environ["KAUDIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-kaudit"


_ENV_NAMES = {"kube-apiserver": "TEST_ASSET_KUBE_APISERVER", "etcd": "TEST_ASSET_ETCD"}
_OPTIONS = {"kube-apiserver": "--kaudit-apiserver-bin", "etcd": "--kaudit-etcd-bin"}


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_binary(name: str, explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    """Locate ``name`` (``kube-apiserver`` or ``etcd``).

    Order: the explicit option, ``TEST_ASSET_<NAME>``, ``$KUBEBUILDER_ASSETS/<name>``, ``PATH``,
    then the cache of ``kaudit provision``. The first hit wins; an explicit path that
    is wrong is an error rather than a silent fall-through.

    Raises:
        BinaryNotFound: listing every place that was checked and how to get the binary.
    """
    env = os.environ if env is None else env
    checked: list[str] = []
    if explicit:
        path = Path(explicit).expanduser()
        if _is_executable(path):
            return path
        raise BinaryNotFound(
            name,
            [f"{_OPTIONS[name]}={explicit}: not an executable file"],
            [f"point {_OPTIONS[name]} (ini kaudit_{_OPTIONS[name][9:].replace('-', '_')}) "
             "at an existing binary"],
        )
    candidates: list[tuple[str, Path]] = []
    env_name = _ENV_NAMES[name]
    if env.get(env_name):
        candidates.append((f"${env_name}", Path(env[env_name])))
    else:
        checked.append(f"${env_name} (not set)")
    if env.get("KUBEBUILDER_ASSETS"):
        candidates.append(("$KUBEBUILDER_ASSETS", Path(env["KUBEBUILDER_ASSETS"]) / name))
    else:
        checked.append("$KUBEBUILDER_ASSETS (not set)")
    on_path = shutil.which(name, path=env.get("PATH"))
    if on_path:
        candidates.append(("PATH", Path(on_path)))
    else:
        checked.append(f"PATH ({env.get('PATH', '')})")
    assets = provision_cache() / "assets"
    cached = sorted(assets.glob(f"*/{name}"), key=lambda p: _version_key(p.parent.name))
    candidates += [("provision cache", p) for p in reversed(cached)]
    if not cached:
        checked.append(f"{assets}/*/{name} (provision cache, empty)")
    for origin, path in candidates:
        if _is_executable(path):
            return path
        checked.append(f"{origin}: {path} (missing or not executable)")
    raise BinaryNotFound(name, checked, provision_remedies(name))


def source_checkout_script() -> Path | None:
    """``clusters/local/provision`` when kaudit runs from a source checkout, else None."""
    script = Path(__file__).resolve().parents[3] / "clusters" / "local" / "provision"
    return script if _is_executable(script) else None


def provision_remedies(name: str) -> list[str]:
    """How to get the binaries, in commands that work for this installation."""
    option = _OPTIONS[name]
    remedies = [
        "run `kaudit provision` (reuses or builds etcd and kube-apiserver and caches them, "
        "where this lookup finds them; it prints the directory holding them)",
        'or export KUBEBUILDER_ASSETS="$(kaudit provision | tail -n 1)"',
        "with internet: `kaudit provision --upstream v1.31.0` downloads release binaries",
    ]
    script = source_checkout_script()
    if script is not None:
        remedies.append(f"from this source checkout, {script} does the same")
    remedies += [
        f"or pass {option}=PATH (ini: kaudit_{option[9:].replace('-', '_')})",
        "users with internet: KUBEBUILDER_ASSETS=$(setup-envtest use -p path 1.31.x)",
    ]
    return remedies


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", text)) or (0,)


@dataclass(frozen=True)
class ControlPlaneBinaries:
    """The two binaries of a local control plane and what the apiserver binary supports."""

    apiserver: Path
    etcd: Path

    @property
    def version_text(self) -> str:
        """E.g. ``v1.20.2``."""
        return _apiserver_version(str(self.apiserver), _mtime(self.apiserver))

    @property
    def version(self) -> tuple[int, int]:
        """(major, minor) of the apiserver."""
        major, minor = re.findall(r"\d+", self.version_text)[:2]
        return int(major), int(minor)

    def supports(self, flag: str) -> bool:
        """Whether ``kube-apiserver --help`` lists ``--flag`` (how envtest discovers flags)."""
        return flag in _apiserver_flags(str(self.apiserver), _mtime(self.apiserver))

    def etcd_supports(self, flag: str) -> bool:
        """Whether ``etcd --help`` lists ``--flag``."""
        return flag in _help_flags(str(self.etcd), _mtime(self.etcd))


def find_binaries(apiserver: str | None = None, etcd: str | None = None) -> ControlPlaneBinaries:
    """Locate both binaries (see :func:`find_binary`)."""
    return ControlPlaneBinaries(find_binary("kube-apiserver", apiserver), find_binary("etcd", etcd))


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


def binary_identity(path: Path) -> str:
    """Path, size and modification time of a binary: a rebuilt or replaced one differs."""
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def _answer_cache(path: str, question: str) -> Path:
    key = hashlib.sha256(f"{binary_identity(Path(path))}:{question}".encode()).hexdigest()[:24]
    return provision_cache() / "binary-answers" / f"{key}.json"


def _ask(path: str, argument: str) -> str:
    """``path argument``'s output, kept on disk per binary identity.

    Each ``--help`` / ``--version`` of a 100 MB Go binary costs a fraction of a second, on
    every run; the answers only change when the binary does.
    """
    cached = _answer_cache(path, argument)
    try:
        return str(json.loads(cached.read_text())["output"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    proc = subprocess.run([path, argument], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return output  # asked again next time
    try:
        cached.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"binary": path, "argument": argument, "output": output}))
        os.replace(tmp, cached)
    except OSError:  # a read-only cache only costs the next run the same question
        pass
    return output


@functools.lru_cache(maxsize=8)
def _apiserver_version(path: str, _mtime: float) -> str:
    match = re.search(r"v\d+\.\d+\.\d+\S*", _ask(path, "--version"))
    return match.group(0) if match else "v0.0.0"


@functools.lru_cache(maxsize=8)
def _help_flags(path: str, _mtime: float) -> frozenset[str]:
    return frozenset(re.findall(r"(?m)^\s+(?:-\w, )?--([a-z0-9][a-z0-9-]*)", _ask(path, "--help")))


def _apiserver_flags(path: str, mtime: float) -> frozenset[str]:
    return _help_flags(path, mtime)
