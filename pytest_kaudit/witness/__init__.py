"""Witness requests: for each rule of a policy, one concrete request that this rule decides.

Computed from the exact request partition ``kaudit diff`` uses (never sampled), sendable by
construction, with near misses just outside each rule, and shadowed rules reported with the
rules that cover them. ``kaudit scaffold`` writes them as tests; ``kaudit verify`` sends them.
"""

from pytest_kaudit.witness.search import (
    NearMiss,
    RuleWitness,
    WitnessRequest,
    make_request,
    witnesses,
)

__all__ = ["NearMiss", "RuleWitness", "WitnessRequest", "make_request", "witnesses"]
