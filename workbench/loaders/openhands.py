"""OpenHands event-stream trajectories (a JSON list of events): one file is one run.

Each event is an action or an observation: ``{id, timestamp, source: user|agent|environment, message,
action|observation, args|extras, content, cause, success?, tool_call_metadata?, llm_metrics?}``.

How events become steps (under a root `agent` step, `run`, spanning the first to the last event):

* An **llm step** (`llm:<response id>`) per distinct model response named in `tool_call_metadata`: the
  assistant message with its tool calls, the model, and tokens from the response's `usage`. A response that
  asked for several tools is one llm step (the metadata repeats on every action and observation it caused).
* A **tool step** (the action's event id) per agent action (`run`, `edit`, `read`, `browse`, `finish` ...),
  child of its llm step: `tool_name` is the function the model called (`execute_bash`, `str_replace_editor`,
  `finish`) or the action type, `tool_args` the call's parsed arguments (the event's `args` when there was
  no call), and `tool_result` the content of the observation whose `cause` is the action's id. Status comes
  from the observation (`error` observations and ``success: false`` are errors); it ends when it arrived.
* A **message step** per chat message (`user`, `system`, and `assistant` when a recorded response produced
  it). An agent message with no `tool_call_metadata` is the model's plain answer: an llm step without usage.
* An **event step** for what the environment reports (`agent_state_changed`, `change_agent_state`) and for
  observations no action in the file caused (an `error` observation is an error step).
  ``null`` observations ("No observation") that only acknowledge an action are dropped.

Usage: `usage` of the raw response gives tokens (prompt, completion, cached reads, reasoning). Where events
carry `llm_metrics` (accumulated per conversation), a response's tokens come from its `token_usages` entry
when the raw usage is missing, and its cost is the increase of `accumulated_cost` (reported, so
`cost_estimated` false); otherwise the cost is estimated from the price table.

Run facts: `input` is the first user message, `output` the finish action's thought or message. `status` is
`error` when the agent's last state is `error`, `ok` when it finished or waits for the user, else unknown.
There is no success label in these files: `outcome` stays `unknown`. The native id is
``<file stem>@<first timestamp>``: the file holds no conversation id, and the stem alone repeats across
folders (every OpenHands test directory has a `basic.json`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.loaders.base import PythonLoader, Trace, run_facts
from workbench.loaders.documents import read_document
from workbench.loaders.parse import as_int, content_text, loads_lenient, message_of, parse_ts
from workbench.models import Message, Reject, Step

FORMAT = "openhands"
_SOURCE = re.compile(rb'"source"\s*:\s*"(agent|user|environment)"')
_KIND = re.compile(rb'"(action|observation)"\s*:\s*"')
_OK_STATES = {"finished", "awaiting_user_input"}
_ERROR_STATES = {"error", "rate_limited"}
_ENVIRONMENT_ACTIONS = {"change_agent_state"}


class OpenHandsLoader(PythonLoader):
    name = FORMAT

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() != ".json" or not head.lstrip().startswith(b"["):
            return False
        return bool(_SOURCE.search(head) and _KIND.search(head) and b'"timestamp"' in head)

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        doc, reject = read_document(path, ctx.max_record_bytes)
        if reject:
            yield reject
            return
        if not isinstance(doc, list):
            yield Reject(location="file", reason="not an OpenHands event stream: expected a JSON list of "
                         f"events, found {type(doc).__name__}")
            return
        events = []
        for i, item in enumerate(doc):
            if isinstance(item, dict) and ("action" in item or "observation" in item) and "id" in item:
                events.append(item)
            else:
                yield Reject(location=f"/{i}", reason="not an OpenHands event (no id, action or observation)",
                             excerpt=str(item)[:500])
        if events:
            yield _trace(path, events)


def _trace(path: Path, events: list[dict]) -> Trace:
    first_ts = next((e["timestamp"] for e in events if e.get("timestamp")), None)
    native = f"{path.stem}@{first_ts}" if first_ts else path.stem
    run_id = run_facts(FORMAT, native).run_id
    builder = _Builder(run_id, events)
    steps = builder.steps()
    state = builder.last_state
    finished = any(e.get("action") == "finish" for e in events)
    status = "error" if state in _ERROR_STATES else "ok" if state in _OK_STATES or finished else "unknown"
    attrs = {k: v for k, v in {"last_agent_state": state, "models": sorted(builder.models) or None,
                               "file": path.name}.items() if v is not None}
    run = run_facts(FORMAT, native, agent="openhands", status=status, input=builder.task,
                    output=builder.final_output, attributes=attrs)
    times = [t for s in steps for t in (s.started_at, s.ended_at) if t is not None]
    root = Step(run_id=run_id, step_id="run", seq=0, kind="agent", name="openhands",
                started_at=min(times, default=None), ended_at=max(times, default=None),
                status={"ok": "ok", "error": "error"}.get(status, "unset"),
                # the run's first error is what went wrong, if a step says so; else the final state
                error=None if status != "error" or any(s.error for s in steps) else f"agent state: {state}")
    return Trace(run=run, steps=[root, *steps])


class _Builder:
    """Walks the events once, pairing observations with the actions that caused them."""

    def __init__(self, run_id: str, events: list[dict]):
        self.run_id = run_id
        self.events = events
        actions = {str(e["id"]): e for e in events if "action" in e}
        self.result_of: dict[str, dict] = {}
        for e in events:
            cause = e.get("cause")
            if "observation" in e and cause is not None and str(cause) in actions:
                self.result_of.setdefault(str(cause), e)
        self.paired = {id(e) for e in self.result_of.values()}
        self.llm_steps: dict[str, Step] = {}
        self.models: set[str] = set()
        self.last_state: str | None = None
        self.task: str | None = None
        self.final_output: str | None = None
        self._last_cost = 0.0
        self._token_usages = _token_usages(events)

    def steps(self) -> list[Step]:
        out: list[Step] = []
        for i, e in enumerate(self.events):
            # seq only breaks ties of equal timestamps (the merge numbers by time): file order, llm first
            step = self._action(e, 2 * i + 1) if "action" in e else self._observation(e, 2 * i + 1)
            if step is not None:
                out.append(step)
        return list(self.llm_steps.values()) + out

    # -- actions ---------------------------------------------------------------------------------------
    def _action(self, e: dict, seq: int) -> Step | None:
        kind, args = e["action"], _dict(e.get("args"))
        parent = self._llm_step(e, seq - 1)
        base = {"run_id": self.run_id, "step_id": str(e["id"]), "parent_step_id": parent or "run", "seq": seq,
                "started_at": parse_ts(e.get("timestamp"))}
        if kind in ("message", "system"):
            role = "system" if kind == "system" else {"agent": "assistant"}.get(e.get("source"), "user")
            text = content_text(args.get("content")) or e.get("message") or None
            if role == "user" and self.task is None:
                self.task = text
            if role == "assistant":
                self.final_output = text or self.final_output
            # an agent message no recorded response produced is itself the model's answer (usage unknown)
            answer = role == "assistant" and parent is None  # (parent: the llm step that produced it)
            return Step(**base, kind="llm" if answer else "message", name=f"{role} message",
                        messages=[Message(role=role, content=text)], status="ok")
        if kind in _ENVIRONMENT_ACTIONS or e.get("source") == "environment":
            return Step(**base, kind="event", name=kind, attributes={"args": args} if args else {})
        return self._tool_step(e, base, kind, args)

    def _tool_step(self, e: dict, base: dict, kind: str, args: dict) -> Step:
        meta = _dict(e.get("tool_call_metadata"))
        call = _tool_call(meta)
        tool_args = call.get("arguments") if call else {k: v for k, v in args.items() if k != "thought"}
        obs = self.result_of.get(str(e["id"]))
        status, error, result, ended = "unset", None, None, None
        attrs: dict[str, Any] = {"action": kind}
        if not call and args.get("thought"):
            attrs["thought"] = args["thought"]
        if obs is not None:
            extras = _dict(obs.get("extras"))
            result = content_text(obs.get("content")) or obs.get("message") or None
            ended = parse_ts(obs.get("timestamp"))
            attrs.update(observation=obs.get("observation"), observation_id=str(obs.get("id")))
            exit_code = _dict(extras.get("metadata")).get("exit_code")
            if exit_code is not None:
                attrs["exit_code"] = exit_code
            failed = obs.get("observation") == "error" or obs.get("success") is False
            status = "error" if failed else "ok"
            error = (obs.get("message") or result) if failed else None
        if kind == "finish":
            self.final_output = (content_text(args.get("final_thought")) or content_text(args.get("thought"))
                                 or e.get("message") or self.final_output)
        name = meta.get("function_name") or kind
        return Step(**base, kind="tool", name=name, tool_name=name, tool_args=tool_args, tool_result=result,
                    ended_at=ended, status=status, error=error, attributes=attrs)

    def _llm_step(self, e: dict, seq: int) -> str | None:
        """The id of the llm step for the response that produced this action (created on first sight)."""
        meta = _dict(e.get("tool_call_metadata"))
        response = _dict(meta.get("model_response"))
        if not response:
            return None
        response_id = str(response.get("id") or f"{e['id']}")
        step_id = f"llm:{response_id}"
        if step_id in self.llm_steps:
            return step_id
        choices = response.get("choices") or [{}]
        message = message_of(_dict(choices[0]).get("message")) if isinstance(choices, list) else None
        model = response.get("model")
        if model:
            self.models.add(str(model))
        usage = _usage(_dict(response.get("usage"))) or dict(self._token_usages.get(response_id, {}))
        cost = self._cost_delta(e)
        attrs = {k: v for k, v in {
            "finish_reason": _dict(choices[0]).get("finish_reason") if isinstance(choices, list) else None,
            "cache_write_tokens": usage.pop("cache_write_tokens", None),
            "calls_in_response": as_int(meta.get("total_calls_in_response"))}.items() if v is not None}
        self.llm_steps[step_id] = Step(
            run_id=self.run_id, step_id=step_id, parent_step_id="run", seq=seq,
            kind="llm", name=str(model or "llm"), model=model, started_at=parse_ts(e.get("timestamp")),
            messages=[message] if message else [], status="ok", **usage,
            cost_usd=cost, cost_estimated=False if cost else None, attributes=attrs)
        return step_id

    def _cost_delta(self, e: dict) -> float | None:
        metrics = _dict(e.get("llm_metrics"))
        total = metrics.get("accumulated_cost")
        if not isinstance(total, int | float):
            return None
        delta, self._last_cost = float(total) - self._last_cost, float(total)
        return delta if delta > 0 else None

    # -- observations ----------------------------------------------------------------------------------
    def _observation(self, e: dict, seq: int) -> Step | None:
        if id(e) in self.paired:
            return None
        kind, extras = e["observation"], _dict(e.get("extras"))
        base = {"run_id": self.run_id, "step_id": str(e["id"]), "parent_step_id": "run", "seq": seq,
                "started_at": parse_ts(e.get("timestamp")), "kind": "event"}
        if kind == "agent_state_changed":
            self.last_state = str(extras.get("agent_state") or "") or self.last_state
            return Step(**base, name=f"agent state: {self.last_state}", attributes={"extras": extras})
        if kind in ("null", None):
            return None
        text = content_text(e.get("content")) or e.get("message") or None
        failed = kind == "error"
        return Step(**base, name=str(kind), status="error" if failed else "unset",
                    error=text if failed else None, tool_result=text,
                    attributes={"extras": extras} if extras else {})


def _dict(value: Any) -> dict:
    value = loads_lenient(value)
    return value if isinstance(value, dict) else {}


def _tool_call(meta: dict) -> dict | None:
    """The call (name, parsed arguments) in the raw response that matches the metadata's tool_call_id."""
    response = _dict(meta.get("model_response"))
    choices = response.get("choices")
    if not meta.get("tool_call_id") or not isinstance(choices, list) or not choices:
        return None
    message = message_of(_dict(choices[0]).get("message"))
    for call in message.tool_calls if message else []:
        if call.id == meta["tool_call_id"]:
            return {"name": call.name, "arguments": call.arguments}
    return None


def _usage(usage: dict) -> dict[str, Any]:
    """Token fields from an OpenAI/LiteLLM usage block (Anthropic cache counts included)."""
    if not usage:
        return {}
    prompt_details = _dict(usage.get("prompt_tokens_details"))
    completion_details = _dict(usage.get("completion_tokens_details"))
    cached = as_int(usage.get("cache_read_input_tokens"))
    return {
        "input_tokens": as_int(usage.get("prompt_tokens")),
        "output_tokens": as_int(usage.get("completion_tokens")),
        "cache_tokens": cached if cached is not None else as_int(prompt_details.get("cached_tokens")),
        "reasoning_tokens": as_int(completion_details.get("reasoning_tokens")),
        "cache_write_tokens": as_int(usage.get("cache_creation_input_tokens")),
    }


def _token_usages(events: list[dict]) -> dict[str, dict[str, Any]]:
    """Per-response tokens from `llm_metrics.token_usages` (OpenHands' own accounting), by response id."""
    found: dict[str, dict[str, Any]] = {}
    for e in events:
        for u in _dict(e.get("llm_metrics")).get("token_usages") or []:
            if isinstance(u, dict) and u.get("response_id"):
                found[str(u["response_id"])] = {
                    "input_tokens": as_int(u.get("prompt_tokens")),
                    "output_tokens": as_int(u.get("completion_tokens")),
                    "cache_tokens": as_int(u.get("cache_read_tokens")),
                    "cache_write_tokens": as_int(u.get("cache_write_tokens")),
                }
    return found
