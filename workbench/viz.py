"""Plotly figure builders: DataFrames from `workbench.queries` and `workbench.replay` in, `go.Figure` out.

No streamlit here, so a notebook draws the same charts as the app. Category labels (agent names, versions)
come from trace files, and plotly reads a small HTML subset in text (`<a href>`, `<br>`, `<b>` ...), so every
label from the data is escaped before it reaches a figure.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

OUTCOME_COLORS = {"success": "#2e7d32", "failure": "#c62828", "unknown": "#9e9e9e"}
_OTHER_COLOR = "#6d4c41"
_LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 72, "b": 10},
    "height": 360,
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
    "hovermode": "x unified",
}


def _label(value: object) -> str:
    """Escape a data value for plotly text, which would otherwise render `<a href=...>` from a trace."""
    return html.escape("(none)" if value is None or value is pd.NA or value != value else str(value))


def _layout(title: str, **extra) -> dict:
    return {**_LAYOUT, "title": {"text": title, "y": 0.97, "yanchor": "top"}, **extra}


def _week_axis(fig: go.Figure, weeks: pd.Series) -> None:
    # Plotly's automatic date ticks land on Sundays while the buckets start on Mondays; label the buckets
    # themselves while there are few enough to read.
    unique = sorted(pd.Series(weeks).dropna().unique())
    if 0 < len(unique) <= 16:
        fig.update_xaxes(tickmode="array", tickvals=unique, tickformat="%b %d<br>%Y")


def _empty(title: str, note: str = "no runs") -> go.Figure:
    fig = go.Figure(layout=_layout(title))
    fig.add_annotation(text=note, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def runs_per_week(weekly: pd.DataFrame, title: str = "Runs per week by outcome") -> go.Figure:
    """Stacked bars of runs per week, one colour per outcome.

    Args:
        weekly: `Overview.runs_per_week` (columns week, outcome, runs).
    """
    if weekly.empty:
        return _empty(title)
    fig = go.Figure(layout=_layout(title, barmode="stack"))
    known = [o for o in OUTCOME_COLORS if o in set(weekly["outcome"])]
    others = sorted(set(weekly["outcome"]) - set(OUTCOME_COLORS))
    for outcome in known + others:
        part = weekly[weekly["outcome"] == outcome]
        fig.add_bar(x=part["week"], y=part["runs"], name=_label(outcome),
                    marker_color=OUTCOME_COLORS.get(outcome, _OTHER_COLOR))
    fig.update_yaxes(title_text="runs")
    _week_axis(fig, weekly["week"])
    return fig


def failures_per_week(failures: pd.DataFrame, title: str = "Failures per week") -> go.Figure:
    """Bars of failed runs per week with the failure rate as a line on a second axis.

    Args:
        failures: `Overview.failures_per_week` (columns week, runs, failures, failure_rate).
    """
    if failures.empty:
        return _empty(title)
    fig = go.Figure(layout=_layout(title))
    fig.add_bar(x=failures["week"], y=failures["failures"], name="failures",
                marker_color=OUTCOME_COLORS["failure"])
    fig.add_scatter(x=failures["week"], y=failures["failure_rate"], name="failure rate", yaxis="y2",
                    mode="lines+markers", line={"color": "#37474f"})
    fig.update_layout(
        yaxis={"title": {"text": "failed runs"}},
        yaxis2={"title": {"text": "failure rate"}, "overlaying": "y", "side": "right", "tickformat": ".0%",
                "rangemode": "tozero", "showgrid": False},
    )
    _week_axis(fig, failures["week"])
    return fig


def _version_labels(by_version: pd.DataFrame) -> list[str]:
    return [f"{_label(a)} · {_label(v)}" for a, v in zip(by_version["agent"], by_version["agent_version"],
                                                           strict=True)]


def by_version_bars(by_version: pd.DataFrame) -> go.Figure:
    """Success rate and cost per successful run for each agent x version, side by side.

    Args:
        by_version: `Overview.by_version`.
    """
    title = "Success rate and cost per successful run by agent · version"
    if by_version.empty:
        return _empty(title)
    labels = _version_labels(by_version)
    fig = go.Figure(layout=_layout(title, barmode="group", hovermode="closest"))
    fig.add_bar(x=labels, y=by_version["success_rate"], name="success rate", marker_color="#2e7d32",
                offsetgroup="rate", hovertemplate="%{x}<br>success rate %{y:.1%}<extra></extra>")
    fig.add_bar(x=labels, y=by_version["cost_per_success"], name="cost per success (USD)", yaxis="y2",
                marker_color="#1565c0", offsetgroup="cost",
                hovertemplate="%{x}<br>cost per success $%{y:.4f}<extra></extra>")
    fig.update_layout(
        yaxis={"title": {"text": "success rate"}, "tickformat": ".0%", "rangemode": "tozero"},
        yaxis2={"title": {"text": "USD per success"}, "overlaying": "y", "side": "right", "showgrid": False,
                "rangemode": "tozero"},
    )
    return fig


def duration_percentiles(by_version: pd.DataFrame) -> go.Figure:
    """p50 and p95 run duration (seconds) for each agent x version.

    Args:
        by_version: `Overview.by_version` (p50_ms, p95_ms).
    """
    title = "Run duration p50 / p95 by agent · version"
    if by_version.empty:
        return _empty(title)
    labels = _version_labels(by_version)
    fig = go.Figure(layout=_layout(title, barmode="group", hovermode="closest"))
    for column, name, color in (("p50_ms", "p50", "#90caf9"), ("p95_ms", "p95", "#1565c0")):
        fig.add_bar(x=labels, y=by_version[column] / 1000, name=name, marker_color=color,
                    hovertemplate="%{x}<br>" + name + " %{y:.1f} s<extra></extra>")
    fig.update_yaxes(title_text="seconds")
    return fig


# -- replay -------------------------------------------------------------------------------------------------
KIND_COLORS = {"llm": "#1565c0", "tool": "#ef6c00", "retrieval": "#8e24aa", "agent": "#546e7a",
               "chain": "#78909c", "guardrail": "#00897b", "human": "#c2185b", "message": "#9e9e9e",
               "event": "#bdbdbd", "other": "#6d4c41"}
_ERROR_COLOR = "#c62828"


def waterfall(steps: pd.DataFrame, selected: int | None = None, title: str = "Waterfall") -> go.Figure:
    """One horizontal bar per step from its start to its end, coloured by kind; errors outlined in red.

    Each bar's `customdata` is the step's row in `steps`, so a click on a bar can open that step.

    Args:
        steps: `Replay.steps` (seq, kind, title, offset_ms, duration_ms, is_error, flags).
        selected: position (row) of the step to mark, or None.
    """
    if steps.empty or steps["offset_ms"].isna().all():
        return _empty(title, "no step timings in this run")
    # one trace per kind keeps the figure small at thousands of steps (a trace per step would not be)
    height = int(min(900, max(260, 8 * len(steps) + 120)))
    fig = go.Figure(layout=_layout(title, height=height, barmode="overlay", hovermode="closest",
                                   bargap=0.15, showlegend=True))
    duration = steps["duration_ms"].fillna(0).clip(lower=0)
    # a zero-length step (an event) still gets a sliver the eye can find
    shown = duration.where(duration > 0, max(float(duration.max()) / 400, 1.0))
    hover = [f"#{s} {_label(t)}<br>{_label(k)} · {d:,.0f} ms" + (" · error" if e else "")
             + (f" · {_label(f)}" if f else "")
             for s, t, k, d, e, f in zip(steps["seq"], steps["title"], steps["kind"], duration, steps["is_error"],
                                         steps["flags"], strict=True)]
    hover = np.array(hover, dtype=object)
    kinds = steps["kind"].to_numpy()
    rows = np.arange(len(steps))
    x, base, seq = shown.to_numpy(), steps["offset_ms"].to_numpy(), steps["seq"].to_numpy()
    # Colours stay scalar per trace: plotly validates a per-point colour list one value at a time, which
    # cost half a second at 2,000 steps. Errors get their own outlined trace on top instead.
    for kind in [k for k in KIND_COLORS if k in set(kinds)] + sorted(set(kinds) - set(KIND_COLORS)):
        part = kinds == kind
        fig.add_bar(x=x[part], base=base[part], y=seq[part], orientation="h", name=_label(kind),
                    marker_color=KIND_COLORS.get(kind, _OTHER_COLOR), hovertext=hover[part], hoverinfo="text",
                    customdata=rows[part])
    errors = steps["is_error"].to_numpy(dtype=bool)
    if errors.any():
        fig.add_bar(x=x[errors], base=base[errors], y=seq[errors], orientation="h", name="error",
                    marker={"color": "rgba(0,0,0,0)", "line": {"color": _ERROR_COLOR, "width": 2}},
                    hovertext=hover[errors], hoverinfo="text", customdata=rows[errors])
    if selected is not None and 0 <= selected < len(steps):
        fig.add_hline(y=int(steps["seq"].iloc[selected]), line_color="#212121", line_dash="dot", line_width=1)
    fig.update_yaxes(autorange="reversed", title_text="step #")
    fig.update_xaxes(title_text="ms after the first step")
    return fig


def step_costs(steps: pd.DataFrame, title: str = "Context size and cost per step") -> go.Figure:
    """Input tokens of each LLM call (the context it saw) as a line, cost per step as bars on a second axis.

    Args:
        steps: `Replay.steps` (seq, kind, input_tokens, cost_usd).
    """
    llm = steps[steps["input_tokens"].notna()] if not steps.empty else steps
    costed = steps[steps["cost_usd"].notna()] if not steps.empty else steps
    if llm.empty and costed.empty:
        return _empty(title, "no per-step tokens or costs in this run")
    fig = go.Figure(layout=_layout(title, hovermode="x unified"))
    fig.add_scatter(x=llm["seq"], y=llm["input_tokens"], name="context (input tokens)", mode="lines+markers",
                    line={"color": KIND_COLORS["llm"]}, marker={"size": 4})
    fig.add_bar(x=costed["seq"], y=costed["cost_usd"], name="cost (USD)", yaxis="y2", marker_color="#f9a825",
                opacity=0.7)
    fig.update_layout(
        yaxis={"title": {"text": "input tokens"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "USD"}, "overlaying": "y", "side": "right", "showgrid": False,
                "rangemode": "tozero", "tickformat": "$.4f"},
        xaxis={"title": {"text": "step #"}},
    )
    return fig


def label_counts(counts: pd.DataFrame, by: str, title: str | None = None) -> go.Figure:
    """Stacked bars: runs carrying each label code, per agent version (or agent, or week).

    Args:
        counts: `workbench.labels.label_counts(store, by)` (columns `by`, code, runs).
        by: the grouping column: agent_version, agent or week.
    """
    title = title or {"week": "Labeled runs per week by code", "agent": "Labeled runs per agent by code"}.get(
        by, "Labeled runs per agent version by code")
    if counts.empty:
        return _empty(title, "no labels yet")
    fig = go.Figure(layout=_layout(title, barmode="stack", hovermode="closest"))
    x = counts[by] if by == "week" else counts[by].map(_label)
    for code in sorted(set(counts["code"])):
        part = counts["code"] == code
        fig.add_bar(x=x[part], y=counts.loc[part, "runs"], name=_label(code),
                    hovertemplate=f"{_label(code)}<br>%{{x}}: %{{y}} runs<extra></extra>")
    fig.update_yaxes(title_text="runs")
    if by == "week":
        _week_axis(fig, counts["week"])
    else:
        fig.update_xaxes(type="category")
    return fig


MAP_POINTS = 20_000
"""Most runs a cluster map draws; a larger clustering is shown through an even sample of each cluster."""
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
            "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d")
_NOISE_COLOR = "#bdbdbd"


def _clip(value: object, n: int = 120) -> str:
    text = "" if value is None or value != value else str(value)
    return _label(text[:n] + ("…" if len(text) > n else "")) if text else "–"


def cluster_map(runs: pd.DataFrame, title: str = "Failed runs by cluster") -> go.Figure:
    """Scatter of failed runs at their map position, one colour (and legend entry) per cluster.

    Each point carries its run id as `customdata`, so a selection event tells which run was clicked; the
    hover shows the run's agent, version, cost, error and output (escaped: trace text is never markup).

    Args:
        runs: `Clustering.runs` (run_id, cluster, cluster_name, x, y, agent, agent_version, cost_usd, error,
            output).
    """
    if runs.empty:
        return _empty(title)
    if len(runs) > MAP_POINTS:
        runs = runs.sample(n=MAP_POINTS, random_state=0).sort_index()
    fig = go.Figure(layout=_layout(title, height=520, hovermode="closest", dragmode="select",
                                   legend={"orientation": "v", "x": 1.01, "y": 1, "font": {"size": 11}},
                                   margin={"l": 10, "r": 10, "t": 40, "b": 10}))
    for cluster, part in runs.groupby("cluster", sort=True):
        color = _NOISE_COLOR if cluster < 0 else _PALETTE[int(cluster) % len(_PALETTE)]
        hover = [f"run {_label(r)}<br>{_clip(a, 40)} · {_clip(v, 20)} · ${c or 0:.4f}<br>error: {_clip(e)}"
                 f"<br>output: {_clip(o)}"
                 for r, a, v, c, e, o in zip(part["run_id"], part["agent"], part["agent_version"],
                                             part["cost_usd"].fillna(0), part["error"], part["output"],
                                             strict=True)]
        name = _clip(f"#{cluster} {part['cluster_name'].iloc[0]}", 60)
        fig.add_scattergl(x=part["x"], y=part["y"], mode="markers", name=name, customdata=part["run_id"],
                          text=hover, hovertemplate="%{text}<extra>" + name + "</extra>",
                          marker={"color": color, "size": 7, "opacity": 0.8})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def maturity_radar(dimensions: pd.DataFrame, title: str = "Maturity by dimension") -> go.Figure:
    """Radar of the maturity level (1-5) per dimension, with the previous snapshot's levels as a dashed second
    polygon when there is one.

    Args:
        dimensions: `Assessment.dimensions` (name, level, level_name, previous_level).
    """
    if dimensions.empty:
        return _empty(title)
    names = [_label(n) for n in dimensions["name"]]
    theta = [*names, names[0]]  # close the polygon
    fig = go.Figure(layout=_layout(title, height=460, hovermode="closest", margin={"l": 60, "r": 60, "t": 80,
                                                                                    "b": 40}))
    previous = dimensions["previous_level"]
    if previous.notna().any():
        r = [*previous.fillna(0), previous.fillna(0).iloc[0]]
        fig.add_scatterpolar(r=r, theta=theta, name="previous snapshot", mode="lines",
                             line={"color": "#757575", "dash": "dash", "width": 2})
    levels = list(dimensions["level"])
    text = [f"{n}: level {lv} ({_label(ln)})" for n, lv, ln in zip(names, levels, dimensions["level_name"],
                                                                     strict=True)]
    fig.add_scatterpolar(r=[*levels, levels[0]], theta=theta, name="this assessment", mode="lines+markers",
                         fill="toself", text=[*text, text[0]], hovertemplate="%{text}<extra></extra>",
                         line={"color": "#1976d2", "width": 2}, fillcolor="rgba(25, 118, 210, 0.25)")
    fig.update_polars(radialaxis={"range": [0, 5], "tickvals": [1, 2, 3, 4, 5], "angle": 90,
                                  "tickangle": 90}, angularaxis={"direction": "clockwise", "rotation": 90})
    return fig
