"""Streamlit glue of the Maturity page: the cached assessment, the questionnaire form, snapshots and downloads.

The assessment is cached on (database, answers, scope name, data version): saving a snapshot bumps the data
version, so the next run compares with it. Reasons and actions come from the framework file and numbers; the
scope's agent names come from traces, so they are shown with st.text, and tables with st.dataframe.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from workbench import maturity
from workbench.maturity_framework import Framework, default_framework
from workbench_ui import _store, data_version, db_path, get_store

NOT_ANSWERED = "(not answered)"
_KEY = "maturity.q."


@st.cache_data(max_entries=16, show_spinner="Measuring the evidence ...")
def _assessment(db: str, answers_json: str, name: str, version: int) -> maturity.Assessment:
    return maturity.assess(_store(db), json.loads(answers_json), name=name)


def assessment(answers: dict[str, str], name: str) -> maturity.Assessment:
    """Cached `maturity.assess` of the served store with these answers."""
    return _assessment(db_path(), json.dumps(answers, sort_keys=True), name, data_version())


@st.cache_data(max_entries=8, show_spinner=False)
def _snapshots(db: str, name: str | None, version: int) -> pd.DataFrame:
    return maturity.list_assessments(_store(db), name)


def snapshots(name: str | None = None) -> pd.DataFrame:
    """Saved snapshots, newest first, with the level of each dimension."""
    return _snapshots(db_path(), name, data_version())


@st.cache_data(max_entries=8, show_spinner=False)
def _latest_answers(db: str, name: str, version: int) -> dict[str, str]:
    return maturity.latest_answers(_store(db), name)


def questionnaire(name: str, framework: Framework | None = None) -> dict[str, str]:
    """The questionnaire as a form, started from the latest snapshot's answers; returns the submitted answers
    (unanswered questions left out)."""
    fw = framework or default_framework()
    start = _latest_answers(db_path(), name, data_version())
    with st.form("maturity_questionnaire"):
        for dim in (d for d in fw.dimensions if d.questions):
            st.subheader(dim.name)
            for q in dim.questions:
                key = _KEY + q.id
                options = [NOT_ANSWERED, *q.choices]
                if key not in st.session_state or st.session_state[key] not in options:
                    st.session_state[key] = start.get(q.id, NOT_ANSWERED)
                st.radio(q.text, options, key=key, horizontal=True)
        st.form_submit_button("Use these answers", type="primary")
    return {q.id: st.session_state[_KEY + q.id] for q in fw.questions()
            if st.session_state.get(_KEY + q.id, NOT_ANSWERED) != NOT_ANSWERED}


def save(answers: dict[str, str], name: str) -> str:
    """Assess now with these answers and store the snapshot; returns its id."""
    store = get_store()
    return maturity.save_assessment(store, maturity.assess(store, answers, name=name))


def dimension_table(a: maturity.Assessment) -> None:
    st.dataframe(a.dimensions, hide_index=True, key="maturity_dimensions",
                 column_order=["name", "level", "level_name", "movement", "evidence", "reason", "to_raise"],
                 column_config={"name": "Dimension", "level": st.column_config.NumberColumn("Level", format="%d"),
                                "level_name": "Level name", "movement": "Since last snapshot",
                                "evidence": "Evidence",
                                "reason": st.column_config.TextColumn("Why", width="large"),
                                "to_raise": st.column_config.TextColumn("What would raise it", width="large")})


def remediation_table(a: maturity.Assessment) -> None:
    st.dataframe(a.remediation, hide_index=True, key="maturity_remediation",
                 column_order=["rank", "dimension_name", "target_level", "action", "evidence", "current", "target",
                               "risk", "impact", "effort", "priority"],
                 column_config={"rank": st.column_config.NumberColumn("#", format="%d"),
                                "dimension_name": "Dimension", "target_level": "To level",
                                "action": st.column_config.TextColumn("Action", width="large"),
                                "evidence": "Progress shown by", "current": "Now", "target": "Target",
                                "priority": st.column_config.NumberColumn("Priority", format="%.2f")})


def downloads(a: maturity.Assessment) -> None:
    cols = st.columns(3)
    cols[0].download_button("Download Markdown", a.to_markdown(), "scorecard.md", mime="text/markdown",
                            key="maturity_md")
    cols[1].download_button("Download HTML", a.to_html(), "scorecard.html", mime="text/html", key="maturity_html")
    cols[2].download_button("Download JSON", a.to_json(), "scorecard.json", mime="application/json",
                            key="maturity_json")
