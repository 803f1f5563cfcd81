"""The report as JUnit XML: one test case per requirement, named by its id, for CI dashboards."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pytest_kaudit.compliance.results import CheckResult, Report


def _details(result: CheckResult) -> str:
    req = result.requirement
    lines = [req.title, f"source: {'; '.join(req.sources)}", f"rationale: {req.rationale}"]
    for failure in result.failures:
        lines.append(f"- {failure.describe()}")
        lines += [f"    {e}" for e in failure.evidence]
    if result.note:
        lines.append(f"({result.note})")
    lines += [f"ENGINE BUG: {b}" for b in result.engine_bugs]
    if result.fix is not None:
        checked = "verified by the engine" if result.fix.verified else "unverified"
        lines.append(f"fix ({checked}): {result.fix.where}")
        lines += [f"    {t}" for t in result.fix.text.rstrip().splitlines()]
    return "\n".join(lines)


def render_junit(report: Report) -> str:
    """JUnit XML with the same content as the text report."""
    failures = sum(1 for r in report.results if not r.passed)
    suite = ET.Element("testsuite", {
        "name": "kaudit check", "tests": str(len(report.results)),
        "failures": str(failures), "errors": "0", "time": f"{report.seconds:.3f}"})
    props = ET.SubElement(suite, "properties")
    for name, value in (("policy", report.policy), ("mode", report.mode),
                        ("backend", report.backend),
                        ("apiserver_version", report.apiserver_version)):
        ET.SubElement(props, "property", {"name": name, "value": value})
    for note in report.conflicts:
        ET.SubElement(props, "property", {"name": "conflict", "value": note})
    for result in report.results:
        req = result.requirement
        case = ET.SubElement(suite, "testcase", {
            "classname": f"kaudit.{req.pack}", "name": req.id, "file": req.where})
        if not result.passed:
            first = result.failures[0].describe() if result.failures else (
                result.engine_bugs[0] if result.engine_bugs else "failed")
            kind = "engine-bug" if result.engine_bugs else "requirement"
            failure = ET.SubElement(case, "failure", {"message": first, "type": kind})
            failure.text = _details(result)
        else:
            out = ET.SubElement(case, "system-out")
            out.text = _details(result)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
        suite, encoding="unicode") + "\n"
