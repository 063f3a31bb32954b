"""Runs as datasets for other eval tools: Inspect AI, OpenAI evals, promptfoo, Langfuse.

Every format holds, per run, the input messages (what the first LLM call was given, up to the first assistant
turn), the run's final output as the reference answer when the run succeeded, and where it came from (run id,
native trace id, agent, version, task, current labels). Output is deterministic (runs ordered by run id, keys
sorted), so golden files can compare byte for byte (tests/test_datasets_export.py).

* `inspect`: Inspect AI `Sample` records as JSONL (`id`, `input` as chat messages, `target`, `metadata`), read
  with `inspect_ai.dataset.json_dataset`.
* `openai-evals`: OpenAI evals JSONL (`input` chat messages, `ideal`).
* `promptfoo`: a promptfoo tests file (YAML, written without PyYAML as JSON-style flow scalars): `vars`
  (`input`, `messages` as JSON text, `task_id`), `description`, `metadata`.
* `langfuse`: Langfuse dataset items as JSONL (`input`, `expectedOutput`, `metadata`, `sourceTraceId`), for
  `langfuse.create_dataset_item(**item)`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench.exporters.suite import _input_messages
from workbench.labels import current_labels
from workbench.queries import RunFilter, _where
from workbench.store import Store

FORMATS = ("inspect", "openai-evals", "promptfoo", "langfuse")
SUFFIX = {"inspect": ".jsonl", "openai-evals": ".jsonl", "promptfoo": ".yaml", "langfuse": ".jsonl"}


def dataset_rows(store: Store, flt: RunFilter | None = None, *,
                 run_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The selected runs with what every format needs, ordered by run id."""
    if run_ids is not None:
        where, params = "WHERE list_contains($ids, run_id)", {"ids": list(run_ids)}
    else:
        where, params = _where(flt or RunFilter())
    cols = "run_id, native_id, format, agent, agent_version, task_id, input, output, outcome"
    found = store.sql(f"SELECT {cols} FROM runs {where} ORDER BY run_id", params or None)  # noqa: S608
    names = [d[0] for d in found.description]
    runs = [dict(zip(names, row, strict=True)) for row in found.fetchall()]
    labels = current_labels(store)
    by_run: dict[str, list[str]] = {}
    for run_id, code in zip(labels["run_id"], labels["code"], strict=True):
        by_run.setdefault(run_id, []).append(code)
    for r in runs:
        r["messages"] = _input_messages(store, r["run_id"], r["input"])
        r["labels"] = sorted(set(by_run.get(r["run_id"], [])))
        r["target"] = r["output"] if r["outcome"] == "success" and r["output"] else ""
    return runs


def _meta(r: dict[str, Any]) -> dict[str, Any]:
    return {k: r[k] for k in ("run_id", "native_id", "format", "agent", "agent_version", "task_id", "outcome",
                              "labels")}


def _jsonl(items: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(i, sort_keys=True, ensure_ascii=False) + "\n" for i in items)


def to_inspect(rows: list[dict[str, Any]]) -> str:
    return _jsonl([{"id": r["run_id"], "input": r["messages"], "target": r["target"], "metadata": _meta(r)}
                   for r in rows])


def to_openai_evals(rows: list[dict[str, Any]]) -> str:
    return _jsonl([{"input": r["messages"], "ideal": r["target"], "metadata": _meta(r)} for r in rows])


def to_langfuse(rows: list[dict[str, Any]]) -> str:
    return _jsonl([{"input": {"messages": r["messages"]}, "expectedOutput": r["target"] or None,
                    "metadata": _meta(r), "sourceTraceId": r["native_id"], "id": r["run_id"]} for r in rows])


def _q(value: Any) -> str:
    """A YAML flow scalar: JSON text is valid YAML (ASCII only, so no escape differences)."""
    return json.dumps(value, ensure_ascii=True, sort_keys=True)


def to_promptfoo(rows: list[dict[str, Any]]) -> str:
    out = ["# promptfoo tests exported by the agent-review workbench; use as `tests: file://THIS_FILE`"]
    for r in rows:
        title = f"{r['agent']} {r['task_id'] or r['run_id']} (run {r['run_id']})"
        out.append(f"- description: {_q(title)}")
        out.append("  vars:")
        out.append(f"    input: {_q(r['input'] or '')}")
        out.append(f"    messages: {_q(json.dumps(r['messages'], ensure_ascii=False))}")
        out.append(f"    task_id: {_q(r['task_id'] or '')}")
        if r["target"]:
            out.append("  assert:")
            out.append("    - type: similar")
            out.append(f"      value: {_q(r['target'])}")
        out.append(f"  metadata: {_q(_meta(r))}")
    return "\n".join(out) + "\n"


_WRITERS = {"inspect": to_inspect, "openai-evals": to_openai_evals, "promptfoo": to_promptfoo,
            "langfuse": to_langfuse}


def export_dataset(store: Store, fmt: str, out: str | Path, flt: RunFilter | None = None, *,
                   run_ids: Sequence[str] | None = None) -> tuple[Path, int]:
    """Write the selected runs in `fmt` (one of FORMATS) to `out`; returns (path, number of items)."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")
    rows = dataset_rows(store, flt, run_ids=run_ids)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_WRITERS[fmt](rows), encoding="utf-8", newline="\n")
    return out, len(rows)
