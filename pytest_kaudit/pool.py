"""The session's running clusters, one per distinct policy + flags.

Clusters are kept running so switching back and forth between configurations does not
reboot; past ``max_clusters`` the least recently used one is reconfigured (where the backend
can) or stopped. A configuration whose boot failed is remembered, so its other tests fail at
once instead of each waiting out another boot timeout.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from pytest_kaudit.backends.base import Backend, ClusterHandle, ClusterSpec
from pytest_kaudit.errors import BackendError

if TYPE_CHECKING:  # they need the kubernetes client: imported once a test uses a cluster
    from pytest_kaudit.client import Connections
    from pytest_kaudit.housekeeping import Housekeeping

log = logging.getLogger(__name__)


class ClusterPool:
    """Running clusters keyed by configuration, least recently used stopped first."""

    def __init__(self, backend: Backend, *, max_clusters: int) -> None:
        self.backend = backend
        self.max_clusters = max(1, max_clusters)
        self._handles: OrderedDict[str, ClusterHandle] = OrderedDict()
        self._failed: dict[str, str] = {}  # spec key -> why its boot failed
        self._housekeeping: dict[str, Housekeeping] = {}  # cluster name -> its housekeeping
        self._connections: dict[str, Connections] = {}  # cluster name -> its open connections
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
            reconfigured = self._reconfigure_oldest(spec)
            if reconfigured is not None:
                self._handles[spec.key] = reconfigured
                return reconfigured
        try:
            handle = self.backend.start(spec)
        except BackendError as exc:
            self._failed[spec.key] = str(exc)
            raise
        if handle.boot_seconds is not None:
            self.boots.append((handle.name, handle.boot_seconds))
        self._handles[spec.key] = handle
        return handle

    def _reconfigure_oldest(self, spec: ClusterSpec) -> ClusterHandle | None:
        """Turn the least recently used cluster into one for ``spec``, or stop it.

        A reconfiguration that fails leaves the cluster in no known state: it is stopped,
        and the failure is remembered for ``spec`` as a failed boot would be.
        """
        _, old = self._handles.popitem(last=False)
        self._release(old)  # they knew the old handle
        try:
            new = self.backend.reconfigure(old, spec)
        except BaseException as exc:
            self._stop(old)
            if isinstance(exc, BackendError):
                self._failed[spec.key] = str(exc)
            raise
        if new is None:
            self._stop(old)
        return new

    def housekeeping(self, handle: ClusterHandle) -> Housekeeping:
        """The plugin's housekeeping for ``handle``'s cluster (its ready namespaces, its client)."""
        if handle.name not in self._housekeeping:
            from pytest_kaudit.housekeeping import Housekeeping

            self._housekeeping[handle.name] = Housekeeping(
                handle, timeout=handle.spec.timeout, connections=self.connections(handle))
        return self._housekeeping[handle.name]

    def connections(self, handle: ClusterHandle) -> Connections:
        """The open connections to ``handle``'s cluster, shared by its tests' clients."""
        if handle.name not in self._connections:
            from pytest_kaudit.client import Connections

            self._connections[handle.name] = Connections()
        return self._connections[handle.name]

    def _release(self, handle: ClusterHandle) -> None:
        """Close the plugin's client and the connections to ``handle``'s cluster."""
        housekeeping = self._housekeeping.pop(handle.name, None)
        connections = self._connections.pop(handle.name, None)
        try:
            if housekeeping is not None:
                housekeeping.close()
            if connections is not None:
                connections.close()
        except Exception:  # never let a client's close keep the cluster running
            log.exception("closing the clients of %s", handle.name)

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
        self._release(handle)
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
