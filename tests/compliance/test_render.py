"""Report formats: JUnit XML carries the same content, and the HTML page is checked in a real
headless Chromium (Debian's ``chromium``), which loads the file and shows it to a reader."""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from compliance_helpers import CIS_FLAGS, DATA, check

from pytest_kaudit.compliance.render import render_json, render_text
from pytest_kaudit.compliance.render.html import render_html
from pytest_kaudit.compliance.render.junit import render_junit
from pytest_kaudit.compliance.results import Report

POLICY = DATA / "exec-none.yaml"
PACKS = ("cis", "secrets", "stig")


def report_for_exec_none() -> Report:
    return check(POLICY, packs=PACKS, flags={**CIS_FLAGS, "audit-log-maxage": "10"})


def test_junit_has_one_case_per_requirement_with_the_failure_explained() -> None:
    report = report_for_exec_none()
    root = ET.fromstring(render_junit(report))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == [r.requirement.id for r in report.results]
    assert root.get("failures") == str(len(report.failed)) == "4"
    failure = cases["cis.interactive-access-logged"].find("failure")
    assert failure is not None and failure.text is not None
    assert failure.get("message", "").startswith("create pods/exec kaudit-check-a/kaudit-check")
    assert "insert before rules[1]" in failure.text and "pods/exec" in failure.text
    conflict = [p.get("value") for p in root.iter("property") if p.get("name") == "conflict"]
    assert conflict == report.conflicts and len(conflict) == 1


def test_every_format_carries_the_same_failures() -> None:
    report = report_for_exec_none()
    text, json_text, junit, html = (render_text(report), render_json(report),
                                    render_junit(report), render_html(report))
    for result in report.failed:
        for doc in (text, json_text, junit, html):
            assert result.requirement.id in doc
            assert result.fix is not None and result.fix.text.splitlines()[0].strip("- ") in doc


class _Text(HTMLParser):
    """What a reader sees: the text of the rendered DOM, by element id/class of interest."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[dict[str, str]] = []
        self.summary = ""
        self.rows: list[str] = []
        self.highlighted: list[str] = []
        self.fixes: list[str] = []
        self.fetches: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "link", "img", "iframe") or "src" in a:
            self.fetches.append(tag)
        if tag == "tr" and "data-id" in a:
            self.rows.append(a["data-status"])
        self.stack.append({"tag": tag, **a})

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop()["tag"] != tag:
            pass

    def handle_data(self, data: str) -> None:
        if not self.stack:
            return
        top = self.stack[-1]
        if top.get("id") == "summary":
            self.summary += data
        if top.get("class") == "hl":
            self.highlighted.append(data)
        if any(s.get("class") == "fix" for s in self.stack):
            self.fixes.append(data)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("KAUDIT_REQUIRE_BROWSER"):
            pytest.fail("headless Chromium is required here (apt-get install chromium)")
        pytest.skip("no headless Chromium (apt-get install chromium)")
    return found


def _browse(chromium: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--user-data-dir=" + str(page.parent / "profile"),
         *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True)


def test_the_html_report_reads_right_in_a_real_browser(chromium: str, tmp_path: Path) -> None:
    report = report_for_exec_none()
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    dom = _browse(chromium, page, "--dump-dom").stdout
    seen = _Text()
    seen.feed(dom)
    assert seen.summary == "12 of 16 requirements pass, 4 fail (predicted by the policy engine " \
        "only (--offline))"
    assert seen.rows.count("pass") == 12 and seen.rows.count("fail") == 4
    # the deciding rule's own line of the policy is the highlighted one
    policy_line_13 = POLICY.read_text().splitlines()[12]
    assert f"  13  {policy_line_13}" in seen.highlighted
    assert any("pods/exec" in f for f in seen.fixes)
    assert seen.fetches == []  # nothing to fetch: the file stands alone
    shot = tmp_path / "shot.png"
    _browse(chromium, page, f"--screenshot={shot}", "--window-size=1200,2000")
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
