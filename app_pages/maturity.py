"""Maturity: the AgentOps maturity scorecard (8 dimensions x 5 levels) from the store's evidence and the
questionnaire, the remediation plan, snapshots and downloads. Agent names in the scope are shown as text."""

import streamlit as st

import workbench_ui as ui
from workbench import viz
from workbench.maturity_report import PRIORITY_RULE
from workbench_ui import maturity as um

ui.require_data()
st.title("Maturity")
name = st.sidebar.text_input("Scope", value="fleet", key="maturity_name",
                             help="Snapshots of one scope are compared with each other.").strip() or "fleet"

with st.expander("Questionnaire: developer experience and organizational enablement", expanded=False):
    answers = um.questionnaire(name)
a = um.assessment(answers, name)

scope = a.scope
st.text(f"{scope['runs']:,} runs · formats: {', '.join(scope['formats'])} · agents: {', '.join(scope['agents'])}"
        + (f" and {scope['more_agents']} more" if scope["more_agents"] else ""))
st.text("Compared with the snapshot of " + f"{a.previous.taken_at:%Y-%m-%d %H:%M} UTC" if a.previous
        else "No saved snapshot of this scope yet: save one to see the movement next time.")
st.plotly_chart(viz.maturity_radar(a.dimensions), key="maturity_radar")

st.subheader("Levels")
um.dimension_table(a)
st.subheader("Remediation")
st.caption(f"Unmet criteria of each dimension's next level, highest {PRIORITY_RULE} first.")
um.remediation_table(a)

st.subheader("Snapshots")
if st.button("Save snapshot", key="maturity_save", type="primary"):
    st.session_state["_maturity_saved"] = um.save(answers, name)
    st.rerun()
saved = st.session_state.pop("_maturity_saved", None)
if saved:
    st.success(f"Snapshot {saved} saved.")
st.dataframe(um.snapshots(name), hide_index=True, key="maturity_snapshots")
um.downloads(a)
