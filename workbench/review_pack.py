"""The weekly review pack: one self-contained HTML (and Markdown) file the meeting opens, offline.

It gathers what the library already computes for one ISO week (Monday to Sunday) and the week before:
service levels (`analytics.service_levels`, per agent too) and their weekly trend, a drift check
(`drift.drift`), the failures clustered per week and matched (`clustering_results.compare_periods`), the
costliest and most severe failures, cost outliers and waste (`analytics.top_runs`, `analytics.waste`), the open
disagreements between reviewers and the unlabeled failures (`labels`), and action items derived from all that.
No query of its own: a number in the pack is the number the app and a notebook show for the same filter.

The week defaults to the one holding the latest run of the selection, so the demo's last week works whatever
today's date. The failure and cost sections are computed in `workbench.review_pack_findings`; rendering lives
in `workbench.review_pack_render` (Markdown) and `workbench.review_pack_html`.

Example:
    >>> pack = weekly_pack(store)                                  # doctest: +SKIP
    >>> pack.service                                               # this week against last   # doctest: +SKIP
    >>> pack.write("reports/")                                     # .md and .html             # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlparse

import numpy as np
import pandas as pd

from workbench import analytics, labels
from workbench.drift import DRIFT_COLUMNS, drift
from workbench.queries import RunFilter, count_runs
from workbench.review_pack_findings import (
    cost_outliers,
    open_disagreements,
    rising_clusters,
    suggest_actions,
    top_failures,
    unlabeled_failures,
    waste_table,
)
from workbench.store import Store

DEFAULT_BASE_URL = "http://127.0.0.1:8501"
"""Where the app serves by default (`workbench serve`); deep links point at its Replay page."""
METRICS = ("runs", "success_rate", "human_share", "cost_per_success", "p50_ms", "p95_ms", "p99_ms",
           "error_rate", "retry_rate", "cost")
"""Headline metrics, in the order the pack shows them."""
RATE_METRICS = ("success_rate", "human_share", "error_rate", "retry_rate")
"""Metrics that are shares of runs (their changes are in percentage points)."""
_BETTER = {"success_rate": 1, "human_share": -1, "cost_per_success": -1, "p50_ms": -1, "p95_ms": -1,
           "p99_ms": -1, "error_rate": -1, "retry_rate": -1}
"""+1 when up is better, -1 when down is better; runs and total cost are volume, neither better nor worse."""
FLAT_RATE = 0.0005
"""A rate that moved by less than 0.05 points is flat."""
FLAT_RELATIVE = 0.005
"""A cost or duration that moved by less than 0.5 % of its larger value is flat (p99 +2 ms on 30 min); a run
count is flat only when equal."""
TREND_WEEKS = 12
"""Weeks of the fleet's trend shown, up to the reviewed one."""
CHANGES = ("new", "growing", "shrinking", "gone", "steady")


@dataclass
class ReviewPack:
    """One week's review pack: each section as a DataFrame, rendered by `to_markdown` / `to_html`."""

    week_start: date
    """Monday of the reviewed ISO week; last week is the seven days before it."""
    generated_at: datetime
    base_url: str
    """The app's address; run links are `{base_url}/run?run=<id>`."""
    filter: RunFilter
    """The selection (its dates are ignored: the week sets them)."""
    n_runs_selected: int
    """Runs of the selection in any week; 0 means the pack has no data."""
    service: pd.DataFrame
    """metric, this_week, last_week, change, direction (up/down/flat), assessment (better/worse/'')."""
    by_agent: pd.DataFrame
    """agent, then per metric `<m>` (this week), `<m>_last`, `<m>_change`."""
    trend: pd.DataFrame
    """The fleet week by week, up to the reviewed week: week, runs, success_rate, cost_per_success, p95_ms, cost."""
    drift: pd.DataFrame
    """`drift.drift(last week, this week)`: tests with Holm-corrected p-values."""
    clusters: pd.DataFrame
    """New and growing failure clusters: cluster, change, name, size, size_before, delta, share, rate_before,
    rate_after (failures per 1,000 runs), cost_usd, examples (run ids)."""
    cluster_changes: dict[str, int]
    """Clusters per change (new, growing, shrinking, gone, steady)."""
    n_failures: int
    n_failures_last: int
    top_failures: pd.DataFrame
    """This week's failed runs, most severe label first, then most costly."""
    cost_outliers: pd.DataFrame
    """This week's runs flagged by `OUTLIER_RULE`, most extreme first."""
    waste: pd.DataFrame
    """item, key, this_week, last_week, change: money that bought nothing (`analytics.waste`)."""
    disagreements: pd.DataFrame
    """Open disagreements (any week) on runs of the selection: run_id, code, yes_by, no_by, agent, started_at,
    notes (the reviewers' notes on that label), this_week."""
    unlabeled: pd.DataFrame
    """This week's failed runs no reviewer has labeled, oldest first."""
    unlabeled_backlog: int
    """Unlabeled failed runs of the selection, any week."""
    progress: pd.DataFrame
    """Per reviewer: assigned, assigned_done, labeled, events (`labels.progress`)."""
    actions: pd.DataFrame
    """Suggested action items: action, why, link, owner, due (owner and due left for the meeting)."""

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)

    @property
    def last_week_start(self) -> date:
        return self.week_start - timedelta(days=7)

    @property
    def last_week_end(self) -> date:
        return self.week_start - timedelta(days=1)

    @property
    def label(self) -> str:
        """The ISO week, e.g. 2026-W46."""
        year, week, _ = self.week_start.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def has_data(self) -> bool:
        return self.n_runs_selected > 0

    def run_link(self, run_id: str) -> str:
        """Deep link to one run on the app's Replay page."""
        return f"{self.base_url}/run?run={quote(str(run_id), safe='')}"

    def sections(self) -> dict[str, pd.DataFrame]:
        """Every table of the pack by name, for a notebook."""
        return {"service": self.service, "by_agent": self.by_agent, "trend": self.trend, "drift": self.drift,
                "clusters": self.clusters, "top_failures": self.top_failures, "cost_outliers": self.cost_outliers,
                "waste": self.waste, "disagreements": self.disagreements, "unlabeled": self.unlabeled,
                "progress": self.progress, "actions": self.actions}

    def headline(self) -> dict[str, object]:
        """The figures the CLI prints: this week and last for the main service levels, and the counts."""
        s = self.service.set_index("metric") if len(self.service) else None
        out: dict[str, object] = {"week": self.label}
        for m in ("runs", "success_rate", "cost_per_success", "p95_ms", "cost"):
            out[m] = _plain(s.loc[m, "this_week"]) if s is not None else None
            out[f"{m}_last"] = _plain(s.loc[m, "last_week"]) if s is not None else None
        out |= {"failures": self.n_failures, "new_clusters": self.cluster_changes.get("new", 0),
                "growing_clusters": self.cluster_changes.get("growing", 0), "cost_outliers": len(self.cost_outliers),
                "unlabeled_failures": len(self.unlabeled), "open_disagreements": len(self.disagreements),
                "action_items": len(self.actions)}
        return out

    def to_markdown(self) -> str:
        from workbench.review_pack_render import render_markdown

        return render_markdown(self)

    def to_html(self) -> str:
        from workbench.review_pack_html import render_html

        return render_html(self)

    def write(self, folder: str | Path) -> tuple[Path, Path]:
        """Write `weekly-review-YYYY-Www.md` and `.html` into `folder` (created if needed); returns both paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        md, page = folder / f"weekly-review-{self.label}.md", folder / f"weekly-review-{self.label}.html"
        md.write_text(self.to_markdown(), encoding="utf-8")
        page.write_text(self.to_html(), encoding="utf-8")
        return md, page


def _plain(value) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _as_date(week: date | str | None) -> date | None:
    if isinstance(week, datetime):
        return week.date()
    return date.fromisoformat(week) if isinstance(week, str) else week


def _check_base_url(base_url: str | None) -> str:
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise ValueError(f"base_url must be an http(s) address such as {DEFAULT_BASE_URL}, not {url!r}")
    return url


def weekly_pack(store: Store, week: date | str | None = None, *, base_url: str | None = None,
                flt: RunFilter | None = None, now: datetime | None = None) -> ReviewPack:
    """Build the review pack of one ISO week against the week before.

    Args:
        store: the open store (writable, so the derived cost tables can be refreshed first).
        week: any day of the week to review; default: the week of the latest run of the selection (of `now`
            when there are no runs).
        base_url: the app's address for deep links (default `DEFAULT_BASE_URL`).
        flt: which runs (agents, versions ...); its dates are replaced by the two weeks'.
        now: the time stamped on the pack (default: now, UTC); fix it for byte-identical output.
    """
    # scikit-learn takes about 2 s to import: loaded here, so importing workbench stays light
    from workbench.clustering_results import compare_periods

    base_url = _check_base_url(base_url)
    now = now or datetime.now(UTC).replace(tzinfo=None)
    base = (flt or RunFilter()).model_copy(update={"date_from": None, "date_to": None})
    trend_all = analytics.service_trend(store, base)
    fleet_trend = trend_all[trend_all["agent"] == analytics.ALL]
    day = _as_date(week)
    if day is None:
        day = pd.Timestamp(fleet_trend["week"].max()).date() if len(fleet_trend) else now.date()
    start = _monday(day)
    this_flt = base.model_copy(update={"date_from": start, "date_to": start + timedelta(days=6)})
    last_flt = base.model_copy(update={"date_from": start - timedelta(days=7), "date_to": start - timedelta(days=1)})

    fleet_now, fleet_last = _week_levels(store, this_flt), _week_levels(store, last_flt)
    comparison = compare_periods(store, (last_flt.date_from, last_flt.date_to), (start, this_flt.date_to), flt=base)
    failures = comparison.after.runs
    reviewed = set(labels.current_labels(store, include_imported=False)["run_id"])
    outliers = cost_outliers(store, base.model_copy(update={"date_from": last_flt.date_from,
                                                             "date_to": this_flt.date_to}), start)
    pack = ReviewPack(
        week_start=start, generated_at=now, base_url=base_url, filter=base,
        n_runs_selected=count_runs(store, base),
        service=_compare(_fleet_row(fleet_now), _fleet_row(fleet_last)),
        by_agent=_by_agent(store, this_flt, last_flt, fleet_now, fleet_last),
        trend=_trend(fleet_trend, start),
        drift=drift(store, last_flt, this_flt) if len(fleet_now) and len(fleet_last)
        else pd.DataFrame(columns=DRIFT_COLUMNS),
        clusters=rising_clusters(comparison),
        cluster_changes={c: int((comparison.table["change"] == c).sum()) for c in CHANGES},
        n_failures=len(failures), n_failures_last=comparison.before.n_failures,
        top_failures=top_failures(store, failures),
        cost_outliers=outliers,
        waste=waste_table(store, this_flt, last_flt),
        disagreements=open_disagreements(store, base, start),
        unlabeled=unlabeled_failures(failures, reviewed),
        unlabeled_backlog=len(set(labels.run_ids(store, base, failures_only=True)) - reviewed),
        progress=labels.progress(store),
        actions=pd.DataFrame(),
    )
    pack.actions = suggest_actions(pack)
    return pack


# -- service levels -----------------------------------------------------------------------------------------
def _week_levels(store: Store, week_flt: RunFilter) -> pd.DataFrame:
    """`service_levels` of one week's runs. The filter holds exactly seven days, all within seven days of its
    latest run, so every row falls in the function's "this week"."""
    levels = analytics.service_levels(store, week_flt).current
    return levels[levels["period"] == "this_week"]


def _fleet_row(levels: pd.DataFrame) -> pd.Series | None:
    rows = levels[(levels["agent"] == analytics.ALL) & (levels["agent_version"] == analytics.ALL)]
    return rows.iloc[0] if len(rows) else None


def _value(row: pd.Series | None, metric: str) -> float | None:
    if row is None:  # a week without runs: nothing ran and nothing was spent; the rates are undefined
        return 0.0 if metric in ("runs", "cost") else None
    value = row[metric]
    return None if value is None or pd.isna(value) else float(value)


def _direction(metric: str, change: float | None, scale: float) -> tuple[str, str]:
    """(up / down / flat, better / worse / '') of one metric's change; a change too small to matter is flat,
    neither better nor worse."""
    if change is None:
        return "", ""
    tolerance = FLAT_RATE if metric in RATE_METRICS else 0 if metric == "runs" else FLAT_RELATIVE * scale
    if abs(change) <= tolerance:
        return "flat", ""
    up = change > 0
    better = _BETTER.get(metric, 0)
    return ("up" if up else "down"), ("" if better == 0 else "better" if up == (better > 0) else "worse")


def _compare(this: pd.Series | None, last: pd.Series | None) -> pd.DataFrame:
    rows = []
    for m in METRICS:
        a, b = _value(this, m), _value(last, m)
        change = a - b if a is not None and b is not None else None
        rows.append((m, a, b, change, *_direction(m, change, max(abs(a or 0), abs(b or 0)))))
    frame = pd.DataFrame(rows, columns=["metric", "this_week", "last_week", "change", "direction", "assessment"])
    return frame.astype({"this_week": "float64", "last_week": "float64", "change": "float64"})


def _by_agent(store: Store, this_flt: RunFilter, last_flt: RunFilter, fleet_now: pd.DataFrame,
              fleet_last: pd.DataFrame) -> pd.DataFrame:
    """Each agent's totals (all its versions) this week and last, from `service_levels` on that agent alone."""
    found = pd.concat([fleet_now["agent"], fleet_last["agent"]]).dropna()
    agents = sorted(a for a in set(found) if a != analytics.ALL)
    rows = []
    for agent in agents:
        this = _fleet_row(_week_levels(store, this_flt.model_copy(update={"agent": (agent,)})))
        last = _fleet_row(_week_levels(store, last_flt.model_copy(update={"agent": (agent,)})))
        cmp = _compare(this, last).set_index("metric")
        row: dict[str, object] = {"agent": agent}
        for m in METRICS:
            row |= {m: cmp.loc[m, "this_week"], f"{m}_last": cmp.loc[m, "last_week"],
                    f"{m}_change": cmp.loc[m, "change"]}
        rows.append(row)
    columns = ["agent", *[c for m in METRICS for c in (m, f"{m}_last", f"{m}_change")]]
    return pd.DataFrame(rows, columns=columns)


def _trend(fleet_trend: pd.DataFrame, start: date) -> pd.DataFrame:
    weeks = fleet_trend[pd.to_datetime(fleet_trend["week"]) <= pd.Timestamp(start)].tail(TREND_WEEKS)
    out = weeks[["week", "runs", "success_rate", "cost_per_success", "p95_ms", "cost"]].copy()
    out["week"] = pd.to_datetime(out["week"]).dt.date
    return out.reset_index(drop=True)


