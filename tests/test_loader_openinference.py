"""OpenInference attributes: inside OTLP files (`otlp`) and as span dumps in every layout (`openinference`).

The fixtures come from tests/openinference_builder.py; every expected figure below is read off the spans
written there (or, for the real-data test, off ../shared/data/real/langfuse-framework-traces).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from tests import openinference_builder as ob
from tests.otlp_builder import request, span, write_jsonl
from workbench.ingest import ingest_file
from workbench.loaders import read_head, registry
from workbench.loaders.openinference import span_of
from workbench.models import make_run_id
from workbench.store import Store

RUN_COLUMNS = ("native_id", "agent", "agent_version", "environment", "task_id", "session_id", "user_id",
               "started_at", "ended_at", "duration_ms", "status", "outcome", "input", "output", "error", "n_steps",
               "n_llm_calls", "n_tool_calls", "n_errors", "input_tokens", "output_tokens", "cache_tokens",
               "reasoning_tokens", "cost_usd", "cost_estimated", "tags", "attributes")
STEP_COLUMNS = ("step_id", "parent_step_id", "seq", "depth", "kind", "name", "started_at", "ended_at",
                "duration_ms", "status", "error", "model", "provider", "messages", "tool_name", "tool_args",
                "tool_result", "input_tokens", "output_tokens", "cache_tokens", "reasoning_tokens", "cost_usd",
                "cost_estimated", "attributes")
JSON_COLUMNS = {"messages", "tool_args", "attributes"}


def _ingest(tmp_path: Path, f: Path, name: str) -> Store:
    store = Store(tmp_path / f"{name}.duckdb")
    res = ingest_file(store, f)
    assert (res.status, res.n_rejects) == ("ok", 0), res.message
    return store


def _rows(store: Store, table: str, columns: tuple[str, ...]) -> list[tuple]:
    """Rows without run ids (they depend on the format), JSON parsed so key order does not matter."""
    order = "native_id" if table == "runs" else "(SELECT native_id FROM runs r WHERE r.run_id = steps.run_id), seq"
    out = []
    for row in store.sql(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}").fetchall():
        out.append(tuple(json.loads(v) if c in JSON_COLUMNS and v is not None else v
                         for c, v in zip(columns, row, strict=True)))
    return out


@pytest.fixture(scope="module")
def otlp_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("oi-otlp")
    store = _ingest(d, write_jsonl(d / "oi.jsonl", [ob.otlp_request(ob.spans())]), "otlp")
    yield store
    store.close()


def test_openinference_attributes_in_otlp_make_runs(otlp_store):
    runs = {r[0]: r for r in otlp_store.sql(
        "SELECT native_id, format, agent, session_id, user_id, tags, input, output, status, n_steps, n_llm_calls, "
        "n_tool_calls, n_errors, input_tokens, output_tokens, cache_tokens, round(cost_usd * 1e6, 3), error "
        "FROM runs").fetchall()}
    assert set(runs) == {ob.TRACE_A, ob.TRACE_B, ob.TRACE_C}
    # A: root AGENT with plain-text input/output, 2 LLM calls (55+85 in, 15+29 out, 64 cached) and one tool.
    # gpt-4.1 costs 2.00 / 8.00 / 0.50 USD per million: (55*2 + 15*8) + (21*2 + 64*0.5 + 29*8) = 536 micro-USD
    assert runs[ob.TRACE_A][1:] == ("otlp", "weather-agent", "sess-42", "user-7", ["weather", "beta"], ob.QUESTION,
                                    ob.ANSWER, "ok", 4, 2, 1, 0, 140, 44, 64, 536.0, None)
    # B: JSON root input {"question": ...} gives its one string; the 429 call is the run's one error.
    # gpt-4o-mini 0.15 / 0.60: 812*0.15 + 46*0.60 = 149.4 micro-USD (the failed call has no tokens)
    assert runs[ob.TRACE_B][1:] == ("otlp", None, "sess-43", None, [], ob.RAG_QUESTION, ob.RAG_ANSWER, "ok", 7, 2, 0,
                                    1, 812, 46, 0, 149.4, "RateLimitError: Error code: 429")
    # C: a lone EVALUATOR span; its input is a JSON object of two keys, kept as it is
    assert runs[ob.TRACE_C][6:10] == (json.dumps({"input": ob.RAG_QUESTION, "output": ob.RAG_ANSWER}), "factual",
                                      "ok", 1)
    attributes = json.loads(otlp_store.sql("SELECT attributes FROM runs WHERE native_id = $t",
                                           {"t": ob.TRACE_A}).fetchone()[0])
    assert json.loads(attributes["metadata"]) == {"tenant": "acme", "release": "2025.09"}


def test_openinference_span_kinds_tools_and_tokens(otlp_store):
    steps = otlp_store.sql(
        "SELECT step_id, kind, model, provider, tool_name, tool_args, tool_result, input_tokens, output_tokens, "
        "cache_tokens, reasoning_tokens, status FROM steps ORDER BY step_id").fetchall()
    by_id = {s[0]: s[1:] for s in steps}
    # LLM TOOL CHAIN AGENT RETRIEVER EMBEDDING RERANKER GUARDRAIL EVALUATOR -> our kinds
    assert [by_id[i][0] for i in sorted(by_id)] == [
        "agent", "llm", "tool", "llm", "chain", "retrieval", "retrieval", "retrieval", "llm", "llm", "guardrail",
        "guardrail"]
    assert by_id["a000000000000002"][1:3] == ("gpt-4.1-2025-04-14", "openai")
    # the tool's arguments come from input.value, not from tool.parameters (the schema); its result from output.value
    tool = by_id["a000000000000003"]
    assert (tool[3], json.loads(tool[4]), tool[5]) == ("get_weather", {"city": "Tokyo"}, ob.WEATHER)
    assert by_id["a000000000000004"][6:10] == (85, 29, 64, 0)
    assert by_id["b000000000000005"][6:] == (None, None, None, None, "error")
    payload = json.loads(otlp_store.sql("SELECT attributes FROM steps WHERE step_id = 'a000000000000004'").fetchone()[0])
    assert not [k for k in payload if k.startswith("llm.input_messages.") or k.startswith("llm.output_messages.")]
    assert payload["llm.token_count.total"] == 114 and "llm.invocation_parameters" in payload


def test_flattened_messages_sort_numerically_with_tool_calls_and_contents(otlp_store):
    def messages(step_id):
        return json.loads(otlp_store.sql("SELECT messages FROM steps WHERE step_id = $s", {"s": step_id}).fetchone()[0])

    answer = messages("a000000000000004")
    assert [m["role"] for m in answer] == ["system", "user", "assistant", "tool", "assistant"]
    assert answer[2]["tool_calls"] == [{"id": "call_Kd0xW2", "name": "get_weather", "arguments": {"city": "Tokyo"}}]
    assert (answer[3]["tool_call_id"], answer[3]["content"]) == ("call_Kd0xW2", ob.WEATHER)
    assert answer[4]["content"] == ob.ANSWER  # output message in the `contents.0.message_content.text` form
    # the keys of trace B's history are written in text order (0, 1, 10, 11, 2 ...): 12 messages in number order
    history = messages("b000000000000006")
    assert [m["content"] for m in history] == ob.HISTORY + [ob.RAG_ANSWER]
    assert [m["role"] for m in history] == ob.ROLES + ["assistant"]
    assert messages("b000000000000005") == history[:12]  # the failed call: input only


def test_genai_wins_where_both_families_give_a_value(store, tmp_path):
    tid = "ab" * 16
    both = span(tid, "d" * 16, "", "chat gpt-4o", 0, 10, {
        "gen_ai.operation.name": "chat", "openinference.span.kind": "CHAIN",
        "gen_ai.request.model": "gpt-4o", "llm.model_name": "gpt-4o-mini",
        "gen_ai.system": "openai", "llm.provider": "azure",
        "gen_ai.usage.input_tokens": 100, "llm.token_count.prompt": 90,
        "llm.token_count.completion": 7, "llm.token_count.prompt_details.cache_read": 40,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "from GenAI"}]}]),
        "llm.input_messages.0.message.role": "user", "llm.input_messages.0.message.content": "from OpenInference",
    })
    oi_only = span(tid, "e" * 16, "d" * 16, "lookup", 1, 2, {
        "openinference.span.kind": "TOOL", "tool_call.function.name": "lookup_order",
        "tool_call.function.arguments": '{"order_id": 7}', "output.value": "shipped"})
    ingest_file(store, write_jsonl(tmp_path / "both.jsonl", [request([both, oi_only])]))
    rows = store.sql("SELECT kind, model, provider, input_tokens, output_tokens, cache_tokens, messages, tool_name, "
                     "tool_args, tool_result FROM steps ORDER BY seq").fetchall()
    # GenAI values win; OpenInference fills what GenAI leaves empty (output and cache tokens)
    assert rows[0][:6] == ("llm", "gpt-4o", "openai", 100, 7, 40)
    assert [m["content"] for m in json.loads(rows[0][6])] == ["from GenAI"]
    assert (rows[1][0], rows[1][7], json.loads(rows[1][8]), rows[1][9]) == ("tool", "lookup_order", {"order_id": 7},
                                                                          "shipped")


# -- span dumps ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
@pytest.mark.parametrize("layout", sorted(ob.LAYOUTS))
def test_every_dump_layout_maps_like_the_otlp_file(otlp_store, tmp_path, layout, suffix):
    rows = [ob.LAYOUTS[layout](r) for r in ob.spans()]
    writer = ob.write_parquet if suffix == ".parquet" else ob.write_jsonl
    f = writer(tmp_path / f"spans-{layout}{suffix}", rows)
    store = _ingest(tmp_path, f, "dump")
    res = store.sql("SELECT format, n_runs, n_steps FROM imports").fetchone()
    assert res == ("openinference", 3, 12)
    assert {r[0] for r in store.sql("SELECT run_id FROM runs").fetchall()} == {
        make_run_id("openinference", t) for t in (ob.TRACE_A, ob.TRACE_B, ob.TRACE_C)}
    assert store.sql("SELECT DISTINCT format FROM runs").fetchall() == [("openinference",)]
    # the same spans give the same runs and steps, field for field, as the OTLP file
    assert _rows(store, "runs", RUN_COLUMNS) == _rows(otlp_store, "runs", RUN_COLUMNS)
    assert _rows(store, "steps", STEP_COLUMNS) == _rows(otlp_store, "steps", STEP_COLUMNS)
    store.close()


def test_each_file_is_claimed_by_exactly_one_loader(tmp_path):
    rows = ob.spans()
    files = {write_jsonl(tmp_path / "otlp.jsonl", [ob.otlp_request(rows)]): "otlp",
             tmp_path / "single.json": "otlp"}
    (tmp_path / "single.json").write_text(json.dumps(ob.otlp_request(rows), indent=2))
    for name, layout in ob.LAYOUTS.items():
        files[ob.write_jsonl(tmp_path / f"{name}.jsonl", [layout(r) for r in rows])] = "openinference"
        files[ob.write_parquet(tmp_path / f"{name}.parquet", [layout(r) for r in rows])] = "openinference"
    (tmp_path / "array.json").write_text(json.dumps([ob.nested_object(r) for r in rows]))
    files[tmp_path / "array.json"] = "openinference"
    files[ob.write_parquet(tmp_path / "other.parquet", [{"id": 1, "trace_id": "x", "kind": "LLM"}])] = None
    files[ob.write_jsonl(tmp_path / "langsmith-like.jsonl", [{"trace_id": "x", "run_type": "llm"}])] = None
    for f, expected in files.items():
        claims = [name for name, loader in registry().items() if loader.sniff(f, read_head(f))]
        assert claims == ([expected] if expected else []), f.name


def test_json_array_dump_loads(store, tmp_path):
    f = tmp_path / "export.json"
    f.write_text(json.dumps([ob.nested_object(r) for r in ob.spans()], indent=1))
    res = ingest_file(store, f)
    assert (res.status, res.format, res.n_runs, res.n_steps) == ("ok", "openinference", 3, 12)


def test_bad_rows_are_rejected_with_their_line_and_the_rest_loads(store, tmp_path):
    rows = [ob.prefixed(r) for r in ob.spans()]
    lines = [json.dumps(r) for r in rows[:4]] + ['{"context.trace_id": "broken', json.dumps(["not", "a", "span"]),
                                                  json.dumps({"span_kind": "LLM", "name": "no ids"})]
    lines += [json.dumps(r) for r in rows[4:]]
    f = tmp_path / "partly.jsonl"
    f.write_text("\n".join(lines) + "\n")
    res = ingest_file(store, f)
    assert (res.status, res.n_runs, res.n_steps, res.n_rejects) == ("partial", 3, 12, 3)
    rejects = store.sql("SELECT location, reason FROM rejects ORDER BY location").fetchall()
    assert [r[0] for r in rejects] == ["line 5", "line 6", "line 7"]
    assert rejects[0][1].startswith("invalid JSON") and rejects[1][1] == "not a JSON object"
    assert "context.trace_id" in rejects[2][1]


def test_rows_flatten_back_to_openinference_keys():
    row = {"context": {"trace_id": "T1", "span_id": "S1"}, "span_kind": "LLM", "start_time": 1_760_000_000_000,
           "attributes.llm.input_messages": json.dumps([{"message.role": "user", "message.content": "hi"}]),
           "attributes.llm": {"token_count": {"prompt": 3}},
           "attributes.metadata": {"team": "search"}, "tag.tags": ["a", "b"], "attributes.score": float("nan")}
    span_, problem = span_of(row)
    assert problem is None and span_["startTimeUnixNano"] == "1760000000000000000"
    assert {a["key"]: a["value"] for a in span_["attributes"]} == {
        "llm.input_messages.0.message.role": {"stringValue": "user"},
        "llm.input_messages.0.message.content": {"stringValue": "hi"},
        "llm.token_count.prompt": {"intValue": "3"},
        "metadata": {"stringValue": '{"team": "search"}'},
        "tag.tags": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}},
        "openinference.span.kind": {"stringValue": "LLM"}}


def test_reimport_and_split_dump_merge(store, tmp_path):
    rows = [ob.bare(r) for r in ob.spans()]
    first = ob.write_jsonl(tmp_path / "first.jsonl", rows[6:])  # trace B's later spans and trace C
    second = ob.write_jsonl(tmp_path / "second.jsonl", rows[:7])  # trace A, trace B's root (one span in both)
    for f in (first, second):
        assert ingest_file(store, f).status == "ok"
    assert store.sql("SELECT count(*), count(DISTINCT run_id) FROM steps").fetchone() == (12, 3)
    again = ingest_file(store, second, force=True)
    assert (again.status, again.n_steps) == ("ok", 0)
    run_b = store.sql("SELECT n_steps, input, error FROM runs WHERE native_id = $t", {"t": ob.TRACE_B}).fetchone()
    assert run_b == (7, ob.RAG_QUESTION, "RateLimitError: Error code: 429")


# -- real OpenInference attributes (embedded in Langfuse's export of framework traces) --------------------------
def _otlp_from_langfuse(path: Path) -> dict:
    """The original OTel spans Langfuse kept in each observation's metadata, as one OTLP request."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    spans, resource = [], {}
    for o in doc["observations"]:
        meta = json.loads(o["metadata"]) if isinstance(o["metadata"], str) else o["metadata"]
        resource = meta.get("resourceAttributes") or resource
        ns = [str(int(datetime.fromisoformat(o[k].replace("Z", "+00:00")).timestamp() * 1e6) * 1000)
              for k in ("startTime", "endTime")]
        spans.append({"traceId": doc["trace"]["id"], "spanId": o["id"], "parentSpanId": o["parentObservationId"] or "",
                      "name": o["name"], "startTimeUnixNano": ns[0], "endTimeUnixNano": ns[1],
                      "attributes": [{"key": k, "value": {"stringValue": v if isinstance(v, str) else json.dumps(v)}}
                                     for k, v in meta["attributes"].items()]})
    return request(spans, resource)


@pytest.mark.real_data
def test_real_framework_spans_map(store, real_dir):
    folder = real_dir / "langfuse-framework-traces"
    f = write_jsonl(Path(store.path).parent / "frameworks.jsonl", [_otlp_from_langfuse(folder / name) for name in (
        "openai-agents-2025-09-30.trace.json", "google-adk-2025-08-28.trace.json", "beeai-2025-08-01.trace.json")])
    res = ingest_file(store, f)
    # observations per file: 5, 5, 29 (SOURCE.md lists 138 over 20 files; counted per file here)
    assert (res.status, res.n_runs, res.n_steps) == ("ok", 3, 39)
    runs = {r[0]: r[1:] for r in store.sql("SELECT native_id, n_steps, n_llm_calls, n_tool_calls, input_tokens, "
                                           "output_tokens, input, output, session_id FROM runs").fetchall()}
    agents = runs["fee618f96dc31e0ca38b2f7b26eb8b29"]  # openai-agents: prompt 55 + 85, completion 15 + 29
    assert agents[:7] == (5, 2, 1, 140, 44, "What's the weather in Tokyo?", (
        "The weather in Tokyo is currently sunny. If you need more details like temperature or forecast for the "
        "upcoming days, just let me know!"))
    adk = runs["b82a0bdc1994fc5d1c8576ca032543f7"]  # google-adk: GenAI usage 28 + 39 in, 3 + 6 out; role `model`
    assert adk == (5, 2, 1, 67, 9, "hi", "Hello Langfuse 👋!\n", "demo-session")

    def step(step_id):
        return store.sql("SELECT kind, provider, messages, tool_name, tool_args, tool_result FROM steps "
                         "WHERE step_id = $s", {"s": step_id}).fetchone()

    kind, _, messages, *_ = step("90d94774e8e3724d")
    msgs = json.loads(messages)
    assert kind == "llm" and [m["role"] for m in msgs] == ["system", "user", "assistant", "tool", "assistant"]
    assert msgs[2]["tool_calls"] == [{"id": "call_Kud0j0DxWSmLzv9W5m6qVqXn", "name": "get_weather",
                                      "arguments": {"city": "Tokyo"}}]
    assert msgs[3]["tool_call_id"] == "call_Kud0j0DxWSmLzv9W5m6qVqXn"
    assert step("5b99c3e3411ed17b")[3:] == ("get_weather", '{"city":"Tokyo"}', "The weather in Tokyo is sunny.")
    kind, provider, messages, *_ = step("bded677884f031ce")  # both families: gen_ai.system beats llm.provider
    assert (kind, provider) == ("llm", "gcp.vertex.agent")
    assert [m["role"] for m in json.loads(messages)] == ["system", "user", "model", "tool", "model"]
    # beeai streamed its answer as output messages 233..294, one token each: in number order they read on
    beeai = json.loads(step("f50f7bbf13112df9")[2])
    streamed = [m["content"] for m in beeai if m["role"] == "assistant"]
    assert len(streamed) == 62 and "".join(streamed).endswith("humidity is at 48%. It's a great time to explore the city!")
