"""pytest hooks of pytest-kaudit: options, markers, fixtures, report sections. Thin on purpose.

Under pytest-xdist every worker is its own process with its own plugin object, so each worker
runs its own control plane (local clusters boot in seconds); nothing is shared between workers.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
import threading
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_kaudit.backend_choice import make_backend
from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.config import KauditConfig, add_options, get_config
from pytest_kaudit.errors import KauditError, OptionError, PolicyMismatchWarning
from pytest_kaudit.policy_cache import PolicyCache
from pytest_kaudit.pool import ClusterPool
from pytest_kaudit.spec import SPEC_ERROR_KEY, SPEC_KEY, presolve_specs, resolve_spec

if TYPE_CHECKING:  # the fixture's object needs the kubernetes client: imported when used
    from pytest_kaudit.fixture import KAudit

MARKER = (
    "kaudit(policy=None, flags=None): run the test against a cluster with this audit policy "
    "(a path, YAML text or a dict) and these kube-apiserver flags ({name: value}); overrides "
    "--kaudit-policy and adds to --kaudit-apiserver-flag. Works on tests, classes and modules."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    plugin = KauditPlugin(get_config(config))
    config.pluginmanager.register(plugin, "kaudit-plugin")
    config.add_cleanup(plugin.close)  # runs even after Ctrl-C or an internal error
    if plugin.cfg.pack:  # `kaudit check` requirements as test items
        from pytest_kaudit.compliance.pytest_items import PackPlugin

        config.pluginmanager.register(PackPlugin(plugin, plugin.cfg.pack), "kaudit-packs")


class KauditPlugin:
    """Session state: the resolved config, the policy cache, the cluster pool, coverage."""

    def __init__(self, cfg: KauditConfig) -> None:
        self.cfg = cfg
        self.policies = PolicyCache(strict=not cfg.lenient)
        self._pool: ClusterPool | None = None
        self.coverage = _make_coverage()
        self._previous_sigterm: Any = None
        self._early_boot_begun = False  # a cluster boots ahead of the first test
        if cfg.policy is not None:  # a broken session policy is a usage error, before any boot
            try:
                self.policies.load(cfg.policy, cfg.rootdir, cfg.rootdir)
            except KauditError as exc:  # PolicyError too
                raise pytest.UsageError(f"{cfg.origin('policy')}: {exc}") from None
        self._install_sigterm()

    @property
    def pool(self) -> ClusterPool:
        """The cluster pool, created (and its backend checked) on first use."""
        if self._pool is None:
            try:
                backend = make_backend(self.cfg)
            except OptionError as exc:
                raise pytest.UsageError(str(exc)) from None
            self._pool = ClusterPool(backend, max_clusters=self.cfg.max_clusters)
        return self._pool

    def _install_sigterm(self) -> None:
        """Turn SIGTERM into KeyboardInterrupt so CI cancellations tear clusters down too."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            def _interrupt(signum: int, frame: Any) -> None:
                raise KeyboardInterrupt("SIGTERM")
            self._previous_sigterm = signal.SIG_DFL
            signal.signal(signal.SIGTERM, _interrupt)

    def close(self) -> None:
        """Stop every cluster; restore signal handling."""
        if self._pool is not None:
            self._pool.stop_all()
        if self._previous_sigterm is not None:
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        presolve_specs(items, self.cfg, self.policies)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """With a session policy, the usual configuration is known before collection: where
        the backend can boot in the background, that boot begins now."""
        if self.cfg.policy is None or self.cfg.backend != "local" \
                or not _may_prestart(session.config):
            return  # other backends are made on first use (their errors belong to a test)
        prestart = getattr(self.pool.backend, "prestart", None)
        if prestart is not None:
            policy = self.policies.load(self.cfg.policy, self.cfg.rootdir, self.cfg.rootdir)
            prestart(ClusterSpec(policy=policy, flags=self.cfg.apiserver_flags,
                                 timeout=self.cfg.boot_timeout))
            self._early_boot_begun = True

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        """The first test using ``kaudit`` is known as soon as it is collected: where the
        backend can boot in the background, its cluster's boot begins while the rest of the
        collection goes on (a boot no selected test uses is stopped when collection ends)."""
        if self._early_boot_begun or "kaudit" not in getattr(item, "fixturenames", ()) \
                or self.cfg.backend != "local" or not _may_prestart(item.config):
            return
        self._early_boot_begun = True
        try:
            spec = resolve_spec(item, self.cfg, self.policies)
        except KauditError:  # PolicyError too
            return  # reported by that test's fixture
        prestart = getattr(self.pool.backend, "prestart", None)
        if prestart is not None:
            prestart(spec)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Begin the first test's boot now, and drop early boots no selected test uses."""
        if not _may_prestart(session.config):
            return
        specs = [item.stash[SPEC_KEY] for item in session.items if SPEC_KEY in item.stash]
        if self._pool is not None:
            keep_prestarts = getattr(self._pool.backend, "keep_prestarts", None)
            if keep_prestarts is not None:
                keep_prestarts({spec.key for spec in specs})
        if not specs:
            return
        prestart = getattr(self.pool.backend, "prestart", None)
        if prestart is not None:
            prestart(specs[0])

    # -- fixtures ----------------------------------------------------------------------------

    @pytest.fixture
    def kaudit(self, request: pytest.FixtureRequest) -> Iterator[KAudit]:
        """A real, audited cluster for this test: clients, actions, events and expectations.

        The cluster runs the test's audit policy (``@pytest.mark.kaudit(policy=...)`` or
        ``--kaudit-policy``) and kube-apiserver flags; it is shared by every test with the
        same configuration. ``kaudit.expect(verb="get", resource="secrets").logged(level=
        "Metadata")`` asserts on the log the apiserver really wrote.
        """
        # pytest.fail is called outside the except blocks: raised inside one, pytest would
        # print the original error, "During handling of the above exception", then the same
        # words again
        failure = request.node.stash.get(SPEC_ERROR_KEY, None)
        spec = request.node.stash.get(SPEC_KEY, None)
        if failure is None and spec is None:  # an item collected outside the normal hooks
            try:
                spec = resolve_spec(request.node, self.cfg, self.policies)
            except KauditError as exc:  # PolicyError too
                failure = str(exc)
        if failure is not None or spec is None:
            pytest.fail(failure or "no cluster configuration", pytrace=False)
        try:
            handle = self.pool.acquire(spec)
        except KauditError as exc:  # our own errors explain themselves; a traceback adds noise
            failure = str(exc)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        from pytest_kaudit.fixture import KAudit

        kaudit = KAudit(handle, policy=self.policies.in_force(handle, spec.policy),
                        test_name=request.node.nodeid, timeout=self.cfg.timeout,
                        housekeeping=self.pool.housekeeping(handle),
                        connections=self.pool.connections(handle))
        request.node.stash[KAUDIT_KEY] = kaudit
        try:
            yield kaudit
        finally:
            kaudit.close()

    # -- reporting ---------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]
                                  ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        kaudit = item.stash.get(KAUDIT_KEY, None)
        if kaudit is None or report.when != "call":
            return report
        events = kaudit.poll_events("test")
        mismatches = kaudit.policy_mismatches(events)
        if mismatches:
            source = kaudit.policy.source if kaudit.policy else "the policy"
            item.warn(PolicyMismatchWarning(
                f"{len(mismatches)} audit event(s) of this test were logged at a level that "
                f"{source} does not predict; is that the policy the cluster runs?\n  "
                + "\n  ".join(mismatches[:5])))
        if self.coverage is not None and kaudit.policy is not None:
            self.coverage.record_test(kaudit.policy, kaudit, events)
        mode = self.cfg.evidence
        if mode == "always" or (mode == "failed" and report.failed):
            section, props = _evidence(kaudit, events)
            report.sections.append(("kaudit audit events", section))
            # item-level, so the teardown report (which junitxml reads) carries it too
            item.user_properties.append(("kaudit_events", props))
        return report

    def pytest_report_header(self, config: pytest.Config) -> str:
        policy = self.cfg.policy or "per-test markers"
        return f"kaudit: backend={self.cfg.backend}, policy={policy}"

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._pool is not None and self._pool.boots:
            boots = ", ".join(f"{name} {secs:.1f}s" for name, secs in self._pool.boots)
            terminalreporter.write_line(f"kaudit: clusters booted: {boots}")
        for note in getattr(self._pool.backend, "notes", ()) if self._pool is not None else ():
            terminalreporter.write_line(f"kaudit: {note}")
        if self.coverage is not None and self.coverage.has_data():
            terminalreporter.section("kaudit policy rule coverage")
            terminalreporter.write_line(self.coverage.report())

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # Stop clusters now rather than only at cleanup: an xdist worker is ended soon after
        # this hook reports back, before its cleanups would have removed the directories.
        if self._pool is not None:
            self._pool.stop_all()
        if self.coverage is None or not self.coverage.has_data():
            return
        if self.cfg.coverage:
            from pytest_kaudit.coverage_session import write_report

            error = write_report(self.cfg.coverage, self.coverage.to_json())
            if error is not None:  # said in the summary; the run does not pass silently
                session.config.stash[_COVERAGE_FAILED] = error
                if session.exitstatus == 0:
                    session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        if self.cfg.fail_under is not None and self.coverage.percent() < self.cfg.fail_under:
            session.config.stash[_COVERAGE_FAILED] = (
                f"kaudit: policy rule coverage {self.coverage.percent():.1f}% is below "
                f"--kaudit-fail-under={self.cfg.fail_under:g}")
            if session.exitstatus == 0:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED


_COVERAGE_FAILED = pytest.StashKey[str]()
#: The test's ``kaudit`` object, for its report
KAUDIT_KEY = pytest.StashKey["KAudit"]()


def _may_prestart(config: pytest.Config) -> bool:
    """Clusters may boot ahead of the tests: not for --collect-only nor in xdist's controller."""
    return not config.option.collectonly and not _is_xdist_controller(config)


def _is_xdist_controller(config: pytest.Config) -> bool:
    """The xdist controller runs no tests (its workers boot their own clusters)."""
    dist = getattr(config.option, "dist", "no")
    return not hasattr(config, "workerinput") and dist not in ("no", None)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Spare the process its last full garbage collections when it ends with this run.

    pytest collects garbage five times after the run, to report exceptions raised in
    finalizers of cyclic garbage, and the interpreter once more at exit: each pass walks every
    object the run loaded (about a second together, on a busy machine). One pass here, with
    pytest's unraisable-exception hook still in place, frees the run's garbage; freezing what
    survives leaves the later passes only what is made after it. Not done when pytest runs
    inside another program (pytester's in-process runs), whose objects would stay frozen.
    """
    if config.invocation_params.args == tuple(sys.argv[1:]):
        gc.collect()
        gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    message = config.stash.get(_COVERAGE_FAILED, None)
    if message:
        terminalreporter.write_line(message, red=True)


def _make_coverage() -> Any:
    from pytest_kaudit.coverage_session import SessionCoverage

    return SessionCoverage()


def _evidence(kaudit: KAudit, events: list[Any]) -> tuple[str, str]:
    """A readable section and a JSON property of the test's events, Secret bodies redacted."""
    from pytest_kaudit.expect.report import describe_event
    from pytest_kaudit.redact import redact_event

    source = kaudit.handle.log_source.description
    lines = [f"{len(events)} audit event(s) of this test in {source}:"]
    lines += [f"  {describe_event(e)}" for e in events]
    if kaudit.log_problems:
        lines.append("undecodable log lines:")
        lines += [f"  {p}" for p in kaudit.log_problems]
    props = json.dumps([redact_event(dict(e.raw)) for e in events], separators=(",", ":"))
    return "\n".join(lines), props
