"""Regression suites: labeled failures -> cases -> `workbench check` on the next version's traces.

A small demo fleet (seed 7, 600 runs) is built once for the module; its generated OTLP files are split by agent
version (the resource attribute service.version), so version 1's and version 2's traces can be checked apart.
Ground truth comes from the generator (`DemoTruth.failure_mode`, also stored in runs.attributes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.demo import generate_fleet
from workbench.exporters.check import SuiteError, check_traces, load_suite, write_junit
from workbench.exporters.suite import CASES_FILE, TEST_FILE, build_case, export_suite, note_checks
from workbench.ingest import ingest_paths
from workbench.labels import add_label, bulk_label
from workbench.store import Store

ROOT = Path(__file__).resolve().parent.parent
MODE, CODE = "tool_loop", "control.loop"


def _version_of(line: str) -> str:
    attrs = json.loads(line)["resourceSpans"][0]["resource"]["attributes"]
    return next(a["value"]["stringValue"] for a in attrs if a["key"] == "service.version")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """(db path, {version: trace folder}, ground truth by trace id) for a 600-run demo fleet."""
    base = tmp_path_factory.mktemp("fleet")
    raw = base / "raw"
    truth = {t.trace_id: t for t in generate_fleet(raw, seed=7, n_runs=600)}
    folders = {v: base / v for v in ("v1", "v2")}
    outs = {}
    for v, folder in folders.items():
        folder.mkdir()
        outs[v] = (folder / "traces.jsonl").open("w", encoding="utf-8")
    for f in sorted(raw.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            outs[_version_of(line)].write(line + "\n")
    for fh in outs.values():
        fh.close()
    db = base / "demo.duckdb"
    with Store(db) as s:
        ingest_paths(s, [raw])
    return db, folders, truth


def _mode_runs(store: Store, version: str, mode: str) -> list[str]:
    return [r[0] for r in store.sql(
        "SELECT run_id FROM runs WHERE agent_version = $v "
        "AND json_extract_string(attributes, '$.\"workbench.demo.failure_mode\"') = $m ORDER BY run_id",
        {"v": version, "m": mode}).fetchall()]


@pytest.fixture(scope="module")
def loop_suite(fleet, tmp_path_factory):
    """Every v1 run of the injected tool_loop mode labeled control.loop, exported as a suite."""
    db, _, _ = fleet
    with Store(db) as s:
        labeled = _mode_runs(s, "v1", MODE)
        bulk_label(s, labeled, CODE, "maria.k", note="loops on the same lookup")
        done = export_suite(s, tmp_path_factory.mktemp("suite"), codes=[CODE])
    return done, labeled


def _native_mode(fleet, store_db: Path, run_ids) -> dict[str, str | None]:
    _, _, truth = fleet
    with Store(store_db) as s:
        native = dict(s.sql("SELECT run_id, native_id FROM runs").fetchall())
    return {r: truth[native[r]].failure_mode for r in run_ids}


def test_export_writes_one_case_per_labeled_run(fleet, loop_suite):
    done, labeled = loop_suite
    _, _, truth = fleet
    # the generator's ground truth says how many v1 runs loop (the deck deals 8% / 5% of each 200 runs)
    expected = sum(1 for t in truth.values() if t.agent_version == "v1" and t.failure_mode == MODE)
    assert expected == len(labeled) > 10
    assert len(done.cases) == expected and done.skipped == []
    lines = (done.path / CASES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == expected
    case = json.loads(lines[0])
    assert case["checks"] == [{"id": "no_loops", "title": "from label control.loop", "check": "no_loops",
                               "args": {"max_identical": 3}}]
    assert case["labels"] == [CODE] and case["reviewers"] == ["maria.k"]
    assert case["notes"] == ["loops on the same lookup"]
    assert case["source"]["run_id"] in labeled and case["task_id"]
    assert case["input_messages"][0]["role"] == "system" and case["input_messages"][-1]["role"] == "user"
    assert case["input_messages"][-1]["content"] == case["input"]
    assert case["rubric"]["name"] == "regression" and len(case["rubric"]["version"]) == 12
    assert (done.path / TEST_FILE).is_file()


def test_flywheel_v1_fails_v2_only_where_the_mode_remains(fleet, loop_suite):
    """The loop closes: v1's traces fail every case; on v2's traces (tool_loop 8% -> 1.5% for support)
    most cases pass, and every run that still fails a case truly loops (ground truth).
    Measured (seed 7, 600 runs): 18 cases; v1 18 fail; v2 16 pass, 1 fail (its one run is a true tool_loop
    run), 1 without a matching run."""
    db, folders, truth = fleet
    done, labeled = loop_suite
    cases = load_suite(done.path)
    v1, _ = check_traces(cases, [folders["v1"]])
    assert [r.status for r in v1] == ["fail"] * len(cases)
    failing_v1 = {run for r in v1 for run in r.failures}
    assert _native_mode(fleet, db, failing_v1) == {r: MODE for r in failing_v1}
    assert failing_v1 == set(labeled)  # each labeled run is caught again, and no other v1 run

    v2, _ = check_traces(cases, [folders["v2"]])
    statuses = [r.status for r in v2]
    assert statuses.count("pass") > statuses.count("fail") > 0, statuses
    failing_v2 = {run for r in v2 for run in r.failures}
    assert set(_native_mode(fleet, db, failing_v2).values()) == {MODE}
    for r in v2:
        for fails in r.failures.values():
            assert all(f.startswith("no_loops:") and "identical arguments" in f for f in fails)


def test_cli_export_and_check_with_junit(fleet, loop_suite, tmp_path):
    db, folders, _ = fleet
    out = tmp_path / "suite"
    res = CliRunner().invoke(main, ["export", "suite", "--db", str(db), "--out", str(out), "--label", CODE,
                                    "--agent-version", "v1"])
    assert res.exit_code == 0, res.output
    n = len(loop_suite[0].cases)
    assert f"{n} case(s) written" in res.output
    junit = tmp_path / "v1.xml"
    res = CliRunner().invoke(main, ["check", str(out), str(folders["v1"]), "--junit", str(junit)])
    assert res.exit_code == 1, res.output
    assert f"0 passed, {n} failed" in res.output
    root = ET.parse(junit).getroot()
    assert root.get("tests") == str(n) and root.get("failures") == str(n)
    assert len(root.findall("testcase/failure")) == n


def test_check_passes_exit_zero_and_skips_unmatched(loop_suite, fleet, tmp_path):
    """A case whose runs pass gives exit 0; a case with no matching run is skipped, not failed."""
    _, folders, _ = fleet
    cases = load_suite(loop_suite[0].path)
    v2, _ = check_traces(cases, [folders["v2"]])
    passing = [c for c, r in zip(cases, v2, strict=True) if r.status == "pass"]
    nowhere = dict(passing[0], id="case-nowhere", task_id="support.none.99")
    suite = tmp_path / "s"
    suite.mkdir()
    (suite / CASES_FILE).write_text("\n".join(json.dumps(c) for c in [*passing[:3], nowhere]) + "\n")
    junit = tmp_path / "j.xml"
    res = CliRunner().invoke(main, ["check", str(suite), str(folders["v2"]), "--junit", str(junit)])
    assert res.exit_code == 0, res.output
    assert "3 passed, 0 failed, 1 without a matching run" in res.output
    root = ET.parse(junit).getroot()
    assert root.get("skipped") == "1" and root.get("failures") == "0"


def test_bad_suite_is_a_clear_message(tmp_path):
    (tmp_path / CASES_FILE).write_text('{"id": "a", "checks": [{"id": "x", "check": "nope"}]}\n')
    with pytest.raises(SuiteError, match=r"cases.jsonl:1 \(case a\).*unknown check 'nope'"):
        load_suite(tmp_path)
    res = CliRunner().invoke(main, ["check", str(tmp_path), str(tmp_path)])
    assert res.exit_code == 2 and "unknown check 'nope'" in res.output and "Traceback" not in res.output


def test_labels_and_notes_become_checks(fleet, tmp_path):
    """Step-level wrong_tool names the tool; a note adds checks; env.simulator alone gives no case."""
    db, _, _ = fleet
    assert note_checks('must call lookup_order\nmust not say "within 24 hours"\nmust not call x.y') == [
        {"check": "tool_not_called", "args": {"tool": "x.y"}},
        {"check": "tool_called", "args": {"tool": "lookup_order"}},
        {"check": "output_not_matches", "args": {"pattern": "(?i)within\\ 24\\ hours"}}]
    with Store(db) as s:
        run_id, step_id, tool = s.sql("SELECT run_id, step_id, tool_name FROM steps WHERE tool_name = "
                                      "'escalate_to_human' ORDER BY run_id LIMIT 1").fetchone()
        cost_run = _mode_runs(s, "v1", "cost_blowup")[0]
        labels = [{"code": "tool.wrong_tool", "step_id": step_id, "reviewer": "tom.b",
                   "note": "must call refund_order"}]
        case, _ = build_case(s, run_id, labels)
        assert [(c["check"], c["args"].get("tool")) for c in case["checks"]] == [
            ("tool_not_called", [tool]), ("tool_called", ["refund_order"])]
        none, why = build_case(s, run_id, [{"code": "env.simulator", "reviewer": "tom.b", "note": None}])
        assert none is None and "no checkable expectation" in why
        blow, _ = build_case(s, cost_run, [{"code": "ops.cost_blowup", "reviewer": "tom.b", "note": None}])
        own = s.sql("SELECT cost_usd FROM runs WHERE run_id = $r", {"r": cost_run}).fetchone()[0]
        limit = blow["checks"][0]["args"]
        assert limit["metric"] == "cost_usd" and 0 < limit["max"] < own  # the labeled run breaks its budget


def _pytest(suite: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite / TEST_FILE)],
                          capture_output=True, text=True, env=full, cwd=suite, timeout=300)


def test_generated_pytest_module_against_traces(loop_suite, fleet, tmp_path):
    """Adapter path (b) through pytest: WORKBENCH_TRACES=v1 fails every case."""
    _, folders, _ = fleet
    n = len(loop_suite[0].cases)
    proc = _pytest(loop_suite[0].path, {"WORKBENCH_TRACES": str(folders["v1"])})
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert f"{n} failed" in proc.stdout


def test_generated_pytest_module_with_an_agent_adapter(fleet, tmp_path):
    """Adapter path (a): a user callable case -> trace file. An adapter replaying a looping run fails the case;
    one replaying a clean run of the same task passes it."""
    db, folders, truth = fleet
    with Store(db) as s:
        looping = _mode_runs(s, "v1", MODE)[0]
        task, native = s.sql("SELECT task_id, native_id FROM runs WHERE run_id = $r", {"r": looping}).fetchone()
        add_label(s, looping, CODE, "aylin.d")
        done = export_suite(s, tmp_path / "suite", run_ids=[looping])
        clean = next(r for r in s.sql("SELECT native_id FROM runs WHERE task_id = $t", {"t": task}).fetchall()
                     if truth[r[0]].failure_mode is None)[0]
    assert len(done.cases) == 1
    lines = {_native(line): line for v in ("v1", "v2") for line in
             (folders[v] / "traces.jsonl").read_text(encoding="utf-8").splitlines()}
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for name, trace in (("loops", native), ("clean", clean)):
        (adapter / f"{name}.jsonl").write_text(lines[trace] + "\n", encoding="utf-8")
    (adapter / "my_agent.py").write_text(
        "import os\nfrom pathlib import Path\n\n"
        "def run(case):\n"
        "    assert case['input_messages'][-1]['role'] == 'user'\n"
        "    return Path(__file__).parent / (os.environ['WHICH'] + '.jsonl')\n", encoding="utf-8")
    env = {"WORKBENCH_AGENT": "my_agent:run", "PYTHONPATH": str(adapter)}
    bad = _pytest(done.path, {**env, "WHICH": "loops"})
    assert bad.returncode == 1 and "1 failed" in bad.stdout, bad.stdout[-2000:]
    assert "identical arguments" in bad.stdout
    good = _pytest(done.path, {**env, "WHICH": "clean"})
    assert good.returncode == 0 and "1 passed" in good.stdout, good.stdout[-2000:]


def _native(line: str) -> str:
    spans = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    return spans[0]["traceId"].lower()


def test_junit_escapes_text(tmp_path):
    from workbench.exporters.check import CaseResult

    path = write_junit([CaseResult("c<1>", "fail", ["r"], {"r": ['x: "a" & <b>']})], tmp_path / "j.xml")
    root = ET.parse(path).getroot()
    assert root.find("testcase").get("name") == "c<1>"
    assert 'x: "a" & <b>' in root.find("testcase/failure").text
