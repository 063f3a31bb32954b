"""What Python loaders share: the `Trace` they yield, staging it, cost estimates and imported labels.

Most formats are small documents (a trajectory, an eval log, an API response) where Python reads the
structure more clearly than SQL. Such a loader subclasses `PythonLoader` and writes one generator:

```python
class MyLoader(PythonLoader):
    name = "my-format"
    def sniff(self, path, head): ...
    def read(self, path, ctx):
        yield Trace(run=run_facts("my-format", native_id, outcome="failure"), steps=[...])
        yield Reject(location="line 7", reason="not JSON")
```

`stage` (inherited) puts everything into the staging tables; the merge then numbers the steps, aggregates
tokens and costs onto the run, and derives what the loader left empty. Estimated costs use the price table
and are marked `cost_estimated`; an unknown model leaves the cost empty and says why in the step's
attributes (`workbench.cost_note`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from workbench import pricing
from workbench.loaders import StageContext
from workbench.models import Reject, Run, Step, make_run_id
from workbench.store.merge import RUN_FACT_COLUMNS, STEP_COLUMNS

IMPORTED_REVIEWER = "imported"


@dataclass
class ImportedLabel:
    """A judgment that came with the file (e.g. Who&When's recorded mistake): stored as a label event."""

    code: str
    step_id: str | None = None
    note: str | None = None
    severity: str | None = None


@dataclass
class Trace:
    """One run as a loader read it: run-level facts, its steps (any order) and labels it carried."""

    run: Run
    steps: list[Step] = field(default_factory=list)
    labels: list[ImportedLabel] = field(default_factory=list)


def run_facts(fmt: str, native_id: str, **facts: Any) -> Run:
    """A `Run` holding what the file says; counts, tokens, cost and times are derived from the steps."""
    native = str(native_id)
    return Run(run_id=make_run_id(fmt, native), format=fmt, native_id=native, **facts)


def utc_naive(ts: datetime | None) -> datetime | None:
    """The store keeps UTC as plain TIMESTAMP: convert aware values, assume naive ones are UTC already."""
    if ts is None or ts.tzinfo is None:
        return ts
    return ts.astimezone(UTC).replace(tzinfo=None)


def _json(value: Any) -> str | None:
    if value is None or value == {} or value == []:
        return None
    return json.dumps(value, ensure_ascii=False, default=str)


class PythonLoader(ABC):
    """Base for loaders that read a file in Python and yield `Trace`s and `Reject`s."""

    name = "python"

    @abstractmethod
    def sniff(self, path: Path, head: bytes) -> bool:
        """True when the file looks like this format (from its name and first bytes)."""

    @abstractmethod
    def read(self, path: Path, ctx: StageContext) -> Iterator[Trace | Reject]:
        """The file's runs (as `Trace`s) and what could not be read (as `Reject`s)."""

    def stage(self, cur: duckdb.DuckDBPyConnection, path: Path, ctx: StageContext) -> list[Reject]:
        traces: list[Trace] = []
        rejects: list[Reject] = []
        for item in self.read(path, ctx):
            (rejects if isinstance(item, Reject) else traces).append(item)
        stage_traces(cur, traces)
        estimate_costs(cur)
        stage_labels(cur, traces, ctx)
        return rejects


def stage_traces(cur: duckdb.DuckDBPyConnection, traces: Iterable[Trace]) -> None:
    """Insert traces into `_stage_steps` / `_stage_runs` (created by `merge.create_staging`)."""
    step_rows: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    for trace in traces:
        run = trace.run
        run_rows.append({
            "run_id": run.run_id, "format": run.format, "native_id": run.native_id,
            "import_id": run.import_id, "agent": run.agent, "agent_version": run.agent_version,
            "environment": run.environment, "task_id": run.task_id, "session_id": run.session_id,
            "user_id": run.user_id,
            # "unknown" from the model's default means "not said": let the merge derive it from the root step
            "status": None if run.status == "unknown" else run.status,
            "outcome": None if run.outcome == "unknown" else run.outcome, "outcome_score": run.outcome_score, "input": run.input,
            "output": run.output, "tags": list(run.tags), "attributes": _json(run.attributes),
        })
        for s in trace.steps:
            if s.run_id != run.run_id:
                raise ValueError(f"step {s.step_id} belongs to run {s.run_id}, not {run.run_id}")
            step_rows.append({
                "run_id": s.run_id, "step_id": s.step_id, "parent_step_id": s.parent_step_id, "seq": s.seq,
                "depth": None, "kind": s.kind, "name": s.name, "started_at": utc_naive(s.started_at),
                "ended_at": utc_naive(s.ended_at), "duration_ms": _duration(s), "status": s.status,
                "error": s.error, "model": s.model, "provider": s.provider,
                "messages": _json([m.model_dump(exclude_defaults=True) for m in s.messages]),
                "tool_name": s.tool_name,
                "tool_args": None if s.tool_args is None else json.dumps(s.tool_args, ensure_ascii=False,
                                                                         default=str),
                "tool_result": s.tool_result, "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
                "cache_tokens": s.cache_tokens, "reasoning_tokens": s.reasoning_tokens, "cost_usd": s.cost_usd,
                "cost_estimated": s.cost_estimated if s.cost_usd is not None else None,
                "attributes": _json(s.attributes),
            })
    if run_rows:
        _insert(cur, "_stage_runs", RUN_FACT_COLUMNS, run_rows)
    if step_rows:
        _insert(cur, "_stage_steps", STEP_COLUMNS, step_rows)


def _duration(s: Step) -> float | None:
    if s.duration_ms is not None:
        return s.duration_ms
    if s.started_at and s.ended_at:
        return (utc_naive(s.ended_at) - utc_naive(s.started_at)).total_seconds() * 1000
    return None


def _insert(cur: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...], rows: list[dict]) -> None:
    frame = pd.DataFrame.from_records(rows, columns=list(columns))
    # object columns keep None as NULL; DuckDB casts to the staging table's types (JSON, TIMESTAMP ...)
    cur.register("_py_rows", frame)
    try:
        cols = ", ".join(columns)
        cur.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _py_rows")  # noqa: S608 - constants
    finally:
        cur.unregister("_py_rows")


def estimate_costs(cur: duckdb.DuckDBPyConnection) -> None:
    """Fill cost from the price table where a staged step has tokens but no (or zero) reported cost.

    Estimated costs are marked; steps whose model has no price keep an empty cost and a note saying so.
    """
    _, table = pricing.price_table()
    models = [r[0] for r in cur.execute(
        "SELECT DISTINCT model FROM _stage_steps WHERE model IS NOT NULL").fetchall()]
    rows = []
    for model in models:
        price = pricing.lookup(model, table)
        if price:
            rows.append((model, price.input, price.output, price.cache))
    cur.execute("CREATE OR REPLACE TEMP TABLE _prices (model VARCHAR, input DOUBLE, output DOUBLE, cache DOUBLE)")
    if rows:
        cur.executemany("INSERT INTO _prices VALUES (?, ?, ?, ?)", rows)
    cur.execute(
        """UPDATE _stage_steps s SET
            cost_usd = (greatest(coalesce(s.input_tokens, 0) - coalesce(s.cache_tokens, 0), 0) * p.input
                        + coalesce(s.cache_tokens, 0) * p.cache + coalesce(s.output_tokens, 0) * p.output) / 1e6,
            cost_estimated = true
        FROM _prices p
        WHERE p.model = s.model AND NOT coalesce(s.cost_usd > 0, false)
          AND (s.input_tokens IS NOT NULL OR s.output_tokens IS NOT NULL)"""
    )
    cur.execute(
        """UPDATE _stage_steps SET
            cost_usd = NULL,
            attributes = json_merge_patch(coalesce(attributes, '{}'),
                json_object('workbench.cost_note',
                    CASE WHEN model IS NULL THEN 'tokens without a model name: cost not estimated'
                         ELSE 'no price for model ' || model || ': cost not estimated' END))
        WHERE NOT coalesce(cost_usd > 0, false) AND kind NOT IN ('agent', 'chain')
          AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL)
          AND (model IS NULL OR model NOT IN (SELECT model FROM _prices))"""
    )
    cur.execute("DROP TABLE _prices")


def stage_labels(cur: duckdb.DuckDBPyConnection, traces: Iterable[Trace], ctx: StageContext) -> int:
    """Store labels carried by the file as `imported` label events (idempotent: ids are derived from content)."""
    rows = []
    now = datetime.now(UTC).replace(tzinfo=None)
    for trace in traces:
        for label in trace.labels:
            key = "\x1f".join([trace.run.run_id, label.step_id or "", label.code, label.note or ""])
            event_id = "imp-" + hashlib.sha256(key.encode()).hexdigest()[:24]
            rows.append((event_id, trace.run.run_id, label.step_id, label.code, label.severity, label.note,
                         IMPORTED_REVIEWER, now, "add", None, f"import:{ctx.import_id}", None))
    if rows:
        cur.executemany(
            "INSERT INTO label_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
    return len(rows)
