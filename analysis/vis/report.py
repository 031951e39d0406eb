"""The report's timeline chart, as plotly JSON (embedded in the HTML report)."""

from __future__ import annotations

import html
import json
from typing import Any

import plotly.graph_objects as go

from analysis.vis.logins import SEVERITY_COLOURS


def _text(value: Any) -> str:
    """Log text as plotly shows it: plotly reads a few HTML tags in labels, so every ``<``
    and ``&`` is escaped and the text shows literally."""
    return html.escape(str(value), quote=False)


def incident_timeline(section: dict[str, Any]) -> dict[str, Any]:
    """A figure (plotly JSON) of one incident: findings as bars over their time span, one
    row per finding; the actors' key events as dots on a row per source."""
    fig = go.Figure()
    for f in section["findings"]:
        fig.add_trace(go.Scatter(
            x=[f["first_seen"], f["last_seen"]], y=[_text(f["detector"] + ": " + f["entity"])] * 2,
            mode="lines+markers", line={"color": SEVERITY_COLOURS[f["severity"]], "width": 8},
            name=f["severity"], showlegend=False,
            hovertext=[_text(f["title"])] * 2, hoverinfo="text+x"))
    events = section["activity"]
    if events:
        fig.add_trace(go.Scatter(
            x=[e["timestamp"] for e in events], y=[_text(e["source"]) for e in events],
            mode="markers", marker={"color": "#37474f", "size": 8}, name="activity",
            showlegend=False,
            hovertext=[_text(f"{e.get('user') or '?'}: {e.get('action') or '?'} "
                             f"{e.get('target') or ''}") for e in events],
            hoverinfo="text+x"))
    rows = len(section["findings"]) + len({e["source"] for e in events})
    fig.update_layout(title=_text(section["title"]), height=160 + 28 * rows,
                      margin={"l": 20, "r": 20, "t": 50, "b": 40},
                      xaxis={"title": "time (UTC)"}, yaxis={"automargin": True},
                      template="plotly_white")
    return json.loads(fig.to_json())


def plotly_js() -> str:
    """plotly.js itself, to embed (the report makes no network request)."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())
