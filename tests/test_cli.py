"""The `workbench` command as a user runs it, in subprocesses, against real files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.browser_util import served_app
from tests.otlp_builder import agent_trace, request, trace_id, write_jsonl
from workbench.testing import free_port

CLI = [sys.executable, "-m", "workbench.cli"]


def run_cli(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_ingest_then_info(tmp_path):
    f = write_jsonl(tmp_path / "t.jsonl", [request(agent_trace(trace_id(i))) for i in range(1, 4)])
    db = tmp_path / "wb.duckdb"
    out = run_cli("ingest", "--db", str(db), "--quiet", str(f))
    assert out.returncode == 0, out.stderr
    assert "3 runs" in out.stdout and "ok" in out.stdout
    info = run_cli("info", "--db", str(db))
    assert info.returncode == 0 and "runs: 3" in info.stdout and "otlp" in info.stdout


def test_db_from_environment(tmp_path):
    import os

    f = write_jsonl(tmp_path / "t.jsonl", [request(agent_trace(trace_id(1)))])
    env = dict(os.environ, WORKBENCH_DB=str(tmp_path / "env.duckdb"))
    assert run_cli("ingest", "--quiet", str(f), env=env).returncode == 0
    assert (tmp_path / "env.duckdb").exists()


def test_ingest_of_unknown_and_missing_files_reports_them(tmp_path):
    (tmp_path / "x.json").write_text('{"not": "a trace"}')
    out = run_cli("ingest", "--db", str(tmp_path / "wb.duckdb"), "--quiet", str(tmp_path / "x.json"),
                  str(tmp_path / "nope.jsonl"))
    assert out.returncode == 1
    assert "no loader recognized" in out.stdout and "no such file" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_info_on_missing_database(tmp_path):
    out = run_cli("info", "--db", str(tmp_path / "none.duckdb"))
    assert out.returncode == 2 and "does not exist" in out.stderr


@pytest.fixture
def served_db(tmp_path):
    db = tmp_path / "served.duckdb"
    f = write_jsonl(tmp_path / "seed.jsonl", [request(agent_trace(trace_id(i))) for i in range(1, 3)])
    assert run_cli("ingest", "--db", str(db), "--quiet", str(f)).returncode == 0
    port = free_port()
    with served_app(db, port):
        yield db, port


def test_ingest_while_serving_gives_a_clear_message_and_keeps_the_file(served_db, tmp_path):
    db, _port = served_db
    f = write_jsonl(tmp_path / "more.jsonl", [request(agent_trace(trace_id(9)))])
    out = run_cli("ingest", "--db", str(db), "--quiet", str(f))
    assert out.returncode == 2
    assert "in use by another workbench process" in out.stderr and "Import page" in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    info = run_cli("info", "--db", str(db))
    assert info.returncode == 2 and "in use" in info.stderr


def test_database_intact_after_server_stops(served_db):
    db, _ = served_db
    # read-only copy: the server still holds the original until the fixture ends
    copy = db.with_name("copy.duckdb")
    shutil.copy(db, copy)
    con = duckdb.connect(str(copy), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    con.close()


def test_server_binds_loopback_only(served_db):
    _, port = served_db
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("ss not available to list listening sockets")
    lines = [line for line in out.stdout.splitlines() if f":{port} " in line]
    assert lines and all("127.0.0.1:" in line for line in lines), lines


def test_demo_no_serve_builds_and_exits(tmp_path):
    out = run_cli("demo", "--db", str(tmp_path / "d.duckdb"), "--no-serve", "--runs", "120", "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "120 runs generated" in out.stdout and "0 rejects" in out.stdout
    con = duckdb.connect(str(tmp_path / "d.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 120
    con.close()


def test_console_script_installed():
    exe = Path(sys.executable).with_name("workbench")
    assert exe.exists(), "pip install -e . must install the `workbench` console script"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and all(c in out.stdout for c in ("demo", "ingest", "serve", "info"))
