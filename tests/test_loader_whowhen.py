"""Who&When loader on the 58 real Hand-Crafted failure logs (../shared/data/real/who-and-when)."""

from __future__ import annotations

import json

import pytest

from tests.loader_util import assert_truncated_copy_rejected, claimed_by
from workbench.ingest import ingest_file, ingest_paths
from workbench.loaders.whowhen import LABEL_CODE


@pytest.fixture
def hand_crafted(real_dir):
    return real_dir / "who-and-when" / "Hand-Crafted"


def test_58_failures_with_58_labels(store, hand_crafted):
    summary = ingest_paths(store, [hand_crafted])
    # 58 files, one failed run each (SOURCE.md: "All 184 runs are FAILURES"; 58 of them Hand-Crafted)
    assert {r.status for r in summary.results} == {"ok"} and len(summary.results) == 58
    assert dict(store.sql("SELECT outcome, count(*) FROM runs GROUP BY ALL").fetchall()) == {"failure": 58}
    assert store.sql("SELECT DISTINCT format, agent FROM runs").fetchall() == [("who-and-when", "magentic-one")]
    # 2993 history entries over the 58 files (summed from the JSON below), each one step
    raw = [json.loads(f.read_text()) for f in sorted(hand_crafted.glob("*.json"))]
    assert sum(len(d["history"]) for d in raw) == 2993
    assert store.sql("SELECT count(*), count(*) FILTER (kind = 'message') FROM steps").fetchone() == (2993, 2993)
    labels = store.df("SELECT e.run_id, e.step_id, e.code, e.reviewer, e.note, s.name, s.attributes "
                      "FROM label_events e JOIN steps s USING (run_id, step_id)")
    # every mistake_step is a valid index into its history, so all 58 labels sit on a step
    assert len(labels) == 58 and set(labels.code) == {LABEL_CODE} and set(labels.reviewer) == {"imported"}
    # the labelled step's speaker is the recorded mistake agent in 55 files; in 20.json the step is the
    # Orchestrator's instruction to WebSurfer, in 22.json (FileSurfer) and 49.json (WebSurfer) another agent
    # spoke at that index: the label stays where the annotators put it
    agents = [json.loads(a)["whowhen.agent"] for a in labels.attributes]
    notes_agent = [n.split(";")[0].removeprefix("mistake agent: ") for n in labels.note]
    assert sum(a == b for a, b in zip(agents, notes_agent, strict=True)) == 55
    assert sum(d["history"][int(d["mistake_step"])]["role"].split(" (")[0] == d["mistake_agent"] for d in raw) == 55


def test_one_file_in_detail(store, hand_crafted):
    f = hand_crafted / "1.json"
    res = ingest_file(store, f)
    assert (res.status, res.n_runs, res.n_steps) == ("ok", 1, 29)  # 29 history entries
    run = store.df("SELECT * FROM runs").iloc[0]
    assert run.task_id == "6e3be83d1949fa52cba03fb1ce4b5b3bf7e37a83fd7d67694b10b2e439d90cf8"  # question_ID
    assert run.native_id.startswith(run.task_id + ":")
    assert run.input.startswith("Where can I take martial arts classes")
    assert json.loads(run.attributes)["ground_truth"] == "Renzo Gracie Jiu-Jitsu Wall Street"
    step_id, note = store.sql("SELECT step_id, note FROM label_events").fetchone()
    assert step_id == "12"  # mistake_step "12", a string in the file
    assert note == ("mistake agent: WebSurfer; step: 12; reason: WebSurfer clicks on an irrelevant website and "
                    "disrupts the task-solving process.")
    steps = store.df("SELECT seq, name, attributes, messages FROM steps ORDER BY seq")
    assert (steps.name[0], json.loads(steps.messages[0])[0]["role"]) == ("human", "user")
    assert json.loads(steps.attributes[1]) == {"whowhen.role": "Orchestrator (thought)",
                                               "whowhen.agent": "Orchestrator"}
    routed = json.loads(steps.attributes[3])
    assert steps.name[3] == "Orchestrator (-> WebSurfer)" and routed == {
        "whowhen.role": "Orchestrator (-> WebSurfer)", "whowhen.agent": "Orchestrator",
        "whowhen.addressed_to": "WebSurfer"}
    assert steps.name[12] == "WebSurfer"
    # importing again adds no second label event
    ingest_file(store, f, force=True)
    assert store.sql("SELECT count(*) FROM label_events").fetchone()[0] == 1
    assert claimed_by(f) == ["who-and-when"]


def test_ag2_shape_and_out_of_range_step(store, tmp_path):
    doc = {"is_correct": False, "question": "q?", "question_ID": "abc", "ground_truth": "42",
           "history": [{"role": "user", "name": "Verification_Expert", "content": "check"},
                       {"role": "assistant", "name": "Computer_terminal", "content": "exitcode: 1"}],
           "mistake_agent": "Computer_terminal", "mistake_step": "5", "mistake_reason": "ran the wrong script"}
    f = tmp_path / "ag2.json"
    f.write_text(json.dumps(doc))
    assert ingest_file(store, f).status == "ok"
    assert store.sql("SELECT agent FROM runs").fetchone()[0] == "ag2"
    assert [r[0] for r in store.sql("SELECT name FROM steps ORDER BY seq").fetchall()] == [
        "Verification_Expert", "Computer_terminal"]
    step_id, note = store.sql("SELECT step_id, note FROM label_events").fetchone()
    assert step_id is None and "not in the history of 2 entries" in note


def test_truncated_copy_is_rejected_and_changes_nothing(store, hand_crafted, tmp_path):
    ingest_paths(store, [hand_crafted / "1.json", hand_crafted / "2.json"])
    res = assert_truncated_copy_rejected(store, hand_crafted / "2.json", tmp_path, "who-and-when")
    assert "not valid JSON" in res.message
    # without --format the half file is not mistaken for Who&When (its label keys are gone): a clear miss
    unforced = ingest_file(store, tmp_path / "truncated-2.json")
    assert unforced.status == "failed" and "no loader recognized" in unforced.message
