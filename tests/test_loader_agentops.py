"""The AgentOps loader against ../shared/data/real/agentops-trace-export (one OpenAI Agents SDK run).

Expected figures come from SOURCE.md and from reading api_output.json (noted at each number).
"""

from __future__ import annotations

import pytest

from tests.loader_checks import assert_truncated_copy_fails_cleanly, messages_of, rows
from workbench.ingest import ingest_file
from workbench.models import make_run_id

pytestmark = pytest.mark.real_data

FILE = ("agentops-trace-export", "api_output.json")
TRACE_ID = "4a43cb9945150e9932d35a76eb513001"


def test_trace_maps_to_one_run_of_seven_steps(store, real_dir):
    res = ingest_file(store, real_dir.joinpath(*FILE))
    assert (res.status, res.format, res.n_runs, res.n_steps, res.n_rejects) == ("ok", "agentops", 1, 7, 0)
    run = store.df("SELECT * FROM runs").iloc[0]
    assert run.run_id == make_run_id("agentops", TRACE_ID)
    # 1 trace, 7 spans (SOURCE.md); span_type: agent x3 (the run + 2 agents.agent), request x2, other x2
    assert (run.n_steps, run.n_llm_calls, run.n_tool_calls, run.n_errors) == (7, 2, 0, 0)
    assert rows(store, "SELECT kind, count(*) FROM steps GROUP BY 1 ORDER BY 1") == [
        ("agent", 3), ("llm", 2), ("other", 2)]
    # status_code "Unset" everywhere, no outcome in the export
    assert (run.status, run.outcome) == ("ok", "unknown")
    assert (run.agent, run.input) == ("Hello World Agent", "Tell me about recursion in programming.")
    assert run.output.startswith("Recursion in programming is a technique where a function calls itself")
    # start_time is "" in every span (SOURCE.md): no timestamps, durations from the ns `duration`, file order
    assert rows(store, "SELECT count(*) FROM steps WHERE started_at IS NOT NULL") == [(0,)]
    assert run.duration_ms == pytest.approx(4653.579)  # root span duration 4653579000 ns
    assert rows(store, "SELECT seq, depth, step_id FROM steps ORDER BY seq")[:2] == [
        (0, 0, "4810a5d802bcad90"), (1, 1, "1d4ae9ddbe20dd87")]
    assert rows(store, "SELECT count(*) FROM steps WHERE depth = 1 AND parent_step_id = '4810a5d802bcad90'") == [
        (6,)]


def test_tokens_messages_and_estimated_cost(store, real_dir):
    ingest_file(store, real_dir.joinpath(*FILE))
    # gpt-4o, 52 prompt / 439 completion tokens (SOURCE.md): counted once, from the LLM request span (the
    # run span repeats them and is an agent step, left out of the run's sums)
    run = store.df("SELECT input_tokens, output_tokens, cost_usd, cost_estimated FROM runs").iloc[0]
    assert (run.input_tokens, run.output_tokens) == (52, 439)
    # no cost in the export: estimated from the price table, gpt-4o 2.50 / 10.00 USD per million
    assert run.cost_usd == pytest.approx((52 * 2.50 + 439 * 10.00) / 1e6) and bool(run.cost_estimated)
    llm = rows(store, "SELECT step_id, model, input_tokens, output_tokens FROM steps WHERE kind = 'llm' ORDER BY seq")
    # one request span's prompt and completion are the string "null": no messages, no usage
    assert llm == [("272310b46a872604", None, None, None), ("7087d880b52cbe99", "gpt-4o-2024-08-06", 52, 439)]
    assert messages_of(store, "272310b46a872604") == []
    # the other's completion is the whole Responses API response as a JSON string
    said = messages_of(store, "7087d880b52cbe99")
    assert [m["role"] for m in said] == ["user", "assistant"]
    assert said[0]["content"] == "Tell me about recursion in programming."
    assert said[1]["content"].startswith("Recursion in programming is a technique")


def test_truncated_copy_fails_cleanly(store, real_dir, tmp_path):
    assert_truncated_copy_fails_cleanly(store, real_dir.joinpath(*FILE), tmp_path, "agentops")
