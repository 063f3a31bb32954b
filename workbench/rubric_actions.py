"""The expected-actions check (tau-bench style): compare a run's tool calls with the task's expected actions.

Expected actions live in `runs.attributes["expected_actions"]` as a list of `{"name": str, "arguments": dict}`
(the shared convention of every loader). Arguments are compared as parsed JSON values, so key order and
`250` against `250.0` do not matter, while `true` against `1` does.

Three ways to compare the ordered list of expected actions E with the agent's calls C:

* `subsequence` (default): every expected action appears among the calls with equal arguments, in order
  (C may hold other calls in between);
* `exact`: C, restricted to the compared tools, equals E, same length and order: nothing missing, nothing
  extra;
* `multiset`: as `exact`, but order is ignored.

`ignore_tools` (a pattern) leaves tools out on both sides: tau-bench rewards the final database state, so
read-only tools (`get_*`, `search_*`, `calculate`) change nothing and are best left out; `skip_failed_calls`
drops calls that failed (status error, or a result matching `error_result_pattern`), since a call the tool
refused changed nothing either. See docs/rubrics.md for the tau-bench rubric and how well it agrees with the
benchmark's own reward.

Done in Python rather than SQL: comparing nested JSON values in order is clearer here, and only runs that
carry expected actions are read.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any, Literal

import duckdb
import pandas as pd
from pydantic import Field

from workbench.rubric_checks import RESULT_COLUMNS, Args, OptPattern, Scorer, register_scorer


class ExpectedActionsArgs(Args):
    match: Literal["subsequence", "exact", "multiset"] = "subsequence"
    ignore_tools: OptPattern = None
    """Tools whose names match this pattern are left out of the comparison, expected and called alike."""
    skip_failed_calls: bool = False
    error_result_pattern: OptPattern = None
    """With `skip_failed_calls`: a call whose result matches this pattern failed too (e.g. `^Error`)."""
    attribute: str = Field("expected_actions", min_length=1)
    """Key in runs.attributes holding the expected actions."""


def canonical(value: Any) -> Any:
    """A hashable form of a JSON value in which equal JSON compares equal (1 == 1.0, but true != 1)."""
    if isinstance(value, dict):
        return ("o", tuple(sorted((str(k), canonical(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("a", tuple(canonical(v) for v in value))
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    return ("s", value)


def _parse(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _expected(raw: str | None) -> list[tuple[str, Any]] | None:
    actions = _parse(raw)
    if not isinstance(actions, list):
        return None
    out = []
    for a in actions:
        if isinstance(a, dict) and isinstance(a.get("name"), str):
            args = a.get("arguments", a.get("kwargs", {}))
            out.append((a["name"], canonical(_parse(args))))
    return out


def compare(expected: list[tuple[str, Any]], calls: list[tuple[str, Any, str]], match: str
            ) -> tuple[float, bool, str | None, str]:
    """(share of expected actions matched, passed, deciding step id, evidence) for one run.

    `calls` are (name, canonical arguments, step id) in call order.
    """
    if match == "multiset":
        want, got = Counter(expected), Counter((n, a) for n, a, _ in calls)
        missing, extra = want - got, got - want
        matched = sum((want & got).values())
        share = matched / len(expected) if expected else 1.0
        if not missing and not extra:
            return share, True, None, f"all {len(expected)} expected action(s), in any order"
        if missing:
            name = next(iter(missing))[0]
            return share, False, None, f"{sum(missing.values())} expected action(s) missing, e.g. {name}"
        name = next(iter(extra))[0]
        step = next(s for n, a, s in calls if (n, a) in extra)
        return share, False, step, f"{sum(extra.values())} unexpected call(s), first {name}"
    if match == "exact":
        for i, (want, call) in enumerate(zip(expected, calls, strict=False)):
            if want != call[:2]:
                detail = f"call {i + 1} is {call[0]}, expected {want[0]}"
                if want[0] == call[0]:
                    detail = f"call {i + 1} ({call[0]}) has other arguments than expected"
                return i / len(expected), False, call[2], detail
        if len(calls) < len(expected):
            n = len(calls)
            return n / len(expected), False, None, f"expected action {n + 1} ({expected[n][0]}) never called"
        if len(calls) > len(expected):
            extra = calls[len(expected)]
            return 1.0, False, extra[2], f"unexpected extra call {extra[0]} after the expected ones"
        return 1.0, True, None, f"calls equal the {len(expected)} expected action(s)"
    i = 0
    last_step = None
    for k, want in enumerate(expected):
        while i < len(calls) and calls[i][:2] != want:
            i += 1
        if i == len(calls):
            near = "; called with other arguments" if any(c[0] == want[0] for c in calls) else ""
            return k / len(expected), False, last_step, f"expected action {k + 1} ({want[0]}) missing{near}"
        last_step = calls[i][2]
        i += 1
    return 1.0, True, None, f"all {len(expected)} expected action(s) found in order"


def _evaluate(cur: duckdb.DuckDBPyConnection, a: ExpectedActionsArgs) -> pd.DataFrame:
    path = "$." + json.dumps(a.attribute)
    wanted = cur.execute(
        "SELECT t.run_id, CAST(json_extract(r.attributes, $path) AS VARCHAR) FROM _target t "
        "JOIN runs r USING (run_id) ORDER BY t.run_id", {"path": path}).fetchall()
    params: dict[str, Any] = {"path": path}
    failed = "false"
    if a.skip_failed_calls:
        failed = "(s.status = 'error' OR s.error IS NOT NULL"
        if a.error_result_pattern is not None:
            params["pat"] = a.error_result_pattern
            failed += " OR coalesce(regexp_matches(s.tool_result, $pat), false)"
        failed += ")"
    rows = cur.execute(
        f"SELECT s.run_id, s.tool_name, CAST(s.tool_args AS VARCHAR), s.step_id, {failed} "  # noqa: S608
        "FROM steps s JOIN _target t USING (run_id) JOIN runs r USING (run_id) "
        "WHERE s.tool_name IS NOT NULL AND json_extract(r.attributes, $path) IS NOT NULL "
        "ORDER BY s.run_id, s.seq NULLS LAST, s.step_id", params).fetchall()
    ignore = re.compile(a.ignore_tools) if a.ignore_tools else None
    calls: dict[str, list[tuple[str, Any, str]]] = {}
    for run_id, name, args, step_id, bad in rows:
        if bad or (ignore and ignore.search(name)):
            continue
        calls.setdefault(run_id, []).append((name, canonical(_parse(args)), step_id))
    out = []
    for run_id, raw in wanted:
        expected = _expected(raw) if raw is not None else None
        if expected is None:
            out.append((run_id, None, None, None, "no expected actions"))
            continue
        if ignore:
            expected = [e for e in expected if not ignore.search(e[0])]
        share, passed, step, detail = compare(expected, calls.get(run_id, []), a.match)
        out.append((run_id, share, passed, step, detail))
    frame = pd.DataFrame(out, columns=list(RESULT_COLUMNS))
    return frame.astype({"value": "float64", "passed": "boolean"})


EXPECTED_ACTIONS = register_scorer(Scorer(
    name="expected_actions", args_model=ExpectedActionsArgs, python=_evaluate, example={"match": "subsequence"},
    doc="The run's tool calls contain the task's expected actions with equal arguments (tau-bench style); "
        "value = share of expected actions matched; runs without expected actions are not decided."))
