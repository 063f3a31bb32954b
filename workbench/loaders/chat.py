"""Chat messages from the many shapes frameworks record them in, for the LangSmith, Langfuse and AgentOps loaders.

One observation's input or output may be: an OpenAI request (`{messages: [...]}`) or response (`{choices}`),
an OpenAI Responses API item list or response (`{object: "response", output: [...]}`), Anthropic content
blocks, Gemini `contents`/`candidates` with `parts`, OTel GenAI `parts` messages, LangChain messages
(serialized constructors, `{type: human}` dicts, `("user", text)` tuples, `LLMResult.generations`), Vercel AI SDK
tool-call parts, pydantic `repr()` strings (Agno), or plain text. `input_messages` / `output_messages` turn any
of these into `Message`s, roles normalized (human/ai/model -> user/assistant, as Langfuse's own ChatML rendering
does for LangChain), tool calls with parsed arguments, non-text parts summarized as `[type]`.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from typing import Any

from workbench.loaders.parse import loads_lenient
from workbench.models import Message, ToolCall

_ROLES = {"human": "user", "ai": "assistant", "model": "assistant", "AIMessageChunk": "assistant"}
_LC_CLASSES = {"HumanMessage": "user", "AIMessage": "assistant", "AIMessageChunk": "assistant",
               "SystemMessage": "system", "ToolMessage": "tool", "FunctionMessage": "tool"}
_TEXT_PARTS = {"text", "input_text", "output_text"}
_CALL_PARTS = {"tool_use", "tool-call", "tool_call", "function_call"}
_RESULT_PARTS = {"tool_result", "tool-result"}


def canon_role(role: Any) -> str:
    return _ROLES.get(str(role), str(role))


def compact_json(value: Any) -> str:
    """JSON the way JavaScript's JSON.stringify writes it (what Langfuse shows for structured content)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def as_text(value: Any) -> str | None:
    """A tool result or free-form value as text: strings as they are, anything else as compact JSON."""
    if value is None:
        return None
    return value if isinstance(value, str) else compact_json(value)


def tool_output_text(value: Any) -> str | None:
    """A tool's output as text: a string, a LangChain ToolMessage's content (dict or serialized), MCP /
    Anthropic content blocks; anything else as compact JSON."""
    value = loads_lenient(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and ("content" in value or value.get("lc") == 1):
        found = message_list(value) or message_list({**value, "role": "tool"})
        if found and found[0].content is not None:
            return found[0].content
    return as_text(value)


def _is_reasoning(kind: str) -> bool:
    low = kind.lower()
    return "reasoning" in low or "thinking" in low


def parts_text(content: Any) -> str | None:
    """Text of message content: a string, or the text parts of a part list (reasoning parts left out, tool
    calls left to `tool_calls`, other parts such as images summarized as `[type]`)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return str(content)
    texts: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = str(part.get("type") or "")
        if kind in _CALL_PARTS or _is_reasoning(kind):
            continue
        if kind in _RESULT_PARTS:
            texts.append(parts_text(part.get("content", part.get("output", part.get("result")))) or "")
        elif isinstance(part.get("text"), str) and (not kind or kind in _TEXT_PARTS):
            texts.append(part["text"])
        elif kind == "text" and isinstance(part.get("content"), str):  # OTel GenAI text part
            texts.append(part["content"])
        elif kind:
            texts.append(f"[{kind}]")
        else:
            texts.append(compact_json(part))
    return "\n".join(texts) if texts else None


def tool_call(item: Any) -> ToolCall | None:
    """One tool call in any of the usual shapes: OpenAI, LangChain, Anthropic tool_use, Gemini function_call,
    Vercel tool-call, OTel GenAI tool_call part, Responses function_call."""
    if not isinstance(item, dict):
        return None
    fn = item.get("function") if isinstance(item.get("function"), dict) else item
    name = fn.get("name") or item.get("toolName")
    if not name:
        return None
    call_id = item.get("call_id") or item.get("toolCallId") or item.get("id")
    if isinstance(call_id, list):  # Microsoft Agent Framework: [run id, call id]
        call_id = call_id[-1] if call_id else None
    args = next((fn[k] for k in ("arguments", "args", "input") if k in fn), None)
    return ToolCall(id=str(call_id) if call_id else None, name=str(name), arguments=loads_lenient(args))


def _calls(raw: Any) -> list[ToolCall]:
    return [c for c in (tool_call(i) for i in raw or [] if isinstance(raw, list)) if c is not None]


def _is_tool_definition(content: Any) -> bool:
    """LangChain callback handlers record the tools offered as `{role: tool, content: {type: function, ...}}`
    messages; Langfuse shows them as the call's tools, not as messages, and so do we."""
    fn = content.get("function") if isinstance(content, dict) else None
    return isinstance(fn, dict) and content.get("type") == "function" and "name" in fn and (
        "parameters" in fn or "description" in fn)


# -- single messages ---------------------------------------------------------------------------------------
def _parts_message(raw: dict) -> list[Message]:
    """OTel GenAI message `{role, parts: [...]}`: each tool_call_response part becomes its own tool message."""
    role = canon_role(raw.get("role") or "user")
    parts = [p for p in raw.get("parts") or [] if isinstance(p, dict)]
    responses = [p for p in parts if p.get("type") == "tool_call_response"]
    calls = _calls([p for p in parts if p.get("type") == "tool_call"])
    text = parts_text([p for p in parts if p.get("type") not in ("tool_call", "tool_call_response")])
    out = []
    if text is not None or calls or not responses:
        out.append(Message(role=role, content=text, tool_calls=calls))
    for p in responses:
        call_id = p.get("id")
        if isinstance(call_id, list):
            call_id = call_id[-1] if call_id else None
        out.append(Message(role="tool", content=as_text(p.get("response", p.get("result"))),
                           tool_call_id=str(call_id) if call_id else None))
    return out


def _gemini_message(raw: dict) -> Message:
    """Gemini content `{role, parts: [{text} | {function_call} | {function_response}]}`."""
    texts, calls = [], []
    for part in raw.get("parts") or []:
        if not isinstance(part, dict):
            continue
        call = part.get("function_call") or part.get("functionCall")
        reply = part.get("function_response") or part.get("functionResponse")
        if isinstance(call, dict):
            calls.append(ToolCall(id=call.get("id"), name=str(call.get("name")), arguments=call.get("args")))
        elif isinstance(reply, dict):
            texts.append(as_text(reply.get("response")) or "")
        elif isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
    return Message(role=canon_role(raw.get("role") or "user"), content="\n".join(texts) if texts else None,
                   tool_calls=calls)


def _responses_item(raw: dict) -> Message | None:
    kind = raw.get("type")
    if kind == "function_call":
        return Message(role="assistant", tool_calls=[c for c in [tool_call(raw)] if c])
    if kind == "function_call_output":
        return Message(role="tool", content=as_text(raw.get("output")), tool_call_id=raw.get("call_id"))
    if kind == "reasoning":
        return None
    return Message(role=canon_role(raw.get("role") or "assistant"), content=parts_text(raw.get("content")))


def _role_message(raw: dict, role: str) -> Message | None:
    content = raw.get("content")
    if role == "tool" and _is_tool_definition(content):
        return None
    calls = _calls(raw.get("tool_calls"))
    extra = raw.get("additional_kwargs")
    if not calls and isinstance(extra, dict):
        calls = _calls(extra.get("tool_calls"))
    if not calls and isinstance(raw.get("function_call"), dict):
        calls = _calls([raw["function_call"]])
    if isinstance(content, list):
        calls += _calls([p for p in content if isinstance(p, dict) and p.get("type") in _CALL_PARTS])
    call_id = raw.get("tool_call_id")
    if call_id is None and isinstance(content, list):
        ids = [p.get("tool_use_id") for p in content if isinstance(p, dict) and p.get("tool_use_id")]
        call_id = ids[0] if len(ids) == 1 else None
    return Message(role=role, content=parts_text(content), tool_calls=calls, tool_call_id=call_id)


def message_list(raw: Any) -> list[Message]:
    """Messages from one recorded message, whatever its shape (see the module docstring)."""
    if isinstance(raw, str):
        fields = repr_fields(raw)
        if fields and fields.get("role"):
            return message_list(fields)
        return [Message(role="user", content=raw)]
    if isinstance(raw, list | tuple):
        if len(raw) == 2 and all(isinstance(x, str) for x in raw):  # LangChain ("user", "text")
            return [Message(role=canon_role(raw[0]), content=raw[1])]
        return []
    if not isinstance(raw, dict):
        return []
    if raw.get("lc") == 1 and isinstance(raw.get("kwargs"), dict):  # serialized LangChain message
        kwargs = raw["kwargs"]
        cls = raw.get("id", [""])[-1] if isinstance(raw.get("id"), list) else ""
        role = _LC_CLASSES.get(cls) or canon_role(kwargs.get("role") or kwargs.get("type") or "user")
        return [m for m in [_role_message(kwargs, role)] if m]
    if isinstance(raw.get("parts"), list) and "content" not in raw:
        if any(isinstance(p, dict) and "type" in p for p in raw["parts"]):
            return _parts_message(raw)
        return [_gemini_message(raw)]
    if raw.get("type") in ("function_call", "function_call_output", "reasoning") or (
            raw.get("type") == "message" and "role" in raw):
        return [m for m in [_responses_item(raw)] if m]
    if _is_vercel_call(raw):  # Vercel AI SDK tool call result entry
        return [Message(role="assistant", content="", tool_calls=_calls([raw]))]
    if isinstance(raw.get("message"), dict):  # a chat completion choice / OTel gen_ai.choice event
        return message_list(raw["message"])
    role = raw.get("role") or raw.get("type")
    if role and ("content" in raw or "tool_calls" in raw or "additional_kwargs" in raw):
        return [m for m in [_role_message(raw, canon_role(role))] if m]
    if raw.get("role") and isinstance(raw.get("text"), str):  # BeeAI: {role, text}
        return [Message(role=canon_role(raw["role"]), content=raw["text"])]
    return []


def message_seq(items: Any) -> list[Message]:
    out: list[Message] = []
    calls: list[dict] = []  # consecutive Vercel AI SDK tool-call entries form one assistant turn

    def flush() -> None:
        if calls:
            out.append(Message(role="assistant", content="", tool_calls=_calls(calls)))
            calls.clear()

    for item in items if isinstance(items, list) else []:
        if _is_vercel_call(item):
            calls.append(item)
            continue
        flush()
        if isinstance(item, list) and not (len(item) == 2 and all(isinstance(x, str) for x in item)):
            out.extend(message_seq(item))  # LangChain batches: [[msg, msg]]
        else:
            out.extend(message_list(item))
    flush()
    return out


def _is_vercel_call(item: Any) -> bool:
    return isinstance(item, dict) and "toolCallId" in item and "toolName" in item


# -- containers: a whole request or response ---------------------------------------------------------------
def input_messages(value: Any, fallback: bool = True) -> list[Message]:
    """The messages sent to a model, from a recorded request/input of any known shape; else (unless
    `fallback` is False) one user message holding the value as text, so nothing is dropped."""
    value = loads_lenient(value)
    if value is None or value == "" or value == {} or value == []:
        return []
    if isinstance(value, str):
        return message_list(value)
    if isinstance(value, list):
        return message_seq(value) or _fallback("user", value, fallback)
    if not isinstance(value, dict):
        return _fallback("user", value, fallback)
    if isinstance(value.get("messages"), list):
        return message_seq(value["messages"])
    if isinstance(value.get("new_message"), dict):  # Google ADK runner input
        return message_list(value["new_message"])
    if "contents" in value:  # Gemini request: system instruction in config, contents a string or a list
        config = value.get("config") if isinstance(value.get("config"), dict) else {}
        system = config.get("system_instruction") or value.get("system_instruction")
        out = [Message(role="system", content=parts_text(system))] if system else []
        contents = value["contents"]
        if isinstance(contents, str):
            return out + [Message(role="user", content=contents)]
        return out + message_seq(contents)
    if isinstance(value.get("prompts"), list):  # LangChain completion LLM
        return [Message(role="user", content=str(p)) for p in value["prompts"]]
    if isinstance(value.get("prompt"), str):  # Vercel generateText, completion APIs
        return [Message(role="user", content=value["prompt"])]
    if isinstance(value.get("input"), list):  # OpenAI Responses request
        return message_seq(value["input"])
    return message_list(value) or _fallback("user", value, fallback)


def output_messages(value: Any, fallback: bool = True) -> list[Message]:
    """The messages a model returned, from a recorded response/output of any known shape; else (unless
    `fallback` is False) one assistant message holding the value as text."""
    value = loads_lenient(value)
    if value is None or value == "" or value == {} or value == []:
        return []
    if isinstance(value, str):
        return [Message(role="assistant", content=value)]
    if isinstance(value, list):
        return message_seq(value) or _fallback("assistant", value, fallback)
    if not isinstance(value, dict):
        return _fallback("assistant", value, fallback)
    if isinstance(value.get("choices"), list):
        return message_seq([c.get("message") for c in value["choices"] if isinstance(c, dict)])
    if isinstance(value.get("candidates"), list):
        return message_seq([c.get("content") for c in value["candidates"] if isinstance(c, dict)])
    if isinstance(value.get("content"), dict) and isinstance(value["content"].get("parts"), list):
        return [_gemini_message(value["content"])]  # ADK LlmResponse
    if value.get("object") == "response" and isinstance(value.get("output"), list):
        return message_seq(value["output"])
    if isinstance(value.get("generations"), list):  # LangChain LLMResult
        gens = [g for batch in value["generations"] for g in (batch if isinstance(batch, list) else [batch])]
        return message_seq([g.get("message") or ("assistant", g.get("text") or "") for g in gens
                            if isinstance(g, dict)])
    if isinstance(value.get("messages"), list):
        return message_seq(value["messages"])
    return message_list(value) or _fallback("assistant", value, fallback)


def _fallback(role: str, value: Any, wanted: bool) -> list[Message]:
    return [Message(role=role, content=as_text(value))] if wanted else []


def first_text(messages: list[Message], role: str) -> str | None:
    return next((m.content for m in messages if m.role == role and m.content), None)


def last_text(messages: list[Message], role: str) -> str | None:
    return next((m.content for m in reversed(messages) if m.role == role and m.content), None)


# -- pydantic repr ---------------------------------------------------------------------------------------
_REPR_START = re.compile(r"\s*[A-Za-z_]\w*=")


def repr_fields(text: str) -> dict[str, Any] | None:
    """Fields of a pydantic/dataclass `repr()` body such as `role='user' content='hi' name=None` (Agno records
    its messages this way). Literal values are decoded; others (nested objects) are kept as their text."""
    if not _REPR_START.match(text) or "\n" in text:
        return None
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    starts: list[tuple[str, int, int]] = []  # (key, where the key starts, where its value starts)
    depth = 0
    for i, tok in enumerate(tokens[:-1]):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif (depth == 0 and tok.type == tokenize.NAME and tokens[i + 1].type == tokenize.OP
              and tokens[i + 1].string == "="):
            starts.append((tok.string, tok.start[1], tokens[i + 1].end[1]))
    if not starts or starts[0][1] != len(text) - len(text.lstrip()):
        return None
    fields: dict[str, Any] = {}
    for n, (key, _, value_at) in enumerate(starts):
        end = starts[n + 1][1] if n + 1 < len(starts) else len(text)
        raw = text[value_at:end].strip()
        try:
            fields[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            fields[key] = raw
    return fields
