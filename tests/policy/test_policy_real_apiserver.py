"""The reading facts behind the loader's limits and the ignored-document lint, checked against
the real kube-apiserver binary (skipped without it).

kube-apiserver loads the audit policy first among its audit options, before the webhook
backend: with a webhook kubeconfig that does not exist, a policy it accepts ends the start-up
with the webhook error, and a policy it refuses ends it with the policy error. No etcd, no
port is needed for either outcome.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pytest_kaudit.backends.local.binaries import ControlPlaneBinaries
from pytest_kaudit.errors import PolicyError
from pytest_kaudit.policy import Policy, lint_policy

BOMB = "apiVersion: audit.k8s.io/v1\nkind: Policy\n" + "\n".join(
    ["a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    + [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 10)]
) + "\nrules:\n- level: Metadata\n"

TWO_DOCUMENTS = """\
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: Metadata
---
rules: [
  - : : [
"""


def start_error(binaries: ControlPlaneBinaries, policy: Path, tmp_path: Path) -> str:
    """The ``Error:`` line kube-apiserver exits with for this policy file."""
    key = tmp_path / "sa.key"
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption())
    key.write_bytes(pem)
    key.chmod(0o600)
    done = subprocess.run(
        [str(binaries.apiserver), "--etcd-servers=http://127.0.0.1:1",
         f"--cert-dir={tmp_path / 'certs'}", f"--audit-policy-file={policy}",
         f"--audit-webhook-config-file={tmp_path / 'missing-webhook.kubeconfig'}",
         "--service-account-issuer=https://kaudit.invalid",
         f"--service-account-signing-key-file={key}", f"--service-account-key-file={key}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    return next(line for line in done.stderr.splitlines() if line.startswith("Error: "))


def test_the_apiserver_refuses_an_alias_bomb_as_the_loader_does(
    control_plane_binaries: ControlPlaneBinaries, tmp_path: Path
) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(PolicyError) as ours:
        Policy.load(path)
    (problem,) = ours.value.problems
    assert start_error(control_plane_binaries, path, tmp_path) == (
        f"Error: loading audit policy file: {problem.message}: from file {path}"
    )


def test_the_apiserver_never_reads_a_second_document(
    control_plane_binaries: ControlPlaneBinaries, tmp_path: Path
) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(TWO_DOCUMENTS)
    error = start_error(control_plane_binaries, path, tmp_path)
    assert error.startswith("Error: initializing audit webhook: ")  # the policy was accepted
    loaded = Policy.load(path)
    (problem,) = lint_policy(loaded, select=["ignored-document"])
    assert problem.message.startswith("document 2 (line 5) is ignored")
    assert "is not valid YAML" in problem.message


NEVER_MATCHING = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: RequestResponse
  verbs: [GET, Create, List]
- level: RequestResponse
  resources: [{group: "", resources: [secret, ConfigMaps, "Secrets/*"]}]
- level: RequestResponse
  users: ["system:serviceaccount:kube-system:*"]
- level: RequestResponse
  namespaces: ["kaudit-*"]
- level: RequestResponse
  nonResourceURLs: ["/api/v1/namespaces*"]
- level: Metadata
  resources: [{group: "", resources: [secrets, configmaps]}]
- level: None
"""

REQUESTS = """
    def test_no_never_matching_rule_applies(kaudit):
        kaudit.create_configmap("c")
        kaudit.read_configmap("c")
        kaudit.create_secret("s", string_data={"k": "v"})
        kaudit.read_secret("s")
        robot = "system:serviceaccount:kube-system:job"
        kaudit.grant(robot, ["list"], ["secrets"])
        kaudit.list_secrets(as_user=robot)
        for verb, resource in [("create", "configmaps"), ("get", "configmaps"),
                               ("create", "secrets"), ("get", "secrets"), ("list", "secrets")]:
            kaudit.expect(verb=verb, resource=resource).logged(level="Metadata")
"""


@pytest.mark.slow
def test_what_lint_calls_never_matching_never_matches_on_the_apiserver(
    control_plane_binaries: ControlPlaneBinaries, pytester: pytest.Pytester
) -> None:
    """Each of the first five rules is flagged by a lint; the real apiserver logs every request
    at the sixth rule's level, so none of the five ever applied."""
    loaded = Policy.from_yaml(NEVER_MATCHING)
    flagged = {p.field.split(".")[0] for p in loaded.lint()
               if p.code in ("unknown-verb", "unknown-resource", "literal-wildcard",
                             "resource-url")}
    assert flagged == {"rules[0]", "rules[1]", "rules[2]", "rules[3]", "rules[4]"}
    pytester.makefile(".yaml", policy=NEVER_MATCHING)
    pytester.makepyfile(REQUESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kaudit-policy=policy.yaml")
    result.assert_outcomes(passed=1)
