"""LangSmith run records: `runs.format = 'langsmith'`.

Reads what LangSmith hands out: automation webhook payloads (`{rule_id, runs: [Run]}`), API listings (a list
of runs, or `{runs: [...]}`), and the SDK's ingest batches (`{post: [RunCreate], patch: [RunUpdate]}`, a
patch completing the post of the same run within the file). One LangSmith trace is one run: the run_id comes
from the trace id, so a trace split over several files (each its own ingest transaction) merges into one run.
One LangSmith run is one step: parent from `parent_run_id`, else the last of `parent_run_ids`, else the
second-to-last segment of `dotted_order`; `run_type` gives the kind.

LangSmith has no success label: the outcome stays unknown unless feedback says it (`feedback_stats` with a
correctness-like key, see `workbench.loaders.scores`). A tool run LangSmith marks `success` whose output says
`{"success": false, "error": ...}` is stored with status error and that error text (the source's status kept
in the step's attributes), so silent tool failures are visible in review.
"""

from __future__ import annotations

import json
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
from workbench.models import Reject, Step, make_run_id, normalize_id

_KINDS = {"llm": "llm", "chat_model": "llm", "tool": "tool", "chain": "chain", "retriever": "retrieval",
          "prompt": "chain", "parser": "chain", "embedding": "other"}
_STATUS = {"success": "ok", "error": "error", "pending": "unset"}
_PATCH_KEYS_MERGED = ("extra",)


class LangSmithLoader(PythonLoader):
    """LangSmith runs: webhook payloads, API run lists, SDK post/patch batches (`.json`)."""

    name = "langsmith"

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() != ".json":
            return False
        if b'"dotted_order"' in head and (b'"run_type"' in head or b'"trace_id"' in head):
            return True
        # automation webhooks: a long first run can push dotted_order past the head
        return b'"rule_id"' in head and b'"runs"' in head

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        doc, reject = load_document(path, ctx)
        if reject:
            yield reject
            return
        records, rejects = _records(doc)
        yield from rejects
        by_trace: dict[str, list[tuple[str, dict]]] = {}
        for where, rec in records:
            trace_id = normalize_id(rec.get("trace_id")) or _root_of(rec)
            if not trace_id or not _run_id(rec):
                yield Reject(location=where, reason="LangSmith run without an id or trace id", excerpt=excerpt(rec))
                continue
            by_trace.setdefault(trace_id, []).append((where, rec))
        for trace_id, recs in by_trace.items():
            yield _trace(trace_id, [r for _, r in recs])


def _records(doc: Any) -> tuple[list[tuple[str, dict]], list[Reject]]:
    """(location, run record) pairs, post/patch pairs already merged; what is not a run is rejected."""
    if isinstance(doc, dict) and ("post" in doc or "patch" in doc):
        return _merge_post_patch(doc.get("post") or [], doc.get("patch") or [])
    runs = doc.get("runs") if isinstance(doc, dict) and isinstance(doc.get("runs"), list) else doc
    if isinstance(runs, dict) and "run_type" in runs:
        runs = [runs]
    if not isinstance(runs, list):
        return [], [Reject(location="/", reason="no LangSmith runs here (expected {runs: [...]}, "
                           "{post: [...], patch: [...]} or a list of runs)", excerpt=excerpt(doc))]
    prefix = "/runs" if isinstance(doc, dict) else ""
    good = [(f"{prefix}/{i}", r) for i, r in enumerate(runs) if isinstance(r, dict)]
    bad = [Reject(location=f"{prefix}/{i}", reason="not a run record", excerpt=excerpt(r))
           for i, r in enumerate(runs) if not isinstance(r, dict)]
    return good, bad


def _merge_post_patch(posts: list, patches: list) -> tuple[list[tuple[str, dict]], list[Reject]]:
    """Each patch (RunUpdate) completes the post (RunCreate) of the same run; the JS SDK's patches carry no
    id, so the id is also read from the last segment of `dotted_order`."""
    merged: dict[str, tuple[str, dict]] = {}
    rejects = []
    for i, post in enumerate(posts):
        if isinstance(post, dict) and _run_id(post):
            merged[_run_id(post)] = (f"/post/{i}", dict(post))
        else:
            rejects.append(Reject(location=f"/post/{i}", reason="run create without an id", excerpt=excerpt(post)))
    for i, patch in enumerate(patches):
        run_id = _run_id(patch) if isinstance(patch, dict) else None
        if not run_id:
            rejects.append(Reject(location=f"/patch/{i}", reason="run update without an id or dotted_order",
                                  excerpt=excerpt(patch)))
            continue
        where, base = merged.get(run_id, (f"/patch/{i}", {}))
        for key, value in patch.items():
            if value is None and key in base:
                continue
            if key in _PATCH_KEYS_MERGED and isinstance(value, dict) and isinstance(base.get(key), dict):
                value = {**base[key], **value}
            base[key] = value
        merged[run_id] = (where, base)
    return list(merged.values()), rejects


def _segments(rec: dict) -> list[str]:
    """Run ids along `dotted_order` (`<time>Z<uuid>.<time>Z<uuid>...`), root first."""
    order = rec.get("dotted_order")
    if not isinstance(order, str):
        return []
    return [normalize_id(seg.split("Z", 1)[1]) for seg in order.split(".") if "Z" in seg]


def _run_id(rec: dict) -> str | None:
    segments = _segments(rec)
    return normalize_id(rec.get("id")) or (segments[-1] if segments else None)


def _root_of(rec: dict) -> str | None:
    segments = _segments(rec)
    return segments[0] if segments else None


def _parent(rec: dict) -> str | None:
    if rec.get("parent_run_id"):
        return normalize_id(rec["parent_run_id"])
    if rec.get("parent_run_ids"):
        return normalize_id(rec["parent_run_ids"][-1])
    segments = _segments(rec)
    return segments[-2] if len(segments) > 1 else None


def _trace(trace_id: str, recs: list[dict]) -> Trace:
    run_id = make_run_id("langsmith", trace_id)
    steps = [_step(run_id, i, rec) for i, rec in enumerate(recs)]
    root = next((r for r in recs if _run_id(r) == trace_id or r.get("is_root")), None)
    facts: dict[str, Any] = {}
    if root is not None:
        meta = (root.get("extra") or {}).get("metadata") or {}
        feedback = root.get("feedback_stats") or {}
        outcome, score = outcome_of_scores({k: (v.get("avg") if isinstance(v, dict) else v)
                                            for k, v in feedback.items()})
        root_step = next(s for s in steps if s.step_id == _run_id(root))
        facts = {
            "agent": root.get("name"), "agent_version": meta.get("revision_id"),
            "session_id": meta.get("thread_id") or meta.get("session_id") or meta.get("conversation_id"),
            "tags": [str(t) for t in root.get("tags") or []], "outcome": outcome, "outcome_score": score,
            "status": "error" if root_step.status == "error" else "ok" if root_step.status == "ok" else "unknown",
            "input": first_text(input_messages(root.get("inputs")), "user") or _plain(root.get("inputs")),
            "output": last_text(output_messages(root.get("outputs")), "assistant") or _plain(root.get("outputs")),
            "attributes": {k: v for k, v in (("langsmith.feedback_stats", feedback or None),
                                             ("langsmith.project", meta.get("LANGSMITH_PROJECT")
                                              or root.get("session_name"))) if v},
        }
    return Trace(run=run_facts("langsmith", trace_id, **facts), steps=steps)


def _plain(value: Any) -> str | None:
    """Text of a chain's single-field inputs/outputs ({"input": "..."}) when they hold no messages."""
    value = loads_lenient(value)
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    return value if isinstance(value, str) and value else None


def _status(rec: dict) -> str:
    if rec.get("error"):
        return "error"
    if rec.get("status") in _STATUS:
        return _STATUS[rec["status"]]
    return "ok" if rec.get("end_time") else "unset"


def _step(run_id: str, seq: int, rec: dict) -> Step:
    kind = _KINDS.get(str(rec.get("run_type")), "other")
    extra = rec.get("extra") if isinstance(rec.get("extra"), dict) else {}
    meta = extra.get("metadata") if isinstance(extra.get("metadata"), dict) else {}
    attrs: dict[str, Any] = {f"langsmith.{k}": rec[k] for k in ("run_type", "status", "session_id", "tags")
                             if rec.get(k)}
    attrs.update({k: v for k, v in meta.items() if not k.startswith("LANGSMITH_")})
    fields: dict[str, Any] = {"status": _status(rec), "error": as_text(rec.get("error")) or None}
    if kind == "llm":
        fields.update(_llm_fields(rec, extra, meta))
    elif kind == "tool":
        fields.update(_tool_fields(rec, attrs))
    else:
        for key in ("inputs", "outputs"):
            if rec.get(key):
                attrs[key] = rec[key]
    start = parse_ts(rec.get("start_time"))
    return Step(run_id=run_id, step_id=_run_id(rec), parent_step_id=_parent(rec), seq=seq, kind=kind,
                name=rec.get("name"), started_at=start, ended_at=parse_ts(rec.get("end_time")), attributes=attrs,
                **fields)


def _llm_fields(rec: dict, extra: dict, meta: dict) -> dict[str, Any]:
    params = extra.get("invocation_params") if isinstance(extra.get("invocation_params"), dict) else {}
    inputs = rec.get("inputs") if isinstance(rec.get("inputs"), dict) else {}
    outputs = rec.get("outputs") if isinstance(rec.get("outputs"), dict) else {}
    model = (params.get("model") or params.get("model_name") or meta.get("ls_model_name") or outputs.get("model")
             or inputs.get("model"))
    return {"model": model, "provider": meta.get("ls_provider"),
            "messages": input_messages(rec.get("inputs")) + output_messages(rec.get("outputs")),
            **_tokens(rec, outputs)}


def _tokens(rec: dict, outputs: dict) -> dict[str, Any]:
    """Tokens from the provider's usage in the outputs, else LangSmith's run-level counts.

    LangSmith writes prompt/completion/total_tokens = 0 when the model wrapper reported no usage (the
    infinite-loop export, a custom Bedrock wrapper): all-zero run-level counts mean "unknown", not zero.
    """
    usage = outputs.get("usage_metadata")
    if not isinstance(usage, dict):
        llm_output = outputs.get("llm_output") if isinstance(outputs.get("llm_output"), dict) else {}
        usage = outputs.get("usage") or llm_output.get("token_usage") or llm_output.get("usage") or {}
    if isinstance(usage, dict) and usage:
        details_in = usage.get("input_token_details") or usage.get("prompt_tokens_details") or {}
        details_out = usage.get("output_token_details") or usage.get("completion_tokens_details") or {}
        found = {
            "input_tokens": as_int(usage.get("input_tokens", usage.get("prompt_tokens"))),
            "output_tokens": as_int(usage.get("output_tokens", usage.get("completion_tokens"))),
            "cache_tokens": as_int(details_in.get("cache_read", details_in.get("cached_tokens"))),
            "reasoning_tokens": as_int(details_out.get("reasoning", details_out.get("reasoning_tokens"))),
        }
    elif as_int(rec.get("total_tokens")) or as_int(rec.get("prompt_tokens")) or as_int(rec.get("completion_tokens")):
        found = {"input_tokens": as_int(rec.get("prompt_tokens")),
                 "output_tokens": as_int(rec.get("completion_tokens"))}
    else:
        found = {}
    cost = rec.get("total_cost")
    try:
        cost = float(cost) if cost is not None and float(cost) > 0 else None
    except (TypeError, ValueError):
        cost = None
    if cost is not None:
        found.update(cost_usd=cost, cost_estimated=False)
    return found


def _tool_fields(rec: dict, attrs: dict) -> dict[str, Any]:
    inputs = rec.get("inputs")
    args = inputs.get("input") if isinstance(inputs, dict) and set(inputs) == {"input"} else inputs
    outputs = rec.get("outputs")
    output = outputs.get("output") if isinstance(outputs, dict) and "output" in outputs else outputs
    result = tool_output_text(output)
    fields: dict[str, Any] = {"tool_name": rec.get("name"), "tool_args": loads_lenient(args),
                              "tool_result": result}
    reported = _reported_failure(output, result)
    if reported and not rec.get("error"):
        attrs["workbench.status_note"] = ("LangSmith marked this tool run a success; its output reports a "
                                          "failure")
        fields.update(status="error", error=reported)
    return fields


def _reported_failure(output: Any, text: str | None) -> str | None:
    """The error a tool reported in its own output: a ToolMessage with status error, or a JSON object with
    `success: false` / `ok: false` and an error message."""
    if isinstance(output, dict) and output.get("status") == "error":
        return text or "tool reported status error"
    body = loads_lenient(text) if isinstance(text, str) else None
    if isinstance(body, dict) and (body.get("success") is False or body.get("ok") is False):
        message = body.get("error") or body.get("message") or body.get("detail")
        return as_text(message) or json.dumps(body)[:500]
    return None
