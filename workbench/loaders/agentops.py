"""AgentOps trace API responses (`{trace_id, spans: [...]}`): `runs.format = 'agentops'`.

Each span carries its OTel attributes un-flattened under `span_attributes` (`gen_ai.prompt`,
`gen_ai.completion[{"0": {role, content}}]`, `gen_ai.usage.prompt_tokens` as strings, `agent.*`,
`workflow.input`/`final_output`) and a `span_type` (agent / request / tool / other). The API leaves
`start_time` empty, so steps keep the file's order and the durations it reports (nanoseconds). An LLM
request's completion is often the provider's whole response as a JSON string (OpenAI Responses API); its
messages and usage are read from that. The literal string "null" means no value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.loaders.base import PythonLoader, Trace, run_facts
from workbench.loaders.chat import as_text, input_messages, output_messages
from workbench.loaders.document import excerpt, load_document
from workbench.loaders.parse import as_int, loads_lenient, parse_ts
from workbench.models import Reject, Step, normalize_id

_KINDS = {"agent": "agent", "request": "llm", "llm": "llm", "tool": "tool", "function": "tool",
          "guardrail": "guardrail", "handoff": "other", "workflow": "chain", "other": "other"}
_STATUS = {"OK": "ok", "ERROR": "error", "UNSET": "unset"}


class AgentOpsLoader(PythonLoader):
    """AgentOps trace exports (`.json`): one trace with its spans, as the AgentOps API returns it."""

    name = "agentops"

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() != ".json":
            return False
        return b'"trace_id"' in head and b'"spans"' in head and (
            b'"span_attributes"' in head or b'"span_type"' in head or b'"span_name"' in head)

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        doc, reject = load_document(path, ctx)
        if reject:
            yield reject
            return
        if not isinstance(doc, dict) or not doc.get("trace_id") or not isinstance(doc.get("spans"), list):
            yield Reject(location="/", reason="no AgentOps trace here (expected {trace_id, spans: [...]})",
                         excerpt=excerpt(doc))
            return
        run = _run(doc)
        steps = []
        for i, span in enumerate(doc["spans"]):
            if not isinstance(span, dict) or not span.get("span_id"):
                yield Reject(location=f"/spans/{i}", reason="span without a span_id", excerpt=excerpt(span))
                continue
            steps.append(_step(run.run_id, i, span))
        yield Trace(run=run, steps=steps)


def _value(raw: Any) -> Any:
    """Attribute values arrive JSON-encoded, sometimes as the string "null"."""
    value = loads_lenient(raw)
    return None if value in ("null", "", "None") else value


def _get(attrs: dict, dotted: str) -> Any:
    node: Any = attrs
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return _value(node)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _root(doc: dict) -> dict:
    return next((s for s in doc["spans"] if isinstance(s, dict) and not s.get("parent_span_id")), {})


def _run(doc: dict) -> Any:
    """Run facts from the root span: the agent, the task (`workflow.input`) and its `final_output`."""
    root = _root(doc)
    attrs = root.get("span_attributes") or {}
    project = (root.get("resource_attributes") or {}).get("agentops.project.id")
    return run_facts(
        "agentops", normalize_id(doc["trace_id"]), agent=_get(attrs, "agent.name"),
        input=as_text(_get(attrs, "workflow.input")), output=as_text(_get(attrs, "workflow.final_output")),
        attributes={"agentops.project_id": project} if project else {})


def _step(run_id: str, seq: int, span: dict) -> Step:
    attrs = span.get("span_attributes") if isinstance(span.get("span_attributes"), dict) else {}
    kind = _KINDS.get(str(span.get("span_type")), "other")
    code = str(span.get("status_code") or "UNSET").upper()
    status = _STATUS.get(code.removeprefix("STATUS_CODE_"), "unset")
    duration = as_int(span.get("duration"))
    payload = ("gen_ai.prompt", "gen_ai.completion", "workflow.final_output", "workflow.input")
    extra = {k: v for k, v in _flatten(attrs).items() if not k.startswith(payload) and v not in ("", None)}
    extra.update({"agentops.span_kind": span.get("span_kind"), "agentops.span_type": span.get("span_type")})
    fields: dict[str, Any] = {}
    if kind == "llm":
        fields = _llm_fields(attrs)
    elif kind == "tool":
        fields = {"tool_name": _get(attrs, "tool.name") or span.get("span_name"),
                  "tool_args": _get(attrs, "tool.parameters") or _get(attrs, "workflow.input"),
                  "tool_result": as_text(_get(attrs, "tool.result") or _get(attrs, "workflow.final_output"))}
    else:
        fields = _usage(attrs, None)
        fields["model"] = _get(attrs, "gen_ai.request.model")
    return Step(
        run_id=run_id, step_id=normalize_id(span["span_id"]), parent_step_id=normalize_id(span.get("parent_span_id")),
        seq=seq, kind=kind, name=span.get("span_name"), started_at=parse_ts(span.get("start_time")),
        duration_ms=duration / 1e6 if duration is not None else None, status=status,
        error=(span.get("status_message") or "error") if status == "error" else None, attributes=extra, **fields)


def _completion(attrs: dict) -> list[Any]:
    """The completion entries: `[{"0": {role, content}}]` or `{"0": {...}}`, content possibly a JSON response."""
    raw = (attrs.get("gen_ai") or {}).get("completion")
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        for entry in (item.values() if isinstance(item, dict) and "role" not in item else [item]):
            if isinstance(entry, dict):
                out.append(entry)
    return out


def _llm_fields(attrs: dict) -> dict[str, Any]:
    messages = input_messages(_get(attrs, "gen_ai.prompt"))
    response = None
    for entry in _completion(attrs):
        content = _value(entry.get("content"))
        if isinstance(content, dict) and (content.get("object") == "response" or "choices" in content):
            response = content
            messages += output_messages(content)
        elif content is not None:
            messages += output_messages({"role": entry.get("role") or "assistant", "content": content})
    model = _get(attrs, "gen_ai.response.model") or _get(attrs, "gen_ai.request.model")
    if model is None and response:
        model = response.get("model")
    return {"model": model, "provider": _get(attrs, "gen_ai.system"), "messages": messages,
            **_usage(attrs, response)}


def _usage(attrs: dict, response: dict | None) -> dict[str, Any]:
    usage = (attrs.get("gen_ai") or {}).get("usage")
    if not isinstance(usage, dict) and response:
        usage = response.get("usage")
    if not isinstance(usage, dict):
        return {}
    details_in = usage.get("input_tokens_details") or {}
    details_out = usage.get("output_tokens_details") or {}
    return {"input_tokens": as_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
            "output_tokens": as_int(usage.get("completion_tokens", usage.get("output_tokens"))),
            "cache_tokens": as_int(usage.get("cache_read_input_tokens", details_in.get("cached_tokens"))),
            "reasoning_tokens": as_int(usage.get("reasoning_tokens", details_out.get("reasoning_tokens")))}
