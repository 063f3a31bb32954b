"""The Rubrics and Costs pages and the Overview's service levels through AppTest, on a copy of the demo fleet;
what they show is compared with the library functions they call. Hostile trace text stays text."""

from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

import workbench_ui as wb_ui
from tests import browser_util as bu
from tests.test_pages import APP, MARKERS, TEXT_ONLY, assert_trace_text_is_inert, metrics, no_errors, walk
from workbench import analytics
from workbench.rubric_results import failing_runs
from workbench.rubrics import load_rubric
from workbench.store import shared_store

DEMO_RUBRIC = bu.ROOT / "data" / "rubrics" / "demo.toml"


@pytest.fixture(scope="module")
def fleet_db(demo_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("pages-ops") / "demo.duckdb"
    shutil.copy(demo_db, path)
    return path


def opener(db, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB", str(db))

    def _open(path: str | None = None, /, **params) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        at.query_params.update(params)
        at.run()
        if path:
            at.switch_page(path)
            at.query_params.update(params)
            at.run()
        return at

    return _open


@pytest.fixture
def open_page(fleet_db, monkeypatch):
    return opener(fleet_db, monkeypatch)


def store_of(db):
    return shared_store(db, serving=True)  # the app's own connection (same process, same configuration)


# -- Overview: service levels -------------------------------------------------------------------------------
def test_overview_service_levels(open_page, fleet_db):
    at = open_page()
    no_errors(at)
    fleet = analytics.service_levels(store_of(fleet_db)).compare().set_index("metric")
    got = metrics(at)
    assert got["Success rate · this week"] == wb_ui.fmt_pct(fleet.loc["success_rate", "this_week"])
    assert got["Needed a human · this week"] == wb_ui.fmt_pct(fleet.loc["human_share", "this_week"])
    assert got["Cost per success · this week"] == wb_ui.fmt_cost(fleet.loc["cost_per_success", "this_week"])
    assert got["Retry rate · this week"] == wb_ui.fmt_pct(fleet.loc["retry_rate", "this_week"])
    table = next(d.value for d in at.dataframe if "retry_rate_change" in d.value.columns)
    assert len(table) == 5  # the fleet and four agent versions
    drift_table = next(d.value for d in at.dataframe if "p_adjusted" in d.value.columns)
    # default comparison: the first agent (coding-agent) v1 against v2, whose costs and latency moved
    assert drift_table.set_index("metric").loc["cost per run", "significant"]


# -- Costs --------------------------------------------------------------------------------------------------
def test_costs_page(open_page, fleet_db):
    at = open_page("app_pages/costs.py")
    no_errors(at)
    store = store_of(fleet_db)
    w = analytics.waste(store)
    got = metrics(at)
    assert got["Total cost"] == wb_ui.fmt_cost(w["total_usd"])
    assert got["On failed runs"] == wb_ui.fmt_cost(w["failed_runs_usd"])
    assert got["On loops"] == wb_ui.fmt_cost(w["loops_usd"])
    assert got["On retries"] == wb_ui.fmt_cost(w["retries_usd"])
    assert len(at.get("plotly_chart")) == 3
    at.selectbox(key="by").select("tool").run()
    no_errors(at)
    frame = at.dataframe[0].value
    expected = analytics.cost_breakdown(store, "tool")
    assert list(frame["key"]) == list(expected["key"]) and "(no tool call)" in set(frame["key"])
    assert any("No budgets configured" in i.value for i in at.info)
    top = next(d.value for d in at.dataframe if "cost_estimated" in d.value.columns)
    assert list(top["run_id"]) == list(analytics.top_runs(store, n=20)["run_id"])


def test_costs_page_budgets(open_page, fleet_db):
    budgets = fleet_db.parent / "budgets.toml"
    budgets.write_text("[agents.support-agent]\nmax_cost_usd = 0.02\n")
    try:
        at = open_page("app_pages/costs.py")
        no_errors(at)
        summary = next(d.value for d in at.dataframe if "share_outside" in d.value.columns)
        support = summary.set_index("agent").loc["support-agent"]
        n = store_of(fleet_db).sql("SELECT count(*) FROM runs WHERE agent = 'support-agent' AND cost_usd > 0.02"
                                   ).fetchone()[0]
        assert support["over_cost"] == n > 0
        budgets.write_text("[agents.support-agent]\nmax_cost = 1\n")
        broken = open_page("app_pages/costs.py")
        assert broken.error and "could not be read" in broken.error[0].value
    finally:
        budgets.unlink()


# -- Rubrics ------------------------------------------------------------------------------------------------
def test_rubrics_page_scores_and_reads_back(open_page, fleet_db):
    at = open_page("app_pages/rubrics.py", rubric="file: demo.toml")
    no_errors(at)
    rubric = load_rubric(DEMO_RUBRIC)
    assert any(f"version {rubric.version}" in t.value for t in at.text)
    next(b for b in at.button if b.label.startswith("Score")).click().run()
    no_errors(at)
    assert at.success and "Scored 2,400 runs" in at.success[0].value
    got = metrics(at)
    assert got["Runs scored"] == "2,400"
    n_fail = store_of(fleet_db).sql("SELECT count(*) FROM runs WHERE outcome = 'failure'").fetchone()[0]
    assert 0 < int(got["Failed a required criterion"].replace(",", "")) <= n_fail
    assert len(at.get("plotly_chart")) == 3  # two pass-rate heatmaps and the confusion matrix
    at.selectbox(key="criterion").select("no_loops").run()
    no_errors(at)
    shown = next(d.value for d in at.dataframe if "evidence" in d.value.columns)
    expected = failing_runs(store_of(fleet_db), rubric, "no_loops")
    assert sorted(shown["run_id"]) == sorted(expected["run_id"]) and len(shown) > 0
    assert all(link.startswith(f"run?run={r}&step=") for link, r in zip(shown["open"], shown["run_id"],
                                                                         strict=True))


def test_rubrics_page_rejects_a_broken_edit(open_page):
    at = open_page("app_pages/rubrics.py", rubric="file: demo.toml")
    area = at.text_area[0]
    area.input(area.value.replace('check = "no_loops"', 'check = "no_such_check"')).run()
    no_errors_but_the_message = [e.value for e in at.exception]
    assert no_errors_but_the_message == []
    assert at.error and "not valid" in at.error[0].value
    assert any("unknown check 'no_such_check'" in c.value for c in at.code)


def test_rubrics_and_costs_keep_hostile_text_inert(monkeypatch, tmp_path):
    db = bu.build_sample_db(tmp_path / "hostile.duckdb")
    open_page = opener(db, monkeypatch)
    at = open_page("app_pages/rubrics.py", rubric="file: demo.toml")
    next(b for b in at.button if b.label.startswith("Score")).click().run()
    no_errors(at)
    # the evil run's failed tool step carries <script> and a Markdown image into the evidence text
    at.selectbox(key="criterion").select("errors_handled").run()
    no_errors(at)
    shown = next(d.value for d in at.dataframe if "evidence" in d.value.columns)
    assert bu.EVIL_RUN_ID in set(shown["run_id"])
    assert assert_trace_text_is_inert(at) >= 1
    costs = open_page("app_pages/costs.py", by="task")  # the evil run's task id is a Markdown image
    no_errors(costs)
    assert assert_trace_text_is_inert_or_escaped_chart(costs) >= 1


def assert_trace_text_is_inert_or_escaped_chart(at: AppTest) -> int:
    """As assert_trace_text_is_inert, but a chart may carry trace text in its labels: plotly renders no
    Markdown (an image written in Markdown stays characters) and the labels are HTML-escaped, which is checked
    here on the decoded figure."""
    hits = 0
    for element in walk(at._tree):
        proto = getattr(element, "proto", None)
        if proto is None or not any(m in str(proto) for m in MARKERS):
            continue
        hits += 1
        if element.type == "plotly_chart":
            texts = json.dumps(json.loads(proto.spec)["data"], ensure_ascii=False)
            assert "<script>" not in texts  # escaped to &lt;script&gt; by workbench.viz._label
        else:
            assert element.type in TEXT_ONLY, f"trace text reached a {element.type} element"
    return hits
