"""Compare: two runs aligned step by step. `?a=...&b=...`; without `b`, A's nearest successful run.

The runs side by side with their deltas, where they first diverge, the aligned steps (only the differences
if asked), and one aligned pair in full with argument and result diffs.
"""

import streamlit as st

import workbench_ui as ui
from workbench_ui import compare as uc
from workbench_ui import replay as ur

ui.require_data()
st.title("Compare")

left, right = st.columns(2)
a = left.text_input("Run A", key="a", bind="query-params", placeholder="run id, e.g. a failed run").strip()
b_given = right.text_input("Run B", key="b", bind="query-params",
                           placeholder="empty: the nearest successful run of the same task").strip()
if not a:
    st.info("Paste the id of run A (a failure, say). B defaults to the nearest successful run with the same "
            "task or input, another version or trial when there is one.")
    st.stop()

b = b_given or ur.nearest_success(a)
if not b:
    st.info("No successful run with the same task or input as A was found; paste a run id for B.")
    st.code(a, language=None)
    st.stop()
if not b_given:
    st.caption("B is the nearest successful run of the same task (or input) as A.")

cmp = uc.load(a, b)
if cmp is None:
    st.warning("One of these run ids is not in the database.")
    st.code(f"A: {a}\nB: {b}", language=None)
    st.stop()

uc.runs_side_by_side(cmp)
st.subheader("First divergence")
st.text(cmp.divergence_text())
st.subheader("Aligned steps")
only = st.toggle("Only differences", key="compare.only")
row = uc.aligned_steps(cmp, only)
if row is not None:
    st.subheader("Pair in full")
    uc.pair_in_full(cmp, row)
