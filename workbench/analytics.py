"""Service levels and costs: what an operator reports, as DataFrames (figures in `workbench.viz_ops`).

Two small tables derived from `steps` keep these queries at a few milliseconds on a million steps:

* `call_facts`, one row per tool call: was it a repeat of an identical call (same tool, same arguments), a
  retry after a failed call of the same tool, which LLM call asked for it and its share of that call's cost;
* `run_flags`, one row per run: human steps, retries, the largest identical-call count, money on loops and
  retries, and the run's cost split into reported and estimated.

`refresh_derived` rebuilds them when the steps changed (it compares a fingerprint of the store); every public
function here calls it first, so they are never stale. The rebuild does not bump the data version: it adds no
information, and UI caches keyed on that version stay valid.

Definitions (also in docs/analytics.md):

* success rate: successes / (successes + failures); runs with an unknown outcome are left out;
* needed a human: the run has at least one step of kind `human`;
* cost per success: all cost of the selected runs (failures included) / successes;
* error rate: share of runs with status `error`; retry rate: share of runs with at least one retry;
* "this week" is the 7 days up to the latest selected run, "last week" the 7 days before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from workbench.queries import RunFilter, _where
from workbench.rubric_results import CURRENT_LABELS
from workbench.store import Store

_LEAF = "kind NOT IN ('agent', 'chain')"  # as the ingest does: agent and chain spans repeat their children


def _fingerprint(cur) -> str:
    row = cur.execute("SELECT (SELECT count(*) FROM steps), (SELECT count(*) FROM runs), "
                      "(SELECT count(*) FROM imports), (SELECT max(finished_at) FROM imports)").fetchone()
    return "|".join(str(v) for v in row)


_BUILD_CALLS = """INSERT INTO call_facts
WITH t AS (SELECT run_id, step_id, seq, tool_name, md5(coalesce(CAST(tool_args AS VARCHAR), '')) AS h,
                  (status = 'error' OR error IS NOT NULL) AS failed
           FROM steps WHERE tool_name IS NOT NULL),
l AS (SELECT run_id, step_id, seq, cost_usd FROM steps WHERE kind = 'llm'),
j AS (SELECT t.*, l.step_id AS llm_step_id, l.cost_usd FROM t ASOF LEFT JOIN l ON t.run_id = l.run_id AND t.seq > l.seq)
SELECT run_id, step_id, seq, tool_name, failed,
    row_number() OVER (PARTITION BY run_id, tool_name, h ORDER BY seq)::INTEGER AS repeat_n,
    coalesce(lag(failed) OVER (PARTITION BY run_id, tool_name ORDER BY seq), false) AS is_retry,
    llm_step_id,
    cost_usd / count(*) OVER (PARTITION BY run_id, llm_step_id) AS cost_share
FROM j"""

_BUILD_FLAGS = f"""INSERT INTO run_flags
WITH c AS (SELECT run_id, count(*) FILTER (is_retry) AS n_retry, max(repeat_n) AS max_identical,
                  sum(cost_share) FILTER (repeat_n > 1) AS loop_cost, sum(cost_share) FILTER (is_retry) AS retry_cost
           FROM call_facts GROUP BY run_id),
s AS (SELECT run_id, count(*) FILTER (kind = 'human') AS n_human,
          CAST(sum(CAST(cost_usd AS DECIMAL(18, 12))) FILTER ({_LEAF} AND cost_estimated) AS DOUBLE) AS est,
          CAST(sum(CAST(cost_usd AS DECIMAL(18, 12))) FILTER ({_LEAF} AND cost_estimated IS NOT TRUE) AS DOUBLE)
              AS rep
      FROM steps GROUP BY run_id),
lr AS (SELECT run_id, count(*) AS n, sum(cost_usd) AS cost FROM (
          SELECT run_id, cost_usd, lag(status = 'error' OR error IS NOT NULL)
              OVER (PARTITION BY run_id ORDER BY seq) AS prev_failed FROM steps WHERE kind = 'llm')
       WHERE prev_failed GROUP BY run_id)
SELECT r.run_id, coalesce(s.n_human, 0), coalesce(c.n_retry, 0) + coalesce(lr.n, 0), coalesce(c.max_identical, 0),
    coalesce(c.loop_cost, 0), coalesce(c.retry_cost, 0) + coalesce(lr.cost, 0), s.est, s.rep
FROM runs r LEFT JOIN s USING (run_id) LEFT JOIN c USING (run_id) LEFT JOIN lr USING (run_id)"""


def refresh_derived(store: Store, *, force: bool = False) -> bool:
    """Rebuild `call_facts` and `run_flags` when the steps changed since the last build. Returns True when it
    rebuilt. A read-only store is left as it is."""
    if store.read_only:
        return False
    cur = store.cursor()
    try:
        stamp = _fingerprint(cur)
        row = cur.execute("SELECT value FROM meta WHERE key = 'derived_fingerprint'").fetchone()
    finally:
        cur.close()
    if not force and row and row[0] == stamp:
        return False
    with store.transaction(bump_version=False) as cur:  # derived data must not move the data version
        cur.execute("DELETE FROM call_facts")
        cur.execute("DELETE FROM run_flags")
        cur.execute(_BUILD_CALLS)
        cur.execute(_BUILD_FLAGS)
        cur.execute("INSERT OR REPLACE INTO meta VALUES ('derived_fingerprint', $s)", {"s": stamp})
    return True


# -- service levels -----------------------------------------------------------------------------------------
_METRICS = """count(*) AS runs,
    count(*) FILTER (outcome = 'success') AS successes,
    count(*) FILTER (outcome = 'failure') AS failures,
    count(*) FILTER (outcome = 'success') / nullif(count(*) FILTER (outcome IN ('success', 'failure')), 0)
        AS success_rate,
    avg((coalesce(n_human, 0) > 0)::INT) AS human_share,
    coalesce(sum(cost_usd), 0) / nullif(count(*) FILTER (outcome = 'success'), 0) AS cost_per_success,
    coalesce(sum(cost_usd), 0) AS cost,
    quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
    quantile_cont(duration_ms, 0.99) AS p99_ms,
    avg((status = 'error')::INT) AS error_rate,
    avg((coalesce(n_retries, 0) > 0)::INT) AS retry_rate"""

#: Service-level columns, in the order pages show them.
SERVICE_METRICS = ("runs", "success_rate", "human_share", "cost_per_success", "p50_ms", "p95_ms", "p99_ms",
                   "error_rate", "retry_rate")
ALL = "(all)"


@dataclass(frozen=True)
class ServiceLevels:
    anchor: datetime | None
    """End of "this week": the latest start time among the selected runs."""
    current: pd.DataFrame
    """agent, agent_version (ALL for the total), period (this_week / last_week), then the metrics."""
    weekly: pd.DataFrame
    """week, agent, agent_version (ALL for the total), then the metrics: the trends."""

    def compare(self, agent: str = ALL, agent_version: str = ALL) -> pd.DataFrame:
        """metric, this_week, last_week, change for one scope (the total by default)."""
        part = self.current[(self.current["agent"] == agent) & (self.current["agent_version"] == agent_version)]
        rows = {p: part[part["period"] == p] for p in ("this_week", "last_week")}
        out = []
        for m in SERVICE_METRICS:
            this = rows["this_week"][m].iloc[0] if len(rows["this_week"]) else None
            last = rows["last_week"][m].iloc[0] if len(rows["last_week"]) else None
            change = this - last if this is not None and last is not None and pd.notna(this) and pd.notna(last) \
                else None
            out.append((m, this, last, change))
        return pd.DataFrame(out, columns=["metric", "this_week", "last_week", "change"])


    def table(self) -> pd.DataFrame:
        """One row per agent x version (and the fleet first): this week's metrics and `<metric>_change`
        against last week (NaN where either week has no runs)."""
        cur = self.current
        this = cur[cur["period"] == "this_week"].set_index(["agent", "agent_version"])
        last = cur[cur["period"] == "last_week"].set_index(["agent", "agent_version"])
        keys = list(dict.fromkeys([*this.index, *last.index]))
        this, last = this.reindex(keys), last.reindex(keys)
        out = this[list(SERVICE_METRICS)].astype("float64")
        for m in SERVICE_METRICS:
            out[f"{m}_change"] = this[m].astype("float64") - last[m].astype("float64")
        return out.reset_index()


def _scoped(frame: pd.DataFrame) -> pd.DataFrame:
    total = frame.pop("is_total").astype(bool)
    frame.loc[total, ["agent", "agent_version"]] = ALL
    return frame


def service_levels(store: Store, flt: RunFilter | None = None) -> ServiceLevels:
    """Service levels of the selected runs: this week against last, per agent and version and in total, and
    the weekly trend of each.

    Example:
        >>> sl = service_levels(store)                     # doctest: +SKIP
        >>> sl.compare()                                   # the fleet, this week vs last   # doctest: +SKIP
    """
    refresh_derived(store)
    where, params = _where(flt or RunFilter())
    base = ("(SELECT * FROM (SELECT r.*, f.n_human, f.n_retries FROM runs r LEFT JOIN run_flags f "
            f"USING (run_id)) {where})")
    cur = store.cursor()
    try:
        anchor = cur.execute(f"SELECT max(started_at) FROM {base}", params).fetchone()[0]
        current = cur.execute(f"""SELECT agent, agent_version, grouping(agent) = 1 AS is_total, period,
                {_METRICS}
            FROM (SELECT *, CASE WHEN started_at > $anchor - INTERVAL 7 DAY THEN 'this_week'
                                 ELSE 'last_week' END AS period
                  FROM {base} WHERE started_at > $anchor - INTERVAL 14 DAY)
            GROUP BY GROUPING SETS ((agent, agent_version, period), (period))
            ORDER BY is_total DESC, agent NULLS LAST, agent_version NULLS LAST, period DESC""",
                              {**params, "anchor": anchor}).df() if anchor is not None else None
        weekly = cur.execute(f"""SELECT date_trunc('week', started_at) AS week, agent, agent_version,
                grouping(agent) = 1 AS is_total, {_METRICS}
            FROM {base} WHERE started_at IS NOT NULL
            GROUP BY GROUPING SETS ((week, agent, agent_version), (week))
            ORDER BY week, is_total DESC, agent NULLS LAST, agent_version NULLS LAST""", params).df()
    finally:
        cur.close()
    if current is None:
        cols = ["agent", "agent_version", "is_total", "period", *SERVICE_METRICS]
        current = pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    return ServiceLevels(anchor, _scoped(current), _scoped(weekly))


# -- costs --------------------------------------------------------------------------------------------------
#: Run-level breakdown keys, mapped to their SQL over runs (alias r).
RUN_DIMENSIONS = {"agent": "r.agent", "agent_version": "r.agent_version", "outcome": "r.outcome",
                  "task": "r.task_id", "format": "r.format", "day": "date_trunc('day', r.started_at)",
                  "week": "date_trunc('week', r.started_at)"}
#: Step-level breakdown keys (LLM and other leaf steps), mapped to their SQL over steps (alias s).
STEP_DIMENSIONS = {"model": "s.model", "provider": "s.provider", "kind": "s.kind"}
DIMENSIONS = (*RUN_DIMENSIONS, *STEP_DIMENSIONS, "tool", "label")


def _semi(flt: RunFilter | None, alias: str) -> tuple[str, dict]:
    """`AND alias.run_id IN (selected runs)`, or nothing when the filter selects every run."""
    where, params = _where(flt or RunFilter())
    return (f"AND {alias}.run_id IN (SELECT run_id FROM runs {where})" if where else ""), params


def cost_breakdown(store: Store, by: str = "model", flt: RunFilter | None = None) -> pd.DataFrame:
    """Cost (reported and estimated told apart), runs and tokens per value of one dimension.

    Args:
        by: one of `DIMENSIONS`. `tool` spreads each LLM call's cost over the tool calls it asked for (calls
            with no tool, such as final answers, show as `(no tool call)`); `label` counts a run's cost once
            under each of its current labels (`(unlabeled)` when it has none).

    Columns: key, cost_usd, reported_usd, estimated_usd, share, runs, then input/output/cache/reasoning tokens
    (step and run dimensions) or calls (tool); step dimensions add `unpriced_calls`: calls with tokens but no
    cost (a model missing from the price table).
    """
    if by not in DIMENSIONS:
        raise ValueError(f"cannot break costs down by {by!r}; choose one of {', '.join(DIMENSIONS)}")
    refresh_derived(store)
    semi = {alias: _semi(flt, alias)[0] for alias in ("s", "c", "r")}
    params = _semi(flt, "r")[1]
    tokens = ("sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
              "sum(cache_tokens) AS cache_tokens, sum(reasoning_tokens) AS reasoning_tokens")
    if by in STEP_DIMENSIONS:
        query = f"""SELECT {STEP_DIMENSIONS[by]} AS key, coalesce(sum(cost_usd), 0) AS cost_usd,
                coalesce(sum(cost_usd) FILTER (cost_estimated IS NOT TRUE), 0) AS reported_usd,
                coalesce(sum(cost_usd) FILTER (cost_estimated), 0) AS estimated_usd,
                count(DISTINCT run_id) AS runs, {tokens},
                count(*) FILTER (cost_usd IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL))
                    AS unpriced_calls
            FROM steps s WHERE {_LEAF} AND ({STEP_DIMENSIONS[by]} IS NOT NULL OR cost_usd IS NOT NULL
                                OR input_tokens IS NOT NULL) {semi['s']} GROUP BY ALL"""
    elif by == "tool":
        answers = f"""SELECT '(no tool call)' AS key, coalesce(sum(s.cost_usd), 0) AS cost_usd,
                coalesce(sum(s.cost_usd) FILTER (s.cost_estimated IS NOT TRUE), 0),
                coalesce(sum(s.cost_usd) FILTER (s.cost_estimated), 0), count(DISTINCT s.run_id), 0
            FROM steps s WHERE s.kind = 'llm' {semi['s']}
              AND NOT EXISTS (SELECT 1 FROM call_facts c WHERE c.run_id = s.run_id AND c.llm_step_id = s.step_id)"""
        query = f"""SELECT c.tool_name AS key, coalesce(sum(c.cost_share), 0) AS cost_usd,
                coalesce(sum(c.cost_share) FILTER (s.cost_estimated IS NOT TRUE), 0) AS reported_usd,
                coalesce(sum(c.cost_share) FILTER (s.cost_estimated), 0) AS estimated_usd,
                count(DISTINCT c.run_id) AS runs, count(*) AS calls
            FROM call_facts c LEFT JOIN steps s ON s.run_id = c.run_id AND s.step_id = c.llm_step_id
            WHERE true {semi['c']} GROUP BY ALL UNION ALL {answers}"""
    else:
        key = RUN_DIMENSIONS.get(by, "coalesce(l.code, '(unlabeled)')")
        label_join = f"LEFT JOIN (SELECT DISTINCT run_id, code FROM {CURRENT_LABELS}) l USING (run_id)" \
            if by == "label" else ""
        query = f"""SELECT {key} AS key, coalesce(sum(r.cost_usd), 0) AS cost_usd,
                coalesce(sum(f.cost_reported_usd), 0) AS reported_usd,
                coalesce(sum(f.cost_estimated_usd), 0) AS estimated_usd, count(*) AS runs,
                {tokens.replace('sum(', 'sum(r.')}
            FROM runs r LEFT JOIN run_flags f USING (run_id) {label_join}
            WHERE true {semi['r']} GROUP BY ALL"""
    frame = store.df(f"SELECT * FROM ({query}) ORDER BY cost_usd DESC, key NULLS LAST", params)
    total = frame["cost_usd"].sum() if by != "label" else _total_cost(store, flt)
    frame.insert(4, "share", frame["cost_usd"] / total if total else float("nan"))
    return frame


def _total_cost(store: Store, flt: RunFilter | None) -> float:
    where, params = _where(flt or RunFilter())
    return float(store.sql(f"SELECT coalesce(sum(cost_usd), 0) FROM runs {where}", params).fetchone()[0])


def cost_trend(store: Store, grain: str = "week", split: str = "agent", flt: RunFilter | None = None
               ) -> pd.DataFrame:
    """Cost per day or week, split by a run dimension (agent, agent_version, outcome): period, key, cost_usd,
    runs."""
    if grain not in ("day", "week") or split not in RUN_DIMENSIONS or split in ("day", "week"):
        raise ValueError("grain is day or week; split is a run dimension other than day and week")
    where, params = _where(flt or RunFilter())
    return store.df(f"""SELECT {RUN_DIMENSIONS[grain]} AS period, {RUN_DIMENSIONS[split]} AS key,
            coalesce(sum(r.cost_usd), 0) AS cost_usd, count(*) AS runs
        FROM (SELECT * FROM runs {where}) r WHERE r.started_at IS NOT NULL GROUP BY ALL ORDER BY period, key""",
                    params)


def waste(store: Store, flt: RunFilter | None = None) -> dict[str, float]:
    """Where money went that bought nothing: total, on failed runs, on loops (repeated identical calls) and on
    retries, and how much of the total is estimated rather than reported."""
    refresh_derived(store)
    where, params = _where(flt or RunFilter())
    row = store.sql(f"""SELECT coalesce(sum(cost_usd), 0),
            coalesce(sum(cost_usd) FILTER (outcome = 'failure'), 0),
            coalesce(sum(f.loop_cost_usd), 0), coalesce(sum(f.retry_cost_usd), 0),
            coalesce(sum(f.cost_estimated_usd), 0), coalesce(sum(f.cost_reported_usd), 0), count(*)
        FROM (SELECT * FROM runs {where}) r LEFT JOIN run_flags f USING (run_id)""", params).fetchone()
    keys = ("total_usd", "failed_runs_usd", "loops_usd", "retries_usd", "estimated_usd", "reported_usd", "runs")
    return dict(zip(keys, (float(v) for v in row), strict=True))


def top_runs(store: Store, flt: RunFilter | None = None, n: int = 20) -> pd.DataFrame:
    """The most expensive runs: run_id, agent, version, outcome, cost (estimated or not), tokens, steps."""
    where, params = _where(flt or RunFilter())
    return store.df(f"""SELECT run_id, agent, agent_version, outcome, started_at, cost_usd, cost_estimated,
            coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens, n_steps, n_llm_calls, n_tool_calls
        FROM runs {where} ORDER BY cost_usd DESC NULLS LAST, run_id LIMIT $n""", {**params, "n": int(n)})
