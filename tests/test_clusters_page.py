"""The Clusters page through streamlit's AppTest: map, table, a cluster's runs, bulk label with confirmation
and undo, the review queue, saving and reopening, and hostile trace text kept as text."""

from __future__ import annotations

from datetime import date

import pytest
from streamlit.testing.v1 import AppTest

from tests import browser_util as bu
from tests.test_clustering import add_runs
from tests.test_pages import MARKERS, TEXT_ONLY, metrics, no_errors, walk
from workbench import labels as lb
from workbench.clustering_results import cluster_failures, list_clusterings
from workbench.store import Store, shared_store

APP = str(bu.ROOT / "app.py")
PAGE = "app_pages/clusters.py"


@pytest.fixture
def db(tmp_path, monkeypatch):
    """The page fixture database (its 11 failed runs are alike) plus 11 failures of two other kinds; a new
    copy per test, since the tests write labels and clusterings."""
    path = bu.build_sample_db(tmp_path / "wb.duckdb")
    with Store(path) as store:
        add_runs(store, date(2024, 3, 4), {"loop": 6, "validation": 5}, successes=0)
    monkeypatch.setenv("WORKBENCH_DB", str(path))
    return path


def open_clusters(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page(PAGE)
    at.query_params.update(params)
    at.run()
    return at.run() if params else at


def assert_trace_text_is_inert(at: AppTest) -> int:
    """Like test_pages' check, with one more safe place: the map's hover text, which plotly renders as a
    small HTML subset, so the page escapes it (no raw tag may reach the figure)."""
    hits = 0
    for element in walk(at._tree):
        body = str(getattr(element, "proto", ""))
        if not any(marker in body for marker in MARKERS):
            continue
        hits += 1
        if element.type == "plotly_chart":
            spec = element.proto.spec
            assert bu.EVIL_SCRIPT not in spec and "\\u003cscript" not in spec and "&lt;script&gt;" in spec
        else:
            assert element.type in TEXT_ONLY, f"trace text reached a {element.type} element: {body[:200]}"
    return hits


def expected(db):
    return cluster_failures(shared_store(db, serving=True))


def test_page_shows_map_table_and_runs(db):
    at = open_clusters()
    no_errors(at)
    want = expected(db)
    got = metrics(at)
    # 11 failed runs of 36 in tests/browser_util.sample_runs, and the 11 added
    assert got["Failed runs"] == "22" == str(want.n_failures)
    assert got["Clusters"] == str(len(want.clusters))
    assert len(at.get("plotly_chart")) == 1
    table = at.dataframe[0].value
    assert table["size"].tolist() == want.clusters["size"].tolist() and table["size"].sum() == 22
    assert len(table) >= 3
    members = at.dataframe[1].value
    assert len(members) == want.clusters["size"].iloc[0]
    assert set(members["run_id"]) == set(want.members(0)["run_id"])
    assert all(link == f"run?run={rid}" for link, rid in zip(members["open"], members["run_id"], strict=True))
    # the hostile run's error and output reach the page, but only as text
    assert assert_trace_text_is_inert(at) > 0


def test_pick_another_cluster_and_open_a_run(db):
    want = expected(db)
    at = open_clusters(cluster="1")
    no_errors(at)
    assert set(at.dataframe[1].value["run_id"]) == set(want.members(1)["run_id"])
    target = at.selectbox(key="open:new:1").value
    at.button(key="open_run").click().run()
    assert at.title[0].value == "Replay"
    assert at.text_input(key="run").value == target


def test_label_the_whole_cluster_with_confirmation_and_undo(db):
    at = open_clusters()
    size = expected(db).clusters["size"].iloc[0]
    assert at.button(key="label_cluster").disabled  # no reviewer name yet
    at.text_input(key="reviewer").input("maria.k").run()
    at.selectbox(key="bulk_code").select("tool.wrong_tool").run()
    at.button(key="label_cluster").click().run()
    assert any(f"all {size} runs" in w.value for w in at.warning)
    store = shared_store(db, serving=True)
    assert lb.current_labels(store).empty  # nothing happens before the confirmation
    at.button(key="confirm_label").click().run()
    no_errors(at)
    assert any(f"Labeled {size} runs" in s.value for s in at.success)
    labels = lb.current_labels(store)
    assert len(labels) == size and set(labels["reviewer"]) == {"maria.k"}
    # the table now counts the label
    table = at.dataframe[0].value
    assert (table["top_label"].iloc[0], table["top_label_runs"].iloc[0]) == ("tool.wrong_tool", size)
    at.button(key="undo_label").click().run()
    no_errors(at)
    assert any(f"{size} label events reversed" in s.value for s in at.success)
    assert lb.current_labels(store).empty


def test_cancel_leaves_labels_alone(db):
    at = open_clusters()
    at.text_input(key="reviewer").input("tom.b").run()
    at.button(key="label_cluster").click().run()
    at.button(key="cancel_label").click().run()
    no_errors(at)
    assert not at.warning
    assert lb.history(shared_store(db, serving=True)).empty


def test_send_a_cluster_to_the_review_queue(db):
    at = open_clusters()
    want = expected(db)
    at.text_input(key="assignee").input("aylin.d").run()
    at.button(key="assign_cluster").click().run()
    no_errors(at)
    queued = shared_store(db, serving=True).df("SELECT run_id, reviewer FROM assignments")
    assert set(queued["run_id"]) == set(want.members(0)["run_id"]) and set(queued["reviewer"]) == {"aylin.d"}


def test_save_and_reopen_a_clustering(db):
    at = open_clusters()
    before = at.dataframe[0].value
    at.text_input(key="save_name").input("weekly review 46").run()
    at.button(key="save_clustering").click().run()
    no_errors(at)
    saved = list_clusterings(shared_store(db, serving=True))
    assert saved["name"].tolist() == ["weekly review 46"]
    assert at.selectbox(key="clustering").value == saved["clustering_id"].iloc[0]
    assert at.dataframe[0].value["name"].tolist() == before["name"].tolist()
    # a colleague opening the link sees the stored clustering
    again = open_clusters(clustering=saved["clustering_id"].iloc[0])
    no_errors(again)
    assert again.dataframe[0].value["size"].tolist() == before["size"].tolist()


def test_compare_two_versions(db):
    at = open_clusters()
    at.radio(key="compare_kind").set_value("two versions").run()
    at.button(key="compare").click().run()
    no_errors(at)
    table = at.dataframe[-1].value
    assert set(table["change"]) <= {"new", "growing", "shrinking", "steady", "gone"} and len(table) >= 1
