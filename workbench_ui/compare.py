"""Streamlit pieces of the Compare page: cached comparison, the two runs side by side, deltas, the aligned
steps and one aligned pair in full with its argument and result diffs.

As everywhere, trace text only reaches st.text, st.code and st.dataframe.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from workbench import replay
from workbench.replay import Comparison
from workbench.replay.compare import SAME
from workbench_ui import _store, data_version, db_path, fmt_cost, fmt_duration, fmt_int, text_block

_PAIR = "compare.pair"


@st.cache_data(max_entries=16, show_spinner=False)
def _compare(db: str, a: str, b: str, version: int) -> Comparison | None:
    return replay.compare_runs(_store(db), a, b)


def load(a: str, b: str) -> Comparison | None:
    """Cached `workbench.replay.compare_runs`."""
    return _compare(db_path(), a, b, data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _pair(db: str, a: str, b: str, row: int, version: int) -> dict[str, Any]:
    cmp = _compare(db, a, b, version)
    return replay.pair_detail(_store(db), cmp, row)


def pair(cmp: Comparison, row: int) -> dict[str, Any]:
    """Cached `workbench.replay.pair_detail`."""
    return _pair(db_path(), cmp.a.run_id, cmp.b.run_id, row, data_version())


_FORMATS = {"cost (USD)": fmt_cost, "duration (ms)": fmt_duration}


def runs_side_by_side(cmp: Comparison) -> None:
    """Each run's id and facts, then the deltas as metrics (B against A)."""
    for col, side, rp in zip(st.columns(2), ("A", "B"), (cmp.a, cmp.b), strict=True):
        r = rp.run
        with col:
            st.text(f"run {side}")
            st.code(rp.run_id, language=None)
            st.text(f"agent: {r['agent'] or '–'}   version: {r['agent_version'] or '–'}   "
                    f"outcome: {r['outcome'] or '–'}   task: {r['task_id'] or '–'}")
            st.page_link("app_pages/run.py", label=f"Replay run {side}", icon=":material/route:",
                         query_params={"run": rp.run_id})
    outcome_a, outcome_b = cmp.outcomes
    st.text(f"outcome: {outcome_a or '–'} → {outcome_b or '–'}   alignment cost: {cmp.distance}"
            + ("   (banded alignment: very long runs)" if cmp.banded else ""))
    rows = []
    for d in cmp.deltas.itertuples():
        fmt = _FORMATS.get(d.metric, fmt_int)
        sign = "+" if d.delta > 0 else "-" if d.delta < 0 else "±"
        change = "–" if d.delta != d.delta else sign + fmt(abs(d.delta))
        rows.append({"metric": d.metric, "A": fmt(d.a), "B": fmt(d.b), "B - A": change})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="content")


def _picked(key: str, rows: list[int]) -> None:
    event = st.session_state.get(key)
    sel = event.selection.rows if event is not None else []
    if sel and 0 <= sel[0] < len(rows):
        st.session_state[_PAIR] = rows[sel[0]]


def aligned_steps(cmp: Comparison, only_differences: bool) -> int | None:
    """The aligned steps side by side; returns the pair to show in full (clicked, else the first divergence)."""
    pairs = cmp.pairs
    shown = pairs[pairs["op"] != SAME] if only_differences else pairs
    rows = [int(i) for i in shown.index]
    ident = (cmp.a.run_id, cmp.b.run_id)
    if st.session_state.get("compare.runs") != ident or st.session_state.get(_PAIR) not in range(len(pairs)):
        st.session_state["compare.runs"] = ident
        differing = (pairs["op"] != SAME).to_numpy().nonzero()[0]
        first = cmp.first_divergence if cmp.first_divergence is not None else (
            int(differing[0]) if len(differing) else 0)
        st.session_state[_PAIR] = first
    current = st.session_state[_PAIR]
    key = f"compare.grid.{ident}.{only_differences}"
    st.dataframe(
        shown.reset_index(names="position").assign(position=lambda f: f["position"] + 1), hide_index=True,
        placeholder="", key=key, height=min(38 + 35 * len(shown), 520), selection_mode="single-row",
        on_select=partial(_picked, key, rows),
        selection_default={"selection": {"rows": [rows.index(current)] if current in rows else []}},
        column_order=["position", "op", "a_seq", "a_kind", "a_what", "a_detail", "b_seq", "b_kind", "b_what",
                      "b_detail"],
        column_config={
            "position": st.column_config.NumberColumn("Pos", format="%d", width="small"),
            "op": st.column_config.TextColumn("Alignment", width="small"),
            "a_seq": st.column_config.NumberColumn("A #", format="%d", width="small"),
            "a_kind": st.column_config.TextColumn("A kind", width="small"),
            "a_what": st.column_config.TextColumn("A tool / step", width="small"),
            "a_detail": st.column_config.TextColumn("A arguments / calls", width="medium"),
            "b_seq": st.column_config.NumberColumn("B #", format="%d", width="small"),
            "b_kind": st.column_config.TextColumn("B kind", width="small"),
            "b_what": st.column_config.TextColumn("B tool / step", width="small"),
            "b_detail": st.column_config.TextColumn("B arguments / calls", width="medium"),
        },
    )
    return current if len(pairs) else None


def pair_in_full(cmp: Comparison, row: int) -> None:
    """One aligned pair: both steps' arguments and results side by side, then the unified diffs."""
    p = cmp.pairs.iloc[row]
    detail = pair(cmp, row)
    st.text(f"position {row + 1}: {p['op']}" + ("   (the runs diverge here first)"
                                                  if row == cmp.first_divergence else ""))
    for col, side in zip(st.columns(2), ("a", "b"), strict=True):
        step = detail[f"{side}_step"]
        with col:
            if step is None:
                st.text(f"{side.upper()}: no step here")
                continue
            st.text(f"{side.upper()} #{step['seq']} · {step['kind']} · {step['name'] or '–'}"
                    + (f" · error: {step['error']}" if step["error"] else ""))
            st.page_link("app_pages/run.py", label=f"Open in Replay ({side.upper()})", icon=":material/route:",
                         query_params={"run": getattr(cmp, side).run_id, "step": step["step_id"]})
            text_block("arguments / tool calls", detail[f"{side}_args"], language="json")
            text_block("result / answer", detail[f"{side}_result"])
    if p["op"] != SAME and detail["a_step"] is not None and detail["b_step"] is not None:
        text_block("arguments diff (A → B)", detail["args_diff"], language="diff")
        text_block("result diff (A → B)", detail["result_diff"], language="diff")
