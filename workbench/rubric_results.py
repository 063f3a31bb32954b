"""Reading scores back: verdicts per run, pass rates per criterion by version and week, the failing runs of a
criterion, and how well the rubric's verdict agrees with outcomes or with reviewers' labels.

A criterion scored by several scorers (several reviewers on a human criterion) passes a run when at least
half of them passed it. The weighted total counts applicable criteria only; a run passes when no required
criterion failed and the total reaches the rubric's `pass_threshold`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from workbench.labels import _LATEST
from workbench.queries import RunFilter, _where
from workbench.rubrics import Rubric
from workbench.store import Store

#: The current labels, as the labeling module defines them (workbench.labels: the latest add/remove per run,
#: step, code and reviewer, kept when it is an add), as a subquery.
CURRENT_LABELS = f"(SELECT run_id, step_id, code, reviewer, severity FROM ({_LATEST}) WHERE action = 'add')"

#: Group-by keys for pass rates, mapped to their SQL over runs (alias r).
GROUPS: dict[str, str] = {
    "agent": "r.agent", "agent_version": "r.agent_version", "format": "r.format",
    "week": "date_trunc('week', r.started_at)", "day": "date_trunc('day', r.started_at)",
}


def _version(store: Store, rubric: Rubric, version: str | None) -> str:
    return version or rubric.version


def _run_filter(flt: RunFilter | None) -> tuple[str, dict[str, Any]]:
    where, params = _where(flt or RunFilter())
    if not where:
        return "true", params
    return f"run_id IN (SELECT run_id FROM runs {where})", params  # noqa: S608 - fixed fragments


_PER_CRITERION = """per AS (SELECT run_id, criterion, avg(passed::INT) AS share FROM scores
    WHERE rubric_id = $rb AND version = $v AND {flt} GROUP BY run_id, criterion)"""


def verdicts(store: Store, rubric: Rubric, version: str | None = None, flt: RunFilter | None = None) -> pd.DataFrame:
    """One row per scored run: total (weighted share passed), applicable, failed (criterion ids), required_failed,
    unscored (criteria without any score yet, e.g. human ones), verdict (pass / fail / n/a), run facts."""
    fsql, params = _run_filter(flt)
    params.update(rb=rubric.name, v=_version(store, rubric, version), threshold=rubric.pass_threshold,
                  ids=[c.id for c in rubric.criteria], weights=[c.weight for c in rubric.criteria],
                  req=[c.required for c in rubric.criteria], ord=list(range(len(rubric.criteria))),
                  n_crit=len(rubric.criteria))
    return store.df(f"""
        WITH w AS (SELECT unnest($ids) AS criterion, unnest($weights::DOUBLE[]) AS weight,
                          unnest($req::BOOLEAN[]) AS required, unnest($ord) AS ord),
        {_PER_CRITERION.format(flt=fsql)},
        agg AS (SELECT per.run_id,
                sum(weight * (share >= 0.5)::INT) FILTER (share IS NOT NULL)
                    / nullif(sum(weight) FILTER (share IS NOT NULL), 0) AS total,
                count(*) FILTER (share IS NOT NULL) AS applicable,
                coalesce(list(criterion ORDER BY ord) FILTER (share < 0.5), []) AS failed,
                coalesce(bool_or(required AND share < 0.5), false) AS required_failed,
                $n_crit - count(*) AS unscored
            FROM per JOIN w USING (criterion) GROUP BY per.run_id)
        SELECT agg.run_id, r.agent, r.agent_version, r.started_at, r.outcome, agg.total, agg.applicable,
            agg.failed, agg.required_failed, agg.unscored,
            CASE WHEN agg.total IS NULL THEN 'n/a'
                 WHEN agg.required_failed OR agg.total < $threshold - 1e-9 THEN 'fail' ELSE 'pass' END AS verdict
        FROM agg JOIN runs r USING (run_id) ORDER BY r.started_at DESC NULLS LAST, agg.run_id""", params)


def pass_rates(store: Store, rubric: Rubric, version: str | None = None,
               by: tuple[str, ...] = ("agent_version", "week"), flt: RunFilter | None = None) -> pd.DataFrame:
    """Per criterion (and `(verdict)` for the whole rubric) and group: applicable runs, passed, pass_rate.

    Args:
        by: keys of `GROUPS` (agent, agent_version, format, week, day).
    """
    bad = [b for b in by if b not in GROUPS]
    if bad:
        raise ValueError(f"cannot group by {bad}; choose from {', '.join(GROUPS)}")
    fsql, params = _run_filter(flt)
    params.update(rb=rubric.name, v=_version(store, rubric, version))
    keys = "".join(f", {GROUPS[b]} AS {b}" for b in by)
    frame = store.df(f"""WITH {_PER_CRITERION.format(flt=fsql)}
        SELECT criterion{keys}, count(*) FILTER (share IS NOT NULL) AS applicable,
            count(*) FILTER (share >= 0.5) AS passed
        FROM per JOIN runs r USING (run_id) GROUP BY ALL""", params)
    v = verdicts(store, rubric, version, flt)
    v = v[v["verdict"] != "n/a"]
    if not v.empty:
        v = v.assign(week=v["started_at"].dt.to_period("W-SUN").dt.start_time,
                     day=v["started_at"].dt.normalize(), format=None)
        if "format" in by:
            fmt = store.df("SELECT run_id, format FROM runs WHERE list_contains($ids, run_id)",
                           {"ids": list(v["run_id"])})
            v = v.drop(columns="format").merge(fmt, on="run_id", how="left")
        overall = (v.assign(ok=v["verdict"] == "pass").groupby(list(by), dropna=False)
                   .agg(applicable=("ok", "size"), passed=("ok", "sum")).reset_index())
        overall.insert(0, "criterion", "(verdict)")
        frame = pd.concat([frame, overall[frame.columns]], ignore_index=True) if len(frame) else overall
    order = {c.id: i for i, c in enumerate(rubric.criteria)}
    frame["pass_rate"] = (frame["passed"] / frame["applicable"].where(frame["applicable"] > 0)).astype("float64")
    frame["_o"] = frame["criterion"].map(order).fillna(-1)
    return frame.sort_values(["_o", *by]).drop(columns="_o").reset_index(drop=True)


def failing_runs(store: Store, rubric: Rubric, criterion: str, version: str | None = None,
                 flt: RunFilter | None = None, limit: int = 500) -> pd.DataFrame:
    """The runs that failed one criterion, newest first, with the evidence step and text, and the scorer."""
    rubric.criterion(criterion)  # KeyError for an unknown id
    fsql, params = _run_filter(flt)
    params.update(rb=rubric.name, v=_version(store, rubric, version), c=criterion, n=int(limit))
    return store.df(f"""SELECT s.run_id, r.agent, r.agent_version, r.started_at, r.outcome, s.value, s.step_id,
            s.evidence, s.scorer FROM scores s JOIN runs r USING (run_id)
        WHERE s.rubric_id = $rb AND s.version = $v AND s.criterion = $c AND NOT s.passed AND {fsql}
        ORDER BY r.started_at DESC NULLS LAST, s.run_id LIMIT $n""", params)


@dataclass(frozen=True)
class Agreement:
    """The rubric's verdict against a reference (outcome, or reviewers' labels)."""

    matrix: pd.DataFrame
    """Rows verdict pass / fail, columns reference ok / failure (counts)."""
    n: int
    accuracy: float | None
    kappa: float | None
    """Cohen's kappa: agreement beyond chance (1 perfect, 0 chance level)."""
    disagreements: pd.DataFrame
    """run_id, verdict, reference, failed criteria."""


def agreement(store: Store, rubric: Rubric, version: str | None = None,
              against: Literal["outcome", "labels"] = "outcome", flt: RunFilter | None = None) -> Agreement:
    """Confusion matrix of verdict (pass/fail) against the outcome (success -> ok) or against labels: a run
    with a current failure label is `failure`, a run whose labels were all removed is `ok`, runs nobody
    labeled are left out."""
    v = verdicts(store, rubric, version, flt)
    v = v[v["verdict"].isin(["pass", "fail"])]
    if against == "outcome":
        ref = v["outcome"].map({"success": "ok", "failure": "failure"})
    else:
        labeled = store.df(f"""SELECT e.run_id, bool_or(c.run_id IS NOT NULL) AS has_label
            FROM label_events e LEFT JOIN {CURRENT_LABELS} c USING (run_id) GROUP BY e.run_id""")
        lab = dict(zip(labeled["run_id"], labeled["has_label"], strict=True))
        ref = v["run_id"].map(lambda r: None if r not in lab else ("failure" if lab[r] else "ok"))
    v = v.assign(reference=ref).dropna(subset=["reference"])
    matrix = pd.crosstab(pd.Categorical(v["verdict"], ["pass", "fail"]),
                         pd.Categorical(v["reference"], ["ok", "failure"]), dropna=False)
    matrix.index.name, matrix.columns.name = "verdict", against
    n = int(matrix.to_numpy().sum())
    acc = kappa = None
    if n:
        agree = int(matrix.loc["pass", "ok"] + matrix.loc["fail", "failure"])
        acc = agree / n
        expected = float((matrix.sum(axis=1).to_numpy() * matrix.sum(axis=0).to_numpy()).sum()) / n**2
        kappa = (acc - expected) / (1 - expected) if expected < 1 else None
    bad = v[(v["verdict"] == "pass") != (v["reference"] == "ok")]
    return Agreement(matrix, n, acc, kappa,
                     bad[["run_id", "agent", "agent_version", "verdict", "reference", "failed"]].reset_index(drop=True))
