"""Plotly figures for service levels, costs and rubric scores: DataFrames from `workbench.analytics` and
`workbench.rubric_results` in, `go.Figure` out (no streamlit). Data labels are escaped as in `workbench.viz`."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from workbench.viz import _empty, _label, _layout, _week_axis

_PALETTE = ["#1565c0", "#2e7d32", "#c62828", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#ad1457", "#9e9d24",
            "#455a64"]
_METRIC_FORMAT = {"success_rate": ".0%", "human_share": ".0%", "error_rate": ".1%", "retry_rate": ".1%",
                  "cost_per_success": "$.4f"}
_METRIC_TITLE = {"success_rate": "Success rate", "human_share": "Share of runs that needed a human",
                 "cost_per_success": "Cost per successful run (USD)", "p50_ms": "p50 duration (ms)",
                 "p95_ms": "p95 duration (ms)", "p99_ms": "p99 duration (ms)", "error_rate": "Error rate",
                 "retry_rate": "Retry rate", "runs": "Runs"}


def service_trend(weekly: pd.DataFrame, metric: str = "success_rate") -> go.Figure:
    """One line per agent · version (and the fleet, dashed) for one service-level metric, week by week.

    Args:
        weekly: `analytics.service_trend(store)`.
    """
    title = f"{_METRIC_TITLE.get(metric, metric)} per week"
    if weekly.empty:
        return _empty(title)
    fig = go.Figure(layout=_layout(title))
    groups = weekly.groupby(["agent", "agent_version"], dropna=False, sort=True)
    for i, ((agent, version), part) in enumerate(groups):
        total = agent == "(all)"
        fig.add_scatter(x=part["week"], y=part[metric], mode="lines+markers",
                        name="fleet" if total else f"{_label(agent)} · {_label(version)}",
                        line={"dash": "dash", "color": "#263238"} if total else {"color": _PALETTE[i % 10]})
    fig.update_yaxes(tickformat=_METRIC_FORMAT.get(metric, ""), rangemode="tozero")
    _week_axis(fig, weekly["week"])
    return fig


def cost_bars(breakdown: pd.DataFrame, by: str, top: int = 15) -> go.Figure:
    """Horizontal bars of cost per key, reported and estimated stacked (largest first).

    Args:
        breakdown: `analytics.cost_breakdown(store, by)`.
    """
    title = f"Cost by {by.replace('_', ' ')}"
    if breakdown.empty or breakdown["cost_usd"].sum() == 0:
        return _empty(title)
    part = breakdown.head(top).iloc[::-1]
    labels = [_label(k) for k in part["key"]]
    fig = go.Figure(layout=_layout(title, barmode="stack", hovermode="closest",
                                   height=max(300, 60 + 26 * len(part))))
    fig.add_bar(y=labels, x=part["reported_usd"], orientation="h", name="reported", marker_color="#1565c0",
                hovertemplate="%{y}<br>reported $%{x:.4f}<extra></extra>")
    fig.add_bar(y=labels, x=part["estimated_usd"], orientation="h", name="estimated (price table)",
                marker_color="#90caf9", hovertemplate="%{y}<br>estimated $%{x:.4f}<extra></extra>")
    fig.update_xaxes(title_text="USD")
    return fig


def token_split(breakdown: pd.DataFrame, by: str, top: int = 15) -> go.Figure:
    """Stacked bars of tokens per key: fresh input, cache reads, output, reasoning (reasoning is billed as
    output and cache reads are part of the input, so they are taken out of those to stack without overlap)."""
    title = f"Tokens by {by.replace('_', ' ')}"
    need = {"input_tokens", "output_tokens", "cache_tokens", "reasoning_tokens"}
    if breakdown.empty or not need <= set(breakdown.columns):
        return _empty(title)
    part = breakdown.head(top).fillna({c: 0 for c in need})
    if part[list(need)].to_numpy().sum() == 0:
        return _empty(title)
    labels = [_label(k) for k in part["key"]]
    fig = go.Figure(layout=_layout(title, barmode="stack", hovermode="closest"))
    parts = [("fresh input", (part["input_tokens"] - part["cache_tokens"]).clip(lower=0), "#1565c0"),
             ("cache read", part["cache_tokens"], "#90caf9"),
             ("output", (part["output_tokens"] - part["reasoning_tokens"]).clip(lower=0), "#2e7d32"),
             ("reasoning", part["reasoning_tokens"], "#a5d6a7")]
    for name, values, color in parts:
        fig.add_bar(x=labels, y=values, name=name, marker_color=color,
                    hovertemplate="%{x}<br>" + name + " %{y:,.0f}<extra></extra>")
    fig.update_yaxes(title_text="tokens")
    return fig


def cost_over_time(trend: pd.DataFrame, title: str = "Cost over time") -> go.Figure:
    """Stacked bars of cost per period, one colour per key (`analytics.cost_trend`)."""
    if trend.empty:
        return _empty(title)
    fig = go.Figure(layout=_layout(title, barmode="stack"))
    for i, (key, part) in enumerate(trend.groupby("key", dropna=False, sort=True)):
        fig.add_bar(x=part["period"], y=part["cost_usd"], name=_label(key), marker_color=_PALETTE[i % 10])
    fig.update_yaxes(title_text="USD")
    return fig


def pass_rate_heatmap(rates: pd.DataFrame, column: str = "agent_version") -> go.Figure:
    """Criteria (rows) by `column` values (columns), coloured by pass rate, with the rate and the number of
    applicable runs in each cell (`rubric_results.pass_rates(..., by=(column,))`)."""
    title = f"Pass rate per criterion by {column.replace('_', ' ')}"
    if rates.empty:
        return _empty(title)
    order = list(dict.fromkeys(rates["criterion"]))
    grid = rates.pivot_table(index="criterion", columns=column, values="pass_rate", aggfunc="first",
                             dropna=False).reindex(order)
    counts = rates.pivot_table(index="criterion", columns=column, values="applicable", aggfunc="first",
                               dropna=False).reindex(order)
    xs = [_label(c) if not isinstance(c, pd.Timestamp) else c.strftime("%b %d") for c in grid.columns]
    text = [[("" if pd.isna(v) else f"{v:.0%}") + ("" if pd.isna(n) else f"<br>n={int(n)}")
             for v, n in zip(row_v, row_n, strict=True)]
            for row_v, row_n in zip(grid.to_numpy(), counts.to_numpy(), strict=True)]
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(dtype=float), x=xs, y=[_label(c) for c in grid.index], text=text,
                               texttemplate="%{text}", zmin=0, zmax=1, colorscale="RdYlGn",
                               hovertemplate="%{y} · %{x}<br>pass rate %{z:.1%}<extra></extra>"),
                    layout=_layout(title, height=max(320, 80 + 34 * len(order)), hovermode="closest"))
    fig.update_yaxes(autorange="reversed")
    return fig


def confusion(matrix: pd.DataFrame, title: str = "Verdict against reference") -> go.Figure:
    """An annotated 2 x 2 heatmap of `rubric_results.Agreement.matrix`."""
    if matrix.to_numpy().sum() == 0:
        return _empty(title)
    z = matrix.to_numpy(dtype=float)
    fig = go.Figure(go.Heatmap(z=z, x=[f"{matrix.columns.name}: {c}" for c in matrix.columns],
                               y=[f"verdict: {i}" for i in matrix.index], text=z.astype(int).astype(str),
                               texttemplate="%{text}", colorscale="Blues", showscale=False,
                               hovertemplate="%{y} · %{x}: %{z:.0f}<extra></extra>"),
                    layout=_layout(title, height=320, hovermode="closest"))
    fig.update_yaxes(autorange="reversed")
    return fig
