"""Streamlit pieces of the Replay page: cached replay reads, the current-step state, the step list, the
navigation buttons with their keyboard shortcuts, and one step shown in full.

Trace text (names, messages, arguments, results, errors, labels) only reaches st.text, st.code and
st.dataframe. Widget labels, metric labels and alerts carry fixed words and numbers.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import streamlit as st

from workbench import queries, replay
from workbench.replay import Replay
from workbench_ui import _store, clip, data_version, db_path, fmt_cost, fmt_duration, fmt_int, text_block

_STEP, _RUN, _GEN = "replay.step", "replay.run", "replay.gen"
MESSAGES_SHOWN = 8
"""Chat turns shown at first; an LLM span may carry the whole conversation so far."""
MESSAGES_MAX = 400
"""Chat turns shown at most even when the reviewer asks for all (each is a separate element)."""
_ROLES = {"user": ("user", None), "human": ("user", None), "assistant": ("assistant", None),
          "ai": ("assistant", None), "system": ("system", ":material/settings:"),
          "tool": ("tool", ":material/build:"), "function": ("tool", ":material/build:")}


# -- cached reads -------------------------------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def _replay(db: str, run_id: str, version: int) -> Replay | None:
    return replay.load_replay(_store(db), run_id)


def load(run_id: str) -> Replay | None:
    """Cached `workbench.replay.load_replay`."""
    return _replay(db_path(), run_id, data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _nearest(db: str, run_id: str, version: int) -> str | None:
    return replay.nearest_success(_store(db), run_id)


def nearest_success(run_id: str) -> str | None:
    """Cached `workbench.replay.nearest_success`."""
    return _nearest(db_path(), run_id, data_version())


@st.cache_data(max_entries=128, show_spinner=False)
def _step(db: str, run_id: str, step_id: str, version: int) -> dict[str, Any] | None:
    return queries.get_step(_store(db), run_id, step_id)


def get_step(run_id: str, step_id: str) -> dict[str, Any] | None:
    """Cached `queries.get_step`: one step with its payloads."""
    return _step(db_path(), run_id, step_id, data_version())


# -- which step is shown ------------------------------------------------------------------------------------
def _show(step_id: str) -> None:
    """Make `step_id` the current step, redraw the step list with it selected, and put it in the URL."""
    st.session_state[_STEP] = step_id
    st.session_state[_GEN] = st.session_state.get(_GEN, 0) + 1
    st.query_params["step"] = step_id


def current_index(rp: Replay) -> int:
    """Position of the step to show: the URL's `?step=` when it changed from outside (a deep link, a link
    from Compare), else the step the reviewer moved to, else the first step."""
    ss, ids = st.session_state, rp.step_ids
    linked = st.query_params.get("step") or None
    if ss.get(_RUN) != rp.run_id or (linked in ids and linked != ss.get(_STEP)) or ss.get(_STEP) not in ids:
        _show(linked if linked in ids else ids[0])
        ss[_RUN] = rp.run_id
    elif linked != ss[_STEP]:  # a stale or unknown ?step=: the URL follows what is shown
        st.query_params["step"] = ss[_STEP]
    return int(rp.index_of(ss[_STEP]))


# -- navigation ---------------------------------------------------------------------------------------------
NAV = (  # (key, label, shortcut, how to find the target)
    ("prev", "Previous", "K", ("step", True)),
    ("next", "Next", "J", ("step", False)),
    ("error", "Next error", "E", ("error", False)),
    ("tool", "Next tool call", "T", ("tool", False)),
    ("finding", "Next loop/retry", "L", ("finding", False)),
)


def _target(rp: Replay, cur: int, what: str, backwards: bool) -> int | None:
    if what == "step":
        nxt = cur - 1 if backwards else cur + 1
        return nxt if 0 <= nxt < len(rp.steps) else None
    return rp.next_index(cur, what, backwards=backwards)


def step_nav(rp: Replay, cur: int) -> None:
    """Previous / next / next error / next tool call / next finding, each with a keyboard shortcut."""
    cols = st.columns(len(NAV) + 1)
    cols[0].text(f"step {cur + 1} of {len(rp.steps)}")
    for col, (key, label, shortcut, (what, backwards)) in zip(cols[1:], NAV, strict=True):
        target = _target(rp, cur, what, backwards)
        col.button(label, key=f"replay.{key}", shortcut=shortcut, disabled=target is None, width="stretch",
                   help=f"Keyboard: {shortcut}", on_click=_show,
                   args=(rp.step_ids[target] if target is not None else "",))


def _grid_selected(key: str, ids: list[str]) -> None:
    event = st.session_state.get(key)
    rows = event.selection.rows if event is not None else []
    if rows and 0 <= rows[0] < len(ids) and ids[rows[0]] != st.session_state.get(_STEP):
        st.session_state[_STEP] = ids[rows[0]]  # the grid already shows it: no redraw
        st.query_params["step"] = ids[rows[0]]


def step_list(rp: Replay, cur: int, height: int = 520) -> None:
    """The steps as a grid that shows nesting, kind, duration, errors and loop flags; a click selects."""
    key = f"replay.grid.{rp.run_id}.{st.session_state.get(_GEN, 0)}"
    st.dataframe(
        rp.steps, hide_index=True, placeholder="–", key=key, height=min(38 + 35 * len(rp.steps), height),
        on_select=partial(_grid_selected, key, rp.step_ids), selection_mode="single-row",
        selection_default={"selection": {"rows": [cur]}},
        column_order=["seq", "label", "kind", "duration_ms", "status", "flags", "error"],
        column_config={
            "seq": st.column_config.NumberColumn("#", format="%d", width="small"),
            "label": st.column_config.TextColumn("Step", width="medium"),
            "kind": st.column_config.TextColumn("Kind", width="small"),
            "duration_ms": st.column_config.NumberColumn("ms", format="%.0f", width="small"),
            "status": st.column_config.TextColumn("Status", width="small"),
            "flags": st.column_config.TextColumn("Flags", width="small", help="loop / retry findings"),
            "error": st.column_config.TextColumn("Error", width="medium"),
        },
    )


def waterfall_selected(rp: Replay, key: str) -> None:
    """Callback of the waterfall chart: a clicked bar opens its step."""
    event = st.session_state.get(key)
    points = event.selection.points if event is not None else []
    if points:
        row = points[0].get("customdata")
        row = row[0] if isinstance(row, list) else row
        if isinstance(row, int | float) and 0 <= int(row) < len(rp.steps):
            _show(rp.step_ids[int(row)])


# -- header -------------------------------------------------------------------------------------------------
def run_header(rp: Replay) -> None:
    """Who ran what, how it ended, what it cost, its labels and the loop/retry findings."""
    run, totals = rp.run, rp.totals()
    st.code(rp.run_id, language=None)
    st.text(f"agent: {run['agent'] or '–'}   version: {run['agent_version'] or '–'}   "
            f"outcome: {run['outcome'] or '–'}   status: {run['status'] or '–'}   format: {run['format']}")
    st.text(f"task: {run['task_id'] or '–'}   started: {run['started_at'] or '–'}   "
            f"native id: {run['native_id']}")
    cols = st.columns(5)
    cols[0].metric("Duration", fmt_duration(totals["duration_ms"]))
    cols[1].metric("Steps", fmt_int(totals["n_steps"]))
    cols[2].metric("Errors", fmt_int(totals["n_errors"]))
    cols[3].metric("Tokens", fmt_int(totals["tokens"]))
    cols[4].metric("Cost (estimated)" if totals["cost_estimated"] else "Cost (reported)",
                   fmt_cost(totals["cost_usd"]))
    if len(rp.labels):
        st.text("labels: " + "; ".join(
            f"{r.code}{f' ({r.severity})' if isinstance(r.severity, str) else ''} by {r.reviewer}"
            + (f" on step {r.step_id}" if isinstance(r.step_id, str) else "")
            for r in rp.labels.itertuples()))
    if len(rp.findings):
        n_loop = int((rp.findings["category"] == "loop").sum())
        n_retry = len(rp.findings) - n_loop
        (st.warning if n_loop else st.info)(
            f"{'Loop detected' if n_loop else 'Retries'}: {n_loop} loop and {n_retry} retry finding(s)",
            icon=":material/autorenew:")
        st.dataframe(rp.findings, hide_index=True, column_order=["category", "detail", "first_seq", "last_seq"],
                     column_config={"category": "Finding", "detail": st.column_config.TextColumn("What",
                                                                                                 width="large"),
                                    "first_seq": st.column_config.NumberColumn("From #", format="%d"),
                                    "last_seq": st.column_config.NumberColumn("To #", format="%d")})
    with st.expander("Input, output and error"):
        text_block("input", run["input"])
        text_block("output", run["output"])
        text_block("error", run["error"])


# -- one step in full ---------------------------------------------------------------------------------------
def _present(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and v != v) and v != ""


def step_detail(rp: Replay, cur: int) -> None:
    """The selected step: what it is, its numbers, its error and findings, the tool call, the chat turns."""
    row = rp.steps.iloc[cur]
    step = get_step(rp.run_id, str(row["step_id"]))
    if step is None:  # the data changed under us
        st.info("This step is no longer in the database.")
        return
    st.text(f"#{step['seq']} · {step['kind']} · {step['name'] or '–'} · status {step['status'] or '–'}"
            + (f" · model {step['model']}" if step["model"] else ""))
    cols = st.columns(4)
    cols[0].metric("Latency", fmt_duration(step["duration_ms"]))
    cols[1].metric("Tokens in / out", f"{fmt_int(step['input_tokens'])} / {fmt_int(step['output_tokens'])}")
    cols[2].metric("Cost (estimated)" if step["cost_estimated"] else "Cost", fmt_cost(step["cost_usd"]))
    cols[3].metric("Messages", fmt_int(row["n_messages"]) if _present(row["n_messages"]) else "–")
    text_block("error", step["error"])
    for f in rp.findings.itertuples():
        if step["step_id"] in f.step_ids:
            st.text(f"{f.category}: {f.detail} (steps {f.first_seq}–{f.last_seq})")
    if step["tool_name"]:
        text_block(f"tool call: {step['tool_name']} · arguments", pretty(step["tool_args"]), language="json")
        text_block("tool result", step["tool_result"])
    messages(step["messages"], key=f"replay.all.{rp.run_id}.{step['step_id']}")


def pretty(raw: Any) -> str | None:
    """JSON text indented for reading (keys kept in their order); anything else as it came."""
    if raw is None:
        return None
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(raw)


def messages(raw: str | None, key: str) -> None:
    """A step's messages as chat turns: role, content, tool calls with pretty arguments, tool results."""
    if not raw:
        return
    try:
        items = json.loads(raw)
    except ValueError:
        text_block("messages (raw)", raw)
        return
    if not isinstance(items, list):
        items = [items]
    total = len(items)
    show_all = total > MESSAGES_SHOWN and st.toggle(f"Show all {total:,} messages", key=key)
    if total <= MESSAGES_SHOWN:
        start = 0
    else:
        start = max(0, total - MESSAGES_MAX) if show_all else total - MESSAGES_SHOWN
    if start:
        st.caption(f"showing messages {start + 1:,}–{total:,} of {total:,}")
    for i, message in enumerate(items[start:], start=start):
        _turn(i, message if isinstance(message, dict) else {"content": message})


def _turn(i: int, message: dict[str, Any]) -> None:
    role = str(message.get("role") or "?")
    name, avatar = _ROLES.get(role.lower(), ("other", ":material/chat:"))
    with st.chat_message(name, avatar=avatar):
        answers = message.get("tool_call_id")
        st.text(f"{i + 1} · {role}" + (f" · answers {answers}" if answers else ""))
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            content = json.dumps(content, indent=2, ensure_ascii=False)
        if content:
            shown, full = clip(content)
            st.code(shown, language=None, wrap_lines=True)
            if full > len(shown):
                st.caption(f"showing the first {len(shown):,} of {full:,} characters")
        for call in message.get("tool_calls") or []:
            if not isinstance(call, dict):
                continue
            fn = call.get("function") if isinstance(call.get("function"), dict) else call
            args = fn.get("arguments")
            args_text = pretty(args) if isinstance(args, str) else json.dumps(args, indent=2, ensure_ascii=False)
            st.text(f"→ tool call {fn.get('name') or '?'}" + (f" ({call['id']})" if call.get("id") else ""))
            st.code(args_text or "", language="json", wrap_lines=True)
