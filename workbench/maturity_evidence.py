"""The measurable evidence of the maturity assessment: named metrics computed with SQL over the canonical tables.

Each metric has a name the framework file refers to (`metric = "tool_args_share"`), a unit that says how its
value is shown, and a definition in words. A metric is None ("no evidence") when the store holds no runs, when a
table it reads is missing (an older database opened read-only), or when its denominator is empty (no failed
runs to measure review coverage on, say); a criterion on it is then unmet, and the scorecard says why.

Values are rounded to six decimals and costs are summed as decimals, so the same store always gives the same
figures, whatever order DuckDB's threads add them in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from workbench import labels
from workbench.loaders.base import IMPORTED_REVIEWER
from workbench.rubric_results import CURRENT_LABELS
from workbench.store import Store
from workbench.taxonomy import default_taxonomy

Unit = Literal["share", "count", "usd", "change", "score"]

FAILURE_MODE_ATTRIBUTE = "workbench.demo.failure_mode"
"""A run attribute naming a known failure mode (the demo fleet writes it); `safety.<mode>` in the taxonomy
makes the run a policy violation, as a safety.* label does."""


@dataclass(frozen=True)
class Metric:
    """One named piece of evidence."""

    name: str
    label: str
    """Short human name, as the scorecard shows it."""
    unit: Unit
    description: str
    """How it is computed, in words."""


_M = Metric
METRICS: dict[str, Metric] = {m.name: m for m in (
    _M("runs", "runs in the store", "count", "Runs of any format in the store."),
    _M("agents", "agents traced", "count", "Distinct agent names on runs."),
    _M("agent_versions", "agent versions traced", "count", "Distinct (agent, version) pairs with a version."),
    _M("formats", "trace formats", "count", "Distinct source formats (loaders) the runs came from."),
    _M("environments", "environments traced", "count", "Distinct deployment environments on runs."),
    _M("weeks_of_data", "weeks with runs", "count", "Calendar weeks (from Monday) in which runs started."),
    _M("import_problem_share", "imports with rejects or failures", "share",
       "Imported files (re-imports skipped) that landed partly, were rejected or failed."),
    _M("llm_model_tokens_share", "LLM steps with model and tokens", "share",
       "LLM steps that carry a model name and input or output token counts."),
    _M("llm_cost_share", "LLM steps with a cost", "share", "LLM steps with a cost, reported or estimated."),
    _M("tool_args_share", "tool steps with arguments", "share", "Tool steps whose arguments were recorded."),
    _M("step_timing_share", "steps with start and duration", "share",
       "Steps with a start time and a duration."),
    _M("runs_with_version", "runs with an agent version", "share", "Runs that carry an agent version."),
    _M("runs_with_outcome", "runs with a known outcome", "share", "Runs whose outcome is success or failure."),
    _M("cost_known_share", "runs with a cost", "share", "Runs with a cost, reported or estimated."),
    _M("cost_reported_share", "runs with a reported cost", "share",
       "Runs whose cost came from the source, none of it estimated from the price table."),
    _M("cost_missing_share", "runs without a cost", "share", "Runs with no cost at all."),
    _M("cost_per_success", "cost per success (USD)", "usd",
       "All cost of the runs (failures included) over successful runs."),
    _M("cost_per_success_weeks", "weeks with a cost per success", "count",
       "Calendar weeks with a known cost and at least one successful run."),
    _M("cost_per_success_change", "cost per success, week over week", "change",
       "Relative change of cost per success from the second latest to the latest such week."),
    _M("human_steps", "human (approval, escalation) steps", "count", "Steps of kind human."),
    _M("human_run_share", "runs with a human step", "share", "Runs with at least one step of kind human."),
    _M("failures", "failed runs", "count", "Runs whose outcome is failure or whose status is error."),
    _M("review_coverage", "failed runs labeled by a reviewer", "share",
       f"Failed runs with a current label from a reviewer other than `{IMPORTED_REVIEWER}`."),
    _M("reviewers", "reviewers", "count", f"Distinct reviewers (not `{IMPORTED_REVIEWER}`) in the label events."),
    _M("reviewer_agreement", "reviewer agreement (kappa / alpha)", "score",
       "Agreement per label code (workbench.labels.agreement), averaged weighted by the runs rated."),
    _M("review_weeks", "weeks with reviewer labels", "count", "Calendar weeks in which reviewers labeled runs."),
    _M("label_events", "label events (audit trail)", "count",
       f"Label events written by reviewers (not `{IMPORTED_REVIEWER}`)."),
    _M("settled_disagreement_share", "disagreements settled", "share",
       "Settled run x code disagreements over settled and open ones."),
    _M("rubrics", "rubrics defined", "count", "Distinct rubrics stored."),
    _M("rubric_coverage", "runs scored against a rubric", "share", "Runs with at least one rubric score."),
    _M("clusterings_saved", "failure clusterings saved", "count", "Clusterings saved for a review."),
    _M("guardrail_run_share", "runs with a guardrail step", "share",
       "Runs with at least one step of kind guardrail (a policy gate)."),
    _M("policy_violation_rate", "runs with a policy violation", "share",
       "Runs with a current safety.* label, or whose known failure mode is a safety.* taxonomy code."),
    _M("redacted_import_share", "imports passed through redaction", "share",
       "Imported files (re-imports skipped) ingested with redaction on (`redacted N value(s)`)."),
    _M("secrets_redacted", "values masked by redaction", "count",
       "Secrets and personal data masked at ingest, summed over imports."),
)}

_COST = "CAST(sum(CAST(cost_usd AS DECIMAL(18, 12))) AS DOUBLE)"

_RUNS_SQL = f"""SELECT count(*) AS runs, count(DISTINCT agent) AS agents,
    count(DISTINCT (agent, agent_version)) FILTER (agent_version IS NOT NULL) AS agent_versions,
    count(DISTINCT format) AS formats, count(DISTINCT environment) AS environments,
    count(DISTINCT date_trunc('week', started_at)) AS weeks_of_data,
    avg((agent_version IS NOT NULL)::INT) AS runs_with_version,
    avg((outcome IN ('success', 'failure'))::INT) AS runs_with_outcome,
    avg((cost_usd IS NOT NULL)::INT) AS cost_known_share,
    avg((cost_usd IS NOT NULL AND NOT coalesce(cost_estimated, false))::INT) AS cost_reported_share,
    avg((cost_usd IS NULL)::INT) AS cost_missing_share,
    {_COST} / nullif(count(*) FILTER (outcome = 'success'), 0) AS cost_per_success,
    count(*) FILTER (outcome = 'failure' OR status = 'error') AS failures
FROM runs"""

_STEPS_SQL = """SELECT
    avg((model IS NOT NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL))::INT)
        FILTER (kind = 'llm') AS llm_model_tokens_share,
    avg((cost_usd IS NOT NULL)::INT) FILTER (kind = 'llm') AS llm_cost_share,
    avg((tool_args IS NOT NULL)::INT) FILTER (kind = 'tool') AS tool_args_share,
    avg((started_at IS NOT NULL AND duration_ms IS NOT NULL)::INT) AS step_timing_share,
    count(*) FILTER (kind = 'human') AS human_steps,
    count(DISTINCT run_id) FILTER (kind = 'human') / $runs AS human_run_share,
    count(DISTINCT run_id) FILTER (kind = 'guardrail') / $runs AS guardrail_run_share
FROM steps"""

_WEEKS_SQL = f"""SELECT week, cost / successes AS cost_per_success FROM (
    SELECT date_trunc('week', started_at) AS week, {_COST} AS cost,
           count(*) FILTER (outcome = 'success') AS successes
    FROM runs WHERE started_at IS NOT NULL GROUP BY week)
WHERE successes > 0 AND cost IS NOT NULL ORDER BY week"""

_IMPORTS_SQL = """SELECT
    avg((status IN ('partial', 'rejected', 'failed'))::INT) AS import_problem_share,
    avg((coalesce(message, '') LIKE 'redacted % value(s)%')::INT) AS redacted_import_share,
    coalesce(sum(TRY_CAST(nullif(regexp_extract(message, 'redacted (\\d+) value', 1), '') AS BIGINT)), 0)
        AS secrets_redacted
FROM imports WHERE status IS DISTINCT FROM 'skipped'"""

_LABELS_SQL = f"""SELECT
    (SELECT count(*) FROM label_events WHERE reviewer <> $imported) AS label_events,
    (SELECT count(DISTINCT reviewer) FROM label_events WHERE reviewer <> $imported) AS reviewers,
    (SELECT count(DISTINCT date_trunc('week', created_at)) FROM label_events WHERE reviewer <> $imported)
        AS review_weeks,
    (SELECT count(DISTINCT r.run_id) FROM runs r JOIN {CURRENT_LABELS} c USING (run_id)
     WHERE (r.outcome = 'failure' OR r.status = 'error') AND c.reviewer <> $imported)
        / nullif((SELECT count(*) FROM runs WHERE outcome = 'failure' OR status = 'error'), 0) AS review_coverage,
    (SELECT count(*) FROM runs r
     WHERE r.run_id IN (SELECT run_id FROM {CURRENT_LABELS} WHERE code LIKE 'safety.%')
        OR list_contains($safety, 'safety.' || json_extract_string(r.attributes, $mode_path)))
        / $runs AS policy_violation_rate"""

_SCORES_SQL = """SELECT (SELECT count(DISTINCT rubric_id) FROM rubrics) AS rubrics,
    (SELECT count(DISTINCT run_id) FROM scores WHERE run_id IN (SELECT run_id FROM runs)) / $runs
        AS rubric_coverage"""


def _tables(store: Store) -> set[str]:
    return {r for (r,) in store.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}


def _row(store: Store, sql: str, params: dict | None = None) -> dict:
    cur = store.sql(sql, params)
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def _safety_codes(store: Store) -> list[str]:
    """Safety codes of every taxonomy version the store holds and of the default taxonomy."""
    stored = {c for (c,) in store.sql("SELECT DISTINCT code FROM taxonomy WHERE code LIKE 'safety.%'").fetchall()
              } if "taxonomy" in _tables(store) else set()
    return sorted(stored | {c for c in default_taxonomy().codes() if c.startswith("safety.")})


def _week_change(store: Store) -> dict:
    weeks = store.df(_WEEKS_SQL)
    values = list(weeks["cost_per_success"])
    change = (values[-1] - values[-2]) / values[-2] if len(values) >= 2 and values[-2] else None
    return {"cost_per_success_weeks": len(values), "cost_per_success_change": change}


def _agreement(store: Store) -> dict:
    table = labels.agreement(store).dropna(subset=["value"])
    weights = table["runs"].sum()
    return {"reviewer_agreement": float((table["value"] * table["runs"]).sum() / weights) if weights else None}


def _settled(store: Store) -> dict:
    settled = len(labels.settled_labels(store))
    still_open = len(labels.disagreements(store))
    both = settled + still_open
    return {"settled_disagreement_share": settled / both if both else None}


def _runs(store: Store, runs: int) -> dict:
    return _row(store, _RUNS_SQL)


def _steps(store: Store, runs: int) -> dict:
    return _row(store, _STEPS_SQL, {"runs": runs})


def _imports(store: Store, runs: int) -> dict:
    return _row(store, _IMPORTS_SQL)


def _labels(store: Store, runs: int) -> dict:
    return _row(store, _LABELS_SQL, {"imported": IMPORTED_REVIEWER, "runs": runs, "safety": _safety_codes(store),
                                     "mode_path": f'$."{FAILURE_MODE_ATTRIBUTE}"'})


def _scores(store: Store, runs: int) -> dict:
    return _row(store, _SCORES_SQL, {"runs": runs})


def _clusterings(store: Store, runs: int) -> dict:
    return _row(store, "SELECT count(*) AS clusterings_saved FROM clusterings")


_Group = tuple[tuple[str, ...], Callable[[Store, int], dict]]
_GROUPS: tuple[_Group, ...] = (
    (("runs",), _runs),
    (("runs", "steps"), _steps),
    (("runs",), lambda store, runs: _week_change(store)),
    (("imports",), _imports),
    (("runs", "label_events"), _labels),
    (("label_events",), lambda store, runs: _agreement(store) | _settled(store)),
    (("runs", "scores", "rubrics"), _scores),
    (("clusterings",), _clusterings),
)
"""The tables each query reads, and the query: a group whose tables are missing yields no evidence."""


def _clean(value: object) -> float | int | None:
    if value is None or pd.isna(value):
        return None
    if isinstance(value, bool | int):
        return int(value)
    return round(float(value), 6)


def collect_evidence(store: Store) -> dict[str, float | int | None]:
    """Every metric of `METRICS` for this store, by name (None: no evidence).

    Example:
        >>> collect_evidence(store)["tool_args_share"]          # doctest: +SKIP
        0.998
    """
    found: dict[str, float | int | None] = dict.fromkeys(METRICS)
    tables = _tables(store)
    runs = store.sql("SELECT count(*) FROM runs").fetchone()[0] if "runs" in tables else 0
    if not runs:
        return found
    for needed, query in _GROUPS:
        if set(needed) <= tables:
            found.update({k: _clean(v) for k, v in query(store, runs).items()})
    return found


def scope(store: Store, limit: int = 12) -> dict:
    """What the evidence was measured on: runs, their period, formats and agents (with versions). Agent names
    and formats come from trace files: whoever shows them escapes them."""
    tables = _tables(store)
    if "runs" not in tables:
        return {"runs": 0, "first_run": None, "last_run": None, "formats": [], "agents": [], "more_agents": 0}
    first, last, n = store.sql("SELECT min(started_at), max(started_at), count(*) FROM runs").fetchone()
    formats = [f for (f,) in store.sql("SELECT DISTINCT format FROM runs ORDER BY format").fetchall()]
    agents = store.sql("""SELECT coalesce(agent, '(no agent)') AS agent, count(*) AS runs,
                            list(DISTINCT agent_version ORDER BY agent_version) FILTER (agent_version IS NOT NULL)
                                AS versions
                         FROM runs GROUP BY ALL ORDER BY runs DESC, agent""").fetchall()
    shown = [_agent_line(agent, versions) for agent, _n, versions in agents[:limit]]
    return {"runs": int(n), "first_run": first.isoformat(timespec="seconds") if first else None,
            "last_run": last.isoformat(timespec="seconds") if last else None, "formats": formats,
            "agents": shown, "more_agents": max(0, len(agents) - limit)}


def _agent_line(agent: str, versions: list[str] | None) -> str:
    return f"{agent} ({', '.join(versions)})" if versions else agent


def format_value(name: str, value: float | None) -> str:
    """A metric's value as the scorecard shows it."""
    if value is None:
        return "no evidence"
    unit = METRICS[name].unit
    if unit == "share":
        return f"{value:.1%}"
    if unit == "usd":
        return f"${value:.4f}"
    if unit == "change":
        return f"{value:+.1%}"
    if unit == "score":
        return f"{value:.2f}"
    return f"{int(value):,}"
