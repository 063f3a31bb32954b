"""The Import page through streamlit's AppTest: upload, server path, rejects, history, hostile names."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests import browser_util as bu
from tests import otlp_builder as ob
from tests.test_pages import APP, assert_trace_text_is_inert, metrics, no_errors
from workbench.store import shared_store

PAGE = "app_pages/import_page.py"
GOOD_LINE = json.dumps(ob.request(ob.agent_trace(ob.trace_id(1))))  # one trace of 5 spans (root, 2 llm, 2 tool)
BROKEN_LINE = '{"resourceSpans": [' + bu.EVIL_SCRIPT


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A database path that does not exist yet and an import root next to it."""
    db = tmp_path / "db" / "wb.duckdb"
    root = tmp_path / "traces"
    root.mkdir()
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    monkeypatch.setenv("WORKBENCH_IMPORT_ROOTS", str(root))
    return db, root


def open_import() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGE).run()
    no_errors(at)
    return at


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="import.files").set_value([(name, data, "application/octet-stream")
                                                    for name, data in files])
    at.button(key="import.upload").click().run()
    return at


def test_page_opens_without_a_database(env):
    db, root = env
    at = open_import()
    assert at.title[0].value == "Import"
    assert any("first import creates it" in i.value for i in at.info)
    assert str(root.resolve()) in " ".join(t.value for t in at.text)
    assert not db.exists()  # looking does not create it


def test_upload_an_otlp_file_runs_appear(env):
    db, _ = env
    at = upload(open_import(), ("trace.jsonl", (GOOD_LINE + "\n").encode()))
    no_errors(at)
    got = metrics(at)
    assert (got["Files"], got["Runs"], got["Steps"], got["Rejects"]) == ("1", "1", "5", "0")
    result = at.dataframe[0].value
    assert list(result["file"]) == ["trace.jsonl"] and list(result["status"]) == ["ok"]
    assert list(result["runs"]) == [1] and list(result["steps"]) == [5]
    history = at.dataframe[1].value
    assert len(history) == 1 and history["path"].iloc[0].startswith(str(db.parent / "uploads"))
    assert shared_store(db, serving=True).sql("SELECT count(*) FROM runs").fetchone()[0] == 1
    # the runs are now on the other pages: the Overview counts them
    at.switch_page("app_pages/overview.py").run()
    no_errors(at)
    assert metrics(at)["Runs"] == "1"


def test_broken_file_shows_its_rejects_as_text(env):
    content = "\n".join([GOOD_LINE, BROKEN_LINE, "not json " + bu.EVIL_IMAGE]) + "\n"
    at = upload(open_import(), (f"{bu.EVIL_IMAGE}.jsonl", content.encode()))
    no_errors(at)
    result = at.dataframe[0].value
    assert list(result["status"]) == ["partial"] and list(result["rejects"]) == [2]
    assert result["file"].iloc[0] == "x.png_.jsonl"  # sanitized: the part after the last "/", safe letters
    rejects = at.dataframe[1].value
    assert list(rejects["location"]) == ["line 2", "line 3"]
    assert list(rejects["excerpt"]) == [BROKEN_LINE, "not json " + bu.EVIL_IMAGE]
    # history lists the import; its rejects are offered and shown again below it
    assert at.selectbox(key="import.rejects_of").value == result["import_id"].iloc[0]
    assert list(at.dataframe[-1].value["location"]) == ["line 2", "line 3"]
    assert assert_trace_text_is_inert(at) >= 2


def test_refused_upload_is_a_failed_row(env):
    at = upload(open_import(), ("evil.zip", b"PK\x03\x04 not a zip"), ("ok.jsonl", (GOOD_LINE + "\n").encode()))
    no_errors(at)
    result = at.dataframe[0].value
    assert list(result["status"]) == ["failed", "ok"]
    assert result["message"].iloc[0].startswith("evil.zip: not a readable zip archive")


def test_upload_without_files_warns(env):
    at = open_import()
    at.button(key="import.upload").click().run()
    no_errors(at)
    assert any("Choose one or more files" in w.value for w in at.warning)


def test_server_path_inside_and_outside_the_roots(env, tmp_path):
    db, root = env
    ob.write_jsonl(root / "a.jsonl", [GOOD_LINE])
    ob.write_jsonl(tmp_path / "elsewhere.jsonl", [GOOD_LINE])
    at = open_import()
    at.text_input(key="import.path").input(str(tmp_path / "elsewhere.jsonl"))
    at.button(key="import.path_go").click().run()
    assert at.error and "cannot be imported" in at.error[0].value
    assert "is outside the import folders" in at.code[0].value
    assert not at.exception
    at.text_input(key="import.path").input(str(root))
    at.button(key="import.path_go").click().run()
    no_errors(at)
    result = at.dataframe[0].value
    assert list(result["file"]) == ["a.jsonl"] and list(result["status"]) == ["ok"]
    assert metrics(at)["Runs"] == "1"


def test_format_override(env):
    at = open_import()
    assert at.selectbox(key="import.format").options[0] == "detect from the file"
    assert "otlp" in at.selectbox(key="import.format").options
    at.selectbox(key="import.format").select("otlp").run()
    # forced otlp on a file whose name no loader sniffs
    upload(at, ("export.log", (GOOD_LINE + "\n").encode()))
    no_errors(at)
    result = at.dataframe[0].value
    assert list(result["format"]) == ["otlp"] and list(result["runs"]) == [1]
