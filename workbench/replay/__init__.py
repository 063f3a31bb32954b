"""Replay one run step by step, find its loops and retries, and compare it with another run.

The same objects serve the Replay and Compare pages, notebooks and the CLI:

>>> import workbench as wb                                          # doctest: +SKIP
>>> rp = wb.load_replay(store, run_id)                              # doctest: +SKIP
>>> rp.steps[["seq", "label", "kind", "duration_ms", "flags"]]      # the step list   # doctest: +SKIP
>>> rp.findings                                                     # loops and retries # doctest: +SKIP
>>> cmp = wb.compare_runs(store, run_id, wb.nearest_success(store, run_id))          # doctest: +SKIP
>>> cmp.first_divergence, cmp.deltas                                # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from workbench import queries
from workbench.replay.align import align, edit_distance_reference
from workbench.replay.compare import Comparison, compare_runs, pair_detail
from workbench.replay.loops import LOOP_KINDS, LoopRules, detect, find, findings_frame
from workbench.replay.steps import (
    iter_run_steps,
    load_columns,
    load_steps,
    normalize_args,
    normalize_error,
    to_frame,
)
from workbench.store import Store

JUMPS = ("error", "tool", "finding")
"""What `Replay.next_index` can jump to."""


@dataclass
class Replay:
    """One run ready to be walked through: its header row, step frame, loop findings and current labels."""

    run: dict[str, Any]
    """The run's row (`queries.get_run`)."""
    steps: pd.DataFrame
    """One row per step in order; see `workbench.replay.steps.load_steps` for the columns."""
    findings: pd.DataFrame
    """Loop and retry findings (`workbench.replay.loops.detect`)."""
    labels: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Current labels of the run and its steps (`current_labels`)."""

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def is_loop(self) -> bool:
        """True when a loop (identical calls or ping-pong) was found; retries alone do not count."""
        return bool(len(self.findings)) and bool(self.findings["kind"].isin(LOOP_KINDS).any())

    @property
    def step_ids(self) -> list[str]:
        return [str(s) for s in self.steps["step_id"]]

    def index_of(self, step_id: str | None) -> int | None:
        """Position of a step in `steps`, or None."""
        if step_id is None:
            return None
        hits = (self.steps["step_id"] == step_id).to_numpy().nonzero()[0]
        return int(hits[0]) if len(hits) else None

    def next_index(self, current: int, what: str, *, backwards: bool = False) -> int | None:
        """The next (or previous) step after `current` that is an error, a tool call, or part of a finding."""
        if what not in JUMPS:
            raise ValueError(f"unknown jump {what!r}; use one of {JUMPS}")
        if what == "error":
            mask = self.steps["is_error"].to_numpy()
        elif what == "tool":  # tool steps; for a source without them, the LLM steps that asked for a tool
            mask = self.steps["tool_name"].notna().to_numpy()
            if not mask.any():
                mask = (self.steps["calls"] != "").to_numpy()
        else:
            mask = (self.steps["flags"] != "").to_numpy()
        hits = mask.nonzero()[0]
        hits = hits[hits < current][::-1] if backwards else hits[hits > current]
        return int(hits[0]) if len(hits) else None

    def totals(self) -> dict[str, Any]:
        """Header figures: tokens (input + output), cost and whether it was estimated, duration, steps."""
        r = self.run
        tokens = None
        if r.get("input_tokens") is not None or r.get("output_tokens") is not None:
            tokens = int(r.get("input_tokens") or 0) + int(r.get("output_tokens") or 0)
        return {"tokens": tokens, "cost_usd": r.get("cost_usd"), "cost_estimated": bool(r.get("cost_estimated")),
                "duration_ms": r.get("duration_ms"), "n_steps": len(self.steps),
                "n_errors": int(self.steps["is_error"].sum()) if len(self.steps) else 0}


def load_replay(store: Store, run_id: str, rules: LoopRules | None = None) -> Replay | None:
    """The replay of `run_id`, or None when there is no such run.

    Reads the run, its steps without payloads (fetch one step's messages with `queries.get_step`), finds
    loops and retries, and reads the current labels.
    """
    run = queries.get_run(store, run_id)
    if run is None:
        return None
    cols = load_columns(store, run_id)
    found, cols["flags"] = find(cols, rules)
    return Replay(run=run, steps=to_frame(cols), findings=findings_frame(found),
                  labels=current_labels(store, run_id))


def loop_summary(store: Store, run_ids: list[str] | None = None, rules: LoopRules | None = None) -> pd.DataFrame:
    """Loop and retry findings of many runs at once (all runs, or `run_ids`), one row per run with steps.

    Columns: run_id, is_loop, n_loop, n_retry, kinds (comma-separated finding kinds). One scan of the steps
    table instead of one query per run: the whole demo fleet (2,400 runs) takes a few seconds.
    """
    out = []
    for run_id, cols in iter_run_steps(store, run_ids):
        found, _ = find(cols, rules)
        cats = [f["category"] for f in found]
        out.append({"run_id": run_id, "is_loop": "loop" in cats, "n_loop": cats.count("loop"),
                    "n_retry": cats.count("retry"), "kinds": ",".join(sorted({f["kind"] for f in found}))})
    return pd.DataFrame(out, columns=["run_id", "is_loop", "n_loop", "n_retry", "kinds"])


def current_labels(store: Store, run_id: str) -> pd.DataFrame:
    """Labels in force on a run and its steps: per (step, code, reviewer) the latest event, unless a removal.

    `label_events` is append-only; this is the same reading the labeling module's view gives.
    """
    return store.df(
        "SELECT step_id, code, severity, note, reviewer, created_at FROM ("
        " SELECT *, row_number() OVER (PARTITION BY step_id, code, reviewer"
        "   ORDER BY created_at DESC, event_id DESC) AS rn"
        " FROM label_events WHERE run_id = $run_id"
        ") WHERE rn = 1 AND action <> 'remove' ORDER BY created_at, code",
        {"run_id": run_id},
    )


def nearest_success(store: Store, run_id: str) -> str | None:
    """The successful run closest to `run_id`: same task id, else the same input.

    Among those, prefer the same agent, then another version or trial of it (a different `agent_version`
    first), then the run that started closest in time. None when the run is unknown or has no such peer.
    """
    run = queries.get_run(store, run_id)
    if run is None or (run["task_id"] is None and run["input"] is None):
        return None
    row = store.sql(
        "SELECT run_id FROM runs WHERE outcome = 'success' AND run_id <> $run_id "
        "AND (task_id = $task_id OR input = $input) "
        "ORDER BY (task_id IS NOT DISTINCT FROM $task_id) DESC, (agent IS NOT DISTINCT FROM $agent) DESC, "
        "(agent_version IS DISTINCT FROM $version) DESC, "
        "abs(epoch(started_at) - epoch(CAST($started AS TIMESTAMP))) NULLS LAST, run_id LIMIT 1",
        {"run_id": run_id, "task_id": run["task_id"], "input": run["input"], "agent": run["agent"],
         "version": run["agent_version"], "started": run["started_at"]},
    ).fetchone()
    return row[0] if row else None


__all__ = [
    "JUMPS", "Comparison", "LoopRules", "Replay", "align", "compare_runs", "current_labels", "detect",
    "edit_distance_reference", "load_replay", "load_steps", "loop_summary", "nearest_success", "normalize_args",
    "normalize_error",
    "pair_detail",
]
