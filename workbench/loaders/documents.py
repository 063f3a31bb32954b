"""Reading a trace file as JSON, with a `Reject` that says what is wrong instead of a traceback.

Trajectory formats (SWE-agent `.traj`, OpenHands event lists, tau-bench arrays, Who&When logs, Inspect eval
logs and their zip members, bespoke chat exports) and API exports (Langfuse traces, LangSmith runs, AgentOps
traces) are single JSON documents or JSON lines. A copy cut short by a full disk or an interrupted download is
the common failure: the reject names the line and column where parsing stopped and says the file may be
truncated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from workbench.models import Reject

EXCERPT_CHARS = 500
# what reading a record of an unexpected shape raises; pydantic's ValidationError is a ValueError
RECORD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError)
T = TypeVar("T")


def excerpt(value: Any) -> str:
    """What a reject shows of a record: a string as it is, anything else as JSON; at most EXCERPT_CHARS."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:EXCERPT_CHARS]


def file_excerpt(path: Path) -> str:
    """The first EXCERPT_CHARS bytes of a file as text: what a reject about the whole file shows."""
    with open(path, "rb") as fh:
        return fh.read(EXCERPT_CHARS).decode("utf-8", errors="replace")


def _too_big(path: Path, limit: int) -> Reject | None:
    size = path.stat().st_size
    if size > limit:
        return Reject(location="file", reason=f"file is {size:,} bytes, over the {limit:,}-byte record limit")
    return None


def _ran_out(exc: json.JSONDecodeError, text: str) -> bool:
    """The text ended inside a value: the parser failed at the end, or a string never closed before EOF."""
    return exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")


def _json_error(exc: json.JSONDecodeError, text: str, where: str) -> Reject:
    hint = " (the file ends inside a value: it looks truncated)" if _ran_out(exc, text) else ""
    start = max(exc.pos - EXCERPT_CHARS // 2, 0)
    return Reject(location=f"{where}line {exc.lineno} column {exc.colno}",
                  reason=f"not valid JSON: {exc.msg}{hint}", excerpt=text[start:start + EXCERPT_CHARS])


def read_document(path: Path, max_bytes: int) -> tuple[Any, Reject | None]:
    """The parsed JSON document, or (None, a reject saying why it could not be read)."""
    big = _too_big(path, max_bytes)
    if big:
        return None, big
    return parse_document(path.read_bytes())


def parse_document(raw: bytes, member: str | None = None) -> tuple[Any, Reject | None]:
    """`raw` parsed as one JSON document; for a `member` of an archive, rejects name it in their location."""
    where = f"{member} " if member else ""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, Reject(location=f"{where}byte {exc.start}", reason="not UTF-8 text", excerpt=repr(raw[:200]))
    if not text.strip():
        return None, Reject(location=member or "file", reason="the file is empty")
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, _json_error(exc, text, where)
    except RecursionError:
        return None, Reject(location=member or "file", reason="JSON nested too deeply to read")


def read_tail(path: Path, n: int = 64 * 1024) -> bytes:
    """The last `n` bytes of a file: for sniffing formats whose telling keys come after a long history."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        fh.seek(max(fh.tell() - n, 0))
        return fh.read(n)


def guarded(location: str, raw: Any, build: Callable[[], T]) -> T | Reject:
    """`build()`, or a Reject for this one record when its shape is not what the format promises.

    `raw` is what the reject's excerpt shows; one odd record never takes the file's good records down.
    """
    try:
        return build()
    except RECORD_ERRORS as exc:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return Reject(location=location, reason=f"unreadable record ({type(exc).__name__}: {detail})"[:300],
                      excerpt=excerpt(raw))


def iter_json_lines(path: Path, max_bytes: int) -> Iterator[tuple[int, Any] | Reject]:
    """(line number, parsed value) for every non-blank line, or a reject for a line that is not JSON."""
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            if len(raw) > max_bytes:
                yield Reject(location=f"line {lineno}",
                             reason=f"record is {len(raw):,} bytes, over the {max_bytes:,}-byte limit",
                             excerpt=raw[:EXCERPT_CHARS].decode("utf-8", "replace"))
                continue
            text = raw.decode("utf-8-sig", "replace")
            try:
                yield lineno, json.loads(text)
            except json.JSONDecodeError as exc:
                truncated = not raw.endswith(b"\n") and _ran_out(exc, text)
                hint = " (the last line is cut off: the file looks truncated)" if truncated else ""
                yield Reject(location=f"line {lineno}", reason=f"not valid JSON: {exc.msg}{hint}",
                             excerpt=text[:EXCERPT_CHARS])
            except RecursionError:
                yield Reject(location=f"line {lineno}", reason="JSON nested too deeply to read")

