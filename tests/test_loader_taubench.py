"""tau-bench loader on the real gpt-4o airline trajectories (../shared/data/real/tau-bench)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import REAL
from tests.loader_util import assert_truncated_copy_rejected, claimed_by, loaded_store, real_folder
from workbench.ingest import ingest_file
from workbench.models import make_run_id

TAU = REAL / "tau-bench" / "gpt-4o-airline.json"


@pytest.fixture(scope="module")
def tau(tmp_path_factory):
    """The real file ingested once; the tests below only read (or re-import it unchanged)."""
    path = real_folder("tau-bench") / TAU.name
    for store, summary in loaded_store(tmp_path_factory.mktemp("tau"), [path]):
        yield store, summary.results[0]


def _raw_counts() -> dict[str, int]:
    """The same figures computed straight from the JSON, as a cross-check of the literals below."""
    doc = json.loads(TAU.read_text())
    roles = Counter(m["role"] for t in doc for m in t["traj"])
    return {
        "runs": len(doc), "steps": sum(len(t["traj"]) for t in doc), "llm": roles["assistant"],
        "tool": roles["tool"], "message": roles["system"] + roles["user"],
        "tool_calls": sum(len(m.get("tool_calls") or []) for t in doc for m in t["traj"]),
        "tool_errors": sum(m["role"] == "tool" and m["content"].startswith("Error") for t in doc for m in t["traj"]),
        "expected_actions": sum(len(t["info"]["task"]["actions"]) for t in doc),
        "success": sum(t["reward"] == 1.0 for t in doc),
    }


def test_real_file_counts(tau):
    store, res = tau
    # 200 runs = 50 airline tasks x 4 trials; 84 pass / 116 fail (SOURCE.md, from the tau-bench README)
    assert (res.status, res.format, res.n_runs, res.n_rejects) == ("ok", "tau-bench", 200, 0)
    assert dict(store.sql("SELECT outcome, count(*) FROM runs GROUP BY ALL").fetchall()) == {
        "success": 84, "failure": 116}
    kinds = dict(store.sql("SELECT kind, count(*) FROM steps GROUP BY ALL").fetchall())
    # counted from the JSON: 5308 messages = 2454 assistant + 1164 tool + 1490 user + 200 system
    assert res.n_steps == 5308
    assert kinds == {"llm": 2454, "tool": 1164, "message": 1690}
    totals = store.sql("SELECT sum(n_steps), sum(n_llm_calls), sum(n_tool_calls), sum(n_errors) FROM runs").fetchone()
    # 1164 calls, one per assistant turn that calls a tool; 73 tool results start with "Error:"
    assert totals == (5308, 2454, 1164, 73)
    # every call's JSON-string arguments arrive parsed, as an object
    assert store.sql("SELECT count(*) FROM steps WHERE kind = 'tool' AND json_type(tool_args) = 'OBJECT'"
                     ).fetchone()[0] == 1164
    # 632 expected actions over the 200 runs (task actions, {name, kwargs} in the JSON)
    assert store.sql("SELECT sum(json_array_length(attributes->'expected_actions')) FROM runs").fetchone()[0] == 632
    raw = _raw_counts()
    assert raw == {"runs": 200, "steps": 5308, "llm": 2454, "tool": 1164, "message": 1690, "tool_calls": 1164,
                   "tool_errors": 73, "expected_actions": 632, "success": 84}


def test_one_run_in_detail(tau):
    store, _ = tau
    run_id = make_run_id("tau-bench", "gpt-4o-airline/0/0")  # file stem / task id / trial
    run = store.df("SELECT * FROM runs WHERE run_id = $id", {"id": run_id}).iloc[0]
    assert (run.task_id, run.environment, run.agent_version, run.outcome, run.outcome_score) == (
        "0", "airline", "gpt-4o", "failure", 0.0)
    assert run.input == "Hi! I'm looking to book a flight from New York to Seattle on May 20th."
    attrs = json.loads(run.attributes)
    assert [a["name"] for a in attrs["expected_actions"]] == ["book_reservation"]
    assert attrs["expected_actions"][0]["arguments"]["payment_methods"] == [
        {"payment_id": "certificate_7504069", "amount": 250}, {"payment_id": "credit_card_4421486", "amount": 5}]
    steps = store.df("SELECT seq, kind, name, tool_name, tool_args, status, messages FROM steps "
                     "WHERE run_id = $id ORDER BY seq", {"id": run_id})
    # 32 messages in this trajectory; the order is the transcript's (there are no timestamps)
    assert list(steps.seq) == list(range(32))
    assert list(steps.kind[:8]) == ["message", "message", "llm", "message", "llm", "message", "llm", "tool"]
    call = json.loads(steps.messages[6])[0]["tool_calls"][0]
    assert call == {"id": "call_oIHazX6yQrB8hUwl4cRilFKj", "name": "get_user_details",
                    "arguments": {"user_id": "mia_li_3668"}}
    assert (steps.tool_name[7], json.loads(steps.tool_args[7])) == ("get_user_details", {"user_id": "mia_li_3668"})
    assert (steps.kind == "tool").sum() == 8 and (steps.status == "error").sum() == 1
    assert run.error == "Error: payment amount does not add up, total price is 305, but paid 255"


def test_reimport_changes_nothing_and_sniffing_is_specific(tau):
    store, _ = tau
    again = ingest_file(store, TAU, force=True)
    assert (again.status, again.n_runs, again.n_steps) == ("ok", 200, 0)
    assert store.sql("SELECT count(*) FROM runs").fetchone()[0] == 200
    assert claimed_by(TAU) == ["tau-bench"]


def test_truncated_copy_is_rejected_and_changes_nothing(store, tmp_path):
    ingest_file(store, real_folder("tau-bench") / TAU.name)
    res = assert_truncated_copy_rejected(store, TAU, tmp_path, "tau-bench")
    reason = store.sql("SELECT reason FROM rejects WHERE import_id = $id", {"id": res.import_id}).fetchone()[0]
    assert reason.startswith("not valid JSON") and "truncated" in reason


def test_bad_trajectory_is_rejected_and_the_rest_land(store, tmp_path):
    good = {"task_id": 7, "trial": 1, "reward": 1.0, "info": {"task": {"actions": [
        {"name": "cancel_reservation", "kwargs": {"reservation_id": "ABC123"}}]}},
        "traj": [{"role": "user", "content": "cancel ABC123"},
                 {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                     "name": "cancel_reservation", "arguments": "{\"reservation_id\": \"ABC123\"}"}}]},
                 {"role": "tool", "tool_call_id": "c1", "name": "cancel_reservation", "content": "{}"},
                 {"role": "assistant", "content": "Done."}]}
    f = tmp_path / "mini-retail.json"
    f.write_text(json.dumps([good, {"task_id": 8, "traj": "not a list"}, {**good, "traj": [{"content": "no role"}]}]))
    res = ingest_file(store, f)
    assert (res.status, res.n_runs, res.n_steps, res.n_rejects) == ("partial", 1, 4, 2)
    assert [r[0] for r in store.sql("SELECT location FROM rejects ORDER BY location").fetchall()] == ["/1", "/2"]
    run = store.df("SELECT * FROM runs").iloc[0]
    assert (run.native_id, run.environment, run.agent_version, run.outcome, run.output) == (
        "mini-retail/7/1", "retail", "mini", "success", "Done.")
    assert json.loads(run.attributes)["expected_actions"] == [
        {"name": "cancel_reservation", "arguments": {"reservation_id": "ABC123"}}]
