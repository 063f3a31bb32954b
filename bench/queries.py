"""Query benchmark: the Runs page and the Overview over a store of ~1M steps, against aggregating steps.

    python bench/queries.py [--spans 1000000] [--db PATH] [--repeat 20]

Builds the store by ingesting the generated OTLP file (cached in the work folder, see bench/_common.py), or
reuses the database given with --db (built there when missing). Each query is warmed up, then timed --repeat
times; the median and p95 are printed next to the targets. The "naive" rows answer the same question by
aggregating `steps` per run on every request, which is what the per-run summary table (`runs`) saves.

Prints figures, asserts nothing about time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - the path above makes `_common` importable as a script
    DEFAULT_WORKDIR,
    MIB,
    TimedConnection,
    median,
    percentile,
    table,
    trace_file,
)

from workbench.ingest import ingest_file  # noqa: E402
from workbench.queries import SORTABLE, RunFilter, _where, filter_options, overview, runs_page  # noqa: E402
from workbench.store import Store  # noqa: E402

TARGET_RUNS_MS = 20.0
TARGET_OVERVIEW_MS = 50.0
WARMUP = 2
PAGE_SIZE = 50

# The per-run figures the Runs page and the Overview show, recomputed from `steps` with the same rules as the
# ingest's summary (leaf calls only for tokens and cost); run-level facts (agent, outcome ...) still come from
# `runs`, as they would from a root-span table. `_where` is the library's own filter, so both sides select the
# same runs.
_NAIVE_RUNS = """
WITH agg AS (
    SELECT run_id,
        min(started_at) AS started_at,
        arg_min(duration_ms, seq) FILTER (depth = 0) AS duration_ms,
        count(*) AS n_steps,
        count(*) FILTER (kind = 'llm') AS n_llm_calls,
        count(*) FILTER (kind = 'tool') AS n_tool_calls,
        count(*) FILTER (status = 'error') AS n_errors,
        sum(input_tokens) FILTER (kind NOT IN ('agent', 'chain')) AS input_tokens,
        sum(output_tokens) FILTER (kind NOT IN ('agent', 'chain')) AS output_tokens,
        sum(cost_usd) FILTER (kind NOT IN ('agent', 'chain')) AS cost_usd,
        arg_min(error, seq) FILTER (error IS NOT NULL) AS error
    FROM steps GROUP BY run_id
),
r AS (
    SELECT f.run_id, f.agent, f.agent_version, f.outcome, f.status, f.format, f.native_id, f.task_id,
           f.input, f.output, agg.* EXCLUDE (run_id)
    FROM agg JOIN runs f USING (run_id)
)
"""


def naive_runs_page(store: Store, flt: RunFilter, sort: str, descending: bool, page: int) -> int:
    """The Runs page (one page plus the total) with the per-run figures aggregated from `steps`."""
    where, params = _where(flt)
    direction = "DESC" if descending else "ASC"
    order = f"ORDER BY {SORTABLE[sort]} {direction} NULLS LAST, run_id {direction}"
    # only fixed fragments are formatted in (the CTE, the library's WHERE, a whitelisted sort); values are params
    count = f"{_NAIVE_RUNS} SELECT count(*) FROM r {where}"  # noqa: S608
    rows = (f"{_NAIVE_RUNS} SELECT * EXCLUDE (input, output), left(input, 200) AS input "  # noqa: S608
            f"FROM r {where} {order} LIMIT $limit OFFSET $offset")
    cur = store.cursor()
    try:
        total = cur.execute(count, params).fetchone()[0]
        cur.execute(rows, {**params, "limit": PAGE_SIZE, "offset": page * PAGE_SIZE}).df()
    finally:
        cur.close()
    return int(total)


def naive_overview(store: Store, flt: RunFilter) -> int:
    """The Overview's three queries over per-run figures aggregated from `steps`."""
    where, params = _where(flt)
    weekly_where = f"{where} AND" if where else "WHERE"
    head = (f"{_NAIVE_RUNS} SELECT count(*), count(*) FILTER (WHERE outcome = 'success'), "  # noqa: S608
            "count(*) FILTER (WHERE outcome = 'failure'), coalesce(sum(cost_usd), 0), "
            f"quantile_cont(duration_ms, [0.5, 0.95, 0.99]) FROM r {where}")
    weekly = (f"{_NAIVE_RUNS} SELECT date_trunc('week', started_at) AS week, "  # noqa: S608
              f"coalesce(outcome, 'unknown') AS outcome, count(*) AS runs FROM r {weekly_where} "
              "started_at IS NOT NULL GROUP BY ALL ORDER BY week, outcome")
    by_version = (f"{_NAIVE_RUNS} SELECT agent, agent_version, count(*) AS runs, "  # noqa: S608
                  "count(*) FILTER (WHERE outcome = 'success') AS successes, "
                  "count(*) FILTER (WHERE outcome = 'failure') AS failures, coalesce(sum(cost_usd), 0) AS cost, "
                  "quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms "
                  f"FROM r {where} GROUP BY ALL ORDER BY agent NULLS LAST, agent_version NULLS LAST")
    cur = store.cursor()
    try:
        n = cur.execute(head, params).fetchone()[0]
        cur.execute(weekly, params).df()
        cur.execute(by_version, params).df()
    finally:
        cur.close()
    return int(n)


@dataclass
class Timing:
    name: str
    target_ms: float | None
    ms: list[float] = field(default_factory=list)
    statements: dict[str, list[float]] = field(default_factory=dict)
    """Per SQL statement run by the call: its milliseconds in each timed repeat."""
    naive_ms: list[float] = field(default_factory=list)
    matched: int | None = None
    """Runs the filter selects (reported by the call)."""


def _measure(call: Callable[[], object], repeat: int, timings: dict[str, float] | None = None,
             ) -> tuple[list[float], dict[str, list[float]]]:
    for _ in range(WARMUP):
        call()
    total: list[float] = []
    per_statement: dict[str, list[float]] = {}
    for _ in range(repeat):
        if timings is not None:
            timings.clear()
        started = time.perf_counter()
        call()
        total.append((time.perf_counter() - started) * 1000)
        for key, secs in (timings or {}).items():
            per_statement.setdefault(key, []).append(secs * 1000)
    return total, per_statement


def _build(db: Path, args) -> None:
    tf = trace_file(args.workdir, args.spans, args.seed)
    print(f"building {db} from {tf.path} ({tf.size_bytes / 1e6:,.0f} MB, {tf.spans:,} spans) ...", flush=True)
    with Store(db) as store:
        result = ingest_file(store, tf.path)
    print(f"  {result.status}: {result.n_runs:,} runs, {result.n_steps:,} steps in {result.seconds:.1f} s")
    if result.status not in ("ok", "partial"):
        raise SystemExit(f"ingest failed: {result.message}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spans", type=int, default=1_000_000, help="spans in the generated file (default 1000000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--db", type=Path, help="store to query (built from the generated file when missing)")
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args(argv)

    db = args.db or args.workdir / f"bench-queries-{args.spans}-seed{args.seed}.duckdb"
    if not db.exists():
        _build(db, args)
    store = Store(db)
    timings: dict[str, float] = {}
    store.con = TimedConnection(store.con, timings)  # per-statement timings; the queries are unchanged
    n_runs, n_steps = store.sql("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM steps)").fetchone()
    print(f"store {db}: {n_runs:,} runs, {n_steps:,} steps, {db.stat().st_size / MIB:,.0f} MiB; "
          f"{args.repeat} timed repeats after {WARMUP} warm-up; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores\n", flush=True)

    opts = filter_options(store)
    first = opts["date_min"]
    mid = RunFilter(date_from=first + timedelta(days=7), date_to=first + timedelta(days=20))
    agent = opts["agents"][0]
    version = (opts["agent_versions"].get(agent) or [None])[-1]
    runs_cases = [
        ("runs: all, newest first", RunFilter(), "started_at", True, 0),
        (f"runs: agent={agent} outcome=failure, by cost", RunFilter(agent=agent, outcome="failure"),
         "cost_usd", True, 0),
        (f"runs: agent+version={version} 2 weeks, by duration, page 6",
         mid.model_copy(update={"agent": (agent,), "agent_version": (version,)}), "duration_ms", True, 5),
        ("runs: text 'refund' + outcome=failure", RunFilter(text="refund", outcome="failure"), "started_at",
         True, 0),
        ("runs: all, by tokens, page 200", RunFilter(), "tokens", True, 199),
    ]
    overview_cases = [
        ("overview: all runs", RunFilter()),
        (f"overview: agent={agent}, 2 weeks", mid.model_copy(update={"agent": (agent,)})),
    ]

    results: list[Timing] = []
    for name, flt, sort, desc, page in runs_cases:
        t = Timing(name, TARGET_RUNS_MS)
        t.matched = runs_page(store, flt, sort, desc, page, PAGE_SIZE).total
        t.ms, t.statements = _measure(lambda f=flt, s=sort, d=desc, pg=page: runs_page(store, f, s, d, pg, PAGE_SIZE),
                                      args.repeat, timings)
        t.naive_ms, _ = _measure(lambda f=flt, s=sort, d=desc, pg=page: naive_runs_page(store, f, s, d, pg),
                                 args.repeat)
        results.append(t)
        _progress(t)
    for name, flt in overview_cases:
        t = Timing(name, TARGET_OVERVIEW_MS)
        t.matched = overview(store, flt).n_runs
        t.ms, t.statements = _measure(lambda f=flt: overview(store, f), args.repeat, timings)
        t.naive_ms, _ = _measure(lambda f=flt: naive_overview(store, f), args.repeat)
        results.append(t)
        _progress(t)
    t = Timing("filter options (widgets)", None)
    t.ms, t.statements = _measure(lambda: filter_options(store), args.repeat, timings)
    results.append(t)
    store.close()
    _report(results, n_runs, n_steps)


def _progress(t: Timing) -> None:
    print(f"  {t.name}: {median(t.ms):.1f} ms (naive {median(t.naive_ms):.1f} ms)", flush=True)


def _report(results: list[Timing], n_runs: int, n_steps: int) -> None:
    rows = []
    for t in results:
        med, p95 = median(t.ms), percentile(t.ms, 0.95)
        target = f"< {t.target_ms:.0f}" if t.target_ms else "-"
        met = ("yes" if p95 < t.target_ms else ("median" if med < t.target_ms else "NO")) if t.target_ms else "-"
        naive = f"{median(t.naive_ms):.1f}" if t.naive_ms else "-"
        naive95 = f"{percentile(t.naive_ms, 0.95):.1f}" if t.naive_ms else "-"
        ratio = f"{median(t.naive_ms) / med:.1f}x" if t.naive_ms else "-"
        rows.append([t.name, f"{t.matched:,}" if t.matched is not None else "-", f"{med:.1f}", f"{p95:.1f}",
                     target, met, naive, naive95, ratio])
    print(f"\n{n_runs:,} runs, {n_steps:,} steps; milliseconds\n")
    print(table(["query", "runs matched", "median", "p95", "target", "met (p95)", "naive median", "naive p95",
                 "naive/ours"], rows))
    print("\nSQL statements inside each call (median ms):")
    for t in results:
        print(f"  {t.name}")
        for key, ms in t.statements.items():
            print(f"    {median(ms):7.1f}  {key}")
    summary = {"runs": n_runs, "steps": n_steps, "queries": {
        t.name: {"median_ms": round(median(t.ms), 2), "p95_ms": round(percentile(t.ms, 0.95), 2),
                 **({"naive_median_ms": round(median(t.naive_ms), 1)} if t.naive_ms else {}),
                 **({"target_ms": t.target_ms} if t.target_ms else {})} for t in results}}
    print("\n" + json.dumps(summary))


if __name__ == "__main__":
    main()
