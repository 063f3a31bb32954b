"""Ingest: files, folders and globs into the store, one transaction per file.

The one entry point the CLI, the app's Import page, the demo and notebooks share. Each file is sniffed (or
forced with `fmt`), hashed, staged by its loader, merged, and recorded in `imports` with its rejects. A file
lands whole or not at all; a file whose bytes were already imported is skipped; a file no loader recognizes,
or one that fails, is reported by name and the others still load.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from workbench.loaders import StageContext, UnknownFormatError, detect, not_a_trace
from workbench.models import ImportResult, Reject
from workbench.redaction import Redactor
from workbench.store import Store
from workbench.store.merge import create_staging, drop_staging, merge_staged

Progress = Callable[[int, int, str], None]
# what a folder scan picks up: trace-export suffixes only, so a folder's configs and notes are not reported
# as unrecognized files (a file named explicitly is always tried)
_TRACE_SUFFIXES = {".json", ".jsonl", ".ndjson", ".eval", ".traj", ".parquet", ".otlp"}


@dataclass
class IngestSummary:
    """What an ingest did, file by file."""

    results: list[ImportResult] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)

    def totals(self) -> dict[str, float]:
        return {
            "files": len(self.results),
            "runs": sum(r.n_runs for r in self.results),
            "steps": sum(r.n_steps for r in self.results),
            "rejects": sum(r.n_rejects for r in self.results),
            "redacted": sum(r.n_redacted for r in self.results),
            "seconds": round(sum(r.seconds for r in self.results), 2),
        }

    def render(self) -> str:
        lines = []
        for r in self.results:
            extra = f"  {r.message}" if r.message else ""
            lines.append(f"{r.status:8} {r.format or '-':10} runs={r.n_runs:<6} steps={r.n_steps:<8} "
                         f"rejects={r.n_rejects:<4} {r.seconds:6.2f}s  {r.path}{extra}")
        by_format: dict[str, float] = {}
        for r in self.results:
            by_format[r.format or "-"] = by_format.get(r.format or "-", 0.0) + r.seconds
        t = self.totals()
        lines.append(f"{t['files']} file(s): {t['runs']} runs, {t['steps']} steps, {t['rejects']} rejects, "
                     f"{t['seconds']}s ({', '.join(f'{k} {v:.2f}s' for k, v in sorted(by_format.items()))})")
        return "\n".join(lines)


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files from files, folders (recursively, trace-like suffixes only) and glob patterns; plus the misses."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        text = str(raw)
        matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))] if glob.has_magic(text) else [Path(text)]
        if not matches:
            missing.append(text)
        for p in matches:
            if p.is_dir():
                files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in _TRACE_SUFFIXES))
            elif p.is_file():
                files.append(p)
            else:
                missing.append(text)
    seen: set[Path] = set()
    unique = [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]
    return unique, missing


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 * 1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def ingest_paths(store: Store, paths: Iterable[str | Path], *, fmt: str | None = None,
                 progress: Progress | None = None, force: bool = False,
                 redactor: Redactor | None = None, options: dict | None = None) -> IngestSummary:
    """Ingest every file under `paths`. Never raises for a bad file: each outcome is in the summary.

    `options` reach the loader as `StageContext.options` (e.g. ``{"mapping": path}`` for `generic`).
    """
    files, missing = expand_paths(paths)
    summary = IngestSummary()
    for text in missing:
        summary.results.append(ImportResult(import_id="-", path=text, format=None, status="failed",
                                            message="no such file, folder or matching glob"))
    for i, path in enumerate(files):
        if progress:
            progress(i, len(files), str(path))
        summary.results.append(ingest_file(store, path, fmt=fmt, force=force, redactor=redactor,
                                           options=options))
    if progress and files:
        progress(len(files), len(files), "done")
    return summary


def ingest_file(store: Store, path: Path, *, fmt: str | None = None, force: bool = False,
                redactor: Redactor | None = None, options: dict | None = None) -> ImportResult:
    """Load one file in one transaction. Returns the import's result; stored data is untouched on failure.

    With a `redactor`, secrets and personal data are masked in the staged rows, before anything is stored.
    """
    started = time.perf_counter()
    path = Path(path)
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        skip = None if fmt else not_a_trace(path)
        if skip:
            return ImportResult(import_id="-", path=str(path), format=None, status="skipped", message=skip,
                                seconds=time.perf_counter() - started)
        loader = detect(path, fmt)
    except (UnknownFormatError, OSError) as exc:
        return ImportResult(import_id="-", path=str(path), format=None, status="failed", message=str(exc))
    digest = file_sha256(path)
    # deterministic: the same files imported in the same order give the same ids (same seed, same database)
    ordinal = store.sql("SELECT count(*) FROM imports").fetchone()[0]
    import_id = hashlib.sha256(f"{digest}\x1f{ordinal}".encode()).hexdigest()[:16]
    if not force:
        prior = store.sql(
            "SELECT import_id FROM imports WHERE sha256 = $sha AND format = $fmt AND status IN ('ok', 'partial') "
            "LIMIT 1", {"sha": digest, "fmt": loader.name}).fetchone()
        if prior:
            return ImportResult(import_id=prior[0], path=str(path), format=loader.name, status="skipped",
                                seconds=time.perf_counter() - started,
                                message=f"already imported as {prior[0]} (same content)")
    ctx = StageContext(import_id=import_id, path=path, options=dict(options or {}))
    try:
        with store.transaction() as cur:
            create_staging(cur)
            rejects = loader.stage(cur, path, ctx)
            n_masked = redactor.redact_staged(cur) if redactor else 0
            after = getattr(loader, "derive_run_facts", None)
            n_runs, n_steps = merge_staged(cur, import_id, after_steps=after)
            drop_staging(cur)
            # rejected: read, but nothing in it was loadable, and every record says why (not an error)
            status = ("rejected" if n_runs == 0 else "partial") if rejects else "ok"
            _record_import(cur, import_id, path, loader.name, digest, now, n_runs, n_steps, rejects, status,
                           f"redacted {n_masked} value(s)" if redactor else None)
    except (duckdb.Error, OSError, ValueError) as exc:
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        _record_failure(store, import_id, path, loader.name, digest, now, message)
        return ImportResult(import_id=import_id, path=str(path), format=loader.name, status="failed",
                            seconds=time.perf_counter() - started, message=message)
    message = "; ".join(f"{r.location}: {r.reason}" for r in rejects[:3])
    if redactor:
        message = "; ".join(m for m in (f"redacted {n_masked} value(s)", message) if m)
    return ImportResult(import_id=import_id, path=str(path), format=loader.name, status=status,
                        n_runs=n_runs, n_steps=n_steps, n_rejects=len(rejects), n_redacted=n_masked,
                        seconds=time.perf_counter() - started, message=message)


def _record_import(cur, import_id: str, path: Path, fmt: str, digest: str, started: datetime,
                   n_runs: int, n_steps: int, rejects: list[Reject], status: str,
                   message: str | None = None) -> None:
    cur.execute(
        "INSERT INTO imports (import_id, path, format, sha256, size_bytes, started_at, finished_at, n_runs, "
        "n_steps, n_rejects, status, message) VALUES ($id, $path, $fmt, $sha, $size, $start, $end, $runs, "
        "$steps, $rej, $status, $msg)",
        {"id": import_id, "path": str(path), "fmt": fmt, "sha": digest, "size": path.stat().st_size,
         "start": started, "end": datetime.now(UTC).replace(tzinfo=None), "runs": n_runs, "steps": n_steps,
         "rej": len(rejects), "status": status, "msg": message},
    )
    if rejects:
        cur.executemany(
            "INSERT INTO rejects (import_id, location, reason, excerpt) VALUES (?, ?, ?, ?)",
            [(import_id, r.location, r.reason, r.excerpt) for r in rejects],
        )


def _record_failure(store: Store, import_id: str, path: Path, fmt: str, digest: str, started: datetime,
                    message: str) -> None:
    """Remember a failed import (its data was rolled back) so the Import page can show it."""
    # When even this fails the store itself is unusable, and the caller already reports the original error.
    with contextlib.suppress(duckdb.Error), store.transaction() as cur:
        _record_import(cur, import_id, path, fmt, digest, started, 0, 0, [], "failed")
        cur.execute("UPDATE imports SET message = $m WHERE import_id = $id", {"m": message, "id": import_id})
