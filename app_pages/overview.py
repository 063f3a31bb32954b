"""Overview: service levels of the selected runs and how they move week by week and by version."""

import streamlit as st

from workbench import ui, viz

ui.require_data()
st.title("Overview")
flt = ui.filter_sidebar()
ov = ui.overview(flt)

if ov.n_runs == 0:
    st.info("No runs match these filters.")
    st.stop()

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
