"""Write a policy's witnesses as a readable pytest module that uses only the ``kaudit`` fixture.

The output is formatted as ``ruff format``/black would leave it (88 columns), and depends only
on the policy: the same policy gives the same file.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

from pytest_kaudit.policy import Level, Policy
from pytest_kaudit.scaffold.naming import near_miss_test_name, rule_test_name
from pytest_kaudit.traffic import default_object
from pytest_kaudit.witness import NearMiss, RuleWitness, WitnessRequest, witnesses

WIDTH = 88
_INDENT = "    "

_MERGE_PATCH = "application/merge-patch+json"


def q(text: str) -> str:
    """A double-quoted Python string literal."""
    return json.dumps(text)


def call(prefix: str, args: Sequence[str], indent: str = _INDENT,
         brackets: tuple[str, str] = ("(", ")")) -> list[str]:
    """``prefix(args)`` split the way black splits a call that does not fit."""
    left, right = brackets
    one = f"{indent}{prefix}{left}{', '.join(args)}{right}"
    if len(one) <= WIDTH:
        return [one]
    inner = indent + _INDENT
    hug = f"{inner}{', '.join(args)}"
    if len(hug) <= WIDTH:
        return [f"{indent}{prefix}{left}", hug, f"{indent}{right}"]
    return [f"{indent}{prefix}{left}", *(f"{inner}{a}," for a in args), f"{indent}{right}"]


def comment(text: str, indent: str = "") -> list[str]:
    """``# text`` wrapped to the line width."""
    return textwrap.wrap(text, WIDTH - len(indent), initial_indent=f"{indent}# ",
                         subsequent_indent=f"{indent}# ", break_on_hyphens=False,
                         break_long_words=False)


class ModuleWriter:
    """Builds the test module for one policy."""

    def __init__(self, policy: Policy, *, policy_ref: str, policy_label: str,
                 module_label: str, lenient: bool = False) -> None:
        self.policy = policy
        self.module_label = module_label    # where the module is written, for the run hint
        self.policy_ref = policy_ref        # as the kaudit marker should read it
        self.policy_label = policy_label    # as comments name it
        self.lenient = lenient
        self.found = witnesses(policy)
        self.width = max(2, len(str(len(policy.rules) - 1)))

    # -- pieces --------------------------------------------------------------------------
    def where(self, index: int) -> str:
        """``rules[3] (policy.yaml:27)``."""
        line = self.policy.rule_line(index)
        return f"rules[{index}] ({self.policy_label}:{line})" if line else f"rules[{index}]"

    def _send(self, request: WitnessRequest) -> list[str]:
        spec = request.spec
        identity = spec.identity
        lines: list[str] = []
        args = [q(spec.method), q(spec.url_path())]
        if spec.verb in ("create", "update") and spec.is_resource_request:
            obj = default_object(spec.group, spec.version, spec.resource, spec.name or
                                 "kaudit-witness", spec.namespace)
            entries = [f"{q(k)}: {_literal(obj[k])}" for k in ("apiVersion", "kind", "metadata")]
            lines += call("body = ", entries, brackets=("{", "}"))
            args.append("body=body")
        elif spec.verb == "patch" and spec.is_resource_request:
            args += ["body={}", f"content_type={q(_MERGE_PATCH)}"]
        args.append(f"as_user={q(identity.user)}")
        if identity.groups:
            args.append(f"groups=[{', '.join(q(g) for g in identity.groups)}]")
        lines += call("kaudit.request", args)
        return lines

    @staticmethod
    def _expect(request: WitnessRequest) -> list[str]:
        a = request.attributes
        filters = [("verb", a.verb)]
        if a.is_resource_request:
            filters += [("resource", a.resource), ("subresource", a.subresource),
                        ("namespace", a.namespace), ("name", a.name), ("api_group", a.api_group)]
        filters.append(("user", a.user or ""))
        args = [f"{k}={q(v)}" for k, v in filters if v]
        lines = call("audit = kaudit.expect", args)
        level = request.decision.level
        if level == Level.NONE:
            lines.append(f"{_INDENT}audit.not_logged()")
        else:
            lines.append(f"{_INDENT}audit.logged(level={q(level.value)})")
        return lines

    def _rule_test(self, w: RuleWitness) -> list[str]:
        assert w.witness is not None
        lines = comment(f"{self.where(w.index)}: {w.rule.summary()}")
        lines.append(f"def {rule_test_name(w.index, w.rule, self.width)}(kaudit):")
        lines += self._send(w.witness) + self._expect(w.witness)
        return lines

    def _near_miss_test(self, w: RuleWitness, miss: NearMiss) -> list[str]:
        assert w.witness is not None
        decided = miss.request.decision.rule_index
        before, after = _field_text(miss.changed, w.witness, miss.request)
        if decided is None:
            outcome = "no rule matches it, so it is not logged"
        else:
            level = self.policy.rules[decided].level.value
            outcome = f"{self.where(decided)} decides it, at level {level}"
        lines = comment(f"Near miss of rules[{w.index}]: {miss.changed} {after} instead of "
                        f"{before}; {outcome}")
        name = near_miss_test_name(w.index, miss.changed, decided, self.width)
        lines.append(f"def {name}(kaudit):")
        lines += self._send(miss.request) + self._expect(miss.request)
        return lines

    # -- the module ----------------------------------------------------------------------
    def render(self) -> str:
        """The whole module text."""
        reachable = [w for w in self.found if w.status == "reachable"]
        doc = [
            f'"""Audit policy tests for {self.policy_label}: one test per reachable rule.',
            "",
            *textwrap.wrap(
                "Written by `kaudit scaffold`; edit it and commit it. Each test sends one "
                "request that its rule decides (the first rule that matches) and checks how "
                "the real kube-apiserver logged it. A near-miss test sends a request just "
                "outside a rule and checks that the right later rule decides it.", WIDTH),
            "",
            f"    pytest {self.module_label} --kaudit-coverage=coverage.json"
            f"{' --kaudit-lenient' if self.lenient else ''}",
            '"""',
        ]
        out = [
            *doc, "",
            "import pytest", "",
            *call("pytestmark = pytest.mark.kaudit", [f"policy={q(self.policy_ref)}"], indent=""),
        ]
        for w in reachable:
            out += ["", "", *self._rule_test(w)]
            for miss in w.near_misses:
                out += ["", "", *self._near_miss_test(w, miss)]
        skipped = [w for w in self.found if w.status != "reachable"]
        if skipped:
            out += ["", ""]
            out += comment("Rules without a test:")
            for w in skipped:
                what = "unreachable" if w.status == "unreachable" else "not sendable"
                out += comment(f"{self.where(w.index)} is {what}: {w.reason}")
        return "\n".join(out) + "\n"


def _literal(value: object) -> str:
    """A Python literal with double-quoted strings (JSON spelling of dicts and strings)."""
    return json.dumps(value)


def _field_text(changed: str, witness: WitnessRequest, miss: WitnessRequest
                ) -> tuple[str, str]:
    """How the changed field reads before and after: (``watch``, ``list``)."""
    a, b = witness.attributes, miss.attributes
    if changed == "groups":
        return (", ".join(witness.spec.identity.groups) or "no extra group",
                ", ".join(miss.spec.identity.groups) or "no extra group")
    if changed == "resource":
        def res(x: WitnessRequest) -> str:
            r = x.attributes
            text = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
            return f"{r.api_group}/{text}" if r.api_group else text
        return res(witness), res(miss)
    value = {"verb": "verb", "namespace": "namespace", "user": "user", "name": "name",
             "path": "path"}[changed]
    return repr(getattr(a, value) or ""), repr(getattr(b, value) or "")


def render_module(policy: Policy, *, policy_ref: str, policy_label: str,
                  module_label: str = "tests/test_audit_policy.py",
                  lenient: bool = False) -> tuple[str, list[RuleWitness]]:
    """The module text and the witnesses it was written from."""
    writer = ModuleWriter(policy, policy_ref=policy_ref, policy_label=policy_label,
                          module_label=module_label, lenient=lenient)
    return writer.render(), writer.found
