"""Streamlit pieces of the Review page: who is reviewing, the queue, and the label pad worked by keyboard.

Every taxonomy code is a button with its key as shortcut (pressing it again takes the label back), next (N),
skip (S), undo (U) and the run/step target (G) are buttons too, so a reviewer labels with the keyboard alone;
the replay's own keys (J/K/E/T/L) move through the run. Writes go through `workbench.labels` in button
callbacks, so the page that follows already shows them. Trace text and names typed by people reach the page
only through st.text, st.code and st.dataframe.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from workbench import labels
from workbench.loaders.base import IMPORTED_REVIEWER
from workbench.queries import RunFilter
from workbench.taxonomy import RESERVED_KEYS, Taxonomy
from workbench_ui import _store, data_version, db_path, get_store, query_param, set_query_param
from workbench_ui.replay import _RUN as _REPLAY_RUN
from workbench_ui.replay import _STEP as _REPLAY_STEP

REVIEWER = "review.reviewer"
"""Session key of the reviewer's name: asked once per browser session, kept across pages."""
_NAME_INPUT, _NAME_ERROR = "review.name_input", "review.name_error"
_CUR, _SKIP, _FLT, _MSG = "review.run", "review.skipped", "review.filter", "review.message"
SEVERITY, NOTE, ON_STEP = "review.severity", "review.note", "review.on_step"
PAD_COLUMNS = 5
QUEUE_KEYS = (("next", "Next", "N"), ("skip", "Skip", "S"), ("undo", "Undo", "U"))


def md_escape(text: str) -> str:
    """Backslash-escape Markdown punctuation, for the few strings (taxonomy names) that go into widget labels."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", text)


# -- who is reviewing ---------------------------------------------------------------------------------------
def _logged_in_name() -> str | None:
    # st.user has no `is_logged_in` key unless an [auth] section is configured; .get never raises for that
    try:
        if st.user.get("is_logged_in"):
            return str(st.user.get("name") or st.user.get("email") or "").strip() or None
    except Exception:  # noqa: BLE001 - a broken auth setup must not stop the review; fall back to asking
        return None
    return None


def _take_name() -> None:
    name = " ".join(str(st.session_state.get(_NAME_INPUT) or "").split())
    if not name or name == IMPORTED_REVIEWER or len(name) > 80:
        st.session_state[_NAME_ERROR] = (f"'{IMPORTED_REVIEWER}' is kept for labels that came with trace files"
                                         if name == IMPORTED_REVIEWER else "Type a name of 1 to 80 characters.")
        return
    st.session_state[REVIEWER] = name
    st.session_state.pop(_NAME_ERROR, None)


def _forget_name() -> None:
    st.session_state.pop(REVIEWER, None)


def reviewer() -> str:
    """The reviewer: `st.user`'s name when login is configured, else the name given once in this browser
    session (the page stops with a name form until there is one)."""
    name = _logged_in_name()
    if name:
        st.text(f"reviewing as {name} (signed in)")
        return name
    name = st.session_state.get(REVIEWER)
    if name:
        left, right = st.columns([6, 1])
        left.text(f"reviewing as {name}")
        right.button("Not you?", key="review.forget", on_click=_forget_name)
        return name
    with st.form("review.who", enter_to_submit=True, border=True):
        st.text_input("Your name: it is stored with every label you make", key=_NAME_INPUT, max_chars=80)
        st.form_submit_button("Start", on_click=_take_name)
    if st.session_state.get(_NAME_ERROR):
        st.warning(st.session_state[_NAME_ERROR])
    st.stop()


# -- cached reads -------------------------------------------------------------------------------------------
@st.cache_data(max_entries=8, show_spinner=False)
def _taxonomy(db: str, version: int) -> Taxonomy:
    return labels.current_taxonomy(_store(db))


def taxonomy() -> Taxonomy:
    """Cached `labels.current_taxonomy`."""
    return _taxonomy(db_path(), data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _run_labels(db: str, run_id: str, version: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    store = _store(db)
    return labels.current_labels(store, run_id), labels.history(store, run_id)


def run_labels(run_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cached current labels and full history of one run."""
    return _run_labels(db_path(), run_id, data_version())


@st.cache_data(max_entries=8, show_spinner=False)
def _progress(db: str, version: int) -> pd.DataFrame:
    return labels.progress(_store(db))


def progress() -> pd.DataFrame:
    """Cached `labels.progress`: per reviewer, assigned, done, labeled, events."""
    return _progress(db_path(), data_version())


# -- the queue ----------------------------------------------------------------------------------------------
def _next(reviewer_name: str, flt: RunFilter, also_skip: tuple[str, ...] = ()) -> str | None:
    skip = [*st.session_state.get(_SKIP, []), *also_skip]
    return labels.next_unlabeled(get_store(), reviewer_name, flt, skip=skip)


def _open(run_id: str | None) -> None:
    st.session_state[_CUR] = run_id
    set_query_param("run", run_id)
    set_query_param("step", None)  # the next run starts at its first step


def current_run(reviewer_name: str, flt: RunFilter) -> str | None:
    """The run under review: `?run=` when it changed from outside (a deep link), else the one the reviewer is
    on, else the next unlabeled failure for this filter. A new filter starts again from the queue."""
    ss = st.session_state
    if _FLT in ss and ss[_FLT] != flt:
        _open(None)
    ss[_FLT] = flt
    linked = query_param("run")
    if linked and linked != ss.get(_CUR):
        ss[_CUR] = linked
    if not ss.get(_CUR):
        _open(_next(reviewer_name, flt))
    return ss.get(_CUR)


def skipped() -> list[str]:
    return list(st.session_state.get(_SKIP, []))


def _say(kind: str, text: str) -> None:
    st.session_state[_MSG] = (kind, text)


def last_message() -> None:
    """What the last key press did, as text (it names runs and codes)."""
    kind, text = st.session_state.get(_MSG, ("", ""))
    if text:
        st.text(("⚠ " if kind == "error" else "✓ ") + text)


def _on_next(reviewer_name: str, flt: RunFilter) -> None:
    cur = st.session_state.get(_CUR)
    mine = labels.current_labels(get_store(), cur) if cur else pd.DataFrame({"reviewer": []})
    if cur and not (mine["reviewer"] == reviewer_name).any():
        # passed over without a label: remember it as skipped, or the queue would offer it again at once
        st.session_state[_SKIP] = [*st.session_state.get(_SKIP, []), cur]
    _open(_next(reviewer_name, flt, (cur,) if cur else ()))
    _say("ok", "next run" if st.session_state[_CUR] else "no unlabeled failures left for this filter")


def _on_skip(reviewer_name: str, flt: RunFilter) -> None:
    cur = st.session_state.get(_CUR)
    if cur:
        st.session_state[_SKIP] = [*st.session_state.get(_SKIP, []), cur]
    _open(_next(reviewer_name, flt))
    _say("ok", f"skipped {cur}" if cur else "nothing to skip")


def _on_undo(reviewer_name: str) -> None:
    done = labels.undo_last_action(get_store(), reviewer_name)
    if done.empty:
        _say("ok", "nothing to undo")
        return
    runs = list(dict.fromkeys(done["run_id"]))
    what = ", ".join(f"{a} {c}" for a, c in zip(done["action"].head(3), done["code"].head(3), strict=True))
    _say("ok", f"undone: {len(done)} event(s) on {len(runs)} run(s): {what}" + (" ..." if len(done) > 3 else ""))
    if len(runs) == 1 and runs[0] != st.session_state.get(_CUR):
        # the action was on an earlier run: go back to it, so the reviewer sees what they are redoing
        st.session_state[_SKIP] = [r for r in st.session_state.get(_SKIP, []) if r != runs[0]]
        _open(runs[0])


def _target(run_id: str) -> str | None:
    """The step labels go to, or None for the whole run (read when the key is pressed, so it is current)."""
    if st.session_state.get(ON_STEP) and st.session_state.get(_REPLAY_RUN) == run_id:
        return st.session_state.get(_REPLAY_STEP)
    return None


def _on_code(code: str, run_id: str, reviewer_name: str) -> None:
    store, step_id = get_store(), _target(run_id)
    mine = labels.current_labels(store, run_id)
    mine = mine[(mine["reviewer"] == reviewer_name) & (mine["code"] == code)
                & (mine["step_id"].fillna("") == (step_id or ""))]
    where = f"step {step_id}" if step_id else "the run"
    try:
        if len(mine):
            labels.remove_label(store, run_id, code, reviewer_name, step_id=step_id)
            _say("ok", f"removed {code} from {where}")
        else:
            labels.add_label(store, run_id, code, reviewer_name, step_id=step_id,
                             severity=st.session_state.get(SEVERITY), note=st.session_state.get(NOTE) or None)
            _say("ok", f"added {code} to {where}")
    except ValueError as exc:
        _say("error", str(exc))
        return
    st.session_state[NOTE] = ""
    st.session_state[SEVERITY] = None


def _flip_target() -> None:
    st.session_state[ON_STEP] = not st.session_state.get(ON_STEP, False)


def shortcuts(tax: Taxonomy) -> dict[str, str | None]:
    """Code -> keyboard key; None for a code without a usable key (a stored taxonomy from before keys were
    checked may hold one the page or Streamlit needs)."""
    return {lb.code: lb.key if lb.key and lb.key not in RESERVED_KEYS else None for lb in tax.labels}


# -- the pad ------------------------------------------------------------------------------------------------
def label_pad(run_id: str, reviewer_name: str, flt: RunFilter, step_text: str | None) -> None:
    """Target, severity and note, one button per code (primary when the reviewer's label is on the target),
    then next / skip / undo."""
    tax = taxonomy()
    current, _ = run_labels(run_id)
    on_step = bool(st.session_state.get(ON_STEP)) and step_text is not None
    target = st.session_state.get(_REPLAY_STEP) if on_step else None
    mine = set(current.loc[(current["reviewer"] == reviewer_name)
                           & (current["step_id"].fillna("") == (target or "")), "code"])
    left, mid, right = st.columns([3, 2, 4])
    with left:
        st.toggle("Label the selected step", key=ON_STEP, disabled=step_text is None)
        st.button("Run ⇄ step", key="review.target", shortcut="G", on_click=_flip_target,
                  disabled=step_text is None, help="Keyboard: G switches between the whole run and the step")
    mid.selectbox("Severity", labels.SEVERITIES, index=None, key=SEVERITY, placeholder="none")
    right.text_input("Note (optional)", key=NOTE, placeholder="what went wrong, in a few words")
    st.text("labels go to: " + (f"step {step_text}" if on_step else "the whole run"))
    keys = shortcuts(tax)
    cols = st.columns(PAD_COLUMNS)
    for i, lb in enumerate(tax.labels):
        key = keys[lb.code]
        cols[i % PAD_COLUMNS].button(
            md_escape(lb.name), key=f"review.code.{lb.code}", shortcut=key.upper() if key else None,
            type="primary" if lb.code in mine else "secondary", width="stretch", wrap=True,
            on_click=_on_code, args=(lb.code, run_id, reviewer_name),
            help="Press again to take the label back" + ("" if key else " (no keyboard key)"))
    cols = st.columns(len(QUEUE_KEYS) + 2)
    actions: dict[str, Any] = {"next": (_on_next, (reviewer_name, flt)), "skip": (_on_skip, (reviewer_name, flt)),
                               "undo": (_on_undo, (reviewer_name,))}
    for col, (name, label, key) in zip(cols, QUEUE_KEYS, strict=False):
        fn, args = actions[name]
        col.button(label, key=f"review.{name}", shortcut=key, on_click=fn, args=args, width="stretch",
                   help={"next": "Next unlabeled failure", "skip": "Pass over this run for this session",
                         "undo": "Take back your last action (a bulk action as a whole)"}[name])
    missing = [code for code, key in keys.items() if key is None]
    if missing:
        cols[-1].caption(f"{len(missing)} code(s) have no keyboard key")


def labels_table(frame: pd.DataFrame, *, key: str) -> None:
    """Labels or label events as a table (codes, notes and names are data: a dataframe shows them as text)."""
    shown = [c for c in ("created_at", "run_id", "step_id", "code", "action", "severity", "note", "reviewer",
                         "taxonomy_version", "source") if c in frame.columns]
    st.dataframe(frame, hide_index=True, key=key, column_order=shown, placeholder="–",
                 column_config={"created_at": st.column_config.DatetimeColumn("When (UTC)",
                                                                              format="YYYY-MM-DD HH:mm:ss")})
