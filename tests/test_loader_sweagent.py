"""SWE-agent `.traj` files, every schema generation in ../shared/data/real/swe-agent, through the real ingest.

Counts come from the files (checked by reading them with json): entries per file are the lengths of
`trajectory` (or, for the history-only file, the assistant turns of `history`):
6e44b9__sweagenttestrepo-1c2844 5, swe-agent__test-repo-i1 5, pydicom__pydicom-1458 12,
function_calling_simple 5, humanevalfix-python-0 5, marshmallow-1867 (default) 14, marshmallow-1867
(function_calling_replace) 11 -> 57 entries. Each entry is an llm step and a tool step, and each run has a
root step: 7 + 2 * 57 = 121 steps.
"""

from __future__ import annotations

import json

import pytest

from tests.loader_util import loaded_store, one, real_folder, snapshot, truncated_copy
from workbench.ingest import ingest_file, ingest_paths
from workbench.loaders import detect
from workbench.loaders.sweagent import parse_command

pytestmark = pytest.mark.real_data
TEST_DATA = "tests/test_data/trajectories"
PYDICOM = f"{TEST_DATA}/gpt4__swe-bench-dev-easy_first_only__default__t-0.00__p-0.95__c-3.00__install-1"


@pytest.fixture(scope="module")
def swe_dir():
    return real_folder("swe-agent")


@pytest.fixture(scope="module")
def loaded(swe_dir, tmp_path_factory):
    """The whole folder, ingested once; the tests that write use their own store."""
    yield from loaded_store(tmp_path_factory.mktemp("swe"), [swe_dir])


def test_every_file_is_read_or_clearly_rejected(loaded, swe_dir):
    _, summary = loaded
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in summary.results}
    # 7 .traj files + all_preds.jsonl (the folder scan picks up .jsonl too)
    assert len(summary.results) == 8
    assert sorted(r.status for r in summary.results) == ["ok"] * 7 + ["rejected"]
    preds = by_name["all_preds.jsonl"]
    assert preds.format == "swe-agent" and preds.n_rejects == 1
    assert "predictions file" in preds.message and "not a trajectory" in preds.message
    assert summary.totals()["runs"] == 7 and summary.totals()["steps"] == 121


def test_runs_steps_outcomes_and_status(loaded):
    store, _ = loaded
    assert one(
        store,
        "SELECT count(*), sum(n_steps), sum(n_llm_calls), sum(n_tool_calls) FROM runs "
        "WHERE format = 'swe-agent'",
    ) == (7, 121, 57, 57)
    # SOURCE.md: "exit_status only"; submitted is not resolved, so no run has a known outcome
    assert store.sql("SELECT outcome, count(*) FROM runs GROUP BY ALL").fetchall() == [("unknown", 7)]
    # six files say exit_status "submitted"; function_calling_simple has no info at all: its root step did
    # not fail, so the merge calls it ok
    assert store.sql("SELECT status, count(*) FROM runs GROUP BY ALL").fetchall() == [("ok", 7)]
    assert one(store, "SELECT count(*) FROM runs WHERE attributes->>'exit_status' = 'submitted'") == (6,)
    # the two marshmallow-1867 runs (default, function_calling_replace) share the instance id, stay apart
    assert one(
        store,
        "SELECT count(DISTINCT run_id), count(DISTINCT task_id) FROM runs "
        "WHERE task_id = 'marshmallow-code__marshmallow-1867'",
    ) == (2, 1)
    per_file = dict(store.sql("SELECT split_part(native_id, '/', -1), n_steps FROM runs").fetchall())
    assert per_file["pydicom__pydicom-1458"] == 25 and per_file["function_calling_simple"] == 11


def test_tokens_and_reported_costs(loaded):
    store, _ = loaded
    # info.model_stats of the three test_data runs: tokens_sent 7141 + 52861 + 122612, tokens_received
    # 243 + 326 + 1369, instance_cost 0.01952 + 0.53839 + 1.26719 (SOURCE.md: $0.02, $0.54, $1.27);
    # the demonstrations report zeros (replays), kept empty
    tokens_in, tokens_out, cost, estimated = one(
        store,
        "SELECT sum(input_tokens), sum(output_tokens), sum(cost_usd), bool_or(cost_estimated) FROM runs",
    )
    assert (tokens_in, tokens_out, estimated) == (182614, 1938, False)
    assert cost == pytest.approx(1.8251, abs=1e-9)
    # run totals sit on the last llm step of each run, marked as such
    rows = store.sql(
        "SELECT step_id, input_tokens, attributes->>'swe_agent.usage_scope', "
        "attributes->>'swe_agent.api_calls' FROM steps WHERE input_tokens IS NOT NULL "
        "ORDER BY input_tokens"
    ).fetchall()
    assert rows == [
        ("4.llm", 7141, "run", "5"),
        ("4.llm", 52861, "run", "5"),
        ("11.llm", 122612, "run", "12"),
    ]


def test_tool_steps_carry_name_parsed_arguments_and_observation(loaded):
    store, _ = loaded
    names = dict(
        store.sql("SELECT tool_name, count(*) FROM steps WHERE kind = 'tool' GROUP BY ALL").fetchall()
    )
    # command lines name the tool by their first word; function-calling files by the function they called
    # (`python3 ...` -> bash). Per file, in order of the actions:
    #   6e44b9 find_file open edit bash submit | i1 find_file open edit python submit
    #   pydicom create edit python find_file open edit edit edit edit python rm submit
    #   function_calling_simple find_file open edit bash submit | humanevalfix ls open edit python submit
    #   marshmallow default: ls open pip create edit python ls find_file open edit edit python rm submit
    #   marshmallow function_calling: create insert bash bash find_file open edit edit bash bash submit
    assert names == {
        "find_file": 6,
        "open": 8,
        "edit": 14,
        "python": 6,
        "submit": 7,
        "create": 3,
        "rm": 2,
        "ls": 3,
        "pip": 1,
        "bash": 6,
        "insert": 1,
    }
    assert sum(names.values()) == 57

    def step(native_like, step_id):
        return one(
            store,
            "SELECT s.tool_name, s.tool_args, s.tool_result, s.duration_ms FROM steps s "
            "JOIN runs r USING (run_id) WHERE r.native_id LIKE $n AND s.step_id = $s",
            {"n": native_like, "s": step_id},
        )

    name, args, result, _ = step(
        "%pydicom%", "4.tool"
    )  # `open pydicom/pixel_data_handlers/numpy_handler.py 293`
    assert (name, json.loads(args)) == (
        "open",
        {"args": ["pydicom/pixel_data_handlers/numpy_handler.py", "293"]},
    )
    assert result.startswith("[File: /pydicom__pydicom/pydicom/pixel_data_handlers/numpy_handler.py")
    name, args, _, _ = step("%/swe-agent__test-repo-i1", "2.tool")  # `edit 4:4\n...\nend_of_edit`
    assert json.loads(args) == {"args": ["4:4"], "body": "def division(a: float, b: float) -> float:"}
    name, args, result, duration = step("%/SWE-agent__test-repo-i1", "2.tool")  # tool_calls in history
    assert name == "edit" and json.loads(args) == {
        "search": "def division(a: float, b: float) -> float",
        "replace": "def division(a: float, b: float) -> float:",
        "replace-all": False,
    }
    assert result.startswith("Replaced 1 occurrences") and duration == pytest.approx(493.5787079994043)
    name, args, result, _ = step("demonstrations/function_calling_simple", "3.tool")  # history only
    assert (name, json.loads(args), result.splitlines()[0]) == (
        "bash",
        {"command": "python tests/missing_colon.py"},
        "8.2",
    )


def test_llm_steps_hold_the_turns_messages(loaded):
    store, _ = loaded
    msgs = json.loads(
        one(
            store,
            "SELECT s.messages FROM steps s JOIN runs r USING (run_id) "
            "WHERE r.native_id LIKE '%pydicom%' AND s.step_id = '0.llm'",
        )[0]
    )
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[2]["content"].startswith("First, I'll create a new Python script to reproduce the bug")
    task = one(store, "SELECT input, output FROM runs WHERE native_id LIKE '%function_calling_replace%'")
    assert task[0].startswith("TimeDelta serialization precision")  # replay_config.problem_statement.text
    assert task[1].lstrip().startswith("diff --git a/src/marshmallow/fields.py")  # info.submission


def test_reimport_changes_nothing(store, swe_dir):
    ingest_paths(store, [swe_dir])
    before = snapshot(store)
    again = ingest_paths(store, [swe_dir], force=True)
    assert sum(r.n_steps for r in again.results) == 0
    assert snapshot(store) == before


def test_truncated_copy_fails_clearly_and_keeps_the_store(store, swe_dir, tmp_path):
    ingest_paths(store, [swe_dir])
    before = snapshot(store)
    cut = truncated_copy(
        swe_dir / PYDICOM / "pydicom__pydicom-1458.traj", tmp_path / "pydicom__pydicom-1458.traj"
    )
    res = ingest_file(store, cut)
    assert res.status == "rejected" and res.format == "swe-agent" and res.n_runs == 0
    assert "not valid JSON" in res.message and "truncated" in res.message and "Traceback" not in res.message
    assert snapshot(store) == before


def test_newer_schema_fields_and_sniffing(store, tmp_path):
    # SWE-agent 1.x entries carry the prompt (`query`) and may carry tool_calls and their own usage
    traj = {
        "trajectory": [
            {
                "action": "ls",
                "observation": "a.py",
                "response": "look",
                "thought": "look",
                "execution_time": 0.5,
                "query": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": [{"type": "text", "text": "fix it"}]},
                ],
                "tool_calls": [{"id": "c1", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}],
                "model_stats": {"tokens_sent": 100, "tokens_received": 7, "instance_cost": 0.01},
            },
            {
                "action": "submit",
                "observation": "diff",
                "response": "done",
                "thought": "done",
                "model_stats": {"tokens_sent": 150, "tokens_received": 3, "instance_cost": 0.02},
            },
        ],
        "history": [],
        "info": {
            "exit_status": "exit_format",
            "swe_agent_version": "1.1.0",
            "resolved": False,
            "model_stats": {"tokens_sent": 250, "tokens_received": 10, "instance_cost": 0.03},
        },
    }
    f = tmp_path / "run-x" / "inst-1.traj"
    f.parent.mkdir()
    f.write_text(json.dumps(traj))
    assert detect(f).name == "swe-agent"
    res = ingest_file(store, f)
    assert res.status == "ok" and res.n_steps == 5
    # per-step usage is used as is (the run totals are not added a second time)
    assert one(
        store,
        "SELECT native_id, agent_version, status, outcome, input_tokens, output_tokens, "
        "round(cost_usd, 6), error FROM runs",
    ) == ("run-x/inst-1", "1.1.0", "error", "failure", 250, 10, 0.03, "exit_format")
    msgs = json.loads(one(store, "SELECT messages FROM steps WHERE step_id = '0.llm'")[0])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"] and msgs[1]["content"] == "fix it"
    name, args, duration = one(
        store, "SELECT tool_name, tool_args, duration_ms FROM steps WHERE step_id = '0.tool'"
    )
    assert (name, json.loads(args), duration) == ("bash", {"command": "ls"}, 500.0)


def test_parse_command():
    assert parse_command('open "a b.py" 12\n') == ("open", {"args": ["a b.py", "12"]})
    assert parse_command("edit 1:2\nx = 'unbalanced\nend_of_edit\n") == (
        "edit",
        {"args": ["1:2"], "body": "x = 'unbalanced"},
    )
    assert parse_command("echo 'oops") == ("echo", {"args": ["'oops"]})
