"""The Overview's "Weekly review pack" control: pick a week, build the pack, download it as HTML and Markdown.

The pack is built only when asked (clustering two weeks of failures takes a few seconds) and cached by the
database, the week, the selection and the data version, so a second download of the same week is instant and
any write (a label, an import) makes the next build fresh.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlparse

import pandas as pd
import streamlit as st

from workbench import analytics
from workbench.queries import RunFilter
from workbench.review_pack import DEFAULT_BASE_URL, weekly_pack
from workbench.review_pack_render import headline_lines
from workbench_ui import _store, data_version, db_path
from workbench_ui.ops import service_trend


@st.cache_data(max_entries=8, show_spinner=False)
def _build(db: str, week: date, flt: RunFilter, base_url: str, version: int) -> tuple[str, str, str, list[str]]:
    pack = weekly_pack(_store(db), week, base_url=base_url, flt=flt)
    return pack.label, pack.to_markdown(), pack.to_html(), headline_lines(pack)


def _app_url() -> str:
    """The address this browser reached the app at, so the pack's run links come back here."""
    url = st.context.url
    parts = urlparse(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return DEFAULT_BASE_URL
    path = parts.path.rstrip("/")
    path = path.removesuffix("/overview")
    return f"{parts.scheme}://{parts.netloc}{path}"


def _weeks(flt: RunFilter) -> list[date]:
    """Mondays of the weeks that hold runs of the selection, newest first."""
    trend = service_trend(flt)
    weeks = trend.loc[trend["agent"] == analytics.ALL, "week"]
    return sorted({pd.Timestamp(w).date() for w in weeks}, reverse=True)


def _week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d} (from {monday:%a %Y-%m-%d})"


def pack_control(flt: RunFilter) -> None:
    """The control itself: covers the sidebar's selection, except its dates (the week replaces them)."""
    selection = flt.model_copy(update={"date_from": None, "date_to": None})
    with st.expander("Weekly review pack", icon=":material/summarize:"):
        st.caption("One HTML page that opens offline, and the same as Markdown, for the weekly meeting: "
                   "service levels against last week, new and growing failure clusters, top failures, cost "
                   "outliers, open disagreements, unlabeled failures and action items. It covers the "
                   "sidebar's selection except its dates. See docs/weekly-review.md.")
        weeks = _weeks(selection)
        if not weeks:
            st.info("No runs with a start time in this selection.")
            return
        week = st.selectbox("Week", weeks, format_func=_week_label, key="pack.week")
        if st.button("Build the pack", key="pack.build", icon=":material/build:"):
            st.session_state["pack.built"] = (week, selection)
        if st.session_state.get("pack.built") != (week, selection):
            return
        with st.spinner("Clustering the two weeks' failures and building the pack ..."):
            label, md, page, lines = _build(db_path(), week, selection, _app_url(), data_version())
        st.text("\n".join(lines))
        left, right = st.columns(2)
        left.download_button("Download HTML", page, file_name=f"weekly-review-{label}.html", mime="text/html",
                             key="pack.html", on_click="ignore", icon=":material/download:")
        right.download_button("Download Markdown", md, file_name=f"weekly-review-{label}.md",
                              mime="text/markdown", key="pack.md", on_click="ignore", icon=":material/download:")
