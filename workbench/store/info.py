"""A plain-text summary of what a database holds (for `workbench info` and notebooks)."""

from __future__ import annotations

from workbench.store import Store


def store_info(store: Store) -> str:
    lines = [f"database: {store.path}", f"schema version: {store.schema_version()}"]
    n_runs, n_steps = store.sql("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM steps)").fetchone()
    lines.append(f"runs: {n_runs:,}  steps: {n_steps:,}")
    for fmt, runs, first, last in store.sql(
        "SELECT format, count(*), min(started_at), max(started_at) FROM runs GROUP BY format ORDER BY format"
    ).fetchall():
        lines.append(f"  {fmt:12} {runs:>8,} runs  {first} .. {last}")
    imports = store.sql(
        "SELECT status, count(*), sum(n_rejects) FROM imports GROUP BY status ORDER BY status").fetchall()
    if imports:
        lines.append("imports: " + ", ".join(f"{s} {n} ({r or 0} rejects)" for s, n, r in imports))
    return "\n".join(lines)
