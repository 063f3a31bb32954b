"""Build the demo database: generate the seeded fleet as OTLP files, then ingest them like any user file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from workbench.demo import generate_fleet
from workbench.ingest import IngestSummary, ingest_paths
from workbench.store import Store


def demo_traces_dir(db_path: Path, seed: int) -> Path:
    """Where the demo's generated trace files go: next to the database, one folder per seed."""
    return Path(db_path).resolve().parent / "demo-traces" / f"seed-{seed}"


def build_demo(db_path: str | Path, *, seed: int = 7, n_runs: int = 2400,
               progress: Callable[[int, int, str], None] | None = None) -> str:
    """Generate the demo fleet and ingest it into `db_path` through the public ingest path.

    Same seed, same database: the files are byte-identical and ingest is deterministic.
    Returns a one-paragraph summary for the CLI.
    """
    db_path = Path(db_path)
    out = demo_traces_dir(db_path, seed)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.jsonl"):
        old.unlink()
    truth = generate_fleet(out, seed=seed, n_runs=n_runs)
    with Store(db_path) as store:
        summary: IngestSummary = ingest_paths(store, [out], progress=progress)
    t = summary.totals()
    failures = sum(1 for r in truth if r.failure_mode)
    return (f"demo fleet (seed {seed}): {len(truth)} runs generated, {failures} with an injected failure mode; "
            f"ingested {t['files']} files -> {t['runs']} runs, {t['steps']} steps, {t['rejects']} rejects "
            f"in {t['seconds']}s into {db_path}")
