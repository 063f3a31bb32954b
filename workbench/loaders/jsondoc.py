"""Whole-document JSON files (a trajectory list, an eval log, one labelled run): bounded reading, clear rejects.

Benchmark and eval formats write one JSON document per file. These helpers read such a document with a
size cap, turn a broken or truncated file into a `Reject` that says where and why, and keep one bad record
from taking the file's good records down with it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from workbench.models import Reject

MAX_DOCUMENT_BYTES = 1024 * 1024 * 1024
"""A single JSON document larger than this is rejected instead of parsed (json.loads holds it all in memory)."""

# what reading a record of an unexpected shape raises; pydantic's ValidationError is a ValueError
RECORD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError)
T = TypeVar("T")


def excerpt(raw: Any, limit: int = 500) -> str:
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    return text[:limit]


def parse_document(data: bytes, location: str = "file") -> Any | Reject:
    """The parsed JSON value, or a Reject naming the line and column where it stopped being JSON."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        ending = data.rstrip()[-1:]
        hint = "; the document ends early (truncated file?)" if ending not in (b"}", b"]") else ""
        return Reject(location=f"{location} line {exc.lineno} column {exc.colno}",
                      reason=f"not valid JSON: {exc.msg}{hint}",
                      excerpt=exc.doc[max(exc.pos - 200, 0):exc.pos + 200] if isinstance(exc.doc, str) else None)
    except UnicodeDecodeError as exc:
        return Reject(location=location, reason=f"not UTF-8 text: {exc.reason} at byte {exc.start}")
    except RecursionError:
        return Reject(location=location, reason="JSON nested too deeply to read")


def load_document(path: Path, expect: type, what: str, limit: int = MAX_DOCUMENT_BYTES) -> Any | Reject:
    """Read and parse a one-document JSON file whose top level is an `expect` (list or dict).

    Files over `limit` bytes, broken JSON and a top level of another type give a Reject; `what` names the
    expected document in that reject ("a JSON array of trajectories").
    """
    size = path.stat().st_size
    if size > limit:
        return Reject(location="file", reason=f"file is {size:,} bytes, over the {limit:,}-byte limit for one "
                                              "JSON document")
    with open(path, "rb") as fh:
        doc = parse_document(fh.read(limit + 1))
    if isinstance(doc, Reject) or isinstance(doc, expect):
        return doc
    return Reject(location="file", reason=f"expected {what}, found a JSON {type(doc).__name__}",
                  excerpt=excerpt(doc))


def read_tail(path: Path, n: int = 64 * 1024) -> bytes:
    """The last `n` bytes of a file: sniffing formats whose telling keys come after a long history."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(fh.tell() - n, 0))
        return fh.read(n)


def guarded(location: str, raw: Any, build: Callable[[], T]) -> T | Reject:
    """`build()`, or a Reject for this one record when its shape is not what the format promises."""
    try:
        return build()
    except RECORD_ERRORS as exc:
        reason = f"unreadable record ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        return Reject(location=location, reason=reason[:300], excerpt=excerpt(raw))
