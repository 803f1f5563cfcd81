"""The ``kind`` backend: a kind cluster whose kube-apiserver runs the test's audit policy.

Modules by job: :mod:`.tools` (the kind CLI and its version), :mod:`.engine` (the
container engine CLI kind drives), :mod:`.schema` (reading a
user's kind config), :mod:`.kubeadm` (which kubeadm patches kind applies), :mod:`.config`
(the generated cluster config), :mod:`.preflight` (checks that it audits as asked, before
and after the boot), :mod:`.backend` (the lifecycle),
:mod:`.diagnostics` (what a broken node says).
"""

from pytest_kaudit.backends.kind.backend import KindBackend, default_state_dir, load_base_config
from pytest_kaudit.backends.kind.tools import find_kind

__all__ = ["KindBackend", "default_state_dir", "find_kind", "load_base_config"]
