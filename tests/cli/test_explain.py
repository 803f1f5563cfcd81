"""``kaudit explain``: deciding rule with its YAML, level, stages, and why earlier rules miss."""

from __future__ import annotations

import json
import random

import pytest
from kaudit_cli_random import random_policy, random_request

from pytest_kaudit.cli.explain import parse_request
from pytest_kaudit.policy import Policy, RequestAttributes, matching

ASSUMED_NEWEST = (
    "kaudit: note: no --target-version given: checking with kube-apiserver 1.37 semantics "
    "(the newest modelled); pass --target-version 1.XX for your cluster's version\n"
)


def test_resource_request_golden(kaudit, data):
    r = kaudit("explain", data / "policy-new.yaml", "get secrets db -n prod --as alice")
    assert r.code == 0
    assert r.err == ASSUMED_NEWEST
    assert (
        r.out
        == """\
request 1: get secrets db -n prod --as alice
  attributes: verb=get resource=secrets group=core namespace=prod name=db user=alice groups=[system:authenticated]
  matched: rule 2 (line 13)
      13 | - level: RequestResponse
      14 |   resources:
      15 |   - group: ""
      16 |     resources: ["secrets"]
  level: RequestResponse
  omitted stages: RequestReceived
  emitted stages: ResponseComplete
  earlier rules that did not match:
    rule 0 (line 5): users: user 'alice' not in ['system:kube-proxy']
      verbs: 'get' not in ['watch']
      resources: 'secrets' in group 'core' name 'db' matches no entry
    rule 1 (line 11): nonResourceURLs: rule only matches non-resource URLs; this is a resource request
"""
    )


def test_several_requests_http_form_and_level_none(kaudit, data):
    r = kaudit(
        "explain",
        data / "policy-new.yaml",
        "GET /healthz/etcd",
        "GET /api/v1/namespaces/prod/pods?watch=1",
    )
    assert r.code == 0
    blocks = r.out.split("\n\n")
    assert len(blocks) == 2
    assert "request 1: GET /healthz/etcd\n" in blocks[0]
    assert "  matched: rule 1 (line 11)\n" in blocks[0]
    assert "  emitted stages: (none: level None logs nothing)" in blocks[0]
    assert "attributes: verb=watch resource=pods group=core namespace=prod" in blocks[1]
    assert "  emitted stages: ResponseStarted, ResponseComplete (long-running)" in blocks[1]


def test_unauthenticated_request_gets_a_single_response_started(kaudit, data):
    r = kaudit("explain", data / "policy-new.yaml", "list pods --unauthenticated")
    assert "  emitted stages: ResponseStarted\n" in r.out
    assert "rule 0 (line 5): users: unauthenticated request not in ['system:kube-proxy']" in r.out


def test_no_rule_matches(kaudit, write):
    p = write(
        "p.yaml",
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  users: [bob]\n",
    )
    r = kaudit("explain", p, "get pods")
    assert "  matched: no rule (level None by default)\n" in r.out
    assert "    rule 0 (line 4): users: user 'kaudit:user' not in ['bob']\n" in r.out


def test_json_output(kaudit, data):
    r = kaudit(
        "explain",
        data / "policy-new.yaml",
        "--format",
        "json",
        "update deployments web -n prod --group apps --as bob --as-group devs",
    )
    doc = json.loads(r.out)
    (req,) = doc["requests"]
    assert (req["rule"], req["line"], req["level"]) == (4, 21, "Request")
    assert req["emitted_stages"] == ["ResponseComplete"]
    assert [x["rule"] for x in req["not_matched"]] == [0, 1, 2, 3]
    assert req["rule_source"][0] == {"line": 21, "text": "- level: Request"}


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ("GET", "expected 'VERB RESOURCE ...' or 'METHOD /path ...'"),
        ("GET /api/v1/watch", "unable to determine kind and namespace from url"),
        ("FETCH /healthz", "unknown HTTP method 'FETCH'"),
        ("Get pods", "verb 'Get' must be lower-case"),
        ("get pods --bogus", "unrecognized arguments: --bogus"),
        ("get 'pods", "cannot split into words"),
        (
            "get pods --unauthenticated --as bob",
            "--unauthenticated cannot be combined with --as/--as-group",
        ),
        (
            "get pods/log --subresource exec",
            "give the subresource either as RESOURCE/SUB or --subresource",
        ),
    ],
)
def test_bad_requests_are_usage_errors(kaudit, data, request_text, message):
    r = kaudit("explain", data / "policy-new.yaml", "get pods", request_text)
    assert r.code == 2
    assert r.out == ""
    assert r.err.startswith(f"kaudit: error: request 2 ({request_text!r}): ")
    assert message in r.err


def test_invalid_policy_is_an_input_error(kaudit, write):
    p = write("bad.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    r = kaudit("explain", p, "get pods")
    assert r.code == 2
    assert r.err.startswith(
        f"{ASSUMED_NEWEST}kaudit: error: policy '{p}' is not a valid audit policy:\n")
    assert "0 rules" in r.err


def test_parse_request_verb_form():
    a = parse_request("create pods/exec web-0 -n prod --as alice --as-group ops").attrs
    assert (a.verb, a.resource, a.subresource, a.name, a.namespace) == (
        "create",
        "pods",
        "exec",
        "web-0",
        "prod",
    )
    assert a.user == "alice" and a.groups == ("ops", "system:authenticated")
    assert a.is_resource_request and a.is_long_running


@pytest.mark.parametrize("seed", range(40))
def test_mismatches_is_empty_exactly_when_the_engine_matches(seed):
    rng = random.Random(7000 + seed)
    policy: Policy = random_policy(rng)
    for _ in range(100):
        attrs: RequestAttributes = random_request(rng)
        decision = policy.evaluate_attributes(attrs)
        first = next(
            (i for i, r in enumerate(policy.rules) if not matching.mismatches(r, attrs)), None
        )
        assert first == decision.rule_index, (attrs, policy.rules)
