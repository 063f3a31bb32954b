"""The generic loader's mapping file: which keys of a bespoke JSON/JSONL chat log hold what (TOML).

Read and checked in one place, so a typo fails before anything is imported, with a message that names the
key (``[run].idd``). The format is documented, with a worked example, in docs/generic-mapping.md.

A *key path* names a value inside a record: ``"bot.version"`` (dotted; digits index lists), a list of
segments for keys that contain dots (``["meta", "x.y"]``), or a constant for every record
(``{ value = "support-bot" }``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAPPING_SUFFIX = ".workbench.toml"
FOLDER_MAPPING = "mapping" + MAPPING_SUFFIX

_SOURCE_KEYS = {"format", "records", "per"}
_RUN_PATHS = {"id", "agent", "agent_version", "environment", "task_id", "session_id", "user_id", "started_at",
              "ended_at", "input", "output", "outcome", "score", "error", "tags"}
_RUN_KEYS = _RUN_PATHS | {"success", "failure", "attributes"}
_MESSAGE_PATHS = {"path", "role", "content", "timestamp", "model", "input_tokens", "output_tokens",
                  "cache_tokens", "cost", "tool_calls", "tool_name", "tool_arguments", "tool_call_id",
                  "result_call_id", "tool_result_name"}
_ROLES = {"user", "assistant", "system", "tool"}
_SECTIONS = {"version": None, "source": _SOURCE_KEYS, "run": _RUN_KEYS, "messages": _MESSAGE_PATHS,
             "roles": _ROLES}
_MESSAGE_DEFAULTS = {"role": "role", "content": "content"}


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class KeyPath:
    """Where a value lives in a record, or a constant."""

    segments: tuple[str, ...] = ()
    constant: Any = None
    is_constant: bool = False

    def get(self, record: Any) -> Any:
        if self.is_constant:
            return self.constant
        value = record
        for seg in self.segments:
            if isinstance(value, dict):
                value = value.get(seg)
            elif isinstance(value, list) and seg.isdigit() and int(seg) < len(value):
                value = value[int(seg)]
            else:
                return None
            if value is None:
                return None
        return value

    def __str__(self) -> str:
        return repr(self.constant) if self.is_constant else ".".join(self.segments)


@dataclass(frozen=True)
class Mapping:
    """A checked mapping: see docs/generic-mapping.md for every key."""

    source: Path | None
    format: str = "auto"
    records: KeyPath = KeyPath()
    per: str = "run"
    run: dict[str, KeyPath] = field(default_factory=dict)
    success: tuple[str, ...] = ()
    failure: tuple[str, ...] | None = None
    attributes: tuple[str, ...] = ()
    messages: dict[str, KeyPath] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    """Role name in the log (lower case) -> canonical role (user, assistant, system, tool)."""

    def outcome_of(self, value: Any) -> str:
        """success / failure / unknown for the outcome value of a run."""
        if value is None or value == "":
            return "unknown"
        norm = normalize_value(value)
        if norm in self.success:
            return "success"
        if self.failure is None or norm in self.failure:
            return "failure"
        return "unknown"

    def role_of(self, raw: Any) -> str:
        text = str(raw or "").strip()
        return self.roles.get(text.lower(), text.lower() or "unknown")


def normalize_value(value: Any) -> str:
    """Outcome values compared across JSON and TOML: true == "true", 1 == "1", "Resolved" == "resolved"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def find_mapping(path: Path, options: dict[str, Any] | None = None) -> Path | None:
    """The mapping for a data file: `options["mapping"]`, else `<stem>.workbench.toml` next to the file, else
    `mapping.workbench.toml` in its folder."""
    given = (options or {}).get("mapping")
    if given:
        return Path(given)
    for candidate in (path.with_name(path.stem + MAPPING_SUFFIX), path.with_name(FOLDER_MAPPING)):
        if candidate.is_file():
            return candidate
    return None


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file. Raises `MappingError` naming the file and the offending key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"{path}: cannot read the mapping ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from None
    return parse_mapping(data, path)


def parse_mapping(data: dict[str, Any], source: Path | None = None) -> Mapping:
    where = f"{source}: " if source else ""

    def fail(msg: str) -> MappingError:
        return MappingError(where + msg)

    for key, value in data.items():
        if key not in _SECTIONS:
            raise fail(f"unknown key {key!r} (known: {', '.join(sorted(_SECTIONS))})")
        if _SECTIONS[key] is not None and not isinstance(value, dict):
            raise fail(f"[{key}] must be a table")
        for sub in value if _SECTIONS[key] else ():
            if sub not in _SECTIONS[key]:
                raise fail(f"unknown key [{key}].{sub} (known: {', '.join(sorted(_SECTIONS[key]))})")
    if data.get("version", 1) != 1:
        raise fail(f"version = {data['version']!r} is not supported (this workbench reads version 1)")
    src, run, msgs = data.get("source", {}), data.get("run", {}), data.get("messages", {})
    fmt = src.get("format", "auto")
    if fmt not in ("auto", "json", "jsonl"):
        raise fail(f"[source].format must be \"auto\", \"json\" or \"jsonl\", not {fmt!r}")
    per = src.get("per", "run")
    if per not in ("run", "message"):
        raise fail(f"[source].per must be \"run\" (a record holds a run) or \"message\", not {per!r}")
    if "id" not in run:
        raise fail("missing required key [run].id (the key that holds each run's id)")
    if per == "run" and "path" not in msgs:
        raise fail("missing required key [messages].path (the list of messages in each record); "
                   "or set [source].per = \"message\" when each record is one message")
    if "outcome" in run and "success" not in run:
        raise fail("missing key [run].success (the outcome values that mean success), "
                   "needed with [run].outcome")
    paths = {k: _key_path(v, f"[run].{k}", fail) for k, v in run.items() if k in _RUN_PATHS}
    message_paths = {k: _key_path(v, f"[messages].{k}", fail) for k, v in msgs.items()}
    for k, default in _MESSAGE_DEFAULTS.items():
        message_paths.setdefault(k, _key_path(default, k, fail))
    roles: dict[str, str] = {}
    for canonical, names in data.get("roles", {}).items():
        for name in _strings(names, f"[roles].{canonical}", fail):
            roles[name.lower()] = canonical
    failure = run.get("failure")
    return Mapping(
        source=source, format=fmt, per=per,
        records=_key_path(src["records"], "[source].records", fail) if src.get("records") else KeyPath(),
        run=paths,
        success=tuple(normalize_value(v) for v in _scalars(run.get("success", []), "[run].success", fail)),
        failure=None if failure is None else tuple(
            normalize_value(v) for v in _scalars(failure, "[run].failure", fail)),
        attributes=tuple(_strings(run.get("attributes", []), "[run].attributes", fail)),
        messages=message_paths, roles=roles,
    )


def _key_path(spec: Any, name: str, fail) -> KeyPath:
    if isinstance(spec, str) and spec.strip():
        return KeyPath(segments=tuple(spec.strip().split(".")))
    if isinstance(spec, list) and spec and all(isinstance(s, str | int) for s in spec):
        return KeyPath(segments=tuple(str(s) for s in spec))
    if isinstance(spec, dict) and set(spec) == {"value"}:
        return KeyPath(constant=spec["value"], is_constant=True)
    raise fail(f"{name} must be a key path: \"a.b\", a list of keys, or {{ value = ... }} for a constant; "
               f"got {spec!r}")


def _scalars(value: Any, name: str, fail) -> list:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int | float | bool) for v in items):
        raise fail(f"{name} must be a value or a list of values (strings, numbers, booleans)")
    return items


def _strings(value: Any, name: str, fail) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v for v in items):
        raise fail(f"{name} must be a string or a list of strings")
    return items
