"""Checks every file-format loader passes: a damaged copy of a real export fails cleanly and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.ingest import ingest_file

STORED_TABLES = ("runs", "steps", "label_events")


def snapshot(store) -> dict[str, list[tuple]]:
    """Every row of the tables an ingest writes to (imports/rejects excepted: a failed import is recorded)."""
    return {t: sorted(store.sql(f"SELECT * FROM {t}").fetchall(), key=repr) for t in STORED_TABLES}


def rows(store, query: str, params: dict | None = None) -> list[tuple]:
    return store.sql(query, params).fetchall()


def messages_of(store, step_id: str) -> list[dict]:
    found = rows(store, "SELECT messages FROM steps WHERE step_id = $s", {"s": step_id})
    assert len(found) == 1, step_id
    return json.loads(found[0][0]) if found[0][0] else []


def assert_truncated_copy_fails_cleanly(store, source: Path, tmp_path: Path, fmt: str) -> None:
    """Ingest `source`, then a copy cut in half: the copy is still recognized as `fmt`, fails with a reject that
    says where the JSON stops (no traceback), is recorded as a rejected import, and the stored data is unchanged."""
    first = ingest_file(store, source)
    assert first.status == "ok" and first.n_runs >= 1, first
    before = snapshot(store)
    data = source.read_bytes()
    cut = tmp_path / f"cut-{source.name}"
    cut.write_bytes(data[: len(data) // 2])
    res = ingest_file(store, cut)
    assert (res.status, res.format, res.n_runs, res.n_steps, res.n_rejects) == ("rejected", fmt, 0, 0, 1), res
    assert "not valid JSON" in res.message and "truncated?" in res.message, res.message
    assert "Traceback" not in res.message
    (location, reason), = rows(store, "SELECT location, reason FROM rejects WHERE import_id = $i",
                               {"i": res.import_id})
    assert location.startswith("line ") and "column" in location and reason.startswith("not valid JSON")
    assert rows(store, "SELECT status FROM imports WHERE import_id = $i", {"i": res.import_id}) == [("rejected",)]
    assert snapshot(store) == before
