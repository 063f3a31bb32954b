"""Review: the next unlabeled failure, replayed, labeled by keyboard (`?run=ID` opens one run for labeling).

Label keys as on the buttons (1-9, 0 and letters), N next, S skip, U undo, G run/step target; J/K/E/T/L move
through the run as on Replay. Trace text is shown with st.text / st.code / st.dataframe only.
"""

import streamlit as st

import workbench_ui as ui
from workbench_ui import replay as ur
from workbench_ui import review as rv

ui.require_data()
st.title("Review")
me = rv.reviewer()
flt = ui.filter_sidebar()
run_id = rv.current_run(me, flt)
rv.last_message()

if run_id is None:
    st.success("No unlabeled failures left for this filter.", icon=":material/task_alt:")
    if rv.skipped():
        st.text(f"{len(rv.skipped())} run(s) skipped in this session come back in a new session.")
    st.dataframe(rv.progress(), hide_index=True)
    st.stop()

rp = ur.load(run_id)
if rp is None:
    st.warning("No run with this id in the database. Press N for the next unlabeled failure.")
    st.code(run_id, language=None)
    rv.label_pad(run_id, me, flt, step_text=None)
    st.stop()

ur.run_header(rp)
cur = ur.current_index(rp) if not rp.steps.empty else None
step = None if cur is None else rp.steps.iloc[cur]
rv.label_pad(run_id, me, flt, step_text=None if step is None else f"#{step['seq']} {step['label'].strip()}")

current, events = rv.run_labels(run_id)
st.subheader("Labels on this run")
if current.empty:
    st.caption("No labels yet.")
else:
    rv.labels_table(current, key="review.current")
with st.expander(f"History of this run ({len(events)} events)"):
    rv.labels_table(events, key="review.history")

if cur is not None:
    ur.step_nav(rp, cur)
    left, right = st.columns([5, 6])
    with left:
        ur.step_list(rp, cur, height=420)
    with right:
        ur.step_detail(rp, cur)

st.subheader("Progress")
st.text(f"skipped in this session: {len(rv.skipped())}")
st.dataframe(rv.progress(), hide_index=True)
