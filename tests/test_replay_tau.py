"""Acceptance of issue 4 on real trajectories: replay a tau-bench failure, step with the keyboard, open a deep
link to a step, and compare it with a successful trial of the same task (library, AppTest, real browser).

Uses the `tau-bench` loader (workbench/loaders/taubench.py); what replay relies on from it: task_id set, outcome success/failure, one step per message (assistant turns as llm steps with their tool
calls in `messages`, tool results as tool steps with tool_name, tool_args and tool_result).

Expected figures come from ../shared/data/real/tau-bench/SOURCE.md (200 runs = 50 tasks x 4 trials, 84 pass
/ 116 fail) and from reading the file itself (26 of the 50 tasks have both a passing and a failing trial).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
from streamlit.testing.v1 import AppTest

from tests import browser_util as bu
from workbench.ingest import ingest_file
from workbench.replay import compare_runs, load_replay, nearest_success
from workbench.store import Store

pytestmark = pytest.mark.real_data
FILE = "tau-bench/gpt-4o-airline.json"


@pytest.fixture(scope="module")
def tau_db(tmp_path_factory):
    from tests.conftest import REAL

    if not (REAL / FILE).exists():
        pytest.skip(f"real trace files not found at {REAL} (they live in ../shared/data/real next to a clone)")
    raw = json.loads((REAL / FILE).read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("tau") / "tau.duckdb"
    store = Store(path)
    try:
        result = ingest_file(store, REAL / FILE)
        assert result.status == "ok" and result.n_runs == 200, result
        runs = store.df("SELECT run_id, task_id, outcome, (SELECT count(*) FROM steps s WHERE s.run_id = r.run_id "
                        "AND s.kind = 'tool') AS n_tools FROM runs r WHERE format = 'tau-bench'")
        # tasks with both outcomes; of their failures that called a tool, the lowest run id (a stable choice)
        both = sorted(t for t, g in runs.groupby("task_id") if {"success", "failure"} <= set(g["outcome"]))
        failure = runs[runs["task_id"].isin(both) & (runs["outcome"] == "failure") & (runs["n_tools"] > 0)][
            "run_id"].min()
        rp = load_replay(store, failure)
        facts = {"runs": runs, "both": both, "failure": failure, "nearest": nearest_success(store, failure),
                 "steps": rp.step_ids, "seqs": rp.steps["seq"].tolist(), "raw": raw,
                 "next_tool": rp.step_ids[rp.next_index(1, "tool")]}
    finally:
        store.close()
    return path, facts


def test_tau_bench_runs_as_replay_expects(tau_db):
    path, f = tau_db
    runs, raw = f["runs"], f["raw"]
    assert Counter(runs["outcome"]) == {"success": 84, "failure": 116}  # SOURCE.md
    per_task = Counter(r["task_id"] for r in raw)
    assert runs["task_id"].nunique() == len(per_task) == 50
    assert len(f["both"]) == 26  # tasks with a passing and a failing trial, counted in the file
    store = Store(path, read_only=True)
    try:
        # one step per message: as many steps per run as messages per trajectory; the 2,454 assistant
        # messages are llm steps and the 1,164 tool messages tool steps with their tool's name (counted in the file)
        n_steps = store.df("SELECT run_id, count(*) AS n FROM steps GROUP BY run_id")["n"]
        assert Counter(n_steps) == Counter(len(r["traj"]) for r in raw)
        kinds = dict(store.sql("SELECT kind, count(*) FROM steps GROUP BY kind").fetchall())
        assert kinds["llm"] == 2454 and kinds["tool"] == 1164
        assert store.sql("SELECT count(*) FROM steps WHERE kind = 'tool' AND tool_name IS NULL").fetchone()[0] == 0
        rp = load_replay(store, f["failure"])
        # the nearest success is a trial of the same task
        near = store.df("SELECT task_id, outcome, format FROM runs WHERE run_id = $r", {"r": f["nearest"]})
        assert near.iloc[0].tolist() == [rp.run["task_id"], "success", "tau-bench"]
        cmp = compare_runs(store, f["failure"], f["nearest"])
        assert cmp.pairs["a_seq"].dropna().tolist() == rp.steps["seq"].tolist()
        assert cmp.first_divergence is not None and cmp.outcomes == ("failure", "success")
    finally:
        store.close()


# -- AppTest ------------------------------------------------------------------------------------------------
def _app(path, monkeypatch, page: str, **params) -> AppTest:
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    at = AppTest.from_file(str(bu.ROOT / "app.py"), default_timeout=60)
    at.query_params.update(params)
    at.run()
    at.switch_page(page)
    at.query_params.update(params)
    at.run()
    return at.run()  # see tests/test_pages.py: the run after switch_page sees the URL's values


@pytest.fixture
def tau_copy(tau_db, tmp_path):
    # a copy per test: AppTest keeps its connection open in this process, the browser test serves its own
    path = tmp_path / "tau.duckdb"
    shutil.copyfile(tau_db[0], path)
    return path, tau_db[1]


def test_tau_bench_replay_and_compare_pages(tau_copy, monkeypatch):
    path, f = tau_copy
    at = _app(path, monkeypatch, "app_pages/run.py", run=f["failure"])
    assert not at.exception and not at.error
    assert "outcome: failure" in " ".join(t.value for t in at.text)
    at.button(key="replay.next").click().run()
    assert at.query_params["step"] == f["steps"][1]
    at.button(key="replay.tool").click().run()
    assert not at.exception and at.query_params["step"] == f["next_tool"]
    deep = _app(path, monkeypatch, "app_pages/run.py", run=f["failure"], step=f["steps"][3])
    assert any(t.value.startswith(f"#{f['seqs'][3]} · ") for t in deep.text)
    cmp = _app(path, monkeypatch, "app_pages/compare.py", a=f["failure"])
    assert not cmp.exception and not cmp.error
    assert [c.value for c in cmp.code][:2] == [f["failure"], f["nearest"]]
    assert any(t.value.startswith("First divergence at aligned position") for t in cmp.text)


# -- real browser -------------------------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.timeout(240)
def test_tau_bench_in_the_browser(tau_copy):
    bu.require_browser()  # skips (or, in CI, fails) with the reason when there is no browser
    from playwright.sync_api import expect

    path, f = tau_copy
    with bu.served_app(path, bu.free_port(), timeout=90) as base, bu.chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/run?run={f['failure']}")
        expect(page.locator('[data-testid="stCode"]').first).to_have_text(f["failure"], timeout=60_000)
        bu.settle(page)
        assert page.locator(bu.EXCEPTION).count() == 0
        bu.shot(page, "tau-replay")
        page.keyboard.press("j")
        page.wait_for_url(f"**step={f['steps'][1]}*", timeout=bu.WAIT_MS)
        bu.settle(page)
        page.keyboard.press("t")  # next tool call
        page.wait_for_url(f"**step={f['next_tool']}*", timeout=bu.WAIT_MS)
        bu.settle(page)
        assert page.locator(bu.EXCEPTION).count() == 0
        bu.shot(page, "tau-keyboard")
        page.goto(f"{base}/run?run={f['failure']}&step={f['steps'][3]}")
        expect(page.locator('[data-testid="stText"]', has_text=f"#{f['seqs'][3]} · ").first).to_be_visible(
            timeout=bu.WAIT_MS)
        bu.shot(page, "tau-deep-link")
        page.goto(f"{base}/compare?a={f['failure']}")
        expect(page.locator('[data-testid="stCode"]').nth(1)).to_have_text(f["nearest"], timeout=bu.WAIT_MS)
        expect(page.get_by_text("First divergence at aligned position", exact=False)).to_be_visible()
        bu.settle(page)
        assert page.locator(bu.EXCEPTION).count() == 0
        bu.shot(page, "tau-compare", height=2600)
