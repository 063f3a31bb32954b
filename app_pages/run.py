"""Run: one run's header and its steps in order; a selected step shows its messages, tool call and result.

Everything that came from a trace is shown with st.text / st.code / st.dataframe, never as Markdown: a trace
may hold HTML or a Markdown image that would make the reviewer's browser fetch an outside URL.
"""

import json

import pandas as pd
import streamlit as st

from workbench import ui

ui.require_data()
st.title("Run")

run_id = st.text_input("Run id", key="run", bind="query-params", placeholder="paste a run id").strip()
if not run_id:
    st.info("Paste a run id above, or open a run from the Runs page.")
    st.page_link("app_pages/runs.py", label="Go to Runs", icon=":material/table_rows:")
    st.stop()

run = ui.get_run(run_id)
if run is None:
    st.warning("No run with this id in the database. Check the id, or find the run on the Runs page.")
    st.code(run_id, language=None)
    st.stop()


# -- header -----------------------------------------------------------------------------------------------
st.code(run["run_id"], language=None)
st.text(
    f"agent: {run['agent'] or '–'}   version: {run['agent_version'] or '–'}   "
    f"outcome: {run['outcome'] or '–'}   status: {run['status'] or '–'}   format: {run['format']}"
)
st.text(
    f"started: {run['started_at'] or '–'}   native id: {run['native_id']}   task: {run['task_id'] or '–'}"
)
tokens = None
if run["input_tokens"] is not None or run["output_tokens"] is not None:
    tokens = (run["input_tokens"] or 0) + (run["output_tokens"] or 0)
cols = st.columns(5)
cols[0].metric("Duration", ui.fmt_duration(run["duration_ms"]))
cols[1].metric("Steps", ui.fmt_int(run["n_steps"]))
cols[2].metric("Errors", ui.fmt_int(run["n_errors"]))
cols[3].metric("Tokens", ui.fmt_int(tokens))
cols[4].metric("Cost (estimated)" if run["cost_estimated"] else "Cost", ui.fmt_cost(run["cost_usd"]))

with st.expander("Input, output and error", expanded=True):
    ui.text_block("input", run["input"])
    ui.text_block("output", run["output"])
    ui.text_block("error", run["error"])

# -- steps ------------------------------------------------------------------------------------------------
st.subheader("Steps")
steps = ui.run_steps(run_id)
if steps.empty:
    st.info("This run has no steps.")
    st.stop()

table = steps.copy()
# Indent by depth so the tree reads top to bottom; non-breaking spaces because the grid trims plain ones.
table["step"] = [
    "\u2003" * int(d if pd.notna(d) else 0) + ("└ " if pd.notna(d) and d > 0 else "")
    + str(n if pd.notna(n) and n else k)
    for d, n, k in zip(table["depth"], table["name"], table["kind"], strict=True)
]
step_ids = list(table["step_id"])
# `?step=` preselects a step when the page opens on this run; after another run is pasted, it is stale.
if st.session_state.get("_step_run", run_id) != run_id:
    ui.set_query_param("step", None)
st.session_state["_step_run"] = run_id
linked = ui.query_param("step")
default_rows = [step_ids.index(linked)] if linked in step_ids else []
event = st.dataframe(
    table,
    hide_index=True,
    placeholder="–",
    key=f"steps:{run_id}",
    on_select="rerun",
    selection_mode="single-row",
    selection_default={"selection": {"rows": default_rows}},
    height=min(38 + 35 * len(table), 560),
    column_order=["seq", "step", "kind", "status", "duration_ms", "model", "tool_name", "tokens", "cost_usd",
                  "error"],
    column_config={
        "seq": st.column_config.NumberColumn("#", format="%d", width="small"),
        "step": st.column_config.TextColumn("Step", width="large"),
        "kind": "Kind",
        "status": "Status",
        "duration_ms": st.column_config.NumberColumn("Duration (ms)", format="%.0f"),
        "model": "Model",
        "tool_name": "Tool",
        "tokens": st.column_config.NumberColumn("Tokens", format="%d"),
        "cost_usd": st.column_config.NumberColumn("Cost (USD)", format="$%.5f"),
        "error": st.column_config.TextColumn("Error", width="medium"),
    },
)
rows = event.selection.rows if event is not None else []
selected = step_ids[rows[0]] if rows else None
# The URL follows the selection, so `?run=...&step=...` opens the same view for a colleague.
ui.set_query_param("step", selected)
if selected is None:
    st.caption("Select a step to see its messages, tool call and result.")
    st.stop()

step = ui.get_step(run_id, selected)
if step is None:  # the data changed under us; nothing sensible to show
    st.stop()
st.subheader("Step detail")
st.text(f"step {step['seq']}: {step['kind']} · {step['name'] or '–'} · status {step['status'] or '–'}"
        + (f" · model {step['model']}" if step["model"] else "")
        + (f" · tool {step['tool_name']}" if step["tool_name"] else ""))
ui.text_block("error", step["error"])

messages = None
if step["messages"]:
    try:
        messages = json.loads(step["messages"])
    except ValueError:
        ui.text_block("messages (raw)", step["messages"])
for i, message in enumerate(messages if isinstance(messages, list) else []):
    if not isinstance(message, dict):
        message = {"content": message}
    content = message.get("content")
    if content is not None and not isinstance(content, str):  # multi-part content: show its JSON
        content = json.dumps(content, indent=2, ensure_ascii=False)
    ui.text_block(f"message {i} · {message.get('role', '?')}", content)
    if message.get("tool_calls"):
        calls = json.dumps(message["tool_calls"], indent=2, ensure_ascii=False)
        ui.text_block(f"message {i} · tool calls", calls, language="json")
ui.text_block("tool arguments", ui.pretty_json(step["tool_args"]), language="json")
ui.text_block("tool result", step["tool_result"])
