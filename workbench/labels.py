"""Failure labels: taxonomy, append-only label events, the review queue and agreement between reviewers.

Nothing is ever updated or deleted. A reviewer adding a code to a run (or a step) appends an `add` event;
taking it back appends `remove`; undo appends the inverse of the reviewer's last action (or of a whole bulk
batch). The *current* labels are the latest event per (run, step, code, reviewer) when it is an `add`.
Disagreements between reviewers are decided with `settle_add` / `settle_remove` events by whoever settles
them; the original votes stay as they were.

Labels imported with a trace file (Who&When) carry reviewer `imported` and enter agreement only when asked.
"""

from __future__ import annotations

import hashlib
import tomllib
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from workbench.loaders.base import IMPORTED_REVIEWER
from workbench.queries import RunFilter, _where
from workbench.store import Store

SEVERITIES = ("low", "medium", "high", "critical")
_ADDS = ("add", "settle_add")
_INVERSE = {"add": "remove", "remove": "add", "settle_add": "settle_remove", "settle_remove": "settle_add"}


class TaxonomyLabel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
    name: str
    description: str | None = None
    key: str | None = Field(default=None, max_length=1)

    @property
    def group(self) -> str:
        return self.code.split(".", 1)[0]


class Taxonomy(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    labels: tuple[TaxonomyLabel, ...]

    def codes(self) -> list[str]:
        return [lb.code for lb in self.labels]

    def by_key(self) -> dict[str, str]:
        return {lb.key: lb.code for lb in self.labels if lb.key}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- taxonomy ---------------------------------------------------------------------------------------------
def parse_taxonomy(text: str) -> Taxonomy:
    """A taxonomy from TOML text (`[[label]]` entries); its version is the hash of the content."""
    data = tomllib.loads(text)
    labels = tuple(TaxonomyLabel(**entry) for entry in data.get("label", []))
    if not labels:
        raise ValueError("a taxonomy needs at least one [[label]] entry")
    codes = [lb.code for lb in labels]
    dupes = {c for c in codes if codes.count(c) > 1}
    keys = [lb.key for lb in labels if lb.key]
    if dupes or len(keys) != len(set(keys)):
        raise ValueError(f"duplicate codes or keys in taxonomy: {sorted(dupes) or sorted(keys)}")
    canonical = "\n".join(f"{lb.code}\x1f{lb.name}\x1f{lb.description}\x1f{lb.key}" for lb in labels)
    return Taxonomy(version=hashlib.sha256(canonical.encode()).hexdigest()[:12], labels=labels)


def default_taxonomy() -> Taxonomy:
    return parse_taxonomy((resources.files("workbench") / "data" / "taxonomy.toml").read_text(encoding="utf-8"))


def load_taxonomy(store: Store, source: Path | str | Taxonomy | None = None) -> Taxonomy:
    """Make a taxonomy (a file, TOML text, or the default) the current one; a new content is a new version."""
    if isinstance(source, Taxonomy):
        tax = source
    elif source is None:
        tax = default_taxonomy()
    elif isinstance(source, Path) or (isinstance(source, str) and "[[label]]" not in source):
        tax = parse_taxonomy(Path(source).read_text(encoding="utf-8"))
    else:
        tax = parse_taxonomy(source)
    with store.transaction() as cur:
        known = cur.execute("SELECT count(*) FROM taxonomy WHERE version = $v", {"v": tax.version}).fetchone()[0]
        if not known:
            cur.executemany(
                "INSERT INTO taxonomy VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(tax.version, lb.code, lb.group if "." in lb.code else None, lb.name, lb.description, lb.key,
                  _now()) for lb in tax.labels])
        cur.execute("INSERT OR REPLACE INTO meta VALUES ('taxonomy_version', $v)", {"v": tax.version})
    return tax


def current_taxonomy(store: Store) -> Taxonomy:
    """The taxonomy in use; the default one is loaded on first use."""
    row = store.sql("SELECT value FROM meta WHERE key = 'taxonomy_version'").fetchone()
    if row is None:
        return load_taxonomy(store)
    rows = store.sql("SELECT code, name, description, key FROM taxonomy WHERE version = $v ORDER BY rowid",
                     {"v": row[0]}).fetchall()
    return Taxonomy(version=row[0], labels=tuple(
        TaxonomyLabel(code=c, name=n, description=d, key=k) for c, n, d, k in rows))


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


def add_label(store: Store, run_id: str, code: str, reviewer: str, *, step_id: str | None = None,
              severity: str | None = None, note: str | None = None, source: str = "app") -> str:
    """Append an `add` event; returns its id. The code must exist in the current taxonomy."""
    tax = current_taxonomy(store)
    if code not in tax.codes():
        raise ValueError(f"unknown label code {code!r}; the taxonomy ({tax.version}) has {', '.join(tax.codes())}")
    row = _event(run_id, step_id, code, severity, note, reviewer, "add", tax.version, source, None)
    _append(store, [row])
    return row[0]


def remove_label(store: Store, run_id: str, code: str, reviewer: str, *, step_id: str | None = None,
                 source: str = "app") -> str:
    row = _event(run_id, step_id, code, None, None, reviewer, "remove", current_taxonomy(store).version, source,
                 None)
    _append(store, [row])
    return row[0]


def bulk_label(store: Store, run_ids: Sequence[str], code: str, reviewer: str, *, note: str | None = None,
               severity: str | None = None, source: str = "bulk") -> str:
    """Label many runs in one batch (one transaction); `undo_last` takes the whole batch back."""
    tax = current_taxonomy(store)
    if code not in tax.codes():
        raise ValueError(f"unknown label code {code!r}")
    batch = uuid.uuid4().hex
    _append(store, [_event(r, None, code, severity, note, reviewer, "add", tax.version, f"{source}:{batch}", batch)
                    for r in dict.fromkeys(run_ids)])
    return batch


def undo_last(store: Store, reviewer: str) -> int:
    """Append the inverse of the reviewer's last action not yet undone (a bulk batch as a whole).

    Returns how many events the undo appended (0 when there is nothing left to undo)."""
    last = store.sql(
        """SELECT event_id, batch_id FROM label_events e
           WHERE reviewer = $r AND coalesce(source, '') NOT LIKE 'undo:%'
             AND NOT EXISTS (SELECT 1 FROM label_events u WHERE u.source = 'undo:' || e.event_id)
           ORDER BY created_at DESC, rowid DESC LIMIT 1""", {"r": reviewer}).fetchone()
    if last is None:
        return 0
    event_id, batch = last
    targets = store.sql(
        "SELECT event_id, run_id, step_id, code, severity, note, action, taxonomy_version FROM label_events "
        "WHERE (batch_id = $b) OR ($b IS NULL AND event_id = $e) ORDER BY rowid",
        {"b": batch, "e": event_id}).fetchall()
    rows = [_event(r, s, c, sev, note, reviewer, _INVERSE[a], v, f"undo:{eid}", None)
            for eid, r, s, c, sev, note, a, v in targets]
    _append(store, rows)
    return len(rows)


def settle(store: Store, run_id: str, code: str, applies: bool, settled_by: str, *,
           step_id: str | None = None, note: str | None = None) -> str:
    """Decide a disagreement: the code applies (or not). Recorded as its own event; the votes stay."""
    row = _event(run_id, step_id, code, None, note, settled_by, "settle_add" if applies else "settle_remove",
                 current_taxonomy(store).version, "settle", None)
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
        f"FROM ({_LATEST}) WHERE {' AND '.join(where)} ORDER BY run_id, created_at", params or None)


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


def next_unlabeled(store: Store, reviewer: str, flt: RunFilter | None = None,
                   skip: Iterable[str] = ()) -> str | None:
    """The next failed run nobody has labeled yet: the reviewer's assigned runs first, then unassigned ones,
    then runs assigned to others; oldest first. `skip` holds run ids passed over in this session."""
    where, params = _where(flt or RunFilter())
    extra = "(outcome = 'failure' OR status = 'error') AND NOT list_contains($skip, run_id)"
    where = f"{where} AND {extra}" if where else f"WHERE {extra}"
    params.update({"skip": list(skip), "me": reviewer})
    row = store.sql(
        f"""SELECT run_id FROM runs {where}
            AND run_id NOT IN (SELECT run_id FROM ({_LATEST}) WHERE action = 'add'
                               AND reviewer <> '{IMPORTED_REVIEWER}')
            ORDER BY CASE WHEN run_id IN (SELECT run_id FROM assignments WHERE reviewer = $me) THEN 0
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
