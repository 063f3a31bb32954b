"""The demo fleet generator: size, OTLP shape, ground truth, determinism, drift and speed."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from workbench.demo import FAILURE_MODES, DemoTruth, generate_fleet, iter_trace_lines
from workbench.pricing import estimate

START = datetime(2026, 10, 19, tzinfo=UTC)
HEX32, HEX16 = re.compile(r"[0-9a-f]{32}"), re.compile(r"[0-9a-f]{16}")
MESSAGE_EVENTS = {"gen_ai.system.message", "gen_ai.user.message", "gen_ai.assistant.message",
                  "gen_ai.tool.message", "gen_ai.choice"}


@dataclass
class Span:
    name: str
    kind: int
    span_id: str
    parent: str
    start: int
    end: int
    status: dict[str, Any]
    attrs: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    n_messages: int = 0
    """Messages the LLM saw (input messages or message events); 0 for other spans."""
    call_ids: list[str] = field(default_factory=list)
    """Tool call ids the LLM asked for."""

    @property
    def error(self) -> bool:
        return self.status.get("code") == 2


@dataclass
class Trace:
    trace_id: str
    file: str
    resource: dict[str, Any]
    root: Span
    children: list[Span]
    """Every span but the root, in start-time order."""

    def of(self, op: str) -> list[Span]:
        return [s for s in self.children if s.attrs.get("gen_ai.operation.name") == op]

    def tool_calls(self) -> list[tuple[str, str]]:
        return [(s.attrs["gen_ai.tool.name"], s.attrs["gen_ai.tool.call.arguments"])
                for s in self.children if "gen_ai.tool.name" in s.attrs]

    def cost(self) -> float:
        total = 0.0
        for s in self.of("chat"):
            a = s.attrs
            tokens_in = a.get("gen_ai.usage.input_tokens", a.get("gen_ai.usage.prompt_tokens"))
            tokens_out = a.get("gen_ai.usage.output_tokens", a.get("gen_ai.usage.completion_tokens"))
            if tokens_in is not None:
                total += estimate(a["gen_ai.response.model"], tokens_in, tokens_out,
                                  a.get("gen_ai.usage.cache_read.input_tokens")) or 0.0
        return total


def _value(v: dict[str, Any]) -> Any:
    """Unwrap an OTLP AnyValue, asserting it follows the spec's JSON mapping."""
    assert len(v) == 1, v
    ((kind, x),) = v.items()
    if kind == "stringValue":
        assert isinstance(x, str)
        return x
    if kind == "intValue":
        assert isinstance(x, str) and re.fullmatch(r"-?\d+", x), v  # int64 travels as a decimal string
        return int(x)
    if kind == "doubleValue":
        assert isinstance(x, float), v
        return x
    if kind == "boolValue":
        assert isinstance(x, bool), v
        return x
    assert kind == "arrayValue", v
    return [_value(e) for e in x["values"]]


def _attrs(items: list[dict[str, Any]]) -> dict[str, Any]:
    out = {a["key"]: _value(a["value"]) for a in items}
    assert len(out) == len(items), "duplicate attribute keys"
    return out


def _span(raw: dict[str, Any], trace_id: str) -> Span:
    assert raw["traceId"] == trace_id and HEX16.fullmatch(raw["spanId"])
    assert raw["startTimeUnixNano"].isdigit() and raw["endTimeUnixNano"].isdigit()
    assert type(raw["kind"]) is int and raw["kind"] in (1, 3)
    status = raw["status"]
    assert status.get("code", 0) in (0, 1, 2) and (status.get("code") != 2 or status["message"])
    span = Span(raw["name"], raw["kind"], raw["spanId"], raw.get("parentSpanId", ""),
                int(raw["startTimeUnixNano"]), int(raw["endTimeUnixNano"]), status, _attrs(raw["attributes"]))
    assert span.end >= span.start
    for ev in raw.get("events", []):
        assert ev["timeUnixNano"].isdigit()
        span.events.append((ev["name"], _attrs(ev["attributes"])))
    a = span.attrs
    if a.get("gen_ai.operation.name") == "chat" and not span.error:
        if "gen_ai.input.messages" in a:  # current conventions: JSON strings of {role, parts}
            messages = json.loads(a.pop("gen_ai.input.messages"))
            assert json.loads(a.pop("gen_ai.system_instructions"))[0]["type"] == "text"
            (said,) = json.loads(a.pop("gen_ai.output.messages"))
            assert said["role"] == "assistant" and said["finish_reason"] in ("tool_calls", "stop")
            for m in [*messages, said]:
                assert m["role"] in ("user", "assistant", "tool") and m["parts"]
            span.n_messages = len(messages)
            span.call_ids = [p["id"] for p in said["parts"] if p["type"] == "tool_call"]
        else:  # deprecated conventions: one event per message, the answer as gen_ai.choice
            assert {n for n, _ in span.events} <= MESSAGE_EVENTS and span.events[-1][0] == "gen_ai.choice"
            assert all("content" in e for _, e in span.events)
            span.n_messages = len(span.events) - 1
            calls = json.loads(span.events[-1][1].get("tool_calls", "[]"))
            assert all(c["type"] == "function" and isinstance(c["function"]["arguments"], str) for c in calls)
            span.call_ids = [c["id"] for c in calls]
            span.events = span.events[-1:]  # the history was checked; keep the fixture's memory small
    return span


def _parse(path: Path) -> list[Trace]:
    traces = []
    for line in path.read_text(encoding="utf-8").splitlines():
        (rs,) = json.loads(line)["resourceSpans"]
        (ss,) = rs["scopeSpans"]
        assert ss["scope"]["name"] == "workbench.demo" and ss["scope"]["version"]
        trace_id = ss["spans"][0]["traceId"]
        assert HEX32.fullmatch(trace_id)
        spans = [_span(s, trace_id) for s in ss["spans"]]
        (root,) = [s for s in spans if not s.parent]
        children = sorted((s for s in spans if s.parent), key=lambda s: s.start)
        assert all(s.parent == root.span_id for s in children)
        assert len({s.span_id for s in spans}) == len(spans)
        traces.append(Trace(trace_id, path.name, _attrs(rs["resource"]["attributes"]), root, children))
    return traces


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[DemoTruth]]:
    out = tmp_path_factory.mktemp("fleet")
    return out, generate_fleet(out)


@pytest.fixture(scope="module")
def truth(fleet_dir: tuple[Path, list[DemoTruth]]) -> list[DemoTruth]:
    return fleet_dir[1]


@pytest.fixture(scope="module")
def traces(fleet_dir: tuple[Path, list[DemoTruth]]) -> dict[str, Trace]:
    return {t.trace_id: t for path in sorted(fleet_dir[0].glob("*.jsonl")) for t in _parse(path)}


def _by_mode(truth: list[DemoTruth], traces: dict[str, Trace], mode: str | None) -> list[Trace]:
    return [traces[t.trace_id] for t in truth if t.failure_mode == mode]


# -- size and coverage ------------------------------------------------------------------------------------
def test_default_fleet_is_big_enough(truth: list[DemoTruth], traces: dict[str, Trace]) -> None:
    assert len(truth) == len(traces) >= 2000
    assert sum(t.n_spans for t in truth) >= 30_000
    for t in truth:
        assert len(traces[t.trace_id].children) + 1 == t.n_spans


def test_every_failure_mode_is_present(truth: list[DemoTruth]) -> None:
    counts = Counter(t.failure_mode for t in truth)
    for mode in FAILURE_MODES:
        assert counts[mode] >= 20, (mode, counts[mode])
    assert 0.25 <= 1 - counts[None] / len(truth) <= 0.35
    assert all((t.outcome == "success") == (t.failure_mode is None) for t in truth)


def test_agents_versions_and_weeks(fleet_dir: tuple[Path, list[DemoTruth]], traces: dict[str, Trace]) -> None:
    out, truth = fleet_dir
    cells = Counter((t.agent, t.agent_version, t.week) for t in truth)
    assert len(cells) == 2 * 2 * 4
    assert sorted(p.name for p in out.glob("*.jsonl")) == sorted(
        f"{a}-w{w}.jsonl" for a in ("support-agent", "coding-agent") for w in range(4))
    for t in truth:
        tr = traces[t.trace_id]
        assert tr.file == f"{t.agent}-w{t.week}.jsonl"
        started = datetime.fromtimestamp(tr.root.start / 1e9, UTC)
        assert START + timedelta(weeks=t.week) <= started < START + timedelta(weeks=t.week + 1)
    # v2 is rolled out over the period
    share = [sum(t.agent_version == "v2" for t in truth if t.week == w) / sum(t.week == w for t in truth)
             for w in range(4)]
    assert share[0] < 0.25 and share[3] > 0.75


def test_business_hours(traces: dict[str, Trace]) -> None:
    starts = [datetime.fromtimestamp(t.root.start / 1e9, UTC) for t in traces.values()]
    office = sum(s.weekday() < 5 and 7 <= s.hour < 19 for s in starts)
    assert office / len(starts) > 0.75
    assert any(s.weekday() >= 5 for s in starts)  # a little weekend traffic too


# -- the OTLP contract ------------------------------------------------------------------------------------
def test_root_span_carries_the_run(truth: list[DemoTruth], traces: dict[str, Trace]) -> None:
    tasks: dict[str, set[str]] = {}
    for t in truth:
        tr = traces[t.trace_id]
        a, res = tr.root.attrs, tr.resource
        assert tr.root.name == f"invoke_agent {t.agent}" and a["gen_ai.operation.name"] == "invoke_agent"
        assert a["gen_ai.agent.name"] == res["service.name"] == t.agent
        assert a["gen_ai.agent.version"] == res["service.version"] == t.agent_version
        assert res["deployment.environment.name"] == "production"
        assert a["workbench.demo.failure_mode"] == (t.failure_mode or "none")
        assert a["gen_ai.conversation.id"] and a["user.id"]
        assert json.loads(a["gen_ai.input.messages"])[0]["role"] == "user"
        ((name, ev),) = tr.root.events
        assert name == "gen_ai.evaluation.result" and ev["gen_ai.evaluation.name"] == "task_success"
        assert (ev["gen_ai.evaluation.score.label"], ev["gen_ai.evaluation.score.value"]) == (
            ("pass", 1.0) if t.outcome == "success" else ("fail", 0.0))
        assert tr.root.start <= min(s.start for s in tr.children)
        assert tr.root.end >= max(s.end for s in tr.children)
        tasks.setdefault(a["workbench.task.id"], set()).add(t.agent_version)
    # tasks repeat, and most of them are seen in both versions
    assert 100 <= len(tasks) <= 120
    assert sum(len(v) == 2 for v in tasks.values()) > 0.8 * len(tasks)


def test_step_kinds_and_names(traces: dict[str, Trace]) -> None:
    ops: Counter[str] = Counter()
    for tr in traces.values():
        for s in tr.children:
            op = s.attrs["gen_ai.operation.name"]
            ops[op] += 1
            if op == "chat":
                assert s.name == f"chat {s.attrs['gen_ai.request.model']}" and s.kind == 3
                assert s.attrs["gen_ai.response.model"].startswith(s.attrs["gen_ai.request.model"])
            elif op == "execute_tool":
                assert s.name == f"execute_tool {s.attrs['gen_ai.tool.name']}"
                assert s.attrs["gen_ai.tool.type"] == "function" and s.attrs["gen_ai.tool.call.id"]
                assert ("gen_ai.tool.call.result" in s.attrs) != s.error
            elif op == "retrieval":
                assert s.attrs["gen_ai.tool.name"] in ("search_kb", "search_code")
                assert s.name == f"retrieval {s.attrs['gen_ai.data_source.id']}"
            elif op == "apply_guardrail":
                assert s.name.startswith("apply_guardrail ")
                assert s.attrs["workbench.guardrail.decision"] in ("allow", "block")
            else:
                assert op == "human_approval" and s.name.startswith("human_approval ")
                assert s.attrs["workbench.human.decision"] in ("approved", "rejected")
                assert s.attrs["workbench.human.reviewer"]
    assert set(ops) == {"chat", "execute_tool", "retrieval", "apply_guardrail", "human_approval"}


def test_two_generations_of_semantic_conventions(traces: dict[str, Trace]) -> None:
    for tr in traces.values():
        current = tr.resource["service.name"] == "support-agent"
        for s in tr.of("chat"):
            a = s.attrs
            assert ("gen_ai.provider.name" in a) == current and ("gen_ai.system" in a) != current
            if s.error:
                assert a["error.type"] in ("rate_limit_exceeded", "overloaded_error", "TimeoutError")
                continue
            assert ("gen_ai.usage.input_tokens" in a) == current
            assert ("gen_ai.usage.prompt_tokens" in a) != current
            assert bool(s.events) != current
            assert s.n_messages >= 1


def test_tool_calls_link_back_to_the_llm(traces: dict[str, Trace]) -> None:
    for tr in traces.values():
        asked: set[str] = set()
        for s in tr.children:
            asked.update(s.call_ids)
            if "gen_ai.tool.call.id" in s.attrs:
                assert s.attrs["gen_ai.tool.call.id"] in asked


def test_conversations_and_tokens_grow(traces: dict[str, Trace]) -> None:
    for tr in traces.values():
        calls = [s.attrs for s in tr.of("chat") if not s.error]
        tokens = [a.get("gen_ai.usage.input_tokens", a.get("gen_ai.usage.prompt_tokens")) for a in calls]
        assert tokens == sorted(tokens)
        messages = [s.n_messages for s in tr.of("chat") if not s.error]
        assert messages == sorted(messages)
        for a, n in zip(calls, tokens, strict=True):
            assert a.get("gen_ai.usage.cache_read.input_tokens", 0) < n


def test_text_needs_escaping_and_survives(traces: dict[str, Trace]) -> None:
    texts = [v for tr in traces.values() for s in [tr.root, *tr.children] for v in s.attrs.values()
             if isinstance(v, str)]
    for needle in ('"', "\n", "\\", "\t", "ö", "🙏", "€"):
        assert any(needle in t for t in texts), needle


# -- failure modes as a reviewer would see them -------------------------------------------------------------
def _max_repeat(calls: list[tuple[str, str]]) -> int:
    best = run = 1 if calls else 0
    for prev, cur in zip(calls, calls[1:], strict=False):
        run = run + 1 if cur == prev else 1
        best = max(best, run)
    return best


def test_tool_loops_repeat_and_successes_do_not(truth: list[DemoTruth], traces: dict[str, Trace]) -> None:
    assert all(_max_repeat(tr.tool_calls()) >= 4 for tr in _by_mode(truth, traces, "tool_loop"))
    successes = _by_mode(truth, traces, None)
    assert sum(_max_repeat(tr.tool_calls()) >= 2 for tr in successes) / len(successes) < 0.02


def test_failure_signatures(truth: list[DemoTruth], traces: dict[str, Trace]) -> None:
    for tr in _by_mode(truth, traces, "provider_error"):
        bad = [s for s in tr.of("chat") if s.error]
        assert bad and all(s.attrs["http.response.status_code"] in (429, 529) for s in bad)
        assert tr.root.error and tr.root.status["message"].startswith("provider error")
    for tr in _by_mode(truth, traces, "timeout"):
        assert tr.root.status == {"code": 2, "message": "deadline exceeded"}
        assert tr.root.end - tr.root.start >= 600 * 10**9 and "gen_ai.output.messages" not in tr.root.attrs
    for tr in _by_mode(truth, traces, "policy_violation"):
        names = [(s.name, s.attrs.get("workbench.guardrail.decision")) for s in tr.children]
        blocked = names.index(next(n for n in names if n[1] == "block"))
        assert names[blocked + 1][0] in ("execute_tool refund_order", "execute_tool run_shell")
        assert not tr.of("human_approval")
    for tr in _by_mode(truth, traces, "missed_escalation"):
        assert not tr.of("human_approval")
        assert "escalate_to_human" not in {name for name, _ in tr.tool_calls()}
    for mode in ("malformed_tool_args", "ignored_tool_error"):
        for tr in _by_mode(truth, traces, mode):
            assert any(s.error for s in tr.children if "gen_ai.tool.name" in s.attrs), mode
            assert not tr.root.error and "gen_ai.output.messages" in tr.root.attrs
    for tr in _by_mode(truth, traces, None):
        assert tr.root.status == {"code": 1} and "gen_ai.output.messages" in tr.root.attrs


def test_version_drift(truth: list[DemoTruth]) -> None:
    def rate(agent: str, version: str, *modes: str) -> float:
        runs = [t for t in truth if (t.agent, t.agent_version) == (agent, version)]
        return sum(t.failure_mode in modes for t in runs) / len(runs)

    support, coding = "support-agent", "coding-agent"
    assert rate(support, "v1", "tool_loop") > 3 * rate(support, "v2", "tool_loop")
    assert rate(coding, "v1", "malformed_tool_args") > 2 * rate(coding, "v2", "malformed_tool_args")
    assert rate(coding, "v2", "cost_blowup", "timeout") > 2 * rate(coding, "v1", "cost_blowup", "timeout")


def test_costs_follow_models_and_blowups(truth: list[DemoTruth], traces: dict[str, Trace]) -> None:
    cost: dict[tuple[str, str, str | None], list[float]] = {}
    for t in truth:
        cost.setdefault((t.agent, t.agent_version, t.failure_mode), []).append(traces[t.trace_id].cost())
    median = {k: statistics.median(v) for k, v in cost.items()}
    assert median["support-agent", "v2", None] > 2 * median["support-agent", "v1", None]  # the bigger model
    assert median["coding-agent", "v2", None] > median["coding-agent", "v1", None]
    for agent in ("support-agent", "coding-agent"):
        for version in ("v1", "v2"):
            assert median[agent, version, "cost_blowup"] > 5 * median[agent, version, None]


# -- determinism and streaming ------------------------------------------------------------------------------
def test_same_seed_same_bytes(fleet_dir: tuple[Path, list[DemoTruth]], tmp_path: Path) -> None:
    out, truth = fleet_dir
    assert generate_fleet(tmp_path) == truth
    for path in sorted(out.glob("*.jsonl")):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_other_seed_other_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_fleet(a, seed=7, n_runs=200)
    generate_fleet(b, seed=8, n_runs=200)
    for path in sorted(a.glob("*.jsonl")):
        assert (b / path.name).read_bytes() != path.read_bytes()


def test_iter_trace_lines_stops_at_n_spans() -> None:
    sizes = [sum(len(rs["scopeSpans"][0]["spans"]) for rs in json.loads(line)["resourceSpans"])
             for line in iter_trace_lines(3, n_spans=5000)]
    assert 5000 <= sum(sizes) < 5000 + sizes[-1]
    assert len(list(iter_trace_lines(3, n_runs=25))) == 25
    with pytest.raises(ValueError):
        next(iter_trace_lines(3))


def test_iter_trace_lines_speed() -> None:
    """Prints the throughput (a benchmark makes 1M spans from it); asserts nothing about speed."""
    wall, cpu, size, n = time.perf_counter(), time.process_time(), 0, 100_000
    for line in iter_trace_lines(11, n_spans=n):
        size += len(line)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"\niter_trace_lines: {n / wall:,.0f} spans/s wall, {n / cpu:,.0f} spans/s cpu, "
          f"{size / n:,.0f} bytes/span")
