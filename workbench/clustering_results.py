"""Clusterings of a store's failures: compute, describe as a table, keep, reopen, and compare over time.

Example:
    >>> c = cluster_failures(store, RunFilter(date_from=date(2026, 11, 9), date_to=date(2026, 11, 15)))  # doctest: +SKIP
    >>> c.clusters[["name", "size", "share", "cost_usd", "top_label"]]    # doctest: +SKIP
    >>> cid = save_clustering(store, c, name="weekly review 46")          # doctest: +SKIP
    >>> load_clustering(store, cid).clusters.equals(c.clusters)           # doctest: +SKIP
    >>> compare_periods(store, (mon_prev, sun_prev), (mon, sun)).table    # doctest: +SKIP
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from workbench.clustering import NOISE, FailureClusterer, layout_2d
from workbench.clustering_features import load_failures
from workbench.queries import RunFilter, count_runs
from workbench.store import Store

CENTRAL_RUNS = 5
"""Runs listed as a cluster's most typical (closest to its centre)."""
PREVIEW = 160
"""Characters of a run's error and output kept for the map's hover text."""

TABLE_COLUMNS = ["cluster", "name", "size", "share", "cost_usd", "mean_cost_usd", "agents", "versions",
                 "top_label", "top_label_runs", "central_runs", "terms", "signature", "shape"]
RUN_COLUMNS = ["run_id", "cluster", "cluster_name", "x", "y", "distance", "agent", "agent_version", "started_at",
               "cost_usd", "error", "output"]
_TABLE_TYPES = {"cluster": "int64", "size": "int64", "share": "float64", "cost_usd": "float64",
                "mean_cost_usd": "float64", "top_label_runs": "int64"}


@dataclass
class Clustering:
    """One clustering of the failed runs of a selection, as a meeting sees it."""

    runs: pd.DataFrame
    """One row per failed run: `RUN_COLUMNS` (x, y: map position; distance: cosine distance to the centre)."""
    clusters: pd.DataFrame
    """The cluster table: `TABLE_COLUMNS`, largest cluster first (cluster -1 holds HDBSCAN's noise)."""
    params: dict
    """The estimator's parameters (`FailureClusterer.get_params()`)."""
    filter: dict
    """The run selection (a `RunFilter` as a dict)."""
    period_from: date | None
    period_to: date | None
    n_selected: int
    """Runs in the selection, failed or not (the denominator of a failure rate)."""
    profiles: dict[int, dict[str, float]] = field(default_factory=dict)
    """Per cluster: its most weighted terms, for matching clusters of two clusterings."""
    clustering_id: str | None = None
    name: str | None = None
    created_at: datetime | None = None

    @property
    def n_failures(self) -> int:
        return len(self.runs)

    def members(self, cluster: int) -> pd.DataFrame:
        """The runs of one cluster, most typical first."""
        part = self.runs[self.runs["cluster"] == cluster]
        return part.sort_values(["distance", "run_id"], na_position="last").reset_index(drop=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def cluster_failures(store: Store, flt: RunFilter | None = None, **params) -> Clustering:
    """Cluster the failed runs (outcome failure or status error) of a selection.

    Args:
        store: the open store.
        flt: which runs; None for all. Only its failed runs are clustered.
        **params: `FailureClusterer` parameters (method, merge_threshold, n_clusters, random_state ...).
    """
    flt = flt or RunFilter()
    docs = load_failures(store, flt)
    model = FailureClusterer(**params)
    n_selected = count_runs(store, flt)
    if docs.empty:
        return Clustering(pd.DataFrame(columns=RUN_COLUMNS), pd.DataFrame(columns=TABLE_COLUMNS),
                          _jsonable(model.get_params()), flt.model_dump(mode="json"), flt.date_from, flt.date_to,
                          n_selected, created_at=_now())
    model.fit(docs)
    xy = layout_2d(model.embedding_, model.labels_, model.cluster_centers_)
    runs = pd.DataFrame({
        "run_id": docs["run_id"], "cluster": model.labels_,
        "cluster_name": [model.cluster_names_[c] for c in model.labels_],
        "x": xy[:, 0], "y": xy[:, 1], "distance": model.distances_,
        "agent": docs["agent"], "agent_version": docs["agent_version"], "started_at": docs["started_at"],
        "cost_usd": docs["cost_usd"], "error": docs["error"].fillna("").str.slice(0, PREVIEW),
        "output": docs["output"].fillna("").str.slice(0, PREVIEW),
    })
    table = _table(runs, docs["codes"], model)
    days = pd.to_datetime(docs["started_at"]).dropna()
    return Clustering(
        runs=runs, clusters=table, params=_jsonable(model.get_params()), filter=flt.model_dump(mode="json"),
        period_from=flt.date_from or (days.min().date() if len(days) else None),
        period_to=flt.date_to or (days.max().date() if len(days) else None),
        n_selected=n_selected, profiles={int(c): p for c, p in model.profiles_.items()}, created_at=_now())


def cluster_table(store: Store, flt: RunFilter | None = None, **params) -> pd.DataFrame:
    """The cluster table of `cluster_failures(store, flt, **params)`."""
    return cluster_failures(store, flt, **params).clusters


def _table(runs: pd.DataFrame, codes: pd.Series, model: FailureClusterer) -> pd.DataFrame:
    total = len(runs)
    rows = []
    for cluster, part in runs.groupby("cluster", sort=False):
        labels = Counter(code for lst in codes[part.index] for code in lst)
        top = min(labels.items(), key=lambda kv: (-kv[1], kv[0])) if labels else (None, 0)
        central = part.sort_values(["distance", "run_id"])["run_id"].head(CENTRAL_RUNS).tolist()
        rows.append({
            "cluster": int(cluster), "name": model.cluster_names_[cluster], "size": len(part),
            "share": len(part) / total, "cost_usd": float(part["cost_usd"].sum()),
            "mean_cost_usd": float(part["cost_usd"].mean()) if part["cost_usd"].notna().any() else None,
            "agents": _counts(part["agent"]), "versions": _counts(part["agent"].fillna("?") + " " +
                                                                  part["agent_version"].fillna("?")),
            "top_label": top[0], "top_label_runs": int(top[1]), "central_runs": central,
            "terms": ", ".join(model.cluster_terms_[cluster]), "signature": model.cluster_signatures_[cluster],
            "shape": model.cluster_shapes_[cluster],
        })
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    # largest first, noise last
    table["_noise"] = table["cluster"] == NOISE
    return table.sort_values(["_noise", "cluster"]).drop(columns="_noise").reset_index(drop=True)


def _counts(values: pd.Series) -> str:
    counts = values.fillna("(none)").value_counts()
    return ", ".join(f"{name} ({n})" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _plain(value):
    """A table cell as JSON can hold it, exactly (floats keep every digit; NaN becomes null)."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _jsonable(params: dict) -> dict:
    return json.loads(json.dumps(params, default=lambda v: list(v) if isinstance(v, tuple) else str(v)))


# -- keeping clusterings ------------------------------------------------------------------------------------
def save_clustering(store: Store, clustering: Clustering, name: str | None = None,
                    created_by: str | None = None) -> str:
    """Store a clustering (parameters, period, table, and every run's cluster and map position); returns its id."""
    cid = uuid.uuid4().hex[:16]
    clusters = {"table": [{k: _plain(v) for k, v in rec.items()}
                          for rec in clustering.clusters.to_dict(orient="records")],
                "profiles": {str(k): v for k, v in clustering.profiles.items()}}
    members = clustering.runs[["run_id", "cluster", "cluster_name", "x", "y", "distance"]].copy()
    members.insert(0, "clustering_id", cid)
    with store.transaction() as cur:
        cur.execute(
            "INSERT INTO clusterings VALUES ($id, $name, $at, $by, $method, $params, $filter, $pf, $pt, $n, $sel, "
            "$k, $clusters)",
            {"id": cid, "name": name or clustering.name, "at": clustering.created_at or _now(), "by": created_by,
             "method": clustering.params.get("method"), "params": json.dumps(clustering.params),
             "filter": json.dumps(clustering.filter), "pf": clustering.period_from, "pt": clustering.period_to,
             "n": clustering.n_failures, "sel": clustering.n_selected,
             "k": int((clustering.clusters["cluster"] != NOISE).sum()), "clusters": json.dumps(clusters)})
        cur.register("_members", members)
        cur.execute("INSERT INTO cluster_members SELECT clustering_id, run_id, cluster, cluster_name, x, y, "
                    "distance FROM _members")
        cur.unregister("_members")
    clustering.clustering_id = cid
    clustering.name = name or clustering.name
    return cid


def list_clusterings(store: Store) -> pd.DataFrame:
    """Stored clusterings, newest first."""
    return store.df("SELECT clustering_id, name, created_at, created_by, method, period_from, period_to, n_runs, "
                    "n_clusters FROM clusterings ORDER BY created_at DESC, clustering_id")


def load_clustering(store: Store, clustering_id: str) -> Clustering:
    """Reopen a stored clustering as it was saved: same clusters, names, positions and table.

    Run details shown next to it (agent, cost, error) are read from the runs as they are now."""
    row = store.sql("SELECT name, created_at, params, filter, period_from, period_to, n_selected, clusters "
                    "FROM clusterings WHERE clustering_id = $id", {"id": clustering_id}).fetchone()
    if row is None:
        raise KeyError(f"no stored clustering with id {clustering_id!r}")
    name, created_at, params, flt, pf, pt, n_selected, clusters = row
    clusters = json.loads(clusters)
    runs = store.df(
        f"""SELECT m.run_id, m.cluster, m.cluster_name, m.x, m.y, m.distance, r.agent, r.agent_version,
                   r.started_at, r.cost_usd, left(coalesce(r.error, ''), {PREVIEW}) AS error,
                   left(coalesce(r.output, ''), {PREVIEW}) AS output
            FROM cluster_members m LEFT JOIN runs r USING (run_id)
            WHERE m.clustering_id = $id ORDER BY m.run_id""", {"id": clustering_id})  # noqa: S608 - constant
    runs = runs.astype({"cluster": "int64", "distance": "float32"})
    table = pd.DataFrame(clusters["table"], columns=TABLE_COLUMNS).astype(_TABLE_TYPES)
    return Clustering(runs=runs[RUN_COLUMNS], clusters=table, params=json.loads(params), filter=json.loads(flt),
                      period_from=pf, period_to=pt, n_selected=n_selected,
                      profiles={int(k): v for k, v in clusters["profiles"].items()},
                      clustering_id=clustering_id, name=name, created_at=created_at)


# -- across time --------------------------------------------------------------------------------------------
GROWTH = 1.25
"""A matched cluster whose failure rate changed by this factor or more is growing (or shrinking by 1/GROWTH)."""
MIN_SIMILARITY = 0.3
"""Clusters of two clusterings whose profiles are less alike than this are not the same failure."""


@dataclass
class ClusterComparison:
    """Two clusterings (before, after) and how their clusters correspond."""

    before: Clustering
    after: Clustering
    table: pd.DataFrame
    """Columns: cluster_before, name_before, size_before, cluster_after, name_after, size_after, rate_before,
    rate_after (failures of the cluster per 1,000 runs of the selection), similarity, change (new, gone,
    growing, shrinking, steady)."""


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    dot = sum(v * b[k] for k, v in a.items() if k in b)
    na, nb = np.sqrt(sum(v * v for v in a.values())), np.sqrt(sum(v * v for v in b.values()))
    return float(dot / (na * nb)) if na and nb else 0.0


def compare_clusterings(before: Clustering, after: Clustering, min_similarity: float = MIN_SIMILARITY,
                        growth: float = GROWTH) -> pd.DataFrame:
    """Match the clusters of two clusterings one to one (Hungarian assignment on profile cosine similarity)
    and mark each pair or leftover: new (only after), gone (only before), growing, shrinking or steady (the
    cluster's failures per 1,000 selected runs changed by `growth` or more, or less)."""
    ta = before.clusters[before.clusters["cluster"] != NOISE].reset_index(drop=True)
    tb = after.clusters[after.clusters["cluster"] != NOISE].reset_index(drop=True)
    sim = np.array([[_cosine(before.profiles.get(int(a), {}), after.profiles.get(int(b), {}))
                     for b in tb["cluster"]] for a in ta["cluster"]]).reshape(len(ta), len(tb))
    pairs = []
    if sim.size:
        rows, cols = linear_sum_assignment(-sim)
        pairs = [(r, c) for r, c in zip(rows, cols, strict=True) if sim[r, c] >= min_similarity]
    rate_a = 1000 / before.n_selected if before.n_selected else np.nan
    rate_b = 1000 / after.n_selected if after.n_selected else np.nan
    out = []

    def row(a, b, s):
        ra = ta.loc[a] if a is not None else None
        rb = tb.loc[b] if b is not None else None
        size_a, size_b = (int(ra["size"]) if ra is not None else 0), (int(rb["size"]) if rb is not None else 0)
        if ra is None:
            change = "new"
        elif rb is None:
            change = "gone"
        else:
            ratio = (size_b * rate_b) / (size_a * rate_a) if size_a and rate_a else np.inf
            change = "growing" if ratio >= growth else "shrinking" if ratio <= 1 / growth else "steady"
        out.append({"cluster_before": int(ra["cluster"]) if ra is not None else None,
                    "name_before": ra["name"] if ra is not None else None, "size_before": size_a,
                    "cluster_after": int(rb["cluster"]) if rb is not None else None,
                    "name_after": rb["name"] if rb is not None else None, "size_after": size_b,
                    "rate_before": size_a * rate_a, "rate_after": size_b * rate_b,
                    "similarity": s, "change": change})

    for a, b in pairs:
        row(a, b, float(sim[a, b]))
    matched_a, matched_b = {a for a, _ in pairs}, {b for _, b in pairs}
    for b in range(len(tb)):
        if b not in matched_b:
            row(None, b, None)
    for a in range(len(ta)):
        if a not in matched_a:
            row(a, None, None)
    order = {"new": 0, "growing": 1, "shrinking": 2, "gone": 3, "steady": 4}
    table = pd.DataFrame(out, columns=["cluster_before", "name_before", "size_before", "cluster_after",
                                       "name_after", "size_after", "rate_before", "rate_after", "similarity",
                                       "change"])
    table["_o"] = table["change"].map(order)
    table["_s"] = -(table["size_after"] + table["size_before"])
    return table.sort_values(["_o", "_s"]).drop(columns=["_o", "_s"]).reset_index(drop=True)


def compare_periods(store: Store, before: tuple[date, date], after: tuple[date, date],
                    flt: RunFilter | None = None, **params) -> ClusterComparison:
    """Cluster the failures of two periods (first and last day, inclusive) separately and compare them."""
    base = (flt or RunFilter()).model_dump()
    a = cluster_failures(store, RunFilter(**{**base, "date_from": before[0], "date_to": before[1]}), **params)
    b = cluster_failures(store, RunFilter(**{**base, "date_from": after[0], "date_to": after[1]}), **params)
    return ClusterComparison(a, b, compare_clusterings(a, b))


def compare_versions(store: Store, before: str, after: str, flt: RunFilter | None = None,
                     **params) -> ClusterComparison:
    """Cluster the failures of two agent versions separately and compare them."""
    base = (flt or RunFilter()).model_dump()
    a = cluster_failures(store, RunFilter(**{**base, "agent_version": before}), **params)
    b = cluster_failures(store, RunFilter(**{**base, "agent_version": after}), **params)
    return ClusterComparison(a, b, compare_clusterings(a, b))
