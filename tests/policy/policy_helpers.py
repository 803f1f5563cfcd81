"""Shared helpers for the policy engine tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_kaudit.errors import PolicyError
from pytest_kaudit.policy import Policy, Problem

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "policies"
HEADER = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"


def policy(body: str, **kwargs: Any) -> Policy:
    """Load ``HEADER + body`` (dedented)."""
    return Policy.from_yaml(HEADER + textwrap.dedent(body), **kwargs)


def problems_of(text: str, **kwargs: Any) -> list[Problem]:
    """The problems loading ``text`` raises (fails the test if it loads)."""
    with pytest.raises(PolicyError) as info:
        Policy.from_yaml(textwrap.dedent(text), **kwargs)
    assert isinstance(info.value, ValueError)
    return info.value.problems
