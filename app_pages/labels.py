"""Labels: agreement between reviewers and settling disagreements, every label and event, counts by version and
week, the taxonomy (edit or load a file), bulk labeling of a filter with a one-step undo, assignments.

Codes, notes, names and run ids are shown as text (st.text / st.code / st.dataframe), never as Markdown.
"""

import streamlit as st

import workbench_ui as ui
from workbench import viz
from workbench_ui import labels_admin as la
from workbench_ui import review as rv

ui.require_data()
st.title("Labels")
me = rv.reviewer()
flt = ui.filter_sidebar()
la.last_message()
tax = rv.taxonomy()

agree, logs, counts, taxo, bulk = st.tabs(["Agreement", "Labels and history", "Counts", "Taxonomy",
                                           "Bulk and assign"])
with agree:
    imported = st.checkbox("Include imported labels (reviewer 'imported', e.g. from Who&When)", key="labels.imported")
    people = [p for p in rv.progress()["reviewer"]] + (["imported"] if imported else [])
    chosen = st.multiselect("Reviewers (all when empty)", people, key="labels.reviewers")
    table, dis = la.agreement(tuple(chosen), imported)
    if table.empty:
        st.info("No agreement yet: it needs runs labeled by at least two reviewers.")
    else:
        la.agreement_table(table)
    st.subheader("Disagreements")
    la.settle_form(dis, me)

with logs:
    current, history, settled = la.label_log()
    st.subheader(f"Current labels ({len(current):,})")
    rv.labels_table(current, key="labels.current")
    st.subheader(f"Settled ({len(settled):,})")
    st.dataframe(settled, hide_index=True, key="labels.settled")
    st.subheader(f"History ({len(history):,} events)")
    rv.labels_table(history.iloc[::-1], key="labels.history")

with counts:
    st.plotly_chart(viz.label_counts(la.label_counts("agent_version"), "agent_version"), key="labels.by_version")
    st.plotly_chart(viz.label_counts(la.label_counts("week"), "week"), key="labels.by_week")

with taxo:
    la.taxonomy_editor(tax)

with bulk:
    st.subheader("Label every run of the filter")
    la.bulk_form(flt, me, tax)
    st.subheader("Assign runs to a reviewer")
    la.assign_form(flt, me)
