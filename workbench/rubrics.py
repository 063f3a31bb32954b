"""Rubrics: what "running well" means, as criteria every run is checked against.

A rubric file (TOML, or YAML when PyYAML is installed) becomes a validated `Rubric`; its version is a hash of
the validated definition, so any change that matters (a threshold, a pattern, a weight) makes a new version and
scores made under the old one keep it. The schema is documented in docs/rubrics.md.

Three kinds of criteria:

* `check`: a registered deterministic scorer (`workbench.rubric_checks.registry()`), evaluated in SQL where
  possible, over the runs selected;
* `human`: pass/fail or 1-5, entered per reviewer (`record_human_score`);
* `judge`: a callable (or the built-in HTTP judge) that is only called when the caller passes it explicitly.

Example:
    >>> import workbench as wb                                               # doctest: +SKIP
    >>> rubric = wb.load_rubric("data/rubrics/demo.toml")                    # doctest: +SKIP
    >>> wb.score_runs(store, rubric)                                         # doctest: +SKIP
    >>> wb.verdicts(store, rubric).query("verdict == 'fail'")                # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.rubric_checks import OptPattern, registry
from workbench.store import Store

try:  # YAML is optional: TOML (stdlib) always works
    import yaml  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    yaml = None

RUBRIC_SUFFIXES = (".toml", ".yaml", ".yml")


class RubricError(ValueError):
    """A rubric that cannot be used; `location` says where (file, line, or criteria[2].args.max)."""

    def __init__(self, location: str, reason: str):
        super().__init__(f"{location}: {reason}")
        self.location = location
        self.reason = reason


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class When(_Strict):
    """The runs a criterion applies to; on every other run it is recorded as not applicable (passed NULL).
    All given conditions must hold."""

    agent: list[str] | None = None
    """Agent names (any of)."""
    agent_version: list[str] | None = None
    """Agent versions (any of)."""
    task_matches: OptPattern = None
    """Regular expression searched in runs.task_id."""
    input_matches: OptPattern = None
    """Regular expression searched in runs.input (the task or first user message)."""
    tool_called: list[str] | None = None
    """The run called at least one of these tools."""

    @field_validator("agent", "agent_version", "tool_called", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _as_list(value)

    def sql(self) -> tuple[str, dict[str, Any]]:
        """A predicate over `runs` (aliased r) and its parameters."""
        parts, params = [], {}
        for name in ("agent", "agent_version"):
            if getattr(self, name) is not None:
                parts.append(f"list_contains($w_{name}, r.{name})")
                params[f"w_{name}"] = list(getattr(self, name))
        for name, col in (("task_matches", "task_id"), ("input_matches", "input")):
            if getattr(self, name) is not None:
                parts.append(f"coalesce(regexp_matches(r.{col}, $w_{name}), false)")
                params[f"w_{name}"] = getattr(self, name)
        if self.tool_called is not None:
            parts.append("EXISTS (SELECT 1 FROM steps s WHERE s.run_id = r.run_id "
                         "AND list_contains($w_tools, s.tool_name))")
            params["w_tools"] = list(self.tool_called)
        return (" AND ".join(parts) or "true"), params


class Criterion(_Strict):
    """One thing every run is checked for."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    """Stable identifier (letters, digits, `_ . -`); scores refer to it."""
    title: str = ""
    description: str = ""
    kind: Literal["check", "human", "judge"] = "check"
    check: str | None = None
    """For kind `check`: the registered scorer's name (limit, no_loops, expected_actions ...)."""
    args: dict[str, Any] = Field(default_factory=dict)
    """For kind `check`: the scorer's arguments, validated by the scorer and stored with every score."""
    weight: float = Field(1.0, ge=0)
    required: bool = False
    """A failed required criterion fails the run whatever the weighted total."""
    when: When | None = None
    scale: Literal["pass_fail", "1-5"] = "pass_fail"
    """For human and judge criteria."""
    pass_min: float | None = None
    """For the 1-5 scale: the lowest passing value (default 4)."""
    prompt: str | None = None
    """For kind `judge`: what the judge is asked about the run."""
    judge: str = "default"
    """For kind `judge`: which of the judges passed to `score_runs` answers."""

    @model_validator(mode="after")
    def _consistent(self) -> Criterion:
        if self.kind == "check":
            scorers = registry()
            if not self.check:
                raise ValueError("a check criterion needs `check` (one of: " + ", ".join(sorted(scorers)) + ")")
            if self.check not in scorers:
                raise ValueError(f"unknown check {self.check!r}; known: {', '.join(sorted(scorers))}")
            try:
                normalized = scorers[self.check].args_model.model_validate(self.args).model_dump(mode="json")
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"args{'.' + where if where else ''}: {first['msg']}") from None
            object.__setattr__(self, "args", normalized)  # defaults spelled out: they are part of the version
        elif self.check or self.args:
            raise ValueError(f"`check` and `args` belong to check criteria, not to {self.kind} criteria")
        if self.kind == "judge" and not self.prompt:
            raise ValueError("a judge criterion needs a `prompt`")
        if self.scale == "1-5" and self.pass_min is None:
            object.__setattr__(self, "pass_min", 4.0)
        return self


class Rubric(_Strict):
    """A named set of criteria, a pass threshold, and the version that identifies exactly this content."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    """Stable identifier across versions."""
    title: str = ""
    description: str = ""
    pass_threshold: float = Field(1.0, ge=0, le=1)
    """A run passes when its weighted share of passed criteria (applicable ones only) reaches this, and no
    required criterion failed."""
    criteria: list[Criterion] = Field(min_length=1)

    @field_validator("criteria")
    @classmethod
    def _unique(cls, criteria: list[Criterion]) -> list[Criterion]:
        seen: set[str] = set()
        for c in criteria:
            if c.id in seen:
                raise ValueError(f"criterion id {c.id!r} is used twice")
            seen.add(c.id)
        return criteria

    @property
    def version(self) -> str:
        """First 12 hex digits of sha256 over the validated definition (comments and layout do not count)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def criterion(self, criterion_id: str) -> Criterion:
        for c in self.criteria:
            if c.id == criterion_id:
                return c
        raise KeyError(f"rubric {self.name!r} has no criterion {criterion_id!r}")


# -- reading ------------------------------------------------------------------------------------------------
def parse_rubric(text: str, fmt: Literal["toml", "yaml"] = "toml", location: str = "rubric") -> Rubric:
    """Validate rubric text. Raises `RubricError` with a location and a reason, never a traceback."""
    if fmt == "yaml":
        if yaml is None:
            raise RubricError(location, "YAML rubrics need PyYAML (pip install pyyaml); TOML works without it")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RubricError(location, f"not valid YAML: {exc}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RubricError(location, f"not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise RubricError(location, "a rubric is a table of keys (name, criteria ...)")
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = _location(data, first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise RubricError(f"{location}: {loc}" if loc else location, msg + more) from None


def _location(data: dict, loc: tuple) -> str:
    """criteria.2.args -> criteria[2] (id 'no_loops').args"""
    out = ""
    node: Any = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and "id" in node:
                out += f" (id {node['id']!r})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out


def load_rubric(path: str | Path) -> Rubric:
    """Read and validate a rubric file (.toml, or .yaml/.yml with PyYAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RubricError(str(path), f"cannot read the file: {exc.strerror}") from None
    fmt: Literal["toml", "yaml"] = "yaml" if path.suffix.lower() in (".yaml", ".yml") else "toml"
    return parse_rubric(text, fmt, str(path))


def rubric_files(folder: str | Path) -> list[Path]:
    """Rubric files in a folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in RUBRIC_SUFFIXES and p.is_file())


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def to_toml(rubric: Rubric) -> str:
    """The rubric as TOML text (defaults spelled out); parsing it back gives the same rubric and version."""
    data = rubric.model_dump(mode="json")
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if k != "criteria" and v is not None]
    for crit in data["criteria"]:
        lines += ["", "[[criteria]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in crit.items() if v is not None and v != {}]
    return "\n".join(lines) + "\n"


# -- storing ------------------------------------------------------------------------------------------------
def save_rubric(store: Store, rubric: Rubric, *, source: str = "notebook", source_text: str | None = None) -> str:
    """Store this version of the rubric (once; saving the same content again changes nothing). Returns it."""
    version = rubric.version
    exists = store.sql("SELECT count(*) FROM rubrics WHERE rubric_id = $r AND version = $v",
                       {"r": rubric.name, "v": version}).fetchone()[0]
    if not exists:
        with store.transaction() as cur:
            cur.execute(
                "INSERT INTO rubrics SELECT $r, $v, $title, $definition, $source, $text, $at "
                "WHERE NOT EXISTS (SELECT 1 FROM rubrics WHERE rubric_id = $r AND version = $v)",
                {"r": rubric.name, "v": version, "title": rubric.title or rubric.name,
                 "definition": rubric.model_dump_json(), "source": source, "text": source_text or to_toml(rubric),
                 "at": _now()})
    return version


def stored_rubric(store: Store, name: str, version: str | None = None) -> Rubric | None:
    """A stored rubric version (the newest when `version` is None), or None."""
    row = store.sql(
        "SELECT definition FROM rubrics WHERE rubric_id = $r AND ($v IS NULL OR version = $v) "
        "ORDER BY created_at DESC LIMIT 1", {"r": name, "v": version}).fetchone()
    return Rubric.model_validate_json(row[0]) if row else None


def rubric_versions(store: Store, name: str | None = None):
    """Stored rubric versions, newest first, with how many runs each has scores for."""
    return store.df(
        """SELECT r.rubric_id, r.version, r.title, r.source, r.created_at, r.source_text,
               (SELECT count(DISTINCT run_id) FROM scores s
                WHERE s.rubric_id = r.rubric_id AND s.version = r.version) AS runs_scored
           FROM rubrics r WHERE $n IS NULL OR r.rubric_id = $n ORDER BY r.rubric_id, r.created_at DESC""",
        {"n": name})


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- human scores -------------------------------------------------------------------------------------------
def record_human_score(store: Store, rubric: Rubric, run_id: str, criterion_id: str, reviewer: str,
                       value: float, note: str | None = None) -> None:
    """Record (or replace) one reviewer's score of one run on a human criterion.

    Args:
        value: 1 (pass) or 0 (fail) on the pass/fail scale; 1 to 5 on the 1-5 scale.
    """
    crit = rubric.criterion(criterion_id)
    reviewer = reviewer.strip()
    if crit.kind != "human":
        raise RubricError(criterion_id, f"is a {crit.kind} criterion; only human criteria take reviewer scores")
    if not reviewer or reviewer in ("auto", "imported"):
        raise RubricError("reviewer", "give a reviewer name")
    allowed = (0, 1) if crit.scale == "pass_fail" else (1, 2, 3, 4, 5)
    if value not in allowed:
        raise RubricError(criterion_id, f"value {value!r} is not on the {crit.scale} scale {allowed}")
    passed = bool(value) if crit.scale == "pass_fail" else value >= (crit.pass_min or 4)
    version = save_rubric(store, rubric)
    if store.sql("SELECT count(*) FROM runs WHERE run_id = $r", {"r": run_id}).fetchone()[0] == 0:
        raise RubricError("run_id", f"no run {run_id!r} in the database")
    key = {"rb": rubric.name, "v": version, "run": run_id, "c": criterion_id, "s": f"human:{reviewer}"}
    with store.transaction() as cur:
        cur.execute("DELETE FROM scores WHERE rubric_id = $rb AND version = $v AND run_id = $run "
                    "AND criterion = $c AND scorer = $s", key)
        cur.execute(
            "INSERT INTO scores VALUES ($rb, $v, $run, $c, $s, 'human', $args, $value, $passed, NULL, $note, "
            "NULL, $at)",
            {**key, "args": json.dumps({"scale": crit.scale, "pass_min": crit.pass_min}), "value": float(value),
             "passed": passed, "note": note, "at": _now()})
