"""``pytest --kaudit-pack=cis``: one test item per requirement, named by its id.

The requirements run once per session, on the cluster the plugin's pool holds for the
session policy (``--kaudit-policy``) and flags (``--kaudit-apiserver-flag``), or, without a
session policy, once for every distinct policy and flags that collected tests ask for with
``@pytest.mark.kaudit(policy=...)``. So they share clusters with ordinary ``kaudit`` tests.
Each item then reports its own requirement, so JUnit files and CI dashboards list them one
by one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_kaudit.backends.base import ClusterSpec
from pytest_kaudit.compliance.model import Requirement
from pytest_kaudit.compliance.results import CheckResult, Report
from pytest_kaudit.errors import KauditError

if TYPE_CHECKING:
    from pytest_kaudit.plugin import KauditPlugin


class RequirementFailed(Exception):
    """Raised by an item whose requirement did not pass; carries the result."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.requirement.id)
        self.result = result


class PackCollector(pytest.Collector):
    """The requirements of the selected packs, checked together once."""

    def __init__(self, *, plugin: KauditPlugin, requirements: list[Requirement],
                 spec: ClusterSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugin = plugin
        self.requirements = requirements
        self.spec = spec
        self._report: Report | None = None
        self._error: str | None = None

    def collect(self) -> list[pytest.Item]:
        return [RequirementItem.from_parent(self, name=r.id, requirement=r)
                for r in self.requirements]

    def report(self) -> Report:
        """Run every requirement (first call only) on the session's cluster."""
        if self._error is not None:
            raise KauditError(self._error)
        if self._report is None:
            try:
                self._report = self._run()
            except KauditError as exc:
                self._error = str(exc)
                raise
        return self._report

    def _run(self) -> Report:
        from pytest_kaudit.compliance.run import CheckOptions, check_on

        policy = self.spec.policy
        assert policy is not None
        opts = CheckOptions(policy_path=policy.source or "<policy>", flags=dict(self.spec.flags),
                            boot_timeout=self.spec.timeout, timeout=self.plugin.cfg.timeout)
        handle = self.plugin.pool.acquire(self.spec)  # shared with tests of the same config
        return check_on(policy, self.requirements, opts, handle=handle)


class RequirementItem(pytest.Item):
    """One requirement, passing or failing as the session's check says."""

    def __init__(self, *, requirement: Requirement, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.requirement = requirement

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, PackCollector)
        report = parent.report()
        result = next(r for r in report.results if r.requirement.id == self.requirement.id)
        self.user_properties.append(("kaudit_requirement", self.requirement.id))
        if not result.passed:
            raise RequirementFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, RequirementFailed):
            return _explain(excinfo.value.result)
        if isinstance(excinfo.value, KauditError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return self.requirement.where, None, f"kaudit requirement {self.requirement.id}"


def _explain(result: CheckResult) -> str:
    """The text report's block for one failed requirement."""
    from pytest_kaudit.compliance.render import render_text
    from pytest_kaudit.compliance.results import Report

    one = Report(policy="", policy_text="", packs=[result.requirement.pack],
                 mode="real" if result.proven else "offline", results=[result])
    lines = render_text(one).splitlines()[1:-1]  # without the header and the summary
    return "\n".join(lines)


class PackPlugin:
    """Adds the pack items at collection; registered when ``--kaudit-pack`` is given."""

    def __init__(self, plugin: KauditPlugin, packs: str) -> None:
        self.plugin = plugin
        self.packs = tuple(p.strip() for p in packs.split(",") if p.strip())

    @pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so those apply to our items
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        from pytest_kaudit.compliance.run import select_requirements

        try:
            requirements = select_requirements(self.packs, ())
        except KauditError as exc:  # RequirementsError too
            raise pytest.UsageError(f"--kaudit-pack: {exc}") from None
        specs = self._specs(items)
        if not specs:
            raise pytest.UsageError(
                "--kaudit-pack needs the policy to check: give --kaudit-policy=PATH (ini "
                "kaudit_policy), or collect tests marked @pytest.mark.kaudit(policy=...)")
        names: set[str] = set()
        for spec in specs:
            assert spec.policy is not None
            name = f"kaudit-check({Path(spec.policy.source or 'policy').name})"
            if name in names:  # the same file with other flags
                name = f"{name[:-1]}, {spec.key[:8]})"
            names.add(name)
            # an explicit node id without the leading "::": JUnit then reads the collector as
            # the class and the requirement id as the test name
            collector = PackCollector.from_parent(session, name=name, nodeid=name,
                                                  plugin=self.plugin, requirements=requirements,
                                                  spec=spec)
            items.extend(collector.collect())

    def _specs(self, items: list[pytest.Item]) -> list[ClusterSpec]:
        """The session policy's configuration, else every distinct one the markers ask for."""
        from pytest_kaudit.spec import resolve_spec

        cfg = self.plugin.cfg
        if cfg.policy is not None:
            policy = self.plugin.policies.load(cfg.policy, cfg.rootdir, cfg.rootdir)
            return [ClusterSpec(policy=policy, flags=cfg.apiserver_flags,
                                timeout=cfg.boot_timeout)]
        found: dict[str, ClusterSpec] = {}
        for item in items:
            if item.get_closest_marker("kaudit") is None:
                continue
            try:
                spec = resolve_spec(item, cfg, self.plugin.policies)
            except KauditError:
                continue  # that test reports its own broken marker
            if spec.policy is not None:
                found.setdefault(spec.key, spec)
        return list(found.values())
