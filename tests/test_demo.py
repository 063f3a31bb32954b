"""The demo fleet as stored: sizes, ground truth for every failure mode, determinism, version drift."""

from __future__ import annotations

import duckdb

from workbench.demo import FAILURE_MODES
from workbench.demo_build import build_demo

MODE = "attributes->>'$.\"workbench.demo.failure_mode\"'"


def test_demo_sizes_kinds_and_ground_truth(demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        n_runs, n_steps = con.execute("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM steps)").fetchone()
        assert n_runs >= 2000 and n_steps >= 30000
        kinds = {k for (k,) in con.execute("SELECT DISTINCT kind FROM steps").fetchall()}
        assert {"llm", "tool", "retrieval", "guardrail", "human", "agent"} <= kinds
        combos = con.execute("SELECT count(DISTINCT (agent, agent_version)), "
                             "count(DISTINCT date_trunc('week', started_at)) FROM runs").fetchone()
        assert combos[0] >= 4 and combos[1] >= 4
        modes = dict(con.execute(f"SELECT {MODE}, count(*) FROM runs GROUP BY ALL").fetchall())
        for mode in FAILURE_MODES:
            assert modes.get(mode, 0) >= 20, mode
        # ground truth agrees with the outcome the loader derived from the evaluation event
        wrong = con.execute(f"SELECT count(*) FROM runs WHERE ({MODE} = 'none') <> (outcome = 'success')").fetchone()
        assert wrong[0] == 0
        # OTel GenAI spans carry tokens, not money: every run with tokens gets an estimated, marked cost
        costed = con.execute("SELECT count(*) FILTER (cost_usd > 0 AND cost_estimated), count(*) FROM runs "
                             "WHERE input_tokens > 0").fetchone()
        assert costed[0] == costed[1] > 2000
    finally:
        con.close()


def test_version_two_drifts_from_version_one(demo_db):
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        rows = {(a, v): (loops, cost) for a, v, loops, cost in con.execute(f"""
            SELECT agent, agent_version, avg(({MODE} = 'tool_loop')::INT), avg(cost_usd)
            FROM runs GROUP BY ALL""").fetchall()}
        assert rows[("support-agent", "v2")][0] < rows[("support-agent", "v1")][0] / 2  # fewer loops
        assert rows[("support-agent", "v2")][1] > rows[("support-agent", "v1")][1] * 1.5  # bigger model
    finally:
        con.close()


def test_same_seed_same_database(tmp_path):
    tables = {}
    for name in ("a", "b"):
        db = tmp_path / name / "demo.duckdb"
        build_demo(db, seed=11, n_runs=300)
        con = duckdb.connect(str(db), read_only=True)
        tables[name] = {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("runs", "steps")}
        tables[name]["imports"] = con.execute(
            "SELECT import_id, format, sha256, n_runs, n_steps, status FROM imports ORDER BY ALL").fetchall()
        con.close()
    assert tables["a"] == tables["b"]
    other = tmp_path / "c" / "demo.duckdb"
    build_demo(other, seed=12, n_runs=300)
    con = duckdb.connect(str(other), read_only=True)
    assert con.execute("SELECT * FROM runs ORDER BY ALL").fetchall() != tables["a"]["runs"]
    con.close()
