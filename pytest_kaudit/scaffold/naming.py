"""Test names that say what a rule does: ``test_rule_03_secrets_metadata_only``."""

from __future__ import annotations

import re

from pytest_kaudit.policy import PolicyRule

#: How each level reads at the end of a test name.
LEVEL_WORDS = {
    "None": "not_logged",
    "Metadata": "metadata_only",
    "Request": "with_request",
    "RequestResponse": "with_bodies",
}
_MAX_WORDS = 7
#: Longest test name: ``def <name>(kaudit):`` stays within 88 columns.
MAX_NAME = 64


def slug(text: str) -> str:
    """Lower-case identifier words: ``system:kube-proxy`` -> ``kube_proxy``."""
    text = re.sub(r"^system:(serviceaccount:)?", "", text)
    text = text.replace("*", "all")
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _target(rule: PolicyRule) -> list[str]:
    if rule.resources:
        words: list[str] = []
        for gr in rule.resources:
            for res in gr.resources or ("all",):
                words.append(slug(res) or "all")
            if not gr.resources:
                words[-1] = slug(gr.group) or "core"
        return words[:2]
    if rule.non_resource_urls:
        first = slug(rule.non_resource_urls[0].rstrip("*")) or "root"
        return [first]
    if rule.namespaces:
        return []
    return ["everything_else"]


def rule_words(rule: PolicyRule) -> list[str]:
    """The words of a rule's name: who, verbs, what, where, level."""
    words: list[str] = []
    if rule.users:
        words.append(slug(rule.users[0]))
    elif rule.user_groups:
        words.append(slug(rule.user_groups[0]))
    if rule.verbs and len(rule.verbs) <= 2:
        words += [slug(v) for v in rule.verbs]
    if rule.resources or rule.non_resource_urls or not words:
        words += _target(rule)
    if len(rule.namespaces) == 1:
        words += ["in", slug(rule.namespaces[0]) or "cluster_scope"]
    words = [w for w in words if w][:_MAX_WORDS]
    words.append(LEVEL_WORDS[rule.level.value])
    return words


def rule_test_name(index: int, rule: PolicyRule, width: int) -> str:
    """``test_rule_<index>_<what it does>``; ``width`` zero-pads the index.

    Long names lose their last words before the level, down to ``MAX_NAME`` characters.
    """
    *core, level = rule_words(rule)
    head = f"test_rule_{index:0{width}d}_"
    while len(head + "_".join([*core, level])) > MAX_NAME and core:
        core.pop()
    return head + "_".join([*core, level])


def near_miss_test_name(index: int, changed: str, decided: int | None, width: int) -> str:
    """``test_rule_00_near_miss_verb_falls_to_rule_17`` (or ``_is_not_decided``)."""
    tail = f"falls_to_rule_{decided:0{width}d}" if decided is not None else "matches_no_rule"
    return f"test_rule_{index:0{width}d}_near_miss_{slug(changed)}_{tail}"
