"""Importing from the app: uploads and server-side paths, each file's result, and the history of imports.

The Import page, a notebook and a test all call these. Both sources end in `ingest_paths`, one transaction
per file with a progress callback, on the store the app process owns:

* `import_uploads` writes the browser's files into `<db folder>/uploads/<id>/` (see `workbench.uploads` for
  the checks) and ingests what landed;
* `import_path` ingests a file, folder or glob typed by the user, but only under the import roots
  (`workbench.store.import_roots`: `$WORKBENCH_IMPORT_ROOTS`, else the database's folder and ./data), so the
  page cannot be used to read arbitrary files. Paths are resolved (symlinks and `..` included) before the
  check, and every file a folder or glob expands to is checked again.

Example:
    >>> report = import_path(store, "data/traces", fmt=None)        # doctest: +SKIP
    >>> report.frame()                                              # doctest: +SKIP
    >>> import_rejects(store, report.summary.results[0].import_id)  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from workbench.ingest import _TRACE_SUFFIXES, IngestSummary, Progress, expand_paths, ingest_paths
from workbench.models import ImportResult
from workbench.store import Store, import_roots
from workbench.uploads import StagedUpload, UploadLimits, stage_upload

__all__ = ["ImportReport", "PathNotAllowedError", "check_import_path", "import_path", "import_rejects",
           "import_roots", "import_uploads", "imports_table", "uploads_root"]

_NO_TRACES = f"no trace files ({', '.join(sorted(_TRACE_SUFFIXES))})"
RESULT_COLUMNS = ["file", "format", "status", "runs", "steps", "rejects", "seconds", "message", "import_id"]


class PathNotAllowedError(ValueError):
    """A server-side path outside the import roots (or an empty one); the message lists the roots."""


@dataclass
class ImportReport:
    """One import action: where the files came from and the result of each."""

    source: Path
    """The upload's folder, or the path that was typed (resolved)."""
    summary: IngestSummary

    def frame(self) -> pd.DataFrame:
        """One row per file: file (relative to `source` where possible), format, status, counts, message."""
        rows = []
        for r in self.summary.results:
            rows.append({"file": _relative(r.path, self.source), "format": r.format, "status": r.status,
                         "runs": r.n_runs, "steps": r.n_steps, "rejects": r.n_rejects,
                         "seconds": round(r.seconds, 3), "message": r.message, "import_id": r.import_id})
        return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _relative(path: str, base: Path) -> str:
    try:
        rel = Path(path).relative_to(base)
    except ValueError:
        return path
    return str(rel) if str(rel) != "." else Path(path).name


def _failed(path: str, message: str) -> ImportResult:
    return ImportResult(import_id="-", path=path, format=None, status="failed", message=message)


# -- uploads ----------------------------------------------------------------------------------------------
def uploads_root(store: Store) -> Path:
    """`<database folder>/uploads`: inside the folder a serving connection may read."""
    return store.path.resolve().parent / "uploads"


def import_uploads(store: Store, files: Iterable[tuple[str, bytes | BinaryIO]], *, fmt: str | None = None,
                   progress: Progress | None = None, limits: UploadLimits | None = None) -> ImportReport:
    """Stage uploaded files (archives unpacked after their checks) and ingest them.

    A refused file or archive is a `failed` result with the reason; the others still load. Plain files are
    always tried (whatever their suffix); archives are scanned for trace files like a folder.
    """
    staged = stage_upload(files, uploads_root(store), limits)
    refused = [_failed(name, reason) for name, reason in staged.errors]
    paths = _expand_staged(staged, refused)
    summary = ingest_paths(store, paths, fmt=fmt, progress=progress) if paths else IngestSummary()
    summary.results[:0] = refused
    if not any(staged.folder.iterdir()):
        shutil.rmtree(staged.folder, ignore_errors=True)
    return ImportReport(source=staged.folder, summary=summary)


def _expand_staged(staged: StagedUpload, refused: list[ImportResult]) -> list[Path]:
    paths: list[Path] = []
    for target in staged.targets:
        if target.is_dir():
            found, _ = expand_paths([target])
            if not found:
                refused.append(_failed(str(target), f"the archive holds {_NO_TRACES}"))
            paths.extend(found)
        else:
            paths.append(target)
    return paths


# -- server-side paths ------------------------------------------------------------------------------------
def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _roots_text(roots: list[Path]) -> str:
    return ", ".join(str(r) for r in roots)


def check_import_path(text: str, roots: list[Path], *, cwd: Path | None = None) -> Path:
    """The absolute, resolved path `text` names, if it lies under one of `roots`; else PathNotAllowedError.

    Relative paths are taken from `cwd` (default: the working directory of the app). Symlinks and `..` are
    resolved first, so neither leads out of a root. Existence is not checked (nor revealed) here.
    """
    text = (text or "").strip()
    if not text:
        raise PathNotAllowedError("Type a file or folder path.")
    if "\x00" in text:
        raise PathNotAllowedError("The path holds a NUL character.")
    resolved = ((cwd or Path.cwd()) / Path(text).expanduser()).resolve()
    if not _inside(resolved, roots):
        raise PathNotAllowedError(f"{text} is outside the import folders ({_roots_text(roots)}). "
                                  "Set WORKBENCH_IMPORT_ROOTS to allow another folder.")
    return resolved


def import_path(store: Store, text: str, *, fmt: str | None = None, progress: Progress | None = None,
                roots: list[Path] | None = None, cwd: Path | None = None) -> ImportReport:
    """Ingest a file, folder (recursively) or glob typed by the user, only under the import roots.

    Raises PathNotAllowedError when the path (for a glob: its fixed leading part) is outside the roots.
    Files a folder or glob leads to outside the roots (through a symlink, say) are `failed` results.
    """
    roots = roots if roots is not None else import_roots(store.path)
    base = cwd or Path.cwd()
    text = (text or "").strip()
    refused: list[ImportResult] = []
    if glob.has_magic(text):
        fixed, wild = _split_glob(text)
        anchor = check_import_path(str(Path(*fixed)) if fixed else ".", roots, cwd=base)
        found = [Path(m).resolve() for m in sorted(glob.glob(str(anchor.joinpath(*wild)), recursive=True))]
        if not found:
            return ImportReport(anchor, IngestSummary([_failed(text, "no file or folder matches")]))
    else:
        anchor = check_import_path(text, roots, cwd=base)
        if not anchor.exists():
            return ImportReport(anchor, IngestSummary([_failed(text, "no such file or folder")]))
        found = [anchor]
    outside = f"leads outside the import folders ({_roots_text(roots)})"
    matches = [m for m in found if _inside(m, roots)]
    refused += [_failed(str(m), outside) for m in found if not _inside(m, roots)]
    kept: list[Path] = []
    files, _ = expand_paths(matches)
    for f in files:
        real = f.resolve()  # a symlink inside a root may point anywhere
        if _inside(real, roots):
            kept.append(real)
        else:
            refused.append(_failed(str(f), outside))
    if matches and not files:
        refused.append(_failed(text, _NO_TRACES))
    summary = ingest_paths(store, kept, fmt=fmt, progress=progress) if kept else IngestSummary()
    summary.results[:0] = refused
    return ImportReport(anchor if anchor.is_dir() else anchor.parent, summary)


def _split_glob(pattern: str) -> tuple[list[str], list[str]]:
    """A glob's leading fixed parts and the rest ("data/x/*/a.json" -> ["data", "x"], ["*", "a.json"])."""
    parts = list(Path(pattern).parts)
    for i, part in enumerate(parts):
        if glob.has_magic(part):
            return parts[:i], parts[i:]
    return parts, []


# -- history ----------------------------------------------------------------------------------------------
def imports_table(store: Store, limit: int = 500) -> pd.DataFrame:
    """Past imports, newest first: id, path, format, status, counts, size, times, seconds, message."""
    return store.sql(
        "SELECT import_id, path, format, status, n_runs AS runs, n_steps AS steps, n_rejects AS rejects, "
        "size_bytes, started_at, finished_at, "
        "date_diff('millisecond', started_at, finished_at) / 1000.0 AS seconds, message "
        "FROM imports ORDER BY started_at DESC NULLS LAST, import_id LIMIT $n",
        {"n": int(limit)},
    ).df()


def import_rejects(store: Store, import_id: str, limit: int = 1000) -> pd.DataFrame:
    """What one import could not read: location, reason and an excerpt of the raw record, in file order."""
    return store.sql(
        "SELECT location, reason, excerpt FROM rejects WHERE import_id = $id "
        "ORDER BY TRY_CAST(regexp_extract(location, '(\\d+)', 1) AS BIGINT) NULLS FIRST, location LIMIT $n",
        {"id": import_id, "n": int(limit)},
    ).df()
