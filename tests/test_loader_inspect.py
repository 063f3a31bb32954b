"""Inspect AI loader on the real eval logs (../shared/data/real/inspect-ai), and on crafted hostile archives."""

from __future__ import annotations

import json
import zipfile

import pytest

from tests.loader_util import assert_truncated_copy_rejected, claimed_by
from workbench.ingest import ingest_file, ingest_paths
from workbench.loaders import safezip
from workbench.loaders.inspect_ai import score_outcome
from workbench.models import make_run_id

BROWSER = "tests/analysis/test_logs/2025-05-12T20-27-36-04-00_browser.json"
SECURITY = "tests/analysis/test_logs/2025-05-12T20-28-26-04-00_security-guide.json"
STREAMING = "tests/log/test_eval_log/log_streaming.eval"
FORMATS_JSON = "tests/log/test_eval_log/log_formats.json"


@pytest.fixture
def inspect_dir(real_dir):
    return real_dir / "inspect-ai"


@pytest.fixture
def loaded(store, inspect_dir):
    return store, ingest_paths(store, [inspect_dir])


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_folder_counts(loaded, inspect_dir):
    store, summary = loaded
    by_file = {r.path.split("inspect-ai/")[1]: r for r in summary.results}
    # 10 files here (SOURCE.md: only tests/log/test_eval_log/* and tests/analysis/test_logs/*)
    assert len(by_file) == 10
    empty = by_file["tests/analysis/test_logs/2025-05-12T20-28-13-04-00_no-samples.json"]
    assert (empty.status, empty.n_rejects) == ("rejected", 1) and "no samples" in empty.message
    assert {p: r.status for p, r in by_file.items() if r is not empty} == dict.fromkeys(
        set(by_file) - {empty.path.split("inspect-ai/")[1]}, "ok")
    # 16 samples in the files: 10 in the .json logs (1 + 0 + 3 + 3 + 1 + 1 + 1), 6 in the .eval archives
    # (1 + 1 + 4); log_formats.json and log_formats.eval are the same eval (run BpiPFmbV..., same task id),
    # so its one sample lands once: 15 runs
    assert store.sql("SELECT count(*) FROM runs WHERE format = 'inspect'").fetchone()[0] == 15
    assert sum(r.n_runs for r in summary.results) == 16
    # scores read from the samples: C in browser 1, popularity 2, security-guide 3, read_sample .json 1 and
    # .eval 1, streaming 3 = 11; I in popularity 1, log_formats 1 (both copies), images 1, streaming 1 = 4
    assert dict(store.sql("SELECT outcome, count(*) FROM runs GROUP BY ALL").fetchall()) == {
        "success": 11, "failure": 4}
    # one llm step per model event: browser 5, popularity 3, security-guide 6 (3 answers + 3 grader calls),
    # log_formats 1 (deduplicated), images 1, read_sample 1 + 1, streaming 4 = 22; tool events: browser 4
    assert dict(store.sql("SELECT kind, count(*) FROM steps GROUP BY ALL").fetchall()) == {"llm": 22, "tool": 4}
    # tokens summed over the model events' usage; equal to the samples' own model_usage totals (the
    # log_formats.eval sample has an empty model_usage; its one event says 66 in / 2 out)
    assert store.sql("SELECT sum(input_tokens), sum(output_tokens), sum(cache_tokens) FROM runs").fetchone() == (
        17159, 1339, 9088)
    # prices exist for the OpenAI models only: gpt-4o-mini (browser, popularity, security-guide: 7 runs) and
    # gpt-4o (images: 1); the ollama and azureai llama runs keep an empty cost and say why
    assert store.sql("SELECT count(*) FROM runs WHERE cost_estimated").fetchone()[0] == 8
    assert store.sql("SELECT count(*) FROM steps WHERE attributes->>'workbench.cost_note' LIKE 'no price%'"
                     ).fetchone()[0] == 7
    assert all(claimed_by(f) == ["inspect"] for f in inspect_dir.rglob("*") if f.suffix in (".json", ".eval"))


def test_browser_agent_tools_and_attachments(loaded):
    store, _ = loaded
    run_id = make_run_id("inspect", "ZB2vu5GNujYaBdPSReCeop/1/1")  # eval id / sample id / epoch
    run = store.df("SELECT * FROM runs WHERE run_id = $id", {"id": run_id}).iloc[0]
    assert (run.agent, run.agent_version, run.task_id, run.outcome, run.outcome_score) == (
        "browser", "openai/gpt-4o-mini", "browser/1", "success", 1.0)
    # SOURCE.md: 5 model calls, 4 tool calls; usage as in the sample's model_usage
    assert (run.n_steps, run.n_llm_calls, run.n_tool_calls) == (9, 5, 4)
    assert (run.input_tokens, run.output_tokens, run.cache_tokens) == (15235, 281, 9088)
    # gpt-4o-mini: 0.15 / 0.60 / 0.075 USD per million fresh input / output / cached input tokens
    assert run.cost_usd == pytest.approx(((15235 - 9088) * 0.15 + 281 * 0.60 + 9088 * 0.075) / 1e6)
    steps = store.df("SELECT kind, tool_name, tool_args, tool_result, messages FROM steps WHERE run_id = $id "
                     "ORDER BY seq", {"id": run_id})
    assert list(steps.kind) == ["llm", "tool"] * 4 + ["llm"]
    tools = steps[steps.kind == "tool"]
    assert [(t, json.loads(a)) for t, a in zip(tools.tool_name, tools.tool_args, strict=True)] == [
        ("web_browser_go", {"url": "https://www.aisi.gov.uk/"}), ("web_browser_click", {"element_id": 151}),
        ("web_browser_click", {"element_id": 884}), ("web_browser_click", {"element_id": 903})]
    assert tools.tool_result.iloc[0].startswith('[132] link "We are now the AI Security Institute"')
    first = json.loads(steps.messages[0])
    # input: the user's task, stored in the log as attachment://56c15182...; output: the call it asked for
    assert first[0] == {"role": "user", "content": "Use the web browser tool to navigate to https://www.aisi.gov.uk/. "
                        "Then, see if you can find a page on the site that describes the work of the UK AISI. "
                        "Then, summarize this work in two paragraphs."}
    assert first[-1]["tool_calls"] == [{"id": "call_35FTpd6shR9efioDgeEBZ33s", "name": "web_browser_go",
                                        "arguments": {"url": "https://www.aisi.gov.uk/"}}]
    last = json.loads(steps.messages[8])
    # the tool results fed back (attachment://f37c5056... in the log) and the answer (attachment://707c70d5...)
    assert last[2]["role"] == "tool" and last[2]["content"].startswith("[132] link")
    assert last[-1]["content"].startswith("The AI Security Institute (AISI) is the premier governmental")
    # 93 attachment:// references in this log, and tc:// ones in the older logs: none survives
    leftovers = store.sql(
        "SELECT count(*) FROM steps WHERE CAST(messages AS VARCHAR) SIMILAR TO '.*(attachment|tc)://.*' "
        "OR tool_result LIKE 'attachment://%' OR CAST(tool_args AS VARCHAR) LIKE '%attachment://%'").fetchone()[0]
    assert leftovers == 0
    assert store.sql("SELECT count(*) FROM runs WHERE CAST(attributes AS VARCHAR) LIKE '%attachment://%' "
                     "OR input SIMILAR TO '.*(attachment|tc)://.*' OR output SIMILAR TO '.*(attachment|tc)://.*'"
                     ).fetchone()[0] == 0


def test_grader_calls_and_old_schema(loaded):
    store, _ = loaded
    # security-guide: each sample's second model event is the model_graded_fact scorer's own call
    assert store.sql("SELECT count(*) FROM steps WHERE attributes->>'inspect.span_type' = 'scorer'").fetchone()[0] == 3
    # log_formats.json is an older log: events under transcript.events, text under transcript.content (tc://)
    run = store.df("SELECT * FROM runs WHERE native_id = $n",
                   {"n": "BpiPFmbVcMCRUAXv8ovCTx:9eTnG3tV8jGRYoTPMH54Ee/1/1"}).iloc[0]
    assert (run.outcome, run.output, run.input_tokens, run.output_tokens) == ("failure", "No", 66, 2)
    msgs = json.loads(store.sql("SELECT messages FROM steps WHERE run_id = $id", {"id": run.run_id}).fetchone()[0])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[1]["content"].startswith("Is the following statement something you would say?")


def test_sample_without_events_falls_back_to_messages(store, inspect_dir, tmp_path):
    doc = json.loads((inspect_dir / FORMATS_JSON).read_text())
    del doc["samples"][0]["transcript"]
    f = tmp_path / "no-events.json"
    f.write_text(json.dumps(doc))
    res = ingest_file(store, f)
    assert (res.status, res.n_runs, res.n_steps) == ("ok", 1, 3)
    steps = store.df("SELECT kind, name, input_tokens, output_tokens, attributes FROM steps ORDER BY seq")
    assert list(steps.kind) == ["message", "message", "llm"]
    # usage from sample.output (the sample has no model_usage in this older log)
    assert (steps.input_tokens[2], steps.output_tokens[2]) == (66, 2)
    assert "final generation" in json.loads(steps.attributes[2])["workbench.usage_note"]


@pytest.mark.parametrize(("value", "expected"), [
    ("C", ("success", 1.0)), ("I", ("failure", 0.0)), ("P", ("failure", 0.5)), ("N", ("failure", 0.0)),
    (1, ("success", 1.0)), (0.25, ("failure", 0.25)), (7, ("unknown", 7.0)), (True, ("success", 1.0)),
    ("yes", ("success", 1.0)), ("0", ("failure", 0.0)), ("maybe", ("unknown", None)), ({"a": 1}, ("unknown", None)),
])
def test_score_values(value, expected):
    assert score_outcome(value) == expected


def test_hostile_archives_are_refused_with_a_reason(store, tmp_path, monkeypatch):
    sample = json.dumps({"id": 1, "epoch": 1, "messages": []}).encode()
    header = json.dumps({"version": 2, "status": "success", "eval": {"run_id": "r", "task": "t"}}).encode()
    bomb = _zip(tmp_path / "bomb.eval", {"header.json": header, "samples/1_epoch_1.json": b" " * (8 << 20)})
    climb = _zip(tmp_path / "climb.eval", {"header.json": header, "../../etc/cron.d/x.json": sample})
    absolute = _zip(tmp_path / "absolute.eval", {"header.json": header, "/etc/passwd": sample})
    many = _zip(tmp_path / "many.eval", {"header.json": header} | {f"samples/{i}_epoch_1.json": sample
                                                                     for i in range(12)})
    monkeypatch.setattr(safezip, "MAX_MEMBERS", 10)
    expected = {bomb: "looks like a zip bomb", climb: "unsafe member path '../../etc/cron.d/x.json'",
                absolute: "unsafe member path '/etc/passwd'", many: "13 members, more than the 10 allowed"}
    for path, words in expected.items():
        res = ingest_file(store, path)
        assert (res.format, res.status, res.n_runs) == ("inspect", "rejected", 0), path
        assert words in res.message, res.message
    assert store.sql("SELECT count(*) FROM runs").fetchone()[0] == 0
    with zipfile.ZipFile(many) as zf:  # a member over the record cap is refused before it is read
        with pytest.raises(safezip.ArchiveError, match="over the 10-byte record limit"):
            safezip.read_member(zf, "header.json", 10)


def test_broken_members_and_old_versions_are_rejects(store, inspect_dir, tmp_path):
    with zipfile.ZipFile(inspect_dir / STREAMING) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["samples/3_epoch_1.json"] = b'{"id": 3, "epoch": 1, "messages": ['
    members["samples/4_epoch_1.json"] = b'{"epoch": 1, "messages": []}'
    res = ingest_file(store, _zip(tmp_path / "mixed.eval", members))
    assert (res.status, res.n_runs, res.n_rejects) == ("partial", 4, 2)
    rejects = dict(store.sql("SELECT location, reason FROM rejects").fetchall())
    assert rejects["samples/3_epoch_1.json line 1 column 36"].startswith("not valid JSON")
    assert "sample without an id" in rejects["samples/4_epoch_1.json"]
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"version": 99, "status": "success", "eval": {"run_id": "x"}, "samples": []}))
    res = ingest_file(store, future)
    assert res.status == "rejected" and "EvalLog version 99 is not supported" in res.message
    # other JSON is left to other loaders: an EvalLog needs version, status and an eval spec up front
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"version": 2, "data": [{"eval": 1, "run_id": 2}]}))
    assert "inspect" not in claimed_by(other)


def test_truncated_copies_are_rejected_and_change_nothing(store, inspect_dir, tmp_path):
    ingest_paths(store, [inspect_dir / BROWSER, inspect_dir / STREAMING])
    res = assert_truncated_copy_rejected(store, inspect_dir / STREAMING, tmp_path, "inspect")
    assert "not a readable zip archive" in res.message
    res = assert_truncated_copy_rejected(store, inspect_dir / BROWSER, tmp_path, "inspect")
    assert "not valid JSON" in res.message
