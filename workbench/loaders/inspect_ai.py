"""Inspect AI eval logs: `.json` (one EvalLog document) and `.eval` (a zip of header.json + samples/*.json).

Each sample (x epoch) is a run; its native id is the eval id (or, in logs older than eval ids, the run id
and task id) plus sample id and epoch, so the same log written as `.json` and as `.eval` lands once.
Model events become `llm` steps (input and output messages, per-call usage) and tool events `tool` steps;
a sample without events falls back to its message list. Large strings stored once under `attachments`
(`attachment://<hash>`; `tc://<hash>` under `transcript.content` in older logs) are resolved back into
the text. The primary score (first scorer of the log) gives the outcome: C / correct / 1 / true =
success; I / N (no answer) / P (partial) / 0 / false = failure; anything else unknown.

Broken archives, unsafe zips (see `safezip`), unsupported log versions and samples of an unexpected shape
are rejected with a reason; the rest of the file still loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.loaders.base import PythonLoader, Trace, run_facts
from workbench.loaders.documents import guarded, parse_document, read_document
from workbench.loaders.parse import as_int, content_text, loads_lenient, message_of, parse_ts
from workbench.loaders.safezip import ArchiveError, open_checked, read_member
from workbench.loaders.transcript import chat_steps
from workbench.models import Message, Reject, Run, Step

NAME = "inspect"
SUPPORTED_VERSIONS = (1, 2)
MAX_LOG_BYTES = 1024 ** 3
"""A `.json` log holds the whole eval (every sample), so it may be far larger than one record; `.eval`
members, one sample each, keep the ingest's per-record limit."""
_JSON_HEAD = re.compile(rb'^\s*\{\s*"version"\s*:\s*\d+\s*,\s*"status"\s*:')
_REF = ("attachment://", "tc://")
_SUCCESS = {"C": 1.0, "CORRECT": 1.0, "YES": 1.0, "TRUE": 1.0}
_FAILURE = {"I": 0.0, "INCORRECT": 0.0, "N": 0.0, "NO": 0.0, "FALSE": 0.0, "P": 0.5, "PARTIAL": 0.5}


class InspectLoader(PythonLoader):
    name = NAME

    def sniff(self, path: Path, head: bytes) -> bool:
        suffix = path.suffix.lower()
        if suffix == ".eval":
            return head.startswith(b"PK\x03\x04")
        # EvalLog documents open with version then status (pydantic field order), then the eval spec
        return suffix == ".json" and bool(_JSON_HEAD.match(head)) and b'"eval"' in head and b'"run_id"' in head

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        if path.suffix.lower() == ".eval":
            yield from _read_eval(path, ctx)
            return
        got = _json_log(path)
        if isinstance(got, Reject):
            yield got
            return
        doc, samples = got
        yield from _log(doc, ((f"/samples/{i}", s) for i, s in enumerate(samples)), len(samples))


def _json_log(path: Path) -> tuple[dict, list] | Reject:
    doc, reject = read_document(path, MAX_LOG_BYTES)
    if reject:
        return reject
    if not isinstance(doc, dict):
        return Reject(location="file", reason=f"not an Inspect eval log: expected a JSON object, found "
                                              f"{type(doc).__name__}")
    samples = doc.get("samples") or []
    if not isinstance(samples, list):
        return Reject(location="/samples", reason="samples is not a list")
    return doc, samples


def _read_eval(path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
    try:
        zf = open_checked(path)
    except ArchiveError as exc:
        yield Reject(location="file", reason=str(exc))
        return
    with zf:
        names = set(zf.namelist())
        # a log still being written has only its journal's start record
        head_name = next((n for n in ("header.json", "_journal/start.json") if n in names), None)
        if head_name is None:
            yield Reject(location="file", reason="not an Inspect .eval log: no header.json or _journal/start.json")
            return
        header = _member_json(zf, head_name, ctx)
        if isinstance(header, Reject):
            yield header
            return
        members = sorted(n for n in names if n.startswith("samples/") and n.endswith(".json"))
        samples = ((name, _member_json(zf, name, ctx)) for name in members)
        yield from _log(header, samples, len(members))


def _member_json(zf, name: str, ctx: StageContext) -> Any | Reject:
    try:
        data = read_member(zf, name, ctx.max_record_bytes)
    except ArchiveError as exc:
        return Reject(location=name, reason=str(exc))
    doc, reject = parse_document(data, name)
    return reject or doc


def _log(header: Any, samples: Iterator[tuple[str, Any]], n_samples: int) -> Iterator[Trace | Reject]:
    version = header.get("version") if isinstance(header, dict) else None
    if not isinstance(version, int) or version not in SUPPORTED_VERSIONS:
        yield Reject(location="file", reason=f"EvalLog version {version!r} is not supported "
                                             f"(known: {', '.join(map(str, SUPPORTED_VERSIONS))})")
        return
    spec = header.get("eval")
    if not isinstance(spec, dict) or not spec.get("run_id"):
        yield Reject(location="/eval", reason="eval spec missing or without run_id: not an Inspect EvalLog")
        return
    if n_samples == 0:
        yield Reject(location="/samples", reason=f"log holds no samples (status {header.get('status')!r}): "
                                                 "nothing to import")
        return
    results = header.get("results") if isinstance(header.get("results"), dict) else {}
    scorers = results.get("scores") if isinstance(results.get("scores"), list) else []
    primary = scorers[0].get("name") if scorers and isinstance(scorers[0], dict) else None
    context = {"spec": spec, "status": header.get("status"), "version": version,
               "primary": primary if isinstance(primary, str) else None}
    for location, sample in samples:
        if isinstance(sample, Reject):
            yield sample
        else:
            yield guarded(location, _summary(sample), lambda s=sample: _sample(s, context))


def _summary(sample: Any) -> Any:
    """What a reject's excerpt shows of a sample: its keys without the bulky transcript."""
    if not isinstance(sample, dict):
        return sample
    return {k: v for k, v in sample.items() if k not in ("messages", "events", "attachments", "transcript")}


def _resolver(sample: dict):
    refs: dict[str, Any] = {}
    transcript = sample.get("transcript")
    if isinstance(transcript, dict) and isinstance(transcript.get("content"), dict):
        refs.update(transcript["content"])
    if isinstance(sample.get("attachments"), dict):
        refs.update(sample["attachments"])

    def resolve(value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith(_REF):
                return refs.get(value.split("://", 1)[1], value)
            return value
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    return resolve


def _sample(sample: dict, context: dict) -> Trace:
    if not isinstance(sample, dict) or sample.get("id") is None:
        raise ValueError("sample without an id")
    spec = context["spec"]
    r = _resolver(sample)
    sid, epoch = str(sample["id"]), sample.get("epoch", 1)
    key = spec.get("eval_id") or f"{spec['run_id']}:{spec.get('task_id')}"
    scores = r(sample.get("scores") or ({"score": sample["score"]} if sample.get("score") else {}))
    outcome, score = _outcome(scores, context["primary"])
    error = sample.get("error")
    attrs = {
        "eval_id": spec.get("eval_id"), "eval_run_id": spec["run_id"], "inspect_task_id": spec.get("task_id"),
        "log_status": context["status"], "log_version": context["version"], "sample_id": sample["id"],
        "epoch": epoch, "sample_uuid": sample.get("uuid"), "target": r(sample.get("target")), "scores": scores,
        "metadata": sample.get("metadata"), "model_usage": sample.get("model_usage"),
        "total_time": sample.get("total_time"), "working_time": sample.get("working_time"),
        "limit": sample.get("limit"), "sample_error": error,
    }
    run = run_facts(
        NAME, f"{key}/{sid}/{epoch}", agent=spec.get("task"), agent_version=spec.get("model"),
        task_id=f"{spec.get('task')}/{sid}", status="error" if error else "ok", outcome=outcome,
        outcome_score=score, input=_text(r(sample.get("input"))), output=_output_text(r(sample.get("output"))),
        attributes={k: v for k, v in attrs.items() if v not in (None, {}, [])},
    )
    events = sample.get("events")
    if not isinstance(events, list):
        events = (sample.get("transcript") or {}).get("events") or []
    steps = _event_steps(run, events, r)
    if not steps:
        steps = _message_steps(run, sample, r, spec.get("model"))
    if error:
        message = error.get("message") if isinstance(error, dict) else str(error)
        steps.append(Step(run_id=run.run_id, step_id="sample-error", seq=len(steps), kind="event",
                          name="sample error", status="error", error=str(message)[:2000]))
    return Trace(run=run, steps=steps)


def score_outcome(value: Any) -> tuple[str, float | None]:
    """(outcome, score) of one Inspect score value: "C"/"I"/"P"/"N", numbers, booleans; else unknown."""
    if isinstance(value, bool):
        return ("success", 1.0) if value else ("failure", 0.0)
    if isinstance(value, int | float):
        v = float(value)
        return ("success" if v == 1.0 else "failure" if 0.0 <= v < 1.0 else "unknown"), v
    if isinstance(value, str):
        word = value.strip().upper()
        if word in _SUCCESS:
            return "success", _SUCCESS[word]
        if word in _FAILURE:
            return "failure", _FAILURE[word]
        try:
            return score_outcome(float(word))
        except ValueError:
            return "unknown", None
    return "unknown", None


def _outcome(scores: Any, primary: str | None) -> tuple[str, float | None]:
    if not isinstance(scores, dict) or not scores:
        return "unknown", None
    chosen = scores.get(primary) if primary in scores else next(iter(scores.values()))
    return score_outcome(chosen.get("value") if isinstance(chosen, dict) else chosen)


def _text(value: Any) -> str | None:
    """Sample input: a string, or a list of chat messages whose contents are joined."""
    if isinstance(value, list):
        return "\n".join(t for t in (content_text(m.get("content") if isinstance(m, dict) else m)
                                     for m in value) if t) or None
    return content_text(value)


def _output_text(output: Any) -> str | None:
    if not isinstance(output, dict):
        return None
    if isinstance(output.get("completion"), str) and output["completion"]:
        return output["completion"]
    choices = output.get("choices") or []
    return content_text(choices[0].get("message", {}).get("content")) if choices else None


def _message(raw: Any) -> Message | None:
    """An Inspect chat message: tool calls name their tool in `function` (a string) with dict arguments."""
    if not isinstance(raw, dict):
        return None
    calls = [{**c, "name": c["function"]} if isinstance(c, dict) and isinstance(c.get("function"), str) else c
             for c in raw.get("tool_calls") or []]
    return message_of({**raw, "tool_calls": calls})


def _event_steps(run: Run, events: list, r) -> list[Step]:
    # spans (solver, scorer, tool ...) tell a scorer's grading call from the agent's own calls
    spans = {ev.get("id"): ev for ev in events if isinstance(ev, dict) and ev.get("event") == "span_begin"}
    steps: list[Step] = []
    for i, ev in enumerate(events):
        if not isinstance(ev, dict) or ev.get("event") not in ("model", "tool"):
            continue
        started, ended = parse_ts(ev.get("timestamp")), parse_ts(ev.get("completed"))
        base = {"run_id": run.run_id, "step_id": str(ev.get("uuid") or f"event-{i}"), "seq": len(steps),
                "started_at": started, "ended_at": ended,
                "duration_ms": None if ended else _ms(ev.get("working_time"))}
        step = _model_step(base, ev, r) if ev["event"] == "model" else _tool_step(base, ev, r)
        span = spans.get(ev.get("span_id")) or {}
        if span:
            step = step.model_copy(update={"attributes": {**step.attributes, "inspect.span": span.get("name"),
                                                          "inspect.span_type": span.get("type")}})
        steps.append(step)
    return steps


def _ms(seconds: Any) -> float | None:
    return float(seconds) * 1000 if isinstance(seconds, int | float) else None


def _tokens(usage: Any) -> dict[str, int | None]:
    """Step token columns from an Inspect ModelUsage."""
    if not isinstance(usage, dict):
        return {}
    inp, outp, total = (as_int(usage.get(k)) for k in ("input_tokens", "output_tokens", "total_tokens"))
    # Anthropic's input_tokens leave out the cache reads and writes that total_tokens counts; the store's
    # input tokens include cached ones (the cost estimate subtracts them), so take them from the total
    if total is not None and inp is not None and outp is not None and total > inp + outp:
        inp = total - outp
    return {"input_tokens": inp, "output_tokens": outp, "cache_tokens": as_int(usage.get("input_tokens_cache_read")),
            "reasoning_tokens": as_int(usage.get("reasoning_tokens"))}


def _model_step(base: dict, ev: dict, r) -> Step:
    out = ev.get("output") if isinstance(ev.get("output"), dict) else {}
    usage = out.get("usage")
    choices = out.get("choices") or []
    raw_msgs = list(r(ev.get("input") or [])) + [c.get("message") for c in r(choices) if isinstance(c, dict)]
    messages = [m for m in map(_message, raw_msgs) if m is not None]
    model = ev.get("model")
    error = ev.get("error") or out.get("error")
    attrs = {"response_model": out.get("model"), "span_id": ev.get("span_id"),
             "stop_reason": choices[0].get("stop_reason") if choices and isinstance(choices[0], dict) else None}
    return Step(**base, kind="llm", name=model, model=model,
                provider=model.split("/", 1)[0] if isinstance(model, str) and "/" in model else None,
                status="error" if error else "ok", error=str(error) if error else None, messages=messages,
                **_tokens(usage), attributes={k: v for k, v in attrs.items() if v is not None})


def _tool_step(base: dict, ev: dict, r) -> Step:
    error = ev.get("error")
    message = (error.get("message") or error.get("type")) if isinstance(error, dict) else error
    attrs = {"tool_call_id": ev.get("id"), "span_id": ev.get("span_id")}
    return Step(**base, kind="tool", name=ev.get("function"), tool_name=ev.get("function"),
                tool_args=loads_lenient(r(ev.get("arguments"))), tool_result=content_text(r(ev.get("result"))),
                status="error" if error else "ok", error=str(message) if error else None,
                attributes={k: v for k, v in attrs.items() if v is not None})


def _message_steps(run: Run, sample: dict, r, model: str | None) -> list[Step]:
    """No model or tool events (older or trimmed logs): one step per message; usage on the last llm step."""

    def tool_error(raw: dict, msg: Message) -> str | None:
        err = raw.get("error")
        return (err.get("message") or str(err)) if isinstance(err, dict) else (str(err) if err else None)

    steps = chat_steps(run, r(sample.get("messages") or []), model=model, convert=_message,
                       tool_error=tool_error)
    # the whole sample's usage when one model did all the calls, else the final generation's
    per_model = sample.get("model_usage") if isinstance(sample.get("model_usage"), dict) else {}
    output = sample.get("output") if isinstance(sample.get("output"), dict) else {}
    usage, note = ((next(iter(per_model.values())), "usage of the whole sample") if len(per_model) == 1
                   else (output.get("usage"), "usage of the final generation"))
    last = max((i for i, s in enumerate(steps) if s.kind == "llm"), default=None)
    if isinstance(usage, dict) and last is not None:
        steps[last] = steps[last].model_copy(update={**_tokens(usage), "attributes": {
            **steps[last].attributes, "workbench.usage_note": f"{note}: the log kept no per-call events"}})
    return steps
