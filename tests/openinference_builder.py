"""OpenInference spans for tests, written as OTLP and as span dumps in every layout the loader reads.

The spans imitate what the OpenInference instrumentations for the OpenAI Agents SDK and LangChain record
(attribute names and value shapes as seen in ../shared/data/real/langfuse-framework-traces, content made up):

* trace A, an agent: AGENT root with plain-text input/output, session, user, metadata and tags; an LLM call
  that asks for a tool, the TOOL span, and an LLM call that answers (its output in the `contents` form);
* trace B, a RAG chain: CHAIN root with JSON input/output, a RETRIEVER with an EMBEDDING and a RERANKER
  under it, an LLM call rejected with a 429 (status ERROR and an exception event) and its retry, both with
  12 input messages whose keys are written in text order (0, 1, 10, 11, 2 ...), and a GUARDRAIL;
* trace C, an EVALUATOR span on its own, as evaluation runs record them.

Each span is one "canonical" row (Phoenix's columns + a flat `attributes` dict); the layout functions turn
it into the shapes of real dumps, and `otlp_request` into an OTLP/JSON request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from tests.otlp_builder import T0, attrs, event

TRACE_A, TRACE_B, TRACE_C = "8e3f0c5b2d4a49b1a0c7e6f5d4c3b2a1", "1b2c3d4e5f60718293a4b5c6d7e8f901", \
    "c0ffee00c0ffee00c0ffee00c0ffee00"
START = datetime.fromtimestamp(T0 / 1e9, UTC)
SYSTEM = "You are a helpful weather agent."
QUESTION = "What's the weather in Tokyo?"
ANSWER = "It is sunny in Tokyo today."
WEATHER = "The weather in Tokyo is sunny."
CALL_ARGS = '{"city":"Tokyo"}'
RAG_QUESTION = "Can I return an opened laptop?"
RAG_ANSWER = "Yes: opened laptops can be returned within 14 days with the receipt."
# trace B's chat history: a system prompt and 11 turns; the last one is the current question
_TURNS = [
    ("system", "You answer questions about the shop's policies. Cite the policy."),
    ("user", "Hi, I ordered a laptop on the 3rd."), ("assistant", "Thanks. Do you have the order number?"),
    ("user", "It's A-2291."), ("assistant", "Found it: a 14-inch laptop, delivered on the 6th."),
    ("user", "The box is open, I tried it once."), ("assistant", "Understood. What would you like to do?"),
    ("user", "It is too heavy for me."), ("assistant", "Sorry to hear that. Let me check the returns policy."),
    ("user", "Do I need the original packaging?"), ("assistant", "The original box helps but is not required."),
    ("user", RAG_QUESTION)]
ROLES = [r for r, _ in _TURNS]
HISTORY = [t for _, t in _TURNS]


def _iso(ms: int) -> str:
    return (START + timedelta(milliseconds=ms)).isoformat()


def _row(trace: str, span: str, parent: str | None, name: str, kind: str, start: int, end: int,
         attributes: dict, status: str = "OK", message: str = "", events: list | None = None) -> dict:
    return {"name": name, "span_kind": kind, "parent_id": parent, "start_time": _iso(start), "end_time": _iso(end),
            "status_code": status, "status_message": message, "events": events or [],
            "context.span_id": span, "context.trace_id": trace,
            "attributes": {"openinference.span.kind": kind, **attributes}}


def _messages(direction: str, messages: list[dict]) -> dict:
    """Flattened `llm.{direction}_messages.N.message...` keys from [{role, content, tool_calls, ...}]."""
    out: dict = {}
    for n, m in enumerate(messages):
        base = f"llm.{direction}_messages.{n}.message"
        for field in ("role", "content", "tool_call_id"):
            if field in m:
                out[f"{base}.{field}"] = m[field]
        for k, text in enumerate(m.get("contents", [])):
            out[f"{base}.contents.{k}.message_content.type"] = "text"
            out[f"{base}.contents.{k}.message_content.text"] = text
        for k, call in enumerate(m.get("tool_calls", [])):
            out[f"{base}.tool_calls.{k}.tool_call.id"] = call["id"]
            out[f"{base}.tool_calls.{k}.tool_call.function.name"] = call["name"]
            out[f"{base}.tool_calls.{k}.tool_call.function.arguments"] = call["arguments"]
    return out


def _tokens(prompt: int, completion: int, cache: int = 0, reasoning: int = 0) -> dict:
    return {"llm.token_count.prompt": prompt, "llm.token_count.completion": completion,
            "llm.token_count.total": prompt + completion, "llm.token_count.prompt_details.cache_read": cache,
            "llm.token_count.completion_details.reasoning": reasoning}


def spans() -> list[dict]:
    """The canonical rows of traces A, B and C (12 spans)."""
    call = {"id": "call_Kd0xW2", "name": "get_weather", "arguments": CALL_ARGS}
    openai = {"llm.system": "openai", "llm.provider": "openai", "llm.model_name": "gpt-4.1-2025-04-14",
              "llm.invocation_parameters": json.dumps({"model": "gpt-4.1", "temperature": 0.2}),
              "llm.tools.0.tool.json_schema": json.dumps({"type": "function", "function": {"name": "get_weather"}})}
    a = [
        _row(TRACE_A, "a000000000000001", None, "Agent workflow", "AGENT", 0, 2400, {
            "agent.name": "weather-agent", "input.value": QUESTION, "input.mime_type": "text/plain",
            "output.value": ANSWER, "output.mime_type": "text/plain", "session.id": "sess-42", "user.id": "user-7",
            "metadata": json.dumps({"tenant": "acme", "release": "2025.09"}), "tag.tags": ["weather", "beta"]}),
        _row(TRACE_A, "a000000000000002", "a000000000000001", "response", "LLM", 10, 900, {
            **openai, "input.value": json.dumps([{"content": QUESTION, "role": "user"}]),
            "input.mime_type": "application/json", **_tokens(55, 15),
            **_messages("input", [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]),
            **_messages("output", [{"role": "assistant", "tool_calls": [call]}])}),
        _row(TRACE_A, "a000000000000003", "a000000000000001", "get_weather", "TOOL", 910, 1300, {
            "llm.system": "openai", "tool.name": "get_weather", "tool.description": "Current weather for a city.",
            # tool.parameters is the JSON schema; the call's arguments are in input.value
            "tool.parameters": json.dumps({"type": "object", "properties": {"city": {"type": "string"}}}),
            "input.value": CALL_ARGS, "input.mime_type": "application/json",
            "output.value": WEATHER, "output.mime_type": "text/plain"}),
        _row(TRACE_A, "a000000000000004", "a000000000000001", "response", "LLM", 1310, 2390, {
            **openai, **_tokens(85, 29, cache=64),
            **_messages("input", [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION},
                                  {"role": "assistant", "tool_calls": [call]},
                                  {"role": "tool", "tool_call_id": call["id"], "content": WEATHER}]),
            **_messages("output", [{"role": "assistant", "contents": [ANSWER]}])}),
    ]
    history = _messages("input", [{"role": r, "content": c} for r, c in zip(ROLES, HISTORY, strict=True)])
    history = dict(sorted(history.items()))  # text order of the keys, as exporters that sort keys write them
    chat = {"llm.model_name": "gpt-4o-mini", "llm.provider": "openai",
            "llm.invocation_parameters": json.dumps({"temperature": 0})}
    b = [
        _row(TRACE_B, "b000000000000001", None, "RunnableSequence", "CHAIN", 0, 5000, {
            "input.value": json.dumps({"question": RAG_QUESTION}), "input.mime_type": "application/json",
            "output.value": json.dumps({"output": RAG_ANSWER}), "output.mime_type": "application/json",
            "session.id": "sess-43", "metadata": json.dumps({"ls_run_depth": 0})}),
        _row(TRACE_B, "b000000000000002", "b000000000000001", "VectorStoreRetriever", "RETRIEVER", 5, 400, {
            "input.value": RAG_QUESTION,
            "retrieval.documents.0.document.id": "policy-12",
            "retrieval.documents.0.document.content": "Opened electronics can be returned within 14 days.",
            "retrieval.documents.0.document.score": 0.82,
            "retrieval.documents.0.document.metadata": json.dumps({"source": "returns.md"}),
            "retrieval.documents.1.document.id": "policy-3",
            "retrieval.documents.1.document.content": "Receipts are required for every return.",
            "retrieval.documents.1.document.score": 0.61}),
        _row(TRACE_B, "b000000000000003", "b000000000000002", "OpenAIEmbeddings", "EMBEDDING", 6, 120, {
            "embedding.model_name": "text-embedding-3-small",
            "embedding.embeddings.0.embedding.text": RAG_QUESTION}),
        _row(TRACE_B, "b000000000000004", "b000000000000002", "CohereRerank", "RERANKER", 130, 390, {
            "reranker.model_name": "rerank-english-v3.0", "reranker.top_k": 2, "reranker.query": RAG_QUESTION}),
        _row(TRACE_B, "b000000000000005", "b000000000000001", "ChatOpenAI", "LLM", 410, 1400,
             {**chat, **history}, status="ERROR", message="RateLimitError: Error code: 429",
             events=[{"name": "exception", "timestamp": _iso(1400), "attributes": {
                 "exception.type": "openai.RateLimitError",
                 "exception.message": "Error code: 429 - Rate limit reached for gpt-4o-mini"}}]),
        _row(TRACE_B, "b000000000000006", "b000000000000001", "ChatOpenAI", "LLM", 2400, 4800, {
            **chat, **history, **_tokens(812, 46),
            **_messages("output", [{"role": "assistant", "content": RAG_ANSWER}])}),
        _row(TRACE_B, "b000000000000007", "b000000000000001", "output_guard", "GUARDRAIL", 4810, 4990, {
            "input.value": RAG_ANSWER, "output.value": "passed"}),
    ]
    c = [_row(TRACE_C, "c000000000000001", None, "hallucination_eval", "EVALUATOR", 0, 800, {
        "input.value": json.dumps({"input": RAG_QUESTION, "output": RAG_ANSWER}), "output.value": "factual"},
        status="UNSET")]
    return a + b + c


# -- layouts of a span dump -----------------------------------------------------------------------------------
def prefixed(row: dict) -> dict:
    """Top-level `attributes.`-prefixed flat keys (a pandas frame of flat attributes written as records)."""
    out = {k: v for k, v in row.items() if k != "attributes"}
    out.update({f"attributes.{k}": v for k, v in row["attributes"].items()})
    return out


def bare(row: dict) -> dict:
    """Top-level flat keys without a prefix."""
    out = {k: v for k, v in row.items() if k != "attributes"}
    out.update(row["attributes"])
    return out


def nested_object(row: dict) -> dict:
    """Phoenix's REST layout: a `context` object and an `attributes` object (here without the span kind,
    which then comes from `span_kind`)."""
    out = {k: v for k, v in row.items() if not k.startswith("context.") and k != "attributes"}
    out["context"] = {"trace_id": row["context.trace_id"], "span_id": row["context.span_id"]}
    out["attributes"] = {k: v for k, v in row["attributes"].items() if k != "openinference.span.kind"}
    return out


_LISTS = ("llm.input_messages", "llm.output_messages", "retrieval.documents", "embedding.embeddings", "llm.tools")


def phoenix_frame(row: dict) -> dict:
    """`get_spans_dataframe()` records: list attributes as lists of dicts with dotted keys, metadata as objects."""
    out = {k: v for k, v in row.items() if k != "attributes"}
    for key, value in row["attributes"].items():
        if key.endswith("metadata"):
            value = json.loads(value)
        head = next((p for p in _LISTS if key.startswith(p + ".")), None)
        if head is None:
            out[f"attributes.{key}"] = value
            continue
        n, leaf = key[len(head) + 1:].split(".", 1)
        items = out.setdefault(f"attributes.{head}", [])
        while len(items) <= int(n):
            items.append({})
        _put(items[int(n)], leaf, value)
    return out


def _put(item: dict, leaf: str, value) -> None:
    """`message.tool_calls.0.tool_call.id` -> item["message.tool_calls"][0]["tool_call.id"]."""
    for inner in ("message.tool_calls", "message.contents"):
        if leaf.startswith(inner + "."):
            n, rest = leaf[len(inner) + 1:].split(".", 1)
            items = item.setdefault(inner, [])
            while len(items) <= int(n):
                items.append({})
            items[int(n)][rest] = value
            return
    item[leaf] = value


LAYOUTS = {"prefixed": prefixed, "bare": bare, "object": nested_object, "phoenix": phoenix_frame}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    """Through DuckDB's JSON reader (all rows sampled, so sparse columns and struct fields are unioned)."""
    src = write_jsonl(path.with_suffix(".src.jsonl"), rows)
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT * FROM read_json('{src}', format='newline_delimited', sample_size=-1)) "
                    f"TO '{path}' (FORMAT parquet)")
    src.unlink()
    return path


# -- the same spans as OTLP ----------------------------------------------------------------------------------
def _ns(iso: str) -> int:
    return int((datetime.fromisoformat(iso) - START) / timedelta(microseconds=1)) * 1000 + T0


def otlp_span(row: dict) -> dict:
    out = {"traceId": row["context.trace_id"], "spanId": row["context.span_id"],
           "parentSpanId": row["parent_id"] or "", "name": row["name"], "kind": 1,
           "startTimeUnixNano": str(_ns(row["start_time"])), "endTimeUnixNano": str(_ns(row["end_time"])),
           "attributes": attrs(row["attributes"]),
           "status": {"code": {"OK": 1, "ERROR": 2}.get(row["status_code"], 0), "message": row["status_message"]}}
    if row["events"]:
        out["events"] = [{**event(e["name"], e["attributes"]), "timeUnixNano": str(_ns(e["timestamp"]))}
                         for e in row["events"]]
    return out


def otlp_request(rows: list[dict]) -> dict:
    """One OTLP request with the spans of `rows` and no resource attributes (a dump has none either)."""
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [
        {"scope": {"name": "openinference.instrumentation.openai_agents", "version": "1.3.0"},
         "spans": [otlp_span(r) for r in rows]}]}]}
