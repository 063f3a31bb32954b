"""Costs: where the money goes (model, provider, agent, version, tool, step kind, label, day or week), tokens,
money spent on failures, loops and retries, the most expensive runs, and runs outside their budget."""

import streamlit as st

import workbench_ui as ui
from workbench import analytics, viz_ops
from workbench_ui import ops

ui.require_data()
st.title("Costs")
flt = ui.filter_sidebar()
if ui.count_runs(flt) == 0:
    st.info("No runs match these filters.")
    st.stop()

w = ops.waste(flt)
total = w["total_usd"]


def share(part: float) -> str:
    return f"{part / total:.1%} of all" if total else "–"


cols = st.columns(5)
cols[0].metric("Total cost", ui.fmt_cost(total))
cols[1].metric("On failed runs", ui.fmt_cost(w["failed_runs_usd"]), share(w["failed_runs_usd"]), delta_color="off", delta_arrow="off")
cols[2].metric("On loops", ui.fmt_cost(w["loops_usd"]), share(w["loops_usd"]), delta_color="off", delta_arrow="off",
               help="The LLM cost behind tool calls that repeated an identical earlier call (same tool, same "
                    "arguments).")
cols[3].metric("On retries", ui.fmt_cost(w["retries_usd"]), share(w["retries_usd"]), delta_color="off", delta_arrow="off",
               help="The LLM cost behind calls made again after a failed call of the same tool, and LLM calls "
                    "repeated after a failed LLM call.")
cols[4].metric("Estimated", ui.fmt_cost(w["estimated_usd"]), share(w["estimated_usd"]), delta_color="off", delta_arrow="off",
               help="Cost computed from the price table because the trace had tokens but no cost; "
                    f"reported by the source: {ui.fmt_cost(w['reported_usd'])}.")

by = st.selectbox("Break down by", analytics.DIMENSIONS, key="by", bind="query-params",
                  format_func=lambda d: d.replace("_", " "))
frame = ops.cost_breakdown(by, flt)
left, right = st.columns(2)
left.plotly_chart(viz_ops.cost_bars(frame, by))
right.plotly_chart(viz_ops.token_split(frame, by))
money = st.column_config.NumberColumn(format="$%.4f")
st.dataframe(frame, hide_index=True, placeholder="–",
             column_config={"key": st.column_config.TextColumn(by.replace("_", " ")), "cost_usd": money,
                            "reported_usd": money, "estimated_usd": money,
                            "share": st.column_config.NumberColumn(format="percent")})

st.subheader("Over time")
c1, c2 = st.columns(2)
grain = c1.radio("Per", ["week", "day"], horizontal=True, key="grain")
split = c2.radio("Split by", ["agent", "agent_version", "outcome"], horizontal=True, key="split",
                 format_func=lambda d: d.replace("_", " "))
st.plotly_chart(viz_ops.cost_over_time(ops.cost_trend(grain, split, flt), f"Cost per {grain} by {split}"))

st.subheader("Most expensive runs")
top = ops.top_runs(flt, 20)
st.dataframe(top.assign(open=[f"run?run={r}" for r in top["run_id"]]), hide_index=True, placeholder="–",
             column_order=["open", "agent", "agent_version", "outcome", "started_at", "cost_usd", "cost_estimated",
                           "tokens", "n_steps", "n_llm_calls", "n_tool_calls"],
             column_config={"open": st.column_config.LinkColumn("Run", display_text=r"run\?run=(.*)"),
                            "cost_usd": money, "cost_estimated": "Estimated"})

st.subheader("Budgets")
summary, breaches, problem = ops.budget_report(flt)
if problem:
    st.error("The budgets file could not be read.")
    st.code(problem, language=None, wrap_lines=True)
elif summary is None:
    st.info("No budgets configured. Put cost, duration and token envelopes per agent in budgets.toml next to "
            "the database (or name a file with WORKBENCH_BUDGETS); see docs/analytics.md.")
    st.text(f"Looked for: {ops.budgets_file()}")
else:
    st.dataframe(summary, hide_index=True, placeholder="–",
                 column_config={"share_outside": st.column_config.NumberColumn("Outside", format="percent")})
    st.text(f"{len(breaches):,} run(s) outside their envelope")
    if len(breaches):
        st.dataframe(breaches.assign(open=[f"run?run={r}" for r in breaches["run_id"]]), hide_index=True,
                     placeholder="–", column_order=["open", "agent", "agent_version", "started_at", "outcome",
                                                    "cost_usd", "max_cost_usd", "duration_ms", "max_duration_ms",
                                                    "tokens", "max_tokens", "over_cost", "over_duration",
                                                    "over_tokens"],
                     column_config={"open": st.column_config.LinkColumn("Run", display_text=r"run\?run=(.*)"),
                                    "cost_usd": money})
