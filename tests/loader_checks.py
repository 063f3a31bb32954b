"""Checks every file-format loader test repeats: which loaders claim a file, and failing cleanly on bad input."""

from __future__ import annotations

from pathlib import Path

from workbench.ingest import ingest_file
from workbench.loaders import read_head, registry
from workbench.models import ImportResult

SNAPSHOT_TABLES = ("runs", "steps", "label_events")


def claimed_by(path: Path) -> list[str]:
    """Names of all loaders whose sniff accepts `path` (a file must be claimed by exactly one)."""
    head = read_head(path)
    return sorted(name for name, loader in registry().items() if loader.sniff(path, head))


def snapshot(store) -> dict[str, list[tuple]]:
    """Everything an ingest could damage, in a comparable form."""
    return {t: sorted(store.sql(f"SELECT * FROM {t}").fetchall(), key=repr) for t in SNAPSHOT_TABLES}


def truncated_copy(src: Path, dst_dir: Path, fraction: float = 0.5) -> Path:
    data = src.read_bytes()
    dst = dst_dir / f"truncated-{src.name}"
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def assert_truncated_copy_fails_cleanly(store, src: Path, dst_dir: Path, fmt: str) -> ImportResult:
    """A half-written copy of `src` is one rejected import with a reason, and the stored data is untouched.

    ("rejected": the loader recognized the file, loaded nothing and said why; not an error of the ingest.)
    """
    before = snapshot(store)
    assert before["runs"], "ingest the real file first: the check is that it survives"
    res = ingest_file(store, truncated_copy(src, dst_dir), fmt=fmt)  # raising here would be the traceback
    assert (res.status, res.format, res.n_runs, res.n_steps) == ("rejected", fmt, 0, 0), res
    assert res.message and "Traceback" not in res.message
    assert snapshot(store) == before
    row = store.sql("SELECT status, n_rejects FROM imports WHERE import_id = $id", {"id": res.import_id}).fetchone()
    assert row == ("rejected", 1)
    return res
