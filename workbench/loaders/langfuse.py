"""Langfuse "trace with observations" exports (`{trace: {...}, observations: [...]}`): `runs.format = 'langfuse'`.

One trace is one run (run_id from the Langfuse trace id, so observations of one trace in several files merge);
one observation is one step. GENERATION -> llm with messages from its input/output (every shape in
`workbench.loaders.chat`, matching Langfuse's own ChatML rendering), TOOL -> tool, AGENT/CHAIN/EVENT as named,
and SPAN by the OTel/OpenInference attributes Langfuse keeps in `metadata.attributes` (or, for LangChain spans
that carry none, by matching a tool name an LLM called). Usage and cost are Langfuse's: a reported cost stays
reported (`cost_estimated = false`). Trace scores go to the run's attributes; a correctness-like score also
sets the outcome (see `workbench.loaders.scores`).

Langfuse's own ChatML renderings (`*.chatml.json`, a map of observation id -> {input, output: {success, data}})
sit next to exported traces; they are not traces, and `not_trace` says so, so an ingest of the folder lists
them as skipped instead of failed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.loaders.base import PythonLoader, Trace, run_facts
from workbench.loaders.chat import (
    as_text,
    first_text,
    input_messages,
    last_text,
    output_messages,
    tool_output_text,
)
from workbench.loaders.document import excerpt, load_document
from workbench.loaders.parse import as_int, loads_lenient, parse_ts
from workbench.loaders.scores import outcome_of_scores
from workbench.models import Reject, Step, normalize_id

_TYPE_KIND = {"GENERATION": "llm", "TOOL": "tool", "AGENT": "agent", "CHAIN": "chain", "EVENT": "event",
              "RETRIEVER": "retrieval", "GUARDRAIL": "guardrail", "EMBEDDING": "other", "EVALUATOR": "other"}
# openinference.span.kind / langsmith.span.kind (lower-cased) and gen_ai.operation.name
_SPAN_KIND = {"llm": "llm", "tool": "tool", "agent": "agent", "chain": "chain", "retriever": "retrieval",
              "reranker": "retrieval", "guardrail": "guardrail", "embedding": "other", "evaluator": "other"}
_OPERATION_KIND = {"chat": "llm", "text_completion": "llm", "generate_content": "llm", "execute_tool": "tool",
                   "invoke_agent": "agent", "create_agent": "agent", "chain": "chain", "embeddings": "other"}
# attributes that repeat the observation's input/output (already in messages / tool columns)
_PAYLOAD_PREFIXES = ("llm.input_messages", "llm.output_messages", "gen_ai.input.messages",
                     "gen_ai.output.messages", "gen_ai.prompt", "gen_ai.completion", "gen_ai.system_instructions",
                     "input.value", "output.value", "events", "all_messages_events", "ai.prompt", "ai.response",
                     "tool_arguments", "tool_response", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result")
_TOOL_PREFIX = re.compile(r"^(running tool: |execute_tool |tool\.)")
_TRACE_HEAD = re.compile(rb'^\s*\{\s*"trace"\s*:\s*\{')
_CHATML_HEAD = re.compile(rb'^\s*\{\s*"[^"]+"\s*:\s*\{\s*"(input|output)"\s*:\s*\{\s*"success"')


class LangfuseLoader(PythonLoader):
    """Langfuse trace exports: `{trace, observations}` documents (`.json`), or a list of them."""

    name = "langfuse"

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() != ".json" or self.not_trace(path, head):
            return False
        # a long trace input can push "observations" past the head; the export starts with {"trace": {...
        looks = b'"observations"' in head or _TRACE_HEAD.match(head) is not None
        return looks and (b'"traceId"' in head or b'"projectId"' in head)

    def not_trace(self, path: Path, head: bytes) -> str | None:
        """Why a file that belongs with Langfuse exports is not a trace (its ChatML rendering), else None."""
        if _CHATML_HEAD.match(head):
            return "Langfuse's ChatML rendering of the messages of a trace export (derived data)"
        return None

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        doc, reject = load_document(path, ctx)
        if reject:
            yield reject
            return
        docs = doc if isinstance(doc, list) else [doc]
        for i, item in enumerate(docs):
            where = f"/{i}" if isinstance(doc, list) else ""
            yield from _read_trace(item, where)


def _read_trace(doc: Any, where: str) -> Iterator[Trace | Reject]:
    trace = doc.get("trace") if isinstance(doc, dict) and isinstance(doc.get("trace"), dict) else doc
    if not isinstance(trace, dict) or not trace.get("id"):
        yield Reject(location=where or "/", reason="no Langfuse trace here (expected {trace: {id, ...}, "
                     "observations: [...]})", excerpt=excerpt(doc))
        return
    observations = doc.get("observations") if isinstance(doc.get("observations"), list) else []
    observations = observations or trace.get("observations") or []
    run = _run(trace)
    steps: list[Step] = []
    tool_names = _called_tools(observations)
    for i, obs in enumerate(observations):
        if not isinstance(obs, dict) or not obs.get("id"):
            yield Reject(location=f"{where}/observations/{i}", reason="observation without an id",
                         excerpt=excerpt(obs))
            continue
        steps.append(_step(run.run_id, i, obs, tool_names))
    yield Trace(run=_with_text_fallback(run, trace, steps), steps=steps)


def _run(trace: dict) -> Any:
    scores = [s for s in trace.get("scores") or [] if isinstance(s, dict) and s.get("name")]
    outcome, score = outcome_of_scores({s["name"]: s.get("value") for s in scores})
    attributes: dict[str, Any] = {}
    if scores:
        attributes["langfuse.scores"] = [
            {k: s.get(k) for k in ("name", "value", "stringValue", "dataType", "source", "comment")
             if s.get(k) is not None} for s in scores]
    metadata = loads_lenient(trace.get("metadata"))
    if metadata:
        attributes["langfuse.metadata"] = metadata
    for key in ("projectId", "release", "public", "bookmarked"):
        if trace.get(key) not in (None, False):
            attributes[f"langfuse.{key}"] = trace[key]
    return run_facts(
        "langfuse", normalize_id(trace["id"]), agent=trace.get("name"),
        agent_version=trace.get("version") or trace.get("release"), environment=trace.get("environment"),
        session_id=trace.get("sessionId"), user_id=trace.get("userId"),
        tags=[str(t) for t in trace.get("tags") or []], outcome=outcome, outcome_score=score,
        attributes=attributes)


def _with_text_fallback(run: Any, trace: dict, steps: list[Step]) -> Any:
    """The run's input/output: the user's message in the trace input and the assistant's answer in the trace
    output; where those hold none (function arguments, an SDK result object, nothing), the first user
    message and last assistant answer of its LLM calls; else the trace input/output as text."""
    llm = sorted((s for s in steps if s.kind == "llm"), key=lambda s: (s.started_at is None, s.started_at, s.seq))
    said = [m for s in llm for m in s.messages]
    raw_in, raw_out = loads_lenient(trace.get("input")), loads_lenient(trace.get("output"))
    task = first_text(input_messages(raw_in, fallback=False), "user") or first_text(said, "user") \
        or as_text(raw_in)
    answer = last_text(output_messages(raw_out, fallback=False), "assistant") or last_text(said, "assistant") \
        or as_text(raw_out)
    return run.model_copy(update={"input": task, "output": answer})


def _called_tools(observations: list) -> set[str]:
    """Names of the tools the trace's LLM calls asked for: a bare SPAN of that name is the tool running."""
    names: set[str] = set()
    for obs in observations:
        if isinstance(obs, dict) and obs.get("type") == "GENERATION":
            names.update(str(n) for n in obs.get("toolCallNames") or [])
            for m in output_messages(obs.get("output")):
                names.update(c.name for c in m.tool_calls)
    return names


def _attributes(obs: dict) -> tuple[dict, str | None]:
    metadata = loads_lenient(obs.get("metadata"))
    if not isinstance(metadata, dict):
        return {}, None
    attrs = metadata.get("attributes") if isinstance(metadata.get("attributes"), dict) else {}
    scope = metadata.get("scope") if isinstance(metadata.get("scope"), dict) else {}
    return attrs, scope.get("name")


def _kind(obs: dict, attrs: dict, tool_names: set[str]) -> str:
    kind = obs.get("type")
    if kind != "SPAN":
        return _TYPE_KIND.get(str(kind), "other")
    for key in ("openinference.span.kind", "langsmith.span.kind"):
        found = _SPAN_KIND.get(str(attrs.get(key, "")).lower())
        if found:
            return found
    found = _OPERATION_KIND.get(str(attrs.get("gen_ai.operation.name", "")).lower())
    if found:
        return found
    if attrs.get("gen_ai.tool.name") or attrs.get("tool.name"):
        return "tool"
    if obs.get("name") in tool_names and isinstance(loads_lenient(obs.get("input")), dict):
        return "tool"
    if attrs.get("gen_ai.agent.name") or str(obs.get("name", "")).endswith("agent run"):
        return "agent"
    return "chain"


def _step(run_id: str, seq: int, obs: dict, tool_names: set[str]) -> Step:
    attrs, scope = _attributes(obs)
    kind = _kind(obs, attrs, tool_names)
    level = obs.get("level") or "DEFAULT"
    extra: dict[str, Any] = {k: v for k, v in attrs.items() if not k.startswith(_PAYLOAD_PREFIXES)}
    extra.update({"langfuse.type": obs.get("type"), "langfuse.level": level})
    for key, value in (("langfuse.scope", scope), ("langfuse.status_message", obs.get("statusMessage")),
                       ("langfuse.model_parameters", obs.get("modelParameters") or None),
                       ("langfuse.completion_start_time", obs.get("completionStartTime"))):
        if value is not None:
            extra[key] = value
    fields: dict[str, Any] = {}
    if kind == "llm":
        fields = _llm_fields(obs, attrs, extra)
    elif kind == "tool":
        fields = _tool_fields(obs, attrs)
    else:
        for key in ("input", "output"):
            value = loads_lenient(obs.get(key))
            if value is not None:
                extra[key] = value
        fields = _usage(obs, extra)  # AGENT observations may carry their own usage and cost
    return Step(
        run_id=run_id, step_id=normalize_id(obs["id"]), parent_step_id=normalize_id(obs.get("parentObservationId")),
        seq=seq, kind=kind, name=obs.get("name"), started_at=parse_ts(obs.get("startTime")),
        ended_at=parse_ts(obs.get("endTime")), status="error" if level == "ERROR" else "unset",
        error=(obs.get("statusMessage") or "error") if level == "ERROR" else None, attributes=extra, **fields)


def input_side(obs: dict) -> list:
    """The messages a GENERATION observation sent (its input), as stored first in the step's messages."""
    return input_messages(obs.get("input"))


def output_side(obs: dict) -> list:
    """The messages a GENERATION observation returned (its output), stored after the input's."""
    return output_messages(obs.get("output"))


def _llm_fields(obs: dict, attrs: dict, extra: dict) -> dict[str, Any]:
    model = obs.get("model") or attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model") \
        or attrs.get("llm.model_name")
    provider = attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system") or attrs.get("llm.provider") \
        or attrs.get("llm.system")
    return {"model": model, "provider": provider, "messages": input_side(obs) + output_side(obs),
            **_usage(obs, extra)}


def _usage(obs: dict, extra: dict) -> dict[str, Any]:
    """Tokens and cost from Langfuse's usageDetails/totalCost.

    Langfuse's flat usage types are disjoint (`total` is their sum: `output_reasoning` is not inside
    `output`), while dotted keys (`completion_details.reasoning`) are breakdowns of a flat one. The canonical
    input/output counts are totals, so flat input-side types are summed into input, output-side into output.
    """
    usage = {k: as_int(v) for k, v in (obs.get("usageDetails") or {}).items() if as_int(v) is not None}
    flat = {k: v for k, v in usage.items() if "." not in k and k != "total"}
    inputs = [v for k, v in flat.items() if not k.startswith("output")]
    outputs = [v for k, v in flat.items() if k.startswith("output")]
    cache = [v for k, v in flat.items() if "cache_read" in k] or [v for k, v in usage.items() if "cache_read" in k]
    reasoning = [v for k, v in flat.items() if "reasoning" in k] or [
        v for k, v in usage.items() if "reasoning" in k]
    cost = obs.get("totalCost")
    cost = float(cost) if isinstance(cost, int | float) and cost > 0 else None
    if cost is not None:
        extra["langfuse.cost_source"] = "provided" if obs.get("providedCostDetails") else "langfuse"
    return {"input_tokens": sum(inputs) if inputs else None, "output_tokens": sum(outputs) if outputs else None,
            "cache_tokens": sum(cache) if cache else None, "reasoning_tokens": sum(reasoning) if reasoning else None,
            "cost_usd": cost, "cost_estimated": False if cost is not None else None}


def _tool_fields(obs: dict, attrs: dict) -> dict[str, Any]:
    """Tool name, arguments and result; where Langfuse's input/output is missing (or, for the result, an empty
    `{}`), the instrumentation's own attributes (OTel GenAI, OpenInference, pydantic-ai, Google ADK)."""
    name = attrs.get("gen_ai.tool.name") or attrs.get("tool.name") or _TOOL_PREFIX.sub("", obs.get("name") or "")
    args = loads_lenient(obs.get("input"))
    if args is None:
        args = loads_lenient(_first(attrs, "gen_ai.tool.call.arguments", "tool_arguments",
                                    "gcp.vertex.agent.tool_call_args", "tool.parameters"))
    result = loads_lenient(obs.get("output"))
    if result in (None, "", {}, []):
        result = _first(attrs, "gen_ai.tool.call.result", "tool_response", "gcp.vertex.agent.tool_response",
                        "output.value") or result
    return {"tool_name": name or None, "tool_args": args, "tool_result": tool_output_text(result)}


def _first(attrs: dict, *keys: str) -> Any:
    return next((attrs[k] for k in keys if attrs.get(k) not in (None, "")), None)
