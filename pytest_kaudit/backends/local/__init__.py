"""The ``local`` backend: etcd + kube-apiserver as child processes."""

from pytest_kaudit.backends.local.backend import LocalBackend, apiserver_flags
from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries, find_binaries

__all__ = ["ControlPlaneBinaries", "LocalBackend", "apiserver_flags", "find_binaries"]
