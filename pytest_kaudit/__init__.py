"""pytest-kaudit: Kubernetes audit-policy compliance testing against a real kube-apiserver.

The pytest plugin itself lives in :mod:`pytest_kaudit.plugin` (loaded through the ``pytest11``
entry point); this package root exposes the pure, cluster-free API.
"""

from pytest_kaudit.errors import (
    AuditLogError,
    BackendError,
    BinaryNotFound,
    BootError,
    KauditError,
    PolicyError,
    PolicyMismatchWarning,
)
from pytest_kaudit.events import AuditEvent
from pytest_kaudit.policy import (
    Decision,
    GroupResources,
    Level,
    Policy,
    PolicyRule,
    Problem,
    RequestAttributes,
    Stage,
    validate_flags,
)

__version__ = "0.1.0"

__all__ = [
    "AuditEvent",
    "AuditLogError",
    "BackendError",
    "BinaryNotFound",
    "BootError",
    "Decision",
    "GroupResources",
    "KauditError",
    "Level",
    "Policy",
    "PolicyError",
    "PolicyMismatchWarning",
    "PolicyRule",
    "Problem",
    "RequestAttributes",
    "Stage",
    "__version__",
    "validate_flags",
]
