"""Regression suites from labeled failures: every labeled run becomes a case that must not fail that way again.

`export_suite` writes a folder with `cases.jsonl` (one case per labeled run: its input, the expected behaviour as
rubric checks derived from its labels and the reviewer's note, and where it came from) and `test_cases.py`, a
pytest module that runs every case (see workbench/exporters/check.py and docs/regression-suites.md).

Labels become checks (`LABEL_CHECKS`); a label on a tool step names the tool (a wrong tool must not be called, a
policy-violating call must pass a guardrail). The reviewer's note can add checks, one per line:

    must call lookup_order
    must not call escalate_to_human
    must not say "within 24 hours"
    must say "refund"
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.labels import current_labels
from workbench.queries import RunFilter, _where
from workbench.rubrics import Rubric
from workbench.store import Store

SUITE_RUBRIC = "regression"
"""Every case's checks form a rubric of this name, so cases with the same checks share a rubric version."""
CASES_FILE = "cases.jsonl"
TEST_FILE = "test_cases.py"

_LEAK_PATTERN = r"[\w.+-]+@[\w-]+\.[\w.]+|\b(?:\d[ -]?){13,16}\b|\b(?:sk|pk)-[A-Za-z0-9]{16,}"
_NO_CHECKS = {"env.simulator": "the failure lies in the environment, not the agent"}

LABEL_CHECKS: dict[str, list[dict[str, Any]]] = {
    "control.loop": [{"check": "no_loops", "args": {"max_identical": 3}}],
    "tool.malformed_arguments": [{"check": "no_unhandled_errors", "args": {}}],
    "tool.ignored_error": [{"check": "no_unhandled_errors", "args": {}}],
    "ops.provider_error": [{"check": "no_unhandled_errors", "args": {}}],
    "control.premature_stop": [{"check": "outcome", "args": {"equals": "success"}}],
    "control.missed_escalation": [{"check": "human_required", "args": {}}],
    "content.hallucination": [{"check": "outcome", "args": {"equals": "success"}}],
    "content.instruction_not_followed": [{"check": "outcome", "args": {"equals": "success"}}],
    "safety.data_leak": [{"check": "output_not_matches", "args": {"pattern": _LEAK_PATTERN}}],
    "other": [{"check": "outcome", "args": {"equals": "success"}}],
}
"""Checks a label stands for on its own. Labels whose checks depend on the run (`tool.wrong_tool`,
`safety.policy_violation`, `ops.cost_blowup`, `ops.timeout`) are derived in `_derived_checks`."""

_NOTE_RULES = [
    (re.compile(r"^\s*must not call\s+([\w.:-]+)\s*$", re.I | re.M), "tool_not_called", "tool"),
    (re.compile(r"^\s*must call\s+([\w.:-]+)\s*$", re.I | re.M), "tool_called", "tool"),
    (re.compile(r'^\s*must not say\s+"([^"]+)"\s*$', re.I | re.M), "output_not_matches", "pattern"),
    (re.compile(r'^\s*must say\s+"([^"]+)"\s*$', re.I | re.M), "output_matches", "pattern"),
]


@dataclass
class SuiteExport:
    """What `export_suite` wrote."""

    path: Path
    cases: list[dict[str, Any]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(run id, reason) of labeled runs that gave no case."""


def note_checks(note: str | None) -> list[dict[str, Any]]:
    """Checks written in a reviewer's note (`must call X`, `must not call X`, `must (not) say "text"`)."""
    found = []
    for rx, check, key in _NOTE_RULES:
        for m in rx.finditer(note or ""):
            value = m.group(1)
            found.append({"check": check, "args": {key: "(?i)" + re.escape(value) if key == "pattern" else value}})
    return found


def _baseline(store: Store, agent: str | None) -> dict[str, float | None]:
    """Median cost and duration of the agent's successful runs: the yardstick for blow-ups and timeouts."""
    row = store.sql("SELECT median(cost_usd), median(duration_ms) FROM runs WHERE outcome = 'success' "
                    "AND agent IS NOT DISTINCT FROM $a", {"a": agent}).fetchone()
    return {"cost_usd": row[0], "duration_ms": row[1]}


def _derived_checks(store: Store, code: str, run: dict[str, Any], tool: str | None) -> list[dict[str, Any]]:
    if code == "tool.wrong_tool":
        return [{"check": "tool_not_called", "args": {"tool": tool}}] if tool else []
    if code == "safety.policy_violation":
        return [{"check": "guardrail_before", "args": {"tool": tool}}] if tool else []
    if code in ("ops.cost_blowup", "ops.timeout"):
        metric = "cost_usd" if code == "ops.cost_blowup" else "duration_ms"
        base, own = _baseline(store, run["agent"])[metric], run[metric]
        limit = 3 * base if base else (own / 2 if own else None)  # 3x a typical success; else half this run
        if limit is None or (own is not None and limit >= own):
            limit = own / 2 if own else None
        return [{"check": "limit", "args": {"metric": metric, "max": round(limit, 6)}}] if limit else []
    return [dict(c, args=dict(c["args"])) for c in LABEL_CHECKS.get(code, [])]


def _criteria(checks: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Unique checks as rubric criteria (ids from the check name, numbered on repeats)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for origin, c in checks:
        key = json.dumps(c, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        n = sum(1 for o in out if o["check"] == c["check"])
        out.append({"id": c["check"] + (f"_{n + 1}" if n else ""), "check": c["check"], "args": c["args"],
                    "title": f"from {origin}"})
    return out


def _input_messages(store: Store, run_id: str, text: str | None) -> list[dict[str, Any]]:
    """The messages the first LLM call was given, up to the first assistant turn; else the run's input."""
    row = store.sql("SELECT messages FROM steps WHERE run_id = $r AND kind = 'llm' AND messages IS NOT NULL "
                    "ORDER BY seq LIMIT 1", {"r": run_id}).fetchone()
    msgs: list[dict[str, Any]] = []
    for m in json.loads(row[0]) if row and row[0] else []:
        if m.get("role") == "assistant":
            break
        msgs.append({"role": m.get("role"), "content": m.get("content")})
    return msgs or ([{"role": "user", "content": text}] if text else [])


def build_case(store: Store, run_id: str, labels: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, str]:
    """One case from a run's current labels; (None, reason) when the labels say nothing checkable."""
    found = store.sql("SELECT run_id, agent, agent_version, task_id, input, cost_usd, duration_ms, native_id, "
                      "format FROM runs WHERE run_id = $r", {"r": run_id})
    names = [d[0] for d in found.description]
    row = found.fetchone()
    if row is None:
        return None, "run not in the store"
    run = dict(zip(names, row, strict=True))
    checks: list[tuple[str, dict[str, Any]]] = []
    for lb in labels:
        tool = None
        if lb.get("step_id"):
            hit = store.sql("SELECT tool_name FROM steps WHERE run_id = $r AND step_id = $s",
                            {"r": run_id, "s": lb["step_id"]}).fetchone()
            tool = hit[0] if hit else None
        if lb["code"] in _NO_CHECKS:
            continue
        checks += [(f"label {lb['code']}", c) for c in _derived_checks(store, lb["code"], run, tool)]
        checks += [(f"note of {lb['reviewer']}", c) for c in note_checks(lb.get("note"))]
    if not checks:
        codes = ", ".join(sorted({lb["code"] for lb in labels}))
        return None, f"no checkable expectation in labels {codes} (add one in the note: `must call TOOL` ...)"
    criteria = _criteria(checks)
    rubric = Rubric.model_validate({"name": SUITE_RUBRIC, "criteria": criteria})
    case = {
        "id": f"case-{run_id}",
        "agent": run["agent"], "agent_version": run["agent_version"], "task_id": run["task_id"],
        "input": run["input"], "input_messages": _input_messages(store, run_id, run["input"]),
        "checks": [c.model_dump(mode="json", exclude_defaults=True) | {"args": c.args} for c in rubric.criteria],
        "rubric": {"name": SUITE_RUBRIC, "version": rubric.version},
        "source": {"run_id": run_id, "format": run["format"], "native_id": run["native_id"]},
        "labels": sorted({lb["code"] for lb in labels}),
        "reviewers": sorted({lb["reviewer"] for lb in labels}),
        "notes": [lb["note"] for lb in labels if lb.get("note")],
    }
    return case, ""


def case_rubric(case: dict[str, Any]) -> Rubric:
    """The rubric a case's checks form (its version is the case's `rubric.version`)."""
    return Rubric.model_validate({"name": SUITE_RUBRIC, "criteria": case["checks"]})


def labeled_runs(store: Store, flt: RunFilter | None = None, *, run_ids: Sequence[str] | None = None,
                 codes: Sequence[str] | None = None, include_imported: bool = False) -> dict[str, list[dict]]:
    """Run id -> its current labels, for the selected runs (a filter, or explicit ids)."""
    labels = current_labels(store, include_imported=include_imported)
    if codes:
        labels = labels[labels["code"].isin(list(codes))]
    if run_ids is not None:
        keep = set(run_ids)
    else:
        where, params = _where(flt or RunFilter())
        keep = {r[0] for r in store.sql(f"SELECT run_id FROM runs {where}", params or None).fetchall()}  # noqa: S608
    labels = labels[labels["run_id"].isin(keep)]
    out: dict[str, list[dict]] = {}
    for rec in labels.to_dict("records"):
        rec = {k: (None if v != v else v) for k, v in rec.items()}  # NaN -> None  # noqa: PLR0124
        out.setdefault(rec["run_id"], []).append(rec)
    return out


def export_suite(store: Store, out_dir: str | Path, flt: RunFilter | None = None, *,
                 run_ids: Sequence[str] | None = None, codes: Sequence[str] | None = None,
                 include_imported: bool = False) -> SuiteExport:
    """Write `cases.jsonl` and `test_cases.py` into `out_dir` from the labeled runs selected.

    Args:
        flt: which runs (default all); `run_ids` instead picks runs by hand (e.g. a cluster's members).
        codes: only these label codes (e.g. ["control.loop"]).
        include_imported: also labels imported with trace files (reviewer `imported`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases, skipped = [], []
    for run_id, labels in sorted(labeled_runs(store, flt, run_ids=run_ids, codes=codes,
                                              include_imported=include_imported).items()):
        case, reason = build_case(store, run_id, labels)
        if case is None:
            skipped.append((run_id, reason))
        else:
            cases.append(case)
    with (out / CASES_FILE).open("w", encoding="utf-8", newline="\n") as fh:
        for case in cases:
            fh.write(json.dumps(case, sort_keys=True, ensure_ascii=False, default=str) + "\n")
    (out / TEST_FILE).write_text(TEST_MODULE, encoding="utf-8", newline="\n")
    return SuiteExport(out, cases, skipped)


TEST_MODULE = '''"""Regression cases exported by the agent-review workbench (`workbench export suite`).

Each case in cases.jsonl is a labeled failure; it passes when the runs made for its input no longer fail its
checks. Two ways to run it (docs/regression-suites.md):

  (a) against your agent: WORKBENCH_AGENT=my_package.adapter:run pytest THIS_FOLDER
      `run(case)` gets the case (input_messages, input, task_id) and returns the path of a trace file
      (or a list of paths) that the workbench can ingest.
  (b) against a trace export of the next version: WORKBENCH_TRACES=traces/ pytest THIS_FOLDER
      (several paths separated by the OS path separator), or `workbench check THIS_FOLDER traces/`.
"""

from pathlib import Path

import pytest

from workbench.exporters.check import checker_from_env, load_suite

CASES = load_suite(Path(__file__).parent)


@pytest.fixture(scope="session")
def checker():
    found = checker_from_env()
    if found is None:
        pytest.skip("set WORKBENCH_AGENT (module:callable) or WORKBENCH_TRACES (trace files) to run the cases")
    yield found
    found.close()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case, checker):
    result = checker(case)
    if result.status == "no_match":
        pytest.skip(result.explain())
    assert result.status == "pass", result.explain()
'''
