"""Fixture factories: the session's cluster pool and the per-test ``kaudit`` object.

The pool owns clusters (one per distinct policy + flags, kept running so switching back
and forth between configurations does not reboot); the ``kaudit`` fixture owns only a log
cursor, an Audit-ID prefix and its clients, so per-test isolation costs nothing.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_kaudit.backends.base import Backend, ClusterHandle, ClusterSpec
from pytest_kaudit.config import KauditConfig, parse_flag_assignments
from pytest_kaudit.errors import BackendError, KauditError, PolicyError
from pytest_kaudit.housekeeping import Housekeeping
from pytest_kaudit.kaudit import KAudit
from pytest_kaudit.policy import Policy
from pytest_kaudit.policy.versions import Version
from pytest_kaudit.preflight import flag_errors, load_policy_any_version

log = logging.getLogger(__name__)


def make_backend(cfg: KauditConfig) -> Backend:
    """Instantiate the configured backend (imported lazily: each has its own dependencies)."""
    name = cfg.backend
    if name == "local":
        from pytest_kaudit.backends.local import LocalBackend

        return LocalBackend(apiserver_bin=cfg.apiserver_bin, etcd_bin=cfg.etcd_bin,
                            reuse=cfg.reuse, idle_minutes=cfg.warm_idle)
    if name == "kind":
        from pytest_kaudit.backends.kind import KindBackend

        base = Path(cfg.kind_config) if cfg.kind_config else None
        return KindBackend(kind_bin=cfg.kind_bin, node_image=cfg.kind_image, base_config=base,
                           reuse=cfg.reuse, keep=cfg.keep, name=cfg.cluster_name,
                           config_dump=Path(cfg.kind_config_dump) if cfg.kind_config_dump else None)
    if name == "k3s":
        from pytest_kaudit.backends.k3s import K3sBackend

        return K3sBackend(image=cfg.k3s_image, reuse=cfg.reuse, keep=cfg.keep)
    if name == "existing":
        from pytest_kaudit.backends.existing import ExistingBackend

        if not cfg.kubeconfig and not os.environ.get("KUBECONFIG"):
            raise pytest.UsageError("--kaudit-backend=existing needs --kaudit-kubeconfig "
                                    "(or KUBECONFIG) and --kaudit-log-path or --kaudit-log-command")
        return ExistingBackend(kubeconfig=cfg.kubeconfig or os.environ["KUBECONFIG"],
                               context=cfg.context, log_path=cfg.log_path,
                               log_command=cfg.log_command)
    raise pytest.UsageError(f"unknown backend {name!r}")


class PolicyCache:
    """Loads each distinct policy value once; errors carry file, line and field."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self._cache: dict[tuple[str, str], Policy] = {}

    def load(self, value: Any, base_dir: Path, rootdir: Path, *, nodeid: str = "") -> Policy:
        """A path, YAML text, a dict or a Policy → Policy (relative paths: test dir, then
        rootdir). Problems of inline policies name the marker and the test ``nodeid``.

        Policies are accepted if any supported apiserver version accepts them; the backend
        checks them again against its own version (see :mod:`pytest_kaudit.preflight`).
        """
        if isinstance(value, Policy):
            return value
        if isinstance(value, Mapping):
            key = ("dict", repr(sorted(value.items(), key=str)))
            if key not in self._cache:
                document = dict(value)

                def from_dict(version: Version) -> Policy:
                    return Policy.from_dict(document, source="<marker policy>",
                                            strict=self.strict, target_version=version)

                self._cache[key] = _located(
                    f"@pytest.mark.kaudit(policy={{...}}) on {nodeid}", from_dict,
                    has_lines=False)
            return self._cache[key]
        text = str(value)
        if isinstance(value, str) and (
            "\n" in text or text.lstrip().startswith(("apiVersion", "{"))
        ):
            key = ("text", text)
            if key not in self._cache:

                def from_yaml(version: Version) -> Policy:
                    return Policy.from_yaml(text, source="<marker policy>", strict=self.strict,
                                            target_version=version)

                self._cache[key] = _located(
                    f"@pytest.mark.kaudit(policy=<YAML text>) on {nodeid}", from_yaml,
                    has_lines=True)
            return self._cache[key]
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = next(
                (p for p in (base_dir / path, rootdir / path) if p.exists()), rootdir / path
            )
        path = path.resolve()
        key = ("path", str(path.resolve()))
        if key not in self._cache:
            if path.is_dir():
                raise KauditError(f"{path} is a directory, not an audit policy file")
            if not path.is_file():
                raise KauditError(f"audit policy file not found: {path}")
            self._cache[key] = load_policy_any_version(
                lambda v: Policy.load(path, strict=self.strict, target_version=v))
        return self._cache[key]

    def for_version(self, policy: Policy, version: Version) -> Policy:
        """``policy`` as the apiserver of ``version`` reads it (its predictions follow it).

        Collection accepted the policy for some version; the backend has since checked it
        against its own, so this load succeeds. Read leniently, as that apiserver does.
        """
        if policy.target_version == version:
            return policy
        key = ("version", f"{version}:{policy.text}")
        if key not in self._cache:
            self._cache[key] = Policy.from_yaml(policy.text, source=policy.source,
                                                strict=False, target_version=version)
        return self._cache[key]


def _located(where: str, load: Callable[[Version], Policy], *, has_lines: bool) -> Policy:
    """Load an inline policy; its problems name the marker and test instead of a file.

    A dict has no lines of its own (those of its YAML dump would point at nothing); YAML text
    keeps its line numbers, counted within the text.
    """
    try:
        return load_policy_any_version(load)
    except PolicyError as exc:
        problems = [replace(p, file=where + (f", line {p.line}" if has_lines and p.line else ""),
                            line=None) for p in exc.problems]
        raise PolicyError(problems, headline=exc.headline) from None


class ClusterPool:
    """Running clusters keyed by configuration, least recently used stopped first."""

    def __init__(self, backend: Backend, *, max_clusters: int) -> None:
        self.backend = backend
        self.max_clusters = max(1, max_clusters)
        self._handles: OrderedDict[str, ClusterHandle] = OrderedDict()
        self._failed: dict[str, str] = {}  # spec key -> why its boot failed
        self._housekeeping: dict[str, Housekeeping] = {}  # cluster name -> its housekeeping
        self.boots: list[tuple[str, float]] = []  # (cluster name, seconds)

    def acquire(self, spec: ClusterSpec) -> ClusterHandle:
        """The running cluster for ``spec``, booting (or reconfiguring) one if needed."""
        if spec.key in self._failed:  # don't spend another boot timeout on every such test
            raise BackendError(f"{self._failed[spec.key]}\n(the boot of this configuration "
                               "failed earlier in this session; not retried)")
        handle = self._handles.get(spec.key)
        if handle is not None:
            self._handles.move_to_end(spec.key)
            self._check_alive(spec.key, handle)
            return handle
        if len(self._handles) >= self.max_clusters:
            old_key, old = self._handles.popitem(last=False)
            stale = self._housekeeping.pop(old.name, None)  # it knew the old handle
            if stale is not None:
                stale.close()
            new = self.backend.reconfigure(old, spec)
            if new is not None:
                self._handles[spec.key] = new
                return new
            self._stop(old)
        try:
            handle = self.backend.start(spec)
        except BackendError as exc:
            self._failed[spec.key] = str(exc)
            raise
        if handle.boot_seconds is not None:
            self.boots.append((handle.name, handle.boot_seconds))
        self._handles[spec.key] = handle
        return handle

    def housekeeping(self, handle: ClusterHandle) -> Housekeeping:
        """The plugin's housekeeping for ``handle``'s cluster (its ready namespaces, its client)."""
        if handle.name not in self._housekeeping:
            self._housekeeping[handle.name] = Housekeeping(handle, timeout=handle.spec.timeout)
        return self._housekeeping[handle.name]

    def _check_alive(self, key: str, handle: ClusterHandle) -> None:
        if self.backend.is_alive(handle):
            return
        tail = self.backend.apiserver_log_tail(handle)
        del self._handles[key]
        self._stop(handle)
        raise BackendError(
            f"the control plane {handle.name} died during the session (a fresh one boots for "
            f"the next test).\n--- last lines of the kube-apiserver log ---\n{tail}"
        )

    def _stop(self, handle: ClusterHandle) -> None:
        housekeeping = self._housekeeping.pop(handle.name, None)
        try:
            if housekeeping is not None:
                housekeeping.close()
        except Exception:  # never let a client's close keep the cluster running
            log.exception("closing the housekeeping client of %s", handle.name)
        try:
            self.backend.stop(handle)
        except Exception:
            log.exception("stopping cluster %s", handle.name)

    def stop_all(self) -> None:
        """Stop every cluster; safe to call more than once.

        Also asks the backend to stop anything it started that the pool never saw (a Ctrl-C
        between a boot finishing and its handle being stored).
        """
        while self._handles:
            _, handle = self._handles.popitem()
            self._stop(handle)
        try:
            self.backend.stop_all()
        except Exception:
            log.exception("stopping remaining clusters")


def resolve_spec(item: pytest.Item, cfg: KauditConfig, policies: PolicyCache) -> ClusterSpec:
    """The configuration a test asks for: its ``kaudit`` markers over the session's settings.

    Each argument comes from the closest marker that sets it (test over class over module),
    so a test can add flags while its module gives the policy; flags merge outward-in.

    Raises:
        PolicyError / KauditError: an invalid policy or flags (before anything boots).
    """
    markers = list(item.iter_markers("kaudit"))  # closest first
    policy_value: Any = None
    has_policy = False
    flags = cfg.apiserver_flags
    marker_flags_where = f"@pytest.mark.kaudit(flags=...) on {item.nodeid}"
    for marker in reversed(markers):  # outermost first, so inner markers win
        kwargs = dict(marker.kwargs)
        if marker.args:
            kwargs.setdefault("policy", marker.args[0])
        unknown = set(kwargs) - {"policy", "flags"}
        if unknown:
            raise KauditError(f"@pytest.mark.kaudit got unknown argument(s) {sorted(unknown)}; "
                              "it takes policy=... and flags={...}")
        if "policy" in kwargs:
            policy_value, has_policy = kwargs["policy"], True
        flags.update(_marker_flags(kwargs.get("flags") or {}, marker_flags_where))
    if flags != cfg.apiserver_flags:  # the session's own were checked at start-up
        errors = flag_errors(flags, source=marker_flags_where)
        if errors:
            raise PolicyError(errors, headline=f"{marker_flags_where}: kube-apiserver would "
                                               "refuse to start with these flags")
    base_dir = Path(str(item.path)).parent
    value = policy_value if has_policy else cfg.policy
    if value is None and "audit-policy-file" in flags:
        value = flags.pop("audit-policy-file")
    policy = (policies.load(value, base_dir, cfg.rootdir, nodeid=item.nodeid) if value is not None
              else None)
    if policy is None and cfg.backend != "existing":
        raise KauditError(
            "no audit policy for this test: pass --kaudit-policy=PATH (ini kaudit_policy) or "
            "mark it with @pytest.mark.kaudit(policy=...)"
        )
    return ClusterSpec(policy=policy, flags=flags, timeout=cfg.boot_timeout)


def _marker_flags(value: Any, where: str) -> dict[str, str]:
    """A marker's ``flags``: ``{name: value}``, ``["NAME=VALUE", ...]`` or one "NAME=VALUE"."""
    if isinstance(value, Mapping):
        return {str(k).removeprefix("--"): _flag_text(v) for k, v in value.items()}
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        got = type(value).__name__ if not isinstance(value, (list, tuple)) else \
            f"a {type(value).__name__} holding " + ", ".join(
                sorted({type(v).__name__ for v in value if not isinstance(v, str)}))
        raise KauditError(f"{where}: expected {{name: value}} or a list of 'NAME=VALUE' "
                          f"strings, got {got}")
    try:
        return parse_flag_assignments(list(value), where)
    except ValueError as exc:
        raise KauditError(str(exc)) from None


def _flag_text(value: Any) -> str:
    """A flag value as kube-apiserver reads it (Python's True is Go's ``true``)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def presolve_specs(items: list[pytest.Item], cfg: KauditConfig, policies: PolicyCache) -> None:
    """Resolve every kaudit test's configuration at collection, before any cluster boots.

    A broken policy or marker is stored and reported by that test's fixture; the others run.
    """
    for item in items:
        if "kaudit" not in getattr(item, "fixturenames", ()):
            continue
        try:
            item.stash[SPEC_KEY] = resolve_spec(item, cfg, policies)
        except (PolicyError, KauditError) as exc:
            item.stash[SPEC_ERROR_KEY] = str(exc)


def kaudit_fixture(request: pytest.FixtureRequest, pool: ClusterPool, cfg: KauditConfig,
                   policies: PolicyCache) -> Iterator[KAudit]:
    """Body of the ``kaudit`` fixture: acquire the test's cluster, hand out a KAudit."""
    error = request.node.stash.get(SPEC_ERROR_KEY, None)
    if error is not None:
        pytest.fail(error, pytrace=False)
    # pytest.fail is called outside the except blocks: raised inside one, pytest would print
    # the original error, "During handling of the above exception", then the same words again
    failure: str | None = None
    spec = request.node.stash.get(SPEC_KEY, None)
    if spec is None:  # an item collected outside the normal hooks
        try:
            spec = resolve_spec(request.node, cfg, policies)
        except (PolicyError, KauditError) as exc:
            failure = str(exc)
    if failure is not None or spec is None:
        pytest.fail(failure or "no cluster configuration", pytrace=False)
    try:
        handle = pool.acquire(spec)
    except KauditError as exc:  # our own errors explain themselves; a traceback adds noise
        failure = str(exc)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    policy = policies.for_version(spec.policy, handle.version) if spec.policy else None
    kaudit = KAudit(handle, policy=policy, test_name=request.node.nodeid,
                    timeout=cfg.timeout, housekeeping=pool.housekeeping(handle))
    request.node.stash[KAUDIT_KEY] = kaudit
    try:
        yield kaudit
    finally:
        kaudit.close()


KAUDIT_KEY = pytest.StashKey[KAudit]()
SPEC_KEY = pytest.StashKey[ClusterSpec]()
SPEC_ERROR_KEY = pytest.StashKey[str]()
