"""OpenHands event streams in ../shared/data/real/openhands (4 runs), through the real ingest.

Counts come from reading the files (SOURCE.md: basic 4, basic_gui_mode 18, basic_interactions 6,
wrong_initial_state 8 events). Steps per run = 1 root + 1 per event, except observations caused by an action
(a tool's result is part of the tool step; the 3 `null` acknowledgements of basic_gui_mode are dropped)
+ 1 llm step per distinct model response:
  basic: user message, edit (+ its observation), finish + 2 responses       -> 1 + 3 + 2 = 6
  basic_gui_mode: 4 agent_state_changed, change_agent_state, user message, run, edit, edit, run (each
                  + its observation), agent message + 4 responses           -> 1 + 11 + 4 = 16
  basic_interactions: 3 user messages, 2 agent messages, finish + 1 response -> 1 + 6 + 1 = 8
  wrong_initial_state: user message, read, run, read (each + its observation), finish
                  + 4 responses                                             -> 1 + 5 + 4 = 10
"""

from __future__ import annotations

import json

import pytest

from tests.loader_util import loaded_store, one, real_folder, snapshot, truncated_copy
from workbench.ingest import ingest_file, ingest_paths
from workbench.loaders import detect

pytestmark = pytest.mark.real_data
TRAJS = "tests/runtime/trajs"


@pytest.fixture(scope="module")
def oh_dir():
    return real_folder("openhands")


@pytest.fixture(scope="module")
def loaded(oh_dir, tmp_path_factory):
    yield from loaded_store(tmp_path_factory.mktemp("oh"), [oh_dir])


def test_runs_and_steps(loaded):
    store, summary = loaded
    assert [r.status for r in summary.results] == ["ok"] * 4
    assert {r.format for r in summary.results} == {"openhands"}
    per_run = dict(store.sql("SELECT split_part(native_id, '@', 1), n_steps FROM runs").fetchall())
    assert per_run == {"basic": 6, "basic_gui_mode": 16, "basic_interactions": 8, "wrong_initial_state": 10}
    # llm steps: 2 + 4 + (1 response + 2 plain agent answers) + 4; tool steps: edit, finish | run, edit, edit,
    # run | finish | read, run, read, finish
    assert one(
        store, "SELECT count(*), sum(n_steps), sum(n_llm_calls), sum(n_tool_calls), sum(n_errors) FROM runs"
    ) == (4, 40, 14, 11, 1)
    # SOURCE.md: "Runtime trajs: no outcome"
    assert store.sql("SELECT outcome, count(*) FROM runs GROUP BY ALL").fetchall() == [("unknown", 4)]
    # three runs end with a finish action, basic_gui_mode waits for the user: all ok
    assert store.sql("SELECT status, count(*) FROM runs GROUP BY ALL").fetchall() == [("ok", 4)]
    # native id: file stem @ timestamp of event 0; input: args.content of event 4 (the user's message)
    assert one(
        store,
        "SELECT native_id, input, attributes->>'last_agent_state' FROM runs "
        "WHERE native_id LIKE 'basic_gui_mode@%'",
    ) == (
        "basic_gui_mode@2025-01-20T20:29:13.519638",
        "I want to create a VueJS app that allows me to:\n* See all the items on my todo list\n"
        "* add a new item to the list\n* mark an item as done\n* totally remove an item from the list\n"
        "* change the text of an item\n* set a due date on the item\n\n"
        "This should be a client-only app with no backend. The list should persist in localStorage.",
        "awaiting_user_input",
    )


def test_tokens_and_estimated_cost(loaded):
    store, _ = loaded
    # usage of the distinct model responses (tool_call_metadata.model_response.usage):
    # prompt_tokens 8132 + 17297 + 2473 + 14828, completion 1312 + 2024 + 10 + 358,
    # cached reads 3482 + 11793 + 2304 + 10879
    assert one(store, "SELECT sum(input_tokens), sum(output_tokens), sum(cache_tokens) FROM runs") == (
        42730,
        3704,
        28458,
    )
    # no cost in the files: estimated from the price table (claude-3-5-sonnet 3 / 15 / 0.30 per M tokens,
    # gpt-4o 2.50 / 10 / 1.25): e.g. basic = (3486*3 + 1135*15 + (4646-3482)*3 + 3482*0.3 + 177*15) / 1e6
    costs = dict(
        store.sql("SELECT split_part(native_id, '@', 1), cost_usd FROM runs WHERE cost_estimated").fetchall()
    )
    assert costs["basic"] == pytest.approx(0.0346746, abs=1e-12)
    assert costs["basic_interactions"] == pytest.approx((169 * 2.5 + 2304 * 1.25 + 10 * 10) / 1e6, abs=1e-12)
    assert len(costs) == 4


def test_actions_pair_with_their_observations(loaded):
    store, _ = loaded
    names = dict(
        store.sql("SELECT tool_name, count(*) FROM steps WHERE kind = 'tool' GROUP BY ALL").fetchall()
    )
    assert names == {"execute_bash": 3, "str_replace_editor": 5, "finish": 3}
    rows = store.sql(
        "SELECT s.step_id, s.tool_args, s.tool_result, s.status, s.error, s.parent_step_id, s.depth, "
        "s.started_at, s.ended_at FROM steps s JOIN runs r USING (run_id) "
        "WHERE r.native_id LIKE 'basic_gui_mode@%' AND s.kind = 'tool' ORDER BY s.seq"
    ).fetchall()
    assert [r[0] for r in rows] == ["7", "9", "11", "13"]
    # arguments are the model's call, parsed (the event's own args blank out file contents)
    assert json.loads(rows[0][1]) == {"command": "mkdir -p /workspace/todo-app"}
    assert (
        json.loads(rows[1][1])["command"] == "create"
        and json.loads(rows[1][1])["path"] == "/workspace/todo-app/index.html"
        and json.loads(rows[1][1])["file_text"].startswith("<!DOCTYPE html>")
    )
    # event 14 (cause 13) reports success false, exit code -1: the server kept running
    assert rows[3][2].startswith("Serving HTTP on 0.0.0.0 port 8000") and rows[3][3] == "error"
    assert "exit code -1" in rows[3][4]
    # a tool step hangs under the model response that asked for it, and ends when its observation arrived
    assert rows[0][5] == "llm:chatcmpl-6bb9f175-c587-44b4-8c8d-f91fc4827590" and rows[0][6] == 2
    assert (rows[0][8] - rows[0][7]).total_seconds() == pytest.approx(0.658357)


def test_llm_steps_and_messages(loaded):
    store, _ = loaded
    llm = store.sql(
        "SELECT s.step_id, s.model, s.messages FROM steps s JOIN runs r USING (run_id) "
        "WHERE r.native_id LIKE 'basic@%' AND s.kind = 'llm' ORDER BY s.seq"
    ).fetchall()
    assert [(r[0], r[1]) for r in llm] == [
        ("llm:chatcmpl-6814daca-5c62-431d-8c88-9dafead244f1", "claude-3-5-sonnet-20241022"),
        ("llm:chatcmpl-27cc0ad9-6b86-4f1f-9f72-d9c7ab2282f7", "claude-3-5-sonnet-20241022"),
    ]
    msg = json.loads(llm[0][2])[0]
    assert msg["role"] == "assistant" and msg["tool_calls"][0]["name"] == "str_replace_editor"
    assert one(store, "SELECT output FROM runs WHERE native_id LIKE 'basic_interactions@%'") == (
        "All done! What's next on the agenda?",
    )
    kinds = store.sql(
        "SELECT s.kind, s.name FROM steps s JOIN runs r USING (run_id) "
        "WHERE r.native_id LIKE 'basic_interactions@%' ORDER BY s.seq"
    ).fetchall()
    assert kinds == [
        ("agent", "openhands"),
        ("message", "user message"),
        ("llm", "assistant message"),
        ("message", "user message"),
        ("llm", "assistant message"),
        ("message", "user message"),
        ("llm", "gpt-4o-2024-08-06"),
        ("tool", "finish"),
    ]


def test_sniffing_claims_event_streams_only(oh_dir, real_dir):
    assert detect(oh_dir / TRAJS / "basic.json").name == "openhands"
    # the tau-bench file has "source": "user" but no action/observation events
    tau = real_dir / "tau-bench" / "gpt-4o-airline.json"
    if tau.exists():
        from workbench.loaders import read_head
        from workbench.loaders.openhands import OpenHandsLoader

        assert not OpenHandsLoader().sniff(tau, read_head(tau))


def test_truncated_copy_fails_clearly_and_keeps_the_store(store, oh_dir, tmp_path):
    ingest_paths(store, [oh_dir])
    before = snapshot(store)
    cut = truncated_copy(oh_dir / TRAJS / "basic_gui_mode.json", tmp_path / "basic_gui_mode.json")
    res = ingest_file(store, cut)
    assert res.status == "rejected" and res.format == "openhands" and res.n_runs == 0
    assert "not valid JSON" in res.message and "truncated" in res.message
    assert snapshot(store) == before
    # and a re-import of the real files changes nothing either
    assert sum(r.n_steps for r in ingest_paths(store, [oh_dir], force=True).results) == 0
    assert snapshot(store) == before


def test_llm_metrics_give_reported_cost(store, tmp_path):
    # newer OpenHands events carry llm_metrics (accumulated per conversation) instead of a raw usage block
    def metrics(cost, rid, p, c):
        return {
            "accumulated_cost": cost,
            "token_usages": [
                {
                    "model": "m",
                    "prompt_tokens": p,
                    "completion_tokens": c,
                    "cache_read_tokens": 0,
                    "cache_write_tokens": 0,
                    "response_id": rid,
                }
            ],
        }

    def action(i, rid, cost, p, c):
        return {
            "id": i,
            "timestamp": f"2025-05-01T10:00:0{i}",
            "source": "agent",
            "action": "run",
            "args": {"command": "ls"},
            "llm_metrics": metrics(cost, rid, p, c),
            "tool_call_metadata": {
                "function_name": "execute_bash",
                "tool_call_id": f"t{i}",
                "model_response": {
                    "id": rid,
                    "model": "m",
                    "choices": [
                        {
                            "message": {
                                "role": "assistant",
                                "content": "",
                                "tool_calls": [
                                    {
                                        "id": f"t{i}",
                                        "function": {
                                            "name": "execute_bash",
                                            "arguments": '{"command": "ls"}',
                                        },
                                    }
                                ],
                            }
                        }
                    ],
                },
            },
        }

    events = [
        {
            "id": 0,
            "timestamp": "2025-05-01T10:00:00",
            "source": "user",
            "action": "message",
            "args": {"content": "list files"},
        },
        action(1, "r1", 0.25, 100, 10),
        action(3, "r2", 0.75, 200, 20),
        {
            "id": 4,
            "timestamp": "2025-05-01T10:00:04",
            "source": "environment",
            "observation": "error",
            "content": "sandbox lost",
            "extras": {},
        },
        {
            "id": 5,
            "timestamp": "2025-05-01T10:00:05",
            "source": "environment",
            "observation": "agent_state_changed",
            "extras": {"agent_state": "error"},
        },
    ]
    f = tmp_path / "session.json"
    f.write_text(json.dumps(events))
    res = ingest_file(store, f)
    assert res.status == "ok" and res.n_steps == 8
    assert one(
        store,
        "SELECT status, error, input_tokens, output_tokens, cost_usd, cost_estimated, n_errors FROM runs",
    ) == ("error", "sandbox lost", 300, 30, 0.75, False, 2)
    assert store.sql("SELECT cost_usd FROM steps WHERE kind = 'llm' ORDER BY seq").fetchall() == [
        (0.25,),
        (0.5,),
    ]
