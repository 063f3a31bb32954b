"""Replay: walk one run step by step. `?run=...&step=...` opens the same view for a colleague.

Header (who, how it ended, cost, labels, loop findings), the step list with nesting, the selected step in full,
prev/next and jumps with keyboard shortcuts, a waterfall and a context/cost chart. Trace text is shown with
st.text / st.code / st.dataframe only (see workbench_ui/replay.py).
"""

import streamlit as st

import workbench_ui as ui
from workbench import viz
from workbench_ui import replay as ur

ui.require_data()
st.title("Replay")

run_id = st.text_input("Run id", key="run", bind="query-params", placeholder="paste a run id").strip()
if not run_id:
    st.info("Paste a run id above, or open a run from the Runs page.")
    st.page_link("app_pages/runs.py", label="Go to Runs", icon=":material/table_rows:")
    st.stop()

rp = ur.load(run_id)
if rp is None:
    st.warning("No run with this id in the database. Check the id, or find the run on the Runs page.")
    st.code(run_id, language=None)
    st.stop()

ur.run_header(rp)
st.page_link("app_pages/compare.py", label="Compare with another run (default: nearest success)",
             icon=":material/compare_arrows:", query_params={"a": run_id})
if rp.steps.empty:
    st.info("This run has no steps.")
    st.stop()

cur = ur.current_index(rp)
ur.step_nav(rp, cur)
left, right = st.columns([5, 6])
with left:
    ur.step_list(rp, cur)
with right:
    ur.step_detail(rp, cur)

chart_key = f"replay.waterfall.{run_id}"
st.plotly_chart(viz.waterfall(rp.steps, selected=cur), key=chart_key, on_select=lambda: ur.waterfall_selected(
    rp, chart_key), selection_mode="points")
st.plotly_chart(viz.step_costs(rp.steps))
