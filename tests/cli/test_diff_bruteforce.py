"""``kaudit diff`` against brute force: random policy pairs, random requests.

Every request whose decision differs must be in exactly one reported class, with that
class's old and new decisions; no request whose decision is unchanged may be in any.
"""

from __future__ import annotations

import random

import pytest
from kaudit_cli_random import outcome, random_policy, random_request

from pytest_kaudit.cli.diff import changed, diff_classes


@pytest.mark.parametrize("seed", range(100))
def test_diff_classes_match_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    old, new = random_policy(rng), random_policy(rng)
    classes = diff_classes(old, new)
    for _ in range(300):
        attrs = random_request(rng)
        o_level, o_omit, o_rule = outcome(old, attrs)
        n_level, n_omit, n_rule = outcome(new, attrs)
        differs = o_level != n_level or (o_level != "None" and o_omit != n_omit)
        hits = [c for c in classes if c.contains(attrs)]
        if differs:
            assert len(hits) == 1, (attrs, [c.text for c in hits])
        else:
            assert not hits, (attrs, [c.text for c in hits])
        for c in hits:
            assert (c.old.level, set(c.old.omit_stages), c.old.rule) == (o_level, o_omit, o_rule), (
                c.text
            )
            assert (c.new.level, set(c.new.omit_stages), c.new.rule) == (n_level, n_omit, n_rule), (
                c.text
            )
            assert changed(c.old, c.new)


@pytest.mark.parametrize("seed", range(20))
def test_identical_policies_have_no_differences(seed: int) -> None:
    rng = random.Random(1000 + seed)
    policy = random_policy(rng)
    assert diff_classes(policy, policy) == []
