"""A run's steps as one DataFrame for replay: tree order, timing, errors and a signature per step.

The step list is read without the message payloads (an LLM span may repeat the whole conversation so far);
what replay needs from them, the tool calls an LLM step asked for and a hash of its answer, is extracted in
SQL. A step's **signature** is what two runs are aligned on and what loop detection compares:
`kind`, a key (the tool name for tool steps, the step name for structural steps, nothing for LLM calls)
and a detail (normalized tool arguments, or the tools an LLM step asked for).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from itertools import groupby
from operator import itemgetter
from typing import Any

import pandas as pd

from workbench.loaders.parse import loads_lenient
from workbench.store import Store

STRUCTURAL_KINDS = frozenset({"agent", "chain", "guardrail", "human", "event", "message", "other"})
"""Kinds whose name says what they are (`apply_guardrail pii_filter`); their name is part of the signature."""

_COLUMNS = """
step_id, parent_step_id, seq, depth, kind, name, started_at, duration_ms, status, error, model,
       tool_name, input_tokens, output_tokens,
       CASE WHEN input_tokens IS NULL AND output_tokens IS NULL THEN NULL
            ELSE coalesce(input_tokens, 0) + coalesce(output_tokens, 0) END AS tokens,
       cost_usd, cost_estimated,
       CAST(tool_args AS VARCHAR) AS tool_args,
       CASE WHEN kind = 'llm' AND json_type(messages) = 'ARRAY' THEN json_array_length(messages) END
           AS n_messages,
       CASE WHEN kind = 'llm' AND json_type(messages) = 'ARRAY'
            THEN CAST(json_extract(messages, '$[#-1].tool_calls') AS VARCHAR) END AS out_calls,
       CASE WHEN tool_name IS NOT NULL THEN md5(coalesce(tool_result, '') || chr(31) || coalesce(error, ''))
            WHEN kind = 'llm' AND json_type(messages) = 'ARRAY'
            THEN md5(json_extract_string(messages, '$[#-1].content'))
       END AS result_hash
"""
_ORDER = "seq NULLS LAST, started_at NULLS LAST, step_id"
_QUERY = f"SELECT {_COLUMNS} FROM steps WHERE run_id = $run_id ORDER BY {_ORDER}"  # noqa: S608 - constants


@lru_cache(maxsize=65536)
def normalize_args(raw: str | None) -> str:
    """Tool arguments in one canonical text, so equal calls compare equal however they were written.

    JSON inside strings is decoded (a few sources double-encode), keys are sorted, surrounding whitespace of
    string values is dropped and whole floats are written as integers. Text that is not JSON is kept with its
    whitespace collapsed.

    >>> normalize_args('{"b": 1.0, "a": " x "}') == normalize_args('"{\\\\"a\\\\": \\\\"x\\\\", \\\\"b\\\\": 1}"')
    True
    """
    if not isinstance(raw, str):  # NULL arrives as None or NaN
        return ""
    value = loads_lenient(raw)
    if isinstance(value, str):
        return " ".join(value.split())
    return json.dumps(_canon(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _canon(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_NUMBERS = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}|\d+", re.IGNORECASE)


def normalize_error(text: str | None) -> str:
    """An error message with numbers and ids blanked, so "retry 3 of 5" and "retry 4 of 5" are one error."""
    if not text:
        return ""
    return " ".join(_NUMBERS.sub("#", str(text)).split())[:300]


def requested_calls(out_calls: str | None) -> list[tuple[str, str]]:
    """(tool name, normalized arguments) of each tool call in an LLM step's last message."""
    if not isinstance(out_calls, str) or not out_calls:
        return []
    try:
        calls = json.loads(out_calls)
    except ValueError:
        return []
    found = []
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, dict):
            continue
        fn = call.get("function") if isinstance(call.get("function"), dict) else call
        name = fn.get("name")
        if name:
            args = fn.get("arguments")
            found.append((str(name), normalize_args(args if isinstance(args, str) or args is None
                                                    else json.dumps(args))))
    return found


def load_steps(store: Store, run_id: str) -> pd.DataFrame:
    """The replay step frame of one run (empty when the run has no steps).

    Columns: everything `queries.run_steps` lists without payloads, plus `offset_ms` (start after the run's
    first step), `is_error`, `n_messages`, `out_calls` (the LLM's tool calls as JSON text), `calls` (the
    tools an LLM step asked for), `args_key` (normalized arguments), `result_hash`, `key`, `detail`,
    `signature`, `n_children`, `title` (name, else tool, else kind), `label` (the title indented by depth,
    for a list that shows nesting) and `flags` (filled by loop detection).
    """
    return to_frame(load_columns(store, run_id))


def load_columns(store: Store, run_id: str) -> dict[str, list[Any]]:
    """The same as `load_steps`, as plain lists per column (what loop detection works on)."""
    cur = store.cursor()
    try:
        cur.execute(_QUERY, {"run_id": run_id})
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
    finally:
        cur.close()
    return derive(_columns(names, rows))


def iter_run_steps(store: Store, run_ids: list[str] | None = None) -> Iterator[tuple[str, dict[str, list]]]:
    """(run_id, step columns as in `load_columns`) for many runs in one scan: every run, or `run_ids`."""
    where = "" if run_ids is None else "WHERE run_id IN (SELECT unnest($ids))"
    cur = store.cursor()
    try:
        cur.execute(f"SELECT run_id, {_COLUMNS} FROM steps {where} ORDER BY run_id, {_ORDER}",  # noqa: S608
                    {} if run_ids is None else {"ids": list(run_ids)})
        names = [d[0] for d in cur.description][1:]
        rows = cur.fetchall()
    finally:
        cur.close()
    for run_id, group in groupby(rows, key=itemgetter(0)):
        yield run_id, derive(_columns(names, [r[1:] for r in group]))


def _columns(names: list[str], rows: list[tuple]) -> dict[str, list[Any]]:
    if not rows:
        return {name: [] for name in names}
    return {name: list(col) for name, col in zip(names, zip(*rows, strict=True), strict=True)}


def derive(cols: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Raw step columns (lists, one value per step, in order) plus the derived ones (see `load_steps`).

    Plain Python over lists: with pandas 3 a column operation or a cell lookup costs tens of microseconds to
    a millisecond whatever the size, which dominated short runs and a scan over a whole fleet.
    """
    n = len(cols["step_id"])
    kind = [k or "other" for k in cols["kind"]]
    tool = cols["tool_name"]
    names = [nm or "" for nm in cols["name"]]
    starts = [t for t in cols["started_at"] if t is not None]
    t0 = min(starts) if starts else None
    offset = [None if t is None or t0 is None else (t - t0).total_seconds() * 1000 for t in cols["started_at"]]
    is_error = [bool(e) or (st or "").lower() == "error"
                for e, st in zip(cols["error"], cols["status"], strict=True)]
    args_key = [normalize_args(a) if t else "" for t, a in zip(tool, cols["tool_args"], strict=True)]
    calls = [", ".join(c for c, _ in requested_calls(o)) if k == "llm" else ""
             for k, o in zip(kind, cols["out_calls"], strict=True)]
    key = [t if t else (nm if k in STRUCTURAL_KINDS else "") for t, nm, k in zip(tool, names, kind, strict=True)]
    detail = [a if t else c for t, a, c in zip(tool, args_key, calls, strict=True)]
    children: dict[Any, int] = {}
    for p in cols["parent_step_id"]:
        if p is not None:
            children[p] = children.get(p, 0) + 1
    depth = [int(d or 0) for d in cols["depth"]]
    shown = [nm or t or k for nm, t, k in zip(names, tool, kind, strict=True)]
    derived = {
        "kind": kind, "offset_ms": offset, "is_error": is_error, "args_key": args_key, "calls": calls,
        "key": key, "detail": detail,
        "signature": [f"{k}|{ky}|{d}" for k, ky, d in zip(kind, key, detail, strict=True)],
        "n_children": [children.get(s, 0) for s in cols["step_id"]],
        # non-breaking em spaces: the grid trims plain leading spaces
        "title": shown,
        "label": ["\u2003" * d + ("└ " if d > 0 else "") + s for d, s in zip(depth, shown, strict=True)],
        "flags": [""] * n,
    }
    return {**cols, **derived}


def to_frame(cols: dict[str, list[Any]]) -> pd.DataFrame:
    """The step columns as the replay DataFrame (numbers as float64/int64, texts as strings)."""
    frame = pd.DataFrame(cols)
    frame["offset_ms"] = frame["offset_ms"].astype("float64")
    frame["is_error"] = frame["is_error"].astype(bool)
    return frame
