"""Run a regression suite: match runs to cases, apply each case's checks through the scoring engine, report.

`check_traces(suite, paths)` ingests trace files into a temporary store (the user's database is never touched),
matches runs to cases by task id (else by input text), scores every matched run against its case's checks
(`workbench.scoring.score_runs`) and returns one `CaseResult` per case: `pass` (every matched run passed every
check it was decided on), `fail` (some run failed one) or `no_match` (no run for this case). `write_junit`
writes the results for CI; `workbench check SUITE TRACES...` does all of it and exits 1 when a case fails.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from pydantic import ValidationError

from workbench.exporters.suite import CASES_FILE, SUITE_RUBRIC, case_rubric
from workbench.ingest import IngestSummary, ingest_paths
from workbench.rubrics import _location
from workbench.scoring import score_runs
from workbench.store import Store


class SuiteError(ValueError):
    """A suite that cannot be read; the message says where and why."""


@dataclass
class CaseResult:
    case_id: str
    status: str
    """pass / fail / no_match"""
    runs: list[str] = field(default_factory=list)
    """Matched run ids."""
    failures: dict[str, list[str]] = field(default_factory=dict)
    """Failed run id -> 'criterion: evidence' for each failed check."""
    matched_by: str = ""

    def explain(self) -> str:
        if self.status == "no_match":
            return f"{self.case_id}: no run matched ({self.matched_by})"
        head = f"{self.case_id}: {len(self.failures)} of {len(self.runs)} matched run(s) failed"
        return "\n".join([head] + [f"  run {r}: {'; '.join(f)}" for r, f in sorted(self.failures.items())])


def load_suite(path: str | Path) -> list[dict[str, Any]]:
    """The cases of a suite folder (or of a cases.jsonl file), validated enough to run."""
    path = Path(path)
    file = path / CASES_FILE if path.is_dir() else path
    if not file.is_file():
        raise SuiteError(f"{file}: no such file (a suite folder holds {CASES_FILE})")
    cases = []
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{file}:{n}: not JSON ({exc.msg})") from None
        missing = [k for k in ("id", "checks") if k not in case]
        if not isinstance(case, dict) or missing:
            raise SuiteError(f"{file}:{n}: a case needs {', '.join(missing) or 'to be an object'}")
        try:
            case_rubric(case)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = _location({"criteria": case["checks"]}, first["loc"]).replace("criteria", "checks", 1)
            raise SuiteError(f"{file}:{n} (case {case['id']}): {where}: "
                             f"{first['msg'].removeprefix('Value error, ')}") from None
        cases.append(case)
    return cases


def _matches(store: Store, case: dict[str, Any]) -> tuple[list[str], str]:
    if case.get("task_id"):
        rows = store.sql("SELECT run_id FROM runs WHERE task_id = $t ORDER BY run_id", {"t": case["task_id"]})
        return [r[0] for r in rows.fetchall()], f"task {case['task_id']}"
    if case.get("input"):
        rows = store.sql("SELECT run_id FROM runs WHERE trim(input) = trim($i) ORDER BY run_id", {"i": case["input"]})
        return [r[0] for r in rows.fetchall()], "input text"
    return [], "the case has neither task id nor input"


def check_store(store: Store, cases: Sequence[dict[str, Any]], *, match_all: bool = False) -> list[CaseResult]:
    """Check the cases against the runs in `store` (a scratch store: scores are written into it).

    match_all: every run in the store belongs to every case (an adapter made the runs for one case)."""
    everything = [r[0] for r in store.sql("SELECT run_id FROM runs ORDER BY run_id").fetchall()]
    matched = {c["id"]: (everything, "all runs") if match_all else _matches(store, c) for c in cases}
    by_version: dict[str, tuple[Any, set[str]]] = {}
    for c in cases:  # cases with the same checks share a rubric version: score their runs once
        rubric = case_rubric(c)
        entry = by_version.setdefault(rubric.version, (rubric, set()))
        entry[1].update(matched[c["id"]][0])
    failed: dict[tuple[str, str], list[str]] = {}
    for version, (rubric, runs) in by_version.items():
        if not runs:
            continue
        score_runs(store, rubric, run_ids=sorted(runs), source="regression-suite")
        rows = store.sql("SELECT run_id, criterion, evidence FROM scores WHERE rubric_id = $rb AND version = $v "
                         "AND passed = false ORDER BY run_id, criterion", {"rb": SUITE_RUBRIC, "v": version})
        for run_id, criterion, evidence in rows.fetchall():
            failed.setdefault((version, run_id), []).append(f"{criterion}: {evidence}")
    results = []
    for c in cases:
        runs, how = matched[c["id"]]
        version = case_rubric(c).version
        fails = {r: failed[version, r] for r in runs if (version, r) in failed}
        status = "no_match" if not runs else ("fail" if fails else "pass")
        results.append(CaseResult(c["id"], status, runs, fails, how))
    return results


class _TempStore:
    """A store in a temporary folder, removed on close."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="wb-check-")
        self.store = Store(Path(self.dir) / "check.duckdb")

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def check_traces(cases: Sequence[dict[str, Any]], paths: Iterable[str | Path], *,
                 fmt: str | None = None) -> tuple[list[CaseResult], IngestSummary]:
    """Ingest the trace files into a temporary store and check the cases against their runs."""
    tmp = _TempStore()
    try:
        summary = ingest_paths(tmp.store, list(paths), fmt=fmt)
        return check_store(tmp.store, cases), summary
    finally:
        tmp.close()


def render_table(results: Sequence[CaseResult]) -> str:
    """A plain-text table: case, status, matched runs, failed runs, first failure."""
    rows = [("case", "status", "runs", "failed", "first failure")]
    for r in results:
        first = next(iter(next(iter(r.failures.values()), [])), "")
        rows.append((r.case_id, r.status, str(len(r.runs)), str(len(r.failures)), first[:80]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in rows]
    n = {s: sum(r.status == s for r in results) for s in ("pass", "fail", "no_match")}
    return "\n".join(lines + [f"{n['pass']} passed, {n['fail']} failed, {n['no_match']} without a matching run"])


def write_junit(results: Sequence[CaseResult], path: str | Path, suite_name: str = "workbench-regression") -> Path:
    """JUnit XML: one testcase per case; `fail` as <failure>, `no_match` as <skipped>."""
    n_fail = sum(r.status == "fail" for r in results)
    n_skip = sum(r.status == "no_match" for r in results)
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<testsuite name={quoteattr(suite_name)} tests="{len(results)}" failures="{n_fail}" errors="0" '
           f'skipped="{n_skip}">']
    for r in results:
        out.append(f'  <testcase classname={quoteattr(suite_name)} name={quoteattr(r.case_id)}>')
        if r.status == "fail":
            text = r.explain()
            out.append(f'    <failure message={quoteattr(text.splitlines()[0])}>{escape(text)}</failure>')
        elif r.status == "no_match":
            out.append(f"    <skipped message={quoteattr(r.explain())}/>")
        out.append("  </testcase>")
    out.append("</testsuite>")
    path = Path(path)
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


# -- the generated pytest module's side ---------------------------------------------------------------------
class TraceChecker:
    """Checks cases against trace files ingested once (adapter path b)."""

    def __init__(self, paths: Sequence[str | Path]) -> None:
        self._tmp = _TempStore()
        ingest_paths(self._tmp.store, list(paths))

    def __call__(self, case: dict[str, Any]) -> CaseResult:
        return check_store(self._tmp.store, [case])[0]

    def close(self) -> None:
        self._tmp.close()


class AgentChecker:
    """Checks each case against the runs the user's adapter makes for it (adapter path a).

    The adapter is any callable `case -> trace file path (or a list of paths)`; the case carries
    `input_messages`, `input` and `task_id`. Every run in the returned files belongs to the case."""

    def __init__(self, agent: Callable[[dict[str, Any]], Any]) -> None:
        self.agent = agent

    def __call__(self, case: dict[str, Any]) -> CaseResult:
        produced = self.agent(case)
        paths = [produced] if isinstance(produced, (str, os.PathLike)) else list(produced)
        tmp = _TempStore()
        try:
            ingest_paths(tmp.store, paths)
            return check_store(tmp.store, [case], match_all=True)[0]
        finally:
            tmp.close()

    def close(self) -> None:
        pass


def load_callable(spec: str) -> Callable[..., Any]:
    """`package.module:attribute` -> the object."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise SuiteError(f"{spec!r}: expected module:callable (e.g. my_agent.adapter:run)")
    return getattr(importlib.import_module(module), attr)


def checker_from_env() -> TraceChecker | AgentChecker | None:
    """WORKBENCH_AGENT (module:callable) wins over WORKBENCH_TRACES (paths joined by os.pathsep)."""
    if os.environ.get("WORKBENCH_AGENT"):
        return AgentChecker(load_callable(os.environ["WORKBENCH_AGENT"]))
    if os.environ.get("WORKBENCH_TRACES"):
        return TraceChecker(os.environ["WORKBENCH_TRACES"].split(os.pathsep))
    return None
