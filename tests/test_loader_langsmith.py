"""The LangSmith loader against the real exports in ../shared/data/real (langsmith-infinite-loop, -sdk-ingest).

Expected figures come from the folders' SOURCE.md and from reading the files (noted at each number).
"""

from __future__ import annotations

import json

import pytest

from tests.loader_checks import assert_truncated_copy_fails_cleanly, messages_of, rows
from workbench.ingest import ingest_file, ingest_paths
from workbench.loaders import detect, read_head, registry
from workbench.models import make_run_id

pytestmark = pytest.mark.real_data

LOOP = "langsmith-infinite-loop"
FIRST = "trace_2025-11-15T17-38-05.316920.json"  # 10 child runs, no root (SOURCE.md)
SECOND = "trace_2025-11-15T17-39-08.334291.json"  # the root "ReAct Agent" + 3 later runs (SOURCE.md)
TRACE_ID = "b768a123-8fbd-448c-9970-b7745390620d"
SDK = "langsmith-sdk-ingest"


@pytest.mark.parametrize("order", [(FIRST, SECOND), (SECOND, FIRST)], ids=["children-first", "root-first"])
def test_split_trace_is_one_run_in_either_order(store, real_dir, order):
    """The acceptance line: both files, in either order, give ONE run of 14 steps with one root."""
    results = [ingest_file(store, real_dir / LOOP / name) for name in order]
    assert [r.status for r in results] == ["ok", "ok"]
    # each file is its own transaction: 10 and 4 records (SOURCE.md)
    assert [r.n_steps for r in results] == [10 if order[0] == FIRST else 4, 4 if order[0] == FIRST else 10]
    run_id = make_run_id("langsmith", TRACE_ID)
    assert rows(store, "SELECT run_id FROM runs") == [(run_id,)]
    run = store.df("SELECT * FROM runs").iloc[0]
    # 14 runs in the trace (README table); run types read from the files: 3 llm, 2 tool, 9 chain
    assert (run.n_steps, run.n_llm_calls, run.n_tool_calls) == (14, 3, 2)
    assert rows(store, "SELECT step_id, name FROM steps WHERE depth = 0") == [(TRACE_ID, "ReAct Agent")]
    assert rows(store, "SELECT kind, count(*) FROM steps GROUP BY 1 ORDER BY 1") == [
        ("chain", 9), ("llm", 3), ("tool", 2)]
    # the root's facts whichever file came first: status success -> ok, no success label -> outcome unknown
    assert (run.agent, run.agent_version, run.status, run.outcome) == ("ReAct Agent", "74360c0", "ok", "unknown")
    assert run.input == "What is Machine Learning?"
    assert run.output.startswith("Based on the search results, I can provide a comprehensive explanation")
    # token fields are 0 in the export (custom LLM wrapper, SOURCE.md): unknown, not zero; so no cost
    assert rows(store, "SELECT input_tokens, output_tokens, cost_usd FROM runs") == [(None, None, None)]
    assert rows(store, "SELECT count(*) FROM steps WHERE input_tokens IS NOT NULL OR cost_usd IS NOT NULL") == [(0,)]
    # parents come from parent_run_ids (no parent_run_id key in these records): depth 1 = the 5 graph nodes
    # (call_model x3, tools x2), depth 2 = the 3 llm calls, 3 route_simple and 2 tool runs inside them
    assert rows(store, "SELECT depth, count(*) FROM steps GROUP BY 1 ORDER BY 1") == [(0, 1), (1, 5), (2, 8)]


def test_children_without_their_root_hang_from_the_missing_root(store, real_dir):
    ingest_file(store, real_dir / LOOP / FIRST)
    # the 4 graph nodes whose parent (the root) is in the other file are the tops of the tree for now
    assert rows(store, "SELECT name FROM steps WHERE depth = 0 ORDER BY seq") == [
        ("call_model",), ("tools",), ("call_model",), ("tools",)]
    assert rows(store, "SELECT DISTINCT parent_step_id FROM steps WHERE depth = 0") == [(TRACE_ID,)]


def test_silent_tool_failure_is_visible_and_tool_args_are_parsed(store, real_dir):
    ingest_paths(store, [real_dir / LOOP])
    tools = rows(store, "SELECT step_id, status, error, tool_name, tool_args, tool_result, "
                        "attributes->>'workbench.status_note', attributes->>'langsmith.status' FROM steps "
                        "WHERE kind = 'tool' ORDER BY seq")
    assert len(tools) == 2
    failed, passed = tools
    # LangSmith says status=success for both, but the first valyu_deep_search output is
    # {"success": false, "error": "5 validation errors for SearchResponse ..."}: stored as an error.
    # (SOURCE.md says both tool runs failed; the second one's output in the file reads "success": true.)
    assert failed[0].startswith("e3644703") and failed[1] == "error" and failed[7] == "success"
    assert failed[2].startswith("5 validation errors for SearchResponse\nresults.0.relevance_score")
    assert "success" in failed[6]
    assert json.loads(failed[5])["success"] is False
    assert passed[0].startswith("8d88e18e") and passed[1] == "ok" and passed[2] is None
    assert json.loads(passed[5])["success"] is True
    # tool inputs are Python reprs in the file: {'query': ..., 'fast_mode': True}
    assert json.loads(failed[4]) == {
        "query": "What is machine learning? Define and explain the fundamental concepts and applications of "
                 "machine learning", "max_num_results": 5, "fast_mode": True}
    assert json.loads(passed[4]) == {"query": "Define machine learning and its basic principles",
                                     "max_num_results": 3}
    assert {t[3] for t in tools} == {"valyu_deep_search"}
    run = store.df("SELECT n_errors, status, error FROM runs").iloc[0]
    assert (run.n_errors, run.status) == (1, "ok")
    assert run.error.startswith("5 validation errors")


def test_llm_steps_carry_langchain_messages_and_model(store, real_dir):
    ingest_paths(store, [real_dir / LOOP])
    llm = rows(store, "SELECT step_id, model, provider FROM steps WHERE kind = 'llm' ORDER BY seq")
    assert {(m, p) for _, m, p in llm} == {("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "holisticaibedrock")}
    first, second, last = (messages_of(store, s) for s, _, _ in llm)
    # serialized LangChain messages: System + Human in, an AIMessage with one tool call out
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[2]["tool_calls"] == [{"id": "toolu_bdrk_01RsNP3U2HQ4y9bdRf17VvJc", "name": "valyu_deep_search",
                                       "arguments": {"fast_mode": True, "max_num_results": 5,
                                                     "query": "What is machine learning? Define and explain the "
                                                              "fundamental concepts and applications of machine "
                                                              "learning"}}]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "tool", "assistant"]
    assert second[3]["tool_call_id"] == "toolu_bdrk_01RsNP3U2HQ4y9bdRf17VvJc"
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert last[-1]["content"].startswith("Based on the search results")


def test_sdk_post_patch_payloads(store, real_dir):
    summary = ingest_paths(store, [real_dir / SDK])
    assert [r.status for r in summary.results] == ["ok"] * 7
    # 7 files, each one llm run wrapping an OpenAI call, all successful (SOURCE.md)
    assert rows(store, "SELECT count(*), sum(n_steps), sum(n_llm_calls) FROM runs") == [(7, 7, 7)]
    assert rows(store, "SELECT DISTINCT status, outcome FROM runs") == [("ok", "unknown")]
    # the patch completes the post: end time and output come from it (JS patches carry no id: matched by
    # dotted_order); usage_metadata read per file
    got = {r[0][:8]: r[1:] for r in rows(
        store, "SELECT r.native_id, r.ended_at IS NOT NULL, r.input, r.output, s.model, r.input_tokens, "
               "r.output_tokens, r.reasoning_tokens FROM runs r JOIN steps s USING (run_id)")}
    howdy = ("howdy", "Howdy! How can I assist you today?", "gpt-4o-mini", 9, 9, 0)
    assert got["dc34609e"] == (True, *howdy)  # js default
    assert got["33c08c32"] == (True, *howdy)  # js stream
    assert got["d0d84d31"] == (True, *howdy)  # py
    assert got["fe8ffecb"] == (True, *howdy)  # py stream
    assert got["de56b9f0"] == (True, "howdy", "Howdy! How can I assist you today?", "gpt-4o-mini", None, None,
                               None)  # py stream without usage: usage_metadata null
    assert got["e954b8e3"][3:] == ("o1-mini", 43, 1901, 960)  # js reasoning
    assert got["a8b34ded"][3:] == ("o1-mini", 43, 2497, 1408)  # py reasoning
    assert rows(store, "SELECT sum(input_tokens), sum(output_tokens), sum(reasoning_tokens) FROM runs") == [
        (122, 4434, 2368)]
    # no cost in the payloads: gpt-4o-mini estimated from the price table (0.15 / 0.60 USD per M), o1-mini
    # has no price -> empty cost with a note
    costs = rows(store, "SELECT cost_usd, cost_estimated FROM runs WHERE input_tokens = 9")
    assert len(costs) == 4 and all(c == pytest.approx((9 * 0.15 + 9 * 0.60) / 1e6) and e for c, e in costs)
    assert rows(store, "SELECT count(*) FROM steps WHERE model = 'o1-mini' AND cost_usd IS NULL AND "
                       "attributes->>'workbench.cost_note' LIKE 'no price for model o1-mini%'") == [(2,)]
    assert [m["role"] for m in messages_of(store, "dc34609e-3eeb-459d-bc2a-6fedb01d2e6e")] == ["user", "assistant"]


def test_sniff_recognizes_both_shapes_and_nothing_else(real_dir):
    for path in sorted((real_dir / LOOP).glob("*.json")) + sorted((real_dir / SDK).glob("*.json")):
        assert detect(path).name == "langsmith", path
    loader = registry()["langsmith"]
    others = [real_dir / "agentops-trace-export" / "api_output.json",
              *sorted((real_dir / "langfuse-framework-traces").glob("*.json"))]
    assert not any(loader.sniff(p, read_head(p)) for p in others)


def test_truncated_copy_fails_cleanly(store, real_dir, tmp_path):
    assert_truncated_copy_fails_cleanly(store, real_dir / LOOP / SECOND, tmp_path, "langsmith")
