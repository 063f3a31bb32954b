"""Reading a trace export that is one JSON document (an API response, a webhook payload), or reporting why not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.loaders import StageContext
from workbench.models import Reject

_EXCERPT = 500


def excerpt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text[:_EXCERPT]


def load_document(path: Path, ctx: StageContext) -> tuple[Any, Reject | None]:
    """(parsed JSON, None), or (None, a file-level Reject saying what is wrong: too large, not UTF-8, not
    JSON -- a truncated export says where it stops)."""
    size = path.stat().st_size
    if size > ctx.max_record_bytes:
        return None, Reject(location="file", reason=f"document of {size} bytes exceeds the limit of "
                                                    f"{ctx.max_record_bytes} bytes for one record")
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8")), None
    except UnicodeDecodeError as exc:
        return None, Reject(location="file", reason=f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                            excerpt=raw[:_EXCERPT].decode("utf-8", "replace"))
    except json.JSONDecodeError as exc:
        # the decoder stops at the end of the text, or inside a string that never closes: the file ends early
        ends_early = exc.pos >= len(raw.rstrip()) - 1 or exc.msg.startswith("Unterminated string")
        hint = " (the file ends early: truncated?)" if ends_early else ""
        return None, Reject(location=f"line {exc.lineno} column {exc.colno}",
                            reason=f"not valid JSON: {exc.msg}{hint}",
                            excerpt=raw[max(0, exc.pos - 200):exc.pos + 200].decode("utf-8", "replace"))
