"""What the loader tests share: real folders, a store loaded once per module, snapshots, truncated copies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REAL
from workbench.ingest import IngestSummary, ingest_file, ingest_paths
from workbench.loaders import read_head, registry
from workbench.models import ImportResult
from workbench.store import Store

_TABLES = ("runs", "steps", "label_events")  # imports and rejects record every attempt, by design


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


def assert_truncated_copy_rejected(store: Store, src: Path, dst_dir: Path, fmt: str) -> ImportResult:
    """Half of `src` is one rejected import with a reason, and what the store held is untouched.

    ("rejected": the loader recognized the file, loaded nothing and said why; not an error of the ingest.)
    """
    before = snapshot(store)
    assert before["runs"], "ingest the real file first: the check is that it survives"
    cut = truncated_copy(src, dst_dir / f"truncated-{src.name}")
    res = ingest_file(store, cut, fmt=fmt)  # raising here would be the traceback
    assert (res.status, res.format, res.n_runs, res.n_steps) == ("rejected", fmt, 0, 0), res
    assert res.message and "Traceback" not in res.message
    assert snapshot(store) == before
    assert one(store, "SELECT status, n_rejects FROM imports WHERE import_id = $id", {"id": res.import_id}) == (
        "rejected", 1)
    return res
