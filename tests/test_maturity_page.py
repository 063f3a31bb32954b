"""The Maturity page through AppTest on a copy of the demo fleet: it renders what `assess` computes, the
questionnaire changes the levels, and "Save snapshot" stores a snapshot with the answers."""

from __future__ import annotations

import shutil

import pytest

from tests.test_pages import assert_trace_text_is_inert, no_errors
from tests.test_pages_ops import opener, store_of
from workbench.maturity import assess, list_assessments, load_assessment
from workbench.store import Store

PAGE = "app_pages/maturity.py"


@pytest.fixture(scope="module")
def fleet_db(demo_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("pages-maturity") / "demo.duckdb"
    shutil.copy(demo_db, path)
    with Store(path) as s, s.transaction() as cur:  # a hostile agent name, as a trace file could carry
        cur.execute("UPDATE runs SET agent = '<script>alert(1)</script>' WHERE run_id = (SELECT min(run_id) FROM runs)")
    return path


def frame_with(at, column: str):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_maturity_page_questionnaire_and_snapshot(fleet_db, monkeypatch):
    at = opener(fleet_db, monkeypatch)(PAGE)
    no_errors(at)
    store = store_of(fleet_db)
    expected = assess(store)
    dims = frame_with(at, "to_raise")
    assert list(dims["level"]) == list(expected.levels.values())
    assert list(frame_with(at, "priority")["action"]) == list(expected.remediation["action"])
    assert len(at.get("plotly_chart")) == 1
    assert {b.proto.label for b in at.get("download_button")} == {
        "Download Markdown", "Download HTML", "Download JSON"}
    assert any("2,400 runs" in t.value for t in at.text)
    assert assert_trace_text_is_inert(at) >= 1  # the scope's agent names are shown, as text

    at.radio(key="maturity.q.dx_replay").set_value("for some agents")
    at.radio(key="maturity.q.dx_versioning").set_value("partly")
    next(b for b in at.button if b.label == "Use these answers").click().run()
    no_errors(at)
    dims = frame_with(at, "to_raise").set_index("dimension")
    assert dims.loc["developer_experience", "level"] == 2 and dims.loc["organizational_enablement", "level"] == 1

    assert list_assessments(store).empty
    at.button(key="maturity_save").click().run()
    no_errors(at)
    saved = list_assessments(store)
    assert len(saved) == 1 and saved["developer_experience"].iloc[0] == 2
    assert load_assessment(store, saved["assessment_id"].iloc[0]).answers == {
        "dx_replay": "for some agents", "dx_versioning": "partly"}
    assert at.success and saved["assessment_id"].iloc[0] in at.success[0].value
    assert frame_with(at, "to_raise")["movement"].str.endswith("=").all()  # compared with the new snapshot

    reopened = opener(fleet_db, monkeypatch)(PAGE)  # a new session starts from the saved answers
    assert reopened.radio(key="maturity.q.dx_replay").value == "for some agents"
