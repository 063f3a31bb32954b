"""The shared Python-loader path: staging traces, deriving run facts, estimating costs, imported labels."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from workbench.ingest import ingest_file
from workbench.loaders.base import ImportedLabel, PythonLoader, Trace, run_facts
from workbench.loaders.parse import content_text, loads_lenient, messages_of, parse_ts
from workbench.models import Message, Reject, Step


class _Toy(PythonLoader):
    name = "toy"

    def sniff(self, path: Path, head: bytes) -> bool:
        return path.suffix == ".toy"

    def read(self, path, ctx):
        run = run_facts("toy", "t-1", outcome="failure", agent="toy-agent")
        t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
        steps = [
            Step(run_id=run.run_id, step_id="b", parent_step_id="a", seq=1, kind="llm", model="gpt-4o",
                 started_at=datetime(2026, 1, 1, 12, 0, 1, tzinfo=UTC), input_tokens=1000, output_tokens=100,
                 messages=[Message(role="user", content="hi")]),
            Step(run_id=run.run_id, step_id="a", seq=0, kind="agent", started_at=t0,
                 ended_at=datetime(2026, 1, 1, 12, 0, 5, tzinfo=UTC), status="ok"),
            Step(run_id=run.run_id, step_id="c", parent_step_id="a", seq=2, kind="llm", model="mystery-1",
                 started_at=datetime(2026, 1, 1, 12, 0, 2, tzinfo=UTC), input_tokens=5),
        ]
        yield Trace(run=run, steps=steps, labels=[ImportedLabel(code="tool.wrong_tool", step_id="b")])
        yield Reject(location="line 3", reason="not JSON")


def test_python_loader_stages_merges_and_labels(store, tmp_path, monkeypatch):
    monkeypatch.setattr("workbench.loaders._builtin", lambda: {"toy": _Toy})
    f = tmp_path / "x.toy"
    f.write_text("whatever")
    res = ingest_file(store, f)
    assert res.status == "partial" and res.n_runs == 1 and res.n_steps == 3 and res.n_rejects == 1
    run = store.sql("SELECT agent, outcome, status, n_steps, n_llm_calls, input_tokens, cost_usd, "
                    "cost_estimated, duration_ms FROM runs").fetchone()
    assert run[:6] == ("toy-agent", "failure", "ok", 3, 2, 1005)
    assert abs(run[6] - (1000 * 2.5 + 100 * 10) / 1e6) < 1e-12 and run[7] is True
    assert run[8] == 5000
    steps = store.sql("SELECT step_id, seq, depth, cost_usd, attributes->>'workbench.cost_note' FROM steps "
                      "ORDER BY seq").fetchall()
    assert [s[:3] for s in steps] == [("a", 0, 0), ("b", 1, 1), ("c", 2, 1)]
    assert steps[2][3] is None and "mystery-1" in steps[2][4]
    assert store.sql("SELECT code, step_id, reviewer FROM label_events").fetchall() == [
        ("tool.wrong_tool", "b", "imported")]
    # forcing the same file again adds nothing: same steps, same label event
    again = ingest_file(store, f, force=True)
    assert again.n_steps == 0
    assert store.sql("SELECT count(*) FROM label_events").fetchone()[0] == 1


def test_parse_helpers():
    assert parse_ts("1700000000000") == parse_ts(1700000000) == parse_ts("2023-11-14T22:13:20Z")
    assert parse_ts("1700000000000000000") == parse_ts("2023-11-14T23:13:20+01:00")
    assert parse_ts("not a time") is None
    assert loads_lenient('"{\\"a\\": 1}"') == {"a": 1}
    assert loads_lenient("{'city': 'Paris'}") == {"city": "Paris"}
    assert loads_lenient("plain words") == "plain words"
    assert content_text([{"type": "text", "text": "a"}, {"type": "image_url"}]) == "a\n[image_url]"
    msgs = messages_of([{"role": "assistant", "content": None,
                         "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": '{"x": 2}'}}]}])
    assert msgs[0].tool_calls[0].arguments == {"x": 2}
