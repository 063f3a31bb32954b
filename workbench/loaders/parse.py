"""Lenient readers for the values real trace files hold: timestamps, JSON-in-strings, message content.

Every pitfall here occurs in ../shared/data/real: timestamps as nanosecond strings, ISO with and without a
zone, epoch seconds or milliseconds; JSON encoded inside a string (sometimes twice); tool arguments as a
Python repr; message content as a string, a list of typed parts, or None.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.models import Message, ToolCall


def parse_ts(value: Any) -> datetime | None:
    """A UTC-naive datetime from ISO text (any zone), epoch s/ms/us/ns (number or digit string), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        n = float(value)
        # pick the unit by magnitude: seconds ~1e9, ms ~1e12, us ~1e15, ns ~1e18
        for scale in (1, 1e3, 1e6, 1e9):
            if abs(n) / scale < 1e11:
                return datetime.fromtimestamp(n / scale, UTC).replace(tzinfo=None)
        return None
    elif isinstance(value, str):
        text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        if " " in text and "T" not in text:
            text = text.replace(" ", "T", 1)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def duration_ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000


def loads_lenient(value: Any, depth: int = 3) -> Any:
    """Decode JSON held in strings (up to `depth` times), or a Python literal repr; else the value itself."""
    for _ in range(depth):
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text or text[0] not in "[{\"" and text not in ("true", "false", "null"):
            return value
        try:
            value = json.loads(text)
            continue
        except ValueError:
            pass
        try:
            return ast.literal_eval(text)  # tool inputs recorded as Python reprs: {'city': 'Paris'}
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
    return value


def content_text(content: Any) -> str | None:
    """Text of a message's content: a string, a list of parts ({type: text, text: ...}, images ...), a dict."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [content_text(p) for p in content]
        return "\n".join(p for p in parts if p) or None
    if isinstance(content, dict):
        for key in ("text", "content", "value", "output", "result"):
            if isinstance(content.get(key), str):
                return content[key]
        kind = content.get("type")
        if kind and kind not in ("text",):
            return f"[{kind}]"
        return json.dumps(content, ensure_ascii=False, default=str)
    return str(content)


def tool_calls_of(raw: Any) -> list[ToolCall]:
    """OpenAI-style `tool_calls` ([{id, function: {name, arguments}}]) or flat [{name, arguments|args|input}]."""
    calls: list[ToolCall] = []
    for item in raw or []:
        if not isinstance(item, dict):
            continue
        fn = item.get("function") if isinstance(item.get("function"), dict) else item
        name = fn.get("name") or item.get("name")
        if not name:
            continue
        args = fn.get("arguments", fn.get("args", fn.get("input")))
        calls.append(ToolCall(id=item.get("id"), name=str(name), arguments=loads_lenient(args)))
    return calls


def message_of(raw: Any) -> Message | None:
    """One chat message from an OpenAI/Anthropic/LangChain-like dict; None when it is not one."""
    if not isinstance(raw, dict):
        return None
    role = raw.get("role") or raw.get("type") or raw.get("sender")
    if not role:
        return None
    content = raw.get("content")
    calls = tool_calls_of(raw.get("tool_calls"))
    # Anthropic puts tool_use blocks inside content
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "tool_use" and part.get("name"):
                calls.append(ToolCall(id=part.get("id"), name=part["name"], arguments=part.get("input")))
    return Message(role=str(role), content=content_text(content), tool_calls=calls,
                   tool_call_id=raw.get("tool_call_id"))


def messages_of(raw: Any) -> list[Message]:
    if isinstance(raw, dict) and isinstance(raw.get("messages"), list):
        raw = raw["messages"]
    if not isinstance(raw, list):
        return []
    return [m for m in (message_of(r) for r in raw) if m is not None]


def as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


def read_json_lines(path: Path, max_bytes: int, excerpt_chars: int = 500) -> Iterator[tuple[str, str, Any, str | None]]:
    """(location, excerpt, value, problem) for each non-blank line of a JSON Lines file.

    `problem` says why a line could not be read (too large, not JSON); `value` is None then.
    """
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            location = f"line {number}"
            excerpt = raw.rstrip(b"\r\n")[:excerpt_chars].decode("utf-8", errors="replace")
            if len(raw) > max_bytes:
                yield location, excerpt, None, f"record of {len(raw):,} bytes exceeds the {max_bytes:,} byte limit"
                continue
            try:
                yield location, excerpt, json.loads(raw), None
            except (ValueError, UnicodeDecodeError) as exc:
                yield location, excerpt, None, f"invalid JSON: {exc}"
