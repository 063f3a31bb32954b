"""The read side: what the pages, notebooks and the CLI ask of the store.

Every function takes a `Store` and returns plain data (DataFrames, dicts, small dataclasses), so a notebook
gets exactly what a page shows. The list and overview queries read only `runs`, the per-run summary built at
ingest: aggregating `steps` (millions of rows) per request would not keep a page at a few milliseconds.

Values reach SQL only as parameters; the only identifiers formatted into SQL come from fixed tables in this
module (`SORTABLE`, `_LIST_FIELDS`, `_TEXT_COLUMNS`).

Example:
    >>> from workbench.store import open_store                     # doctest: +SKIP
    >>> store = open_store("data/workbench.duckdb")                 # doctest: +SKIP
    >>> flt = RunFilter(outcome="failure", text="timeout")          # doctest: +SKIP
    >>> page = runs_page(store, flt, sort="cost_usd")               # doctest: +SKIP
    >>> page.total, page.frame[["run_id", "agent", "cost_usd"]].head()  # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from workbench.store import Store

#: Sort keys a caller may ask for, mapped to the SQL expression they order by.
SORTABLE: dict[str, str] = {
    "started_at": "started_at",
    "duration_ms": "duration_ms",
    "cost_usd": "cost_usd",
    "n_steps": "n_steps",
    "n_errors": "n_errors",
    "tokens": "(coalesce(input_tokens, 0) + coalesce(output_tokens, 0))",
    "agent": "agent",
    "agent_version": "agent_version",
    "outcome": "outcome",
    "status": "status",
    "format": "format",
    "run_id": "run_id",
}

# Filter fields matched by equality against a set of values; the names are also the runs column names.
_LIST_FIELDS = ("agent", "agent_version", "outcome", "status", "format")
# Columns the free-text search looks into.
_TEXT_COLUMNS = ("run_id", "native_id", "task_id", "input", "output", "error")
# Long text columns are cut in the list: a page of 100 runs must stay small on its way to the browser.
_PREVIEW_CHARS = 200
MAX_PAGE_SIZE = 1000

_LIST_COLUMNS = f"""
    run_id, started_at, agent, agent_version, outcome, status, format, native_id, task_id,
    duration_ms, n_steps, n_llm_calls, n_tool_calls, n_errors,
    input_tokens, output_tokens,
    CASE WHEN input_tokens IS NULL AND output_tokens IS NULL THEN NULL
         ELSE coalesce(input_tokens, 0) + coalesce(output_tokens, 0) END AS tokens,
    cost_usd, cost_estimated,
    left(input, {_PREVIEW_CHARS}) AS input,
    left(error, {_PREVIEW_CHARS}) AS error
"""


class RunFilter(BaseModel):
    """Which runs to look at. Every field is optional; an empty filter selects all runs.

    Frozen and hashable, so it can key `st.cache_data`. A single string is accepted wherever a tuple is and
    is stored as a one-element tuple, so equal filters always compare (and cache) equal.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: tuple[str, ...] | None = None
    """Agent names (any of)."""
    agent_version: tuple[str, ...] | None = None
    """Agent versions (any of)."""
    outcome: tuple[str, ...] | None = None
    """success / failure / unknown (any of)."""
    status: tuple[str, ...] | None = None
    """ok / error / unknown (any of)."""
    format: tuple[str, ...] | None = None
    """Loader names (any of)."""
    date_from: date | None = None
    """First day included (runs.started_at, UTC)."""
    date_to: date | None = None
    """Last day included (runs.started_at, UTC)."""
    text: str | None = None
    """Case-insensitive substring of run_id, native_id, task_id, input, output or error; `%` and `_` are
    literal characters, not wildcards."""

    @field_validator(*_LIST_FIELDS, mode="before")
    @classmethod
    def _as_tuple(cls, value: Any) -> tuple[str, ...] | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return (value,)
        values = tuple(dict.fromkeys(str(v) for v in value))  # keep order, drop repeats
        return values or None

    @field_validator("text", mode="before")
    @classmethod
    def _strip_text(cls, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value).strip()
        return text or None

    def is_empty(self) -> bool:
        """True when the filter selects every run."""
        return all(getattr(self, name) is None for name in type(self).model_fields)


@dataclass(frozen=True)
class RunsPage:
    """One page of the runs list and where it sits in the whole result."""

    frame: pd.DataFrame
    """The rows of this page only (long text columns cut to a preview)."""
    total: int
    """Number of runs matching the filter."""
    page: int
    """Zero-based page number actually served (clamped to the last page)."""
    page_size: int
    n_pages: int
    """At least 1, so "page 1 of 1" also describes an empty result."""

    @property
    def first_row(self) -> int:
        """1-based number of the first row on this page (0 when the page is empty)."""
        return self.page * self.page_size + 1 if len(self.frame) else 0

    @property
    def last_row(self) -> int:
        """1-based number of the last row on this page (0 when the page is empty)."""
        return self.page * self.page_size + len(self.frame)


@dataclass(frozen=True)
class Overview:
    """Service-level figures for the runs a filter selects."""

    n_runs: int
    n_success: int
    n_failure: int
    success_rate: float | None
    """Successes over runs with a known outcome (success or failure); None when there are none."""
    total_cost: float
    cost_per_success: float | None
    """Total cost over successful runs: what one success really costs, failures included."""
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    runs_per_week: pd.DataFrame
    """Columns week, outcome, runs (one row per week and outcome)."""
    failures_per_week: pd.DataFrame
    """Columns week, runs, failures, failure_rate (every week that has runs, zero failures included)."""
    by_version: pd.DataFrame
    """One row per agent x agent_version: runs, successes, failures, success_rate, cost, cost_per_success,
    p50_ms, p95_ms."""


def _where(flt: RunFilter) -> tuple[str, dict[str, Any]]:
    """The WHERE clause for a filter: fixed SQL fragments, values only as named parameters."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for name in _LIST_FIELDS:
        values = getattr(flt, name)
        if values:
            clauses.append(f"list_contains(${name}, {name})")
            params[name] = list(values)
    if flt.date_from is not None:
        clauses.append("started_at >= $date_from")
        params["date_from"] = flt.date_from
    if flt.date_to is not None:
        # date_to is inclusive: everything before the next midnight
        clauses.append("started_at < $date_to_excl")
        params["date_to_excl"] = flt.date_to + timedelta(days=1)
    if flt.text:
        # An ESCAPE clause makes DuckDB's ILIKE about twice as slow over long text, so it is only added when
        # the search text holds a character LIKE would otherwise read as a wildcard.
        if any(ch in flt.text for ch in "%_\\"):
            escaped = flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            match = "ILIKE $text ESCAPE '\\'"
        else:
            escaped, match = flt.text, "ILIKE $text"
        params["text"] = f"%{escaped}%"
        clauses.append("(" + " OR ".join(f"{col} {match}" for col in _TEXT_COLUMNS) + ")")
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _fetch_df(cur, query: str, params: dict[str, Any]) -> pd.DataFrame:
    return cur.execute(query, params).df()


def _last_page(total: int, page_size: int) -> int:
    return max(0, math.ceil(total / page_size) - 1)


def runs_page(
    store: Store,
    flt: RunFilter | None = None,
    sort: str = "started_at",
    descending: bool = True,
    page: int = 0,
    page_size: int = 50,
) -> RunsPage:
    """One page of runs matching `flt`, sorted, plus the total count.

    Only `page_size` rows leave DuckDB (LIMIT/OFFSET); the total comes from a COUNT on the same cursor.
    A page past the end is clamped to the last page.

    Args:
        store: the open store.
        flt: which runs; None for all.
        sort: a key of `SORTABLE` (anything else raises ValueError).
        descending: sort direction; NULLs always sort last, and run_id breaks ties so pages never overlap.
        page: zero-based page number.
        page_size: rows per page, 1 to `MAX_PAGE_SIZE`.
    """
    if sort not in SORTABLE:
        raise ValueError(f"cannot sort by {sort!r}; choose one of {', '.join(SORTABLE)}")
    if not 1 <= int(page_size) <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    page_size = int(page_size)
    where, params = _where(flt or RunFilter())
    direction = "DESC" if descending else "ASC"
    order = f"ORDER BY {SORTABLE[sort]} {direction} NULLS LAST, run_id {direction}"
    # A text search scans long text, and a separate COUNT would scan it twice: then the total comes from a
    # window count over the same scan (windows are computed before LIMIT). Without text the COUNT is ~0.5 ms
    # and the window would cost more than it saves.
    one_scan = flt is not None and flt.text is not None
    total_col = ", count(*) OVER () AS total_" if one_scan else ""
    # Late materialization: sort only (key, run_id) to find the page, then read the wide columns of those rows
    # alone; sorting the full projection made deep pages ~3x slower.
    query = (
        f"WITH page AS MATERIALIZED (SELECT run_id{total_col} FROM runs {where} {order} "  # noqa: S608
        "LIMIT $limit OFFSET $offset) "
        f"SELECT {_LIST_COLUMNS}{', (SELECT max(total_) FROM page) AS total_' if one_scan else ''} "
        f"FROM runs WHERE run_id IN (SELECT run_id FROM page) {order}"
    )
    count = f"SELECT count(*) FROM runs {where}"  # noqa: S608 - fixed fragments, values as parameters
    page = max(0, int(page))
    cur = store.cursor()
    try:
        total = None if one_scan else int(cur.execute(count, params).fetchone()[0])
        if total is not None:
            page = min(page, _last_page(total, page_size))
        frame = _fetch_df(cur, query, {**params, "limit": page_size, "offset": page * page_size})
        if one_scan:
            if len(frame):
                total = int(frame["total_"].iloc[0])
            else:  # nothing matches, or the page is past the end: count, clamp, fetch the last page
                total = int(cur.execute(count, params).fetchone()[0])
                if page > _last_page(total, page_size):
                    page = _last_page(total, page_size)
                    frame = _fetch_df(cur, query, {**params, "limit": page_size, "offset": page * page_size})
            frame = frame.drop(columns="total_")
    finally:
        cur.close()
    n_pages = _last_page(total, page_size) + 1
    return RunsPage(frame=frame, total=int(total), page=page, page_size=page_size, n_pages=n_pages)


def overview(store: Store, flt: RunFilter | None = None) -> Overview:
    """Service levels of the selected runs: volume, success rate, cost, duration percentiles, weekly trend,
    and the same split by agent and agent version.

    Example:
        >>> ov = overview(store, RunFilter(agent="support-bot"))   # doctest: +SKIP
        >>> ov.success_rate, ov.cost_per_success, ov.p95_ms        # doctest: +SKIP
    """
    where, params = _where(flt or RunFilter())
    cur = store.cursor()
    try:
        head = cur.execute(
            "SELECT count(*), count(*) FILTER (WHERE outcome = 'success'), "  # noqa: S608 - fixed fragments
            "count(*) FILTER (WHERE outcome = 'failure'), coalesce(sum(cost_usd), 0), "
            f"quantile_cont(duration_ms, [0.5, 0.95, 0.99]) FROM runs {where}",
            params,
        ).fetchone()
        weekly_where = f"{where} AND" if where else "WHERE"
        weekly = _fetch_df(
            cur,
            "SELECT date_trunc('week', started_at) AS week, "  # noqa: S608 - fixed fragments
            "coalesce(outcome, 'unknown') AS outcome, "
            f"count(*) AS runs FROM runs {weekly_where} started_at IS NOT NULL "
            "GROUP BY ALL ORDER BY week, outcome",
            params,
        )
        by_version = _fetch_df(
            cur,
            "SELECT agent, agent_version, count(*) AS runs, "  # noqa: S608 - fixed fragments
            "count(*) FILTER (WHERE outcome = 'success') AS successes, "
            "count(*) FILTER (WHERE outcome = 'failure') AS failures, "
            "coalesce(sum(cost_usd), 0) AS cost, "
            "quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms "
            f"FROM runs {where} GROUP BY ALL ORDER BY agent NULLS LAST, agent_version NULLS LAST",
            params,
        )
    finally:
        cur.close()
    n_runs, n_success, n_failure, total_cost, quantiles = head
    p50, p95, p99 = quantiles if quantiles else (None, None, None)
    known = n_success + n_failure
    by_version = _with_rates(by_version)
    return Overview(
        n_runs=int(n_runs),
        n_success=int(n_success),
        n_failure=int(n_failure),
        success_rate=n_success / known if known else None,
        total_cost=float(total_cost),
        cost_per_success=float(total_cost) / n_success if n_success else None,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        runs_per_week=weekly,
        failures_per_week=_failures_per_week(weekly),
        by_version=by_version,
    )


def _with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    known = frame["successes"] + frame["failures"]
    frame["success_rate"] = (frame["successes"] / known.where(known > 0)).astype("float64")
    frame["cost_per_success"] = (frame["cost"] / frame["successes"].where(frame["successes"] > 0)).astype(
        "float64"
    )
    order = ["agent", "agent_version", "runs", "successes", "failures", "success_rate", "cost",
             "cost_per_success", "p50_ms", "p95_ms"]
    return frame[order]


def _failures_per_week(weekly: pd.DataFrame) -> pd.DataFrame:
    # Derived from the weekly outcome counts rather than queried with WHERE outcome='failure', so weeks
    # without a single failure still appear with 0 instead of vanishing from the chart.
    if weekly.empty:
        dtypes = {"week": "datetime64[us]", "runs": "int64", "failures": "int64", "failure_rate": "float64"}
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})
    runs = weekly.groupby("week")["runs"].sum()
    failures = weekly[weekly["outcome"] == "failure"].groupby("week")["runs"].sum().reindex(runs.index,
                                                                                           fill_value=0)
    out = pd.DataFrame({"runs": runs.astype("int64"), "failures": failures.astype("int64")}).reset_index()
    out["failure_rate"] = out["failures"] / out["runs"]
    return out


def filter_options(store: Store) -> dict[str, Any]:
    """The values the filter widgets offer: distinct agents, versions, outcomes, statuses and formats
    (sorted, NULLs left out), `agent_versions` (agent -> its versions), and `date_min` / `date_max`."""
    cur = store.cursor()
    try:
        lists = ", ".join(
            f"coalesce(list(DISTINCT {c} ORDER BY {c}) FILTER (WHERE {c} IS NOT NULL), [])"
            for c in _LIST_FIELDS
        )
        row = cur.execute(
            f"SELECT {lists}, min(started_at)::DATE, max(started_at)::DATE FROM runs"  # noqa: S608
        ).fetchone()
        pairs = cur.execute(
            "SELECT DISTINCT agent, agent_version FROM runs "
            "WHERE agent IS NOT NULL AND agent_version IS NOT NULL ORDER BY ALL"
        ).fetchall()
    finally:
        cur.close()
    names = ["agents", "versions", "outcomes", "statuses", "formats"]
    options: dict[str, Any] = {name: list(values) for name, values in zip(names, row[:5], strict=True)}
    agent_versions: dict[str, list[str]] = {}
    for agent, version in pairs:
        agent_versions.setdefault(agent, []).append(version)
    options["agent_versions"] = agent_versions
    options["date_min"], options["date_max"] = row[5], row[6]
    return options


def count_runs(store: Store, flt: RunFilter | None = None) -> int:
    """Number of runs matching `flt` (all runs when None; 0 for an empty database)."""
    where, params = _where(flt or RunFilter())
    return int(store.sql(f"SELECT count(*) FROM runs {where}", params).fetchone()[0])  # noqa: S608


def get_run(store: Store, run_id: str) -> dict[str, Any] | None:
    """One row of `runs` as a dict, or None when no run has this id."""
    cur = store.sql("SELECT * FROM runs WHERE run_id = $run_id", {"run_id": run_id})
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))


_STEP_COLUMNS = """
    step_id, parent_step_id, seq, depth, kind, name, started_at, duration_ms, status, error,
    model, provider, tool_name, input_tokens, output_tokens,
    CASE WHEN input_tokens IS NULL AND output_tokens IS NULL THEN NULL
         ELSE coalesce(input_tokens, 0) + coalesce(output_tokens, 0) END AS tokens,
    cost_usd, cost_estimated
"""
_PAYLOAD_COLUMNS = (
    ", CAST(messages AS VARCHAR) AS messages, CAST(tool_args AS VARCHAR) AS tool_args, tool_result"
)


def run_steps(store: Store, run_id: str, *, payloads: bool = True) -> pd.DataFrame:
    """The steps of one run in order (seq, then start time).

    Args:
        payloads: include `messages` and `tool_args` (JSON as text) and `tool_result`; pass False for a
            step list of a long run and fetch one step's payload with `get_step`.
    """
    columns = _STEP_COLUMNS + (_PAYLOAD_COLUMNS if payloads else "")
    return store.df(
        f"SELECT {columns} FROM steps WHERE run_id = $run_id "  # noqa: S608 - fixed column lists
        "ORDER BY seq NULLS LAST, started_at NULLS LAST, step_id",
        {"run_id": run_id},
    )


def get_step(store: Store, run_id: str, step_id: str) -> dict[str, Any] | None:
    """One step with its payloads (messages and tool args as JSON text), or None."""
    cur = store.sql(
        f"SELECT {_STEP_COLUMNS}{_PAYLOAD_COLUMNS} FROM steps "  # noqa: S608 - fixed column lists
        "WHERE run_id = $run_id AND step_id = $step_id",
        {"run_id": run_id, "step_id": step_id},
    )
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row, strict=True))
