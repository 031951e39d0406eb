"""Figures of sign-ins and findings (plotly)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

SEVERITY_COLOURS = {"info": "#9e9e9e", "low": "#64b5f6", "medium": "#ffb300",
                    "high": "#e53935", "critical": "#6a1b9a"}


def signin_timeline(frame: pd.DataFrame, findings: pd.DataFrame | None = None,
                    principals: list[str] | None = None) -> go.Figure:
    """Every sign-in attempt as a dot per principal over time (successes and failures in two
    colours), with the findings' spans drawn behind them.

    Args:
        frame: :func:`analysis.logins.sign_ins` rows.
        findings: findings rows (``read_findings`` or ``findings_table``); optional.
        principals: only these principals (default: every principal with a finding, or all).
    """
    data = frame.copy()
    flagged = set(findings["entity"]) if findings is not None and len(findings) else set()
    keep = principals or sorted(flagged & set(data["principal"])) or None
    if keep:
        data = data[data["principal"].isin(keep)]
    fig = px.scatter(data, x="ts", y="principal", color="result", symbol="channel",
                     hover_data=["src_ip", "channel", "agent_family", "source"],
                     color_discrete_map={"success": "#2e7d32", "failure": "#c62828"},
                     title="Sign-ins over time (UTC)")
    if findings is not None and len(findings):
        rows = findings[findings["entity"].isin(set(data["principal"]))]
        for r in rows.itertuples():
            fig.add_shape(type="line", x0=r.first_seen, x1=r.last_seen, y0=r.entity,
                          y1=r.entity, line={"color": SEVERITY_COLOURS.get(r.severity, "#999"),
                                             "width": 10}, opacity=0.35, layer="below")
    fig.update_layout(height=max(300, 40 * data["principal"].nunique() + 150),
                      legend_title_text="")
    return fig


def hour_profile(frame: pd.DataFrame, principal: str, highlight: Any = None) -> go.Figure:
    """Successful sign-ins of one principal by hour of day (UTC), with the judged sign-in's
    hour marked: what "an hour it never signs in" is measured against."""
    rows = frame[(frame["principal"] == principal) & (frame["result"] == "success")]
    counts = rows["ts"].dt.hour.value_counts().reindex(range(24), fill_value=0)
    fig = go.Figure(go.Bar(x=list(range(24)), y=counts.values, name="sign-ins",
                           marker_color="#1e88e5"))
    if highlight is not None:
        hour = pd.Timestamp(highlight).hour
        fig.add_vline(x=hour, line_color="#e53935", line_width=3,
                      annotation_text=f"{pd.Timestamp(highlight):%Y-%m-%d %H:%M}")
    fig.update_layout(title=f"Sign-ins of {principal} by hour of day (UTC)",
                      xaxis_title="hour (UTC)", yaxis_title="successful sign-ins",
                      xaxis={"dtick": 2})
    return fig


def findings_by_detector(findings: pd.DataFrame) -> go.Figure:
    """How many findings each detector raised, by severity."""
    if findings.empty:
        return go.Figure().update_layout(title="No findings")
    counts = findings.groupby(["detector", "severity"]).size().rename("findings").reset_index()
    return px.bar(counts, x="findings", y="detector", color="severity", orientation="h",
                  color_discrete_map=SEVERITY_COLOURS, title="Findings by detector and severity",
                  category_orders={"severity": list(SEVERITY_COLOURS)})
