"""Judge criteria: never called without a judge passed explicitly; the built-in HTTP judge against a fake
OpenAI-compatible server on 127.0.0.1 (stdlib http.server), its cost recorded; failures do not stop scoring."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import rubric_fixture as fx
from workbench.judge import HttpJudge, JudgeRequest, JudgeResult
from workbench.rubrics import parse_rubric
from workbench.scoring import score_runs
from workbench.store import Store

RUBRIC = """
name = "judged"
[[criteria]]
id = "helpful"
kind = "judge"
prompt = "Did the agent actually solve the customer's problem?"
when = { agent = "support" }
"""
N_SUPPORT = 7  # fixture runs whose agent is "support" (all but the four coder runs)


class FakeServer:
    """Answers /v1/chat/completions like an OpenAI-compatible endpoint and records every request."""

    def __init__(self, status: int = 200, content: str = '{"score": 1, "reason": "solved"}'):
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                reply = {"choices": [{"message": {"role": "assistant", "content": content}}],
                         "usage": {"prompt_tokens": 1000, "completion_tokens": 50}}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fstore(tmp_path):
    with Store(fx.build(tmp_path / "f.duckdb")) as s:
        yield s


def test_judge_criteria_are_not_scored_without_a_judge(fstore):
    with FakeServer() as server:
        report = score_runs(fstore, parse_rubric(RUBRIC))
    assert report.not_scored == ["helpful"] and server.requests == []
    assert fstore.sql("SELECT count(*) FROM scores").fetchone()[0] == 0


def test_http_judge_scores_and_records_its_cost(fstore, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test-123")
    with FakeServer() as server:
        judge = HttpJudge(server.url, "judge-model", api_key_env="JUDGE_TEST_KEY", price=(2.0, 8.0))
        report = score_runs(fstore, parse_rubric(RUBRIC), judges={"default": judge})
    assert len(server.requests) == N_SUPPORT
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-test-123"
    assert first["body"]["model"] == "judge-model"
    prompt = first["body"]["messages"][1]["content"]
    assert "Did the agent actually solve" in prompt and "outcome" not in prompt.lower()
    rows = fstore.df("SELECT * FROM scores WHERE passed IS NOT NULL ORDER BY run_id")
    assert len(rows) == N_SUPPORT and rows["passed"].all() and (rows["evidence"] == "solved").all()
    # 1,000 input tokens at $2/M + 50 output tokens at $8/M
    assert rows["cost_usd"].tolist() == pytest.approx([0.0024] * N_SUPPORT)
    assert set(rows["scorer"]) == {"judge:http"}
    config = json.loads(rows["scorer_args"].iloc[0])
    assert config["model"] == "judge-model" and "sk-test" not in rows["scorer_args"].iloc[0]
    assert report.summary.loc[0, "cost_usd"] == pytest.approx(0.0024 * N_SUPPORT)


def test_http_judge_failures_leave_runs_undecided(fstore):
    with FakeServer(status=500) as server:
        score_runs(fstore, parse_rubric(RUBRIC), judges={"default": HttpJudge(server.url, "m")})
    rows = fstore.df("SELECT passed, evidence FROM scores WHERE evidence <> 'not applicable'")
    assert len(rows) == N_SUPPORT and rows["passed"].isna().all()
    assert set(rows["evidence"]) == {"judge failed: judge endpoint answered HTTP 500"}
    with FakeServer(content="I think it was fine") as server:
        score_runs(fstore, parse_rubric(RUBRIC), judges={"default": HttpJudge(server.url, "m")})
    rows = fstore.df("SELECT passed, evidence FROM scores WHERE evidence <> 'not applicable'")
    assert rows["passed"].isna().all() and rows["evidence"].str.startswith("judge reply is not a score").all()


def test_any_callable_is_a_judge(fstore):
    seen: list[JudgeRequest] = []

    def strict(request: JudgeRequest) -> JudgeResult:
        seen.append(request)
        return JudgeResult(value=2.0 if "refund" in (request.run["output"] or "").lower() else 5.0,
                           explanation="tone", cost_usd=0.001)

    rubric = parse_rubric(RUBRIC.replace('prompt =', 'scale = "1-5"\npass_min = 4\nprompt ='))
    score_runs(fstore, rubric, judges={"default": strict})
    assert len(seen) == N_SUPPORT and all(r.scale == "1-5" for r in seen)
    rows = fstore.df("SELECT run_id, value, passed, scorer FROM scores WHERE passed IS NOT NULL ORDER BY run_id")
    # outputs mentioning a refund: r_ok, r_retry, r_blocked (support runs)
    assert dict(zip(rows["run_id"], rows["passed"], strict=True)) == {
        r: r not in ("r_ok", "r_retry", "r_blocked") for r in rows["run_id"]}
    assert set(rows["scorer"]) == {"judge:strict"}


def test_http_judge_refuses_other_schemes():
    with pytest.raises(ValueError, match="http"):
        HttpJudge("file:///etc/passwd", "m")
