"""`workbench ingest ../shared/data/real --db X`: every real folder in one command, through the console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ARTIFACTS

pytestmark = pytest.mark.real_data

# per format: runs, steps, success, failure. Each figure is asserted with its source in the loader's own test
# (tests/test_loader_<format>.py); here they must all hold at once, side by side in one store.
EXPECTED = {
    "agentops": (1, 7, 0, 0),
    "inspect": (15, 26, 11, 4),
    "langfuse": (19, 135, 1, 1),          # 20 exports, two hold the same trace (see test_loader_langfuse)
    "langsmith": (8, 21, 0, 0),           # the split infinite-loop trace (14 steps) + 7 SDK payloads
    "openhands": (4, 40, 0, 0),
    "otlp": (1, 1, 0, 0),                 # the spec's trace.json; logs.json and events.json hold no spans
    "swe-agent": (7, 121, 0, 0),
    "tau-bench": (200, 5308, 84, 116),
    "who-and-when": (58, 2993, 0, 58),
}


def test_everything_loads_in_one_command(real_dir, tmp_path):
    exe = shutil.which("workbench", path=str(Path(sys.executable).parent))
    assert exe, "the workbench console script is not installed next to this interpreter"
    db = tmp_path / "all.duckdb"
    proc = subprocess.run([exe, "ingest", str(real_dir), "--db", str(db), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    assert "failed " not in out  # no file failed; the rejected ones say why
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = {f: tuple(int(x) for x in rest) for f, *rest in con.execute(
            "SELECT format, count(*), sum(n_steps), count(*) FILTER (outcome = 'success'), "
            "count(*) FILTER (outcome = 'failure') FROM runs GROUP BY 1").fetchall()}
        assert got == EXPECTED
        # every reject has a reason and a location; every import that is not ok says why
        assert con.execute("SELECT count(*) FROM rejects WHERE coalesce(reason, '') = '' OR coalesce(location, '') = ''"
                       ).fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM imports WHERE status NOT IN ('ok', 'rejected')").fetchone()[0] == 0
        # each run carries the name of the loader that detected its file (runs.format = imports.format)
        assert con.execute("SELECT count(*) FROM runs r JOIN imports i USING (import_id) "
                           "WHERE r.format IS DISTINCT FROM i.format").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM runs WHERE import_id NOT IN (SELECT import_id FROM imports)"
                           ).fetchone()[0] == 0
        assert con.execute("SELECT count(*), count(DISTINCT run_id) FROM label_events WHERE reviewer = 'imported'"
                       ).fetchone() == (58, 58)
    finally:
        con.close()
    # the summary line names every format with its seconds
    last = proc.stdout.strip().splitlines()[-1]
    assert all(f in last for f in EXPECTED), last

    # The maturity scorecard of what others' real files show, through the console script, kept as an artifact.
    out_dir = ARTIFACTS / "maturity-real"
    proc = subprocess.run([exe, "maturity", "--db", str(db), "--out", str(out_dir), "--no-save"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    card = json.loads((out_dir / "scorecard.json").read_text())
    assert sorted(card["scope"]["formats"]) == sorted(EXPECTED)
    evidence = {e["name"]: e["value"] for e in card["evidence"]}
    assert evidence["runs"] == sum(v[0] for v in EXPECTED.values())
    # no questionnaire answers: the two questionnaire dimensions have no evidence and stay at level 1
    levels = {d["key"]: (d["level"], d["evidence"]) for d in card["results"]}
    assert len(levels) == 8 and all(1 <= lvl <= 5 for lvl, _ in levels.values())
    assert levels["developer_experience"] == (1, "no evidence") and levels["organizational_enablement"] == (1, "no evidence")
    assert card["actions"], "a store this young must get a remediation list"
