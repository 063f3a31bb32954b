"""The maturity framework: dimensions, levels and their criteria, read from an editable TOML file.

A criterion is a threshold on a named evidence metric (`workbench.maturity_evidence.METRICS`) or on the answer
to a questionnaire question (the index of the chosen answer, 0 = the first, weakest choice). Each carries the
action that would meet it and its risk, impact and effort (1-5), from which the remediation list is ordered.
The default file is `workbench/data/maturity.toml`; docs/maturity.md describes the schema.
"""

from __future__ import annotations

import json
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.maturity_evidence import METRICS

Score = Annotated[int, Field(ge=1, le=5)]


class MaturityError(ValueError):
    """A framework or answers file that cannot be used; the message names the problem and where it is."""


class Criterion(BaseModel):
    """One condition a level needs: `metric` or `question`, compared with `at_least` or `at_most`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    metric: str | None = None
    """Name of an evidence metric measured in the store."""
    question: str | None = None
    """Id of a questionnaire question; its value is the index of the chosen answer."""
    at_least: float | None = None
    at_most: float | None = None
    action: str = Field(min_length=1)
    """What to do to meet it, as the remediation list says it."""
    impact: Score = 3
    """How much meeting it improves the operation (1 little - 5 a lot)."""
    effort: Score = 3
    """How much work it takes (1 an afternoon - 5 a quarter)."""
    risk: Score | None = None
    """Risk of leaving it unmet; the dimension's risk when not given."""

    @model_validator(mode="after")
    def _one_each(self) -> Criterion:
        if (self.metric is None) == (self.question is None):
            raise ValueError("give exactly one of `metric` or `question`")
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError("give exactly one of `at_least` or `at_most`")
        return self

    @property
    def evidence(self) -> str:
        return self.metric or self.question  # type: ignore[return-value]

    @property
    def threshold(self) -> float:
        return self.at_least if self.at_least is not None else self.at_most  # type: ignore[return-value]

    def met_by(self, value: float | None) -> bool:
        if value is None:
            return False
        return value >= self.at_least if self.at_least is not None else value <= self.at_most  # type: ignore


class Level(BaseModel):
    """What a dimension needs to be at this level (on top of the levels below)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: int = Field(ge=2, le=5)
    summary: str = Field(min_length=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)


class Question(BaseModel):
    """A questionnaire question; choices go from the weakest practice to the strongest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str = Field(min_length=1)
    choices: tuple[str, ...] = Field(min_length=2)


class Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    description: str = ""
    risk: Score = 3
    """Default risk of the dimension's unmet criteria."""
    questions: tuple[Question, ...] = ()
    levels: tuple[Level, ...]

    @model_validator(mode="after")
    def _levels_two_to_five(self) -> Dimension:
        if [lv.level for lv in self.levels] != [2, 3, 4, 5]:
            raise ValueError("levels must be given for 2, 3, 4 and 5, in that order (level 1 needs nothing)")
        return self


class Framework(BaseModel):
    """The whole model: level names and the dimensions, with a version that every assessment records."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    level_names: tuple[str, str, str, str, str]
    dimensions: tuple[Dimension, ...] = Field(min_length=3)

    @model_validator(mode="after")
    def _references(self) -> Framework:
        keys = [d.key for d in self.dimensions]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate dimension keys: {sorted({k for k in keys if keys.count(k) > 1})}")
        ids = [q.id for q in self.questions()]
        if len(ids) != len(set(ids)):
            raise ValueError(f"duplicate question ids: {sorted({i for i in ids if ids.count(i) > 1})}")
        for d in self.dimensions:
            for lv in d.levels:
                for c in lv.criteria:
                    where = f"dimension {d.key!r}, level {lv.level}"
                    if c.metric is not None and c.metric not in METRICS:
                        raise ValueError(f"{where}: unknown metric {c.metric!r} (known: {', '.join(METRICS)})")
                    if c.question is not None and c.question not in ids:
                        raise ValueError(f"{where}: unknown question {c.question!r}")
                    if c.question is not None and c.threshold not in range(len(self.question(c.question).choices)):
                        raise ValueError(f"{where}: the threshold on {c.question!r} must be the index of one of "
                                         "its choices (0 = the first)")
        return self

    def questions(self) -> list[Question]:
        return [q for d in self.dimensions for q in d.questions]

    def question(self, qid: str) -> Question:
        return next(q for q in self.questions() if q.id == qid)

    def level_name(self, level: int) -> str:
        return self.level_names[level - 1]


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())


def parse_framework(text: str, source: str = "framework") -> Framework:
    """A framework from TOML text; MaturityError names the problem (bad TOML, a missing field, an unknown
    metric ...)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MaturityError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Framework.model_validate(data)
    except ValidationError as exc:
        raise MaturityError(f"{source}: {_problems(exc)}") from None


def load_framework(path: str | Path | None = None) -> Framework:
    """The framework in `path`, or the default one (`workbench/data/maturity.toml`)."""
    if path is None:
        return default_framework()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MaturityError(f"cannot read the framework file {path}: {exc.strerror}") from None
    return parse_framework(text, str(path))


@cache
def default_framework() -> Framework:
    return parse_framework(default_framework_text(), "workbench/data/maturity.toml")


def default_framework_text() -> str:
    return (resources.files("workbench") / "data" / "maturity.toml").read_text(encoding="utf-8")


# -- questionnaire answers --------------------------------------------------------------------------------
def normalize_answers(framework: Framework, answers: dict[str, Any] | None) -> dict[str, str]:
    """Answers as {question id: chosen text}, in the framework's question order. An answer may be given as the
    choice's text or its index; None or "" means unanswered. Unknown ids and choices raise MaturityError."""
    answers = dict(answers or {})
    known = {q.id: q for q in framework.questions()}
    unknown = sorted(set(answers) - set(known))
    if unknown:
        raise MaturityError(f"answers to unknown questions: {', '.join(unknown)}")
    out: dict[str, str] = {}
    for qid, q in known.items():
        value = answers.get(qid)
        if value is None or value == "":
            continue
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(q.choices):
            out[qid] = q.choices[value]
        elif isinstance(value, str) and value in q.choices:
            out[qid] = value
        else:
            raise MaturityError(f"answer to {qid!r} must be one of {list(q.choices)} (or its index), not {value!r}")
    return out


def answer_value(framework: Framework, qid: str, answers: dict[str, str]) -> int | None:
    """The index of the chosen answer (the value a criterion compares), None when unanswered."""
    chosen = answers.get(qid)
    return None if chosen is None else framework.question(qid).choices.index(chosen)


def load_answers(path: str | Path) -> dict[str, Any]:
    """Answers from a TOML or JSON file: a table of question id = answer, at the top or under `answers`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise MaturityError(f"cannot read the answers file {path}: {exc.strerror}") from None
    except ValueError as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
        raise MaturityError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: {exc}"
                            ) from None
    if isinstance(data, dict) and isinstance(data.get("answers"), dict):
        data = data["answers"]
    if not isinstance(data, dict):
        raise MaturityError(f"{path}: expected a table of question id = answer")
    return data
