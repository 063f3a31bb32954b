"""Streamlit glue of the Clusters page: cached clusterings and the write actions a reviewer takes on a cluster.

Clusterings are cached on (database, filter, parameters, data version). Clustering is deterministic, so
after a label is written (which bumps the data version) the recomputed clusters are the same ones, now
with their labels counted.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from workbench import clustering_results as cr
from workbench import labels
from workbench.queries import RunFilter
from workbench_ui import _store, data_version, db_path, get_store


@st.cache_data(max_entries=16, show_spinner="Clustering the failed runs ...")
def _clustering(db: str, flt: RunFilter, params: tuple, version: int) -> cr.Clustering:
    return cr.cluster_failures(_store(db), flt, **dict(params))


def clustering(flt: RunFilter, **params) -> cr.Clustering:
    """Cached `cluster_failures` of the selection."""
    return _clustering(db_path(), flt, tuple(sorted(params.items())), data_version())


@st.cache_data(max_entries=16, show_spinner=False)
def _stored(db: str, clustering_id: str, version: int) -> cr.Clustering:
    return cr.load_clustering(_store(db), clustering_id)


def stored(clustering_id: str) -> cr.Clustering | None:
    """A stored clustering, or None when the id is unknown."""
    try:
        return _stored(db_path(), clustering_id, data_version())
    except KeyError:
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def _stored_list(db: str, version: int) -> pd.DataFrame:
    return cr.list_clusterings(_store(db))


def stored_list() -> pd.DataFrame:
    """Stored clusterings, newest first."""
    return _stored_list(db_path(), data_version())


@st.cache_data(max_entries=8, show_spinner="Clustering both periods ...")
def _compare(db: str, kind: str, before: tuple, after: tuple, flt: RunFilter, params: tuple,
             version: int) -> pd.DataFrame:
    if kind == "versions":
        return cr.compare_versions(_store(db), before[0], after[0], flt, **dict(params)).table
    return cr.compare_periods(_store(db), before, after, flt, **dict(params)).table


def compare_periods(before: tuple[date, date], after: tuple[date, date], flt: RunFilter, **params) -> pd.DataFrame:
    """Cached `compare_periods(...).table`."""
    return _compare(db_path(), "periods", before, after, flt, tuple(sorted(params.items())), data_version())


def compare_versions(before: str, after: str, flt: RunFilter, **params) -> pd.DataFrame:
    """Cached `compare_versions(...).table`."""
    return _compare(db_path(), "versions", (before,), (after,), flt, tuple(sorted(params.items())),
                    data_version())


def label_codes() -> list[str]:
    """Codes of the current taxonomy (the default one is loaded on first use)."""
    return labels.current_taxonomy(get_store()).codes()


# -- writes -------------------------------------------------------------------------------------------------
def label_cluster(run_ids: list[str], code: str, reviewer: str, note: str | None = None) -> str:
    """Label every run of a cluster in one batch; returns the batch id (undo takes the whole batch)."""
    return labels.bulk_label(get_store(), run_ids, code, reviewer, note=note or None, source="clusters")


def undo(reviewer: str) -> int:
    return labels.undo_last(get_store(), reviewer)


def send_to_queue(run_ids: list[str], reviewer: str, assigned_by: str | None = None) -> int:
    return labels.assign(get_store(), run_ids, reviewer, assigned_by=assigned_by or None)


def save(clustering_: cr.Clustering, name: str, created_by: str | None = None) -> str:
    return cr.save_clustering(get_store(), clustering_, name=name or None, created_by=created_by or None)
