"""Audit flag validation: apiserver messages, pflag parse errors, CIS lints."""

from __future__ import annotations

import pytest

from pytest_kaudit.policy import validate_flags

GOOD = {
    "audit-policy-file": "/etc/kubernetes/audit-policy.yaml",
    "audit-log-path": "/var/log/audit.log",
    "audit-log-maxage": "30",
    "audit-log-maxbackup": "10",
    "audit-log-maxsize": "100",
}


def errors(flags: dict[str, str], version: str | None = None) -> list[str]:
    merged = {**GOOD, **flags}
    return [p.message for p in validate_flags(merged, target_version=version)
            if p.severity == "error"]


@pytest.mark.parametrize(
    ("flags", "version", "expected"),
    [
        ({"audit-log-mode": "async"}, None,
         ['invalid audit log mode async, allowed modes are "batch,blocking,blocking-strict"']),
        ({"audit-log-format": "xml"}, None,
         ['invalid audit log format xml, allowed formats are "legacy,json"']),
        ({"audit-log-version": "audit.k8s.io/v2"}, "1.20",
         ['invalid group version, allowed versions are ["audit.k8s.io/v1alpha1" '
          '"audit.k8s.io/v1beta1" "audit.k8s.io/v1"]']),
        ({"audit-log-version": "audit.k8s.io/v1beta1"}, "1.24",
         ['invalid group version, allowed versions are ["audit.k8s.io/v1"]']),
        ({"audit-log-maxage": "-1"}, None, ["--audit-log-maxage -1 can't be a negative number"]),
        ({"audit-log-maxbackup": "-2"}, None,
         ["--audit-log-maxbackup -2 can't be a negative number"]),
        ({"audit-log-maxsize": "-3"}, None, ["--audit-log-maxsize -3 can't be a negative number"]),
        ({"audit-log-mode": "batch", "audit-log-batch-buffer-size": "0"}, None,
         ["invalid audit batch log buffer size 0, must be a positive number"]),
        ({"audit-log-mode": "batch", "audit-log-batch-max-size": "-1"}, None,
         ["invalid audit batch log max batch size -1, must be a positive number"]),
        ({"audit-log-mode": "batch", "audit-log-batch-throttle-enable": "true",
          "audit-log-batch-throttle-qps": "0"}, None,
         ["invalid audit batch log throttle QPS 0, must be a positive number"]),
        ({"audit-log-mode": "batch", "audit-log-batch-throttle-enable": "true",
          "audit-log-batch-throttle-qps": "5", "audit-log-batch-throttle-burst": "0"}, None,
         ["invalid audit batch log throttle burst 0, must be a positive number"]),
        ({"audit-log-truncate-max-event-size": "0"}, None,
         ["invalid audit truncate log max event size 0, must be a positive number"]),
        ({"audit-log-truncate-max-batch-size": "10", "audit-log-truncate-max-event-size": "20"},
         None, ["invalid audit truncate log max batch size 10, must be greater than max event "
                "size (20)"]),
        ({"audit-webhook-config-file": "/wh.yaml", "audit-webhook-mode": "x"}, None,
         ['invalid audit webhook mode x, allowed modes are "batch,blocking,blocking-strict"']),
        ({"audit-log-maxage": "abc"}, None,
         ['invalid argument "abc" for "--audit-log-maxage" flag: strconv.ParseInt: parsing '
          '"abc": invalid syntax']),
        ({"audit-log-compress": "yes"}, None,
         ['invalid argument "yes" for "--audit-log-compress" flag: strconv.ParseBool: parsing '
          '"yes": invalid syntax']),
        ({"audit-log-batch-max-wait": "5"}, None,
         ['invalid argument "5" for "--audit-log-batch-max-wait" flag: time: invalid duration '
          '"5"']),
        ({"audit-log-max-age": "30"}, None, ["unknown flag: --audit-log-max-age"]),
        ({"audit-log-maxage": ""}, None,
         ['invalid argument "" for "--audit-log-maxage" flag: strconv.ParseInt: parsing "": '
          'invalid syntax']),
        ({"audit-log-maxage": " 30"}, None,
         ['invalid argument " 30" for "--audit-log-maxage" flag: strconv.ParseInt: parsing '
          '" 30": invalid syntax']),
        ({"audit-log-maxage": "9223372036854775808"}, None,
         ['invalid argument "9223372036854775808" for "--audit-log-maxage" flag: '
          'strconv.ParseInt: parsing "9223372036854775808": value out of range']),
        ({"audit-log-batch-throttle-qps": "1e999"}, None,
         ['invalid argument "1e999" for "--audit-log-batch-throttle-qps" flag: '
          'strconv.ParseFloat: parsing "1e999": value out of range']),
        ({"audit-log-batch-throttle-qps": "1_0"}, None,
         ['invalid argument "1_0" for "--audit-log-batch-throttle-qps" flag: strconv.ParseFloat: '
          'parsing "1_0": invalid syntax']),
        ({"audit-log-mode": "x", "audit-log-path": ""}, None, []),  # backend disabled
    ],
)
def test_apiserver_messages(flags: dict[str, str], version: str | None,
                            expected: list[str]) -> None:
    assert errors(flags, version) == expected


def test_unknown_flag_has_did_you_mean() -> None:
    (problem,) = [p for p in validate_flags({**GOOD, "audit-log-max-age": "30"})
                  if p.severity == "error"]
    assert problem.code == "unknown-flag"
    assert problem.hint == 'did you mean "--audit-log-maxage"?'
    assert problem.field == "--audit-log-max-age"


def test_argv_form_and_single_dash() -> None:
    argv = ["kube-apiserver", "--audit-policy-file=/p.yaml", "--audit-log-path", "/a.log",
            "--audit-log-maxage=30", "--audit-log-maxbackup=10", "--audit-log-maxsize=100",
            "--audit-log-compress", "-allow-privileged=true", "--allow-privileged=true"]
    problems = validate_flags(argv)
    assert [(p.severity, p.code, p.message) for p in problems] == [
        ("error", "single-dash-flag", "unknown shorthand flag: 'a' in -allow-privileged=true"),
    ]
    assert problems[0].hint == ("kube-apiserver prints this and exits: it refuses to start; long "
                                "flags take two dashes: --allow-privileged=true")
    assert problems[0].field == "-allow-privileged"


def test_positional_arguments_are_rejected() -> None:
    problems = validate_flags(["--audit-log-path=/a", "stray"])
    assert problems[0].message == '"kube-apiserver" does not take any arguments, got ["stray"]'


@pytest.mark.parametrize(
    ("flags", "version", "codes"),
    [
        (GOOD, None, []),
        ({}, None, ["cis-audit-policy-file", "cis-audit-log-path"]),
        ({"audit-policy-file": "/p", "audit-log-path": "/a"}, "1.30",
         ["cis-audit-log-maxage", "cis-audit-log-maxbackup", "cis-audit-log-maxsize"]),
        ({"audit-policy-file": "/p", "audit-log-path": "/a"}, "1.36", []),
        ({"audit-policy-file": "/p", "audit-log-path": "/a", "audit-log-maxsize": "0"}, "1.36",
         ["cis-audit-log-maxsize"]),
        ({"audit-policy-file": "/p", "audit-log-path": "-"}, None, []),
        ({**GOOD, "audit-log-maxage": "7"}, None, ["cis-audit-log-maxage"]),
    ],
)
def test_cis_lints(flags: dict[str, str], version: str | None, codes: list[str]) -> None:
    problems = validate_flags(flags, target_version=version)
    assert [p.code for p in problems] == codes
    assert all(p.severity == "warning" and p.fix for p in problems)


def test_cis_message_golden() -> None:
    (problem,) = validate_flags({**GOOD, "audit-log-maxage": "7"}, source="kind.yaml")
    assert str(problem) == (
        "kind.yaml: --audit-log-maxage: --audit-log-maxage is 7; CIS 1.2.17 asks for at least "
        "30 days"
    )
    assert problem.fix == "--audit-log-maxage=30"


def test_deprecated_version_warning_1_22() -> None:
    problems = validate_flags({**GOOD, "audit-log-version": "audit.k8s.io/v1beta1"},
                              target_version="1.22")
    assert [p.message for p in problems] == [
        '"audit.k8s.io/v1beta1" is deprecated and will be removed in a future release, use '
        '"audit.k8s.io/v1" instead'
    ]
