"""What the loader tests share: real folders, a store loaded once per module, queries, snapshots, truncated
copies."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REAL
from workbench.ingest import IngestSummary, ingest_file, ingest_paths
from workbench.loaders import read_head, registry
from workbench.models import ImportResult, make_run_id
from workbench.store import Store

_TABLES = ("runs", "steps", "label_events")  # imports and rejects record every attempt, by design
# the import message for a JSON document cut short: where the parser stopped, and that the file looks truncated
JSON_CUT = re.compile(r"line \d+ column \d+: not valid JSON: .* \(the file ends inside a value: it looks truncated\)")


def real_folder(name: str) -> Path:
    """A folder of ../shared/data/real, or skip (as the `real_dir` fixture does) when it is absent."""
    if not (REAL / name).is_dir():
        pytest.skip(f"real trace files not found at {REAL / name} (they live in ../shared/data/real)")
    return REAL / name


def loaded_store(tmp_dir: Path, paths: list, **kwargs) -> Iterator[tuple[Store, IngestSummary]]:
    """A store holding `paths`, ingested once, for the read-only tests of a module."""
    store = Store(tmp_dir / "wb.duckdb")
    try:
        yield store, ingest_paths(store, paths, **kwargs)
    finally:
        store.close()


def one(store: Store, sql: str, params: dict | None = None) -> tuple:
    """The first row of a query."""
    return store.sql(sql, params).fetchone()


def rows(store: Store, sql: str, params: dict | None = None) -> list[tuple]:
    """Every row of a query."""
    return store.sql(sql, params).fetchall()


def run_row(store: Store, fmt: str, native_id: str) -> pd.Series:
    """The stored run of this format and native id, its columns as attributes (`run.outcome`)."""
    return store.df("SELECT * FROM runs WHERE run_id = $id", {"id": make_run_id(fmt, native_id)}).iloc[0]


def messages_of(store: Store, step_id: str) -> list[dict]:
    """The stored messages of the one step with this id, as dicts."""
    found = rows(store, "SELECT messages FROM steps WHERE step_id = $s", {"s": step_id})
    assert len(found) == 1, step_id
    return json.loads(found[0][0]) if found[0][0] else []


def snapshot(store: Store) -> dict[str, list[tuple]]:
    """Every row of the tables that hold ingested data, in a stable order."""
    return {t: store.sql(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in _TABLES}


def truncated_copy(src: Path, dst: Path, keep: float = 0.5) -> Path:
    """The first `keep` fraction of `src`'s bytes, as an interrupted copy or download leaves a file."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def claimed_by(path: Path) -> list[str]:
    """Names of all loaders whose sniff accepts `path` (a file must be claimed by exactly one)."""
    head = read_head(path)
    return sorted(name for name, loader in registry().items() if loader.sniff(path, head))


def assert_truncated_copy_rejected(store: Store, src: Path, dst_dir: Path, fmt: str, *,
                                   sniffed: bool = False) -> ImportResult:
    """Half of `src` is one rejected import with a reason, and what the store held is untouched.

    ("rejected": the loader recognized the file, loaded nothing and said why; not an error of the ingest.)
    With `sniffed` the half file must still be recognized as `fmt` without `--format`; else it is forced, for
    formats whose telling keys may sit in the lost half.
    """
    before = snapshot(store)
    assert before["runs"], "ingest the real file first: the check is that it survives"
    cut = truncated_copy(src, dst_dir / f"truncated-{src.name}")
    res = ingest_file(store, cut, fmt=None if sniffed else fmt)  # raising here would be the traceback
    assert (res.status, res.format, res.n_runs, res.n_steps, res.n_rejects) == ("rejected", fmt, 0, 0, 1), res
    assert res.message and "Traceback" not in res.message
    assert snapshot(store) == before
    assert one(store, "SELECT status, n_rejects FROM imports WHERE import_id = $id", {"id": res.import_id}) == (
        "rejected", 1)
    return res
