"""Overview: service levels of the selected runs and how they move week by week and by version."""

import streamlit as st

import workbench_ui as ui
from workbench import analytics, viz, viz_ops
from workbench.queries import RunFilter
from workbench_ui import ops
from workbench_ui.pack import pack_control

ui.require_data()
st.title("Overview")
flt = ui.filter_sidebar()
ov = ui.overview(flt)

if ov.n_runs == 0:
    st.info("No runs match these filters.")
    st.stop()

pack_control(flt)

cols = st.columns(6)
cols[0].metric("Runs", ui.fmt_int(ov.n_runs))
cols[1].metric("Success rate", ui.fmt_pct(ov.success_rate),
               help="Successful runs over runs with a known outcome (success or failure).")
cols[2].metric("Total cost", ui.fmt_cost(ov.total_cost))
cols[3].metric("Cost per success", ui.fmt_cost(ov.cost_per_success),
               help="Total cost, failed runs included, divided by the number of successful runs.")
cols[4].metric("p50 duration", ui.fmt_duration(ov.p50_ms))
cols[5].metric("p95 duration", ui.fmt_duration(ov.p95_ms), help=f"p99: {ui.fmt_duration(ov.p99_ms)}")

left, right = st.columns(2)
left.plotly_chart(viz.failures_per_week(ov.failures_per_week))
right.plotly_chart(viz.runs_per_week(ov.runs_per_week))

st.subheader("By agent and version")
st.dataframe(
    # shown as a percentage with one decimal everywhere (the "percent" preset drops trailing zeros)
    ov.by_version.assign(success_rate=ov.by_version["success_rate"] * 100),
    hide_index=True,
    placeholder="–",
    column_config={
        "agent": st.column_config.TextColumn("Agent"),
        "agent_version": st.column_config.TextColumn("Version"),
        "runs": st.column_config.NumberColumn("Runs", format="%d"),
        "successes": st.column_config.NumberColumn("Successes", format="%d"),
        "failures": st.column_config.NumberColumn("Failures", format="%d"),
        "success_rate": st.column_config.NumberColumn("Success rate", format="%.1f%%"),
        "cost": st.column_config.NumberColumn("Cost (USD)", format="dollar"),
        "cost_per_success": st.column_config.NumberColumn("Cost per success (USD)", format="$%.4f"),
        "p50_ms": st.column_config.NumberColumn("p50 (ms)", format="%.0f"),
        "p95_ms": st.column_config.NumberColumn("p95 (ms)", format="%.0f"),
    },
)
left, right = st.columns(2)
left.plotly_chart(viz.by_version_bars(ov.by_version))
right.plotly_chart(viz.duration_percentiles(ov.by_version))

# -- service levels: this week against last, per agent and version, with trends ----------------------------
st.header("Service levels")
sl = ops.service_levels(flt)
if sl.anchor is not None:
    st.caption(f"This week: the 7 days up to the latest selected run ({sl.anchor:%Y-%m-%d %H:%M} UTC); "
               "last week: the 7 days before. Arrows compare the two.")
    fleet = sl.compare().set_index("metric")
    shown = [("success_rate", "Success rate · this week", ui.fmt_pct, "normal"),
             ("human_share", "Needed a human · this week", ui.fmt_pct, "inverse"),
             ("cost_per_success", "Cost per success · this week", ui.fmt_cost, "inverse"),
             ("p95_ms", "p95 duration · this week", ui.fmt_duration, "inverse"),
             ("error_rate", "Error rate · this week", ui.fmt_pct, "inverse"),
             ("retry_rate", "Retry rate · this week", ui.fmt_pct, "inverse")]
    cols = st.columns(len(shown))
    for col, (metric, label, fmt, color) in zip(cols, shown, strict=True):
        change = fleet.loc[metric, "change"]
        delta = None if change is None or change != change else (
            f"{change * 100:+.1f} pts" if fmt is ui.fmt_pct else f"{'+' if change >= 0 else '-'}{fmt(abs(change))}")
        col.metric(label, fmt(fleet.loc[metric, "this_week"]), delta, delta_color=color,
                   help=f"last week: {fmt(fleet.loc[metric, 'last_week'])}")
    pct = st.column_config.NumberColumn(format="percent")
    pts = st.column_config.NumberColumn(format="%+.3f")
    st.dataframe(sl.table(), hide_index=True, placeholder="–",
                 column_config={"success_rate": pct, "human_share": pct, "error_rate": pct, "retry_rate": pct,
                                "cost_per_success": st.column_config.NumberColumn(format="$%.4f"),
                                "runs": st.column_config.NumberColumn(format="%d"),
                                **{f"{m}_change": pts for m in ("success_rate", "human_share", "error_rate",
                                                                 "retry_rate")}})
    trend_metric = st.selectbox("Trend of", analytics.SERVICE_METRICS[1:], key="trend",
                                format_func=lambda m: m.replace("_", " "))
    st.plotly_chart(viz_ops.service_trend(ops.service_trend(flt), trend_metric))

with st.expander("Drift: compare two versions or the last two weeks"):
    mode = st.radio("Compare", ["two versions", "the last two weeks"], horizontal=True, key="drift_mode")
    if mode == "two versions":
        versions = ui.filter_options()["agent_versions"]
        if not versions:
            st.info("No agent versions recorded.")
            st.stop()
        agent = st.selectbox("Agent", list(versions), key="drift_agent")
        c1, c2 = st.columns(2)
        va = c1.selectbox("Baseline version (A)", versions[agent], key="drift_a")
        vb = c2.selectbox("Candidate version (B)", versions[agent], index=len(versions[agent]) - 1, key="drift_b")
        a, b = RunFilter(agent=agent, agent_version=va), RunFilter(agent=agent, agent_version=vb)
    else:
        a, b = ops.last_two_weeks(flt)
    table = ops.drift_table(a, b)
    st.text(f"{int(table['significant'].sum())} significant change(s) after a Holm correction (alpha 0.05)")
    st.dataframe(table, hide_index=True, placeholder="–",
                 column_config={"p_value": st.column_config.NumberColumn(format="%.2e"),
                                "p_adjusted": st.column_config.NumberColumn(format="%.2e"),
                                "significant": st.column_config.CheckboxColumn("Significant")})
