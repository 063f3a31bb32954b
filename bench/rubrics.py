"""Rubric and analytics benchmark: 10 deterministic checks over 100k runs / 1.5M steps, and the Overview and Costs
queries over ~1M steps, each next to a pandas baseline measured in the same run.

    python bench/rubrics.py [--runs 100000] [--query-runs 66667] [--repeat 20] [--workdir DIR]

The stores are synthetic and built directly in DuckDB SQL (15 steps per run: an agent root, 7 LLM calls and 7
tool, guardrail or human steps, with loops, errors, blocked guardrails, big contexts and false promises mixed
in at fixed rates), so building 1.5M steps takes seconds instead of an OTLP ingest. Prints figures, asserts
nothing about time; it does check that the engine and the pandas baseline decide every run the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_WORKDIR, median, percentile, remove_db, table  # noqa: E402

from workbench import analytics  # noqa: E402
from workbench.queries import RunFilter, overview  # noqa: E402
from workbench.rubrics import parse_rubric  # noqa: E402
from workbench.scoring import score_runs  # noqa: E402
from workbench.store import Store  # noqa: E402

TARGET_CHECKS_S = 20.0
TARGET_QUERY_MS = 50.0
STEPS_PER_RUN = 15

# Step j of run i: 0 agent root; odd j an LLM call; even j a tool call whose tool depends on j (8 is a guardrail
# before refunds, 10 a human approval in 5% of runs); 5% of runs loop on lookup_order; 3% of tool calls fail.
_BUILD = """
CREATE OR REPLACE TEMP TABLE _r AS
SELECT i, printf('r%08d', i) AS run_id,
    CASE WHEN hash(i, 'agent') % 2 = 0 THEN 'support-agent' ELSE 'coding-agent' END AS agent,
    CASE WHEN hash(i, 'ver') % 100 < 40 + 40 * i / $n THEN 'v2' ELSE 'v1' END AS agent_version,
    hash(i, 'loop') % 100 < 5 AS loops, hash(i, 'refund') % 100 < 30 AS refund,
    hash(i, 'block') % 100 < 3 AS blocked, hash(i, 'human') % 100 < 5 AS human,
    hash(i, 'big') % 100 < 1 AS big, hash(i, 'lie') % 100 < 2 AS lie, hash(i, 'rm') % 100 < 1 AS rm,
    TIMESTAMP '2026-10-19' + to_milliseconds(CAST(i * 28.0 * 86400000 / $n + hash(i, 't') % 60000 AS BIGINT))
        AS t0
FROM range($n) t(i);

INSERT INTO steps (run_id, step_id, parent_step_id, seq, depth, kind, name, started_at, ended_at, duration_ms,
    status, error, model, provider, tool_name, tool_args, tool_result, input_tokens, output_tokens, cache_tokens,
    cost_usd, cost_estimated, attributes)
WITH s AS (
    SELECT r.*, j,
        CASE WHEN j = 0 THEN 'agent' WHEN j % 2 = 1 THEN 'llm' WHEN j = 8 AND r.refund THEN 'guardrail'
             WHEN j = 10 AND r.human THEN 'human' ELSE 'tool' END AS kind,
        CASE WHEN r.loops AND j >= 4 THEN 'lookup_order'
             ELSE ['get_customer', 'lookup_order', 'search_kb', 'read_file', 'run_tests',
                   CASE WHEN r.refund THEN 'refund_order' ELSE 'send_email' END, 'run_shell'][j // 2] END AS tool,
        hash(i, j, 'err') % 100 < 3 AS failed,
        CASE WHEN r.big AND j = 13 THEN 30000 ELSE 400 + j * 150 + hash(i, j) % 800 END AS tin
    FROM _r r, range(15) g(j)
)
SELECT run_id, 's' || j, CASE WHEN j > 0 THEN 's0' END, j, (j > 0)::INT, kind,
    CASE kind WHEN 'agent' THEN 'invoke_agent ' || agent WHEN 'llm' THEN 'chat'
              WHEN 'guardrail' THEN 'apply_guardrail refund_policy' WHEN 'human' THEN 'human_approval refund'
              ELSE 'execute_tool ' || tool END,
    t0 + to_milliseconds(j * 1500), t0 + to_milliseconds(CASE WHEN j = 0 THEN 23000 ELSE j * 1500 + 900 END),
    CASE WHEN j = 0 THEN 23000 + hash(i) % 200000 ELSE 900 END,
    CASE WHEN kind = 'tool' AND failed THEN 'error' ELSE 'ok' END,
    CASE WHEN kind = 'tool' AND failed THEN 'ServiceUnavailable: 503' END,
    CASE WHEN kind = 'llm' THEN CASE WHEN agent = 'support-agent' THEN 'gpt-4.1-mini' ELSE 'claude-sonnet-4-5' END END,
    CASE WHEN kind = 'llm' THEN CASE WHEN agent = 'support-agent' THEN 'openai' ELSE 'anthropic' END END,
    CASE WHEN kind = 'tool' THEN tool END,
    CASE WHEN kind <> 'tool' THEN NULL
         WHEN tool = 'run_shell' THEN json_object('command', CASE WHEN rm THEN 'rm -rf /tmp/build' ELSE 'ls' END)
         WHEN loops AND j >= 4 THEN json_object('id', 1)
         ELSE json_object('id', hash(i, j) % 1000) END,
    CASE WHEN kind <> 'tool' OR failed THEN NULL WHEN tool = 'run_tests' AND hash(i, 'tests') % 100 < 10
         THEN '2 FAILED, 40 passed' ELSE '{"status": "ok"}' END,
    CASE WHEN kind = 'llm' THEN tin END, CASE WHEN kind = 'llm' THEN 40 + hash(i, j, 'o') % 200 END,
    CASE WHEN kind = 'llm' AND j > 1 THEN tin // 2 END,
    CASE WHEN kind = 'llm' THEN tin * CASE WHEN agent = 'support-agent' THEN 0.4 ELSE 3.0 END / 1e6 END,
    CASE WHEN kind = 'llm' THEN hash(i, 'est') % 2 = 0 END,
    CASE kind WHEN 'guardrail' THEN json_object('workbench.guardrail.decision',
                                                CASE WHEN blocked THEN 'block' ELSE 'allow' END)
              WHEN 'human' THEN json_object('workbench.human.decision', 'approved') ELSE '{}' END::JSON
FROM s;

INSERT INTO runs (run_id, format, native_id, agent, agent_version, environment, task_id, started_at, ended_at,
    duration_ms, status, outcome, input, output, n_steps, n_llm_calls, n_tool_calls, n_errors, input_tokens,
    output_tokens, cache_tokens, cost_usd, cost_estimated, tags, attributes)
SELECT r.run_id, 'synthetic', r.run_id, r.agent, r.agent_version, 'production', 'task-' || (r.i % 120), a.t_start,
    a.t_end, a.root_ms, CASE WHEN a.n_err > 0 AND hash(r.i, 's') % 3 = 0 THEN 'error' ELSE 'ok' END,
    CASE WHEN r.loops OR r.blocked OR r.lie OR hash(r.i, 'o') % 100 < 15 THEN 'failure' ELSE 'success' END,
    'Customer request ' || r.i,
    CASE WHEN r.lie THEN 'Your refund will arrive within 24 hours.' ELSE 'Order ' || r.i || ' handled.' END,
    15, 7, a.n_tool, a.n_err, a.tin, a.tout, a.tcache, a.cost, a.est, []::VARCHAR[], '{}'
FROM _r r JOIN (
    SELECT run_id, min(started_at) AS t_start, max(ended_at) AS t_end, max(duration_ms) AS root_ms,
        count(*) FILTER (kind = 'tool')::INT AS n_tool, count(*) FILTER (status = 'error')::INT AS n_err,
        sum(input_tokens) AS tin, sum(output_tokens) AS tout, sum(cache_tokens) AS tcache, sum(cost_usd) AS cost,
        bool_or(cost_estimated) AS est
    FROM steps GROUP BY run_id) a USING (run_id);
"""

RUBRIC = """
name = "bench"
[[criteria]]
id = "no_loops"
check = "no_loops"
[[criteria]]
id = "errors_handled"
check = "no_unhandled_errors"
[[criteria]]
id = "duration"
check = "limit"
args = { metric = "duration_ms", max = 200_000 }
[[criteria]]
id = "context"
check = "limit"
args = { metric = "max_call_tokens", max = 20_000 }
[[criteria]]
id = "looked_up"
check = "tool_called"
args = { tool = "lookup_order" }
[[criteria]]
id = "no_rm"
check = "tool_not_called"
args = { tool = "run_shell", args_pattern = "rm -rf" }
[[criteria]]
id = "order_before_refund"
check = "tool_order"
args = { first = "lookup_order", then = "refund_order" }
[[criteria]]
id = "refund_cleared"
check = "guardrail_before"
args = { tool = "refund_order", name_pattern = "refund_policy" }
[[criteria]]
id = "no_false_promises"
check = "output_not_matches"
args = { pattern = "(?i)within 24 hours" }
[[criteria]]
id = "tests_pass"
check = "last_result"
args = { tool = "run_tests", pattern = "FAILED" }
"""


def build(path: Path, n_runs: int) -> tuple[int, int, float]:
    remove_db(path)
    started = time.perf_counter()
    with Store(path, memory_limit="2GB") as store:
        with store.transaction() as cur:
            for statement in _BUILD.split(";\n\n"):
                cur.execute(statement, {"n": n_runs} if "$n" in statement else {})
        n_steps = store.sql("SELECT count(*) FROM steps").fetchone()[0]
        n = store.sql("SELECT count(*) FROM runs").fetchone()[0]
    return n, n_steps, time.perf_counter() - started


# -- the 10 checks in pandas --------------------------------------------------------------------------------
def pandas_checks(path: Path) -> tuple[dict[str, pd.Series], float, float]:
    """(run_id -> passed (NaN: not decided) per criterion, seconds to load the frames, seconds to compute)."""
    t0 = time.perf_counter()
    with Store(path, read_only=True) as store:
        runs = store.df("SELECT run_id, duration_ms, output FROM runs").set_index("run_id")
        steps = store.df("""SELECT run_id, seq, kind, name, tool_name, CAST(tool_args AS VARCHAR) AS args, status,
            error, input_tokens, tool_result,
            json_extract_string(attributes, '$."workbench.guardrail.decision"') AS decision FROM steps""")
    t1 = time.perf_counter()
    ids = runs.index
    out: dict[str, pd.Series] = {}
    tools = steps[steps["tool_name"].notna()]
    most = tools.groupby(["run_id", "tool_name", "args"]).size().groupby("run_id").max()
    out["no_loops"] = most.reindex(ids, fill_value=0) <= 3
    st = steps[steps["kind"] != "agent"].assign(target=lambda d: d["tool_name"].fillna(d["kind"]),
                                                failed=lambda d: (d["status"] == "error") | d["error"].notna())
    last_ok = st[~st["failed"]].groupby(["run_id", "target"])["seq"].max().rename("last_ok")
    bad = st[st["failed"]].join(last_ok, on=["run_id", "target"])
    bad = bad[bad["last_ok"].isna() | (bad["last_ok"] < bad["seq"])]
    out["errors_handled"] = pd.Series(~ids.isin(bad["run_id"]), index=ids)
    out["duration"] = (runs["duration_ms"] <= 200_000).where(runs["duration_ms"].notna())
    ctx = steps[steps["kind"] == "llm"].groupby("run_id")["input_tokens"].max().reindex(ids)
    out["context"] = (ctx <= 20_000).where(ctx.notna())
    out["looked_up"] = pd.Series(ids.isin(tools.loc[tools["tool_name"] == "lookup_order", "run_id"]), index=ids)
    rm = tools[(tools["tool_name"] == "run_shell") & tools["args"].str.contains("rm -rf", regex=True)]
    out["no_rm"] = pd.Series(~ids.isin(rm["run_id"]), index=ids)
    first = tools[tools["tool_name"].isin(["lookup_order", "refund_order"])].groupby(
        ["run_id", "tool_name"])["seq"].min().unstack()
    order = (first["lookup_order"] < first["refund_order"]).where(first["refund_order"].notna())
    out["order_before_refund"] = order.reindex(ids)
    calls = tools[tools["tool_name"] == "refund_order"][["run_id", "seq"]].sort_values("seq")
    gates = steps[(steps["kind"] == "guardrail") & steps["name"].str.contains("refund_policy")][
        ["run_id", "seq", "decision"]].rename(columns={"seq": "gseq"}).sort_values("gseq")
    j = pd.merge_asof(calls, gates, left_on="seq", right_on="gseq", by="run_id", allow_exact_matches=False)
    j["bad"] = j["gseq"].isna() | (j["decision"] == "block")
    out["refund_cleared"] = (~j.groupby("run_id")["bad"].any()).reindex(ids)
    out["no_false_promises"] = ~runs["output"].fillna("").str.contains("(?i)within 24 hours", regex=True)
    tests = tools[tools["tool_name"] == "run_tests"].sort_values("seq").groupby("run_id")["tool_result"].last()
    out["tests_pass"] = (~tests.fillna("").str.contains("FAILED")).reindex(ids)
    return out, t1 - t0, time.perf_counter() - t1


def bench_checks(path: Path) -> dict:
    rubric = parse_rubric(RUBRIC)
    with Store(path) as store:
        started = time.perf_counter()
        report = score_runs(store, rubric)
        engine_s = time.perf_counter() - started
        ours = store.df("SELECT run_id, criterion, passed FROM scores")
    base, load_s, compute_s = pandas_checks(path)
    mismatches = {}
    decided = lambda v: None if v is None or v is pd.NA or v != v else bool(v)  # noqa: E731
    for crit, series in base.items():
        mine = ours[ours["criterion"] == crit].set_index("run_id")["passed"]
        theirs = series.reindex(mine.index)
        mismatches[crit] = sum(decided(a) != decided(b) for a, b in zip(mine, theirs, strict=True))
    per = dict(zip(report.summary["criterion"], report.summary["seconds"], strict=True))
    return {"engine_s": round(engine_s, 2), "per_criterion_s": per, "pandas_load_s": round(load_s, 2),
            "pandas_compute_s": round(compute_s, 2), "mismatches": mismatches,
            "failed": dict(zip(report.summary["criterion"], report.summary["failed"].astype(int), strict=True))}


# -- Overview and Costs queries -----------------------------------------------------------------------------
def _time(fn, repeat: int) -> list[float]:
    for _ in range(2):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def pandas_frames(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = store.df("SELECT run_id, agent, agent_version, started_at, outcome, status, duration_ms, cost_usd FROM runs")
    steps = store.df("SELECT run_id, step_id, seq, kind, model, tool_name, CAST(tool_args AS VARCHAR) AS args, "
                     "status, error, cost_usd, cost_estimated FROM steps")
    return runs, steps


def pandas_service_levels(runs: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    human = steps.loc[steps["kind"] == "human", "run_id"].unique()
    tools = steps[steps["tool_name"].notna()].sort_values(["run_id", "seq"])
    failed = (tools["status"] == "error") | tools["error"].notna()
    retry = failed.groupby([tools["run_id"], tools["tool_name"]]).shift(1).fillna(False).astype(bool)
    retried = tools.loc[retry, "run_id"].unique()
    anchor = runs["started_at"].max()
    r = runs[runs["started_at"] > anchor - pd.Timedelta(days=14)].assign(
        period=lambda d: np.where(d["started_at"] > anchor - pd.Timedelta(days=7), "this", "last"),
        win=lambda d: d["outcome"] == "success", human=lambda d: d["run_id"].isin(human),
        retry=lambda d: d["run_id"].isin(retried), err=lambda d: d["status"] == "error")
    g = r.groupby(["agent", "agent_version", "period"])
    out = g.agg(runs=("run_id", "size"), wins=("win", "sum"), cost=("cost_usd", "sum"), human=("human", "mean"),
                retry=("retry", "mean"), err=("err", "mean"))
    q = g["duration_ms"].quantile([0.5, 0.95, 0.99]).unstack()
    return out.join(q)


def pandas_cost_by_tool(steps: pd.DataFrame) -> pd.Series:
    tools = steps[steps["tool_name"].notna()][["run_id", "seq", "tool_name"]].sort_values("seq")
    llm = steps[steps["kind"] == "llm"][["run_id", "seq", "step_id", "cost_usd"]].sort_values("seq")
    j = pd.merge_asof(tools, llm, on="seq", by="run_id", allow_exact_matches=False)
    j["share"] = j["cost_usd"] / j.groupby(["run_id", "step_id"])["step_id"].transform("size")
    return j.groupby("tool_name")["share"].sum()


def bench_queries(path: Path, repeat: int) -> list[list]:
    with Store(path) as store:
        t = time.perf_counter()
        analytics.refresh_derived(store, force=True)
        refresh_ms = (time.perf_counter() - t) * 1000
        agent = RunFilter(agent="coding-agent")
        cases = [("service levels: all", lambda: analytics.service_levels(store)),
                 ("service levels: coding-agent", lambda: analytics.service_levels(store, agent)),
                 ("service trend: all", lambda: analytics.service_trend(store)),
                 ("overview (existing): all", lambda: overview(store, RunFilter())),
                 ("waste: all", lambda: analytics.waste(store)),
                 ("top runs: 20", lambda: analytics.top_runs(store)),
                 ("cost trend: week x agent", lambda: analytics.cost_trend(store))]
        cases += [(f"cost by {d}", lambda d=d: analytics.cost_breakdown(store, d)) for d in analytics.DIMENSIONS]
        cases += [("cost by tool: coding-agent", lambda: analytics.cost_breakdown(store, "tool", agent))]
        runs, steps = pandas_frames(store)
        baselines = {"service levels: all": lambda: pandas_service_levels(runs, steps),
                     "cost by tool": lambda: pandas_cost_by_tool(steps),
                     "cost by model": lambda: steps[~steps["kind"].isin(["agent", "chain"])].groupby(
                         "model")["cost_usd"].sum(),
                     "cost by agent": lambda: runs.groupby("agent")["cost_usd"].sum()}
        rows = [["derived tables rebuild (once per ingest)", f"{refresh_ms:.0f}", "-", "-", "-", "-"]]
        for name, fn in cases:
            ms = _time(fn, repeat)
            base = _time(baselines[name], max(3, repeat // 4)) if name in baselines else None
            med, p95 = median(ms), percentile(ms, 0.95)
            met = "yes" if p95 < TARGET_QUERY_MS else ("median" if med < TARGET_QUERY_MS else "NO")
            rows.append([name, f"{med:.1f}", f"{p95:.1f}", met, f"{median(base):.0f}" if base else "-",
                         f"{median(base) / med:.0f}x" if base else "-"])
            print(f"  {name}: {med:.1f} ms", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100_000, help="runs in the checks store (x15 steps)")
    ap.add_argument("--query-runs", type=int, default=66_667, help="runs in the query store (x15 steps)")
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    ap.add_argument("--keep", action="store_true", help="keep the two databases")
    ap.add_argument("--only", choices=["checks", "queries"], default=None, help="run one half")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.1f}")

    checks_db = args.workdir / f"bench-rubrics-{args.runs}.duckdb"
    query_db = args.workdir / f"bench-rubrics-q{args.query_runs}.duckdb"
    res: dict = {}
    if args.only != "queries":
        res = _checks(checks_db, args.runs)
    qrows: list = []
    if args.only != "checks":
        qrows = _queries(query_db, args.query_runs, args.repeat)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    print(json.dumps({"checks": res, "queries": {r[0]: r[1:] for r in qrows}}, default=str))
    if not args.keep:
        remove_db(checks_db)
        remove_db(query_db)


def _checks(checks_db: Path, runs: int) -> dict:
    n, n_steps, build_s = build(checks_db, runs)
    print(f"checks store: {n:,} runs, {n_steps:,} steps, built in SQL in {build_s:.1f} s", flush=True)
    res = bench_checks(checks_db)
    print(f"\n10 checks over {n:,} runs / {n_steps:,} steps (target < {TARGET_CHECKS_S:.0f} s)\n")
    rows = [[c, f"{s:.2f}", f"{res['failed'][c]:,}", res["mismatches"][c]] for c, s in res["per_criterion_s"].items()]
    print(table(["criterion", "seconds", "runs failed", "differs from pandas"], rows))
    print(f"\nengine, all 10 (evaluate + store {n * 10:,} scores): {res['engine_s']:.2f} s "
          f"({'met' if res['engine_s'] < TARGET_CHECKS_S else 'NOT met'}); "
          f"pandas baseline: load {res['pandas_load_s']:.2f} s + compute {res['pandas_compute_s']:.2f} s")
    return res


def _queries(query_db: Path, runs: int, repeat: int) -> list:
    qn, q_steps, q_build = build(query_db, runs)
    print(f"\nquery store: {qn:,} runs, {q_steps:,} steps, built in {q_build:.1f} s", flush=True)
    qrows = bench_queries(query_db, repeat)
    print(f"\nOverview and Costs queries over {q_steps:,} steps, {repeat} repeats, ms "
          f"(target < {TARGET_QUERY_MS:.0f} ms)\n")
    print(table(["query", "median", "p95", "met (p95)", "pandas median", "pandas/ours"], qrows))
    return qrows


if __name__ == "__main__":
    main()
