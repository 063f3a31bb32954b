"""Who&When: failed multi-agent runs, each with a human label naming the decisive mistake (agent, step, reason).

File shape (ag2ai/Agents_Failure_Attribution, `Who&When/{Hand-Crafted,Algorithm-Generated}/*.json`)::

    {history: [{role, content, name?}], question, question_ID, ground_truth, level?, mistake_agent,
     mistake_step: "12", mistake_reason, mistake_type?, is_corrected | is_correct, system_prompt?}

Every run failed by construction. Each history entry is a `message` step named after the agent that spoke
(`name` in the AG2 subset, else the Magentic-One `role` such as "Orchestrator (-> WebSurfer)"); the recorded
mistake becomes an imported label (`whowhen.mistake`) on the step at `mistake_step` (a 0-based index into
`history`), with the agent and reason in its note. The native id is the question id plus a digest of the
history: the two subsets may answer the same question with different runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.loaders.base import ImportedLabel, PythonLoader, Trace, run_facts
from workbench.loaders.documents import guarded, read_document, read_tail
from workbench.loaders.parse import content_text
from workbench.models import Message, Reject, Run, Step

NAME = "who-and-when"
LABEL_CODE = "whowhen.mistake"
# "Orchestrator (thought)", "Orchestrator (-> WebSurfer)": the speaking agent, then what the turn was
_ROLE = re.compile(r"^(?P<agent>[^(]+?)\s*\((?:->\s*(?P<to>[^)]+)|(?P<what>[^)]+))\)\s*$")


class WhoWhenLoader(PythonLoader):
    name = NAME

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() != ".json" or not head.lstrip().startswith(b"{"):
            return False
        # the label keys follow a history of up to hundreds of KB: look at both ends of the file
        ends = head + read_tail(path)
        return b'"history"' in ends and b'"mistake_agent"' in ends and b'"mistake_step"' in ends

    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        doc, reject = read_document(path, ctx.max_record_bytes)
        if reject is None and not (isinstance(doc, dict) and isinstance(doc.get("history"), list)):
            reject = Reject(location="file", reason="not a Who&When log: expected an object with a history list")
        if reject:
            yield reject
            return
        yield guarded("file", {k: v for k, v in doc.items() if k != "history"}, lambda: _run(doc))


def _speaker(entry: dict) -> tuple[str, dict[str, str]]:
    """Step name and routing facts of one history entry."""
    role = str(entry.get("role") or "")
    name = entry.get("name") or role or "unknown"
    facts = {"role": role}
    m = _ROLE.match(role)
    if m and not entry.get("name"):
        facts["agent"] = m["agent"]
        if m["to"]:
            facts["addressed_to"] = m["to"].strip()
    else:
        facts["agent"] = str(name)
    return str(name), facts


def _run(doc: dict) -> Trace:
    history = doc["history"]
    digest = hashlib.sha256(json.dumps(history, sort_keys=True).encode()).hexdigest()[:12]
    question_id = doc.get("question_ID") or doc.get("question_id")
    attrs = {k: doc[k] for k in ("question", "ground_truth", "level", "mistake_agent", "mistake_step",
                                 "mistake_reason", "mistake_type", "is_corrected", "is_correct") if k in doc}
    # Magentic-One (Hand-Crafted) routes through an Orchestrator and names no speakers; AG2 names them
    named = any(isinstance(e, dict) and e.get("name") for e in history)
    run = run_facts(
        NAME, f"{question_id or 'question'}:{digest}", agent="ag2" if named else "magentic-one",
        task_id=str(question_id) if question_id else None, outcome="failure",
        input=doc.get("question"), output=_last_text(history), attributes=attrs,
    )
    steps = []
    for seq, entry in enumerate(history):
        if not isinstance(entry, dict):
            raise ValueError(f"history entry {seq} is not an object")
        name, facts = _speaker(entry)
        role = facts["role"] if facts["role"] in ("user", "assistant", "system") else (
            "user" if facts["role"] == "human" else "assistant")
        steps.append(Step(run_id=run.run_id, step_id=str(seq), seq=seq, kind="message", name=name,
                          messages=[Message(role=role, content=content_text(entry.get("content")))],
                          attributes={f"whowhen.{k}": v for k, v in facts.items()}))
    return Trace(run=run, steps=steps, labels=[_label(doc, run, len(history))])


def _last_text(history: list) -> str | None:
    return next((content_text(e.get("content")) for e in reversed(history) if isinstance(e, dict)
                 and e.get("content")), None)


def _label(doc: dict, run: Run, n_steps: int) -> ImportedLabel:
    raw_step = doc.get("mistake_step")
    step = int(raw_step) if str(raw_step).strip().isdigit() else None
    parts: list[Any] = [f"mistake agent: {doc.get('mistake_agent')}", f"step: {raw_step}"]
    if doc.get("mistake_type"):
        parts.append(f"type: {doc['mistake_type']}")
    parts.append(f"reason: {doc.get('mistake_reason')}")
    on_step = step is not None and step < n_steps
    if not on_step:  # keep the judgment on the run rather than drop it
        parts.append(f"(step {raw_step!r} is not in the history of {n_steps} entries: label on the run)")
    return ImportedLabel(code=LABEL_CODE, step_id=str(step) if on_step else None, note="; ".join(parts))
