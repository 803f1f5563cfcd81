"""Usage errors at start-up: each names the option or ini key it came from and the valid values.

All through pytester; no cluster boots here.
"""

from __future__ import annotations

import pytest

from tests.conftest import POLICIES


def _usage_error(result: pytest.RunResult, *lines: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(list(lines))
    result.stderr.no_fnmatch_line("*Traceback*")


@pytest.mark.parametrize(("arg", "expected"), [
    ("--kaudit-timeout=-5", "*--kaudit-timeout: must be more than 0, got -5*"),
    ("--kaudit-timeout=nan", "*--kaudit-timeout: must be more than 0, got nan*"),
    ("--kaudit-boot-timeout=0", "*--kaudit-boot-timeout: must be more than 0, got 0*"),
    ("--kaudit-fail-under=150", "*--kaudit-fail-under: must be at most 100, got 150*"),
    ("--kaudit-fail-under=-1", "*--kaudit-fail-under: must be at least 0, got -1*"),
    ("--kaudit-max-clusters=0", "*--kaudit-max-clusters: must be at least 1, got 0*"),
])
def test_out_of_range_numbers(pytester: pytest.Pytester, arg: str, expected: str) -> None:
    pytester.makepyfile("def test_plain(): pass")
    _usage_error(pytester.runpytest(arg), expected)


def test_out_of_range_ini_value_blames_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkaudit_fail_under = 101\n")
    _usage_error(pytester.runpytest(), "*ini kaudit_fail_under: must be at most 100, got 101*")


def test_choices_get_a_hint(pytester: pytest.Pytester) -> None:
    _usage_error(pytester.runpytest("--kaudit-backend=knd"),
                 "*--kaudit-backend: invalid choice: 'knd' (choose from local, kind, k3s, "
                 "existing; did you mean 'kind'?)*")


def test_ini_choice_blames_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkaudit_evidence = allways\n")
    _usage_error(pytester.runpytest(),
                 "*ini kaudit_evidence: invalid choice: 'allways' (choose from failed, always, "
                 "never; did you mean 'always'?)*")


def test_bad_ini_flag_line_blames_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkaudit_apiserver_flag =\n    audit-log-maxage=30\n    v2\n")
    _usage_error(pytester.runpytest(), "*ini kaudit_apiserver_flag: 'v2' is not NAME=VALUE*")


@pytest.mark.parametrize(("flag", "expected"), [
    ("audit-log-maxage=-1", "*--audit-log-maxage*-1 can't be a negative number*"),
    ("audit-log-format=xml", "*invalid audit log format xml, allowed formats are*"),
    ("audit-log-maxbakup=3", "*unknown flag: --audit-log-maxbakup*did you mean*"),
])
def test_audit_flags_are_checked_at_start_up(pytester: pytest.Pytester, flag: str,
                                             expected: str) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest(f"--kaudit-apiserver-flag={flag}")
    _usage_error(result, "*--kaudit-apiserver-flag*", expected)


def test_flag_error_from_ini_blames_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkaudit_apiserver_flag = audit-log-format=xml\n")
    _usage_error(pytester.runpytest(), "*ini kaudit_apiserver_flag*invalid audit log format xml*")


def test_a_directory_as_the_policy(pytester: pytest.Pytester) -> None:
    pytester.mkdir("policies")
    _usage_error(pytester.runpytest("--kaudit-policy=policies"),
                 "*--kaudit-policy: *policies is a directory, not an audit policy file*")


def test_a_missing_ini_policy_blames_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkaudit_policy = nope.yaml\n")
    _usage_error(pytester.runpytest(), "*ini kaudit_policy: audit policy file not found: *nope.yaml*")


def test_coverage_parent_directories_are_created(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("--kaudit-coverage=reports/nested/cov.json")
    assert result.ret == 0
    assert (pytester.path / "reports" / "nested").is_dir()


def test_coverage_path_that_cannot_be_written_fails_at_start(pytester: pytest.Pytester) -> None:
    pytester.makefile(".txt", reports="a file, not a directory")
    _usage_error(pytester.runpytest("--kaudit-coverage=reports.txt/cov.json"),
                 "*--kaudit-coverage: cannot create the directory *reports.txt*")
    pytester.mkdir("cov.json")
    _usage_error(pytester.runpytest("--kaudit-coverage=cov.json"),
                 "*--kaudit-coverage: *cov.json is a directory*")


def test_existing_policy_still_loads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    assert pytester.runpytest(f"--kaudit-policy={POLICIES / 'brief.yaml'}").ret == 0


MARKER_FLAGS = """
    import pytest

    @pytest.mark.kaudit(policy={policy!r}, flags={flags})
    def test_x(kaudit):
        pass
"""


def test_marker_flags_as_one_string_are_one_flag(pytester: pytest.Pytester) -> None:
    from pytest_kaudit.spec import SPEC_KEY

    pytester.makepyfile(MARKER_FLAGS.format(policy=str(POLICIES / "brief.yaml"),
                                            flags='"audit-log-maxbackup=3"'))
    items, _ = pytester.inline_genitems()
    assert items[0].stash[SPEC_KEY].flags == {"audit-log-maxbackup": "3"}


def test_marker_flags_of_the_wrong_type_name_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKER_FLAGS.format(policy=str(POLICIES / "brief.yaml"), flags="3"))
    result = pytester.runpytest("--kaudit-apiserver-bin=/nonexistent/kube-apiserver")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*@pytest.mark.kaudit(flags=...) on test_marker_flags_of_the_wrong_type_name_the_marker.py"
        "::test_x: expected {name: value} or a list of 'NAME=VALUE' strings, got int*"])
    result.stdout.no_fnmatch_line("*kube-apiserver not found*")


def test_bad_marker_flags_are_refused_before_boot(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKER_FLAGS.format(policy=str(POLICIES / "brief.yaml"),
                                            flags='{"audit-log-maxage": "-1"}'))
    result = pytester.runpytest("--kaudit-apiserver-bin=/nonexistent/kube-apiserver")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.kaudit(flags=...) on *::test_x*",
                                 "*--audit-log-maxage -1 can't be a negative number*"])
    result.stdout.no_fnmatch_line("*kube-apiserver not found*")


def test_dict_policy_errors_name_the_marker_test_and_field(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.kaudit(policy={"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                                    "rules": [{"level": "Metadata"},
                                              {"level": "Metadata", "verb": ["get"]}]})
        def test_x(kaudit):
            pass
    """)
    result = pytester.runpytest("--kaudit-apiserver-bin=/nonexistent/kube-apiserver")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.kaudit(policy={...}) on *.py::test_x: rules[[]1[]].verb:*"])
    result.stdout.no_fnmatch_line("*<marker policy>:*")


def test_a_failed_cluster_start_is_reported_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(kaudit): pass")
    # -rN: no short summary, whose line repeats the message in full when CI is set
    result = pytester.runpytest(f"--kaudit-policy={POLICIES / 'brief.yaml'}",
                                "--kaudit-apiserver-bin=/nonexistent/kube-apiserver", "-rN")
    result.assert_outcomes(errors=1)
    assert result.stdout.str().count("kube-apiserver not found.") == 1
    result.stdout.no_fnmatch_line("*During handling of the above exception*")
