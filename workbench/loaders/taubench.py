"""tau-bench trajectories: one JSON array of runs, each an OpenAI chat transcript with a reward and its task.

Element shape (sierra-research/tau-bench `historical_trajectories/*.json`)::

    {task_id, trial, reward, info: {task: {user_id, actions: [{name, kwargs}], instruction, outputs},
     source, user_cost, reward_info}, traj: [{role, content, tool_calls?, tool_call_id?, name?}]}

Mapping: one element = one run (native id = file stem / task id / trial, since the same task ids recur in
every model's and domain's file); reward 1 = success, else failure; the task's expected actions go to
`runs.attributes["expected_actions"]` as [{name, arguments}]. Every message is a step, in transcript order
(there are no timestamps): assistant turns are `llm` steps, tool results `tool` steps with the arguments of
the call they answer, system and simulated-user turns `message` steps. A tool result starting with
"Error:" is how tau-bench's environment reports a failed call, so that step gets status `error`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.loaders.base import PythonLoader, Trace, run_facts
from workbench.loaders.documents import guarded, read_document
from workbench.loaders.parse import content_text
from workbench.loaders.transcript import chat_steps
from workbench.models import Message, Reject

NAME = "tau-bench"
# historical trajectories are named <model>-<domain>.json (gpt-4o-airline.json, sonnet-35-new-retail.json)
_STEM = re.compile(r"^(?P<model>.+)-(?P<domain>airline|retail)$")
_SNIFF = re.compile(rb"^\s*\[\s*\{")


class TauBenchLoader(PythonLoader):
    name = NAME

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() != ".json" or not _SNIFF.match(head):
            return False
        return all(key in head for key in (b'"task_id"', b'"reward"', b'"traj"'))

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        doc, reject = read_document(path, ctx.max_record_bytes)
        if reject is None and not isinstance(doc, list):
            reject = Reject(location="file", reason=f"not tau-bench trajectories: expected a JSON array, found "
                                                    f"{type(doc).__name__}")
        if reject:
            yield reject
            return
        match = _STEM.match(path.stem)
        model, domain = (match["model"], match["domain"]) if match else (None, None)
        seen: set[str] = set()
        for i, item in enumerate(doc):
            got = guarded(f"/{i}", item, lambda item=item: _trajectory(item, path.stem, model, domain))
            if isinstance(got, Trace) and got.run.native_id in seen:
                got = Reject(location=f"/{i}", reason=f"duplicate trajectory {got.run.native_id} in this file")
            if isinstance(got, Trace):
                seen.add(got.run.native_id)
            yield got


def _trajectory(item: dict, stem: str, model: str | None, domain: str | None) -> Trace:
    if not isinstance(item, dict) or not isinstance(item.get("traj"), list) or "task_id" not in item:
        raise ValueError("not a tau-bench trajectory: needs task_id and a traj list")
    task_id, trial = item["task_id"], item.get("trial", 0)
    info = item.get("info") or {}
    task = info.get("task") or {}
    reward = item.get("reward")
    score = float(reward) if reward is not None else None
    messages = item["traj"]
    run = run_facts(
        NAME, f"{stem}/{task_id}/{trial}",
        agent=f"tau-bench {domain}" if domain else "tau-bench", agent_version=model, environment=domain,
        task_id=str(task_id), user_id=task.get("user_id"),
        outcome="unknown" if score is None else ("success" if score == 1.0 else "failure"), outcome_score=score,
        input=_first(messages, "user"), output=_last(messages, "assistant"),
        attributes=_attributes(item, info, task),
    )
    return Trace(run=run, steps=chat_steps(run, messages, model=model, tool_error=_tool_error))


def _attributes(item: dict, info: dict, task: dict) -> dict[str, Any]:
    expected = [{"name": str(a["name"]), "arguments": a.get("kwargs") or a.get("arguments") or {}}
                for a in task.get("actions") or []]
    attrs = {
        "expected_actions": expected, "expected_outputs": task.get("outputs") or [],
        "instruction": task.get("instruction"), "trial": item.get("trial"),
        # how the conversation ended: "user" (###STOP###) or the tool that ended it (transfer_to_human_agents)
        "end_source": info.get("source"), "user_simulator_cost_usd": info.get("user_cost"),
        "reward_info": (info.get("reward_info") or {}).get("info"),
    }
    return {k: v for k, v in attrs.items() if v is not None}


def _first(messages: list, role: str) -> str | None:
    return next((content_text(m.get("content")) for m in messages if m.get("role") == role), None)


def _last(messages: list, role: str) -> str | None:
    return next((content_text(m.get("content")) for m in reversed(messages)
                 if m.get("role") == role and m.get("content")), None)


def _tool_error(raw: dict, msg: Message) -> str | None:
    text = msg.content or ""
    return text if text.startswith("Error") else None
