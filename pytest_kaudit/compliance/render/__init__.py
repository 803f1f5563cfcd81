"""Report renderers: text, JSON, JUnit XML and a self-contained HTML page.

All four carry the same content: summary, one row per requirement, and for each failure the
evidence (body-free events), the deciding rule and the verified fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from pytest_kaudit.compliance import FORMATS
from pytest_kaudit.compliance.results import CheckResult, Report

__all__ = ["FORMATS", "render_json", "render_text", "renderer", "status_word", "summary_line"]



def summary_line(report: Report) -> str:
    """``7 of 10 requirements pass, 3 fail (real run on local, kube-apiserver 1.20, 12.3s)``."""
    passed = sum(1 for r in report.results if r.passed)
    failed = len(report.results) - passed
    if report.mode == "real":
        how = (f"proven on {report.backend}, kube-apiserver {report.apiserver_version}, "
               f"{report.seconds:.1f}s")
    else:
        how = "predicted by the policy engine only (--offline)"
    return f"{passed} of {len(report.results)} requirements pass, {failed} fail ({how})"


def status_word(result: CheckResult) -> str:
    """``PASS``, ``FAIL`` or ``ENGINE BUG``."""
    if result.engine_bugs:
        return "ENGINE BUG"
    return "PASS" if result.status == "pass" else "FAIL"


def render_text(report: Report) -> str:
    """The report for a terminal."""
    lines = [f"kaudit check {report.policy} (packs: {', '.join(report.packs)})"]
    for warning in report.policy_warnings:
        lines.append(f"  policy note: {warning}")
    width = max((len(r.requirement.id) for r in report.results), default=10)
    for result in report.results:
        req = result.requirement
        lines.append(f"{status_word(result):<10} {req.id:<{width}}  {req.title}")
        if result.passed:
            continue
        lines.append(f"{'':11}source: {'; '.join(req.sources)}")
        for failure in result.failures:
            lines.append(f"{'':11}- {failure.describe()}")
            lines += [f"{'':15}{e}" for e in failure.evidence[:4]]
        if result.note:
            lines.append(f"{'':11}({result.note})")
        for bug in result.engine_bugs:
            lines.append(f"{'':11}ENGINE BUG: {bug}")
        if result.fix is not None:
            checked = "verified by the engine" if result.fix.verified else "unverified"
            lines.append(f"{'':11}fix ({checked}): {result.fix.where}")
            lines += [f"{'':15}{t}" for t in result.fix.text.rstrip().splitlines()]
        elif result.status == "fail":
            lines.append(f"{'':11}fix: none found mechanically")
    for note in report.conflicts:
        lines.append(f"CONFLICT: {note}")
    if report.engine_bugs:
        lines.append(f"ENGINE BUGS: {len(report.engine_bugs)} request(s) were logged "
                     "differently than the policy engine predicted; please report them.")
    lines.append(summary_line(report))
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    """The report as indented JSON."""
    return json.dumps(report.to_json(), indent=2) + "\n"


def renderer(fmt: str) -> Callable[[Report], str]:
    """The render function for one format."""
    if fmt == "text":
        return render_text
    if fmt == "json":
        return render_json
    if fmt == "junit":
        from pytest_kaudit.compliance.render.junit import render_junit

        return render_junit
    if fmt == "html":
        from pytest_kaudit.compliance.render.html import render_html

        return render_html
    raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
