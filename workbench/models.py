"""The canonical model: what every loader produces and every page, notebook and export reads.

A **run** is one end-to-end agent execution (a trace, a trajectory, an eval sample); a **step** is one
thing that happened inside it (a span, a message, an event). Column names match the store's tables.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

StepKind = Literal["llm", "tool", "agent", "chain", "retrieval", "guardrail", "human", "message", "event", "other"]
Outcome = Literal["success", "failure", "unknown"]
RunStatus = Literal["ok", "error", "unknown"]
STEP_KINDS: tuple[str, ...] = StepKind.__args__  # type: ignore[attr-defined]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
STATUSES: tuple[str, ...] = RunStatus.__args__  # type: ignore[attr-defined]


def make_run_id(fmt: str, native_id: str) -> str:
    """Deterministic run id: the same (format, native trace id) always gives the same run.

    The store computes the same value in SQL: ``substr(sha256(format || chr(31) || native_id), 1, 16)``.
    """
    return hashlib.sha256(f"{fmt}\x1f{native_id}".encode()).hexdigest()[:16]


def normalize_id(raw: str | int | None) -> str | None:
    """Trace and span ids arrive as hex, `0x` hex, upper case, UUIDs: compare them lower-cased and bare."""
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    return text or None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Model):
    id: str | None = None
    """The provider's call id, linking a tool result message back to this call."""
    name: str
    """Tool (function) name."""
    arguments: Any = None
    """Parsed arguments when they were JSON, else the raw text."""


class Message(_Model):
    role: str
    """system, user, assistant, tool (or a framework's own role name)."""
    content: str | None = None
    """Text content; non-text parts are summarized as text."""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """Tool calls the assistant asked for in this message."""
    tool_call_id: str | None = None
    """For a tool message, the call it answers."""


class Step(_Model):
    run_id: str
    step_id: str
    """Native span id (normalized) or the position in the source."""
    parent_step_id: str | None = None
    seq: int
    """Position of the step in the run, in start-time order."""
    depth: int = 0
    """Nesting depth under the run's root (root = 0)."""
    kind: StepKind = "other"
    name: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float | None = None
    status: str = "unset"
    """ok / error / unset, as the source reported it."""
    error: str | None = None
    model: str | None = None
    provider: str | None = None
    messages: list[Message] = Field(default_factory=list)
    tool_name: str | None = None
    tool_args: Any = None
    tool_result: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    cost_estimated: bool | None = None
    """True when cost_usd was computed from the price table rather than reported by the source."""
    attributes: dict[str, Any] = Field(default_factory=dict)


class Run(_Model):
    run_id: str
    format: str
    """The loader's name (otlp, langfuse, tau-bench ...)."""
    native_id: str
    import_id: str | None = None
    agent: str | None = None
    agent_version: str | None = None
    """Prompt / model / config version the run was made with."""
    environment: str | None = None
    task_id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: float | None = None
    status: RunStatus = "unknown"
    outcome: Outcome = "unknown"
    outcome_score: float | None = None
    input: str | None = None
    output: str | None = None
    error: str | None = None
    n_steps: int = 0
    n_llm_calls: int = 0
    n_tool_calls: int = 0
    n_errors: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: float | None = None
    cost_estimated: bool | None = None
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)


class Reject(_Model):
    location: str
    """Where in the file: "line 12", a JSON pointer, or "file"."""
    reason: str
    excerpt: str | None = None
    """The first characters of the raw record, so the reviewer can see what was wrong."""


class ImportResult(_Model):
    import_id: str
    path: str
    format: str | None
    status: Literal["ok", "partial", "rejected", "skipped", "failed"]
    """ok; partial (some records rejected); rejected (recognized, nothing loadable, each reject has a reason);
    skipped (same content imported before); failed (unrecognized, unreadable, or an error rolled it back)."""
    n_runs: int = 0
    n_steps: int = 0
    n_rejects: int = 0
    n_redacted: int = 0
    """Values masked by redaction (0 when redaction was off)."""
    seconds: float = 0.0
    message: str = ""
