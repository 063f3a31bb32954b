"""Loop and retry detection over a run's tool calls: what a reviewer would spot by scrolling, made explicit.

Three patterns, each a finding attached to the steps that make it up:

- `identical_calls` (a loop): the same tool called with the same normalized arguments `min_repeats` times
  in a row (the LLM turns between the calls do not break the streak; a different tool call does);
- `ping_pong` (a loop): calls alternating between two different calls A B A B ... for `min_alternations`
  calls or more;
- `repeated_error` (a retry): the same error (numbers and ids blanked) from the same tool or step
  `min_error_repeats` times anywhere in the run.

The thresholds were chosen on the demo fleet, whose successful runs do repeat themselves a little (a coding
agent runs the same tests before and after its fix, a transient 503 is retried once): two identical calls
are normal, three in a row are not. See tests/test_replay.py for the measured rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.replay.steps import normalize_error, requested_calls

LOOP_KINDS = frozenset({"identical_calls", "ping_pong"})
RETRY_KINDS = frozenset({"repeated_error"})
FINDING_COLUMNS = ("kind", "category", "tool", "count", "first_seq", "last_seq", "step_ids", "detail")


@dataclass(frozen=True)
class LoopRules:
    """Thresholds of the detectors (defaults measured on the demo fleet)."""

    min_repeats: int = 3
    """Identical consecutive calls that make a loop."""
    min_alternations: int = 4
    """Calls in an A B A B stretch that make a ping-pong (4 = two round trips)."""
    min_error_repeats: int = 2
    """Occurrences of the same error that make a retry finding."""


@dataclass(frozen=True)
class _Call:
    row: int
    tool: str
    args: str

    @property
    def key(self) -> tuple[str, str]:
        return self.tool, self.args


Columns = dict[str, list[Any]]
"""Step columns as lists (what `workbench.replay.steps.derive` returns); detection runs on these, since a
pandas lookup per value costs more than the whole detection on a short run."""


def _calls(cols: Columns) -> list[_Call]:
    """Tool calls in order: the tool steps, or, for a source without them, the calls LLM steps asked for."""
    tools = cols["tool_name"]
    rows = [i for i, t in enumerate(tools) if isinstance(t, str) and t]
    if rows:
        return [_Call(i, tools[i], cols["args_key"][i]) for i in rows]
    found = []
    for i, (kind, out) in enumerate(zip(cols["kind"], cols["out_calls"], strict=True)):
        if kind == "llm":
            found += [_Call(i, name, args) for name, args in requested_calls(out)]
    return found


def _finding(kind: str, cols: Columns, rows: list[int], tool: str, detail: str) -> dict:
    seqs = [cols["seq"][r] for r in rows]
    return {
        "kind": kind, "category": "loop" if kind in LOOP_KINDS else "retry", "tool": tool, "count": len(rows),
        "first_seq": int(min(seqs)), "last_seq": int(max(seqs)),
        "step_ids": [str(cols["step_id"][r]) for r in rows], "detail": detail, "rows": rows,
    }


def _identical(calls: list[_Call], cols: Columns, rules: LoopRules) -> list[dict]:
    out, start = [], 0
    for end in range(1, len(calls) + 1):
        if end < len(calls) and calls[end].key == calls[start].key:
            continue
        streak = calls[start:end]
        if len(streak) >= rules.min_repeats:
            c = streak[0]
            out.append(_finding("identical_calls", cols, [x.row for x in streak], c.tool,
                                f"{c.tool} called {len(streak)} times in a row with the same arguments"))
        start = end
    return out


def _ping_pong(calls: list[_Call], cols: Columns, rules: LoopRules) -> list[dict]:
    out, s, n = [], 0, len(calls)
    while s + 1 < n:
        a, b = calls[s].key, calls[s + 1].key
        if a == b:
            s += 1
            continue
        e = s + 2
        while e < n and calls[e].key == (a if (e - s) % 2 == 0 else b):
            e += 1
        if e - s >= rules.min_alternations:
            tools = f"{a[0]} / {b[0]}"
            out.append(_finding("ping_pong", cols, [x.row for x in calls[s:e]], tools,
                                f"{e - s} calls alternating between {tools}"))
            s = e - 1
        else:
            s += 1
    return out


def _errors(cols: Columns, rules: LoopRules) -> list[dict]:
    groups: dict[tuple[str, str], list[int]] = {}
    for i in (i for i, e in enumerate(cols["is_error"]) if e):
        tool = cols["tool_name"][i]
        name = cols["name"][i]
        where = tool if isinstance(tool, str) and tool else (name if isinstance(name, str) and name
                                                             else str(cols["kind"][i]))
        error = cols["error"][i]
        text = normalize_error(error if isinstance(error, str) else None) or "(status error)"
        groups.setdefault((where, text), []).append(i)
    return [_finding("repeated_error", cols, rows, where, f"the same error {len(rows)} times from {where}")
            for (where, _), rows in groups.items() if len(rows) >= rules.min_error_repeats]


def find(cols: Columns, rules: LoopRules | None = None) -> tuple[list[dict], list[str]]:
    """Findings (dicts with the `FINDING_COLUMNS` keys and `rows`) and a flags text per step."""
    rules = rules or LoopRules()
    calls = _calls(cols)
    found = _identical(calls, cols, rules) + _ping_pong(calls, cols, rules) + _errors(cols, rules)
    flags: list[set[str]] = [set() for _ in cols["step_id"]]
    for f in found:
        for r in f["rows"]:
            flags[r].add(f["category"])
    return found, [", ".join(sorted(f)) for f in flags]


def findings_frame(found: list[dict]) -> pd.DataFrame:
    """The findings as a DataFrame (columns `FINDING_COLUMNS`), ordered by where they start."""
    frame = pd.DataFrame([{c: f[c] for c in FINDING_COLUMNS} for f in found], columns=list(FINDING_COLUMNS))
    return frame.sort_values(["first_seq", "kind"], kind="stable").reset_index(drop=True)


def detect(steps: pd.DataFrame | Columns, rules: LoopRules | None = None) -> pd.DataFrame:
    """Loop and retry findings of one run's replay steps (a frame from `load_steps`, or its columns).

    A DataFrame gets its `flags` column rewritten in place (e.g. "loop", "loop, retry").
    """
    cols = {c: steps[c].tolist() for c in steps.columns} if isinstance(steps, pd.DataFrame) else steps
    found, flags = find(cols, rules)
    if isinstance(steps, pd.DataFrame):
        steps["flags"] = flags
    return findings_frame(found)
