"""The scoring engine: run a rubric's checks (and judges, when given) over a selection of runs, store the
scores, and read them back as verdicts, pass rates, failing runs and agreement with outcomes or labels.

Scores are stored per run x criterion x scorer with value, passed (NULL = not applicable), the evidence step
and text, the scorer's name and its arguments. Re-scoring the same runs under the same rubric version replaces
their automatic scores and keeps human ones; a changed rubric is a new version with its own scores.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbench.judge import JudgeError, JudgeRequest, JudgeResult, judge_config, judge_name
from workbench.queries import RunFilter, _where
from workbench.rubric_checks import RESULT_COLUMNS, registry
from workbench.rubrics import Criterion, Rubric, _now, save_rubric
from workbench.store import Store

_INSERT = ("INSERT INTO scores SELECT $e_rb, $e_v, q.run_id, $e_c, $e_scorer, $e_name, $e_args, q.value, q.passed, "
           "q.step_id, q.evidence, q.cost_usd, $e_at FROM ({query}) q")


@dataclass(frozen=True)
class ScoreReport:
    """What one `score_runs` call did."""

    rubric: str
    version: str
    n_runs: int
    """Runs selected."""
    seconds: float
    summary: pd.DataFrame
    """One row per criterion: kind, scorer, applicable, passed, failed, pass_rate, cost_usd, seconds."""
    not_scored: list[str]
    """Criteria left alone: human ones (scored by reviewers) and judge ones without a judge."""


def _selection(flt: RunFilter | None, run_ids: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    if run_ids is not None:
        return "SELECT run_id FROM runs WHERE list_contains($sel_ids, run_id)", {"sel_ids": list(run_ids)}
    where, params = _where(flt or RunFilter())
    return f"SELECT run_id FROM runs {where}", params  # noqa: S608 - fixed fragments, values as parameters


def _make_target(cur, crit: Criterion) -> None:
    pred, params = crit.when.sql() if crit.when else ("true", {})
    cur.execute(f"CREATE OR REPLACE TEMP TABLE _target AS SELECT run_id FROM _selected "  # noqa: S608
                f"JOIN runs r USING (run_id) WHERE {pred}", params)


def _keys(rubric: Rubric, version: str, crit: Criterion, scorer: str, name: str, args: Any) -> dict[str, Any]:
    return {"e_rb": rubric.name, "e_v": version, "e_c": crit.id, "e_scorer": scorer, "e_name": name,
            "e_args": json.dumps(args, sort_keys=True), "e_at": _now()}


def _write(cur, keys: dict[str, Any], query: str, params: dict[str, Any]) -> None:
    """Replace this scorer's scores of the selected runs: the target's results plus not-applicable rows."""
    cur.execute("DELETE FROM scores WHERE rubric_id = $e_rb AND version = $e_v AND criterion = $e_c "
                "AND scorer = $e_scorer AND run_id IN (SELECT run_id FROM _selected)",
                {k: keys[k] for k in ("e_rb", "e_v", "e_c", "e_scorer")})
    cur.execute(_INSERT.format(query=query), {**params, **keys})
    cur.execute(_INSERT.format(query="SELECT run_id, NULL::DOUBLE AS value, NULL::BOOLEAN AS passed, "
                               "NULL::VARCHAR AS step_id, 'not applicable' AS evidence, NULL::DOUBLE AS cost_usd "
                               "FROM _selected WHERE run_id NOT IN (SELECT run_id FROM _target)"), keys)


def _frame_query(frame: pd.DataFrame) -> tuple[str, dict[str, Any]]:
    """A Python scorer's frame as a query (lists as parameters: no DataFrame scan on a locked-down connection)."""
    cols = list(RESULT_COLUMNS) + ["cost_usd"]
    frame = frame.reindex(columns=cols)
    params = {f"f_{c}": [None if pd.isna(v) else v for v in frame[c].tolist()] for c in cols}
    for c in ("value", "cost_usd"):
        params[f"f_{c}"] = [None if v is None else float(v) for v in params[f"f_{c}"]]
    params["f_passed"] = [None if v is None else bool(v) for v in params["f_passed"]]
    query = ("SELECT unnest($f_run_id::VARCHAR[]) AS run_id, unnest($f_value::DOUBLE[]) AS value, "
             "unnest($f_passed::BOOLEAN[]) AS passed, unnest($f_step_id::VARCHAR[]) AS step_id, "
             "unnest($f_evidence::VARCHAR[]) AS evidence, unnest($f_cost_usd::DOUBLE[]) AS cost_usd")
    return query, params


def _judge_frame(cur, crit: Criterion, judge: Callable[[JudgeRequest], JudgeResult]) -> pd.DataFrame:
    found = cur.execute("SELECT r.run_id, r.agent, r.agent_version, r.task_id, r.input, r.output FROM _target "
                        "JOIN runs r USING (run_id) ORDER BY r.run_id")
    names = [d[0] for d in found.description]
    runs = [dict(zip(names, row, strict=True)) for row in found.fetchall()]  # None stays None (not NaN)
    steps = cur.execute(
        "SELECT run_id, kind, coalesce(tool_name, name, kind) AS what, left(CAST(tool_args AS VARCHAR), 300) AS a, "
        "left(coalesce(error, tool_result, ''), 300) AS res FROM steps JOIN _target USING (run_id) "
        "WHERE kind IN ('tool', 'retrieval', 'human', 'guardrail') ORDER BY run_id, seq").df()
    lines: dict[str, list[str]] = {}
    for r in steps.itertuples(index=False):
        lines.setdefault(r.run_id, []).append(f"[{r.kind}] {r.what} {r.a or ''} -> {r.res}")
    rows = []
    for run in runs:
        request = JudgeRequest(crit.id, crit.prompt or "", crit.scale, run, "\n".join(lines.get(run["run_id"], [])))
        try:
            res = judge(request)
        except JudgeError as exc:
            rows.append((run["run_id"], None, None, None, f"judge failed: {exc}", None))
            continue
        passed = res.passed
        if passed is None and res.value is not None:
            passed = res.value >= (0.5 if crit.scale == "pass_fail" else (crit.pass_min or 4))
        rows.append((run["run_id"], res.value, passed, None, res.explanation, res.cost_usd))
    return pd.DataFrame(rows, columns=[*RESULT_COLUMNS, "cost_usd"])


def score_runs(store: Store, rubric: Rubric, flt: RunFilter | None = None, *, run_ids: Sequence[str] | None = None,
               criteria: Sequence[str] | None = None, judges: Mapping[str, Callable] | None = None,
               source: str = "notebook", source_text: str | None = None) -> ScoreReport:
    """Score the selected runs (a filter, explicit run ids, or everything) against the rubric and store it.

    Args:
        criteria: only these criterion ids (default: every check criterion, and judge criteria with a judge).
        judges: judge name -> callable, for judge criteria (`Criterion.judge`, default "default"). Nothing is
            sent to any judge unless it is given here.
        source, source_text: recorded with the rubric version when it is new.
    """
    started = time.perf_counter()
    version = save_rubric(store, rubric, source=source, source_text=source_text)
    judges = dict(judges or {})
    chosen = [c for c in rubric.criteria if criteria is None or c.id in criteria]
    unknown = set(criteria or ()) - {c.id for c in rubric.criteria}
    if unknown:
        raise KeyError(f"rubric {rubric.name!r} has no criteria {sorted(unknown)}")
    auto = [c for c in chosen if c.kind == "check" or (c.kind == "judge" and c.judge in judges)]
    not_scored = [c.id for c in chosen if c not in auto]
    select_sql, select_params = _selection(flt, run_ids)
    timings: dict[str, float] = {}
    # judges first, on a read cursor: slow calls to an endpoint must not hold the write lock
    judged: dict[str, pd.DataFrame] = {}
    if any(c.kind == "judge" for c in auto):
        cur = store.cursor()
        try:
            cur.execute(f"CREATE OR REPLACE TEMP TABLE _selected AS {select_sql}", select_params)
            for c in (c for c in auto if c.kind == "judge"):
                t0 = time.perf_counter()
                _make_target(cur, c)
                judged[c.id] = _judge_frame(cur, c, judges[c.judge])
                timings[c.id] = time.perf_counter() - t0
        finally:
            cur.close()
    scorers = registry()
    with store.transaction() as cur:
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _selected AS {select_sql}", select_params)
        n_runs = cur.execute("SELECT count(*) FROM _selected").fetchone()[0]
        for c in auto:
            t0 = time.perf_counter()
            _make_target(cur, c)
            if c.kind == "judge":
                j = judges[c.judge]
                keys = _keys(rubric, version, c, f"judge:{judge_name(j)}", judge_name(j),
                             {"prompt": c.prompt, "scale": c.scale, **judge_config(j)})
                query, params = _frame_query(judged[c.id])
            else:
                sc = scorers[c.check]  # type: ignore[index]
                args = sc.args_model.model_validate(c.args)
                keys = _keys(rubric, version, c, "auto", sc.name, c.args)
                if sc.sql is not None:
                    inner, params = sc.sql(args)
                    query = f"SELECT *, NULL::DOUBLE AS cost_usd FROM ({inner})"  # noqa: S608
                else:
                    query, params = _frame_query(sc.evaluate(cur, args))
            _write(cur, keys, query, params)
            timings[c.id] = timings.get(c.id, 0.0) + time.perf_counter() - t0
        summary = cur.execute(
            """SELECT criterion, any_value(scorer_name) AS scorer, count(*) FILTER (passed IS NOT NULL) AS applicable,
                   count(*) FILTER (passed) AS passed, count(*) FILTER (NOT passed) AS failed,
                   sum(cost_usd) AS cost_usd
               FROM scores WHERE rubric_id = $rb AND version = $v AND scorer NOT LIKE 'human:%'
                 AND run_id IN (SELECT run_id FROM _selected) AND list_contains($ids, criterion)
               GROUP BY criterion""",
            {"rb": rubric.name, "v": version, "ids": [c.id for c in auto]}).df()
    order = {c.id: i for i, c in enumerate(rubric.criteria)}
    summary["kind"] = [rubric.criterion(c).kind for c in summary["criterion"]]
    summary["pass_rate"] = summary["passed"] / summary["applicable"].where(summary["applicable"] > 0)
    summary["seconds"] = [round(timings.get(c, 0.0), 4) for c in summary["criterion"]]
    summary = summary.sort_values("criterion", key=lambda s: s.map(order)).reset_index(drop=True)
    cols = ["criterion", "kind", "scorer", "applicable", "passed", "failed", "pass_rate", "cost_usd", "seconds"]
    return ScoreReport(rubric.name, version, int(n_runs), time.perf_counter() - started, summary[cols], not_scored)
