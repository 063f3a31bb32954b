"""Server-side paths are confined to the import roots; the history and rejects of imports as DataFrames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import otlp_builder as ob
from workbench.imports import (
    PathNotAllowedError,
    check_import_path,
    import_path,
    import_rejects,
    imports_table,
)
from workbench.ingest import ingest_paths
from workbench.store import Store, import_roots


def write_trace(path: Path, i: int, *, broken_line: bool = False) -> Path:
    # one agent trace of 5 spans (root, 2 llm, 2 tool: otlp_builder.agent_trace); optionally a bad line 2
    path.parent.mkdir(parents=True, exist_ok=True)
    records: list = [ob.request(ob.agent_trace(ob.trace_id(i)))]
    if broken_line:
        records.append('{"resourceSpans": [oops')
    return ob.write_jsonl(path, records)


@pytest.fixture
def layout(tmp_path):
    """<tmp>/db/wb.duckdb, an import root <tmp>/root with a trace, and <tmp>/outside with another."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_trace(root / "in.jsonl", 1)
    write_trace(outside / "secret.jsonl", 2)
    store = Store(tmp_path / "db" / "wb.duckdb", serving=True, read_roots=[root])
    yield store, [root.resolve()], tmp_path
    store.close()


def n_runs(store: Store) -> int:
    return store.sql("SELECT count(*) FROM runs").fetchone()[0]


def test_roots_default_and_from_env(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_IMPORT_ROOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert import_roots(tmp_path / "db" / "x.duckdb") == [(tmp_path / "db").resolve(), (tmp_path / "data")]
    monkeypatch.setenv("WORKBENCH_IMPORT_ROOTS", os.pathsep.join(["/srv/traces", "", "rel", "/srv/traces"]))
    assert import_roots(tmp_path / "db" / "x.duckdb") == [Path("/srv/traces"), tmp_path / "rel"]


def test_path_inside_a_root_is_ingested(layout):
    store, roots, tmp = layout
    report = import_path(store, str(tmp / "root"), roots=roots)
    frame = report.frame()
    assert list(frame["file"]) == ["in.jsonl"] and list(frame["status"]) == ["ok"]
    assert n_runs(store) == 1


@pytest.mark.parametrize("typed", ["outside/secret.jsonl", "root/../outside/secret.jsonl", "outside",
                                   "/etc/passwd", "root/../outside/*.jsonl", "/etc/*", "~"])
def test_path_outside_the_roots_is_refused(layout, typed):
    store, roots, tmp = layout
    with pytest.raises(PathNotAllowedError, match="is outside the import folders"):
        import_path(store, typed, roots=roots, cwd=tmp)
    assert n_runs(store) == 0
    assert imports_table(store).empty


def test_symlink_out_of_a_root_is_refused(layout):
    store, roots, tmp = layout
    (tmp / "root" / "link.jsonl").symlink_to(tmp / "outside" / "secret.jsonl")
    (tmp / "root" / "linkdir").symlink_to(tmp / "outside", target_is_directory=True)
    # the link itself, named directly, resolves outside
    with pytest.raises(PathNotAllowedError):
        import_path(store, "root/link.jsonl", roots=roots, cwd=tmp)
    # found inside a folder scan or a glob: that file is refused, the real one inside still loads
    frame = import_path(store, "root", roots=roots, cwd=tmp).frame().sort_values("file")
    assert list(frame["status"]) == ["ok", "failed"]
    assert frame["message"].iloc[1].startswith("leads outside the import folders")
    globbed = import_path(store, "root/*", roots=roots, cwd=tmp).frame()
    assert set(globbed["status"]) == {"skipped", "failed"}  # in.jsonl already imported; the links refused
    assert n_runs(store) == 1


def test_empty_missing_and_no_traces(layout):
    store, roots, tmp = layout
    with pytest.raises(PathNotAllowedError, match="Type a file or folder path"):
        import_path(store, "  ", roots=roots, cwd=tmp)
    missing = import_path(store, "root/nope.jsonl", roots=roots, cwd=tmp).frame()
    assert list(missing["message"]) == ["no such file or folder"]
    (tmp / "root" / "empty").mkdir()
    empty = import_path(store, "root/empty", roots=roots, cwd=tmp).frame()
    assert empty["message"].iloc[0].startswith("no trace files (")


def test_serving_connection_reads_only_its_folders(layout):
    # defence in depth: even past the path check, the serving connection cannot read outside its folders
    store, _, tmp = layout
    summary = ingest_paths(store, [tmp / "outside" / "secret.jsonl", tmp / "root" / "in.jsonl"])
    assert [r.status for r in summary.results] == ["failed", "ok"]
    assert "Permission Error" in summary.results[0].message


def test_check_import_path_resolves(tmp_path):
    roots = [tmp_path.resolve()]
    assert check_import_path("a/../b.json", roots, cwd=tmp_path) == tmp_path.resolve() / "b.json"
    with pytest.raises(PathNotAllowedError):
        check_import_path("a/../../b.json", roots, cwd=tmp_path)
    with pytest.raises(PathNotAllowedError, match="NUL"):
        check_import_path("a\x00b", roots, cwd=tmp_path)


def test_history_and_rejects(layout):
    store, roots, tmp = layout
    write_trace(tmp / "root" / "broken.jsonl", 3, broken_line=True)
    report = import_path(store, "root", roots=roots, cwd=tmp).frame().set_index("file")
    assert report.loc["broken.jsonl", "status"] == "partial" and report.loc["broken.jsonl", "rejects"] == 1
    history = imports_table(store)
    assert len(history) == 2 and set(history["status"]) == {"ok", "partial"}
    assert list(history.columns) == ["import_id", "path", "format", "status", "runs", "steps", "rejects",
                                     "size_bytes", "started_at", "finished_at", "seconds", "message"]
    rejects = import_rejects(store, report.loc["broken.jsonl", "import_id"])
    assert list(rejects["location"]) == ["line 2"]
    assert rejects["excerpt"].iloc[0] == '{"resourceSpans": [oops'
    assert rejects["reason"].iloc[0].startswith("invalid JSON")
    assert import_rejects(store, "no-such-import").empty


def test_rejects_in_line_order(store, tmp_path):
    # line 10 after line 9, not after line 1 (a plain text sort would put it second)
    lines = [json.dumps(ob.request(ob.agent_trace(ob.trace_id(1))))] + ["{bad"] * 11
    ob.write_jsonl(tmp_path / "many.jsonl", lines)
    result = ingest_paths(store, [tmp_path / "many.jsonl"]).results[0]
    assert list(import_rejects(store, result.import_id)["location"]) == [f"line {i}" for i in range(2, 13)]
