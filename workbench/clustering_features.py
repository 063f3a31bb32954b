"""Features of failed runs for clustering: one SQL query over the store gives each run's documents.

A failed run is described by what a reviewer reads first: the run's error, the final output, the errors of
its steps (tool errors above all), what guardrails and humans decided along the way, the sequence of tool
calls (its *signature*), reviewers' notes when there are any, and whether it cost or took far more steps
than its agent version usually needs. Steps are aggregated per run inside DuckDB in the same query that
selects the runs, so 100k failures with millions of steps are one scan, not 100k queries.

Numbers and hex ids are masked (`ORD-2026-237232` -> `ORD-0-0`) before vectorizing: otherwise every order
number, file size or test count would be a term of its own, and two runs failing the same way would look
different because they were about different orders.

The documents become vectors in `workbench.clustering_vectors` (TF-IDF blocks + SVD).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from workbench.labels import current_labels
from workbench.queries import RunFilter, _where
from workbench.store import Store

TEXT_CHARS = 400
"""Characters kept of each text field (output, errors): the start says what kind of failure it is."""
MAX_SIGNATURE = 60
"""Tool calls kept of a run's signature (a looping run can make hundreds)."""
COST_HIGH = 3.0
"""A run costing this many times the median run of its agent version is marked `cost_high`."""
STEPS_HIGH = 2.0
"""... and taking this many times the median number of steps, `steps_high`."""
SAME_CALLS = 3
"""One tool called this many times with identical arguments marks a loop (a retry after an error is 2)."""

# Steps that say something about what happened: tool and retrieval calls by their tool name, guardrails and
# human approvals by their name and decision. LLM calls are left out: every run has them, they separate
# nothing and would drown the signature.
_FEATURES_SQL = """
WITH usual AS (  -- what a run of each agent version usually costs and takes, over the whole selection
    SELECT agent, agent_version, median(cost_usd) AS cost, median(n_steps) AS steps FROM runs {where} GROUP BY ALL
),
failed AS (  -- long texts are cut here, before anything holds them
    SELECT r.run_id, r.agent, r.agent_version, r.started_at, r.cost_usd, r.status, r.n_steps,
           left(r.error, {chars}) AS error, left(r.output, {chars}) AS output,
           r.cost_usd / nullif(u.cost, 0) AS cost_ratio, r.n_steps / nullif(u.steps, 0) AS steps_ratio
    FROM (SELECT * FROM runs {where}) r
         LEFT JOIN usual u ON u.agent IS NOT DISTINCT FROM r.agent AND u.agent_version IS NOT DISTINCT FROM r.agent_version
    WHERE r.outcome = 'failure' OR r.status = 'error'
),
picked AS (
    -- many tools report a failure in their result ("Error: ...") rather than in the span's status
    SELECT st.run_id, st.seq, st.kind, st.name, st.tool_name, hash(st.tool_args) AS args_hash,
           CASE WHEN st.status = 'error' OR (st.tool_name IS NOT NULL AND st.error IS NULL
                     AND lower(left(st.tool_result, 5)) = 'error') THEN 'error' ELSE st.status END AS status,
           coalesce(left(st.error, {chars}), CASE WHEN st.tool_name IS NOT NULL AND lower(left(st.tool_result, 5)) = 'error'
                                   THEN left(st.tool_result, {chars}) END) AS error,
           CASE WHEN st.kind IN ('guardrail', 'human') AND st.attributes IS NOT NULL THEN
               list_filter(map_entries(TRY_CAST(st.attributes AS MAP(VARCHAR, VARCHAR))),
                           lambda e: e.key LIKE '%decision' OR e.key LIKE '%reason')
           END AS verdict
    FROM steps st
    WHERE st.run_id IN (SELECT run_id FROM failed)
      AND (st.tool_name IS NOT NULL OR st.kind IN ('tool', 'retrieval', 'guardrail', 'human')
           OR st.error IS NOT NULL OR st.status = 'error')
),
marks AS (
    SELECT run_id, seq, error,
           CASE WHEN tool_name IS NOT NULL THEN tool_name
                WHEN kind IN ('guardrail', 'human') THEN
                    regexp_replace(coalesce(name, kind), '^(apply_guardrail|human_approval) ', '')
                    || coalesce(':' || list_filter(verdict, lambda e: e.key LIKE '%decision')[1].value, '')
                ELSE kind
           END || CASE WHEN status = 'error' THEN '!' ELSE '' END AS mark,
           -- what a guardrail or a person decided, unless it was the everyday "allow"
           CASE WHEN NOT list_contains(['allow', 'allowed', 'approved', 'pass', 'passed', 'ok', 'true'],
                                       lower(list_filter(verdict, lambda e: e.key LIKE '%decision')[1].value))
                THEN array_to_string(list_transform(verdict, lambda e: e.value), ' ') END AS decision
    FROM picked
),
repeats AS (  -- the most times one tool was called with identical arguments (a group-by: cheaper than a window)
    SELECT run_id, max(n) AS max_same_calls
    FROM (SELECT run_id, count(*) AS n FROM picked WHERE tool_name IS NOT NULL
          GROUP BY run_id, tool_name, args_hash)
    GROUP BY run_id
),
per_run AS (
    SELECT run_id,
           list(mark ORDER BY seq) AS marks,
           string_agg(DISTINCT error, ' | ' ORDER BY error) AS step_errors,
           string_agg(DISTINCT mark || ' ' || decision, ' | ' ORDER BY mark || ' ' || decision)
               FILTER (WHERE decision <> '') AS decisions
    FROM marks GROUP BY run_id
)
SELECT f.run_id, f.agent, f.agent_version, f.started_at, f.cost_usd, f.status, f.n_steps,
       f.error, f.output, p.step_errors, p.decisions, array_to_string(coalesce(p.marks, []), chr(31)) AS marks,
       coalesce(r.max_same_calls, 0) AS same_calls,
       coalesce(f.cost_ratio >= {cost_high}, false) AS cost_high,
       coalesce(f.steps_ratio >= {steps_high}, false) AS steps_high,
       trim(coalesce(f.output, '')) = '' AS no_output,
       regexp_matches(coalesce(f.output, ''), $gave_up, 'i') AS admits_failure,
       {errors} AS errors, {output} AS output_text
FROM failed f LEFT JOIN per_run p USING (run_id) LEFT JOIN repeats r USING (run_id)
ORDER BY f.run_id
"""

# Hex-like words holding a digit (ids, hashes), then any digits left: the same rules in SQL (RE2) and Python.
_HEX_WORD = r"\b[0-9a-f]*[0-9][0-9a-f]*\b"
_HEX_ID = re.compile(_HEX_WORD, re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")


def _mask_sql(expr: str) -> str:
    return f"regexp_replace(regexp_replace({expr}, '{_HEX_WORD}', '0', 'gi'), '[0-9]+', '0', 'g')"


def mask_numbers(text: str) -> str:
    """Replace hex-like ids and every run of digits with `0`, so ids and counts do not split equal texts."""
    return _DIGITS.sub("0", _HEX_ID.sub("0", text))


_GAVE_UP = (r"\b(sorry|unable|couldn't|could not|can't|cannot|wasn't able|was not able|failed to|having trouble|"
            r"not possible|went wrong)\b")
"""An answer that admits it did not get there (a case-insensitive regular expression, for SQL and Python)."""


def load_failures(store: Store, flt: RunFilter | None = None) -> pd.DataFrame:
    """One row per failed run (outcome failure or status error) of the selection, ordered by run_id.

    Columns: run_id, agent, agent_version, started_at, cost_usd, status, n_steps, error, output,
    step_errors, decisions, marks (the run's tool calls and checks, joined by \\x1f), same_calls, cost_high,
    steps_high, no_output, admits_failure, notes (reviewers' notes), codes (current label codes, a list),
    and the four documents the vectorizer reads: `errors` (error, step errors, decisions, notes),
    `output_text`, `signature` and `shape`.
    """
    where, params = _where(flt or RunFilter())
    errors = _mask_sql("concat_ws(' \n ', f.error, p.step_errors, p.decisions)")
    query = _FEATURES_SQL.format(where=where, chars=TEXT_CHARS, cost_high=COST_HIGH,
                                 steps_high=STEPS_HIGH, errors=errors, output=_mask_sql("coalesce(f.output, '')"))
    frame = store.sql(query, {**params, "gave_up": _GAVE_UP}).df()
    labels = current_labels(store)
    frame["notes"] = None
    frame["codes"] = [[] for _ in range(len(frame))]
    if len(labels) and len(frame):
        labels = labels[labels["run_id"].isin(set(frame["run_id"]))]
        notes = labels.dropna(subset=["note"]).groupby("run_id")["note"].agg(lambda s: " | ".join(dict.fromkeys(s)))
        codes = labels.groupby("run_id")["code"].agg(lambda s: sorted(set(s)))
        frame["notes"] = frame["run_id"].map(notes)
        frame["codes"] = [c if isinstance(c, list) else [] for c in frame["run_id"].map(codes)]
        noted = frame["notes"].notna()
        if noted.any():
            frame.loc[noted, "errors"] = [f"{e} \n {mask_numbers(n)}" for e, n in
                                          zip(frame.loc[noted, "errors"], frame.loc[noted, "notes"], strict=True)]
    # Runs of one agent repeat the same course again and again: describe each distinct course once.
    flags = ["same_calls", "cost_high", "steps_high", "no_output", "admits_failure"]
    course = frame["marks"].fillna("") + "\x1e" + frame["status"].fillna("")
    for name in flags:
        course = course + "\x1e" + (frame[name] >= SAME_CALLS if name == "same_calls" else frame[name]).astype(str)
    codes, uniques = pd.factorize(course, sort=False)
    first = np.unique(codes, return_index=True)[1]
    described = [_describe_course(frame.iloc[i]) for i in first]
    frame["signature"] = np.array([d[0] for d in described], dtype=object)[codes]
    frame["shape"] = np.array([d[1] for d in described], dtype=object)[codes]
    return frame


def _describe_course(row: pd.Series) -> tuple[str, str]:
    marks = row["marks"].split("\x1f") if row["marks"] else []
    return signature_text(marks), shape_text(marks, row["status"], row["same_calls"] >= SAME_CALLS,
                                              bool(row["cost_high"]), bool(row["steps_high"]),
                                              bool(row["no_output"]), bool(row["admits_failure"]))


def collapse(marks) -> list[str]:
    """Consecutive repeats of one call collapsed to `name*` (a loop reads the same however long it ran)."""
    out: list[str] = []
    for mark in list(marks)[:MAX_SIGNATURE * 4]:
        if out and out[-1].rstrip("*") == mark:
            out[-1] = mark + "*"
        else:
            out.append(mark)
    return out[:MAX_SIGNATURE]


def signature_text(marks) -> str:
    """The signature document: the run's tool calls (and checks), consecutive repeats collapsed."""
    return " ".join(_token(m) for m in collapse(marks if marks is not None else [])) or "no_tools"


def _token(mark: str) -> str:
    # vectorizer tokens are \S+; a repeat and an error stay visible as suffixes
    return re.sub(r"\s+", "_", mark.replace("*", "_repeated").replace("!", "_error"))


_FLAGS = frozenset({"cost_high", "steps_high", "same_call_repeated", "no_tools"})


_PASSING = frozenset({"allow", "allowed", "approved", "pass", "passed", "ok", "true"})


def shape_text(marks, status: str | None = None, repeated_call: bool = False, cost_high: bool = False,
               steps_high: bool = False, no_output: bool = False, admits_failure: bool = False) -> str:
    """What kind of failure the run's course shows, in words that do not depend on the agent or its tools.

    Tool names and texts differ between agents; a loop, an ignored tool error or a blocked action look the
    same everywhere. These tokens let runs of different agents that failed the same way meet in one cluster.
    """
    marks = list(marks if marks is not None else [])
    tokens: list[str] = []
    tool_idx = [i for i, m in enumerate(marks) if ":" not in m and m.rstrip("!") not in ("agent", "llm")]
    failed = [i for i in tool_idx if marks[i].endswith("!")]
    if failed:
        tokens.append("tool_error")
        later = [i for i in tool_idx if i > failed[0] and not marks[i].endswith("!")]
        tokens.append("continued_after_tool_error" if later else "stopped_at_tool_error")
        if len(failed) > 1:
            tokens.append("tool_errors_repeated")
    blocked = [i for i, m in enumerate(marks) if ":" in m and m.split(":", 1)[1].rstrip("!").lower() not in _PASSING]
    if blocked:
        tokens.append("blocked_by_check")
        if any(i > blocked[0] for i in tool_idx):
            tokens.append("acted_after_block")
    if status == "error":
        tokens.append("run_error")
    if any(m.rstrip("!") == "llm" and m.endswith("!") for m in marks):
        tokens.append("model_call_error")
    if repeated_call:
        tokens.append("same_call_repeated")
    if cost_high:
        tokens.append("cost_high")
    if steps_high:
        tokens.append("steps_high")
    if not tool_idx:
        tokens.append("no_tool_calls")
    if no_output:
        tokens.append("no_output")
    elif admits_failure:
        tokens.append("admits_failure")
    # Nothing unusual is an absence, not a feature: an empty shape leaves such runs to be told apart by
    # their words and tool calls alone (a shared token would pull every one of them together).
    return " ".join(tokens)


def readable_signature(signature: str, limit: int = 6) -> str:
    """`get_customer lookup_order_repeated` -> `get_customer > lookup_order (repeated)`; checks that passed
    (`prompt_injection:allow`) are left out, checks that did not stay (`refund_policy:block`)."""
    tokens = [t for t in signature.split() if t not in _FLAGS and
              not (":" in t and t.split(":", 1)[1].split("_")[0].lower() in _PASSING)]
    shown = [t.replace("_repeated", " (repeated)").replace("_error", " (error)").replace(":", ": ")
             for t in tokens[:limit]]
    return " > ".join(shown) + (" > ..." if len(tokens) > limit else "")


SHAPE_PHRASES = {
    "same_call_repeated": "same call repeated",
    "blocked_by_check": "blocked by a check",
    "acted_after_block": "acted after the block",
    "run_error": "run failed",
    "model_call_error": "model call failed",
    "stopped_at_tool_error": "stopped at a tool error",
    "continued_after_tool_error": "went on after a tool error",
    "tool_errors_repeated": "repeated tool errors",
    "tool_error": "tool error",
    "cost_high": "cost far above usual",
    "steps_high": "far more steps than usual",
    "no_tool_calls": "no tool calls",
    "no_output": "no final answer",
    "admits_failure": "answer admits failure",
}
"""Shape tokens in the words a cluster name uses, in the order they are worth reading."""


def describe_shape(tokens) -> str:
    """Shape tokens as a short phrase: `run failed, model call failed`. A bare `tool error` is left out when
    a phrase says more about it."""
    present = set(tokens)
    if present & {"stopped_at_tool_error", "continued_after_tool_error"}:
        present.discard("tool_error")
    return ", ".join(p for t, p in SHAPE_PHRASES.items() if t in present)
