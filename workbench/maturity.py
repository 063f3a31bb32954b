"""The AgentOps maturity assessment: eight dimensions x five levels, computed from evidence, with a remediation plan.

The framework file (`workbench/data/maturity.toml`, or a team's own) writes each level's criteria as thresholds
on evidence metrics measured in the store (`workbench.maturity_evidence`) or on questionnaire answers. A
dimension is at level L when every criterion of levels 2..L is met; level 1 needs nothing. The scorecard says
for each dimension which criteria it met (with the measured values) and which of the next level's are unmet
(with their thresholds and current values). Those unmet criteria become the remediation list, ordered by
priority = risk x impact / effort (highest first; ties: the lower dimension first, then framework order).

Assessments are saved as snapshots in the `assessments` table; a new assessment is compared with the latest
earlier snapshot of the same name, and every output shows the movement per dimension.

>>> a = assess(store, answers={"dx_replay": "for some agents"})          # doctest: +SKIP
>>> a.dimensions[["name", "level", "reason"]]; a.remediation.head(3)       # doctest: +SKIP
>>> save_assessment(store, a); a.write("scorecard/")                      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel

from workbench import maturity_report
from workbench.maturity_evidence import METRICS, collect_evidence, format_value, scope
from workbench.maturity_framework import (
    Criterion,
    Dimension,
    Framework,
    answer_value,
    load_framework,
    normalize_answers,
)
from workbench.store import Store

Status = Literal["met", "unmet", "no evidence"]
ARROWS = {1: "↑", 0: "=", -1: "↓"}


def arrow(change: int) -> str:
    """↑, = or ↓ for a change of level."""
    return ARROWS[(change > 0) - (change < 0)]


class CriterionResult(BaseModel):
    """One criterion as measured: its evidence, threshold, current value and whether it is met."""

    level: int
    kind: Literal["metric", "question"]
    evidence: str
    """The metric's name or the question's id."""
    label: str
    """The metric's label or the question's text."""
    target: str
    """The threshold as shown, e.g. `≥ 80.0%` or `≥ "partly"`."""
    value: float | None
    current: str
    """The value as shown: a figure, the chosen answer, `no evidence` or `not answered`."""
    status: Status
    action: str
    risk: int
    impact: int
    effort: int


class DimensionResult(BaseModel):
    key: str
    name: str
    level: int
    level_name: str
    previous_level: int | None = None
    evidence: Literal["measured", "answered", "no evidence"]
    reason: str
    """Why this level: the criteria met, with their values (or what evidence is missing)."""
    to_raise: str
    """What the next level needs: its unmet criteria with thresholds and current values."""
    criteria: list[CriterionResult]

    @property
    def movement(self) -> str:
        """`2 → 3 ↑` when a previous snapshot exists, else empty."""
        if self.previous_level is None:
            return ""
        return f"{self.previous_level} → {self.level} {arrow(self.level - self.previous_level)}"


class RemediationItem(BaseModel):
    rank: int
    dimension: str
    dimension_name: str
    target_level: int
    action: str
    evidence: str
    """The metric (or question) that would show progress."""
    label: str
    current: str
    target: str
    risk: int
    impact: int
    effort: int
    priority: float
    """risk x impact / effort."""


class EvidenceValue(BaseModel):
    name: str
    label: str
    unit: str
    value: float | None
    shown: str


class PreviousSnapshot(BaseModel):
    assessment_id: str
    taken_at: datetime
    levels: dict[str, int]


class Assessment(BaseModel):
    """One maturity assessment; `save_assessment` stores it, `load_assessment` gives it back unchanged."""

    assessment_id: str
    name: str
    """Its scope, e.g. `fleet` or a team's name; snapshots of one name are compared with each other."""
    taken_at: datetime
    """UTC."""
    framework_name: str
    framework_version: str
    level_names: list[str]
    scope: dict[str, Any]
    """What was measured: runs, period, formats, agents (names from trace files: escape them when shown)."""
    answers: dict[str, str]
    questions: dict[str, str]
    """Question id -> text, so the answers read on their own."""
    evidence: list[EvidenceValue]
    results: list[DimensionResult]
    actions: list[RemediationItem]
    previous: PreviousSnapshot | None = None

    @property
    def levels(self) -> dict[str, int]:
        return {d.key: d.level for d in self.results}

    @property
    def dimensions(self) -> pd.DataFrame:
        """One row per dimension: level, movement since the previous snapshot, reason, what would raise it."""
        return pd.DataFrame([{"dimension": d.key, "name": d.name, "level": d.level, "level_name": d.level_name,
                              "previous_level": d.previous_level, "movement": d.movement, "evidence": d.evidence,
                              "reason": d.reason, "to_raise": d.to_raise} for d in self.results])

    @property
    def remediation(self) -> pd.DataFrame:
        """The prioritized remediation list (highest priority first)."""
        columns = list(RemediationItem.model_fields)
        return pd.DataFrame([a.model_dump() for a in self.actions], columns=columns)

    @property
    def evidence_table(self) -> pd.DataFrame:
        return pd.DataFrame([e.model_dump() for e in self.evidence], columns=list(EvidenceValue.model_fields))

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def to_markdown(self) -> str:
        return maturity_report.to_markdown(self)

    def to_html(self) -> str:
        return maturity_report.to_html(self)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write scorecard.md, scorecard.html and scorecard.json into `out_dir`; returns the paths by format."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        texts = {"md": self.to_markdown(), "html": self.to_html(), "json": self.to_json()}
        paths = {fmt: out / f"scorecard.{fmt}" for fmt in texts}
        for fmt, text in texts.items():
            paths[fmt].write_text(text, encoding="utf-8")
        return paths


# -- computing levels ---------------------------------------------------------------------------------------
def _criterion(fw: Framework, dim: Dimension, level: int, c: Criterion, evidence: dict,
               answers: dict[str, str]) -> CriterionResult:
    sign = "≥" if c.at_least is not None else "≤"
    if c.metric is not None:
        kind, label, value = "metric", METRICS[c.metric].label, evidence.get(c.metric)
        current, target = format_value(c.metric, value), f"{sign} {format_value(c.metric, c.threshold)}"
    else:
        q = fw.question(c.evidence)
        kind, label, value = "question", q.text, answer_value(fw, q.id, answers)
        current = "not answered" if value is None else f'"{answers[q.id]}"'
        target = f'{sign} "{q.choices[int(c.threshold)]}"'
    status: Status = "no evidence" if value is None else ("met" if c.met_by(value) else "unmet")
    return CriterionResult(level=level, kind=kind, evidence=c.evidence, label=label, target=target, value=value,
                           current=current, status=status, action=c.action, risk=c.risk or dim.risk,
                           impact=c.impact, effort=c.effort)


def _met(criteria: Iterable[CriterionResult]) -> str:
    """The met criteria in words, each evidence once, with the strictest threshold it met."""
    strictest = {c.evidence: c for c in criteria}  # criteria come in level order: the last one is the highest
    return "; ".join(f"{c.label}: {c.current} ({c.target})" for c in strictest.values())


def _dimension(fw: Framework, dim: Dimension, evidence: dict, answers: dict[str, str]) -> DimensionResult:
    criteria = [_criterion(fw, dim, lv.level, c, evidence, answers) for lv in dim.levels for c in lv.criteria]
    level = 1
    for lv in (2, 3, 4, 5):
        if all(c.status == "met" for c in criteria if c.level == lv):
            level = lv
        else:
            break
    name = fw.level_name(level)
    if all(c.status == "no evidence" for c in criteria):
        kinds = {c.kind for c in criteria}
        what = "the questionnaire is not answered" if kinds == {"question"} else "nothing in the store to measure"
        evidence_kind, reason = "no evidence", f"Level 1 ({name}): no evidence — {what}."
    else:
        evidence_kind = "answered" if all(c.kind == "question" for c in criteria) else "measured"
        if level > 1:
            reason = f"Level {level} ({name}), every criterion up to it met: " \
                f"{_met(c for c in criteria if c.level <= level)}."
        else:
            partial = [c for c in criteria if c.level == 2 and c.status == "met"]
            reason = f"Level 1 ({name}): level 2 needs all of its criteria" + (
                f"; met so far: {_met(partial)}." if partial else "; none is met.")
    if level == 5:
        to_raise = "Level 5 is the top: keep its criteria met."
    else:
        unmet = [c for c in criteria if c.level == level + 1 and c.status != "met"]
        needs = "; ".join(f"{c.label}: {c.current}, needs {c.target}" for c in unmet)
        to_raise = f"To reach level {level + 1} ({fw.level_name(level + 1)}): {needs}."
    return DimensionResult(key=dim.key, name=dim.name, level=level, level_name=name, evidence=evidence_kind,
                           reason=reason, to_raise=to_raise, criteria=criteria)


def _remediation(results: list[DimensionResult]) -> list[RemediationItem]:
    """The next level's unmet criteria of every dimension, by priority = risk x impact / effort."""
    rows = []
    for order, d in enumerate(results):
        for i, c in enumerate(c for c in d.criteria if c.level == d.level + 1 and c.status != "met"):
            priority = round(c.risk * c.impact / c.effort, 2)
            rows.append(((-priority, d.level, order, i), dict(
                dimension=d.key, dimension_name=d.name, target_level=d.level + 1, action=c.action,
                evidence=c.evidence, label=c.label, current=c.current, target=c.target, risk=c.risk,
                impact=c.impact, effort=c.effort, priority=priority)))
    rows.sort(key=lambda r: r[0])
    return [RemediationItem(rank=n, **fields) for n, (_, fields) in enumerate(rows, start=1)]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _assessment_id(name: str, taken_at: datetime, version: str) -> str:
    return hashlib.sha256(f"{name}\x1f{taken_at.isoformat()}\x1f{version}".encode()).hexdigest()[:16]


def assess(store: Store, answers: dict[str, Any] | None = None, framework: Framework | str | Path | None = None,
           *, name: str = "fleet", taken_at: datetime | None = None,
           previous: str | None = "latest") -> Assessment:
    """Assess the store (and the questionnaire answers) against the framework.

    Args:
        answers: question id -> chosen answer (its text or index); unanswered questions count as no evidence.
        framework: a Framework, a framework file, or None for the default one.
        name: the assessment's scope; it is compared with earlier snapshots of the same name.
        taken_at: when it was taken (UTC); now by default.
        previous: "latest" (the latest saved snapshot of this name taken before), a snapshot id, or None.

    Raises MaturityError for a broken framework file or an answer the framework does not know.
    """
    fw = framework if isinstance(framework, Framework) else load_framework(framework)
    given = normalize_answers(fw, answers)
    taken_at = taken_at or _now()
    values = collect_evidence(store)
    results = [_dimension(fw, d, values, given) for d in fw.dimensions]
    prev = None
    if previous == "latest":
        prev = _latest_before(store, name, taken_at)
    elif previous:
        before = load_assessment(store, previous)
        prev = PreviousSnapshot(assessment_id=before.assessment_id, taken_at=before.taken_at, levels=before.levels)
    if prev is not None:
        results = [d.model_copy(update={"previous_level": prev.levels.get(d.key)}) for d in results]
    return Assessment(
        assessment_id=_assessment_id(name, taken_at, fw.version), name=name, taken_at=taken_at,
        framework_name=fw.name, framework_version=fw.version, level_names=list(fw.level_names),
        scope=scope(store), answers=given, questions={q.id: q.text for q in fw.questions()},
        evidence=[EvidenceValue(name=m.name, label=m.label, unit=m.unit, value=values[m.name],
                                shown=format_value(m.name, values[m.name])) for m in METRICS.values()],
        results=results, actions=_remediation(results), previous=prev)


def questionnaire(framework: Framework | str | Path | None = None) -> pd.DataFrame:
    """The framework's questions: dimension, id, text and choices (weakest first), to answer in a notebook."""
    fw = framework if isinstance(framework, Framework) else load_framework(framework)
    return pd.DataFrame([{"dimension": d.key, "id": q.id, "text": q.text, "choices": list(q.choices)}
                         for d in fw.dimensions for q in d.questions], columns=["dimension", "id", "text", "choices"])


def diff_assessments(current: Assessment, previous: Assessment) -> pd.DataFrame:
    """Per dimension of `current`: the previous level, the current one, the change and its arrow."""
    before = previous.levels
    rows = []
    for d in current.results:
        old = before.get(d.key)
        change = None if old is None else d.level - old
        rows.append({"dimension": d.key, "name": d.name, "previous_level": old, "level": d.level, "change": change,
                     "arrow": "" if change is None else arrow(change)})
    return pd.DataFrame(rows)


# -- snapshots ----------------------------------------------------------------------------------------------
def _has_table(store: Store) -> bool:
    return bool(store.sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'assessments'"
                          ).fetchone()[0])


def save_assessment(store: Store, assessment: Assessment) -> str:
    """Store the assessment as a snapshot (saving the same one twice keeps one); returns its id."""
    with store.transaction() as cur:
        cur.execute(
            "INSERT OR IGNORE INTO assessments VALUES ($id, $at, $name, $version, $answers, $result)",
            {"id": assessment.assessment_id, "at": assessment.taken_at, "name": assessment.name,
             "version": assessment.framework_version, "answers": json.dumps(assessment.answers),
             "result": assessment.model_dump_json()})
    return assessment.assessment_id


def list_assessments(store: Store, name: str | None = None) -> pd.DataFrame:
    """Saved snapshots, newest first: id, taken_at, name, framework version and the level of each dimension."""
    columns = ["assessment_id", "taken_at", "name", "framework_version"]
    if not _has_table(store):
        return pd.DataFrame(columns=columns)
    rows = store.sql(
        "SELECT assessment_id, taken_at, name, framework_version, json_extract_string(result, '$.results') "
        "FROM assessments WHERE $name IS NULL OR name = $name ORDER BY taken_at DESC, assessment_id",
        {"name": name}).fetchall()
    return pd.DataFrame([dict(zip(columns, r[:4], strict=True)) | {d["key"]: d["level"] for d in json.loads(r[4])}
                         for r in rows], columns=None if rows else columns)


def load_assessment(store: Store, assessment_id: str) -> Assessment:
    """A saved snapshot, exactly as it was assessed (KeyError when there is none with this id)."""
    row = store.sql("SELECT result FROM assessments WHERE assessment_id = $id", {"id": assessment_id}).fetchone() \
        if _has_table(store) else None
    if row is None:
        raise KeyError(f"no saved assessment {assessment_id!r}")
    return Assessment.model_validate_json(row[0])


def latest_answers(store: Store, name: str = "fleet") -> dict[str, str]:
    """The questionnaire answers of the latest snapshot of this name ({} when there is none): the answers change
    slowly, so each new assessment (app, CLI or notebook) starts from the last ones."""
    row = store.sql("SELECT answers FROM assessments WHERE name = $name ORDER BY taken_at DESC, assessment_id "
                    "LIMIT 1", {"name": name}).fetchone() if _has_table(store) else None
    return json.loads(row[0]) if row else {}


def _latest_before(store: Store, name: str, taken_at: datetime) -> PreviousSnapshot | None:
    if not _has_table(store):
        return None
    row = store.sql("SELECT assessment_id FROM assessments WHERE name = $name AND taken_at < $at "
                    "ORDER BY taken_at DESC LIMIT 1", {"name": name, "at": taken_at}).fetchone()
    if row is None:
        return None
    before = load_assessment(store, row[0])
    return PreviousSnapshot(assessment_id=before.assessment_id, taken_at=before.taken_at, levels=before.levels)

