"""Runs: filter, sort and page through runs; open one (link cell, or select a row)."""

from urllib.parse import quote

import streamlit as st

import workbench_ui as ui
from workbench import queries

SORT_LABELS = {
    "started_at": "Started", "duration_ms": "Duration", "cost_usd": "Cost", "tokens": "Tokens",
    "n_steps": "Steps", "n_errors": "Errors", "agent": "Agent", "agent_version": "Version",
    "outcome": "Outcome", "status": "Status", "format": "Format", "run_id": "Run id",
}
PAGE_SIZES = (25, 50, 100)
BOUND = {"bind": "query-params"}

ui.require_data()
st.title("Runs")
flt = ui.filter_sidebar()
total = ui.count_runs(flt)

c_sort, c_dir, c_size, c_page = st.columns([2, 1, 1, 1])
sort = c_sort.selectbox("Sort by", list(queries.SORTABLE), format_func=lambda k: SORT_LABELS.get(k, k),
                        key="sort", **BOUND)
order = c_dir.selectbox("Order", ("desc", "asc"), format_func={"desc": "Descending", "asc": "Ascending"}.get,
                        key="order", **BOUND)
size = c_size.selectbox("Rows per page", PAGE_SIZES, index=1, key="size", **BOUND)

# A new filter, sort or page size starts again at page 1; the page number is kept only for the same list.
signature = (flt, sort, order, size)
if st.session_state.get("_runs_signature", signature) != signature:
    st.session_state["page"] = 1
st.session_state["_runs_signature"] = signature
n_pages = max(1, -(-total // size))
if st.session_state.get("page", 1) > n_pages:
    st.session_state["page"] = n_pages
page = c_page.number_input("Page", min_value=1, max_value=n_pages, step=1, key="page",
                           **BOUND)

result = ui.runs_page(flt, sort, order == "desc", int(page) - 1, size)
if result.total == 0:
    st.info("No runs match these filters.")
    st.stop()
st.caption(
    f"rows {result.first_row:,}–{result.last_row:,} of {result.total:,} "
    f"· page {result.page + 1:,} of {result.n_pages:,}"
)

frame = result.frame
# The link opens the run in a new tab (a URL a colleague can use too); selecting a row opens it here.
frame.insert(0, "open", ["run?run=" + quote(str(rid), safe="") for rid in frame["run_id"]])
event = st.dataframe(
    frame,
    hide_index=True,
    placeholder="–",
    key="runs_table",
    on_select="rerun",
    selection_mode="single-row",
    height=min(38 + 35 * len(frame), 720),
    column_order=["open", "started_at", "agent", "agent_version", "outcome", "status", "duration_ms",
                  "n_steps", "n_errors", "tokens", "cost_usd", "cost_estimated", "format", "task_id",
                  "input", "error"],
    column_config={
        "open": st.column_config.LinkColumn("Run", display_text=r"run\?run=(.*)", width="medium",
                                            help="Open the run in a new tab"),
        "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "agent": "Agent",
        "agent_version": "Version",
        "outcome": "Outcome",
        "status": "Status",
        "duration_ms": st.column_config.NumberColumn("Duration (ms)", format="%.0f"),
        "n_steps": st.column_config.NumberColumn("Steps", format="%d"),
        "n_errors": st.column_config.NumberColumn("Errors", format="%d"),
        "tokens": st.column_config.NumberColumn("Tokens", format="%d"),
        "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="$%.4f"),
        "cost_estimated": st.column_config.CheckboxColumn("Est.", help="Cost estimated from the price table"),
        "format": "Format",
        "task_id": "Task",
        "input": st.column_config.TextColumn("Input", width="large"),
        "error": st.column_config.TextColumn("Error", width="medium"),
    },
)
rows = event.selection.rows if event is not None else []
if rows:
    st.switch_page("app_pages/run.py", query_params={"run": str(frame["run_id"].iloc[rows[0]])})
