"""Drift: did success, cost, latency or the failure mix change between two versions or two periods?

Each metric gets a test, a p-value, an effect size, and a flag that is raised only when the change is
statistically significant after a Holm correction over the metrics of one comparison (so looking at five
metrics does not give five chances of a false alarm):

| metric | value shown | test | effect size |
|---|---|---|---|
| success rate | successes / known outcomes | two-proportion z-test | Cohen's h |
| cost per run | mean | Mann-Whitney U | rank-biserial correlation |
| cost per success | total cost / successes | permutation test (2,000 shuffles, seeded) | relative change |
| latency | median duration | Mann-Whitney U | rank-biserial correlation |
| failure mix | top category | chi-square on failure categories | Cramér's V |

Failure categories come from the current labels of failed runs (a run counts once per label), or from a run
attribute (`mix="attribute:KEY"`, e.g. an evaluator's failure type).
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from workbench.queries import RunFilter, _where
from workbench.rubric_results import CURRENT_LABELS
from workbench.store import Store

DRIFT_COLUMNS = ["metric", "a", "b", "change", "test", "statistic", "p_value", "p_adjusted", "effect_size",
                 "effect", "n_a", "n_b", "significant"]


def run_metrics(store: Store, flt: RunFilter | None = None, mix: str | None = "labels") -> pd.DataFrame:
    """Per run: run_id, outcome, cost_usd, duration_ms, and `categories` (failure categories, a list) for the
    failure mix."""
    where, params = _where(flt or RunFilter())
    runs = store.df(f"SELECT run_id, outcome, cost_usd, duration_ms FROM runs {where} ORDER BY run_id", params)
    runs["categories"] = [[] for _ in range(len(runs))]
    if mix is None or runs.empty:
        return runs
    if mix == "labels":
        cats = store.df(f"""SELECT run_id, list(DISTINCT code ORDER BY code) AS categories
            FROM {CURRENT_LABELS} WHERE run_id IN (SELECT run_id FROM runs {where}) GROUP BY run_id""", params)
    elif mix.startswith("attribute:"):
        path = "$." + json.dumps(mix.removeprefix("attribute:"))
        cats = store.df(f"""SELECT run_id, [json_extract_string(attributes, $path)] AS categories FROM runs {where}
            {'AND' if where else 'WHERE'} json_extract_string(attributes, $path) IS NOT NULL""",
                        {**params, "path": path})
    else:
        raise ValueError(f"mix is 'labels', 'attribute:KEY' or None, not {mix!r}")
    found = dict(zip(cats["run_id"], cats["categories"], strict=True))
    runs["categories"] = [list(found.get(r, [])) for r in runs["run_id"]]
    return runs


def _holm(pvalues: list[float | None]) -> list[float | None]:
    idx = sorted((p, i) for i, p in enumerate(pvalues) if p is not None and not math.isnan(p))
    out: list[float | None] = [None] * len(pvalues)
    running, m = 0.0, len(idx)
    for rank, (p, i) in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def _two_proportions(s1: int, n1: int, s2: int, n2: int) -> tuple[float, float, float]:
    """(z, two-sided p, Cohen's h) for success counts s of n."""
    from scipy import stats

    p1, p2 = s1 / n1, s2 / n2
    pooled = (s1 + s2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (p2 - p1) / se if se > 0 else 0.0
    h = 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))
    return z, float(2 * stats.norm.sf(abs(z))), h


def _mann_whitney(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(U, two-sided p, rank-biserial r > 0 when y tends to be larger)."""
    from scipy import stats

    res = stats.mannwhitneyu(y, x, alternative="two-sided")
    r = 2 * res.statistic / (len(x) * len(y)) - 1
    return float(res.statistic), float(res.pvalue), float(r)


def _cost_per_success_perm(a: pd.DataFrame, b: pd.DataFrame, n_perm: int = 2000, seed: int = 0
                           ) -> tuple[float, float]:
    cost = np.concatenate([a["cost_usd"].fillna(0).to_numpy(float), b["cost_usd"].fillna(0).to_numpy(float)])
    succ = np.concatenate([(a["outcome"] == "success").to_numpy(float), (b["outcome"] == "success").to_numpy(float)])
    n_a = len(a)

    def ratio_diff(order: np.ndarray) -> float:
        ca, sa = cost[order[:n_a]].sum(), succ[order[:n_a]].sum()
        cb, sb = cost[order[n_a:]].sum(), succ[order[n_a:]].sum()
        return (cb / sb if sb else np.inf) - (ca / sa if sa else np.inf)

    observed = ratio_diff(np.arange(len(cost)))
    rng = np.random.default_rng(seed)
    hits = sum(abs(ratio_diff(rng.permutation(len(cost)))) >= abs(observed) - 1e-15 for _ in range(n_perm))
    return float(observed), (hits + 1) / (n_perm + 1)


def compare(a: pd.DataFrame, b: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Compare two sets of runs (frames as `run_metrics` returns them); A is the baseline, B the candidate."""
    from scipy import stats

    rows: list[dict[str, Any]] = []
    ka, kb = a[a["outcome"].isin(["success", "failure"])], b[b["outcome"].isin(["success", "failure"])]
    sa, sb = int((ka["outcome"] == "success").sum()), int((kb["outcome"] == "success").sum())
    if len(ka) and len(kb):
        z, p, h = _two_proportions(sa, len(ka), sb, len(kb))
        rows.append(dict(metric="success rate", a=sa / len(ka), b=sb / len(kb), test="two-proportion z",
                         statistic=z, p_value=p, effect_size=h, effect="Cohen's h", n_a=len(ka), n_b=len(kb)))
    ca, cb = a["cost_usd"].dropna().to_numpy(float), b["cost_usd"].dropna().to_numpy(float)
    if len(ca) and len(cb):
        u, p, r = _mann_whitney(ca, cb)
        rows.append(dict(metric="cost per run", a=ca.mean(), b=cb.mean(), test="Mann-Whitney U", statistic=u,
                         p_value=p, effect_size=r, effect="rank-biserial r", n_a=len(ca), n_b=len(cb)))
    if sa and sb:
        cps_a, cps_b = a["cost_usd"].fillna(0).sum() / sa, b["cost_usd"].fillna(0).sum() / sb
        diff, p = _cost_per_success_perm(a, b)
        rows.append(dict(metric="cost per success", a=cps_a, b=cps_b, test="permutation (2,000)", statistic=diff,
                         p_value=p, effect_size=cps_b / cps_a - 1 if cps_a else None, effect="relative change",
                         n_a=len(a), n_b=len(b)))
    da, db = a["duration_ms"].dropna().to_numpy(float), b["duration_ms"].dropna().to_numpy(float)
    if len(da) and len(db):
        u, p, r = _mann_whitney(da, db)
        rows.append(dict(metric="latency (median ms)", a=float(np.median(da)), b=float(np.median(db)),
                         test="Mann-Whitney U", statistic=u, p_value=p, effect_size=r, effect="rank-biserial r",
                         n_a=len(da), n_b=len(db)))
    mix_a = pd.Series([c for cs in a.loc[a["outcome"] == "failure", "categories"] for c in cs], dtype="object")
    mix_b = pd.Series([c for cs in b.loc[b["outcome"] == "failure", "categories"] for c in cs], dtype="object")
    if len(mix_a) and len(mix_b):
        table = pd.crosstab(pd.concat([mix_a, mix_b], ignore_index=True),
                            np.repeat(["a", "b"], [len(mix_a), len(mix_b)]))
        if table.shape[0] > 1:
            chi2, p, _, _ = stats.chi2_contingency(table.to_numpy())
            v = math.sqrt(chi2 / (table.to_numpy().sum() * (min(table.shape) - 1)))
            rows.append(dict(metric="failure mix", a=str(mix_a.value_counts().idxmax()),
                             b=str(mix_b.value_counts().idxmax()), test="chi-square", statistic=chi2, p_value=p,
                             effect_size=v, effect="Cramér's V", n_a=len(mix_a), n_b=len(mix_b)))
    out = pd.DataFrame(rows, columns=[c for c in DRIFT_COLUMNS if c not in ("change", "p_adjusted", "significant")])
    out["p_adjusted"] = pd.Series(_holm(list(out["p_value"])), dtype="float64")
    out["significant"] = out["p_adjusted"] < alpha
    out["change"] = [b_ - a_ if isinstance(a_, int | float) and isinstance(b_, int | float) else None
                     for a_, b_ in zip(out["a"], out["b"], strict=True)]
    return out[DRIFT_COLUMNS]


def drift(store: Store, a: RunFilter, b: RunFilter, alpha: float = 0.05, mix: str | None = "labels"
          ) -> pd.DataFrame:
    """Compare the runs of two filters (two versions, two periods, ...); B is the one under suspicion.

    Example:
        >>> drift(store, RunFilter(agent="support-agent", agent_version="v1"),
        ...       RunFilter(agent="support-agent", agent_version="v2")).query("significant")  # doctest: +SKIP
    """
    return compare(run_metrics(store, a, mix), run_metrics(store, b, mix), alpha)


def last_two_weeks(store: Store, flt: RunFilter | None = None) -> tuple[RunFilter, RunFilter]:
    """(last week, this week) as filters: the 7 days up to the latest selected run, and the 7 days before."""
    where, params = _where(flt or RunFilter())
    latest = store.sql(f"SELECT max(started_at)::DATE FROM runs {where}", params).fetchone()[0]
    base = (flt or RunFilter()).model_dump()
    if latest is None:
        return RunFilter(**base), RunFilter(**base)
    this = RunFilter(**{**base, "date_from": latest - timedelta(days=6), "date_to": latest})
    last = RunFilter(**{**base, "date_from": latest - timedelta(days=13), "date_to": latest - timedelta(days=7)})
    return last, this
