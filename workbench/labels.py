"""Failure labels: taxonomy, append-only label events, the review queue and agreement between reviewers.

Nothing is ever updated or deleted. A reviewer adding a code to a run (or a step) appends an `add` event;
taking it back appends `remove`; undo appends the inverse of the reviewer's last action (or of a whole bulk
batch). The *current* labels are the latest event per (run, step, code, reviewer) when it is an `add`.
Disagreements between reviewers are decided with `settle_add` / `settle_remove` events by whoever settles
them; the original votes stay as they were.

Labels imported with a trace file (Who&When) carry reviewer `imported` and enter agreement only when asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from workbench.loaders.base import IMPORTED_REVIEWER
from workbench.queries import RunFilter, _where
from workbench.store import Store
from workbench.taxonomy import (  # noqa: F401 - the taxonomy is part of this module's public surface
    RESERVED_KEYS,
    Taxonomy,
    TaxonomyLabel,
    current_taxonomy,
    default_taxonomy,
    load_taxonomy,
    parse_taxonomy,
)

SEVERITIES = ("low", "medium", "high", "critical")
_ADDS = ("add", "settle_add")
_INVERSE = {"add": "remove", "remove": "add", "settle_add": "settle_remove", "settle_remove": "settle_add"}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- writing events ---------------------------------------------------------------------------------------
def _append(store: Store, rows: list[tuple]) -> None:
    with store.transaction() as cur:
        cur.executemany("INSERT INTO label_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def _event(run_id: str, step_id: str | None, code: str, severity: str | None, note: str | None, reviewer: str,
           action: str, version: str | None, source: str, batch_id: str | None) -> tuple:
    if not reviewer or reviewer == IMPORTED_REVIEWER:
        raise ValueError(f"a label needs a reviewer's name (not {reviewer!r})")
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
    return (uuid.uuid4().hex, run_id, step_id, code, severity, note, reviewer, _now(), action, version, source,
            batch_id)


def _check_runs(store: Store, run_ids: Sequence[str], step_id: str | None = None) -> None:
    """Refuse a label on a run (or step) the store does not hold: a typo would otherwise be stored for good."""
    if step_id is not None:
        found = store.sql("SELECT count(*) FROM steps WHERE run_id = $r AND step_id = $s",
                          {"r": run_ids[0], "s": step_id}).fetchone()[0]
        if not found:
            raise ValueError(f"no step {step_id!r} in run {run_ids[0]!r}")
        return
    known = store.sql("SELECT count(*) FROM runs WHERE list_contains($ids, run_id)",
                      {"ids": list(run_ids)}).fetchone()[0]
    if known != len(run_ids):
        missing = sorted(set(run_ids) - {r for (r,) in store.sql(
            "SELECT run_id FROM runs WHERE list_contains($ids, run_id)", {"ids": list(run_ids)}).fetchall()})
        raise ValueError(f"{len(missing)} unknown run id(s), e.g. {missing[0]!r}")


def _known_code(store: Store, code: str) -> str:
    """The current taxonomy's version, after checking that `code` is one of its codes."""
    tax = current_taxonomy(store)
    if code not in tax.codes():
        raise ValueError(f"unknown label code {code!r}; the taxonomy ({tax.version}) has {', '.join(tax.codes())}")
    return tax.version


def add_label(store: Store, run_id: str, code: str, reviewer: str, *, step_id: str | None = None,
              severity: str | None = None, note: str | None = None, source: str = "app") -> str:
    """Append an `add` event; returns its id. The code must exist in the current taxonomy, the run (and the
    step, when given) in the store."""
    version = _known_code(store, code)
    row = _event(run_id, step_id, code, severity, note, reviewer, "add", version, source, None)
    _check_runs(store, [run_id], step_id)
    _append(store, [row])
    return row[0]


def remove_label(store: Store, run_id: str, code: str, reviewer: str, *, step_id: str | None = None,
                 source: str = "app") -> str:
    """Append a `remove` event: the reviewer takes their label back (their earlier `add` stays in history)."""
    row = _event(run_id, step_id, code, None, None, reviewer, "remove", current_taxonomy(store).version, source,
                 None)
    _check_runs(store, [run_id], step_id)
    _append(store, [row])
    return row[0]


def bulk_label(store: Store, run_ids: Sequence[str], code: str, reviewer: str, *, note: str | None = None,
               severity: str | None = None, source: str = "bulk") -> str:
    """Label many runs in one batch (one transaction); `undo_last` or `undo_batch` takes the whole batch back."""
    version = _known_code(store, code)
    batch = uuid.uuid4().hex
    rows = [_event(r, None, code, severity, note, reviewer, "add", version, f"{source}:{batch}", batch)
            for r in dict.fromkeys(run_ids)]
    if not rows:
        raise ValueError("no runs to label")
    _check_runs(store, [r[1] for r in rows])
    _append(store, rows)
    return batch


_UNDONE = "EXISTS (SELECT 1 FROM label_events u WHERE u.source = 'undo:' || e.event_id)"


def _undo(store: Store, reviewer: str, batch_id: str | None) -> pd.DataFrame:
    # The choice of what to undo happens inside the write transaction, so two undos sent at once (two tabs)
    # take back two actions, never the same one twice.
    columns = ["event_id", "run_id", "step_id", "code", "action", "batch_id"]
    with store.transaction() as cur:
        if batch_id is None:
            last = cur.execute(
                f"""SELECT event_id, batch_id FROM label_events e
                    WHERE reviewer = $r AND coalesce(source, '') NOT LIKE 'undo:%' AND NOT {_UNDONE}
                    ORDER BY created_at DESC, rowid DESC LIMIT 1""", {"r": reviewer}).fetchone()  # noqa: S608
            if last is None:
                return pd.DataFrame(columns=columns)
            event_id, batch_id = last
        else:
            event_id = None
        targets = cur.execute(
            f"""SELECT event_id, run_id, step_id, code, severity, note, action, taxonomy_version, reviewer
                FROM label_events e WHERE ((batch_id = $b) OR ($b IS NULL AND event_id = $e)) AND NOT {_UNDONE}
                ORDER BY rowid""", {"b": batch_id, "e": event_id}).fetchall()  # noqa: S608 - fixed fragments
        if any(t[8] != reviewer for t in targets):
            raise ValueError("only the reviewer who made a bulk action can undo it")
        rows = [_event(r, s, c, sev, note, reviewer, _INVERSE[a], v, f"undo:{eid}", None)
                for eid, r, s, c, sev, note, a, v, _ in targets]
        if rows:
            cur.executemany("INSERT INTO label_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return pd.DataFrame([(r[0], r[1], r[2], r[3], r[8], None) for r in rows], columns=columns)


def undo_last_action(store: Store, reviewer: str) -> pd.DataFrame:
    """Append the inverse of the reviewer's last action not yet undone (a bulk batch as a whole).

    Returns the events the undo appended (run_id, step_id, code, action ...); empty when nothing is left."""
    return _undo(store, reviewer, None)


def undo_last(store: Store, reviewer: str) -> int:
    """`undo_last_action`, returning how many events it appended (0 when there was nothing left to undo)."""
    return len(undo_last_action(store, reviewer))


def undo_batch(store: Store, batch_id: str, reviewer: str) -> int:
    """Take back one bulk action (its events not undone yet) by the reviewer who made it; returns the count."""
    return len(_undo(store, reviewer, batch_id))


def settle(store: Store, run_id: str, code: str, applies: bool, settled_by: str, *,
           step_id: str | None = None, note: str | None = None) -> str:
    """Decide a disagreement: the code applies (or not). Recorded as its own event; the votes stay."""
    row = _event(run_id, step_id, code, None, note, settled_by, "settle_add" if applies else "settle_remove",
                 current_taxonomy(store).version, "settle", None)
    _check_runs(store, [run_id], step_id)
    _append(store, [row])
    return row[0]


# -- reading --------------------------------------------------------------------------------------------------
_LATEST = """
    SELECT * FROM label_events
    QUALIFY row_number() OVER (PARTITION BY run_id, coalesce(step_id, ''), code, reviewer,
                                            action LIKE 'settle%' ORDER BY created_at DESC, rowid DESC) = 1
"""


def history(store: Store, run_id: str | None = None) -> pd.DataFrame:
    """Every label event (of one run, or all), oldest first."""
    where = "WHERE run_id = $r" if run_id else ""
    return store.df(f"SELECT * FROM label_events {where} ORDER BY created_at, rowid",  # noqa: S608 - fixed text
                    {"r": run_id} if run_id else None)


def current_labels(store: Store, run_id: str | None = None, *, include_imported: bool = True) -> pd.DataFrame:
    """The labels in force: per (run, step, code, reviewer) the latest vote when it is an add (no settlements)."""
    where = ["action = 'add'"]
    params: dict = {}
    if run_id:
        where.append("run_id = $r")
        params["r"] = run_id
    if not include_imported:
        where.append(f"reviewer <> '{IMPORTED_REVIEWER}'")
    return store.df(
        f"SELECT run_id, step_id, code, severity, note, reviewer, created_at, taxonomy_version "  # noqa: S608
        f"FROM ({_LATEST}) WHERE {' AND '.join(where)} ORDER BY run_id, created_at, code", params or None)


def settled_labels(store: Store) -> pd.DataFrame:
    """Settlements in force: per (run, step, code) the latest settle event and whether the code applies."""
    return store.df(
        """SELECT run_id, step_id, code, action = 'settle_add' AS applies, reviewer AS settled_by, note, created_at
           FROM label_events WHERE action LIKE 'settle%'
           QUALIFY row_number() OVER (PARTITION BY run_id, coalesce(step_id, ''), code
                                      ORDER BY created_at DESC, rowid DESC) = 1
           ORDER BY run_id""")


def label_counts(store: Store, by: str = "agent_version") -> pd.DataFrame:
    """Runs carrying each code (current labels, any reviewer) by `agent_version`, `agent`, or `week`."""
    group = {"agent_version": "r.agent_version", "agent": "r.agent",
             "week": "date_trunc('week', r.started_at)"}.get(by)
    if group is None:
        raise ValueError(f"by must be agent_version, agent or week, not {by!r}")
    return store.df(
        f"""SELECT {group} AS {by}, l.code, count(DISTINCT l.run_id) AS runs
            FROM ({_LATEST}) l JOIN runs r USING (run_id) WHERE l.action = 'add'
            GROUP BY ALL ORDER BY 1, 2""")  # noqa: S608 - group comes from the whitelist above


# -- review queue -------------------------------------------------------------------------------------------
def assign(store: Store, run_ids: Iterable[str], reviewer: str, assigned_by: str | None = None) -> int:
    rows = [(r, reviewer, assigned_by, _now()) for r in dict.fromkeys(run_ids)]
    with store.transaction() as cur:
        cur.executemany("INSERT OR IGNORE INTO assignments VALUES (?, ?, ?, ?)", rows)
    return len(rows)


def run_ids(store: Store, flt: RunFilter | None = None, *, failures_only: bool = False) -> list[str]:
    """Ids of the runs a filter selects (optionally only failed ones), oldest first: what a bulk action or an
    assignment touches."""
    where, params = _where(flt or RunFilter())
    if failures_only:
        where = f"{where} AND {_FAILED}" if where else f"WHERE {_FAILED}"
    return [r for (r,) in store.sql(f"SELECT run_id FROM runs {where} ORDER BY started_at, run_id",  # noqa: S608
                                    params).fetchall()]


_FAILED = "(outcome = 'failure' OR status = 'error')"


def next_unlabeled(store: Store, reviewer: str, flt: RunFilter | None = None,
                   skip: Iterable[str] = ()) -> str | None:
    """The next failed run for `reviewer`: one they have not labeled, and that nobody has labeled unless it is
    assigned to them (assigning a run to several people is how it gets several votes).

    Their assigned runs come first, then unassigned ones, then runs assigned to others; oldest first. `skip`
    holds run ids passed over in this session."""
    where, params = _where(flt or RunFilter())
    extra = f"{_FAILED} AND NOT list_contains($skip, run_id)"
    where = f"{where} AND {extra}" if where else f"WHERE {extra}"
    params.update({"skip": list(skip), "me": reviewer})
    row = store.sql(
        f"""WITH labeled AS (SELECT DISTINCT run_id, reviewer FROM ({_LATEST})
                             WHERE action = 'add' AND reviewer <> '{IMPORTED_REVIEWER}'),
                 mine AS (SELECT run_id FROM assignments WHERE reviewer = $me)
            SELECT run_id FROM runs {where}
            AND run_id NOT IN (SELECT run_id FROM labeled WHERE reviewer = $me)
            AND (run_id IN (SELECT run_id FROM mine) OR run_id NOT IN (SELECT run_id FROM labeled))
            ORDER BY CASE WHEN run_id IN (SELECT run_id FROM mine) THEN 0
                          WHEN run_id IN (SELECT run_id FROM assignments) THEN 2 ELSE 1 END,
                     started_at, run_id
            LIMIT 1""", params).fetchone()  # noqa: S608 - fixed fragments; values are parameters
    return row[0] if row else None


def progress(store: Store) -> pd.DataFrame:
    """Per reviewer: runs assigned, assigned runs they labeled, runs labeled in all, events written."""
    return store.df(
        f"""WITH labeled AS (SELECT DISTINCT reviewer, run_id FROM label_events
                             WHERE action = 'add' AND reviewer <> '{IMPORTED_REVIEWER}'),
            people AS (SELECT reviewer FROM assignments UNION SELECT reviewer FROM labeled)
        SELECT p.reviewer,
               (SELECT count(*) FROM assignments a WHERE a.reviewer = p.reviewer) AS assigned,
               (SELECT count(*) FROM assignments a JOIN labeled l USING (reviewer, run_id)
                WHERE a.reviewer = p.reviewer) AS assigned_done,
               (SELECT count(*) FROM labeled l WHERE l.reviewer = p.reviewer) AS labeled,
               (SELECT count(*) FROM label_events e WHERE e.reviewer = p.reviewer) AS events
        FROM people p ORDER BY p.reviewer""")  # noqa: S608 - constant reviewer name only


# -- agreement ----------------------------------------------------------------------------------------------
def votes(store: Store, reviewers: Sequence[str] | None = None, *, include_imported: bool = False) -> pd.DataFrame:
    """Run x reviewer x code presence (0/1) over the runs each reviewer labeled (run level and step level)."""
    cur = current_labels(store, include_imported=include_imported)
    rated = history(store)
    rated = rated[rated["action"].isin(["add", "remove"])]
    if not include_imported:
        rated = rated[rated["reviewer"] != IMPORTED_REVIEWER]
    if reviewers:
        rated = rated[rated["reviewer"].isin(reviewers)]
        cur = cur[cur["reviewer"].isin(reviewers)]
    if rated.empty:
        return pd.DataFrame({"run_id": pd.Series(dtype=str), "reviewer": pd.Series(dtype=str),
                             "code": pd.Series(dtype=str), "vote": pd.Series(dtype=int)})
    pairs = rated[["run_id", "reviewer"]].drop_duplicates()
    codes = sorted(set(rated["code"]))
    grid = pairs.merge(pd.DataFrame({"code": codes}), how="cross")
    present = cur[["run_id", "reviewer", "code"]].drop_duplicates().assign(vote=1)
    return grid.merge(present, how="left", on=["run_id", "reviewer", "code"]).fillna({"vote": 0}).astype(
        {"vote": int})


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float:
    """Cohen's kappa of two raters' labels over the same items."""
    a, b = np.asarray(a), np.asarray(b)
    cats = np.union1d(a, b)
    po = float(np.mean(a == b))
    pe = float(sum(np.mean(a == c) * np.mean(b == c) for c in cats))
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def krippendorff_alpha(matrix: np.ndarray) -> float:
    """Krippendorff's alpha (nominal) for a raters x items matrix with NaN for missing ratings."""
    values = [col[~np.isnan(col)] for col in matrix.T]
    values = [v for v in values if len(v) >= 2]
    if not values:
        return float("nan")
    cats = np.unique(np.concatenate(values))
    coincidence = np.zeros((len(cats), len(cats)))
    for v in values:
        counts = np.array([np.sum(v == c) for c in cats], dtype=float)
        coincidence += (np.outer(counts, counts) - np.diag(counts)) / (len(v) - 1)
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    observed = coincidence.sum() - np.trace(coincidence)
    expected = (n * n - np.sum(n_c ** 2)) / (n - 1)
    return 1.0 if expected == 0 else 1 - observed / expected


def agreement(store: Store, reviewers: Sequence[str] | None = None, *,
              include_imported: bool = False) -> pd.DataFrame:
    """Per label code: agreement over runs rated by at least two of the reviewers.

    Two reviewers: Cohen's kappa over the runs both rated. More: Krippendorff's alpha (nominal), which
    allows a reviewer to have skipped some runs."""
    v = votes(store, reviewers, include_imported=include_imported)
    rows = []
    for code, part in v.groupby("code"):
        wide = part.pivot_table(index="reviewer", columns="run_id", values="vote")
        wide = wide.loc[:, wide.notna().sum() >= 2]
        if wide.shape[1] == 0:
            continue
        people = list(wide.index)
        if len(people) == 2:
            both = wide.dropna(axis=1)
            stat, value = "cohen_kappa", cohen_kappa(both.iloc[0].astype(int), both.iloc[1].astype(int))
            n_items = both.shape[1]
        else:
            stat, value, n_items = "krippendorff_alpha", krippendorff_alpha(wide.to_numpy(float)), wide.shape[1]
        agree = float((wide.nunique() == 1).mean())
        rows.append({"code": code, "reviewers": len(people), "runs": n_items, "statistic": stat,
                     "value": value, "raw_agreement": agree})
    return pd.DataFrame(rows, columns=["code", "reviewers", "runs", "statistic", "value", "raw_agreement"])


def disagreements(store: Store, reviewers: Sequence[str] | None = None, *,
                  include_imported: bool = False) -> pd.DataFrame:
    """Run x code pairs where the reviewers who rated the run voted differently and nobody has settled it."""
    v = votes(store, reviewers, include_imported=include_imported)
    if v.empty:
        return pd.DataFrame(columns=["run_id", "code", "yes", "no"])
    g = v.groupby(["run_id", "code"])["vote"]
    split = pd.DataFrame({"n": g.size(), "yes": g.sum()}).reset_index()
    split = split[(split["n"] >= 2) & (split["yes"] > 0) & (split["yes"] < split["n"])]
    yes = v[v["vote"] == 1].groupby(["run_id", "code"])["reviewer"].agg(lambda s: ", ".join(sorted(s)))
    no = v[v["vote"] == 0].groupby(["run_id", "code"])["reviewer"].agg(lambda s: ", ".join(sorted(s)))
    out = split.merge(yes.rename("yes_by").reset_index(), on=["run_id", "code"]).merge(
        no.rename("no_by").reset_index(), on=["run_id", "code"])
    settled = settled_labels(store)[["run_id", "code"]]
    out = out.merge(settled.assign(_s=1), how="left", on=["run_id", "code"])
    return out[out["_s"].isna()][["run_id", "code", "yes_by", "no_by"]].reset_index(drop=True)
