"""Dataset exports compared byte for byte with golden files.

The fixture store is a fixed 6-run demo fleet (seed 11) with one reviewer label. To regenerate the golden files
after an intended change: `WORKBENCH_REGEN_GOLDEN=1 pytest tests/test_datasets_export.py`, then review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.demo import generate_fleet
from workbench.exporters.datasets import FORMATS, SUFFIX, export_dataset
from workbench.ingest import ingest_paths
from workbench.labels import add_label
from workbench.store import Store

GOLDEN = Path(__file__).resolve().parent / "golden"
N_RUNS = 6  # generate_fleet(n_runs=6) writes exactly six traces


@pytest.fixture(scope="module")
def small_db(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("ds")
    generate_fleet(base / "traces", seed=11, n_runs=N_RUNS)
    db = base / "wb.duckdb"
    with Store(db) as s:
        ingest_paths(s, [base / "traces"])
        first = s.sql("SELECT min(run_id) FROM runs").fetchone()[0]
        add_label(s, first, "control.loop", "maria.k")
    return db


@pytest.mark.parametrize("fmt", FORMATS)
def test_golden(small_db, fmt, tmp_path):
    golden = GOLDEN / f"dataset-{fmt}{SUFFIX[fmt]}"
    with Store(small_db, read_only=True) as s:
        path, n = export_dataset(s, fmt, tmp_path / golden.name)
    assert n == N_RUNS
    if os.environ.get("WORKBENCH_REGEN_GOLDEN"):
        golden.write_bytes(path.read_bytes())
    assert path.read_bytes() == golden.read_bytes()


def test_fields_each_tool_reads(small_db, tmp_path):
    with Store(small_db, read_only=True) as s:
        runs = dict(s.sql("SELECT run_id, native_id FROM runs").fetchall())
        outcomes = dict(s.sql("SELECT run_id, outcome FROM runs").fetchall())
        for fmt in FORMATS:
            export_dataset(s, fmt, tmp_path / f"d{SUFFIX[fmt]}")
            if fmt == "promptfoo":
                continue
            items = [json.loads(line) for line in (tmp_path / f"d{SUFFIX[fmt]}").read_text().splitlines()]
            assert len(items) == N_RUNS
            for it in items:
                rid = it["metadata"]["run_id"]
                assert it["metadata"]["native_id"] == runs[rid]
                if fmt == "langfuse":
                    assert it["sourceTraceId"] == runs[rid]  # links the item back to the Langfuse trace
                msgs = it["input"]["messages"] if fmt == "langfuse" else it["input"]
                assert msgs[-1]["role"] == "user" and msgs[-1]["content"]
                target = it.get("target", it.get("ideal", it.get("expectedOutput")))
                assert bool(target) == (outcomes[rid] == "success")
    text = (tmp_path / "d.yaml").read_text()
    assert text.count("\n- description: ") == N_RUNS and "\n  vars:\n    input: " in text
    assert '"labels": ["control.loop"]' in text


def test_promptfoo_scalars_are_json(small_db, tmp_path):
    """Without PyYAML: every value is a JSON scalar or object (valid YAML flow style), keys at fixed indents."""
    with Store(small_db, read_only=True) as s:
        path, _ = export_dataset(s, "promptfoo", tmp_path / "t.yaml")
    n_values = 0
    for line in path.read_text().splitlines()[1:]:
        key, _, value = line.lstrip("- ").partition(": ")
        assert key.strip() in {"description", "vars", "vars:", "input", "messages", "task_id", "assert:",
                               "type", "value", "metadata"}, line
        if value and key.strip() != "type":
            json.loads(value)
            n_values += 1
    assert n_values >= 5 * N_RUNS  # description, input, messages, task_id, metadata per test


def test_cli_dataset(small_db, tmp_path):
    res = CliRunner().invoke(main, ["export", "dataset", "--db", str(small_db), "--format", "langfuse",
                                    "--out", str(tmp_path / "x.jsonl"), "--agent", "support-agent"])
    assert res.exit_code == 0, res.output
    with Store(small_db, read_only=True) as s:
        n = s.sql("SELECT count(*) FROM runs WHERE agent = 'support-agent'").fetchone()[0]
    assert f"{n} item(s) written" in res.output
    assert len((tmp_path / "x.jsonl").read_text().splitlines()) == n
