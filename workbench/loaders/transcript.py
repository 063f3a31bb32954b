"""Steps from a chat transcript (OpenAI-style messages), for formats whose run *is* its message list.

Each message is one step in transcript order: assistant turns are `llm` steps carrying the message and
its tool calls; tool results are `tool` steps with the arguments of the call they answer (matched by
`tool_call_id`); system and user turns are `message` steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.loaders.parse import message_of
from workbench.models import Message, Run, Step, ToolCall

ToolError = Callable[[dict, Message], str | None]


def _no_error(raw: dict, msg: Message) -> str | None:
    return None


def chat_steps(run: Run, raw_messages: list[Any], *, model: str | None = None,
               convert: Callable[[Any], Message | None] = message_of, tool_error: ToolError = _no_error,
               ) -> list[Step]:
    """One step per message. `convert` reads a raw message; `tool_error` says whether a tool result failed.

    Raises ValueError for a message without a role, so the caller can reject the run with its location.
    """
    calls: dict[str, ToolCall] = {}
    steps: list[Step] = []
    for seq, raw in enumerate(raw_messages):
        msg = convert(raw)
        if msg is None:
            raise ValueError(f"message {seq} has no role")
        base = {"run_id": run.run_id, "step_id": str(seq), "seq": seq}
        if msg.role == "assistant":
            calls.update((c.id, c) for c in msg.tool_calls if c.id)
            steps.append(Step(**base, kind="llm", name="assistant", status="ok", messages=[msg],
                              model=raw.get("model") or model))
        elif msg.role == "tool":
            call = calls.get(msg.tool_call_id or "")
            name = raw.get("name") or raw.get("function") or (call.name if call else None)
            error = tool_error(raw, msg)
            steps.append(Step(**base, kind="tool", name=name, tool_name=name, status="error" if error else "ok",
                              tool_args=call.arguments if call else None, tool_result=msg.content, error=error,
                              attributes={"tool_call_id": msg.tool_call_id} if msg.tool_call_id else {}))
        else:
            steps.append(Step(**base, kind="message", name=msg.role, messages=[msg]))
    return steps
