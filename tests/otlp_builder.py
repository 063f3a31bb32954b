"""Tiny builders for hand-made OTLP/JSON test files (the demo generator covers the realistic ones)."""

from __future__ import annotations

import json
from pathlib import Path

T0 = 1_760_000_000_000_000_000  # ns


def value(v):
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [value(x) for x in v]}}
    return {"stringValue": v}


def attrs(d: dict) -> list[dict]:
    return [{"key": k, "value": value(v)} for k, v in d.items()]


def span(trace_id: str, span_id: str, parent: str = "", name: str = "step", start: int = 0, end: int = 1,
         attributes: dict | None = None, events: list[dict] | None = None, status: dict | None = None) -> dict:
    out = {"traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 1,
           "startTimeUnixNano": str(T0 + start * 1_000_000), "endTimeUnixNano": str(T0 + end * 1_000_000),
           "attributes": attrs(attributes or {})}
    if events:
        out["events"] = events
    if status:
        out["status"] = status
    return out


def event(name: str, attributes: dict, at: int = 0) -> dict:
    return {"timeUnixNano": str(T0 + at * 1_000_000), "name": name, "attributes": attrs(attributes)}


def request(spans: list[dict], resource: dict | None = None) -> dict:
    resource = {"service.name": "svc"} if resource is None else resource
    return {"resourceSpans": [{"resource": {"attributes": attrs(resource)},
                               "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}


def agent_trace(trace_id: str, *, outcome: str = "pass", agent: str = "support-agent", version: str = "v1",
                n_tools: int = 2, user_text: str = "Where is order 42?") -> list[dict]:
    """A root invoke_agent span with llm and tool children, in the current GenAI conventions."""
    root = f"{trace_id[:15]}0"
    spans = [span(trace_id, root, "", f"invoke_agent {agent}", 0, 100 + 10 * n_tools, {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "gen_ai.agent.version": version,
        "workbench.task.id": "task-1",
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": user_text}]}]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "Done."}]}]),
    }, events=[event("gen_ai.evaluation.result", {"gen_ai.evaluation.score.label": outcome,
                                                 "gen_ai.evaluation.score.value": 1.0 if outcome == "pass" else 0.0})])]
    for i in range(n_tools):
        llm_id, tool_id = f"{trace_id[:14]}{i:x}1", f"{trace_id[:14]}{i:x}2"
        spans.append(span(trace_id, llm_id, root, "chat gpt-4.1-mini", 1 + 10 * i, 5 + 10 * i, {
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1-mini",
            "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100,
            "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": user_text}]}]),
            "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
                {"type": "tool_call", "id": f"call_{i}", "name": "lookup_order", "arguments": {"order_id": 42}}]}]),
        }))
        spans.append(span(trace_id, tool_id, root, "execute_tool lookup_order", 6 + 10 * i, 9 + 10 * i, {
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
            "gen_ai.tool.call.id": f"call_{i}", "gen_ai.tool.call.arguments": '{"order_id": 42}',
            "gen_ai.tool.call.result": '{"status": "shipped"}',
        }))
    return spans


def write_jsonl(path: Path, records: list[dict | str]) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def trace_id(i: int) -> str:
    return f"{i:032x}"
