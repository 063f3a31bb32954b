"""Every page through streamlit's AppTest against the fixture database."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

import workbench_ui as wb_ui
from tests import browser_util as bu
from workbench import queries
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
    return _opener(sample_db, monkeypatch)


@pytest.fixture(scope="module")
def demo_copy(demo_db, tmp_path_factory):
    # a copy: this process keeps the app's connection open, and other tests open the session's demo file
    path = tmp_path_factory.mktemp("demo-pages") / "demo.duckdb"
    shutil.copyfile(demo_db, path)
    return path


@pytest.fixture
def open_demo(demo_copy, monkeypatch):
    """`open_page` on the demo fleet."""
    return _opener(demo_copy, monkeypatch)


def _opener(db, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB", str(db))

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


# -- Replay (the Run page, url path "run") ------------------------------------------------------------------
def step_grid(at: AppTest):
    """The step list: the dataframe with the indented step labels."""
    return next(d.value for d in at.dataframe if "label" in d.value.columns)


def test_run_page_shows_the_run(open_page):
    at = open_page("app_pages/run.py", run="run0000000000003")
    no_errors(at)
    assert at.title[0].value == "Replay"
    assert at.code[0].value == "run0000000000003"
    header = " ".join(t.value for t in at.text)
    assert "agent: support-bot" in header and "version: v1" in header and "trace-0003" in header
    got = metrics(at)
    assert got["Steps"] == "3" and got["Tokens"] == "126" and got["Duration"] == "1.8 s"
    assert got["Cost (reported)"] == "$0.0040"  # run 3 has a reported cost (0.001 x 4); even runs are estimated
    steps = step_grid(at)
    assert list(steps["step_id"]) == ["s0", "s1", "s2"]
    assert steps["label"].iloc[1].endswith("└ chat gpt-4o-mini")
    # no ?step=: the first step is shown, and the URL says so
    assert at.query_params["step"] == "s0"
    assert "step 1 of 3" in header


def test_run_page_estimated_cost_and_step_link(open_page):
    at = open_page("app_pages/run.py", run="run0000000000004", step="s1")
    no_errors(at)
    assert "Cost (estimated)" in metrics(at)
    codes = [c.value for c in at.code]
    assert "What is the order status?" in codes
    assert '{\n  "order": 1\n}' in codes  # the assistant's tool call arguments, pretty-printed
    texts = [t.value for t in at.text]
    assert "→ tool call lookup_order (c1)" in texts and "step 2 of 3" in texts
    assert [m.name for m in at.get("chat_message")] == ["user", "assistant"]


def test_replay_prev_next_and_jumps(open_page):
    at = open_page("app_pages/run.py", run="run0000000000002")  # a failure: its tool step has an error
    assert at.button(key="replay.prev").disabled and not at.button(key="replay.next").disabled
    at.button(key="replay.next").click().run()
    assert at.query_params["step"] == "s1"
    at.button(key="replay.prev").click().run()
    assert at.query_params["step"] == "s0"
    at.button(key="replay.error").click().run()
    no_errors(at)
    assert at.query_params["step"] == "s2"
    assert "Tool timeout after 30s" in [c.value for c in at.code]
    assert at.button(key="replay.next").disabled and at.button(key="replay.error").disabled
    at.button(key="replay.prev").click().run()
    at.button(key="replay.tool").click().run()
    assert at.query_params["step"] == "s2"
    shortcuts = {b.key: b.proto.shortcut for b in at.button if b.key and b.key.startswith("replay.")}
    assert shortcuts == {"replay.prev": "k", "replay.next": "j", "replay.error": "e", "replay.tool": "t",
                         "replay.finding": "l"}


def test_replay_linked_step_wins_over_the_remembered_one(open_page):
    at = open_page("app_pages/run.py", run="run0000000000004", step="s2")
    assert at.query_params["step"] == "s2"
    at.query_params["step"] = "s1"  # a link from Compare to another step of the same run
    at.run()
    assert at.query_params["step"] == "s1" and "step 2 of 3" in [t.value for t in at.text]
    at.query_params["step"] = "no-such-step"  # stale: the page keeps showing a step it has
    at.run()
    no_errors(at)
    assert at.query_params["step"] == "s1"


def test_replay_header_lists_current_labels(sample_db, tmp_path, monkeypatch):
    db = tmp_path / "labelled.duckdb"
    shutil.copyfile(sample_db, db)
    store = Store(db)
    events = [("e1", None, "tool.wrong_tool", "high", "add"), ("e2", "s2", bu.EVIL_SCRIPT, None, "add"),
              ("e3", None, "outcome.gave_up", None, "add"), ("e4", None, "outcome.gave_up", None, "remove")]
    with store, store.transaction() as cur:
        for n, (eid, step, code, severity, action) in enumerate(events):
            cur.execute("INSERT INTO label_events (event_id, run_id, step_id, code, severity, reviewer, created_at, "
                        "action) VALUES ($1, 'run0000000000003', $2, $3, $4, 'maria', "
                        "TIMESTAMP '2026-03-01 10:00:00' + to_minutes($5), $6)",
                        [eid, step, code, severity, n, action])
    at = _opener(db, monkeypatch)("app_pages/run.py", run="run0000000000003")
    no_errors(at)
    labels = next(t.value for t in at.text if t.value.startswith("labels: "))
    # the removed label is gone; a label's code is data too, so it is shown as text only
    assert labels == f"labels: tool.wrong_tool (high) by maria; {bu.EVIL_SCRIPT} by maria on step s2"
    assert assert_trace_text_is_inert(at) >= 1


# -- Compare ------------------------------------------------------------------------------------------------
def test_compare_defaults_to_the_nearest_success(open_page):
    at = open_page("app_pages/compare.py", a="run0000000000002")
    no_errors(at)
    # From browser_util.sample_runs: run i has agent/version agents[i % 3], outcome outcomes[i % 7] and task
    # task-{i % 5}. Run 2 is a coder failure on task-2; the successes on task-2 are runs 7 and 22 (support-bot
    # v2), 27 (support-bot v1) and 32 (coder): only 32 is the same agent (there is no other coder version).
    codes = [c.value for c in at.code]
    assert codes[:2] == ["run0000000000002", "run0000000000032"]
    assert any(c.value.startswith("B is the nearest successful run") for c in at.caption)
    pairs = next(d.value for d in at.dataframe if "op" in d.value.columns)
    assert list(pairs["op"]) == ["same", "same", "result differs"]  # same steps; the tool failed in A only
    texts = [t.value for t in at.text]
    assert "The runs take the same steps in the same order." in texts
    deltas = next(d.value for d in at.dataframe if "metric" in d.value.columns).set_index("metric")
    assert deltas.loc["errors", "B - A"] == "-1" and deltas.loc["steps", "B - A"] == "±0"


def test_compare_explicit_pair_and_missing_runs(open_page):
    at = open_page("app_pages/compare.py", a="run0000000000002", b="run0000000000000")
    no_errors(at)
    assert [c.value for c in at.code][:2] == ["run0000000000002", "run0000000000000"]
    missing = open_page("app_pages/compare.py", a="run0000000000002", b="nope")
    no_errors(missing)
    assert missing.warning and "not in the database" in missing.warning[0].value
    nothing = open_page("app_pages/compare.py")
    assert any("Paste the id of run A" in i.value for i in nothing.info)


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


def _demo_loop_run(db) -> tuple[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT run_id, task_id FROM runs WHERE attributes->>'$.\"workbench.demo.failure_mode\"' = 'tool_loop' "
            "AND agent = 'support-agent' ORDER BY run_id LIMIT 1").fetchone()
    finally:
        con.close()


def test_replay_a_demo_tool_loop(open_demo, demo_db):
    run_id, _ = _demo_loop_run(demo_db)
    at = open_demo("app_pages/run.py", run=run_id)
    no_errors(at)
    assert at.warning and at.warning[0].value.startswith("Loop detected: 1 loop")
    findings = next(d.value for d in at.dataframe if "detail" in d.value.columns)
    assert findings["category"].tolist()[0] == "loop" and "in a row with the same arguments" in findings["detail"][0]
    first_seq = int(findings["first_seq"][0])
    at.button(key="replay.finding").click().run()
    no_errors(at)
    texts = [t.value for t in at.text]
    assert any(t.startswith(f"#{first_seq} · ") for t in texts)
    assert any(t.startswith("loop: ") for t in texts)
    grid = step_grid(at)
    assert (grid["flags"] == "loop").sum() == findings["count"][0]
    assert len(at.get("plotly_chart")) == 2


def test_compare_a_demo_tool_loop_with_its_nearest_success(open_demo, demo_db):
    run_id, task_id = _demo_loop_run(demo_db)
    at = open_demo("app_pages/compare.py", a=run_id)
    no_errors(at)
    texts = [t.value for t in at.text]
    assert texts[0] == "run A" and f"task: {task_id}" in texts[1] and "outcome: failure" in texts[1]
    assert "outcome: success" in texts[3] and f"task: {task_id}" in texts[3]
    assert any(t.startswith("First divergence at aligned position") for t in texts)
    pairs = next(d.value for d in at.dataframe if "op" in d.value.columns)
    assert (pairs["op"] == "only in A").any()
    at.toggle(key="compare.only").set_value(True).run()
    no_errors(at)
    shown = next(d.value for d in at.dataframe if "op" in d.value.columns)
    assert len(shown) == (pairs["op"] != "same").sum() and "same" not in set(shown["op"])


# -- untrusted text ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("step", ["s1", "s2"])
def test_hostile_trace_text_is_only_text(open_page, step):
    at = open_page("app_pages/run.py", run=bu.EVIL_RUN_ID, step=step)
    no_errors(at)
    assert at.query_params["step"] == step
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


@pytest.mark.parametrize("other", [None, "run0000000000003"])
def test_hostile_text_in_compare_is_only_text(open_page, other):
    params = {"a": bu.EVIL_RUN_ID} | ({"b": other} if other else {})
    at = open_page("app_pages/compare.py", **params)
    no_errors(at)
    codes = " ".join(c.value for c in at.code)
    if other:  # the evil run's tool result differs from run 3's: shown in full and in the diff, as code
        assert bu.EVIL_SCRIPT in codes
        assert assert_trace_text_is_inert(at) >= 1
    for element in at.markdown:
        assert not any(marker in element.value for marker in MARKERS)


# -- no data ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page", [None, "app_pages/runs.py", "app_pages/run.py", "app_pages/compare.py"])
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
