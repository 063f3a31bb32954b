"""The failure and cost sections of the weekly review pack, and the action items they suggest.

Each function takes what `weekly_pack` already computed (the week's clustered failures, the filters) and returns
one section's DataFrame; `suggest_actions` reads a whole `ReviewPack`.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from workbench import analytics, labels
from workbench.queries import RunFilter, count_runs, get_run
from workbench.store import Store

if TYPE_CHECKING:
    from workbench.clustering_results import ClusterComparison
    from workbench.review_pack import ReviewPack

TOP_FAILURES = 10
OUTLIER_Z = 3.5
"""Modified z-score above which a run's cost is an outlier (Iglewicz and Hoaglin's cut-off)."""
OUTLIER_MIN_RUNS = 10
"""Priced runs an agent needs over the two weeks before its costs are judged."""
OUTLIER_RULE = (f"a run is a cost outlier when the modified z-score of its log cost, 0.6745 x (log cost - "
                f"median) / MAD over its agent's priced runs of this week and last week, is above {OUTLIER_Z} "
                f"(Iglewicz and Hoaglin); agents with fewer than {OUTLIER_MIN_RUNS} priced runs, or whose "
                "costs mostly repeat one value (MAD 0), are not judged")
_SEVERITY_RANK = {s: i + 1 for i, s in enumerate(labels.SEVERITIES)}


# -- failures -----------------------------------------------------------------------------------------------
def rising_clusters(comparison: ClusterComparison) -> pd.DataFrame:
    """The new and growing clusters of a `compare_periods` result, with this week's size, share and cost and
    three of each cluster's most typical runs."""
    table = comparison.table[comparison.table["change"].isin(["new", "growing"])]
    after = comparison.after.clusters.set_index("cluster")
    rows = []
    for _, r in table.iterrows():
        c = after.loc[int(r["cluster_after"])]
        rows.append({"cluster": int(r["cluster_after"]), "change": r["change"], "name": c["name"],
                     "size": int(r["size_after"]), "size_before": int(r["size_before"]),
                     "delta": int(r["size_after"]) - int(r["size_before"]), "share": float(c["share"]),
                     "rate_before": float(r["rate_before"]), "rate_after": float(r["rate_after"]),
                     "cost_usd": float(c["cost_usd"]), "examples": list(c["central_runs"])[:3]})
    return pd.DataFrame(rows, columns=["cluster", "change", "name", "size", "size_before", "delta", "share",
                                       "rate_before", "rate_after", "cost_usd", "examples"])


def _failure_rows(failures: pd.DataFrame) -> pd.DataFrame:
    """The clustered failures as the pack lists them: what happened is the error, else the final output."""
    out = failures[["run_id", "agent", "agent_version", "started_at", "cost_usd", "cluster_name"]].copy()
    error = failures["error"].fillna("")
    out["what_happened"] = error.where(error != "", failures["output"].fillna(""))
    return out


def top_failures(store: Store, failures: pd.DataFrame) -> pd.DataFrame:
    """Failed runs with the most severe current label first (any reviewer), then the most costly."""
    out = _failure_rows(failures)
    current = labels.current_labels(store)
    current = current[current["run_id"].isin(set(out["run_id"]))]
    rank = current.assign(rank=current["severity"].map(_SEVERITY_RANK).fillna(0)).groupby("run_id")["rank"].max()
    codes = current.groupby("run_id")["code"].agg(lambda s: ", ".join(sorted(set(s))))
    out["_rank"] = out["run_id"].map(rank).fillna(0)
    by_rank = {v: k for k, v in _SEVERITY_RANK.items()}
    out.insert(5, "severity", [by_rank.get(int(r)) for r in out["_rank"]])
    out.insert(6, "labels", [codes.get(r, "") for r in out["run_id"]])
    out["_cost"] = out["cost_usd"].fillna(-1.0)
    out = out.sort_values(["_rank", "_cost", "run_id"], ascending=[False, False, True])
    return out.drop(columns=["_rank", "_cost"]).head(TOP_FAILURES).reset_index(drop=True)


def unlabeled_failures(failures: pd.DataFrame, reviewed: set[str]) -> pd.DataFrame:
    """The week's failed runs that no reviewer has labeled (imported labels do not count), oldest first."""
    out = _failure_rows(failures)
    out = out[~out["run_id"].isin(reviewed)]
    return out.sort_values(["started_at", "run_id"]).reset_index(drop=True)


def open_disagreements(store: Store, base: RunFilter, start: date) -> pd.DataFrame:
    """Open disagreements on runs of the selection, whatever their week (they are the review's backlog)."""
    found = labels.disagreements(store)
    if len(found) and not base.is_empty():
        found = found[found["run_id"].isin(set(labels.run_ids(store, base)))]
    runs = {r: get_run(store, r) or {} for r in dict.fromkeys(found["run_id"])}
    votes = labels.current_labels(store, include_imported=False).dropna(subset=["note"])
    votes = votes[votes["note"] != ""].sort_values(["reviewer", "created_at"])
    notes = (votes["reviewer"] + ": " + votes["note"]).groupby([votes["run_id"], votes["code"]]).agg(" | ".join)
    out = found.assign(agent=[runs[r].get("agent") for r in found["run_id"]],
                       started_at=[runs[r].get("started_at") for r in found["run_id"]],
                       notes=[notes.get((r, c), "") for r, c in zip(found["run_id"], found["code"], strict=True)])
    out["this_week"] = [s is not None and start <= s.date() < start + timedelta(days=7) for s in out["started_at"]]
    out["_t"] = pd.to_datetime(out["started_at"])
    out = out.sort_values(["_t", "run_id", "code"], ascending=[False, True, True], na_position="last")
    return out.drop(columns="_t").reset_index(drop=True)


# -- costs --------------------------------------------------------------------------------------------------
def cost_outliers(store: Store, two_weeks: RunFilter, start: date) -> pd.DataFrame:
    """This week's runs whose cost is far above their agent's usual (see `OUTLIER_RULE`). Costs are skewed
    (a long run costs 100x a short one), so the score is taken on log cost: a run twice the median is as far
    out as one half of it."""
    runs = analytics.top_runs(store, two_weeks, n=count_runs(store, two_weeks))
    columns = ["run_id", "agent", "agent_version", "outcome", "started_at", "cost_usd", "median_usd",
               "times_median", "robust_z"]
    flagged = []
    for _, part in runs[runs["cost_usd"] > 0].groupby("agent"):
        if len(part) < OUTLIER_MIN_RUNS:
            continue
        logs = np.log(part["cost_usd"].astype(float))
        median = float(logs.median())
        mad = float((logs - median).abs().median())
        if mad == 0:
            continue
        z = 0.6745 * (logs - median) / mad
        hit = part[(z > OUTLIER_Z) & (pd.to_datetime(part["started_at"]) >= pd.Timestamp(start))]
        flagged.append(hit.assign(median_usd=math.exp(median), times_median=hit["cost_usd"] / math.exp(median),
                                  robust_z=z[hit.index]))
    if not flagged:
        return pd.DataFrame(columns=columns)
    out = pd.concat(flagged)[columns]
    return out.sort_values(["robust_z", "run_id"], ascending=[False, True]).reset_index(drop=True)


_WASTE_ITEMS = (("total_usd", "All spend"), ("failed_runs_usd", "On failed runs"),
                ("loops_usd", "On loops (identical calls repeated)"), ("retries_usd", "On retries"),
                ("estimated_usd", "Estimated from tokens, not reported"))


def waste_table(store: Store, this_flt: RunFilter, last_flt: RunFilter) -> pd.DataFrame:
    """`analytics.waste` of both weeks side by side, one row per kind of spend."""
    now, last = analytics.waste(store, this_flt), analytics.waste(store, last_flt)
    return pd.DataFrame([(label, key, now[key], last[key], now[key] - last[key]) for key, label in _WASTE_ITEMS],
                        columns=["item", "key", "this_week", "last_week", "change"])


# -- action items -------------------------------------------------------------------------------------------
_DRIFT_WORSE = {"success rate": -1, "cost per run": 1, "cost per success": 1, "latency (median ms)": 1}


def suggest_actions(pack: ReviewPack) -> pd.DataFrame:
    """Action items the data suggests: new and growing clusters, significant drift for the worse, cost
    outliers, unlabeled failures and open disagreements. Owner and due date are left to the meeting."""
    rows: list[tuple[str, str, str]] = []
    for _, c in pack.clusters.iterrows():
        link = pack.run_link(c["examples"][0]) if c["examples"] else ""
        if c["change"] == "new":
            rows.append((f"Label the new failure cluster \"{c['name']}\" and add its runs to the regression suite",
                         f"{c['size']} failed runs this week, none like them last week", link))
        else:
            rows.append((f"Find why \"{c['name']}\" grew and add a regression case",
                         f"{c['size_before']} → {c['size']} failed runs ({c['rate_before']:.1f} → "
                         f"{c['rate_after']:.1f} per 1,000 runs)", link))
    for _, d in pack.drift.iterrows():
        sign = _DRIFT_WORSE.get(d["metric"])
        change = d["change"]
        worse = d["metric"] == "failure mix" or (sign is not None and change is not None and change * sign > 0)
        if bool(d["significant"]) and worse:
            rows.append((f"Investigate the change in {d['metric']}",
                         f"last week {_drift_value(d['metric'], d['a'])}, this week "
                         f"{_drift_value(d['metric'], d['b'])} (Holm-adjusted p = {d['p_adjusted']:.2g})", ""))
    if len(pack.cost_outliers):
        top = pack.cost_outliers.iloc[0]
        rows.append((f"Review the {len(pack.cost_outliers)} cost outlier(s), starting with run {top['run_id']}",
                     f"it cost {top['times_median']:.1f}x its agent's median", pack.run_link(top["run_id"])))
    if len(pack.unlabeled):
        rows.append((f"Label the {len(pack.unlabeled)} unlabeled failure(s) of this week",
                     f"{len(pack.unlabeled)} of {pack.n_failures} failed runs have no reviewer's label",
                     f"{pack.base_url}/review"))
    if len(pack.disagreements):
        rows.append((f"Settle the {len(pack.disagreements)} open disagreement(s) between reviewers",
                     "reviewers voted differently and nobody has settled it", f"{pack.base_url}/labels"))
    return pd.DataFrame([(a, w, link, "", "") for a, w, link in rows],
                        columns=["action", "why", "link", "owner", "due"])


def _drift_value(metric: str, value) -> str:
    if not isinstance(value, float | int):
        return str(value)  # the failure mix's top category
    if metric == "success rate":
        return f"{value:.1%}"
    return f"{value / 1000:.1f} s" if metric.startswith("latency") else f"${value:.4f}"
