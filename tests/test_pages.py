"""Every page through streamlit's AppTest against the fixture database."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests import browser_util as bu
from workbench import queries
from workbench import ui as wb_ui
from workbench.store import Store, shared_store

APP = str(bu.ROOT / "app.py")
# Element types that show text as text; anything else (markdown, caption, headers, alerts, metric labels,
# widget labels ...) renders Markdown and must never receive trace text.
TEXT_ONLY = {"code", "text", "dataframe", "json", "text_input"}  # a text input's value is an <input> value
MARKERS = ("<script>", "alert(1)", "![x]", "127.0.0.1:9")


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    return bu.build_sample_db(tmp_path_factory.mktemp("pages") / "wb.duckdb")


@pytest.fixture
def open_page(sample_db, monkeypatch):
    """Run the app, optionally switch to a page with query parameters set, and return the AppTest."""
    monkeypatch.setenv("WORKBENCH_DB", str(sample_db))

    def _open(path: str | None = None, /, **params: str | list[str]) -> AppTest:
        # The URL is given on the first run too, as a browser opening a deep link would: bound filter widgets
        # take their value when first drawn, and the default page draws the filter as well.
        at = AppTest.from_file(APP, default_timeout=30)
        at.query_params.update(params)
        at.run()
        if path is None:
            return at
        at.switch_page(path)
        at.query_params.update(params)
        at.run()
        # AppTest quirk (streamlit 1.67): on the run right after switch_page, a bound widget drawn on both
        # pages returns its default; the next run returns the URL's value, as a browser loading the link does.
        return at.run() if params else at

    return _open


def no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from walk(child)


def assert_trace_text_is_inert(at: AppTest) -> int:
    """Every element carrying a hostile marker is a text-only element; returns how many carried one."""
    hits = 0
    for element in walk(at._tree):
        proto = getattr(element, "proto", None)
        if proto is None:
            continue
        body = str(proto)
        if any(marker in body for marker in MARKERS):
            hits += 1
            assert element.type in TEXT_ONLY, f"trace text reached a {element.type} element: {body[:200]}"
    return hits


# -- Overview ---------------------------------------------------------------------------------------------
def test_overview(open_page, sample_db):
    at = open_page()
    no_errors(at)
    assert at.title[0].value == "Overview"
    # the app's own connection: a second one with another configuration is refused in-process
    ov = queries.overview(shared_store(sample_db, serving=True), queries.RunFilter())
    got = metrics(at)
    assert got["Runs"] == "36"
    assert got["Success rate"] == wb_ui.fmt_pct(ov.success_rate)
    assert got["Total cost"] == wb_ui.fmt_cost(ov.total_cost)
    assert got["Cost per success"] == wb_ui.fmt_cost(ov.cost_per_success)
    assert got["p50 duration"] == wb_ui.fmt_duration(ov.p50_ms)
    assert got["p95 duration"] == wb_ui.fmt_duration(ov.p95_ms)
    assert len(at.get("plotly_chart")) == 5  # four overview charts and the service-level trend
    by_version = at.dataframe[0].value
    assert len(by_version) == 3 and set(by_version["agent"]) == {"coder", "support-bot"}


def test_overview_filter_from_sidebar_and_url(open_page):
    at = open_page()
    at.sidebar.multiselect(key="agent").select("coder").run()
    no_errors(at)
    assert metrics(at)["Runs"] == "12"
    linked = open_page(outcome="failure")
    no_errors(linked)
    assert metrics(linked)["Success rate"] == "0.0%"


def test_reset_filters(open_page):
    at = open_page(outcome="failure", q="order")
    assert metrics(at)["Runs"] != "36"
    at.sidebar.button[0].click().run()
    no_errors(at)
    assert metrics(at)["Runs"] == "36"


def test_overview_empty_selection(open_page):
    at = open_page(q="no such text anywhere")
    no_errors(at)
    assert any("No runs match" in i.value for i in at.info)


# -- Runs -------------------------------------------------------------------------------------------------
def runs_caption(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("rows "))


def test_runs_list(open_page):
    at = open_page("app_pages/runs.py")
    no_errors(at)
    assert runs_caption(at) == "rows 1–36 of 36 · page 1 of 1"
    frame = at.dataframe[0].value
    assert len(frame) == 36
    assert all(link == f"run?run={rid}" for link, rid in zip(frame["open"], frame["run_id"], strict=True))
    # default: newest first
    assert list(frame["started_at"]) == sorted(frame["started_at"], reverse=True)


def test_runs_pagination_and_sort(open_page):
    at = open_page("app_pages/runs.py")
    at.selectbox(key="size").select(25).run()
    assert runs_caption(at) == "rows 1–25 of 36 · page 1 of 2"
    assert len(at.dataframe[0].value) == 25
    at.number_input(key="page").set_value(2).run()
    no_errors(at)
    assert runs_caption(at) == "rows 26–36 of 36 · page 2 of 2"
    assert len(at.dataframe[0].value) == 11
    # a new sort starts again at page 1
    at.selectbox(key="sort").select("cost_usd").run()
    at.selectbox(key="order").select("asc").run()
    no_errors(at)
    assert runs_caption(at).startswith("rows 1–25 of 36")
    assert at.dataframe[0].value["run_id"].iloc[0] == "run0000000000000"  # cheapest run


def test_runs_filters(open_page):
    at = open_page("app_pages/runs.py")
    at.sidebar.multiselect(key="outcome").select("failure").run()
    no_errors(at)
    frame = at.dataframe[0].value
    assert set(frame["outcome"]) == {"failure"}
    assert runs_caption(at).endswith(f"of {len(frame)} · page 1 of 1")
    at.sidebar.text_input(key="q").input("50%").run()
    assert any("No runs match" in i.value for i in at.info)  # the 50% run is not a failure
    at.sidebar.multiselect(key="outcome").unselect("failure").run()
    assert list(at.dataframe[0].value["run_id"]) == [bu.PERCENT_RUN_ID]


def test_runs_deep_link(open_page):
    at = open_page("app_pages/runs.py", agent=["coder", "support-bot"], outcome="success", size="25", page="1")
    no_errors(at)
    frame = at.dataframe[0].value
    assert set(frame["outcome"]) == {"success"} and len(frame) <= 25


# -- Run --------------------------------------------------------------------------------------------------
def test_run_page_shows_the_run(open_page):
    at = open_page("app_pages/run.py", run="run0000000000003")
    no_errors(at)
    assert at.code[0].value == "run0000000000003"
    header = " ".join(t.value for t in at.text)
    assert "agent: support-bot" in header and "version: v1" in header and "trace-0003" in header
    got = metrics(at)
    assert got["Steps"] == "3" and got["Tokens"] == "126" and got["Duration"] == "1.8 s"
    assert "Cost" in got  # run 3 has a reported cost; even-numbered runs are estimated
    steps = at.dataframe[0].value
    assert list(steps["step_id"]) == ["s0", "s1", "s2"]
    assert steps["step"].iloc[1].endswith("└ chat gpt-4o-mini")


def test_run_page_estimated_cost_and_step_link(open_page):
    at = open_page("app_pages/run.py", run="run0000000000004", step="s1")
    no_errors(at)
    assert "Cost (estimated)" in metrics(at)
    codes = [c.value for c in at.code]
    assert "What is the order status?" in codes
    assert any('"lookup_order"' in c for c in codes)  # the assistant's tool call, as JSON text


def test_run_page_unknown_and_empty(open_page):
    at = open_page("app_pages/run.py", run="no-such-run")
    no_errors(at)
    assert at.warning and "No run with this id" in at.warning[0].value
    assert at.code[0].value == "no-such-run"
    # a hostile id from the URL is echoed only as code
    hostile = open_page("app_pages/run.py", run=bu.EVIL_IMAGE)
    assert hostile.warning and assert_trace_text_is_inert(hostile) >= 1
    empty = open_page("app_pages/run.py")
    no_errors(empty)
    assert any("Paste a run id" in i.value for i in empty.info)


def test_text_input_opens_a_run(open_page):
    at = open_page("app_pages/run.py")
    at.text_input(key="run").input("run0000000000011").run()
    no_errors(at)
    assert at.code[0].value == "run0000000000011"


# -- untrusted text ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("step", ["s1", "s2"])
def test_hostile_trace_text_is_only_text(open_page, step):
    at = open_page("app_pages/run.py", run=bu.EVIL_RUN_ID, step=step)
    no_errors(at)
    codes = " ".join(c.value for c in at.code)
    assert bu.EVIL_SCRIPT in codes and bu.EVIL_IMAGE in codes  # shown, as text
    assert assert_trace_text_is_inert(at) >= 3
    for element in at.markdown:
        assert not any(marker in element.value for marker in MARKERS)


def test_hostile_text_in_lists_is_only_text(open_page):
    runs = open_page("app_pages/runs.py", q="<script>")
    no_errors(runs)
    assert list(runs.dataframe[0].value["run_id"]) == [bu.EVIL_RUN_ID]
    assert assert_trace_text_is_inert(runs) >= 1
    overview = open_page(q="<script>")
    no_errors(overview)
    assert metrics(overview)["Runs"] == "1"
    assert_trace_text_is_inert(overview)


# -- no data ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", [None, "app_pages/runs.py", "app_pages/run.py"])
def test_missing_database_gets_a_friendly_message(tmp_path, monkeypatch, page):
    missing = tmp_path / "nope" / "wb.duckdb"
    monkeypatch.setenv("WORKBENCH_DB", str(missing))
    at = AppTest.from_file(APP, default_timeout=30).run()
    if page:
        at.switch_page(page).run()
    no_errors(at)
    assert any("workbench demo" in i.value for i in at.info)
    assert not missing.exists()  # looking must not create an empty database


def test_empty_database_gets_a_friendly_message(tmp_path, monkeypatch):
    path = tmp_path / "empty.duckdb"
    Store(path).close()
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    at = AppTest.from_file(APP, default_timeout=30).run()
    no_errors(at)
    assert any("holds no runs" in i.value for i in at.info)
