"""The Langfuse loader against ../shared/data/real/langfuse-framework-traces (20 frameworks' trace exports).

Expected figures come from SOURCE.md and from reading the files (noted at each number). The folder also holds
Langfuse's own ChatML rendering of each trace (`*.chatml.json`): the loader must not take those for traces,
and its extracted messages are checked against them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REAL
from tests.loader_checks import assert_truncated_copy_fails_cleanly, messages_of, rows
from workbench.ingest import ingest_file, ingest_paths
from workbench.loaders import UnknownFormatError, detect
from workbench.loaders.langfuse import input_side, output_side
from workbench.loaders.parse import loads_lenient
from workbench.store import Store

pytestmark = pytest.mark.real_data

FOLDER = REAL / "langfuse-framework-traces"
TRACE_FILES = sorted(FOLDER.glob("*.trace.json")) if FOLDER.is_dir() else []


@pytest.fixture(scope="module")
def lf(tmp_path_factory):
    """The whole folder ingested once: (store, ingest summary)."""
    if not FOLDER.is_dir():
        pytest.skip(f"real trace files not found at {FOLDER}")
    store = Store(tmp_path_factory.mktemp("langfuse") / "wb.duckdb")
    summary = ingest_paths(store, [FOLDER])
    yield store, summary
    store.close()


def test_folder_ingest_reports_chatml_files_as_not_traces(lf):
    _, summary = lf
    by_status: dict[str, list[str]] = {}
    for r in summary.results:
        by_status.setdefault(r.status, []).append(Path(r.path).name)
    # 40 files: 20 *.trace.json, 20 *.chatml.json (SOURCE.md)
    assert sorted(by_status) == ["ok", "skipped"] and summary.n_failed == 0
    assert sorted(by_status["ok"]) == [p.name for p in TRACE_FILES] and len(TRACE_FILES) == 20
    assert all(n.endswith(".chatml.json") for n in by_status["skipped"]) and len(by_status["skipped"]) == 20
    assert all(r.message.startswith("not a trace (langfuse): Langfuse's ChatML rendering")
               for r in summary.results if r.status == "skipped")
    assert "not a trace" in summary.render()


def test_cli_ingest_lists_a_chatml_file_as_not_a_trace_and_succeeds(tmp_path):
    if not FOLDER.is_dir():
        pytest.skip(f"real trace files not found at {FOLDER}")
    folder = tmp_path / "export"
    folder.mkdir()
    for name in ("autogen-2025-06-06.trace.json", "autogen-2025-06-06.chatml.json"):
        (folder / name).symlink_to(FOLDER / name)
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "ingest", "--db", str(tmp_path / "wb.duckdb"),
                          "--quiet", str(folder)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("ok ") and "langfuse" in line and "trace.json" in line for line in lines)
    skipped = [line for line in lines if line.startswith("skipped")]
    assert len(skipped) == 1 and "chatml.json" in skipped[0] and "not a trace" in skipped[0]


def test_chatml_files_are_not_sniffed_as_traces_by_any_loader():
    chatml = sorted(FOLDER.glob("*.chatml.json"))
    if not chatml:
        pytest.skip(f"real trace files not found at {FOLDER}")
    for path in chatml:
        with pytest.raises(UnknownFormatError):
            detect(path)


def test_runs_steps_kinds_and_outcomes(lf):
    store, _ = lf
    # 20 trace files but 19 traces: pydantic-ai-2025-06-06 and pydantic-ai-tools-2025-06-06 are the same trace
    # (id 25f4bdee..., the same 3 observations in another order), so their observations merge into one run
    assert rows(store, "SELECT count(*), count(DISTINCT native_id) FROM runs") == [(19, 19)]
    # 138 observations (SOURCE.md) minus the 3 the duplicate trace repeats
    assert rows(store, "SELECT count(*) FROM steps") == [(135,)]
    # GENERATION 41 (42 - 1 repeated) -> llm; TOOL 11 + 8 SPANs that are tools (OpenInference TOOL: agno 1,
    # beeai 3; gen_ai.tool.name: koog 2; named like a tool an LLM called: langgraph-js get_weather, langgraph-
    # python Web-Search) -> 19; AGENT 6 + 24 SPANs (20 OpenInference AGENT, 4 pydantic-ai "... agent run") -> 30;
    # CHAIN 1 + the other 44 SPANs -> 45
    assert rows(store, "SELECT kind, count(*) FROM steps GROUP BY 1 ORDER BY 1") == [
        ("agent", 30), ("chain", 45), ("llm", 41), ("tool", 19)]
    # all levels DEFAULT/DEBUG: no failed observation (SOURCE.md)
    assert rows(store, "SELECT DISTINCT status FROM runs") == [("ok",)]
    assert rows(store, "SELECT count(*) FROM steps WHERE status = 'error'") == [(0,)]
    # outcome only from a correctness judge: microsoft-agent correctness 1 -> success, claude-agent
    # correctness 0 -> failure; toxicity/hallucination scores never decide it
    assert rows(store, "SELECT outcome, count(*) FROM runs GROUP BY 1 ORDER BY 1") == [
        ("failure", 1), ("success", 1), ("unknown", 17)]
    assert rows(store, "SELECT agent, outcome_score FROM runs WHERE outcome != 'unknown' ORDER BY 1") == [
        ("claude.conversation", 0.0), ("invoke_agent 171105b7-59dd-49c0-9677-0b95395aa46a", 1.0)]
    # scores: SOURCE.md says 12 traces carry judge scores; the files hold 11 (24 scores: 3 on claude-agent and microsoft-agent, 2 on the other 9)
    assert rows(store, "SELECT count(*), sum(json_array_length(attributes->'langfuse.scores')) FROM runs "
                       "WHERE (attributes->'langfuse.scores') IS NOT NULL") == [(11, 24)]
    # "One observation has a parentObservationId not present in the file" (csharp): it is that run's root
    assert rows(store, "SELECT s.step_id FROM steps s JOIN runs r USING (run_id) "
                       "WHERE r.agent = 'Insights Agent C#' AND s.depth = 0") == [("5b9ba1e61e2e10fc",)]


def test_tokens_and_reported_costs(lf):
    store, _ = lf
    # sums over the 41 distinct GENERATIONs' usageDetails: flat usage types are disjoint in Langfuse
    # (input + input_audio + input_cache_read = 19480; output + output_audio + output_reasoning = 5762);
    # reasoning = output_reasoning 64 + completion_details.reasoning 1104 (gemini) = 1168; cache reads all 0
    assert rows(store, "SELECT sum(input_tokens), sum(output_tokens), sum(reasoning_tokens), sum(cache_tokens) "
                       "FROM runs") == [(19480, 5762, 1168, 0)]
    # Langfuse reports the cost of every generation with usage: kept, never estimated
    total, = rows(store, "SELECT sum(cost_usd) FROM runs")[0]
    assert total == pytest.approx(0.022248249995)  # sum of the distinct GENERATIONs' totalCost
    assert rows(store, "SELECT DISTINCT cost_estimated FROM steps WHERE cost_usd IS NOT NULL") == [(False,)]
    # 39 generations carry a cost; beeai's two chat.finish/success generations have neither usage nor cost
    assert rows(store, "SELECT count(*) FROM steps WHERE kind = 'llm' AND cost_usd > 0") == [(39,)]
    autogen = rows(store, "SELECT input_tokens, output_tokens, cost_usd, model FROM steps "
                          "WHERE step_id = '83517f9062f5ada4'")
    assert autogen == [(41, 3, 2.5e-05, "gpt-4o")]
    # langgraph-js: output 35 + output_reasoning 64 -> 99 output tokens (Langfuse's total 278 = 179 + 99)
    assert rows(store, "SELECT input_tokens, output_tokens, reasoning_tokens FROM steps "
                       "WHERE step_id = '0856a1825ccee968'") == [(179, 99, 64)]


def test_tool_steps_have_parsed_arguments(lf):
    store, _ = lf
    tools = rows(store, "SELECT name, tool_name, json_type(tool_args), tool_result IS NOT NULL FROM steps "
                        "WHERE kind = 'tool' ORDER BY name")
    assert len(tools) == 19
    # every tool call has its arguments as an object, except beeai's tool.*.finish span, which records none
    assert [t[0] for t in tools if t[2] != "OBJECT"] == ["tool.search.wikipedia.finish-12"]
    # langgraph-python records the tool input as a Python repr: {'query': 'example'}
    (args, result), = rows(store, "SELECT tool_args, tool_result FROM steps WHERE name = 'Web-Search'")
    assert json.loads(args) == {"query": "example"}
    assert result == '[{"url": "https://example.com", "title": "Example Result", "q": "example"}]'
    # pydantic-ai names the span "running tool: X"
    (name, args), = rows(store, "SELECT tool_name, tool_args FROM steps "
                                "WHERE name = 'running tool: get_pun_suggestion'")
    assert (name, json.loads(args)) == ("get_pun_suggestion", {"topic": "programming"})
    # tools that produced no output are the beeai start/finish events and the C# final_result (output null)
    assert sorted(t[0] for t in tools if not t[3]) == [
        "final_result", "tool.search.wikipedia.finish-12", "tool.search.wikipedia.start-12"]


# Langfuse keeps Gemini's role name "model"; the canonical model calls every model turn "assistant"
SAME_ROLE = {"model": "assistant"}


def _text(message: dict) -> str:
    """Text content of a ChatML message as Langfuse renders it: a string, or text parts (Anthropic / OpenAI
    content blocks; tool_use blocks are calls, compared by name below)."""
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content or ""


def _call_names(message: dict) -> list[str]:
    """Tool calls Langfuse lists in `tool_calls`, or leaves inside Anthropic content as tool_use blocks."""
    content = message.get("content") if isinstance(message.get("content"), list) else []
    return [c["name"] for c in message.get("tool_calls") or []] + [
        p["name"] for p in content if isinstance(p, dict) and p.get("type") == "tool_use"]


def _leaves(value) -> list[str]:
    if isinstance(value, str):
        parsed = loads_lenient(value)
        return [value] if isinstance(parsed, str) else _leaves(parsed)
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return []


def _check_side(raw, rendered: dict | None, mine: list[dict], where: str) -> str:
    """Compare the messages stored for one side of a generation with Langfuse's rendering of that side."""
    if rendered is None:  # Langfuse rendered nothing because there is nothing
        assert raw is None and mine == [], where
        return "absent"
    if not rendered["success"]:
        # Langfuse's parser gave up (plain text "system: ...\nuser: ...", {"args": [...]}, a bare message
        # object, a {"prompt"} request): nothing to compare with, so the strongest true thing is that no text
        # is lost -- every string in the recorded value appears in the stored messages (roles included)
        stored = "\n".join(f"{m['role']}\n{m.get('content') or ''}" for m in mine)
        assert mine and all(leaf in stored for leaf in _leaves(raw)), where
        return "unparsed-by-langfuse"
    data = rendered["data"]
    assert len(mine) == len(data), where
    for i, (theirs, ours) in enumerate(zip(data, mine, strict=True)):
        at = f"{where}[{i}]"
        if "role" not in theirs and "content" not in theirs:
            # Langfuse kept this entry unrendered: Agno's pydantic repr strings ("role='user' content='...'")
            # show only the call's tools; pydantic-ai's gen_ai.choice event only as raw `json`. Check ours
            # against the recorded entry itself.
            source = theirs["json"]["message"] if "json" in theirs else json.loads(raw)["messages"][i]
            if isinstance(source, dict):
                assert (ours["role"], ours.get("content")) == (source["role"], source["content"]), at
            else:
                assert source.startswith(f"role='{ours['role']}' content={ours.get('content')!r}"), at
            continue
        assert ours["role"] == SAME_ROLE.get(theirs["role"], theirs["role"]), at
        assert (ours.get("content") or "") == _text(theirs), at
        assert [c["name"] for c in ours.get("tool_calls", [])] == _call_names(theirs), at
    return "compared"


def test_generation_messages_match_langfuse_chatml_rendering(lf):
    store, _ = lf
    outcomes: dict[str, int] = {}
    for trace_file in TRACE_FILES:
        chatml = json.loads(trace_file.with_name(trace_file.name.replace(".trace", ".chatml")).read_text())
        for obs in json.loads(trace_file.read_text())["observations"]:
            if obs["type"] != "GENERATION":
                continue
            stored = messages_of(store, obs["id"])
            ins, outs = input_side(obs), output_side(obs)
            # what is stored is the input's messages, then the output's
            assert stored == [m.model_dump(exclude_defaults=True) for m in ins + outs]
            entry = chatml.get(obs["id"], {})
            where = f"{trace_file.name}:{obs['id']}"
            for side, raw, mine in (("input", obs["input"], stored[:len(ins)]),
                                    ("output", obs["output"], stored[len(ins):])):
                kind = _check_side(raw, entry.get(side), mine, f"{where}:{side}")
                outcomes[kind] = outcomes.get(kind, 0) + 1
    # 42 GENERATIONs x 2 sides = 84: Langfuse rendered 63; could not parse 14 (agno 4, autogen 2, claude-agent's
    # 4 inputs, crewai's output, llamaindex 2, vercel's generateText input); 7 are empty (beeai: the outputs
    # of its 3 chat.start generations, both sides of chat.finish and chat.success)
    assert outcomes == {"compared": 63, "unparsed-by-langfuse": 14, "absent": 7}


def test_forced_format_on_a_chatml_file_is_a_clear_reject(store):
    chatml = FOLDER / "autogen-2025-06-06.chatml.json"
    if not chatml.is_file():
        pytest.skip(f"real trace files not found at {FOLDER}")
    res = ingest_file(store, chatml, fmt="langfuse")
    assert (res.status, res.n_runs, res.n_rejects) == ("rejected", 0, 1)
    assert res.message.startswith("/: no Langfuse trace here")


def test_truncated_copy_fails_cleanly(store, real_dir, tmp_path):
    source = real_dir / "langfuse-framework-traces" / "langgraph-js-2025-10-30.trace.json"
    assert_truncated_copy_fails_cleanly(store, source, tmp_path, "langfuse")
