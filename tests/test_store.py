"""Schema, migrations, the one-writer rule and the serving lockdown, on real DuckDB files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from workbench.store import SCHEMA_VERSION, Store, StoreBusyError, StoreError, _migrations

STABLE = {
    "runs": {"run_id", "format", "native_id", "agent", "agent_version", "outcome", "status", "started_at",
             "cost_usd"},
    "steps": {"run_id", "step_id", "parent_step_id", "seq", "kind", "name", "tool_name"},
    "imports": {"import_id", "path", "format", "sha256", "n_runs", "n_steps", "n_rejects", "status"},
    "rejects": {"import_id", "location", "reason", "excerpt"},
}


def columns(con, table: str) -> list[tuple[str, str]]:
    return sorted(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $t",
        {"t": table}).fetchall())


def tables(con) -> list[str]:
    return sorted(r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall())


def make_v1_database(path) -> None:
    """A database exactly as schema version 1 left it, with data in it."""
    con = duckdb.connect(str(path))
    con.execute(_migrations()[0][2])
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO runs (run_id, format, native_id, agent, outcome) "
                "VALUES ('r1', 'otlp', 'abc', 'support-agent', 'failure')")
    con.execute("INSERT INTO steps (run_id, step_id, seq, kind, error) VALUES ('r1', 's1', 0, 'tool', 'boom'), "
                "('r1', 's2', 1, 'llm', NULL)")
    con.close()


def test_fresh_database_has_current_schema_and_stable_columns(tmp_path):
    with Store(tmp_path / "new.duckdb") as s:
        assert s.schema_version() == SCHEMA_VERSION
        for table, needed in STABLE.items():
            assert needed <= {c for c, _ in columns(s.con, table)}, table


def test_v1_database_migrates_forward_with_data_intact(tmp_path):
    old = tmp_path / "old.duckdb"
    make_v1_database(old)
    with Store(old) as s:
        assert s.schema_version() == SCHEMA_VERSION
        assert s.sql("SELECT agent, outcome, error FROM runs WHERE run_id = 'r1'").fetchone() == (
            "support-agent", "failure", "boom")  # migration 002 backfilled the first error
        assert s.sql("SELECT count(*) FROM steps").fetchone()[0] == 2
        with Store(tmp_path / "fresh.duckdb") as fresh:
            assert tables(s.con) == tables(fresh.con)  # every table schema.sql makes, the migrations make too
            for table in tables(fresh.con):
                assert columns(s.con, table) == columns(fresh.con, table), table


def test_newer_schema_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "future.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer than this workbench"):
        Store(path)
    assert path.read_bytes() == before


def test_foreign_duckdb_file_is_not_modified(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE accounts (id INT)")
    con.close()
    with pytest.raises(StoreError, match="refusing to modify"):
        Store(path)


def test_not_a_database_gives_a_clear_error(tmp_path):
    path = tmp_path / "junk.duckdb"
    path.write_bytes(b"this is not duckdb" * 100)
    with pytest.raises(StoreError, match="junk.duckdb"):
        Store(path)


def test_second_process_gets_a_clear_busy_error(tmp_path):
    path = tmp_path / "held.duckdb"
    Store(path).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from workbench.store import Store
        s = Store({str(path)!r})
        print("ready", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreBusyError, match="in use by another workbench process"):
            Store(path)
    finally:
        holder.communicate("", timeout=30)


def test_serving_connection_cannot_read_other_files(tmp_path):
    secret = tmp_path.parent / f"secret-{time.time_ns()}.csv"
    secret.write_text("password\nhunter2\n")
    try:
        with Store(tmp_path / "serve.duckdb", serving=True) as s:
            assert s.sql("SELECT count(*) FROM runs").fetchone()[0] == 0
            for query in (f"SELECT * FROM read_csv('{secret}')", "SELECT * FROM read_text('/etc/passwd')",
                          "SET enable_external_access = true",
                          f"COPY runs TO '{tmp_path.parent / 'leak.csv'}'"):
                with pytest.raises(duckdb.Error):
                    s.sql(query)
    finally:
        secret.unlink()


def test_transaction_rolls_back_and_bumps_version_only_on_commit(tmp_path):
    with Store(tmp_path / "t.duckdb") as s:
        v = s.data_version()
        with pytest.raises(RuntimeError):
            with s.transaction() as cur:
                cur.execute("INSERT INTO runs (run_id, format, native_id) VALUES ('x', 'otlp', 'x')")
                raise RuntimeError("stop")
        assert s.sql("SELECT count(*) FROM runs").fetchone()[0] == 0 and s.data_version() == v
        with s.transaction() as cur:
            cur.execute("INSERT INTO runs (run_id, format, native_id) VALUES ('x', 'otlp', 'x')")
        assert s.data_version() == v + 1
    with Store(tmp_path / "t.duckdb") as again:
        assert again.data_version() == v + 1
