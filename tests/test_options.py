"""Options, ini keys, markers and early errors, through pytester (no cluster boots here)."""

from __future__ import annotations

import pytest

from tests.conftest import POLICIES

SHOW_CONFIG = """
    def test_show(request):
        plugin = request.config.pluginmanager.get_plugin("kaudit-plugin")
        c = plugin.cfg
        print("CFG", c.backend, c.timeout, c.lenient, c.max_clusters,
              ",".join(f"{k}={v}" for k, v in sorted(c.apiserver_flags.items())) or "-")
"""


def test_help_lists_every_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "*Kubernetes audit-policy testing (pytest-kaudit)*",
        "*--kaudit-backend={local,kind,k3s,existing}",
        "*Cluster backend: local (default; etcd + kube-apiserver*",
        "*--kaudit-apiserver-flag=NAME=VALUE*",
        "*kaudit_timeout (string):*",
    ])


def test_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_CONFIG)
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines(["*CFG local 10.0 False 3 -"])


def test_ini_keys_mirror_flags(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_CONFIG)
    pytester.makeini("""
        [pytest]
        kaudit_backend = kind
        kaudit_timeout = 2.5
        kaudit_lenient = true
        kaudit_max_clusters = 5
        kaudit_apiserver_flag =
            audit-log-maxage=30
            audit-log-maxbackup=10
    """)
    result = pytester.runpytest("-s")
    result.stdout.fnmatch_lines([
        "*CFG kind 2.5 True 5 audit-log-maxage=30,audit-log-maxbackup=10"])


def test_cli_beats_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW_CONFIG)
    pytester.makeini("""
        [pytest]
        kaudit_backend = kind
        kaudit_timeout = 2.5
    """)
    result = pytester.runpytest("-s", "--kaudit-backend=local", "--kaudit-timeout=7",
                                "--kaudit-apiserver-flag=--audit-log-maxsize=100")
    result.stdout.fnmatch_lines(["*CFG local 7.0 False 3 audit-log-maxsize=100"])


def test_bad_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkaudit_timeout = soon\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*ini kaudit_timeout: expected a number, got 'soon'*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_unknown_backend_is_refused(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kaudit-backend=minikube")
    result.stderr.fnmatch_lines(["*invalid choice: 'minikube'*"])


def test_marker_is_registered_with_signature(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.kaudit(policy=None, flags=None): *"])


def test_broken_session_policy_fails_before_any_boot(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(kaudit): pass")
    result = pytester.runpytest(f"--kaudit-policy={POLICIES / 'brief-typos.yaml'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kaudit-policy:*", "*brief-typos.yaml:*rules[[]0[]].verb*"])


def test_missing_policy_file_is_named(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kaudit-policy=nope.yaml")
    result.stderr.fnmatch_lines(["*audit policy file not found: *nope.yaml*"])


def test_a_broken_marker_policy_fails_the_test_without_booting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.kaudit(policy={"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                                    "rules": [{"level": "Metadata", "verb": ["get"]}]})
        def test_x(kaudit):
            pass
    """)
    result = pytester.runpytest("--kaudit-apiserver-bin=/nonexistent/kube-apiserver")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*rules[[]0[]].verb*"])
    result.stdout.no_fnmatch_line("*kube-apiserver not found*")


def test_no_policy_at_all_is_explained(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(kaudit): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no audit policy for this test: pass --kaudit-policy=PATH*"])


def test_missing_binaries_say_what_was_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(kaudit): pass")
    result = pytester.runpytest(f"--kaudit-policy={POLICIES / 'brief.yaml'}",
                                "--kaudit-apiserver-bin=/nonexistent/kube-apiserver")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*kube-apiserver not found.",
        "*Checked:",
        "*--kaudit-apiserver-bin=/nonexistent/kube-apiserver: not an executable file",
    ])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*binaries.py*")


def test_a_malformed_session_flag_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--kaudit-apiserver-flag=audit-log-maxage")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--kaudit-apiserver-flag: 'audit-log-maxage' is not NAME=VALUE (e.g. audit-log-maxage=30)*"])


def test_markers_merge_module_policy_with_test_flags(pytester: pytest.Pytester) -> None:
    from pytest_kaudit.spec import SPEC_KEY

    pytester.makepyfile(f"""
        import pytest
        pytestmark = pytest.mark.kaudit(policy={str(POLICIES / 'brief.yaml')!r},
                                        flags={{"audit-log-maxage": "30"}})

        @pytest.mark.kaudit(flags={{"audit-log-maxage": "40", "audit-log-maxbackup": "10"}})
        def test_x(kaudit):
            pass
    """)
    items, _ = pytester.inline_genitems()
    spec = items[0].stash[SPEC_KEY]
    assert spec.policy is not None and spec.policy.source.endswith("brief.yaml")
    assert spec.flags == {"audit-log-maxage": "40", "audit-log-maxbackup": "10"}


def test_marker_errors_surface_at_collection_without_booting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.kaudit(policy="missing.yaml")
        def test_x(kaudit):
            pass

        @pytest.mark.kaudit(polcy="brief.yaml")
        def test_y(kaudit):
            pass
    """)
    result = pytester.runpytest("--kaudit-apiserver-bin=/nonexistent/kube-apiserver")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*audit policy file not found: *missing.yaml*",
                                 "*@pytest.mark.kaudit got unknown argument(s) [[]'polcy'[]]*"])
    result.stdout.no_fnmatch_line("*kube-apiserver not found*")


@pytest.mark.parametrize("source", ["defaults", "ini", "cli"])
def test_every_setting_has_its_declared_type(pytester: pytest.Pytester, source: str) -> None:
    """The resolved config is typed to its fields, whichever front end gave each value."""
    pytester.makepyfile("""
        import dataclasses, types, typing
        from pytest_kaudit.options import OPTIONS, KauditConfig

        def test_types(request):
            cfg = request.config.pluginmanager.get_plugin("kaudit-plugin").cfg
            assert isinstance(cfg, KauditConfig)
            hints = typing.get_type_hints(KauditConfig)
            assert [o.name for o in OPTIONS] == [
                f.name for f in dataclasses.fields(KauditConfig) if f.metadata]
            for opt in OPTIONS:
                value, hint = getattr(cfg, opt.name), hints[opt.name]
                allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
                allowed = tuple(typing.get_origin(a) or a for a in allowed)
                assert isinstance(value, allowed), (opt.name, value, hint)
                if typing.get_origin(hint) is tuple:
                    assert all(isinstance(v, str) for v in value), (opt.name, value)
    """)
    values = {"timeout": "2.5", "max_clusters": "4", "lenient": "true", "fail_under": "50",
              "apiserver_flag": "audit-log-maxage=30", "warm_idle": "3"}
    args: list[str] = []
    if source == "ini":
        pytester.makeini("[pytest]\n" + "".join(f"kaudit_{k} = {v}\n" for k, v in values.items()))
    elif source == "cli":
        args = [f"--kaudit-{k.replace('_', '-')}" + ("" if k == "lenient" else f"={v}")
                for k, v in values.items()]
    pytester.runpytest(*args).assert_outcomes(passed=1)
