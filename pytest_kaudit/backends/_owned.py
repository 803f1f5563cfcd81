"""The audit policy file of a cluster we own (kind, k3s, the warm local plane) and its probe.

Every backend that writes the policy the apiserver reads writes the same document: a
generation rule (so a probe proves *this* file is loaded), the barrier rule, then the user's
rules. The file names inside the mounted directories are the same for all of them.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from pytest_kaudit.backends.base import BARRIER_USER, owned_policy_document

if TYPE_CHECKING:
    from pytest_kaudit.backends.base import ClusterSpec
    from pytest_kaudit.policy import Policy

POLICY_FILE = "policy.yaml"
LOG_FILE = "audit.log"
#: Path of the generation probe; see :func:`generation_rule`.
GENERATION_PATH_PREFIX = "/kaudit-generation/"

_IMAGE_TAG_RE = re.compile(r":v(\d+)\.(\d+)(?:\.(\d+))?")


def image_tag_version(image: str | None) -> tuple[int, int] | None:
    """Kubernetes (major, minor) of an image tag like ``kindest/node:v1.31.12@sha256:…``."""
    if not image:
        return None
    match = _IMAGE_TAG_RE.search(image)
    return (int(match[1]), int(match[2])) if match else None


def generation_rule(generation: str) -> dict[str, object]:
    """A rule that logs one probe path at level Request, placed before the barrier rule.

    Every policy we write logs all of :data:`BARRIER_USER`'s requests at Metadata, so a plain
    barrier event cannot tell an old policy from a new one. The probe of *this* generation is
    logged at ``Request`` only by the policy that carries this rule: an event with that level
    proves the apiserver loaded this exact policy file.
    """
    return {
        "level": "Request",
        "users": [BARRIER_USER],
        "nonResourceURLs": [generation_path(generation)],
    }


def generation_path(generation: str) -> str:
    """The non-resource URL of the generation probe."""
    return f"{GENERATION_PATH_PREFIX}{generation}"


def policy_document(policy: Policy, generation: str) -> dict[str, object]:
    """The policy file content for an owned cluster: generation rule, barrier rule, user rules."""
    document = owned_policy_document(policy)
    rules = list(document.get("rules") or [])  # type: ignore[call-overload]
    document["rules"] = [generation_rule(generation), *rules]
    return document


def policy_generation(spec: ClusterSpec) -> str:
    """Short, stable id of a policy: changes whenever the policy text changes."""
    text = spec.policy.text if spec.policy is not None else ""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def render_policy(spec: ClusterSpec) -> str:
    """YAML of the policy file written for ``spec`` (with the generation and barrier rules).

    A spec without a policy gets an empty file: the apiserver then runs without auditing.
    """
    if spec.policy is None:
        return ""
    document = policy_document(spec.policy, policy_generation(spec))
    return str(yaml.safe_dump(document, sort_keys=False))




def create_readable_log(path: Path, *, truncate: bool = False) -> None:
    """Pre-create the audit log 0644 (emptied when ``truncate``).

    kube-apiserver, root in a container, creates a missing log 0600, unreadable for us on a
    rootful engine, and never changes the mode of an existing file.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else 0), 0o644))
    path.chmod(0o644)
