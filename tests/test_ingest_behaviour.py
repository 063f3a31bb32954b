"""Cross-format ingest behaviour: orphan spans, redaction, progress."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.otlp_builder import request, span
from workbench.cli import ProgressBar, main
from workbench.ingest import ingest_file, ingest_paths
from workbench.redaction import RedactionConfigError, Redactor

TRACE = "ab" * 16


def _write(path, spans):
    path.write_text(json.dumps(request(spans)) + "\n")
    return path


def _notes(store):
    return store.sql("SELECT attributes->>'workbench.orphan_steps', attributes->>'workbench.root_missing' "
                     "FROM runs").fetchone()


def test_orphan_is_kept_under_the_root_and_the_run_says_so(store, tmp_path):
    f = _write(tmp_path / "a.jsonl", [
        span(TRACE, "r" * 16, "", "root", 0, 50),
        span(TRACE, "c" * 16, "r" * 16, "child", 1, 2),
        span(TRACE, "o" * 16, "f" * 16, "orphan", 3, 4),       # parent f... never arrives
        span(TRACE, "d" * 16, "o" * 16, "under-orphan", 3, 4),
    ])
    ingest_file(store, f)
    depths = dict(store.sql("SELECT name, depth FROM steps").fetchall())
    assert depths == {"root": 0, "child": 1, "orphan": 1, "under-orphan": 2}
    # the orphan keeps its real parent id: if the parent arrives later, the tree heals
    assert store.sql("SELECT parent_step_id FROM steps WHERE name = 'orphan'").fetchone()[0] == "f" * 16
    assert _notes(store) == ("1", "false")


def test_root_arriving_later_clears_the_notes(store, tmp_path):
    first = _write(tmp_path / "1.jsonl", [span(TRACE, "c" * 16, "r" * 16, "child", 1, 2)])
    ingest_file(store, first)
    assert _notes(store) == ("1", "true")
    assert store.sql("SELECT depth FROM steps").fetchone()[0] == 0
    second = _write(tmp_path / "2.jsonl", [span(TRACE, "r" * 16, "", "root", 0, 5)])
    ingest_file(store, second)
    assert _notes(store) == (None, None)
    assert dict(store.sql("SELECT name, depth FROM steps").fetchall()) == {"root": 0, "child": 1}


SECRETS = {
    "email": "write to jane.doe+test@example.co.uk today",
    "phone": "call +1 415-555-0132 or (020) 7946 0958",
    "card": "card 4111 1111 1111 1111 exp 12/29",
    "api_key": "key sk-proj-abcdefghijklmnop1234 and AKIAABCDEFGHIJKLMNOP",
    "bearer": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
}


def _secret_file(tmp_path):
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1-mini",
             "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [
                 {"type": "text", "content": "\n".join(SECRETS.values())}]}]),
             "note": "plain id 1234567890123 and 2026-11-21T10:00:00Z stay"}
    return _write(tmp_path / "s.jsonl", [span(TRACE, "r" * 16, "", "root", 0, 5, attrs)])


def test_redaction_masks_before_storing_and_counts(store, tmp_path):
    res = ingest_file(store, _secret_file(tmp_path), redactor=Redactor.default())
    # two phones and two keys: 7 values
    assert res.n_redacted == 7, res
    stored = store.sql("SELECT messages::VARCHAR || attributes::VARCHAR FROM steps").fetchone()[0]
    for name in SECRETS:
        assert f"[REDACTED:{name}]" in stored
    for needle in ("jane.doe", "415-555", "4111 1111", "sk-proj", "AKIA", "eyJhbGci"):
        assert needle not in stored
    assert "1234567890123" in stored and "2026-11-21T10:00:00Z" in stored
    json.loads(store.sql("SELECT messages::VARCHAR FROM steps").fetchone()[0])  # still valid JSON
    assert store.sql("SELECT message FROM imports").fetchone()[0] == "redacted 7 value(s)"


def test_redaction_is_opt_in(store, tmp_path):
    res = ingest_file(store, _secret_file(tmp_path))
    assert res.n_redacted == 0
    assert "jane.doe" in store.sql("SELECT messages::VARCHAR FROM steps").fetchone()[0]


def test_redaction_config_adds_and_disables(tmp_path):
    cfg = tmp_path / "r.toml"
    cfg.write_text('disable = ["phone"]\n[[pattern]]\nname = "emp"\nregex = \'EMP-[0-9]{6}\'\n')
    names = [n for n, _ in Redactor.from_file(cfg).patterns]
    assert "phone" not in names and names[-1] == "emp"
    cfg.write_text('disable = ["nope"]\n')
    with pytest.raises(RedactionConfigError, match="nope"):
        Redactor.from_file(cfg)


def test_bad_custom_regex_fails_the_file_and_stores_nothing(store, tmp_path):
    bad = Redactor((("broken", "([a-z"),))
    res = ingest_file(store, _secret_file(tmp_path), redactor=bad)
    assert res.status == "failed" and "broken" in res.message
    assert store.sql("SELECT count(*) FROM steps").fetchone()[0] == 0


def test_cli_redact_and_progress(tmp_path):
    f = _secret_file(tmp_path)
    db = tmp_path / "x.duckdb"
    out = CliRunner().invoke(main, ["ingest", "--db", str(db), "--redact", str(f)])
    assert out.exit_code == 0, out.output
    assert "redacted 7 value(s)" in out.output
    assert "1/1 files" in out.output or "1/1 files" in (out.stderr if hasattr(out, "stderr") else "")


def test_progress_bar_reports_counts_and_eta(capsys):
    bar = ProgressBar()
    bar(0, 4, "a.json")
    bar(2, 4, "c.json")
    bar(4, 4, "done")
    err = capsys.readouterr().err.splitlines()
    assert err[1].startswith("[############------------] 2/4 files") and "eta" in err[1]
    assert "4/4 files" in err[2]


def test_summary_counts_redactions(store, tmp_path):
    summary = ingest_paths(store, [_secret_file(tmp_path)], redactor=Redactor.default())
    assert summary.totals()["redacted"] == 7
