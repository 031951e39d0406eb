"""Render the report model: self-contained HTML, Markdown, or JSON.

- **HTML**: one file, everything embedded (CSS, plotly.js, the chart data); it makes no
  network request and runs no script but plotly's. Jinja2 autoescapes every value; chart
  data is embedded as JSON with ``<``, ``>`` and ``&`` escaped, so log text cannot close
  the script element. Raw records are shown on demand (``<details>``).
- **Markdown**: every value from logs is escaped (Markdown punctuation and HTML), so a user
  name cannot become a link, an image or markup.
- **JSON**: :func:`analysis.report.model.to_json`, the canonical form (docs/REPORT.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from analysis.report.model import to_json

Format = Literal["html", "md", "json"]
TEMPLATES = Path(__file__).parent / "templates"


def render(report: dict[str, Any], fmt: Format) -> str:
    """The report as text in one format."""
    if fmt == "json":
        return to_json(report)
    if fmt == "md":
        return markdown(report)
    if fmt == "html":
        return html(report)
    raise ValueError(f"unknown report format {fmt!r}: html, md or json")


def format_of(path: str | Path) -> Format:
    """The format a file name asks for; ValueError for another suffix."""
    suffix = Path(path).suffix.lower()
    fmt = {".html": "html", ".htm": "html", ".md": "md", ".json": "json"}.get(suffix)
    if fmt is None:
        raise ValueError(f"cannot write a report as {suffix or 'a file without suffix'}: "
                         "use .html, .md or .json")
    return fmt  # type: ignore[return-value]


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def html(report: dict[str, Any]) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
    from markupsafe import Markup

    from analysis.vis.report import incident_timeline, plotly_js

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2"], default=True),
                      trim_blocks=True, lstrip_blocks=True)
    charts = {s["incident_id"]: Markup(_script_json(incident_timeline(s)))
              for s in report["incidents"]}
    template = env.get_template("report.html.j2")
    return template.render(r=report, charts=charts,
                           plotly_js=Markup(plotly_js().replace("</script", "<\\/script")),
                           short=_short)


def _short(value: Any, n: int = 140) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= n else text[: n - 1] + "…"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|~])")
_MD_LEADING = re.compile(r"^(\s*)([-+#=]|\d+[.)])")


def md_escape(value: Any) -> str:
    """Log text safe in Markdown: HTML escaped (``<``, ``>``, ``&``), the punctuation that
    makes links, images, emphasis, code and table cells backslashed, a leading list or
    heading marker escaped, line breaks as spaces."""
    text = "" if value is None else str(value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"[\r\n\t]+", " ", text)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_LEADING.sub(lambda m: m.group(1) + "\\" + m.group(2), text)


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def markdown(report: dict[str, Any]) -> str:
    e = md_escape
    lines = [f"# {e(report['title'])}", "",
             f"Generated at {e(report['generated_at'])} by auditlens "
             f"{e(report['tool_version'])} from the store {e(report['store'])} "
             f"(detection run {e(report['run_id'])}).", "",
             f"Store ledger chain head: `{e(report['chain_head'])}` "
             f"({report['ledger_entries']} entries); keep it with the case notes: "
             "`auditlens info --verify --head HASH` proves later that a store is this one.",
             ""]
    lines += [f"> {e(n)}" for n in report["notes"]] + ([""] if report["notes"] else [])
    lines += ["## Summary", ""] + [f"- {e(s)}" for s in report["summary"]] + [""]
    for s in report["incidents"]:
        lines += [f"## {e(s['incident_id'])}: {e(s['title'])}", "",
                  f"**Severity:** {e(s['severity'])} · **From** {e(s['first_seen'])} "
                  f"**to** {e(s['last_seen'])} · **ATT&CK:** {e(', '.join(s['attack']))}", ""]
        lines += [f"- {e(x)}" for x in s["summary"]] + [""]
        lines += ["### What happened, in order", ""]
        lines += _table(["time (UTC)", "kind", "what"],
                        [[st["time"], st["severity"] or st["kind"], st["text"]]
                         for st in s["narrative"]])
        if s["activity_omitted"]:
            lines += [f"{s['activity_omitted']} more activity events are not listed.", ""]
        lines += ["### Recommended actions", ""] + [f"1. {e(a)}" for a in
                                                    s["recommendations"]] + [""]
        lines += ["### Principals", ""]
        lines += _table(["principal", "kind", "aliases"],
                        [[p["principal"], p["kind"],
                          ", ".join(f"{a['user']} ({a['source']})" for a in p["aliases"])]
                         for p in s["principals"]])
        if s["addresses"]:
            lines += ["### Addresses", ""]
            lines += _table(["address", "network", "events", "first", "last", "sources"],
                            [[a["ip"], a["network"], a["events"], a["first"], a["last"],
                              ", ".join(a["sources"])] for a in s["addresses"]])
        lines += ["### Findings", ""]
        for f in s["findings"]:
            lines += [f"#### {e(f['severity'])}: {e(f['title'])}", "",
                      f"{e(f['description'])}", "",
                      f"Detector {e(f['detector'])} v{e(f['detector_version'])}; ATT&CK "
                      f"{e(', '.join(f['attack']))}; finding {e(f['finding_id'])}.", "",
                      f"*Recommendation:* {e(f['recommendation'])}", ""]
            lines += _table(["time (UTC)", "source", "action", "user", "address", "file",
                             "line", "sha256"],
                            [[ev["timestamp"], ev["source"], ev["action"], ev["user"],
                              ev["src_ip"], ev["source_file"], ev["source_line"],
                              (ev["sha256"] or "")[:16]] for ev in f["evidence"]])
            if f["evidence_omitted"]:
                lines += [f"{f['evidence_omitted']} more evidence events of "
                          f"{f['evidence_total']} are not listed: "
                          "`analysis.findings.evidence_events` lists them.", ""]
        if s["findings_omitted"]:
            lines += [f"{s['findings_omitted']} more findings of this incident are not told "
                      "in full: `analysis.read_findings` lists them.", ""]
    a = report["appendix"]
    lines += ["## Appendix", "", "### Inputs", ""]
    lines += _table(["file", "size", "sha256", "loader", "read", "loaded", "rejected",
                     "duplicate"],
                    [[i["path"], i["size"], i["sha256"], i["loader"], i["records_read"],
                      i["records_loaded"], i["records_rejected"], i["records_duplicate"]]
                     for i in a["inputs"]])
    lines += [f"### Rejected records ({a['rejects_total']})", ""]
    lines += _table(["file", "reason", "count", "first line", "might hide"],
                    [[r["source_file"], r["reason"], r["count"], r["first_line"],
                      r["might_hide"]] for r in a["rejects"]])
    lines += ["### Coverage", ""]
    for c in a["coverage"]:
        lines.append(f"- {e(c['incident_id'])}: no events from "
                     f"{e(', '.join(c['sources_without_events']) or 'no source missing')} "
                     "in the incident window.")
    run = a["detection_run"]
    lines += ["", "### Detection run", "", f"Run {e(run['run_id'])} started "
              f"{e(run['started_at'])}.", ""]
    lines += _table(["detector", "version", "status", "findings", "note"],
                    [[d["name"], d["version"], d["status"], d["findings"], d["message"]]
                     for d in run["detectors"]])
    lines += ["Parameters:", "", "```json",
              json.dumps(run["parameters"], indent=1, sort_keys=True).replace("```", "'''"),
              "```", "", "### Limits", ""] + [f"- {e(x)}" for x in a["limits"]]
    return "\n".join(lines) + "\n"
