"""Streamlit pieces of the Labels page: agreement and settling disagreements, the label log, counts, the
taxonomy editor, bulk labeling with a confirmation and a one-step undo, and assignments.

Run ids, codes, notes and reviewer names are data: they reach the page through st.text, st.code,
st.dataframe and option lists (which Streamlit shows as plain text), never through Markdown.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from workbench import labels
from workbench.queries import RunFilter
from workbench.taxonomy import Taxonomy
from workbench_ui import _store, count_runs, data_version, db_path, get_store

_BATCH, _MSG = "labels.batch", "labels.message"
_SETTLE_GEN = "labels.settle_gen"


def _say(kind: str, text: str) -> None:
    st.session_state[_MSG] = (kind, text)


def last_message() -> None:
    """What the last action on this page did: a short fixed sentence as an alert, the details as code."""
    kind, text = st.session_state.pop(_MSG, ("", ""))
    if kind == "error":
        st.error("That did not work:", icon=":material/error:")
        st.code(text, language=None, wrap_lines=True)
    elif text:
        st.text("✓ " + text)


# -- cached reads -------------------------------------------------------------------------------------------
@st.cache_data(max_entries=16, show_spinner=False)
def _agreement(db: str, reviewers: tuple[str, ...], imported: bool, version: int) -> tuple[pd.DataFrame, ...]:
    store = _store(db)
    who = list(reviewers) or None
    return (labels.agreement(store, who, include_imported=imported),
            labels.disagreements(store, who, include_imported=imported))


def agreement(reviewers: tuple[str, ...], include_imported: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cached `labels.agreement` and `labels.disagreements` for the chosen reviewers."""
    return _agreement(db_path(), reviewers, include_imported, data_version())


@st.cache_data(max_entries=8, show_spinner=False)
def _log(db: str, version: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    store = _store(db)
    return labels.current_labels(store), labels.history(store), labels.settled_labels(store)


def label_log() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cached current labels (imported ones included), the whole event history, and the settlements."""
    return _log(db_path(), data_version())


@st.cache_data(max_entries=8, show_spinner=False)
def _counts(db: str, by: str, version: int) -> pd.DataFrame:
    return labels.label_counts(_store(db), by)


def label_counts(by: str) -> pd.DataFrame:
    """Cached `labels.label_counts`."""
    return _counts(db_path(), by, data_version())


@st.cache_data(max_entries=16, show_spinner=False)
def _run_ids(db: str, flt: RunFilter, failures_only: bool, version: int) -> list[str]:
    return labels.run_ids(_store(db), flt, failures_only=failures_only)


def run_ids(flt: RunFilter, *, failures_only: bool = False) -> list[str]:
    """Cached `labels.run_ids`: the runs a bulk action or an assignment would touch."""
    return _run_ids(db_path(), flt, failures_only, data_version())


# -- agreement and settling ---------------------------------------------------------------------------------
def agreement_table(frame: pd.DataFrame) -> None:
    st.dataframe(frame, hide_index=True, key="labels.agreement", column_config={
        "code": "Code", "reviewers": st.column_config.NumberColumn("Reviewers", format="%d"),
        "runs": st.column_config.NumberColumn("Runs rated by both / several", format="%d"),
        "statistic": st.column_config.TextColumn("Statistic", help="cohen_kappa for two reviewers, "
                                                 "krippendorff_alpha (nominal) for three or more"),
        "value": st.column_config.NumberColumn("Value", format="%.3f"),
        "raw_agreement": st.column_config.NumberColumn("Raw agreement", format="percent"),
    })


def _settle(run_id: str, code: str, me: str) -> None:
    applies = st.session_state.get("labels.applies") == "applies"
    note = st.session_state.get("labels.settle_note") or None
    try:
        labels.settle(get_store(), run_id, code, applies, me, note=note)
    except ValueError as exc:
        _say("error", str(exc))
        return
    _say("ok", f"settled {code} on {run_id}: {'applies' if applies else 'does not apply'}")
    st.session_state["labels.settle_note"] = ""
    st.session_state[_SETTLE_GEN] = st.session_state.get(_SETTLE_GEN, 0) + 1


def settle_form(dis: pd.DataFrame, me: str) -> None:
    """Pick a disagreement, decide whether the code applies, add a note; the votes stay as they were."""
    if dis.empty:
        st.caption("No open disagreements.")
        return
    st.dataframe(dis, hide_index=True, key="labels.disagreements",
                 column_config={"yes_by": "Applied by", "no_by": "Not applied by"})
    options = list(range(len(dis)))
    pick = st.selectbox("Disagreement to settle", options, key=f"labels.pick.{st.session_state.get(_SETTLE_GEN, 0)}",
                        format_func=lambda i: f"{dis.at[i, 'run_id']} · {dis.at[i, 'code']} "
                                              f"(yes: {dis.at[i, 'yes_by']}; no: {dis.at[i, 'no_by']})")
    row = dis.iloc[pick]
    left, mid, right = st.columns([2, 4, 1])
    left.radio("Decision", ("applies", "does not apply"), key="labels.applies", horizontal=True)
    mid.text_input("Note (optional)", key="labels.settle_note")
    right.button("Settle", key="labels.settle", type="primary", on_click=_settle,
                 args=(str(row["run_id"]), str(row["code"]), me))
    st.page_link("app_pages/review.py", label="Open this run in Review", icon=":material/label:",
                 query_params={"run": str(row["run_id"])})


# -- taxonomy -----------------------------------------------------------------------------------------------
def _load_taxonomy(text: str, what: str) -> None:
    try:
        tax = labels.load_taxonomy(get_store(), labels.parse_taxonomy(text))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        _say("error", f"{what}: {exc}")
        return
    _say("ok", f"taxonomy {tax.version} is now in use ({len(tax.labels)} codes)")


def _load_upload() -> None:
    upload = st.session_state.get("labels.tax_file")
    if upload is None:
        _say("error", "choose a .toml file first")
        return
    try:
        text = upload.getvalue().decode("utf-8")
    except UnicodeDecodeError:
        _say("error", f"{upload.name}: not UTF-8 text")
        return
    _load_taxonomy(text, upload.name)


def taxonomy_editor(tax: Taxonomy) -> None:
    """The taxonomy in use as a table; edit it as TOML in place, or load a .toml file (a new version)."""
    st.text(f"version {tax.version} · {len(tax.labels)} codes")
    st.dataframe(pd.DataFrame([lb.model_dump() for lb in tax.labels]), hide_index=True, key="labels.taxonomy",
                 column_order=["key", "code", "name", "description"])
    up, _ = st.columns([3, 2])
    up.file_uploader("Load a taxonomy file (.toml)", type=["toml"], key="labels.tax_file")
    up.button("Use this file", key="labels.tax_load", on_click=_load_upload)
    with st.expander("Edit as TOML"):
        key = f"labels.tax_text.{tax.version}"  # a new version starts from its own text
        st.text_area("Taxonomy (TOML, [[label]] entries)", value=tax.to_toml(), height=400, key=key)
        st.button("Save as a new version", key="labels.tax_save",
                  on_click=lambda: _load_taxonomy(st.session_state.get(key, ""), "edited taxonomy"))


# -- bulk labeling and assignment ---------------------------------------------------------------------------
def _bulk(ids: list[str], code: str, me: str, severity: str | None, note: str | None) -> None:
    try:
        batch = labels.bulk_label(get_store(), ids, code, me, severity=severity, note=note)
    except ValueError as exc:
        _say("error", str(exc))
        return
    st.session_state[_BATCH] = {"batch": batch, "runs": len(ids), "code": code}
    _say("ok", f"labeled {len(ids):,} runs with {code}")


@st.dialog("Label all these runs?")
def _confirm(ids: list[str], code: str, me: str, severity: str | None, note: str | None) -> None:
    st.text(f"This adds {code} to {len(ids):,} run(s): every run the current filter selects, as {me}.")
    st.text("Undo takes the whole batch back in one step.")
    yes, no = st.columns(2)
    if yes.button(f"Label {len(ids):,} runs", key="labels.bulk_yes", type="primary", on_click=_bulk,
                  args=(ids, code, me, severity, note)):
        st.rerun()
    if no.button("Cancel", key="labels.bulk_no"):
        st.rerun()


def _undo_bulk(me: str) -> None:
    done: dict[str, Any] = st.session_state.pop(_BATCH, {})
    if done:
        n = labels.undo_batch(get_store(), done["batch"], me)
        _say("ok", f"undone: {done['code']} taken back from {n:,} runs")


def bulk_form(flt: RunFilter, me: str, tax: Taxonomy) -> None:
    """Label every run the filter selects with one code, after a confirmation that says how many; then undo."""
    n = count_runs(flt)
    names = tax.names()
    left, mid, right = st.columns([3, 1, 3])
    code = left.selectbox("Code", tax.codes(), key="labels.bulk_code", format_func=lambda c: f"{c} · {names[c]}")
    severity = mid.selectbox("Severity", labels.SEVERITIES, index=None, key="labels.bulk_severity",
                             placeholder="none")
    note = right.text_input("Note (optional)", key="labels.bulk_note") or None
    st.text(f"the current filter (sidebar) selects {n:,} run(s)")
    if st.button(f"Label {n:,} runs…", key="labels.bulk", disabled=n == 0):
        _confirm(run_ids(flt), code, me, severity, note)
    done = st.session_state.get(_BATCH)
    if done:
        st.text(f"last bulk action: {done['code']} on {done['runs']:,} runs")
        st.button("Undo this bulk action", key="labels.bulk_undo", on_click=_undo_bulk, args=(me,))


def _assign(ids: list[str], me: str) -> None:
    who = " ".join(str(st.session_state.get("labels.assignee") or "").split())
    if not who:
        _say("error", "type the reviewer's name first")
        return
    n = labels.assign(get_store(), ids, who, assigned_by=me)
    _say("ok", f"assigned {n:,} failed runs to {who}")


def assign_form(flt: RunFilter, me: str) -> None:
    """Put the filter's failed runs in a reviewer's queue (assigning the same runs to two people gets them
    two votes each)."""
    ids = run_ids(flt, failures_only=True)
    left, right = st.columns([2, 3])
    left.text_input("Reviewer", key="labels.assignee")
    right.button(f"Assign the {len(ids):,} failed runs of the filter", key="labels.assign", on_click=_assign,
                 args=(ids, me), disabled=not ids)
