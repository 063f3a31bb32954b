"""A bespoke JSON / JSON-lines chat log, read through a small mapping file instead of code.

The mapping (TOML, see docs/generic-mapping.md and workbench/loaders/mapping.py) says which keys hold the
run id, the messages, the outcome and which values mean success, the timestamps, the agent and its version,
and the tool calls. It is found from `--mapping FILE` (`StageContext.options["mapping"]`), else from
`<stem>.workbench.toml` next to the data file, else `mapping.workbench.toml` in its folder; the loader
sniffs only files that have such a mapping next to them.

What lands, per run:

* a root `agent` step (`run`) spanning the run: its times (`[run].started_at` / `ended_at`, else the first
  and last message times) and its error (`[run].error`);
* per message: `user` / `system` and other roles -> a `message` step (`m<i>`); `assistant` -> an `llm` step
  with its model, tokens and reported cost; each tool call of an assistant message -> a `tool` step
  (`m<i>.<k>`) whose result is the tool message answering it (by call id, else the next tool message
  without one). A tool message nothing asked for becomes a tool step of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.loaders.base import PythonLoader, Trace, run_facts
from workbench.loaders.documents import iter_json_lines, read_document
from workbench.loaders.mapping import KeyPath, Mapping, MappingError, find_mapping, load_mapping
from workbench.loaders.parse import as_int, content_text, loads_lenient, parse_ts, tool_calls_of
from workbench.models import Message, Reject, Step, ToolCall

FORMAT = "generic"
_SUFFIXES = (".json", ".jsonl", ".ndjson")


class GenericLoader(PythonLoader):
    name = FORMAT

    def sniff(self, path: Path, head: bytes) -> bool:
        return path.suffix.lower() in _SUFFIXES and find_mapping(path) is not None

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        where = find_mapping(path, ctx.options)
        if where is None:
            yield Reject(location="file", reason="no mapping for the generic loader: pass --mapping FILE.toml, "
                         f"or put {path.stem}.workbench.toml next to the file (see docs/generic-mapping.md)")
            return
        try:
            mapping = load_mapping(where)
        except MappingError as exc:
            yield Reject(location=f"mapping {where.name}", reason=str(exc))
            return
        records = _records(path, ctx, mapping)
        if mapping.per == "run":
            for item in records:
                yield item if isinstance(item, Reject) else _one_run(mapping, *item)
        else:
            yield from _message_runs(mapping, records)


def _records(path: Path, ctx: StageContext, m: Mapping) -> Iterator[tuple[str, Any] | Reject]:
    """(location, record) for every record of the file, or a reject for what could not be read."""
    lines = m.format == "jsonl" or (m.format == "auto" and path.suffix.lower() in (".jsonl", ".ndjson"))
    if lines:
        for item in iter_json_lines(path, ctx.max_record_bytes):
            yield item if isinstance(item, Reject) else (f"line {item[0]}", item[1])
        return
    doc, reject = read_document(path, ctx.max_record_bytes)
    if reject:
        yield reject
        return
    found = m.records.get(doc) if m.records.segments else doc
    if found is None:
        yield Reject(location="file", reason=f"[source].records = '{m.records}' is not in the document")
        return
    prefix = "".join(f"/{s}" for s in m.records.segments)
    for i, record in enumerate(found if isinstance(found, list) else [found]):
        yield (f"{prefix}/{i}" if isinstance(found, list) else prefix or "/"), record


def _one_run(m: Mapping, location: str, record: Any) -> Trace | Reject:
    if not isinstance(record, dict):
        return Reject(location=location, excerpt=str(record)[:500],
                      reason=f"a record must be a JSON object, not {type(record).__name__}")
    messages = m.messages["path"].get(record)
    if not isinstance(messages, list):
        return Reject(location=location, excerpt=str(record)[:500],
                      reason=f"no message list at [messages].path = '{m.messages['path']}'")
    return _build(m, location, lambda path: path.get(record), messages)


def _message_runs(m: Mapping, records: Iterator[tuple[str, Any] | Reject]) -> Iterator[Trace | Reject]:
    """[source].per = "message": every record is a message; records sharing a run id form one run."""
    groups: dict[str, list[tuple[str, dict]]] = {}
    for item in records:
        if isinstance(item, Reject):
            yield item
            continue
        location, record = item
        run_id = m.run["id"].get(record) if isinstance(record, dict) else None
        if run_id is None or run_id == "":
            yield Reject(location=location, reason=f"no run id at [run].id = '{m.run['id']}'",
                         excerpt=str(record)[:500])
            continue
        groups.setdefault(str(run_id), []).append((location, record))
    for members in groups.values():
        def first(path: KeyPath, members=members) -> Any:
            return next((v for _, r in members if (v := path.get(r)) is not None), None)
        yield _build(m, members[0][0], first, [r for _, r in members])


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else content_text(value)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _build(m: Mapping, location: str, lookup: Callable[[KeyPath], Any], messages: list) -> Trace | Reject:
    """One run from its run-level values (`lookup` resolves a key path for the run) and its messages."""

    def value(key: str) -> Any:
        return lookup(m.run[key]) if key in m.run else None

    native = value("id")
    if native is None or native == "":
        return Reject(location=location, reason=f"no run id at [run].id = '{m.run['id']}'")
    error = _text(value("error"))
    score = value("score")
    tags = value("tags")
    run = run_facts(
        FORMAT, str(native), agent=_text(value("agent")), agent_version=_text(value("agent_version")),
        environment=_text(value("environment")), task_id=_text(value("task_id")),
        session_id=_text(value("session_id")), user_id=_text(value("user_id")),
        status="unknown" if "error" not in m.run else ("error" if error else "ok"),
        outcome=m.outcome_of(value("outcome")) if "outcome" in m.run else "unknown",
        outcome_score=_number(score),
        tags=[str(t) for t in (tags if isinstance(tags, list) else [tags])] if tags not in (None, "") else [],
        attributes={k: v for k in m.attributes if (v := lookup(KeyPath(tuple(k.split("."))))) is not None}
        | ({"mapping": m.source.name} if m.source else {}),
    )
    steps = _steps(m, run.run_id, messages)
    times = [t for s in steps for t in (s.started_at, s.ended_at) if t is not None]
    started = parse_ts(value("started_at")) or (min(times) if times else None)
    ended = parse_ts(value("ended_at")) or (max(times) if times else None)
    root = Step(run_id=run.run_id, step_id="run", seq=0, kind="agent", name=run.agent or "run",
                started_at=started, ended_at=ended, error=error,
                status="error" if error else "ok" if "error" in m.run else "unset")
    texts = [(s.messages[0].role, s.messages[0].content) for s in steps if s.messages and s.kind != "tool"]
    run = run.model_copy(update={
        "input": _text(value("input")) or next((c for r, c in texts if r == "user" and c), None),
        "output": _text(value("output"))
        or next((c for r, c in reversed(texts) if r == "assistant" and c), None),
    })
    return Trace(run=run, steps=[root, *steps])


def _steps(m: Mapping, run_id: str, messages: list) -> list[Step]:
    mp = m.messages
    rows = [(i, raw) for i, raw in enumerate(messages) if isinstance(raw, dict)]
    role = {i: m.role_of(mp["role"].get(raw)) for i, raw in rows}
    results = {i: raw for i, raw in rows if role[i] == "tool"}
    used: set[int] = set()
    steps: list[Step] = []

    def get(name: str, raw: dict) -> Any:
        return mp[name].get(raw) if name in mp else None

    for i, raw in rows:
        ts = parse_ts(get("timestamp", raw))
        text = _text(get("content", raw))
        base = {"run_id": run_id, "step_id": f"m{i}", "parent_step_id": "run", "seq": 2 * i + 1,
                "started_at": ts}
        if role[i] == "tool":
            if i not in used:
                name = _text(get("tool_result_name", raw)) or "tool"
                steps.append(Step(**base, kind="tool", name=name, tool_name=name, tool_result=text))
            continue
        if role[i] != "assistant":
            steps.append(Step(**base, kind="message", name=f"{role[i]} message",
                              messages=[Message(role=role[i], content=text)]))
            continue
        calls = _calls(m, raw)
        cost = _number(get("cost", raw))
        model = _text(get("model", raw))
        steps.append(Step(**base, kind="llm", name=model or "assistant", model=model,
                          messages=[Message(role="assistant", content=text, tool_calls=calls)],
                          input_tokens=as_int(get("input_tokens", raw)),
                          output_tokens=as_int(get("output_tokens", raw)),
                          cache_tokens=as_int(get("cache_tokens", raw)), cost_usd=cost,
                          cost_estimated=False if cost else None))
        for k, call in enumerate(calls):
            j = _result_for(call, i, results, used, lambda r: get("result_call_id", r))
            result = results.get(j) if j is not None else None
            steps.append(Step(run_id=run_id, step_id=f"m{i}.{k}", parent_step_id="run", seq=2 * i + 1,
                              started_at=ts, kind="tool", name=call.name, tool_name=call.name,
                              tool_args=call.arguments,
                              tool_result=_text(get("content", result)) if result else None,
                              ended_at=parse_ts(get("timestamp", result)) if result else None,
                              attributes={"call_id": call.id} if call.id else {}))
    return steps


def _calls(m: Mapping, raw: dict) -> list[ToolCall]:
    mp = m.messages
    if "tool_calls" not in mp:
        return []
    found = mp["tool_calls"].get(raw)
    items = found if isinstance(found, list) else [found] if isinstance(found, dict) else []
    if not any(k in mp for k in ("tool_name", "tool_arguments", "tool_call_id")):
        return tool_calls_of(items)  # OpenAI {id, function: {name, arguments}} or flat {name, arguments}
    calls = []
    for item in items:
        if not isinstance(item, dict):
            continue
        name = _text(mp["tool_name"].get(item)) if "tool_name" in mp else item.get("name")
        if not name:
            continue
        args = mp["tool_arguments"].get(item) if "tool_arguments" in mp else item.get("arguments")
        call_id = mp["tool_call_id"].get(item) if "tool_call_id" in mp else item.get("id")
        calls.append(ToolCall(id=None if call_id is None else str(call_id), name=name,
                              arguments=loads_lenient(args)))
    return calls


def _result_for(call: ToolCall, i: int, results: dict[int, dict], used: set[int],
                result_id: Callable[[dict], Any]) -> int | None:
    """The tool message answering a call: the one with its id, else the next one after it without an id."""
    if call.id is not None:
        for j, raw in results.items():
            if j not in used and str(result_id(raw)) == call.id:
                used.add(j)
                return j
    for j, raw in results.items():
        if j > i and j not in used and result_id(raw) is None:
            used.add(j)
            return j
    return None
