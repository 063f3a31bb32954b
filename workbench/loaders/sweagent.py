"""SWE-agent trajectories (`.traj`): one file is one run, every generation of the schema.

What the generations hold, and how it lands:

* v0.7 and 1.x: ``{environment, trajectory: [{action, observation, response, thought, state, execution_time?,
  query?, messages?, tool_calls?}], history: [chat messages], info: {exit_status, submission, model_stats},
  replay_config?}``. Each trajectory entry gives an **llm step** (`<i>.llm`: the response, with the chat
  messages new to that turn from `history`) and a **tool step** (`<i>.tool`: the action and its observation),
  both under a root `agent` step (`run`) that carries the exit status. The files hold no clock times: steps
  keep file order, tool steps their `execution_time`, and the run's duration stays unknown.
* Function calling: the assistant turns in `history` carry `tool_calls`; the tool step then takes the
  function's name and parsed arguments (`bash`, `edit` ...) instead of parsing the command line.
* History only (e.g. ``function_calling_simple.traj``): the assistant turns of `history` are the entries and
  the tool messages answering them the observations.

Tool steps without a function call are named by the command's first word (`open`, `edit`, `python`) and their
arguments are the shell words after it, ``{"args": [...]}``, plus ``"body"`` for the multi-line text of a
``...\\nend_of_edit`` block.

Usage: `info.model_stats` holds the run's totals (tokens_sent, tokens_received, instance_cost, api_calls), not
per call. Run totals are summed from steps, so the totals go on the run's **last llm step**, marked with the
attribute ``swe_agent.usage_scope = "run"``; no per-call figures are invented. An entry that carries its own
`model_stats` is used per step instead. A reported cost is kept as reported (`cost_estimated` false); zero
tokens with zero cost (replayed demonstrations) mean "not recorded" and stay empty.

Model: `replay_config.agent.model.name`, else the first part of a run folder named by SWE-agent's convention
``<model>__<data>__<config>__t-..__p-..__c-..`` (`gpt4`; `human_thought` and `replay` for demonstrations).

Outcome: the file says whether the agent *submitted*, not whether the patch resolved the issue (that lives in
separate SWE-bench reports). `exit_status` therefore sets `status` (and is kept in the run's attributes) while
`outcome` stays `unknown`, unless the file carries a boolean `resolved` (top level or in `info`).

Run identity: the native id is ``<run folder>/<instance id>``; the instance id comes from
`replay_config.problem_statement.id`, else the file name. SWE-agent writes
``trajectories/<user>/<run name>/<instance>.traj``, and the same instance is often solved in several runs (two
of the real demonstration files share ``marshmallow-code__marshmallow-1867``), so the run folder is part of
it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.loaders.base import PythonLoader, Trace, run_facts
from workbench.loaders.documents import iter_json_lines, read_document
from workbench.loaders.parse import as_int, content_text, loads_lenient, message_of, tool_calls_of
from workbench.models import Message, Reject, Step, ToolCall

FORMAT = "swe-agent"
_EDIT_END = "end_of_edit"
# run folders are named <model>__<data>__<config>__t-<temp>__p-<top_p>__c-<cost limit>__install-<n>
_RUN_NAME = re.compile(r"^(?P<model>.+?)__.+__t-[\d.]+__p-[\d.]+__c-[\d.]+")


class SweAgentLoader(PythonLoader):
    name = FORMAT

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() == ".traj":
            return True
        # SWE-agent's predictions file sits next to the trajectories: claim it to say clearly what it is
        return path.name in ("all_preds.jsonl", "preds.json") and b'"model_patch"' in head

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        if path.suffix.lower() != ".traj" and path.name in ("all_preds.jsonl", "preds.json"):
            yield _predictions_reject(path, ctx)
            return
        doc, reject = read_document(path, ctx.max_record_bytes)
        if reject:
            yield reject
            return
        if not isinstance(doc, dict) or not (_list(doc.get("trajectory")) or _list(doc.get("history"))):
            found = ", ".join(sorted(doc)[:8]) if isinstance(doc, dict) else type(doc).__name__
            yield Reject(location="file", reason="not a SWE-agent trajectory: expected an object with a "
                         f"non-empty `trajectory` or `history` list; found {found or 'an empty object'}")
            return
        yield _trace(path, doc)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict:
    value = loads_lenient(value)
    return value if isinstance(value, dict) else {}


def _predictions_reject(path: Path, ctx: StageContext) -> Reject:
    n = sum(1 for item in iter_json_lines(path, ctx.max_record_bytes) if not isinstance(item, Reject))
    return Reject(location="file", reason=(
        f"SWE-agent predictions file ({n} record(s) of instance_id + model_patch), not a trajectory: nothing "
        "to import (each patch is also in its .traj as info.submission; resolution is in SWE-bench reports)"))


def _trace(path: Path, doc: dict) -> Trace:
    info = _dict(doc.get("info"))
    replay = _dict(doc.get("replay_config"))
    problem = _dict(replay.get("problem_statement"))
    instance = str(problem.get("id") or doc.get("instance_id") or path.stem)
    model = _dict(_dict(replay.get("agent")).get("model")).get("name")
    run_name = _RUN_NAME.match(path.parent.name)
    model = model or (run_name.group("model") if run_name else None)
    exit_status = info.get("exit_status")
    resolved = doc.get("resolved", info.get("resolved"))
    turns, trailing = _turns(_list(doc.get("history")))
    entries = _list(doc.get("trajectory")) or _entries_from_history(turns, trailing)
    run = run_facts(
        FORMAT, f"{path.parent.name}/{instance}", agent="swe-agent", task_id=instance,
        agent_version=info.get("swe_agent_version"), environment=_text(doc.get("environment")),
        status=_status(exit_status),
        outcome="unknown" if not isinstance(resolved, bool) else ("success" if resolved else "failure"),
        input=_text(problem.get("text")) or _task_text(turns),
        output=_text(info.get("submission")),
        attributes={k: v for k, v in {
            "exit_status": exit_status, "model_stats": info.get("model_stats"), "run_name": path.parent.name,
            "swe_agent_version": info.get("swe_agent_version"),
            "swe_agent_hash": info.get("swe_agent_hash")}.items() if v is not None},
    )
    steps = _steps(run.run_id, entries, turns, model)
    _attach_run_usage(steps, info.get("model_stats"))
    # a root step for the whole run: the file has no clock times, so the run's duration stays unknown
    # (without a root the first step's execution time would pass for it)
    root = Step(run_id=run.run_id, step_id="run", seq=0, kind="agent", name="swe-agent",
                status={"ok": "ok", "error": "error"}.get(run.status, "unset"),
                error=str(exit_status) if run.status == "error" else None)
    return Trace(run=run, steps=[root, *steps])


def _text(value: Any) -> str | None:
    return content_text(value) if value not in (None, "") else None


def _status(exit_status: Any) -> str:
    """submitted (also auto-submitted at a limit) = the run finished; errors and early exits = error."""
    text = str(exit_status or "").lower()
    if not text:
        return "unknown"
    if text.startswith("submitted"):
        return "ok"
    if "error" in text or text.startswith(("exit_", "early_exit")):
        return "error"
    return "unknown"


def _turns(history: list) -> tuple[list[tuple[list[dict], dict]], list[dict]]:
    """(messages new since the last assistant turn, the assistant message) per turn; demos left out."""
    turns: list[tuple[list[dict], dict]] = []
    pending: list[dict] = []
    for item in history:
        if not isinstance(item, dict) or item.get("is_demo"):
            continue
        if item.get("role") == "assistant":
            turns.append((pending, item))
            pending = []
        else:
            pending.append(item)
    return turns, pending


def _task_text(turns: list[tuple[list[dict], dict]]) -> str | None:
    for item in turns[0][0] if turns else []:
        if item.get("role") == "user":
            return content_text(item.get("content"))
    return None


def _entries_from_history(turns: list[tuple[list[dict], dict]], trailing: list[dict]) -> list[dict]:
    """Trajectory-like entries from a history-only file: each assistant turn and the tool output after it."""
    entries = []
    for k, (_, msg) in enumerate(turns):
        after = turns[k + 1][0] if k + 1 < len(turns) else trailing
        observation = "\n".join(content_text(m.get("content")) or "" for m in after
                                if m.get("role") in ("tool", "function")) or None
        entries.append({"action": msg.get("action"), "thought": msg.get("thought"),
                        "response": msg.get("content"), "observation": observation})
    return entries


def _same_action(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip() == b.strip()


def _steps(run_id: str, entries: list, turns: list[tuple[list[dict], dict]], model: str | None) -> list[Step]:
    steps: list[Step] = []
    t = 0  # next history turn to match: a turn belongs to the entry whose action it carries
    for i, entry in enumerate(e for e in entries if isinstance(e, dict)):
        action = entry.get("action")
        new_msgs: list[dict] = []
        assistant: dict = {}
        if t < len(turns) and _same_action(turns[t][1].get("action"), action):
            new_msgs, assistant = turns[t]
            t += 1
        elif isinstance(entry.get("query"), list):
            new_msgs = _after_last_assistant(entry["query"])
        calls = tool_calls_of(entry.get("tool_calls") or assistant.get("tool_calls"))
        response = entry.get("response") if entry.get("response") is not None else assistant.get("content")
        messages = [m for m in (message_of(x) for x in new_msgs) if m is not None]
        messages.append(Message(role="assistant", content=content_text(response), tool_calls=calls))
        stats = _dict(entry.get("model_stats"))
        thought = entry.get("thought")
        steps.append(Step(
            run_id=run_id, step_id=f"{i}.llm", parent_step_id="run", seq=2 * i + 1, kind="llm",
            name=model or "model", model=model,
            messages=messages, **_usage(stats),
            attributes={"thought": thought} if thought and thought != response else {},
        ))
        if isinstance(action, str) and action.strip():
            steps.append(_tool_step(run_id, i, entry, action, calls))
    return steps


def _after_last_assistant(query: list) -> list[dict]:
    tail: list[dict] = []
    for item in reversed(query):
        if not isinstance(item, dict) or item.get("role") == "assistant":
            break
        tail.insert(0, item)
    return tail


def _tool_step(run_id: str, i: int, entry: dict, action: str, calls: list[ToolCall]) -> Step:
    if calls:
        name, args = calls[0].name, calls[0].arguments
    else:
        name, args = parse_command(action)
    seconds = entry.get("execution_time")
    try:
        duration = float(seconds) * 1000 if seconds is not None else None
    except (TypeError, ValueError):
        duration = None
    attrs: dict[str, Any] = {"action": action}
    if entry.get("state") not in (None, "", {}):
        attrs["state"] = loads_lenient(entry["state"])
    if len(calls) > 1:
        attrs["other_tool_calls"] = [c.model_dump() for c in calls[1:]]
    observation = entry.get("observation")
    return Step(run_id=run_id, step_id=f"{i}.tool", parent_step_id="run", seq=2 * i + 2, kind="tool",
                name=name, tool_name=name,
                tool_args=args, tool_result=content_text(observation), duration_ms=duration, attributes=attrs)


def parse_command(action: str) -> tuple[str, dict[str, Any]]:
    """A SWE-agent command line as (name, {"args": [...], "body"?: ...}).

    >>> parse_command("edit 4:4\\ndef f():\\nend_of_edit\\n")
    ('edit', {'args': ['4:4'], 'body': 'def f():'})
    """
    text = action.strip()
    first, _, rest = text.partition("\n")
    if rest and rest.rstrip().endswith(_EDIT_END):
        body = rest.rstrip()[: -len(_EDIT_END)]
        words = _words(first)
        return words[0], {"args": words[1:], "body": body[:-1] if body.endswith("\n") else body}
    words = _words(text)
    return words[0], {"args": words[1:]}


def _words(text: str) -> list[str]:
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes: keep the raw words rather than fail
        words = text.split()
    return words or [text]


def _usage(stats: dict) -> dict[str, Any]:
    """Token and cost fields from SWE-agent's model_stats; all zeros (replays) mean "not recorded"."""
    sent, received = as_int(stats.get("tokens_sent")), as_int(stats.get("tokens_received"))
    cost = stats.get("instance_cost", stats.get("total_cost"))
    cost = float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None
    if not sent and not received and not cost:
        return {}
    return {"input_tokens": sent, "output_tokens": received, "cost_usd": cost or None,
            "cost_estimated": False if cost else None}


def _attach_run_usage(steps: list[Step], model_stats: Any) -> None:
    """Put the run's totals on its last llm step, unless the entries already carried per-step usage."""
    usage = _usage(_dict(model_stats))
    llm = [k for k, s in enumerate(steps) if s.kind == "llm"]
    if not usage or not llm or any(steps[k].input_tokens or steps[k].output_tokens for k in llm):
        return
    k = llm[-1]
    attrs = dict(steps[k].attributes, **{"swe_agent.usage_scope": "run",
                                         "swe_agent.api_calls": as_int(_dict(model_stats).get("api_calls"))})
    steps[k] = steps[k].model_copy(update={**usage, "attributes": attrs})
