"""Service levels, costs, drift and budgets on the demo fleet, each figure recomputed directly in pandas from
`runs` and `steps`; drift flags the versions the generator made different and not an A/A split."""

from __future__ import annotations

import shutil
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workbench import analytics, budgets, drift, viz_ops
from workbench.queries import RunFilter
from workbench.store import Store


@pytest.fixture(scope="module")
def store(demo_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("analytics") / "demo.duckdb"
    shutil.copy(demo_db, path)
    with Store(path) as s:
        yield s


@pytest.fixture(scope="module")
def runs(store) -> pd.DataFrame:
    return store.df("SELECT * FROM runs")


@pytest.fixture(scope="module")
def steps(store) -> pd.DataFrame:
    return store.df("SELECT run_id, step_id, seq, kind, model, tool_name, CAST(tool_args AS VARCHAR) AS args, "
                    "status, error, cost_usd, cost_estimated FROM steps ORDER BY run_id, seq")


@pytest.fixture(scope="module")
def calls(steps) -> pd.DataFrame:
    """Tool calls with the pandas version of call_facts: repeat number, retry flag, the LLM call's share."""
    failed = (steps["status"] == "error") | steps["error"].notna()
    tools = steps[steps["tool_name"].notna()].assign(failed=failed).copy()
    tools["repeat_n"] = tools.groupby(["run_id", "tool_name", tools["args"].fillna("")]).cumcount() + 1
    prev = tools.groupby(["run_id", "tool_name"])["failed"].shift(1)
    tools["is_retry"] = prev.fillna(False).astype(bool)
    llm = steps[steps["kind"] == "llm"][["run_id", "seq", "step_id", "cost_usd"]].rename(
        columns={"step_id": "llm_step", "cost_usd": "llm_cost"})
    tools = pd.merge_asof(tools.sort_values("seq"), llm.sort_values("seq"), on="seq", by="run_id",
                          allow_exact_matches=False)
    tools["share"] = tools["llm_cost"] / tools.groupby(["run_id", "llm_step"])["llm_step"].transform("size")
    return tools


def llm_retries(steps: pd.DataFrame) -> pd.DataFrame:
    llm = steps[steps["kind"] == "llm"].copy()
    llm["prev_failed"] = ((llm["status"] == "error") | llm["error"].notna()).groupby(llm["run_id"]).shift(1)
    return llm[llm["prev_failed"].fillna(False).astype(bool)]


def levels(part: pd.DataFrame, human: set, retried: set) -> dict[str, float]:
    known = part["outcome"].isin(["success", "failure"]).sum()
    wins = (part["outcome"] == "success").sum()
    d = part["duration_ms"].dropna().to_numpy()
    return {"runs": len(part), "success_rate": wins / known, "human_share": part["run_id"].isin(human).mean(),
            "cost_per_success": part["cost_usd"].sum() / wins, "p50_ms": np.quantile(d, 0.5),
            "p95_ms": np.quantile(d, 0.95), "p99_ms": np.quantile(d, 0.99),
            "error_rate": (part["status"] == "error").mean(), "retry_rate": part["run_id"].isin(retried).mean()}


# -- service levels -----------------------------------------------------------------------------------------
def test_service_levels_match_pandas(store, runs, steps, calls):
    sl = analytics.service_levels(store)
    human = set(steps.loc[steps["kind"] == "human", "run_id"])
    retried = set(calls.loc[calls["is_retry"], "run_id"]) | set(llm_retries(steps)["run_id"])
    anchor = runs["started_at"].max()
    assert sl.anchor == anchor
    this = runs[runs["started_at"] > anchor - timedelta(days=7)]
    last = runs[(runs["started_at"] > anchor - timedelta(days=14)) & (runs["started_at"] <= anchor - timedelta(days=7))]
    checked = 0
    for period, part in (("this_week", this), ("last_week", last)):
        groups = [("(all)", "(all)", part)] + [(a, v, g) for (a, v), g in part.groupby(["agent", "agent_version"])]
        for agent, version, g in groups:
            row = sl.current[(sl.current["agent"] == agent) & (sl.current["agent_version"] == version)
                             & (sl.current["period"] == period)].iloc[0]
            for metric, value in levels(g, human, retried).items():
                assert row[metric] == pytest.approx(value, rel=1e-9), (period, agent, version, metric)
                checked += 1
    assert checked == 2 * 5 * 9  # two weeks x (fleet + 4 agent versions) x 9 metrics
    fleet = sl.compare().set_index("metric")
    assert fleet.loc["success_rate", "change"] == pytest.approx(
        levels(this, human, retried)["success_rate"] - levels(last, human, retried)["success_rate"])
    # the weekly trend, and the figure drawn from it
    weeks = runs.assign(week=runs["started_at"].dt.to_period("W-SUN").dt.start_time)
    direct = weeks.groupby("week").apply(lambda g: levels(g, human, retried)["success_rate"], include_groups=False)
    weekly = analytics.service_trend(store)
    fleet_weekly = weekly[weekly["agent"] == "(all)"].set_index("week")["success_rate"]
    assert fleet_weekly.to_numpy() == pytest.approx(direct.to_numpy())
    fig = viz_ops.service_trend(weekly, "success_rate")
    fleet_trace = next(t for t in fig.data if t.name == "fleet")
    assert list(fleet_trace.y) == pytest.approx(list(direct.to_numpy()))
    assert len(fig.data) == 5


def test_service_levels_follow_the_filter(store, runs):
    sl = analytics.service_levels(store, RunFilter(agent="coding-agent"))
    assert set(sl.current["agent"]) == {"(all)", "coding-agent"}
    coding = runs[runs["agent"] == "coding-agent"]
    assert sl.anchor == coding["started_at"].max()
    weekly = analytics.service_trend(store, RunFilter(agent="coding-agent"))
    assert weekly[weekly["agent"] == "(all)"]["runs"].sum() == len(coding)



def test_service_levels_of_an_empty_selection_are_empty(store, runs):
    sl = analytics.service_levels(store, RunFilter(agent="no-such-agent"))
    assert sl.anchor is None and sl.current.empty
    assert sl.compare()["this_week"].isna().all()


# -- costs --------------------------------------------------------------------------------------------------
def test_cost_by_model_agent_and_week_match_pandas(store, runs, steps):
    leaf = steps[~steps["kind"].isin(["agent", "chain"])]
    by_model = analytics.cost_breakdown(store, "model").set_index("key")
    direct = leaf.groupby("model")["cost_usd"].sum()
    assert by_model.loc[direct.index, "cost_usd"].to_numpy() == pytest.approx(direct.to_numpy())
    est = leaf[leaf["cost_estimated"] == True].groupby("model")["cost_usd"].sum()  # noqa: E712
    assert by_model.loc[est.index, "estimated_usd"].to_numpy() == pytest.approx(est.to_numpy())
    by_agent = analytics.cost_breakdown(store, "agent").set_index("key")
    direct = runs.groupby("agent")["cost_usd"].sum()
    assert by_agent.loc[direct.index, "cost_usd"].to_numpy() == pytest.approx(direct.to_numpy())
    assert (by_agent["reported_usd"] + by_agent["estimated_usd"]).to_numpy() == pytest.approx(
        by_agent["cost_usd"].to_numpy())
    assert by_agent["share"].sum() == pytest.approx(1.0)
    assert by_agent.loc["coding-agent", "input_tokens"] == runs.loc[runs["agent"] == "coding-agent",
                                                                    "input_tokens"].sum()
    by_week = analytics.cost_breakdown(store, "week").set_index("key").sort_index()
    direct = runs.groupby(runs["started_at"].dt.to_period("W-SUN").dt.start_time)["cost_usd"].sum()
    assert by_week["cost_usd"].to_numpy() == pytest.approx(direct.to_numpy())
    # the figure draws the same numbers (reported and estimated stacked)
    fig = viz_ops.cost_bars(analytics.cost_breakdown(store, "agent"), "agent")
    drawn = {y: sum(t.x[i] for t in fig.data) for t in fig.data[:1] for i, y in enumerate(t.y)}
    assert drawn == pytest.approx(runs.groupby("agent")["cost_usd"].sum().to_dict())


def test_cost_by_tool_spreads_each_llm_call_over_the_calls_it_asked_for(store, steps, calls):
    by_tool = analytics.cost_breakdown(store, "tool").set_index("key")
    direct = calls.groupby("tool_name")["share"].sum()
    assert by_tool.loc[direct.index, "cost_usd"].to_numpy() == pytest.approx(direct.to_numpy())
    assert by_tool.loc[direct.index, "calls"].tolist() == calls.groupby("tool_name").size().tolist()
    llm = steps[steps["kind"] == "llm"]
    answers = llm[~llm["step_id"].isin(set(calls["llm_step"].dropna()))]["cost_usd"].sum()
    assert by_tool.loc["(no tool call)", "cost_usd"] == pytest.approx(answers)
    assert by_tool["cost_usd"].sum() == pytest.approx(llm["cost_usd"].sum())  # every LLM dollar once


def test_waste_and_top_runs_match_pandas(store, runs, steps, calls):
    w = analytics.waste(store)
    assert w["total_usd"] == pytest.approx(runs["cost_usd"].sum())
    assert w["failed_runs_usd"] == pytest.approx(runs.loc[runs["outcome"] == "failure", "cost_usd"].sum())
    assert w["loops_usd"] == pytest.approx(calls.loc[calls["repeat_n"] > 1, "share"].sum())
    assert w["retries_usd"] == pytest.approx(calls.loc[calls["is_retry"], "share"].sum()
                                             + llm_retries(steps)["cost_usd"].sum())
    assert w["loops_usd"] > 0 and w["retries_usd"] > 0
    top = analytics.top_runs(store, n=5)
    assert list(top["run_id"]) == list(runs.sort_values(["cost_usd", "run_id"], ascending=[False, True])
                                       .head(5)["run_id"])


def test_cost_breakdown_rejects_unknown_dimensions(store):
    with pytest.raises(ValueError, match="choose one of"):
        analytics.cost_breakdown(store, "run_id; DROP TABLE runs")


def test_derived_tables_rebuild_only_when_steps_change(store):
    assert analytics.refresh_derived(store) is False
    version = store.data_version()
    with store.transaction() as cur:
        cur.execute("INSERT INTO steps (run_id, step_id, seq, kind, tool_name) "
                    "SELECT run_id, 'extra', 999, 'human', NULL FROM runs ORDER BY run_id LIMIT 1")
    try:
        assert analytics.refresh_derived(store) is True
        assert store.data_version() == version + 1  # the insert moved it; the rebuild did not
        first = store.sql("SELECT run_id FROM runs ORDER BY run_id LIMIT 1").fetchone()[0]
        assert store.sql("SELECT n_human FROM run_flags WHERE run_id = $r", {"r": first}).fetchone()[0] >= 1
    finally:
        with store.transaction() as cur:
            cur.execute("DELETE FROM steps WHERE step_id = 'extra'")
        analytics.refresh_derived(store)


# -- drift --------------------------------------------------------------------------------------------------
def test_injected_version_difference_is_flagged(store, runs):
    # support v2 (workbench/demo.py): a bigger model (about 4x the cost) that rarely loops: 31% vs 21% failures
    table = drift.drift(store, RunFilter(agent="support-agent", agent_version="v1"),
                        RunFilter(agent="support-agent", agent_version="v2")).set_index("metric")
    assert table.loc[["success rate", "cost per run", "cost per success"], "significant"].all()
    part = runs[runs["agent"] == "support-agent"]
    a, b = part[part["agent_version"] == "v1"], part[part["agent_version"] == "v2"]
    assert table.loc["success rate", "a"] == pytest.approx((a["outcome"] == "success").mean())
    assert table.loc["success rate", "b"] == pytest.approx((b["outcome"] == "success").mean())
    mw = stats.mannwhitneyu(b["duration_ms"], a["duration_ms"], alternative="two-sided")
    assert table.loc["latency (median ms)", "p_value"] == pytest.approx(mw.pvalue)
    assert table.loc["success rate", "effect_size"] > 0  # v2 succeeds more often


def test_only_real_changes_are_flagged(store):
    # coding v2 trades malformed edits for timeouts and runaway costs at the same failure rate (32% vs 32.5%
    # by the generator's rates): cost, latency and the failure mix move, the success rate must not be flagged
    table = drift.drift(store, RunFilter(agent="coding-agent", agent_version="v1"),
                        RunFilter(agent="coding-agent", agent_version="v2"),
                        mix="attribute:workbench.demo.failure_mode").set_index("metric")
    assert not table.loc["success rate", "significant"]
    assert table.loc[["cost per run", "cost per success", "latency (median ms)", "failure mix"],
                     "significant"].all()


@pytest.mark.parametrize("agent", ["support-agent", "coding-agent"])
def test_an_a_a_split_is_not_flagged(store, agent):
    one = drift.run_metrics(store, RunFilter(agent=agent, agent_version="v1"),
                            mix="attribute:workbench.demo.failure_mode")
    half = np.random.default_rng(20261121).random(len(one)) < 0.5  # seeded: the same halves every run
    table = drift.compare(one[half], one[~half])
    assert len(table) == 5 and not table["significant"].any(), table[["metric", "p_value", "p_adjusted"]]


def test_last_two_weeks_split_at_the_latest_day(store, runs):
    last, this = drift.last_two_weeks(store)
    latest = runs["started_at"].max().date()
    assert this.date_to == latest and this.date_from == latest - timedelta(days=6)
    assert last.date_to == latest - timedelta(days=7)


# -- budgets ------------------------------------------------------------------------------------------------
def test_budgets_flag_runs_outside_their_envelope(store, runs, tmp_path):
    path = tmp_path / "budgets.toml"
    path.write_text('[default]\nmax_duration_ms = 600_000\n\n[agents.support-agent]\nmax_cost_usd = 0.02\n'
                    'max_duration_ms = 300_000\n\n[agents.coding-agent]\nmax_cost_usd = 0.6\nmax_tokens = 250_000\n')
    b = budgets.load_budgets(path)
    got = budgets.budget_breaches(store, b)
    s, c = runs[runs["agent"] == "support-agent"], runs[runs["agent"] == "coding-agent"]
    tokens = c["input_tokens"].fillna(0) + c["output_tokens"].fillna(0)
    want = set(s[(s["cost_usd"] > 0.02) | (s["duration_ms"] > 300_000)]["run_id"]) | set(
        c[(c["cost_usd"] > 0.6) | (tokens > 250_000)]["run_id"])
    assert set(got["run_id"]) == want and len(want) > 0
    summary = budgets.budget_summary(store, b).set_index("agent")
    assert summary.loc["support-agent", "outside"] == len(set(got["run_id"]) & set(s["run_id"]))
    assert summary.loc["coding-agent", "over_tokens"] == int((tokens > 250_000).sum())
    path.write_text("[agents.x]\nmax_cost = 1\n")
    with pytest.raises(budgets.BudgetError, match="agents.x.max_cost"):
        budgets.load_budgets(path)
