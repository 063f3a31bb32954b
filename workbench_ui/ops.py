"""Streamlit glue for the Rubrics and Costs pages and the Overview's service levels: cached wrappers around
`workbench.analytics`, `workbench.drift`, `workbench.budgets` and the rubric modules, keyed by the database
path and the data version like those in `workbench_ui`.

Rubrics cross the cache boundary as their JSON text (pydantic models with dict fields are not hashable)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

import workbench
from workbench import analytics, budgets, drift, rubric_results, scoring
from workbench.queries import RunFilter
from workbench.rubrics import (
    Rubric,
    RubricError,
    parse_rubric,
    record_human_score,
    rubric_files,
    rubric_versions,
    stored_rubric,
)
from workbench_ui import _store, data_version, db_path

# the example rubrics: data/rubrics in a clone, workbench/_app/rubrics in an installed wheel
_PACKAGE = Path(workbench.__file__).resolve().parent
_EXAMPLE_RUBRICS = (_PACKAGE.parent / "data" / "rubrics", _PACKAGE / "_app" / "rubrics")


# -- rubrics ------------------------------------------------------------------------------------------------
def rubric_folders() -> list[Path]:
    """Where rubric files are looked for: `$WORKBENCH_RUBRICS`, `rubrics/` next to the database, and the
    examples bundled with the workbench (first one wins for equal file names)."""
    found = []
    if os.environ.get("WORKBENCH_RUBRICS"):
        found.append(Path(os.environ["WORKBENCH_RUBRICS"]))
    found += [Path(db_path()).parent / "rubrics", *_EXAMPLE_RUBRICS]
    return [f for f in dict.fromkeys(p.resolve() for p in found) if f.is_dir()]


def rubric_sources() -> dict[str, Path]:
    """File name -> path of every rubric file the app offers."""
    out: dict[str, Path] = {}
    for folder in rubric_folders():
        for path in rubric_files(folder):
            out.setdefault(path.name, path)
    return out


@st.cache_data(max_entries=32, show_spinner=False)
def parse(text: str, fmt: str = "toml") -> tuple[str | None, str | None]:
    """(rubric JSON, None) or (None, error message) for rubric text."""
    try:
        return parse_rubric(text, fmt, "rubric").model_dump_json(), None  # type: ignore[arg-type]
    except RubricError as exc:
        return None, str(exc)


def rubric_of(rubric_json: str) -> Rubric:
    return Rubric.model_validate_json(rubric_json)


@st.cache_data(max_entries=16, show_spinner=False)
def _versions(db: str, name: str | None, version: int) -> pd.DataFrame:
    return rubric_versions(_store(db), name)


def versions(name: str | None = None) -> pd.DataFrame:
    return _versions(db_path(), name, data_version())


def stored_rubric_json(name: str, version: str) -> str:
    """A stored version's definition, to read its scores against the rubric as it was."""
    found = stored_rubric(_store(db_path()), name, version)
    if found is None:
        raise KeyError(f"no stored rubric {name} @ {version}")
    return found.model_dump_json()


def record_human(rubric_json: str, run_id: str, criterion: str, reviewer: str, value: float, note: str) -> str | None:
    """Record one reviewer's score; returns what was wrong, or None when it was recorded."""
    try:
        record_human_score(_store(db_path()), rubric_of(rubric_json), run_id, criterion, reviewer, value,
                           note or None)
    except (RubricError, KeyError) as exc:
        return str(exc)
    return None


def score(rubric_json: str, flt: RunFilter, source_text: str) -> scoring.ScoreReport:
    """Score the filtered runs (a write: it bumps the data version, so every cached read refreshes)."""
    return scoring.score_runs(_store(db_path()), rubric_of(rubric_json), flt, source="app", source_text=source_text)


@st.cache_data(max_entries=32, show_spinner=False)
def _verdicts(db: str, rubric_json: str, rv: str, flt: RunFilter, version: int) -> pd.DataFrame:
    return rubric_results.verdicts(_store(db), rubric_of(rubric_json), rv, flt)


def verdicts(rubric_json: str, rv: str, flt: RunFilter) -> pd.DataFrame:
    return _verdicts(db_path(), rubric_json, rv, flt, data_version())


@st.cache_data(max_entries=32, show_spinner=False)
def _pass_rates(db: str, rubric_json: str, rv: str, by: tuple[str, ...], flt: RunFilter, version: int
                ) -> pd.DataFrame:
    return rubric_results.pass_rates(_store(db), rubric_of(rubric_json), rv, by, flt)


def pass_rates(rubric_json: str, rv: str, by: tuple[str, ...], flt: RunFilter) -> pd.DataFrame:
    return _pass_rates(db_path(), rubric_json, rv, by, flt, data_version())


@st.cache_data(max_entries=32, show_spinner=False)
def _failing(db: str, rubric_json: str, rv: str, criterion: str, flt: RunFilter, version: int) -> pd.DataFrame:
    return rubric_results.failing_runs(_store(db), rubric_of(rubric_json), criterion, rv, flt)


def failing_runs(rubric_json: str, rv: str, criterion: str, flt: RunFilter) -> pd.DataFrame:
    return _failing(db_path(), rubric_json, rv, criterion, flt, data_version())


@st.cache_data(max_entries=32, show_spinner=False)
def _agreement(db: str, rubric_json: str, rv: str, against: str, flt: RunFilter, version: int
               ) -> rubric_results.Agreement:
    return rubric_results.agreement(_store(db), rubric_of(rubric_json), rv, against, flt)  # type: ignore[arg-type]


def agreement(rubric_json: str, rv: str, against: str, flt: RunFilter) -> rubric_results.Agreement:
    return _agreement(db_path(), rubric_json, rv, against, flt, data_version())


# -- service levels, costs, drift, budgets ---------------------------------------------------------------------
@st.cache_data(max_entries=32, show_spinner=False)
def _service_levels(db: str, flt: RunFilter, version: int) -> analytics.ServiceLevels:
    return analytics.service_levels(_store(db), flt)


def service_levels(flt: RunFilter) -> analytics.ServiceLevels:
    return _service_levels(db_path(), flt, data_version())


@st.cache_data(max_entries=32, show_spinner=False)
def _service_trend(db: str, flt: RunFilter, version: int) -> pd.DataFrame:
    return analytics.service_trend(_store(db), flt)


def service_trend(flt: RunFilter) -> pd.DataFrame:
    return _service_trend(db_path(), flt, data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _cost_breakdown(db: str, by: str, flt: RunFilter, version: int) -> pd.DataFrame:
    return analytics.cost_breakdown(_store(db), by, flt)


def cost_breakdown(by: str, flt: RunFilter) -> pd.DataFrame:
    return _cost_breakdown(db_path(), by, flt, data_version())


@st.cache_data(max_entries=32, show_spinner=False)
def _cost_trend(db: str, grain: str, split: str, flt: RunFilter, version: int) -> pd.DataFrame:
    return analytics.cost_trend(_store(db), grain, split, flt)


def cost_trend(grain: str, split: str, flt: RunFilter) -> pd.DataFrame:
    return _cost_trend(db_path(), grain, split, flt, data_version())


@st.cache_data(max_entries=32, show_spinner=False)
def _waste(db: str, flt: RunFilter, version: int) -> dict[str, float]:
    return analytics.waste(_store(db), flt)


def waste(flt: RunFilter) -> dict[str, float]:
    return _waste(db_path(), flt, data_version())


@st.cache_data(max_entries=32, show_spinner=False)
def _top_runs(db: str, flt: RunFilter, n: int, version: int) -> pd.DataFrame:
    return analytics.top_runs(_store(db), flt, n)


def top_runs(flt: RunFilter, n: int = 20) -> pd.DataFrame:
    return _top_runs(db_path(), flt, n, data_version())


@st.cache_data(max_entries=32, show_spinner=False)
def _drift(db: str, a: RunFilter, b: RunFilter, version: int) -> pd.DataFrame:
    return drift.drift(_store(db), a, b)


def drift_table(a: RunFilter, b: RunFilter) -> pd.DataFrame:
    return _drift(db_path(), a, b, data_version())


def last_two_weeks(flt: RunFilter) -> tuple[RunFilter, RunFilter]:
    return drift.last_two_weeks(_store(db_path()), flt)


def budgets_file() -> Path:
    return budgets.budgets_path(db_path())


@st.cache_data(max_entries=16, show_spinner=False)
def _budgets(db: str, path: str, mtime: float, flt: RunFilter, version: int
             ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None]:
    try:
        b = budgets.load_budgets(path)
    except budgets.BudgetError as exc:
        return None, None, str(exc)
    store = _store(db)
    return budgets.budget_summary(store, b, flt), budgets.budget_breaches(store, b, flt), None


def budget_report(flt: RunFilter) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None]:
    """(summary, breaches, error) from the budgets file; all None when there is no file."""
    path = budgets_file()
    if not path.is_file():
        return None, None, None
    return _budgets(db_path(), str(path), path.stat().st_mtime, flt, data_version())
