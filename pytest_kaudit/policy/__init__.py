"""The pure-Python audit policy engine: load, validate, evaluate and lint audit policies.

Everything here mirrors kube-apiserver's own code paths (loader, ``ValidatePolicy``, the policy
checker, ``RequestInfoFactory``, audit flag validation) and needs neither pytest nor a cluster.
"""

from __future__ import annotations

from pytest_kaudit.policy.flags import validate_flags
from pytest_kaudit.policy.lint import LINTS, Lint, lint_policy
from pytest_kaudit.policy.model import (
    Decision,
    GroupResources,
    IgnoredDocument,
    Level,
    Policy,
    PolicyRule,
    Stage,
    parse_level,
    parse_stage,
)
from pytest_kaudit.policy.problems import Problem
from pytest_kaudit.policy.request import RequestAttributes
from pytest_kaudit.policy.validate import apiserver_error_text
from pytest_kaudit.policy.versions import parse_version

__all__ = [
    "LINTS",
    "Decision",
    "GroupResources",
    "IgnoredDocument",
    "Level",
    "Lint",
    "Policy",
    "PolicyRule",
    "Problem",
    "RequestAttributes",
    "Stage",
    "apiserver_error_text",
    "lint_policy",
    "parse_level",
    "parse_stage",
    "parse_version",
    "validate_flags",
]
