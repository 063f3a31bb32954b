"""Streamlit glue: the only part of `workbench` that imports streamlit.

It holds the cached store connection, cached wrappers around `workbench.queries` (keyed by the database path
and the store's data version, so a write invalidates them), query-parameter helpers, and the shared filter
sidebar. Pages call these and render; they hold no SQL.

Trace text is untrusted: helpers here never pass it to Markdown (st.markdown, st.caption, st.info, widget
labels, metric labels); it goes to st.text, st.code or st.dataframe.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from workbench import imports, queries
from workbench.ingest import Progress
from workbench.models import OUTCOMES, STATUSES
from workbench.queries import Overview, RunFilter, RunsPage
from workbench.store import Store, StoreError, default_db_path, shared_store

TEXT_LIMIT = 20_000
"""Characters of one trace text shown at once; a 5 MB tool result would stall the browser."""

EMPTY_HINT = (
    "Load some runs first: `workbench demo` builds a sample fleet, "
    "`workbench ingest PATH` or the Import page loads your own trace exports."
)


# -- store ------------------------------------------------------------------------------------------------
def db_path() -> str:
    """The database this app serves: `$WORKBENCH_DB` (set by `workbench serve`) or the default file."""
    return str(default_db_path().resolve())


@st.cache_resource(show_spinner=False)
def _store(path: str) -> Store:
    # One connection per database for the whole process (`workbench serve` opened it before the server
    # started, so this process owns the file); each query takes its own cursor (Store.sql).
    return shared_store(path, serving=True)


def get_store() -> Store:
    """The process-wide store for `db_path()`, opened once and locked down for serving."""
    return _store(db_path())


def data_version() -> int:
    """The store's write counter; every cached wrapper below takes it, so a write invalidates them."""
    return get_store().data_version()


def require_data() -> Store:
    """Return the store, or stop the page with a friendly message when there is nothing to show yet.

    Call it first on every page.
    """
    path = Path(db_path())
    if not path.exists():
        st.info("No workbench database yet. " + EMPTY_HINT)
        st.text(f"Expected database: {path}")
        st.stop()
    try:
        store = get_store()
    except StoreError as exc:
        st.error("The workbench database could not be opened.")
        st.code(str(exc), language=None, wrap_lines=True)
        st.stop()
    if count_runs() == 0:
        st.info("The database holds no runs yet. " + EMPTY_HINT)
        st.stop()
    return store


# -- cached reads -----------------------------------------------------------------------------------------
# Each public wrapper adds (db path, data version) to the cache key; the private function does the work.


@st.cache_data(max_entries=64, show_spinner=False)
def _count_runs(db: str, flt: RunFilter | None, version: int) -> int:
    return queries.count_runs(_store(db), flt)


def count_runs(flt: RunFilter | None = None) -> int:
    """Number of runs matching `flt` (all runs when None)."""
    return _count_runs(db_path(), flt, data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _runs_page(db: str, flt: RunFilter, sort: str, descending: bool, page: int, page_size: int,
               version: int) -> RunsPage:
    return queries.runs_page(_store(db), flt, sort=sort, descending=descending, page=page,
                             page_size=page_size)


def runs_page(flt: RunFilter, sort: str, descending: bool, page: int, page_size: int) -> RunsPage:
    """Cached `queries.runs_page`."""
    return _runs_page(db_path(), flt, sort, descending, page, page_size, data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _overview(db: str, flt: RunFilter, version: int) -> Overview:
    return queries.overview(_store(db), flt)


def overview(flt: RunFilter) -> Overview:
    """Cached `queries.overview`."""
    return _overview(db_path(), flt, data_version())


@st.cache_data(max_entries=8, show_spinner=False)
def _filter_options(db: str, version: int) -> dict[str, Any]:
    return queries.filter_options(_store(db))


def filter_options() -> dict[str, Any]:
    """Cached `queries.filter_options`."""
    return _filter_options(db_path(), data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _get_run(db: str, run_id: str, version: int) -> dict[str, Any] | None:
    return queries.get_run(_store(db), run_id)


def get_run(run_id: str) -> dict[str, Any] | None:
    """Cached `queries.get_run`."""
    return _get_run(db_path(), run_id, data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _run_steps(db: str, run_id: str, version: int) -> pd.DataFrame:
    return queries.run_steps(_store(db), run_id, payloads=False)


def run_steps(run_id: str) -> pd.DataFrame:
    """Cached step list of a run, without payloads (fetch one step's payload with `get_step`)."""
    return _run_steps(db_path(), run_id, data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _get_step(db: str, run_id: str, step_id: str, version: int) -> dict[str, Any] | None:
    return queries.get_step(_store(db), run_id, step_id)


def get_step(run_id: str, step_id: str) -> dict[str, Any] | None:
    """Cached `queries.get_step`: one step with messages, tool args and result."""
    return _get_step(db_path(), run_id, step_id, data_version())


@st.cache_data(max_entries=8, show_spinner=False)
def _imports_table(db: str, version: int) -> pd.DataFrame:
    return imports.imports_table(_store(db))


def imports_table() -> pd.DataFrame:
    """Cached `imports.imports_table`: past imports, newest first."""
    return _imports_table(db_path(), data_version())


@st.cache_data(max_entries=64, show_spinner=False)
def _import_rejects(db: str, import_id: str, version: int) -> pd.DataFrame:
    return imports.import_rejects(_store(db), import_id)


def import_rejects(import_id: str) -> pd.DataFrame:
    """Cached `imports.import_rejects`: location, reason and excerpt of what one import could not read."""
    return _import_rejects(db_path(), import_id, data_version())


def writable_store() -> Store:
    """The store for an import: opened (and created when missing) on demand, or the page stops with why."""
    try:
        return get_store()
    except StoreError as exc:
        st.error("The workbench database could not be opened.")
        st.code(str(exc), language=None, wrap_lines=True)
        st.stop()


def progress_bar() -> Progress:
    """A progress bar with counts for `ingest_paths`; the current file's name is shown as text, not Markdown."""
    bar = st.progress(0.0, text="Starting")
    current = st.empty()

    def report(done: int, total: int, label: str) -> None:
        bar.progress(done / total if total else 1.0, text=f"{done:,} of {total:,} files")
        if done < total:
            current.text(label)
        else:
            current.empty()

    return report


# -- query parameters -------------------------------------------------------------------------------------
def query_param(name: str) -> str | None:
    """The last value of an (unbound) query parameter, or None when absent or blank."""
    value = st.query_params.get(name)
    return value or None


def set_query_param(name: str, value: str | None) -> None:
    """Set (or with None, remove) an unbound query parameter; unchanged values cause no browser update."""
    current = st.query_params.get(name)
    if value is None:
        if current is not None:
            del st.query_params[name]
    elif current != value:
        st.query_params[name] = value


# -- shared filter sidebar --------------------------------------------------------------------------------
_FILTER_DEFAULTS: dict[str, Any] = {
    "agent": [], "version": [], "outcome": [], "status": [], "format": [], "from": None, "to": None, "q": "",
}


def _reset_filters() -> None:
    for key, default in _FILTER_DEFAULTS.items():
        if key in st.session_state:
            st.session_state[key] = default


def filter_sidebar() -> RunFilter:
    """Draw the run filter in the sidebar and return it.

    The widgets are bound to query parameters (their keys, short because they are the URL a reviewer shares:
    agent, version, outcome, status, format, from, to, q), so the URL carries the filter and a colleague
    opening it sees the same runs. Streamlit keeps a bound value per page: Overview and Runs each remember
    their own filter while the reviewer moves between them.
    """
    opts = filter_options()
    bar = st.sidebar
    bar.subheader("Filter runs")
    bound = {"bind": "query-params"}
    agent = bar.multiselect("Agent", opts["agents"], key="agent", **bound)
    version = bar.multiselect("Agent version", opts["versions"], key="version", **bound)
    outcome = bar.multiselect("Outcome", _union(OUTCOMES, opts["outcomes"]), key="outcome", **bound)
    status = bar.multiselect("Status", _union(STATUSES, opts["statuses"]), key="status", **bound)
    fmt = bar.multiselect("Format", opts["formats"], key="format", **bound)
    left, right = bar.columns(2)
    dates = {"min_value": opts["date_min"], "max_value": opts["date_max"], "value": None}
    date_from = left.date_input("From", key="from", **dates, **bound)
    date_to = right.date_input("To", key="to", **dates, **bound)
    text = bar.text_input("Search", key="q", placeholder="id, task, input, output, error",
                          help="Case-insensitive substring; % and _ match themselves.", **bound)
    bar.button("Reset filters", on_click=_reset_filters, width="stretch")
    return RunFilter(agent=agent, agent_version=version, outcome=outcome, status=status, format=fmt,
                     date_from=date_from, date_to=date_to, text=text)


def _union(fixed: tuple[str, ...], found: list[str]) -> list[str]:
    # Known values first in their natural order, then anything else the data holds.
    return list(fixed) + [v for v in found if v not in fixed]


# -- formatting (numbers only: these strings may go into st.metric) ---------------------------------------
def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def fmt_duration(ms: float | None) -> str:
    """Milliseconds as a short human duration: 850 ms, 12.3 s, 4.5 min, 2.1 h."""
    if _missing(ms):
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def fmt_cost(usd: float | None) -> str:
    """Dollars with precision that suits the size (agent runs often cost fractions of a cent)."""
    if _missing(usd):
        return "–"
    if abs(usd) >= 100:
        return f"${usd:,.0f}"
    if abs(usd) >= 1:
        return f"${usd:,.2f}"
    return f"${usd:.4f}"


def fmt_pct(share: float | None) -> str:
    """A share in [0, 1] as a percentage."""
    return "–" if _missing(share) else f"{share:.1%}"


def fmt_int(value: int | None) -> str:
    """An integer with thousands separators."""
    return "–" if _missing(value) else f"{int(value):,}"


def clip(text: str | None, limit: int = TEXT_LIMIT) -> tuple[str, int]:
    """The first `limit` characters of `text` and its full length (so the page can say it was cut)."""
    if text is None:
        return "", 0
    return text[:limit], len(text)


def pretty_json(raw: str | None) -> str | None:
    """Indent JSON text for reading; anything that is not JSON is returned as it came."""
    if raw is None:
        return None
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return raw


def text_block(label: str, text: object, *, language: str | None = None) -> None:
    """Show untrusted text under a plain-text label, as code (never Markdown), cut to `TEXT_LIMIT`.

    `label` goes through st.text too, so it may carry trace values (a message role, say).
    """
    if text is None or text == "" or (isinstance(text, float) and math.isnan(text)):
        return
    shown, full = clip(str(text))
    st.text(label)
    st.code(shown, language=language, wrap_lines=True)
    if full > len(shown):
        st.caption(f"showing the first {len(shown):,} of {full:,} characters")
