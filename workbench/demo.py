"""Seeded generator of a realistic agent fleet, written as OTLP/JSON with GenAI attributes.

Two agents (`support-agent`, `coding-agent`), two versions each, four weeks of business-hours traffic, and ten
failure modes injected at known rates; the ground truth is returned and also written on each root span
(`workbench.demo.failure_mode`). The support agent uses the current GenAI semantic conventions, the coding
agent the deprecated ones (message events, `gen_ai.system`, prompt/completion tokens), so a loader meets both.

>>> truth = generate_fleet(Path("data/demo"), seed=7)          # doctest: +SKIP
>>> sum(t.failure_mode == "tool_loop" for t in truth)          # doctest: +SKIP

What a run *does* lives in `workbench.demo_content`; this module schedules runs and encodes them.
"""

from __future__ import annotations

import bisect
import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from workbench import demo_content as content
from workbench.demo_content import Call, Task

FAILURE_MODES: tuple[str, ...] = ("tool_loop", "wrong_tool", "malformed_tool_args", "ignored_tool_error",
                                  "policy_violation", "missed_escalation", "hallucinated_answer", "timeout",
                                  "provider_error", "cost_blowup")
_START = datetime(2026, 10, 19, tzinfo=UTC)
_WEEKS = 4
_V2_SHARE = (0.1, 0.3, 0.7, 0.9)
"""Share of v2 runs per week: v2 is rolled out in the second half of the period."""
_SUPPORT_SHARE = 0.55


@dataclass(frozen=True)
class DemoTruth:
    """Ground truth of one generated run, as the generator decided it."""

    trace_id: str
    """Lower-case 32-hex trace id, exactly as written in the file."""
    agent: str
    agent_version: str
    failure_mode: str | None
    """One of FAILURE_MODES, or None for a successful run."""
    outcome: str
    """Either "success" or "failure"."""
    week: int
    """0..3, counted from `start`; also the `-wN` of the file name."""
    n_spans: int


@dataclass(frozen=True)
class _Profile:
    """How one agent version behaves and is instrumented."""

    agent: str
    version: str
    model: str
    response_model: str
    """What the provider reports back: dated, so cost lookup must match by prefix."""
    provider: str
    current: bool
    """True: current GenAI conventions (messages as JSON attributes); False: deprecated (span events)."""
    system_prompt: str
    system_tokens: int
    """Instructions plus tool schemas, as the provider counts them."""
    call_prefix: str
    server: str
    llm_ms: int
    ms_per_token: float
    cache_p: float
    """Chance that a call reads the previous prompt from the provider's cache."""
    deadline_s: int
    hang_tools: frozenset[str]
    """Tools that can hang until the deadline in a timeout run."""
    rates: dict[str, float]
    """Failure mode -> share of this version's runs."""
    reasoning: tuple[int, int] = (0, 0)
    parallel_lookups: float = 0.0
    """Chance that the customer and the order are looked up in one LLM turn."""


_SUPPORT_V1 = _Profile(
    agent="support-agent", version="v1", model="gpt-4.1-mini", response_model="gpt-4.1-mini-2025-04-14",
    provider="openai", current=True, system_tokens=1150, call_prefix="call_", server="api.openai.com",
    system_prompt="You are the customer support assistant of ACME Shop. Be concise and kind. Look up the "
                  "customer and the order before answering. Refunds above $100 need human approval. If the "
                  "customer asks for a person, escalate with escalate_to_human. Never promise what the tools "
                  "did not confirm.",
    llm_ms=450, ms_per_token=9.0, cache_p=0.5, deadline_s=600, parallel_lookups=0.1,
    hang_tools=frozenset({"get_customer", "lookup_order", "refund_order", "search_kb", "update_address"}),
    rates={"tool_loop": .08, "wrong_tool": .03, "malformed_tool_args": .025, "ignored_tool_error": .03,
           "policy_violation": .025, "missed_escalation": .03, "hallucinated_answer": .04, "timeout": .015,
           "provider_error": .02, "cost_blowup": .015})
# v2: a bigger model (about 4x the cost per run) that rarely loops and looks things up in parallel
_SUPPORT_V2 = replace(
    _SUPPORT_V1, version="v2", model="gpt-4.1", response_model="gpt-4.1-2025-04-14", system_tokens=1450,
    llm_ms=700, ms_per_token=14.0, cache_p=0.7, parallel_lookups=0.5,
    rates={"tool_loop": .015, "wrong_tool": .025, "malformed_tool_args": .02, "ignored_tool_error": .025,
           "policy_violation": .02, "missed_escalation": .02, "hallucinated_answer": .03, "timeout": .015,
           "provider_error": .02, "cost_blowup": .02})
_CODING_V1 = _Profile(
    agent="coding-agent", version="v1", model="claude-sonnet-4-5",
    response_model="claude-sonnet-4-5-20250929", provider="anthropic", current=False, system_tokens=2900,
    call_prefix="toolu_", server="api.anthropic.com",
    system_prompt="You are a senior software engineer working in the user's repository. Reproduce before you "
                  "fix, make minimal changes, run the tests, and show the diff. Never push to protected "
                  "branches. Ask before running migrations or destructive commands.",
    llm_ms=900, ms_per_token=22.0, cache_p=0.5, deadline_s=1800,
    hang_tools=frozenset({"run_tests", "run_shell"}),
    rates={"tool_loop": .05, "wrong_tool": .03, "malformed_tool_args": .07, "ignored_tool_error": .035,
           "policy_violation": .02, "missed_escalation": .015, "hallucinated_answer": .04, "timeout": .02,
           "provider_error": .025, "cost_blowup": .015})
# v2: same model with a repository map in the prompt and extended thinking: fewer malformed edits, but longer
# contexts, more timeouts and more runaway costs
_CODING_V2 = replace(
    _CODING_V1, version="v2", system_tokens=5200, llm_ms=1100, cache_p=0.8, reasoning=(300, 1400),
    rates={"tool_loop": .04, "wrong_tool": .025, "malformed_tool_args": .02, "ignored_tool_error": .03,
           "policy_violation": .02, "missed_escalation": .015, "hallucinated_answer": .035, "timeout": .05,
           "provider_error": .03, "cost_blowup": .06})
_PROFILES = {(p.agent, p.version): p for p in (_SUPPORT_V1, _SUPPORT_V2, _CODING_V1, _CODING_V2)}
_TOOL_MS = {"get_customer": (40, 180), "lookup_order": (60, 400), "refund_order": (300, 1500),
            "update_address": (150, 600), "search_kb": (80, 350), "escalate_to_human": (100, 400),
            "send_email": (50, 250), "read_file": (2, 30), "write_file": (3, 40), "run_tests": (2500, 45000),
            "search_code": (40, 600), "run_shell": (400, 20000), "git_diff": (20, 200)}
_RETRIEVAL = {"search_kb": "support-kb", "search_code": "repo-index"}
_REVIEWERS = ["maria.k", "tom.b", "aylin.d", "j.okafor", "wei.z"]
_ENGINEERS = [f"dev:{n}" for n in ("alice", "bogdan", "chen", "dana", "emeka", "farah", "gus", "hiro")]
_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
_NS = 1_000_000  # one millisecond in nanoseconds

# Lines are assembled from pre-encoded JSON fragments instead of json.dumps over nested dicts: every LLM span
# repeats the whole conversation so far, and re-escaping that history per span made encoding ~3x slower than
# everything else together. Each message is escaped once (C `encode_basestring`, the function json.dumps uses
# with ensure_ascii=False); a span then only joins strings. The tests parse every line back.
_esc = json.encoder.encode_basestring  # type: ignore[attr-defined]
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _s(key: str, value: str) -> str:
    return f'{{"key":"{key}","value":{{"stringValue":{_esc(value)}}}}}'


def _i(key: str, value: int) -> str:
    # the OTLP/JSON mapping writes int64 as a decimal string
    return f'{{"key":"{key}","value":{{"intValue":"{value}"}}}}'


def _tok(text: str | None) -> int:
    return len(text) // 4 + 4 if text else 0


class _Stop(Exception):
    """Ends a run early: the agent gave up, a call hung until the deadline, or the provider failed."""


class _Trace:
    """Builds the spans of one run as OTLP/JSON text; the scripts in `workbench.demo_content` drive it."""

    def __init__(self, rng: random.Random, prof: _Profile, t0: int, mode: str | None, task: Task, user: str):
        self.rng, self.p, self.t0, self.mode, self.task, self.user_id = rng, prof, t0, mode, task, user
        self.trace_id = f"{rng.getrandbits(128):032x}"
        self.root_id = self._sid()
        self.now = t0 + int((2 + 18 * rng.random()) * _NS)
        self.deadline = t0 + prof.deadline_s * 1000 * _NS
        self.spans: list[str] = []
        self.pending: list[tuple[Call, str, str]] = []
        # current form: escaped message JSON; deprecated form: event JSON after its timestamp
        self.history: list[str] = []
        if not prof.current:
            self.history.append(_event_tail("gen_ai.system.message", [_s("content", prof.system_prompt)]))
        self.ctx = prof.system_tokens  # tokens of the conversation so far, as the provider would count them
        self.prev_in = self.n_llm = 0
        self.fail_at = rng.randint(1, 4) if mode == "provider_error" else 0
        self.final: str | None = None
        self.error: str | None = None
        self.parallel_lookups = prof.parallel_lookups
        self._message("user", task.text)

    def _sid(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def _ms(self, lo: float, hi: float) -> int:
        """A duration between lo and hi milliseconds, in ns (random() is much cheaper than randint)."""
        return int((lo + (hi - lo) * self.rng.random()) * _NS)

    def _span(self, name: str, kind: int, start: int, end: int, attrs: list[str], events: str = "",
              error: str | None = None) -> None:
        status = f'{{"code":2,"message":{_esc(error)}}}' if error else "{}"
        events = f',"events":[{events}]' if events else ""
        self.spans.append(
            f'{{"traceId":"{self.trace_id}","spanId":"{self._sid()}","parentSpanId":"{self.root_id}",'
            f'"name":{_esc(name)},"kind":{kind},"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}",'
            f'"attributes":[{",".join(attrs)}]{events},"status":{status}}}')
        self.now = end + self._ms(1, 25)

    # -- conversation ------------------------------------------------------------------------------------
    def _message(self, role: str, text: str | None, call_id: str = "", extra_tokens: int = 0,
                 calls_json: str = "") -> None:
        """Append a user or tool message (and, in the deprecated form, an assistant one) to the history."""
        if self.p.current:
            if role == "tool":
                msg = (f'{{"role":"tool","parts":[{{"type":"tool_call_response","id":"{call_id}",'
                       f'"response":{_esc(text)}}}]}}')
            else:
                msg = _dumps({"role": role, "parts": _parts(text, None)})
            self.history.append(_esc(msg)[1:-1])
        elif role == "tool":
            attrs = [_s("content", text or ""), _s("id", call_id)]
            self.history.append(_event_tail("gen_ai.tool.message", attrs))
        else:
            attrs = [_s("content", text or "")]
            if calls_json:
                attrs.append(calls_json)
            self.history.append(_event_tail(f"gen_ai.{role}.message", attrs))
        self.ctx += _tok(text) + extra_tokens

    def _llm(self, text: str | None, calls: list[tuple[Call, str, str]]) -> None:
        p, rng = self.p, self.rng
        self.n_llm += 1
        if self.fail_at and (self.n_llm >= self.fail_at or not calls):
            self._provider_error()
        if self.mode == "timeout" and not calls and self.final is None:
            self._hang(f"chat {p.model}", 3, [_LLM_ATTRS[p.agent, p.version]])
        reasoning = int(p.reasoning[0] + (p.reasoning[1] - p.reasoning[0]) * rng.random())
        out = _tok(text) + sum(len(a) // 3 + 12 for _, _, a in calls) + reasoning
        inp, cache = self.ctx, 0
        if self.mode != "cost_blowup" and self.prev_in >= 1024 and rng.random() < p.cache_p:
            cache = self.prev_in - self.prev_in % 128  # providers cache the shared prefix in 128-token blocks
        self.prev_in = inp
        start = self.now
        end = start + int((p.llm_ms + out * p.ms_per_token + inp / 40) * (0.7 + rng.random() * 0.7) * _NS)
        finish = "tool_calls" if calls else "stop"
        attrs = [_LLM_ATTRS[p.agent, p.version],
                 _s("gen_ai.response.id", f"{'chatcmpl' if p.current else 'msg'}-{rng.getrandbits(80):020x}"),
                 _FINISH[finish],
                 _i("gen_ai.usage.input_tokens" if p.current else "gen_ai.usage.prompt_tokens", inp),
                 _i("gen_ai.usage.output_tokens" if p.current else "gen_ai.usage.completion_tokens", out)]
        if cache:
            attrs.append(_i("gen_ai.usage.cache_read.input_tokens", cache))
        if reasoning:
            attrs.append(_i("gen_ai.usage.reasoning.output_tokens", reasoning))
        events = calls_json = ""
        if p.current:
            said = _dumps({"role": "assistant", "parts": _parts(text, calls)})
            history = ",".join(self.history)
            attrs += [_SYSTEM_ATTR[p.agent],
                      f'{{"key":"gen_ai.input.messages","value":{{"stringValue":"[{history}]"}}}}',
                      _s("gen_ai.output.messages", f'[{said[:-1]},"finish_reason":"{finish}"}}]')]
        else:
            head = f'{{"timeUnixNano":"{start}'
            choice = [_i("index", 0), _s("finish_reason", finish), _s("content", text or "")]
            if calls:
                calls_json = _s("tool_calls", _tool_calls_json(calls))
                choice.append(calls_json)
            events = (head + ("," + head).join(self.history) + f',{{"timeUnixNano":"{end}'
                      + _event_tail("gen_ai.choice", choice))
        self._span(f"chat {p.model}", 3, start, end, attrs, events)
        if p.current:
            self.history.append(_esc(said)[1:-1])
            self.ctx += out - reasoning
        else:
            self._message("assistant", text, extra_tokens=out - reasoning - _tok(text), calls_json=calls_json)

    def _provider_error(self) -> None:
        p, rng = self.p, self.rng
        if p.provider == "openai" or rng.random() < 0.2:
            etype, code = "rate_limit_exceeded", 429
            msg = f"Rate limit reached for {p.model} on tokens per min (TPM): Limit 200000, Used 199310."
        else:
            etype, code, msg = "overloaded_error", 529, "Overloaded"
        for _ in range(rng.choice([1, 2, 2])):  # the SDK retries once with backoff before giving up
            attrs = [_LLM_ATTRS[p.agent, p.version], _s("error.type", etype),
                     _i("http.response.status_code", code)]
            self._span(f"chat {p.model}", 3, self.now, self.now + self._ms(150, 900), attrs, error=msg)
            self.now += self._ms(1000, 8000)
        self.error = f"provider error: {etype} ({code})"
        raise _Stop

    def _hang(self, name: str, kind: int, attrs: list[str]) -> None:
        self.error = "deadline exceeded"
        attrs.append(_s("error.type", "TimeoutError"))
        end = max(self.deadline, self.now + 1000 * _NS)
        self._span(name, kind, self.now, end, attrs, error="deadline exceeded")
        raise _Stop

    def _pop(self, call: Call) -> tuple[Call, str, str]:
        # identity, not equality: a tool loop announces equal calls several times
        for i, entry in enumerate(self.pending):
            if entry[0] is call:
                return self.pending.pop(i)
        raise ValueError(f"{call.tool} was run without being announced by think()")

    # -- the vocabulary the scripts use -------------------------------------------------------------------
    def think(self, text: str | None, *calls: Call) -> None:
        """One LLM call whose answer is `text` and/or the given tool calls (executed later with `run`)."""
        planned = [(c, f"{self.p.call_prefix}{self.rng.getrandbits(96):024x}",
                    c.args if isinstance(c.args, str) else _dumps(c.args)) for c in calls]
        self._llm(text, planned)
        self.pending.extend(planned)

    def run(self, call: Call) -> None:
        """Execute a call announced by `think`: a tool (or retrieval) span, then the tool message."""
        _, cid, args = self._pop(call)
        source = _RETRIEVAL.get(call.tool)
        attrs = [_s("gen_ai.operation.name", "retrieval" if source else "execute_tool"),
                 _s("gen_ai.tool.name", call.tool), _s("gen_ai.tool.call.id", cid), _TOOL_TYPE,
                 _s("gen_ai.tool.call.arguments", args)]
        if source:
            attrs.append(_s("gen_ai.data_source.id", source))
        name, kind = (f"retrieval {source}", 3) if source else (f"execute_tool {call.tool}", 1)
        if self.mode == "timeout" and call.tool in self.p.hang_tools and self.rng.random() < 0.35:
            self._hang(name, kind, attrs)
        lo, hi = _TOOL_MS[call.tool]
        if call.error:
            attrs.append(_s("error.type", call.error.split(":", 1)[0]))
        else:
            attrs.append(_s("gen_ai.tool.call.result", call.result))
        self._span(name, kind, self.now, self.now + self._ms(lo, hi), attrs, error=call.error)
        self._message("tool", call.error or call.result, call_id=cid, extra_tokens=call.tokens)

    def step(self, text: str | None, *calls: Call) -> None:
        """`think` then `run` every call: the usual agent turn."""
        self.think(text, *calls)
        for c in calls:
            self.run(c)

    def reply(self, call: Call, text: str) -> None:
        """Answer a pending call without running it (e.g. the reviewer rejected it)."""
        _, cid, _ = self._pop(call)
        self._message("tool", text, call_id=cid)

    def user(self, text: str) -> None:
        """A further user message in the same conversation."""
        self._message("user", text)

    def guard(self, name: str, decision: str, reason: str) -> None:
        """A guardrail check (`apply_guardrail NAME`) with its allow/block decision."""
        self._span(f"apply_guardrail {name}", 1, self.now, self.now + self._ms(2, 30),
                   [_s("gen_ai.operation.name", "apply_guardrail"), _s("workbench.guardrail.name", name),
                    _s("workbench.guardrail.decision", decision), _s("workbench.guardrail.reason", reason)])

    def human(self, kind: str, decision: str, summary: str) -> None:
        """A person approving or rejecting an action; the run waits for them."""
        self._span(f"human_approval {kind}", 1, self.now, self.now + self._ms(20_000, 360_000),
                   [_s("gen_ai.operation.name", "human_approval"), _s("workbench.human.decision", decision),
                    _s("workbench.human.reviewer", self.rng.choice(_REVIEWERS)),
                    _s("workbench.human.request", summary)])

    def answer(self, text: str) -> None:
        """The final LLM call; the support agent's harness then runs the PII filter on it."""
        self._llm(text, [])
        self.final = text
        if self.p.agent == "support-agent":
            blocked = self.mode is None and self.rng.random() < 0.03
            self.guard("pii_filter", "block" if blocked else "allow",
                       "e-mail address in answer" if blocked else "no personal data found")
            if blocked:
                self.final = _EMAIL_RE.sub("[redacted e-mail]", text)
                self._llm(self.final, [])

    def give_up(self, text: str) -> _Stop:
        """Final answer, then stop the script (raise the returned exception)."""
        self.answer(text)
        return _Stop()

    # -- the whole trace ------------------------------------------------------------------------------------
    def line(self, conversation_id: str) -> str:
        """The trace as one ExportTraceServiceRequest; the root comes last, as exporters emit spans on end."""
        p = self.p
        end = (max(self.deadline, self.now) if self.error == "deadline exceeded" else self.now) + 3 * _NS
        attrs = [_s("gen_ai.operation.name", "invoke_agent"), _s("gen_ai.agent.name", p.agent),
                 _s("gen_ai.agent.version", p.version), _s("gen_ai.conversation.id", conversation_id),
                 _s("user.id", self.user_id), _s("workbench.task.id", self.task.id),
                 _s("gen_ai.request.model", p.model), _user_input_attr(self.task.text)]
        if self.final is not None:
            attrs.append(_s("gen_ai.output.messages", _dumps(
                [{"role": "assistant", "parts": _parts(self.final, None), "finish_reason": "stop"}])))
        attrs.append(_s("workbench.demo.failure_mode", self.mode or "none"))
        label, score = ("fail", "0.0") if self.mode else ("pass", "1.0")
        value = f'{{"key":"gen_ai.evaluation.score.value","value":{{"doubleValue":{score}}}}}'
        evaluation = ",".join([_s("gen_ai.evaluation.name", "task_success"),
                               _s("gen_ai.evaluation.score.label", label), value])
        status = f'{{"code":2,"message":{_esc(self.error)}}}' if self.error else '{"code":1}'
        event = f'{{"timeUnixNano":"{end}","name":"gen_ai.evaluation.result","attributes":[{evaluation}]}}'
        root = (f'{{"traceId":"{self.trace_id}","spanId":"{self.root_id}","parentSpanId":"",'
                f'"name":"invoke_agent {p.agent}","kind":1,"startTimeUnixNano":"{self.t0}",'
                f'"endTimeUnixNano":"{end}","attributes":[{",".join(attrs)}],"events":[{event}],'
                f'"status":{status}}}')
        return f'{_LINE_HEAD[p.agent, p.version]}{",".join([*self.spans, root])}]}}]}}]}}'


@cache
def _user_input_attr(text: str) -> str:
    return _s("gen_ai.input.messages", _dumps([{"role": "user", "parts": _parts(text, None)}]))


def _parts(text: str | None, calls: list[tuple[Call, str, str]] | None) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "content": text}] if text else []
    for c, cid, _ in calls or ():
        parts.append({"type": "tool_call", "id": cid, "name": c.tool, "arguments": c.args})
    return parts


def _event_tail(name: str, attrs: list[str]) -> str:
    """An event's JSON after its timestamp, so one message serves every later LLM span."""
    return f'","name":"{name}","attributes":[{",".join(attrs)}]}}'


def _tool_calls_json(calls: list[tuple[Call, str, str]]) -> str:
    # the deprecated events carry OpenAI-style tool calls whose arguments are themselves a JSON string
    return _dumps([{"id": cid, "type": "function", "function": {"name": c.tool, "arguments": a}}
                   for c, cid, a in calls])


_TOOL_TYPE = _s("gen_ai.tool.type", "function")
_FINISH = {f: '{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"'
              + f + '"}]}}}' for f in ("tool_calls", "stop")}
_SYSTEM_ATTR = {agent: _s("gen_ai.system_instructions", _dumps([{"type": "text", "content": prompt}]))
                for agent, prompt in (("support-agent", _SUPPORT_V1.system_prompt),
                                      ("coding-agent", _CODING_V1.system_prompt))}
_LLM_ATTRS = {key: ",".join([_s("gen_ai.operation.name", "chat"),
                             _s("gen_ai.provider.name" if p.current else "gen_ai.system", p.provider),
                             _s("gen_ai.request.model", p.model),
                             _s("gen_ai.response.model", p.response_model),
                             '{"key":"gen_ai.request.temperature","value":{"doubleValue":0.2}}',
                             _i("gen_ai.request.max_tokens", 4096), _s("server.address", p.server)])
              for key, p in _PROFILES.items()}
_RESOURCE = {key: ",".join([_s("service.name", key[0]), _s("service.version", key[1]),
                            _s("deployment.environment.name", "production"),
                            _s("telemetry.sdk.language", "python"), _s("telemetry.sdk.name", "opentelemetry"),
                            _s("telemetry.sdk.version", "1.38.0")])
             for key in _PROFILES}
_LINE_HEAD = {key: f'{{"resourceSpans":[{{"resource":{{"attributes":[{attrs}]}},"scopeSpans":[{{"scope":'
                   f'{{"name":"workbench.demo","version":"0.1.0"}},"spans":['
              for key, attrs in _RESOURCE.items()}


def _week_clock(start: datetime) -> tuple[list[float], float]:
    """Cumulative traffic weight per hour of a week that begins at `start`: busy on weekday office hours."""
    cum, total = [], 0.0
    for h in range(7 * 24):
        t = start + timedelta(hours=h)
        weekday, hour = t.weekday() < 5, t.hour
        if 8 <= hour < 18:
            w = 10.0 if weekday else 1.5
        elif hour in (7, 18, 19, 20):
            w = 3.0 if weekday else 0.8
        else:
            w = 0.4 if weekday else 0.2
        total += w
        cum.append(total)
    return cum, total


def _offset_ns(cum: list[float], total: float, g: float) -> int:
    """Map a fraction of a week's traffic to nanoseconds after the week's start (inverse of the clock)."""
    target = g * total
    h = min(bisect.bisect_right(cum, target), len(cum) - 1)
    below = cum[h - 1] if h else 0.0
    return int((h + (target - below) / (cum[h] - below)) * 3600 * 1e9)


class _Deck:
    """Failure modes dealt from a shuffled deck of 200 cards per agent version.

    Independent draws let a mode's count wander (at 600 runs a 2% mode lands anywhere from 5 to 20); a deck
    holds every rate exactly over each 200 runs of a version and still looks random within them.
    """

    SIZE = 200

    def __init__(self, rng: random.Random, rates: dict[str, float]):
        self.rng = rng
        self.cards: list[str | None] = []
        for mode, rate in rates.items():
            self.cards += [mode] * round(rate * self.SIZE)
        self.cards += [None] * (self.SIZE - len(self.cards))
        self.left: list[str | None] = []

    def draw(self) -> str | None:
        if not self.left:
            self.left = self.cards[:]
            self.rng.shuffle(self.left)
        return self.left.pop()


def _iter_runs(seed: int, n_spans: int | None, n_runs: int | None,
               start: datetime) -> Iterator[tuple[str, DemoTruth]]:
    if n_spans is None and n_runs is None:
        raise ValueError("give n_spans or n_runs, or the stream never ends")
    rng = random.Random(seed)
    cum, total = _week_clock(start)
    start_ns = int(start.timestamp()) * 1_000_000_000
    week_ns = 7 * 24 * 3600 * 1_000_000_000
    scripts = {"support-agent": (content.support_tasks(), content.support_run),
               "coding-agent": (content.coding_tasks(), content.coding_run)}
    by_mode = {(a, m): [t for t in tasks if m in t.modes] for a, (tasks, _) in scripts.items()
               for m in FAILURE_MODES}
    decks = {key: _Deck(rng, prof.rates) for key, prof in _PROFILES.items()}
    produced = i = 0
    while (n_runs is None or i < n_runs) and (n_spans is None or produced < n_spans):
        # time advances with the share of the work done, so lines come out in (near) time order
        frac = i / n_runs if n_runs else produced / n_spans  # type: ignore[operator]
        week = min(int(frac * _WEEKS), _WEEKS - 1)
        t0 = start_ns + week * week_ns + _offset_ns(cum, total, frac * _WEEKS - week)
        t0 += rng.randint(0, 59_999) * _NS
        agent = "support-agent" if rng.random() < _SUPPORT_SHARE else "coding-agent"
        version = "v2" if rng.random() < _V2_SHARE[week] else "v1"
        mode = decks[agent, version].draw()
        tasks, script = scripts[agent]
        task = rng.choice(by_mode[agent, mode] if mode else tasks)
        tr = _Trace(rng, _PROFILES[agent, version], t0, mode, task,
                    task.facts.get("user") or rng.choice(_ENGINEERS))
        try:
            script(tr, task, mode, rng)
        except _Stop:
            pass
        line = tr.line(f"conv_{rng.getrandbits(64):016x}")
        n = len(tr.spans) + 1
        produced += n
        i += 1
        yield line, DemoTruth(tr.trace_id, agent, version, mode, "failure" if mode else "success", week, n)


def iter_trace_lines(seed: int, *, n_spans: int | None = None, n_runs: int | None = None,
                     start: datetime = _START) -> Iterator[str]:
    """Stream the fleet as OTLP/JSON lines: one `ExportTraceServiceRequest` holding one whole trace per line.

    Stops once `n_spans` spans or `n_runs` runs have been produced (whichever comes first), so the span
    total is at least `n_spans` and less than `n_spans` plus one trace. Timestamps spread over four weeks from
    `start` in proportion to the work done. Same seed, same lines. About 2.7 kB per span on average.

    Args:
        seed: seed of the only random source (`random.Random(seed)`).
        n_spans: stop after this many spans (e.g. 1_000_000 for a benchmark file).
        n_runs: stop after this many runs.
        start: beginning of week 0 (timezone-aware).

    Example:
        >>> with open("bench.jsonl", "w", encoding="utf-8") as out:                 # doctest: +SKIP
        ...     out.writelines(line + "\\n" for line in iter_trace_lines(1, n_spans=1_000_000))
    """
    for line, _ in _iter_runs(seed, n_spans, n_runs, start):
        yield line


def generate_fleet(out_dir: Path, *, seed: int = 7, n_runs: int = 2400,
                   start: datetime = _START) -> list[DemoTruth]:
    """Write the fleet as OTLP JSONL files into `out_dir` and return the ground truth, one entry per run.

    One file per agent per week (`support-agent-w0.jsonl` ... `coding-agent-w3.jsonl`), lines in time order;
    existing files of those names are overwritten. The default size gives about 2,400 runs and 38,000 spans
    (~100 MB).

    Args:
        out_dir: folder to write into (created if missing).
        seed: same seed, byte-identical files; the only source of randomness.
        n_runs: number of runs (traces).
        start: beginning of week 0 (timezone-aware).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    truth: list[DemoTruth] = []
    try:
        for line, t in _iter_runs(seed, None, n_runs, start):
            name = f"{t.agent}-w{t.week}.jsonl"
            if name not in files:
                files[name] = (out_dir / name).open("w", encoding="utf-8", newline="\n")
            files[name].write(line + "\n")
            truth.append(t)
    finally:
        for fh in files.values():
            fh.close()
    return truth
