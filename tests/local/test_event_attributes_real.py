"""What the real kube-apiserver's checker saw for a logged request, read back from its events.

v1alpha1 events name the group only inside ``objectRef.apiVersion`` (``apps/v1``). The
fixture's decision, its event view, replay and redaction must all see the group (``apps``,
``authentication.k8s.io``), or a rule that names the group is missed, the logged level looks
like a policy mismatch and a TokenReview's bodies are not dropped whole. And a create is
decided on its URL, which names no object, so the prediction must ignore the name too.
"""

from __future__ import annotations

import pytest

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
  resources: [{group: apps, resources: [deployments]}, {group: authentication.k8s.io, resources: [tokenreviews]}]
- level: Metadata
"""

INNER = """
import json
import pytest
from pytest_kaudit.policy import Level
from pytest_kaudit.redact import redact_event
from pytest_kaudit.replay import replay_paths

pytestmark = pytest.mark.kaudit(
    policy={policy!r}, flags={{"audit-log-version": "audit.k8s.io/v1alpha1"}})

def test_group_of_a_v1alpha1_event(kaudit, tmp_path):
    assert kaudit.request("GET", f"/apis/apps/v1/namespaces/{{kaudit.namespace}}/deployments") == 200
    events = kaudit.expect(verb="list", resource="deployments").logged(
        level="RequestResponse")
    raw = events[-1].raw
    assert raw["apiVersion"] == "audit.k8s.io/v1alpha1"
    assert "apiGroup" not in raw["objectRef"] and raw["objectRef"]["apiVersion"] == "apps/v1"
    assert {{e.api_group for e in events}} == {{"apps"}}
    attrs = events[-1].attributes
    assert (attrs.api_group, attrs.api_version) == ("apps", "v1")
    assert kaudit.decide(events[-1]).level == Level.REQUEST_RESPONSE
    assert kaudit.policy_mismatches(events) == []
    log = tmp_path / "audit.log"
    log.write_text("".join(json.dumps(e.raw) + "\\n" for e in events))
    report = replay_paths(kaudit.policy, [str(log)])
    assert report.events == len(events)
    assert not report.changed_requests, report.changed_requests

def test_token_review_bodies_are_dropped_whole(kaudit):
    review = {{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
              "spec": {{"token": "kaudit-not-a-real-token"}}}}
    assert kaudit.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                          body=review) == 201
    events = kaudit.expect(verb="create", resource="tokenreviews",
                           stage="ResponseComplete").logged(level="RequestResponse")
    raw = events[-1].raw
    assert raw["objectRef"]["apiVersion"] == "authentication.k8s.io/v1"
    assert "requestObject" in raw and "responseObject" in raw
    shown = redact_event(raw)
    assert shown["requestObject"].startswith("<redacted: "), shown["requestObject"]
    assert shown["responseObject"].startswith("<redacted: "), shown["responseObject"]
"""


def test_v1alpha1_events_are_decided_with_their_group(
        control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester) -> None:
    policy = pytester.path / "policy.yaml"
    policy.write_text(POLICY)
    pytester.makepyfile(test_inner=INNER.format(policy=str(policy)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


CREATE_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: RequestResponse
  resources: [{group: "", resources: [configmaps], resourceNames: [cm1]}]
- level: Metadata
"""

CREATE_INNER = """
import pytest

pytestmark = pytest.mark.kaudit(policy={policy!r})

def test_create_by_name(kaudit):
    kaudit.create_configmap("cm1")
    kaudit.expect(verb="create", resource="configmaps", name="cm1").logged(
        level="RequestResponse")
"""


def test_a_create_is_predicted_without_its_name(
        control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester) -> None:
    """The apiserver decides a create on its URL, which names no object: a resourceNames rule
    never matches it. The real log says Metadata, and so must the failure's prediction."""
    policy = pytester.path / "policy.yaml"
    policy.write_text(CREATE_POLICY)
    pytester.makepyfile(test_inner=CREATE_INNER.format(policy=str(policy)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "logged at Metadata, expected RequestResponse" in out, out[-4000:]
    assert "NOTE: the policy itself gives Metadata, not RequestResponse" in out, out[-4000:]
    assert "rules[1]" in out and "so Metadata" in out, out[-4000:]
