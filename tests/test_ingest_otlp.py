"""The OTLP loader through the public ingest path: counts, rejects, merges, idempotence, atomicity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.otlp_builder import agent_trace, event, request, span, trace_id, write_jsonl
from workbench.ingest import ingest_file, ingest_paths
from workbench.models import make_run_id
from workbench.store import merge


def table_rows(store, table: str) -> list[tuple]:
    cols = [r[0] for r in store.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $t ORDER BY column_name",
        {"t": table}).fetchall()]
    keep = [c for c in cols if c not in ("import_id",)]
    return sorted(store.sql(f"SELECT {', '.join(keep)} FROM {table}").fetchall(), key=repr)


def test_agent_trace_maps_to_run_and_steps(store, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [request(agent_trace(trace_id(1), n_tools=2))])
    res = ingest_file(store, f)
    assert (res.status, res.format, res.n_runs, res.n_steps, res.n_rejects) == ("ok", "otlp", 1, 5, 0)
    run = store.df("SELECT * FROM runs").iloc[0]
    assert run.run_id == make_run_id("otlp", trace_id(1))
    assert (run.agent, run.agent_version, run.task_id, run.outcome) == ("support-agent", "v1", "task-1", "success")
    assert (run.n_steps, run.n_llm_calls, run.n_tool_calls, run.n_errors) == (5, 2, 2, 0)
    assert (run.input, run.output) == ("Where is order 42?", "Done.")
    assert run.input_tokens == 2000 and run.output_tokens == 200
    # gpt-4.1-mini: 0.40 / 1.60 USD per million tokens
    assert run.cost_usd == pytest.approx(2 * (1000 * 0.40 + 100 * 1.60) / 1e6)
    assert bool(run.cost_estimated)
    steps = store.df("SELECT * FROM steps ORDER BY seq")
    assert list(steps.seq) == [0, 1, 2, 3, 4]
    assert list(steps.kind) == ["agent", "llm", "tool", "llm", "tool"]
    assert list(steps.depth) == [0, 1, 1, 1, 1]
    tool = steps[steps.kind == "tool"].iloc[0]
    assert json.loads(tool.tool_args) == {"order_id": 42}
    llm = json.loads(steps[steps.kind == "llm"].iloc[0].messages)
    assert llm[-1]["tool_calls"][0] == {"id": "call_0", "name": "lookup_order", "arguments": {"order_id": 42}}


def test_deprecated_conventions_events_and_prompt_tokens(store, tmp_path):
    tid = trace_id(7)
    spans = [
        span(tid, "a" * 16, "", "invoke_agent coder", 0, 50, {"gen_ai.operation.name": "invoke_agent",
                                                              "gen_ai.agent.name": "coding-agent"}),
        span(tid, "b" * 16, "a" * 16, "chat claude", 1, 20, {
            "gen_ai.system": "anthropic", "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.prompt_tokens": 500, "gen_ai.usage.completion_tokens": 50}, events=[
            event("gen_ai.system.message", {"content": "You code."}),
            event("gen_ai.user.message", {"content": "Fix the test"}),
            event("gen_ai.choice", {"content": "", "tool_calls": json.dumps([{"id": "t1", "type": "function", "function": {
                "name": "run_tests", "arguments": "{\"path\": \"tests/\"}"}}])}),
        ]),
    ]
    ingest_file(store, write_jsonl(tmp_path / "old.jsonl", [request(spans)]))
    step = store.df("SELECT * FROM steps WHERE kind = 'llm'").iloc[0]
    assert (step.provider, step.input_tokens, step.output_tokens) == ("anthropic", 500, 50)
    msgs = json.loads(step.messages)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[2]["tool_calls"][0]["name"] == "run_tests"
    assert msgs[2]["tool_calls"][0]["arguments"] == {"path": "tests/"}
    run = store.df("SELECT * FROM runs").iloc[0]
    assert run.agent == "coding-agent" and run.input == "Fix the test"


def test_three_broken_lines_land_the_good_ones_with_line_numbers(store, tmp_path):
    good = [request(agent_trace(trace_id(i))) for i in range(1, 6)]
    lines = [good[0], good[1], '{"resourceSpans": [ oops', good[2], "not json at all", good[3],
             '{"hello": "world"}', good[4]]
    res = ingest_file(store, write_jsonl(tmp_path / "mixed.jsonl", lines))
    assert (res.status, res.n_runs, res.n_rejects) == ("partial", 5, 3)
    rejects = store.df("SELECT location, reason, excerpt FROM rejects ORDER BY location")
    assert list(rejects.location) == ["line 3", "line 5", "line 7"]
    assert rejects.reason[0].startswith("invalid JSON") and rejects.reason[1].startswith("invalid JSON")
    assert "no resourceSpans" in rejects.reason[2]
    assert rejects.excerpt[1] == "not json at all"
    assert store.sql("SELECT count(*) FROM runs").fetchone()[0] == 5


def test_reingest_is_a_noop_and_forced_reingest_changes_nothing(store, tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [request(agent_trace(trace_id(i))) for i in range(1, 4)])
    ingest_file(store, f)
    before = {t: table_rows(store, t) for t in ("runs", "steps")}
    again = ingest_file(store, f)
    assert again.status == "skipped" and "already imported" in again.message
    forced = ingest_file(store, f, force=True)
    assert forced.status == "ok" and forced.n_steps == 0
    assert {t: table_rows(store, t) for t in ("runs", "steps")} == before


def test_trace_split_over_two_files_merges_in_any_order(tmp_path):
    from workbench.store import Store

    spans = agent_trace(trace_id(3), n_tools=3)
    root, children = spans[0], spans[1:]
    a = write_jsonl(tmp_path / "a.jsonl", [request(children[:4])])
    b = write_jsonl(tmp_path / "b.jsonl", [request(children[3:] + [root])])  # one span in both files
    results = []
    for order in ((a, b), (b, a)):
        with Store(tmp_path / f"{order[0].stem}.duckdb") as s:
            for f in order:
                ingest_file(s, f)
            results.append({t: table_rows(s, t) for t in ("runs", "steps")})
            run = s.df("SELECT * FROM runs").iloc[0]
            assert (run.n_steps, run.agent, run.outcome) == (7, "support-agent", "success")
            assert s.sql("SELECT count(*) FROM steps WHERE depth = 0").fetchone()[0] == 1
    assert results[0] == results[1]


def test_children_before_parent_and_duplicates(store, tmp_path):
    tid = trace_id(9)
    child = span(tid, "c" * 16, "p" * 16, "chat", -5, 3, {"gen_ai.request.model": "gpt-4o"})
    parent = span(tid, "p" * 16, "", "invoke_agent x", 0, 10, {"gen_ai.operation.name": "invoke_agent"})
    ingest_file(store, write_jsonl(tmp_path / "d.jsonl", [request([child, parent, child])]))
    steps = store.df("SELECT step_id, seq, depth FROM steps ORDER BY seq")
    assert len(steps) == 2
    assert list(steps.depth) == [1, 0]  # the child started first; depth still follows the parent link


def test_failed_merge_leaves_store_untouched(store, tmp_path, monkeypatch):
    ingest_file(store, write_jsonl(tmp_path / "one.jsonl", [request(agent_trace(trace_id(1)))]))
    before = {t: table_rows(store, t) for t in ("runs", "steps", "imports")}

    def boom(*args, **kwargs):
        raise ValueError("disk full (simulated)")

    monkeypatch.setattr("workbench.ingest.merge_staged", boom)
    res = ingest_file(store, write_jsonl(tmp_path / "two.jsonl", [request(agent_trace(trace_id(2)))]))
    assert res.status == "failed" and "disk full" in res.message
    assert {t: table_rows(store, t) for t in ("runs", "steps")} == {t: before[t] for t in ("runs", "steps")}
    failed = store.sql("SELECT status, message FROM imports WHERE import_id = $i", {"i": res.import_id}).fetchone()
    assert failed[0] == "failed" and "disk full" in failed[1]
    monkeypatch.setattr("workbench.ingest.merge_staged", merge.merge_staged)


def test_malicious_strings_are_stored_verbatim(store, tmp_path):
    evil = "<script>alert(1)</script> ![x](http://127.0.0.1:9/x.png) '; DROP TABLE runs; --"
    ingest_file(store, write_jsonl(tmp_path / "evil.jsonl", [request(agent_trace(trace_id(5), user_text=evil))]))
    assert store.sql("SELECT input FROM runs").fetchone()[0] == evil


def test_unknown_file_is_reported_and_others_still_load(store, tmp_path):
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    write_jsonl(tmp_path / "good.jsonl", [request(agent_trace(trace_id(1)))])
    summary = ingest_paths(store, [tmp_path, tmp_path / "missing.jsonl"])
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in summary.results}
    assert by_name["good.jsonl"].status == "ok"
    notes = by_name["notes.json"]
    assert notes.status == "failed" and "no loader recognized" in notes.message and "otlp" in notes.message
    assert by_name["missing.jsonl"].status == "failed"
    assert "1 runs" in summary.render().splitlines()[-1] or "3 file(s)" in summary.render()


@pytest.mark.real_data
def test_canonical_otlp_examples_load(store, real_dir):
    examples = real_dir / "otlp-json-canonical" / "examples"
    res = ingest_file(store, examples / "trace.json")
    assert (res.status, res.n_runs, res.n_steps) == ("ok", 1, 1)
    run = store.df("SELECT * FROM runs").iloc[0]
    assert run.native_id == "5b8efff798038103d269b633813fc60c"
    assert run.agent == "my.service"
    step = store.df("SELECT * FROM steps").iloc[0]
    assert step.step_id == "eee19b7ec3c1b174" and step.parent_step_id == "eee19b7ec3c1b173"
    assert str(step.started_at) == "2018-12-13 14:51:00" and step.duration_ms == 1000.0
    assert json.loads(step.attributes)["my.span.attr"] == "some value"
    for name in ("logs.json", "events.json"):
        res = ingest_file(store, examples / name)
        assert res.status == "rejected" and res.n_runs == 0
        assert "resourceLogs" in res.message
    assert store.sql("SELECT count(*) FROM runs").fetchone()[0] == 1


FIXTURES = Path(__file__).parent / "fixtures"


def test_foreign_producer_file_loads_exactly(store):
    """tests/fixtures/otlp-node-openai-events.jsonl (see tests/fixtures/README.md): another producer's layout."""
    res = ingest_file(store, FIXTURES / "otlp-node-openai-events.jsonl")
    # 10 spans in the file: trace 1 has 6 spans plus a less complete copy of its first chat span; trace 2 has 2
    assert (res.status, res.format, res.n_runs, res.n_steps, res.n_rejects) == ("ok", "otlp", 2, 8, 0)
    runs = store.sql(
        "SELECT native_id, agent, agent_version, environment, session_id, user_id, status, n_steps, n_llm_calls, "
        "n_tool_calls, n_errors, input_tokens, output_tokens, round(cost_usd * 1e6, 2), cost_estimated, input, output, "
        "error FROM runs ORDER BY started_at").fetchall()
    # ids were upper case (and one parent 0x-prefixed) in the file; the agent is the root's service, not the
    # Java backend's; gpt-4o-mini at 0.15 / 0.60 USD per million: (412 + 486) * 0.15 + (18 + 27) * 0.60 = 161.7
    assert runs == [
        ("5b8efff798038103d269b633813fc60c", "checkout-assistant", "1.8.0", "staging", "web-7f3a9c", "cust-5531", "ok",
         6, 2, 1, 0, 898, 45, 161.7, True, "Where is my order A-1042?",
         "Your order A-1042 has shipped with DHL and should arrive on October 15.", None),
        ("a3f5c2b1d4e6f708192a3b4c5d6e7f80", "checkout-assistant", "1.8.0", "staging", "web-7f3a9c", "cust-5531",
         "error", 2, 1, 0, 2, None, None, None, None, "Cancel order A-1050, please.", None, "upstream model error"),
    ]
    steps = store.sql("SELECT step_id, parent_step_id, seq, depth, kind, model, status, error, input_tokens, "
                      "output_tokens FROM steps ORDER BY started_at").fetchall()
    assert [s[:5] for s in steps] == [
        ("eee19b7ec3c1b173", None, 0, 0, "other"),               # POST /api/assistant/chat (Node, root, last line)
        ("a1b2c3d4e5f60718", "eee19b7ec3c1b173", 1, 1, "llm"),   # chat, first call
        ("1f2e3d4c5b6a7988", "eee19b7ec3c1b173", 2, 1, "tool"),  # execute_tool get_order_status
        ("0d1c2b3a49586776", "1f2e3d4c5b6a7988", 3, 2, "other"), # GET (undici)
        ("7766554433221100", "0d1c2b3a49586776", 4, 3, "other"), # GET /orders/{orderId} (Java service)
        ("b2c3d4e5f6071829", "eee19b7ec3c1b173", 5, 1, "llm"),   # chat, answer
        ("c0de00000000a001", None, 0, 0, "other"),
        ("c0de00000000a002", "c0de00000000a001", 1, 1, "llm"),
    ]
    # the complete copy of the duplicated chat span won: tokens and messages, intValue given as a JSON number
    assert steps[1][5:] == ("gpt-4o-mini-2024-07-18", "unset", None, 412, 18)
    assert steps[7][5:8] == ("gpt-4o-mini", "error", "429 Rate limit reached for gpt-4o-mini on tokens per min (TPM)")

    def messages(step_id):
        raw = store.sql("SELECT messages FROM steps WHERE step_id = $s", {"s": step_id}).fetchone()[0]
        return json.loads(raw)

    call = {"id": "call_q1Xb7", "name": "get_order_status", "arguments": {"order_id": "A-1042"}}
    first = messages("a1b2c3d4e5f60718")
    assert [m["role"] for m in first] == ["system", "user", "assistant"]
    assert first[2]["tool_calls"] == [call] and first[2]["content"] is None
    answer = messages("b2c3d4e5f6071829")
    assert [m["role"] for m in answer] == ["system", "user", "assistant", "tool", "assistant"]
    assert answer[2]["tool_calls"] == [call] and answer[4]["tool_calls"] == []
    assert (answer[3]["tool_call_id"], json.loads(answer[3]["content"])["carrier"]) == ("call_q1Xb7", "DHL")
    tool = store.sql("SELECT tool_name, tool_args FROM steps WHERE kind = 'tool'").fetchone()
    assert (tool[0], json.loads(tool[1])) == ("get_order_status", {"order_id": "A-1042"})
    root = json.loads(store.sql("SELECT attributes FROM steps WHERE step_id = 'eee19b7ec3c1b173'").fetchone()[0])
    assert root["http.response.status_code"] == 200 and root["resource.telemetry.sdk.language"] == "nodejs"
    java = json.loads(store.sql("SELECT attributes FROM steps WHERE step_id = '7766554433221100'").fetchone()[0])
    assert java["http.route"] == "/orders/{orderId}" and "resource.service.name" not in java  # not a root
