"""The read side (workbench.queries) against a small fixture database; expected values computed in pandas."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from tests import browser_util as bu
from workbench import queries as q
from workbench.queries import RunFilter
from workbench.store import Store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = bu.build_sample_db(tmp_path_factory.mktemp("queries") / "fixture.duckdb")
    with Store(path, serving=True) as opened:
        yield opened


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return pd.DataFrame(bu.sample_runs())


def ids(store, flt, **kw) -> set[str]:
    page = q.runs_page(store, flt, page_size=1000, **kw)
    assert page.total == len(page.frame)
    return set(page.frame["run_id"])


# -- RunFilter --------------------------------------------------------------------------------------------
def test_filter_normalizes_and_hashes():
    a = RunFilter(agent="coder", outcome=["failure", "failure"], text="  x ")
    b = RunFilter(agent=("coder",), outcome=("failure",), text="x")
    assert a == b and hash(a) == hash(b)
    assert a.agent == ("coder",) and a.outcome == ("failure",) and a.text == "x"
    assert RunFilter(agent=[], text="   ").is_empty()
    with pytest.raises(Exception):  # noqa: B017 - frozen pydantic model raises a ValidationError
        a.agent = ("x",)  # type: ignore[misc]
    with pytest.raises(ValueError):
        RunFilter(nope=1)  # type: ignore[call-arg]


# -- filters ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("agent", "coder"),
        ("agent", ("coder", "support-bot")),
        ("agent_version", "v2"),
        ("outcome", "failure"),
        ("outcome", ("success", "unknown")),
        ("status", "error"),
        ("format", "langfuse"),
    ],
)
def test_list_filters(store, runs, field, value):
    wanted = (value,) if isinstance(value, str) else value
    expected = set(runs.loc[runs[field].isin(wanted), "run_id"])
    assert expected and ids(store, RunFilter(**{field: value})) == expected


def test_date_filters_are_inclusive_days(store, runs):
    start, end = date(2024, 3, 10), date(2024, 3, 12)
    day = runs["started_at"].dt.date
    assert ids(store, RunFilter(date_from=start)) == set(runs.loc[day >= start, "run_id"])
    assert ids(store, RunFilter(date_to=end)) == set(runs.loc[day <= end, "run_id"])
    both = set(runs.loc[(day >= start) & (day <= end), "run_id"])
    assert both and ids(store, RunFilter(date_from=start, date_to=end)) == both


def test_filters_combine(store, runs):
    flt = RunFilter(agent="support-bot", outcome="failure", format="otlp")
    mask = (runs["agent"] == "support-bot") & (runs["outcome"] == "failure") & (runs["format"] == "otlp")
    assert ids(store, flt) == set(runs.loc[mask, "run_id"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50%", {bu.PERCENT_RUN_ID}),                # % is literal, not a wildcard
        ("O'BRIEN_FAMILY", {bu.PERCENT_RUN_ID}),     # a quote and _ (literal), case-insensitive
        ("5_%", set()),                               # would match "50%" if _ were a wildcard
        ("%", {bu.PERCENT_RUN_ID}),
        ("trace-000a", {"run0000000000010"}),         # native_id
        ("<script>", {bu.EVIL_RUN_ID}),               # input / error
        ("' OR 1=1 --", set()),
    ],
)
def test_text_search(store, text, expected):
    assert ids(store, RunFilter(text=text)) == expected


def test_text_search_columns(store, runs):
    timeouts = runs["error"].str.contains("timeout after", na=False)
    assert ids(store, RunFilter(text="TIMEOUT After")) == set(runs.loc[timeouts, "run_id"])
    assert ids(store, RunFilter(text="task-3")) == set(runs.loc[runs["task_id"] == "task-3", "run_id"])
    assert ids(store, RunFilter(text="answered order 1003")) == {"run0000000000003"}
    assert ids(store, RunFilter(text="run000000000002")) == {f"run00000000000{i}" for i in range(20, 30)}


# -- sorting and pages ------------------------------------------------------------------------------------
def test_sort_whitelist(store):
    for bad in ("started_at; DROP TABLE runs", "input", "random()", ""):
        with pytest.raises(ValueError):
            q.runs_page(store, sort=bad)
    with pytest.raises(ValueError):
        q.runs_page(store, page_size=0)
    with pytest.raises(ValueError):
        q.runs_page(store, page_size=q.MAX_PAGE_SIZE + 1)


@pytest.mark.parametrize("sort", sorted(q.SORTABLE))
@pytest.mark.parametrize("descending", [True, False])
def test_sort_orders(store, runs, sort, descending):
    frame = q.runs_page(store, sort=sort, descending=descending, page_size=1000).frame
    expected = runs.assign(tokens=runs["input_tokens"] + runs["output_tokens"]).sort_values(
        [sort, "run_id"], ascending=not descending, na_position="last", kind="mergesort"
    )
    if sort != "run_id":  # NULLs last, run_id breaks ties in the same direction
        nulls = expected[expected[sort].isna()].sort_values("run_id", ascending=not descending)
        expected = pd.concat([expected[expected[sort].notna()], nulls])
    assert list(frame["run_id"]) == list(expected["run_id"])


def test_pagination_covers_every_run_once(store, runs):
    seen = []
    first = q.runs_page(store, page_size=10)
    assert (first.total, first.n_pages, first.page, len(first.frame)) == (36, 4, 0, 10)
    assert (first.first_row, first.last_row) == (1, 10)
    for page in range(first.n_pages):
        result = q.runs_page(store, sort="cost_usd", page=page, page_size=10)
        assert result.total == 36 and result.page == page
        seen += list(result.frame["run_id"])
    assert len(seen) == 36 and set(seen) == set(runs["run_id"])
    last = q.runs_page(store, page=3, page_size=10)
    assert (len(last.frame), last.first_row, last.last_row) == (6, 31, 36)


def test_page_past_the_end_is_clamped(store):
    result = q.runs_page(store, page=99, page_size=10)
    assert result.page == 3 and len(result.frame) == 6
    with_text = q.runs_page(store, RunFilter(text="order"), page=99, page_size=10)
    assert with_text.page == with_text.n_pages - 1 and len(with_text.frame) > 0
    nothing = q.runs_page(store, RunFilter(text="no such text anywhere"), page=5)
    assert (nothing.total, nothing.page, nothing.n_pages, len(nothing.frame)) == (0, 0, 1, 0)
    assert (nothing.first_row, nothing.last_row) == (0, 0)


def test_page_is_light(store):
    frame = q.runs_page(store, page_size=5).frame
    assert len(frame) == 5
    assert "output" not in frame.columns and "attributes" not in frame.columns
    assert frame["input"].str.len().max() <= 200


def test_count_runs(store, runs):
    assert q.count_runs(store) == len(runs)
    assert q.count_runs(store, RunFilter(outcome="failure")) == int((runs["outcome"] == "failure").sum())


# -- overview ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flt", [RunFilter(), RunFilter(agent="support-bot"), RunFilter(format="otlp")])
def test_overview_matches_pandas(store, runs, flt):
    sel = runs
    if flt.agent:
        sel = sel[sel["agent"].isin(flt.agent)]
    if flt.format:
        sel = sel[sel["format"].isin(flt.format)]
    ov = q.overview(store, flt)
    n_success = int((sel["outcome"] == "success").sum())
    n_failure = int((sel["outcome"] == "failure").sum())
    cost = sel["cost_usd"].sum()
    assert (ov.n_runs, ov.n_success, ov.n_failure) == (len(sel), n_success, n_failure)
    assert ov.success_rate == pytest.approx(n_success / (n_success + n_failure))
    assert ov.total_cost == pytest.approx(cost)
    assert ov.cost_per_success == pytest.approx(cost / n_success)
    for got, quant in ((ov.p50_ms, 0.5), (ov.p95_ms, 0.95), (ov.p99_ms, 0.99)):
        assert got == pytest.approx(sel["duration_ms"].quantile(quant))  # pandas' default is linear = cont

    week = sel["started_at"].dt.to_period("W-SUN").dt.start_time
    expected_weekly = sel.assign(week=week).groupby(["week", "outcome"]).size()
    got_weekly = ov.runs_per_week.set_index(["week", "outcome"])["runs"]
    assert got_weekly.to_dict() == expected_weekly.to_dict()

    fails = ov.failures_per_week.set_index("week")
    expected_fails = sel.assign(week=week, failed=sel["outcome"] == "failure").groupby("week")["failed"].sum()
    assert fails["failures"].to_dict() == expected_fails.to_dict()
    assert fails["runs"].to_dict() == sel.assign(week=week).groupby("week").size().to_dict()
    assert (fails["failure_rate"] == fails["failures"] / fails["runs"]).all()

    by = ov.by_version.set_index(["agent", "agent_version"])
    for (agent, version), part in sel.groupby(["agent", "agent_version"]):
        row = by.loc[(agent, version)]
        s, f = int((part["outcome"] == "success").sum()), int((part["outcome"] == "failure").sum())
        assert row["runs"] == len(part) and row["successes"] == s and row["failures"] == f
        assert row["success_rate"] == pytest.approx(s / (s + f))
        assert row["cost"] == pytest.approx(part["cost_usd"].sum())
        assert row["cost_per_success"] == pytest.approx(part["cost_usd"].sum() / s)
        assert row["p50_ms"] == pytest.approx(part["duration_ms"].quantile(0.5))
        assert row["p95_ms"] == pytest.approx(part["duration_ms"].quantile(0.95))


def test_overview_of_nothing(store):
    ov = q.overview(store, RunFilter(text="no such text anywhere"))
    assert (ov.n_runs, ov.success_rate, ov.cost_per_success, ov.total_cost) == (0, None, None, 0.0)
    assert ov.p50_ms is None
    assert ov.runs_per_week.empty and ov.failures_per_week.empty and ov.by_version.empty


# -- options and one run ----------------------------------------------------------------------------------
def test_filter_options(store, runs):
    opts = q.filter_options(store)
    assert opts["agents"] == sorted(runs["agent"].unique())
    assert opts["versions"] == sorted(runs["agent_version"].unique())
    assert opts["outcomes"] == sorted(runs["outcome"].unique())
    assert opts["statuses"] == sorted(runs["status"].unique())
    assert opts["formats"] == sorted(runs["format"].unique())
    assert opts["agent_versions"] == {"coder": ["2024.03"], "support-bot": ["v1", "v2"]}
    assert opts["date_min"] == runs["started_at"].min().date()
    assert opts["date_max"] == runs["started_at"].max().date()


def test_get_run_and_steps(store):
    run = q.get_run(store, bu.EVIL_RUN_ID)
    assert run["run_id"] == bu.EVIL_RUN_ID and bu.EVIL_SCRIPT in run["input"]
    assert q.get_run(store, "no-such-run") is None
    assert q.get_run(store, "' OR '1'='1") is None

    steps = q.run_steps(store, bu.EVIL_RUN_ID)
    assert list(steps["step_id"]) == ["s0", "s1", "s2"]
    assert list(steps["depth"]) == [0, 1, 1] and list(steps["parent_step_id"].fillna("")) == ["", "s0", "s0"]
    assert {"messages", "tool_args", "tool_result", "tokens", "model", "kind"} <= set(steps.columns)
    assert bu.EVIL_IMAGE in steps.loc[1, "messages"] and isinstance(steps.loc[1, "messages"], str)
    assert steps.loc[1, "tokens"] == 108 + 28
    light = q.run_steps(store, bu.EVIL_RUN_ID, payloads=False)
    assert "messages" not in light.columns and len(light) == 3
    assert q.run_steps(store, "no-such-run").empty

    step = q.get_step(store, bu.EVIL_RUN_ID, "s2")
    assert step["tool_result"].startswith(bu.EVIL_SCRIPT) and json.loads(step["tool_args"]) == {"order": 1}
    assert q.get_step(store, bu.EVIL_RUN_ID, "nope") is None
