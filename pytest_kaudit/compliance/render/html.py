"""The report as one self-contained HTML page an auditor can be handed.

No scripts, fonts, images or stylesheets are fetched: the CSS is inline, so the file reads the
same offline, attached to a ticket, years later. Every text is escaped; nothing shown holds
request or response bodies.
"""

from __future__ import annotations

from html import escape

from pytest_kaudit.compliance.render import status_word, summary_line
from pytest_kaudit.compliance.results import CheckResult, Report, RuleRef

_CONTEXT_LINES = 3

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.2rem;margin-top:2rem}
.meta{color:#57606a}.summary{font-size:1.1rem;margin:1rem 0;padding:.8rem 1rem;
border-radius:6px;background:#f6f8fa}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;
border-bottom:1px solid #d0d7de;vertical-align:top}
.PASS{color:#1a7f37;font-weight:600}.FAIL,.ENGINE{color:#cf222e;font-weight:600}
.conflict{background:#fff8c5;padding:.6rem 1rem;border-radius:6px;margin:.5rem 0}
section.failure{border:1px solid #d0d7de;border-radius:6px;padding:.2rem 1rem 1rem;margin:1rem 0}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;font-size:13px;margin:.3rem 0}
pre span{display:block}pre .hl{background:#ffebe9;font-weight:600}
code{font-size:13px}ul{margin:.3rem 0}
"""


def _policy_excerpt(report: Report, rule: RuleRef) -> str:
    """The policy lines around the deciding rule, that rule's line highlighted."""
    if rule.line is None or not report.policy_text:
        return ""
    lines = report.policy_text.splitlines()
    lo = max(1, rule.line - _CONTEXT_LINES)
    hi = min(len(lines), rule.line + _CONTEXT_LINES)
    rows = []
    for n in range(lo, hi + 1):
        cls = ' class="hl"' if n == rule.line else ""
        rows.append(f'<span{cls} data-line="{n}">{n:>4}  {escape(lines[n - 1])}</span>')
    return f'<pre class="policy" data-rule="{rule.index}">' + "".join(rows) + "</pre>"


def _failure_section(report: Report, result: CheckResult) -> str:
    req = result.requirement
    parts = [f'<section class="failure" id="{escape(req.id)}">',
             f"<h3>{escape(req.id)}: {escape(req.title)}</h3>",
             f"<p><b>Source:</b> {escape('; '.join(req.sources))}</p>",
             f"<p><b>Why it matters:</b> {escape(req.rationale)}</p>"]
    shown: set[tuple[int | None, int | None]] = set()
    for failure in result.failures:
        parts.append(f"<p class='what'>{escape(failure.subject)}: "
                     f"{escape('; '.join(failure.problems))}</p>")
        if failure.evidence:
            parts.append("<ul class='evidence'>" + "".join(
                f"<li><code>{escape(e)}</code></li>" for e in failure.evidence) + "</ul>")
        rule = failure.rule
        if rule is not None:
            parts.append(f"<p>Decided by {escape(rule.describe())}"
                         + (f": <code>{escape(rule.summary)}</code>" if rule.summary else "")
                         + "</p>")
            if (rule.index, rule.line) not in shown:
                shown.add((rule.index, rule.line))
                parts.append(_policy_excerpt(report, rule))
    if result.note:
        parts.append(f"<p>({escape(result.note)})</p>")
    for bug in result.engine_bugs:
        parts.append(f"<p class='ENGINE'>Engine bug: {escape(bug)}</p>")
    if result.fix is not None:
        checked = "verified by the policy engine" if result.fix.verified else "unverified"
        parts.append(f"<h4>Fix ({checked})</h4><p>{escape(result.fix.where)}</p>"
                     f"<pre class='fix'>{escape(result.fix.text.rstrip())}</pre>")
    elif result.status == "fail":
        parts.append("<p>No fix could be found mechanically.</p>")
    parts.append("</section>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """The whole page."""
    rows = []
    for result in report.results:
        req = result.requirement
        word = status_word(result)
        cls = word.split()[0]
        link = f'<a href="#{escape(req.id)}">{escape(req.id)}</a>' if not result.passed \
            else escape(req.id)
        rows.append(f"<tr data-id='{escape(req.id)}' data-status='{cls.lower()}'>"
                    f"<td class='{cls}'>{word}</td><td>{link}</td>"
                    f"<td>{escape(req.title)}</td><td>{escape('; '.join(req.sources))}</td></tr>")
    failures = [_failure_section(report, r) for r in report.results if not r.passed]
    conflicts = "".join(f"<p class='conflict'>{escape(c)}</p>" for c in report.conflicts)
    warnings = "".join(f"<li><code>{escape(w)}</code></li>" for w in report.policy_warnings)
    how = (f"proven on a real kube-apiserver {escape(report.apiserver_version)} "
           f"({escape(report.backend)} backend)" if report.mode == "real"
           else "predicted by the policy engine only")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kaudit check: {escape(report.policy)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Audit policy compliance: {escape(report.policy)}</h1>
<p class="meta">Packs: {escape(', '.join(report.packs))}. Checks {how}.</p>
<p class="summary" id="summary">{escape(summary_line(report))}</p>
{conflicts}
{f"<h2>Policy notes</h2><ul>{warnings}</ul>" if warnings else ""}
<h2>Requirements</h2>
<table id="requirements"><thead><tr><th>Result</th><th>Requirement</th><th>Title</th>
<th>Source</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table>
{"<h2>Failures</h2>" if failures else ""}
{chr(10).join(failures)}
<p class="meta">Generated by pytest-kaudit <code>kaudit check</code>. Events are shown without
request or response bodies.</p>
</body></html>
"""
