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

import weakref
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
l AS (SELECT run_id, step_id, seq, cost_usd, cost_estimated FROM steps WHERE kind = 'llm'),
j AS (SELECT t.*, l.step_id AS llm_step_id, l.cost_usd, l.cost_estimated
      FROM t ASOF LEFT JOIN l ON t.run_id = l.run_id AND t.seq > l.seq)
SELECT j.run_id, r.agent, r.agent_version, r.format, r.status, r.outcome, r.started_at, step_id, seq, tool_name,
    failed, row_number() OVER (PARTITION BY j.run_id, tool_name ORDER BY seq)::INTEGER AS tool_n,
    row_number() OVER (PARTITION BY j.run_id, tool_name, h ORDER BY seq)::INTEGER AS repeat_n,
    coalesce(lag(failed) OVER (PARTITION BY j.run_id, tool_name ORDER BY seq), false) AS is_retry,
    llm_step_id,
    j.cost_usd / count(*) OVER (PARTITION BY j.run_id, llm_step_id) AS cost_share, j.cost_estimated
FROM j JOIN runs r USING (run_id)"""

_BUILD_STEP_COSTS = f"""INSERT INTO step_costs
SELECT a.run_id, r.agent, r.agent_version, r.format, r.status, r.outcome, r.started_at, a.* EXCLUDE (run_id)
FROM (SELECT run_id, CASE WHEN grouping(model) = 0 THEN 'model' WHEN grouping(provider) = 0 THEN 'provider'
                          ELSE 'kind' END AS dim,
          coalesce(model, provider, kind) AS key, count(*)::INTEGER, sum(cost_usd),
          sum(cost_usd) FILTER (cost_estimated), sum(input_tokens), sum(output_tokens), sum(cache_tokens),
          sum(reasoning_tokens),
          count(*) FILTER (cost_usd IS NULL AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL))::INTEGER
      FROM steps WHERE {_LEAF} GROUP BY GROUPING SETS ((run_id, model), (run_id, provider), (run_id, kind))) a
JOIN runs r USING (run_id)"""

_BUILD_FLAGS = """INSERT INTO run_flags
WITH c AS (SELECT run_id, count(*) FILTER (is_retry) AS n_retry, max(repeat_n) AS max_identical,
                  sum(cost_share) FILTER (repeat_n > 1) AS loop_cost, sum(cost_share) FILTER (is_retry) AS retry_cost
           FROM call_facts GROUP BY run_id),
sc AS (SELECT run_id, sum(n_steps) FILTER (key = 'human') AS n_human,
           CAST(sum(CAST(estimated_usd AS DECIMAL(18, 12))) AS DOUBLE) AS est,
           CAST(sum(CAST(cost_usd AS DECIMAL(18, 12)) - coalesce(CAST(estimated_usd AS DECIMAL(18, 12)), 0))
                AS DOUBLE) AS rep
       FROM step_costs WHERE dim = 'kind' GROUP BY run_id),
l AS (SELECT run_id, step_id, cost_usd, cost_estimated, lag(status = 'error' OR error IS NOT NULL)
          OVER (PARTITION BY run_id ORDER BY seq) AS prev_failed FROM steps WHERE kind = 'llm'),
lr AS (SELECT l.run_id, count(*) FILTER (prev_failed) AS n, sum(cost_usd) FILTER (prev_failed) AS cost,
           sum(cost_usd) FILTER (a.llm_step_id IS NULL) AS answer,
           sum(cost_usd) FILTER (a.llm_step_id IS NULL AND cost_estimated) AS answer_est
       FROM l LEFT JOIN (SELECT DISTINCT run_id, llm_step_id FROM call_facts) a
           ON a.run_id = l.run_id AND a.llm_step_id = l.step_id
       GROUP BY l.run_id)
SELECT r.run_id, r.agent, r.agent_version, r.format, r.task_id, r.started_at, r.status, r.outcome, r.duration_ms, r.cost_usd,
    r.input_tokens, r.output_tokens, r.cache_tokens, r.reasoning_tokens,
    coalesce(sc.n_human, 0), coalesce(c.n_retry, 0) + coalesce(lr.n, 0), coalesce(c.max_identical, 0),
    coalesce(c.loop_cost, 0), coalesce(c.retry_cost, 0) + coalesce(lr.cost, 0), sc.est, sc.rep,
    coalesce(lr.answer, 0), coalesce(lr.answer_est, 0)
FROM runs r LEFT JOIN sc USING (run_id) LEFT JOIN c USING (run_id) LEFT JOIN lr USING (run_id)"""


_CHECKED: weakref.WeakKeyDictionary[Store, int] = weakref.WeakKeyDictionary()


def refresh_derived(store: Store, *, force: bool = False) -> bool:
    """Rebuild `call_facts`, `step_costs` and `run_flags` when the store changed since the last build. Returns
    True when it rebuilt. A read-only store is left as it is."""
    if store.read_only:
        return False
    version = store.data_version()
    if not force and _CHECKED.get(store) == version:  # nothing was written since the last look
        return False
    cur = store.cursor()
    try:
        stamp = _fingerprint(cur)
        row = cur.execute("SELECT value FROM meta WHERE key = 'derived_fingerprint'").fetchone()
    finally:
        cur.close()
    _CHECKED[store] = version
    if not force and row and row[0] == stamp:
        return False
    with store.transaction(bump_version=False) as cur:  # derived data must not move the data version
        for table in _DERIVED:
            cur.execute(f"DELETE FROM {table}")
        cur.execute(_BUILD_CALLS)
        cur.execute(_BUILD_STEP_COSTS)
        cur.execute(_BUILD_FLAGS)  # reads the two above
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
    quantile_cont(duration_ms, [0.5, 0.95, 0.99]) AS q,
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


def _levels_sql(keys: str, grouping_sets: str, source: str, order: str) -> str:
    """The service-level metrics per grouping set, the fleet's rows labelled ALL, percentiles unpacked in SQL
    (one sort per group gives all three; handling the list in pandas cost more than the query)."""
    return f"""SELECT * EXCLUDE (q), q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms FROM (
        SELECT {keys}, CASE WHEN grouping(agent) = 1 THEN '{ALL}' ELSE agent END AS agent,
            CASE WHEN grouping(agent) = 1 THEN '{ALL}' ELSE agent_version END AS agent_version, {_METRICS}
        FROM {source} GROUP BY GROUPING SETS {grouping_sets}) ORDER BY {order}"""


def service_levels(store: Store, flt: RunFilter | None = None) -> ServiceLevels:
    """Service levels of the selected runs, this week against last, per agent and version and in total.

    Example:
        >>> sl = service_levels(store)                     # doctest: +SKIP
        >>> sl.compare()                                   # the fleet, this week vs last   # doctest: +SKIP
    """
    refresh_derived(store)
    base, params = _runs_table(flt)
    cur = store.cursor()
    try:
        # the anchor as a parameter: DuckDB plans the window filter far better than a CTE joined in (~1.5x);
        # typed, because an empty selection gives NULL, which DuckDB cannot subtract an interval from
        anchor = cur.execute(f"SELECT max(started_at) FROM {base}", params).fetchone()[0]
        window = (f"(SELECT *, CASE WHEN started_at > $anchor::TIMESTAMP - INTERVAL 7 DAY THEN 'this_week' "
                  f"ELSE 'last_week' END AS period FROM {base} "
                  f"WHERE started_at > $anchor::TIMESTAMP - INTERVAL 14 DAY)")
        frame = cur.execute(_levels_sql("period", "((agent, agent_version, period), (period))", window,
                                        f"agent = '{ALL}' DESC, agent NULLS LAST, agent_version NULLS LAST, "
                                        "period DESC"), {**params, "anchor": anchor}).df()
    finally:
        cur.close()
    return ServiceLevels(anchor, frame)


def service_trend(store: Store, flt: RunFilter | None = None) -> pd.DataFrame:
    """The same metrics week by week (calendar weeks from Monday): week, agent, agent_version (ALL for the
    fleet), then the metrics."""
    refresh_derived(store)
    base, params = _runs_table(flt)
    source = f"(SELECT *, date_trunc('week', started_at) AS week FROM {base} WHERE started_at IS NOT NULL)"
    return store.df(_levels_sql("week", "((week, agent, agent_version), (week))", source,
                                f"week, agent = '{ALL}' DESC, agent NULLS LAST, agent_version NULLS LAST"), params)


# -- costs --------------------------------------------------------------------------------------------------
#: Run-level breakdown keys, mapped to their SQL over runs (alias r).
RUN_DIMENSIONS = {"agent": "r.agent", "agent_version": "r.agent_version", "outcome": "r.outcome",
                  "task": "r.task_id", "format": "r.format", "day": "date_trunc('day', r.started_at)",
                  "week": "date_trunc('week', r.started_at)"}
#: Step-level breakdown keys (LLM and other leaf steps), mapped to their SQL over steps (alias s).
STEP_DIMENSIONS = ("model", "provider", "kind")
DIMENSIONS = (*RUN_DIMENSIONS, *STEP_DIMENSIONS, "tool", "label")


_DERIVED = ("call_facts", "step_costs", "run_flags")
"""The derived tables, in build order (run_flags reads the other two); the only names formatted into SQL here."""


def _runs_table(flt: RunFilter | None, table: str = "run_flags") -> tuple[str, dict]:
    """The rows of a derived table (run_flags, call_facts, step_costs) that belong to the selected runs, as a
    subquery. The filter's fields are columns of these tables too (copied from `runs` when they are built), so
    no join is needed, except for the free-text search, which looks into `runs`."""
    if table not in _DERIVED:
        raise ValueError(f"not a derived table: {table!r}")
    flt = flt or RunFilter()
    where, params = _where(flt)
    if flt.text:
        return f"(SELECT * FROM {table} WHERE run_id IN (SELECT run_id FROM runs {where}))", params
    return f"(SELECT * FROM {table} {where})", params


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
    tokens = ("sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, "
              "sum(cache_tokens) AS cache_tokens, sum(reasoning_tokens) AS reasoning_tokens")
    if by in STEP_DIMENSIONS:
        costs, params = _runs_table(flt, "step_costs")
        query = f"""SELECT key, coalesce(sum(cost_usd), 0) AS cost_usd,
                coalesce(sum(cost_usd), 0) - coalesce(sum(estimated_usd), 0) AS reported_usd,
                coalesce(sum(estimated_usd), 0) AS estimated_usd, count(*) AS runs, {tokens},
                sum(unpriced_calls) AS unpriced_calls
            FROM {costs} s WHERE dim = $dim AND (key IS NOT NULL OR cost_usd IS NOT NULL OR input_tokens IS NOT NULL)
            GROUP BY ALL"""
        params["dim"] = by
    elif by == "tool":
        calls, params = _runs_table(flt, "call_facts")
        flags, _ = _runs_table(flt)
        query = f"""SELECT tool_name AS key, coalesce(sum(cost_share), 0) AS cost_usd,
                coalesce(sum(cost_share) FILTER (cost_estimated IS NOT TRUE), 0) AS reported_usd,
                coalesce(sum(cost_share) FILTER (cost_estimated), 0) AS estimated_usd,
                count(*) FILTER (tool_n = 1) AS runs, count(*) AS calls
            FROM {calls} c GROUP BY ALL
            UNION ALL
            SELECT '(no tool call)', sum(answer_cost_usd), sum(answer_cost_usd) - sum(answer_estimated_usd),
                sum(answer_estimated_usd), count(*) FILTER (answer_cost_usd > 0), 0
            FROM {flags}"""
    else:
        key = RUN_DIMENSIONS.get(by, "coalesce(l.code, '(unlabeled)')")
        label_join = f"LEFT JOIN (SELECT DISTINCT run_id, code FROM {CURRENT_LABELS}) l USING (run_id)" \
            if by == "label" else ""
        flags, params = _runs_table(flt)
        query = f"""SELECT {key} AS key, coalesce(sum(r.cost_usd), 0) AS cost_usd,
                coalesce(sum(r.cost_reported_usd), 0) AS reported_usd,
                coalesce(sum(r.cost_estimated_usd), 0) AS estimated_usd, count(*) AS runs,
                {tokens.replace('sum(', 'sum(r.')}
            FROM {flags} r {label_join} GROUP BY ALL"""
    frame = store.df(f"SELECT * FROM ({query}) ORDER BY cost_usd DESC, key NULLS LAST", params)
    total = frame["cost_usd"].sum() if by != "label" else _total_cost(store, flt)
    frame.insert(4, "share", frame["cost_usd"] / total if total else float("nan"))
    return frame


def _total_cost(store: Store, flt: RunFilter | None) -> float:
    flags, params = _runs_table(flt)
    return float(store.sql(f"SELECT coalesce(sum(cost_usd), 0) FROM {flags}", params).fetchone()[0])


def cost_trend(store: Store, grain: str = "week", split: str = "agent", flt: RunFilter | None = None
               ) -> pd.DataFrame:
    """Cost per day or week, split by a run dimension (agent, agent_version, outcome): period, key, cost_usd,
    runs."""
    if grain not in ("day", "week") or split not in RUN_DIMENSIONS or split in ("day", "week"):
        raise ValueError("grain is day or week; split is a run dimension other than day and week")
    refresh_derived(store)
    flags, params = _runs_table(flt)
    return store.df(f"""SELECT {RUN_DIMENSIONS[grain]} AS period, {RUN_DIMENSIONS[split]} AS key,
            coalesce(sum(r.cost_usd), 0) AS cost_usd, count(*) AS runs
        FROM {flags} r WHERE r.started_at IS NOT NULL GROUP BY ALL ORDER BY period, key""", params)


def waste(store: Store, flt: RunFilter | None = None) -> dict[str, float]:
    """Where money went that bought nothing: total, on failed runs, on loops (repeated identical calls) and on
    retries, and how much of the total is estimated rather than reported."""
    refresh_derived(store)
    flags, params = _runs_table(flt)
    row = store.sql(f"""SELECT coalesce(sum(cost_usd), 0), coalesce(sum(cost_usd) FILTER (outcome = 'failure'), 0),
            coalesce(sum(loop_cost_usd), 0), coalesce(sum(retry_cost_usd), 0),
            coalesce(sum(cost_estimated_usd), 0), coalesce(sum(cost_reported_usd), 0), count(*)
        FROM {flags}""", params).fetchone()
    keys = ("total_usd", "failed_runs_usd", "loops_usd", "retries_usd", "estimated_usd", "reported_usd", "runs")
    return dict(zip(keys, (float(v) for v in row), strict=True))


def top_runs(store: Store, flt: RunFilter | None = None, n: int = 20) -> pd.DataFrame:
    """The most expensive runs: run_id, agent, version, outcome, cost (estimated or not), tokens, steps."""
    where, params = _where(flt or RunFilter())
    return store.df(f"""SELECT run_id, agent, agent_version, outcome, started_at, cost_usd, cost_estimated,
            coalesce(input_tokens, 0) + coalesce(output_tokens, 0) AS tokens, n_steps, n_llm_calls, n_tool_calls
        FROM runs {where} ORDER BY cost_usd DESC NULLS LAST, run_id LIMIT $n""", {**params, "n": int(n)})
