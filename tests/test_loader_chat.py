"""Message shapes the LangSmith, Langfuse and AgentOps loaders share (real-file checks are in their tests)."""

from __future__ import annotations

from workbench.loaders.chat import input_messages, output_messages, repr_fields
from workbench.loaders.scores import outcome_of_scores


def _brief(messages) -> list[tuple]:
    return [(m.role, m.content, [(c.name, c.arguments) for c in m.tool_calls], m.tool_call_id) for m in messages]


def test_pydantic_repr_fields_keep_nested_objects_whole():
    text = ("role='assistant' content=None tool_calls=[{'id': 'c1', 'function': {'arguments': '{\"q\":\"x\"}', "
            "'name': 'search'}}] metrics=Metrics(input_tokens=3, time=None) created_at=17")
    fields = repr_fields(text)
    assert fields["role"] == "assistant" and fields["content"] is None and fields["created_at"] == 17
    assert fields["metrics"] == "Metrics(input_tokens=3, time=None)"
    assert _brief(input_messages({"messages": [text]})) == [("assistant", None, [("search", {"q": "x"})], None)]
    assert repr_fields("plain words = not a repr") is None


def test_request_and_response_shapes():
    # LangChain ("user", text) tuples and {type: human} dicts; tool definitions recorded as messages are dropped
    assert _brief(input_messages({"messages": [["user", "hi"], {"type": "ai", "content": "yo"},
                                               {"role": "tool", "content": {"type": "function", "function": {
                                                   "name": "f", "parameters": {}}}}]})) == [
        ("user", "hi", [], None), ("assistant", "yo", [], None)]
    # OTel GenAI parts: every tool_call_response is its own tool message
    parts = [{"role": "user", "parts": [{"type": "tool_call_response", "id": "a", "result": "1"},
                                        {"type": "tool_call_response", "id": ["run", "b"], "response": {"x": 2}}]}]
    assert _brief(input_messages(parts)) == [("tool", "1", [], "a"), ("tool", '{"x":2}', [], "b")]
    # OpenAI Responses items in and out
    items = [{"type": "function_call", "call_id": "c", "name": "w", "arguments": '{"city":"T"}'},
             {"type": "function_call_output", "call_id": "c", "output": "sunny"}]
    assert _brief(input_messages(items)) == [("assistant", None, [("w", {"city": "T"})], None),
                                             ("tool", "sunny", [], "c")]
    response = {"object": "response", "output": [{"type": "reasoning"}, {"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "done"}]}]}
    assert _brief(output_messages(response)) == [("assistant", "done", [], None)]
    # Gemini: system instruction from config, model -> assistant, function_response as JSON text
    gemini = {"config": {"system_instruction": "be brief"}, "contents": [
        {"role": "model", "parts": [{"function_call": {"name": "f", "args": {}}}]},
        {"role": "user", "parts": [{"function_response": {"name": "f", "response": {"ok": True}}}]}]}
    assert _brief(input_messages(gemini)) == [("system", "be brief", [], None), ("assistant", None, [("f", {})], None),
                                              ("user", '{"ok":true}', [], None)]
    # consecutive Vercel tool-call entries are one assistant turn
    vercel = [{"toolCallId": "1", "toolName": "a", "input": "{}"}, {"toolCallId": "2", "toolName": "b", "input": "{}"}]
    assert _brief(output_messages(vercel)) == [("assistant", "", [("a", {}), ("b", {})], None)]
    # unknown shapes keep their text (or nothing, when asked for strictly)
    assert _brief(input_messages({"args": ["x"]})) == [("user", '{"args":["x"]}', [], None)]
    assert input_messages({"args": ["x"]}, fallback=False) == []


def test_only_success_like_scores_set_the_outcome():
    assert outcome_of_scores({"toxicity": 0.9, "hallucination": 1}) == ("unknown", None)
    assert outcome_of_scores({"Correctness": 0}) == ("failure", 0.0)
    assert outcome_of_scores({"task-success": True}) == ("success", 1.0)
