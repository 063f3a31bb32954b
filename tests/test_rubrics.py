"""Rubric files (validation, clear errors, versions) and the scoring engine (selection, not-applicable rows,
re-scoring, versions keeping their scores, human scores, verdicts, pass rates, failing runs, agreement)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from tests import rubric_fixture as fx
from workbench.queries import RunFilter
from workbench.rubric_results import agreement, failing_runs, pass_rates, verdicts
from workbench.rubrics import (
    Rubric,
    RubricError,
    load_rubric,
    parse_rubric,
    record_human_score,
    rubric_versions,
    stored_rubric,
    to_toml,
    yaml,
)
from workbench.scoring import score_runs
from workbench.store import Store

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
name = "small"
pass_threshold = 0.75

[[criteria]]
id = "success"
check = "outcome"
weight = 2

[[criteria]]
id = "loops"
check = "no_loops"
args = { max_identical = 3 }
required = true

[[criteria]]
id = "promises"
check = "output_not_matches"
args = { pattern = "24 hours" }

[[criteria]]
id = "refund_gate"
check = "guardrail_before"
args = { tool = "refund_order" }
weight = 0.5
when = { agent = "support", task_matches = "task-(0|2)$" }

[[criteria]]
id = "tone"
kind = "human"
scale = "1-5"
"""


@pytest.fixture
def fstore(tmp_path):
    with Store(fx.build(tmp_path / "f.duckdb")) as s:
        yield s


# -- files --------------------------------------------------------------------------------------------------
def test_bundled_rubrics_load():
    for path in sorted((ROOT / "data" / "rubrics").glob("*.toml")):
        rubric = load_rubric(path)
        assert rubric.criteria and len(rubric.version) == 12


def test_version_follows_content_not_layout():
    base = parse_rubric(SMALL)
    assert parse_rubric("# a comment\n" + SMALL.replace("weight = 2", "weight   =   2.0")).version == base.version
    # defaults spelled out make no difference either: max_identical = 3 is the default
    assert parse_rubric(SMALL.replace("args = { max_identical = 3 }", "")).version == base.version
    assert parse_rubric(SMALL.replace("0.75", "0.8")).version != base.version
    assert parse_rubric(SMALL.replace("24 hours", "48 hours")).version != base.version


@pytest.mark.parametrize(("text", "where", "why"), [
    ("name = 'x'\n[[criteria]\n", "rubric", "not valid TOML"),
    ("name = 'x'\ncriteria = []", "rubric: criteria", "at least 1 item"),
    ("name = 'x'\n[[criteria]]\nid = 'a'\ncheck = 'nope'", "rubric: criteria[0] (id 'a')", "unknown check 'nope'"),
    ("name = 'x'\n[[criteria]]\nid = 'a'\ncheck = 'no_loops'\nargs = { max_identical = 'three' }",
     "rubric: criteria[0] (id 'a')", "args.max_identical: Input should be a valid integer"),
    ("name = 'x'\n[[criteria]]\nid = 'a'\ncheck = 'no_loops'\nargs = { max = 3 }",
     "rubric: criteria[0] (id 'a')", "args.max: Extra inputs are not permitted"),
    ("name = 'x'\n[[criteria]]\nid = 'a'\ncheck = 'output_matches'\nargs = { pattern = '(?=x)' }",
     "rubric: criteria[0] (id 'a')", "invalid regular expression '(?=x)'"),
    ("name = 'x'\n[[criteria]]\nid = 'a'\ncheck = 'outcome'\n[[criteria]]\nid = 'a'\ncheck = 'outcome'",
     "rubric: criteria", "criterion id 'a' is used twice"),
    ("name = 'x'\n[[criteria]]\nid = 'a'\nkind = 'judge'", "rubric: criteria[0] (id 'a')", "needs a `prompt`"),
    ("name = 'x'\n[[criteria]]\nid = 'a'\ncheck = 'outcome'\nwhen = { task_matches = '(' }",
     "rubric: criteria[0] (id 'a').when.task_matches", "invalid regular expression"),
])
def test_invalid_rubrics_say_where_and_why(text, where, why):
    with pytest.raises(RubricError) as err:
        parse_rubric(text)
    assert err.value.location == where
    assert why in err.value.reason


def test_to_toml_round_trips():
    for path in sorted((ROOT / "data" / "rubrics").glob("*.toml")):
        rubric = load_rubric(path)
        again = parse_rubric(to_toml(rubric))
        assert again == rubric and again.version == rubric.version


def test_score_command(tmp_path):
    from click.testing import CliRunner

    from workbench.cli import main

    path = fx.build(tmp_path / "cli.duckdb")
    rubric = tmp_path / "small.toml"
    rubric.write_text(SMALL)
    result = CliRunner().invoke(main, ["score", "--db", str(path), "--agent", "coder", str(rubric)])
    assert result.exit_code == 0, result.output
    assert "small @ " in result.output and "4 runs scored" in result.output and "loops" in result.output
    rubric.write_text(SMALL.replace("no_loops", "no_such_check"))
    bad = CliRunner().invoke(main, ["score", "--db", str(path), str(rubric)])
    assert bad.exit_code == 2 and "unknown check 'no_such_check'" in bad.output


def test_missing_file_and_yaml(tmp_path):
    with pytest.raises(RubricError, match="cannot read the file"):
        load_rubric(tmp_path / "none.toml")
    text = "name: y\ncriteria:\n  - id: a\n    check: outcome\n"
    if yaml is None:  # PyYAML is optional; without it the message says what to install
        with pytest.raises(RubricError, match="PyYAML"):
            parse_rubric(text, "yaml")
    else:
        assert parse_rubric(text, "yaml").criteria[0].check == "outcome"


# -- engine -------------------------------------------------------------------------------------------------
def test_scoring_stores_every_selected_run_and_marks_not_applicable(fstore):
    rubric = parse_rubric(SMALL)
    report = score_runs(fstore, rubric)
    assert report.n_runs == len(fx.RUNS) and report.not_scored == ["tone"]
    rows = fstore.df("SELECT criterion, count(*) AS n, count(passed) AS decided FROM scores GROUP BY 1")
    got = dict(zip(rows["criterion"], zip(rows["n"], rows["decided"], strict=True), strict=True))
    # refund_gate applies to support runs with task-0 (r_ok) or task-2 (r_retry) only; outcome is unknown for r_empty
    assert got == {"success": (11, 10), "loops": (11, 11), "promises": (11, 11), "refund_gate": (11, 2)}
    gate = fstore.df("SELECT run_id, passed, evidence FROM scores WHERE criterion = 'refund_gate' "
                     "AND passed IS NOT NULL ORDER BY run_id")
    assert list(gate["run_id"]) == ["r_ok", "r_retry"] and list(gate["passed"]) == [True, False]
    summary = report.summary.set_index("criterion")
    assert summary.loc["loops", "failed"] == 1 and summary.loc["refund_gate", "applicable"] == 2


def test_rescoring_replaces_and_selection_limits(fstore):
    rubric = parse_rubric(SMALL)
    score_runs(fstore, rubric, RunFilter(agent="coder"))
    # the fixture's coder runs: r_unhandled, r_human, r_no_human, r_rejected
    assert fstore.sql("SELECT count(DISTINCT run_id) FROM scores").fetchone()[0] == 4
    score_runs(fstore, rubric, run_ids=["r_ok", "r_loop"])
    score_runs(fstore, rubric, run_ids=["r_ok", "r_loop"])
    assert fstore.sql("SELECT count(*) FROM scores").fetchone()[0] == (4 + 2) * 4  # no duplicates


def test_a_changed_rubric_is_a_new_version_and_old_scores_keep_theirs(fstore):
    old = parse_rubric(SMALL)
    score_runs(fstore, old)
    before = fstore.df("SELECT * EXCLUDE (scored_at) FROM scores ORDER BY ALL")
    new = parse_rubric(SMALL.replace("max_identical = 3", "max_identical = 5"))
    score_runs(fstore, new)
    assert new.version != old.version
    assert set(rubric_versions(fstore, "small")["version"]) == {old.version, new.version}
    after_old = fstore.df("SELECT * EXCLUDE (scored_at) FROM scores WHERE version = $v ORDER BY ALL",
                          {"v": old.version})
    pd.testing.assert_frame_equal(before, after_old)
    loops = fstore.df("SELECT version, passed FROM scores WHERE criterion = 'loops' AND run_id = 'r_loop'")
    assert dict(zip(loops["version"], loops["passed"], strict=True)) == {old.version: False, new.version: True}
    assert stored_rubric(fstore, "small", old.version) == old


def test_verdicts_weigh_applicable_criteria_and_required_ones(fstore):
    rubric = parse_rubric(SMALL)
    score_runs(fstore, rubric)
    v = verdicts(fstore, rubric).set_index("run_id")
    # weights: success 2, loops 1 (required), promises 1, refund_gate 0.5 (r_ok and r_retry only); threshold 0.75
    assert v.loc["r_ok", "total"] == 1.0 and v.loc["r_ok", "verdict"] == "pass"
    assert v.loc["r_loop", "total"] == pytest.approx(1 / 4) and v.loc["r_loop", "required_failed"]
    assert v.loc["r_retry", "total"] == pytest.approx(4 / 4.5) and v.loc["r_retry", "verdict"] == "pass"
    assert v.loc["r_unhandled", "total"] == pytest.approx(2 / 4) and v.loc["r_unhandled", "verdict"] == "fail"
    assert list(v.loc["r_blocked", "failed"]) == ["success", "promises"]
    assert v.loc["r_empty", "total"] == 1.0 and v.loc["r_empty", "applicable"] == 2  # outcome unknown: left out
    assert (v["unscored"] == 1).all()  # the human criterion nobody scored yet


def test_human_scores_per_reviewer(fstore):
    rubric = parse_rubric(SMALL)
    score_runs(fstore, rubric)
    record_human_score(fstore, rubric, "r_ok", "tone", "alice", 5)
    record_human_score(fstore, rubric, "r_ok", "tone", "bob", 2)
    v = verdicts(fstore, rubric).set_index("run_id")
    assert v.loc["r_ok", "total"] == 1.0 and v.loc["r_ok", "unscored"] == 0  # 1 of 2 reviewers passes: passed
    record_human_score(fstore, rubric, "r_ok", "tone", "carol", 1)
    record_human_score(fstore, rubric, "r_ok", "tone", "alice", 3)  # alice changes her mind: replaced
    assert fstore.sql("SELECT count(*) FROM scores WHERE criterion = 'tone'").fetchone()[0] == 3
    v = verdicts(fstore, rubric).set_index("run_id")
    # no reviewer passes it now: tone fails, but it is not required and 4.5 of 5.5 weight is above 0.75
    assert list(v.loc["r_ok", "failed"]) == ["tone"] and v.loc["r_ok", "total"] == pytest.approx(4.5 / 5.5)
    assert v.loc["r_ok", "verdict"] == "pass"
    for args, msg in [(("r_ok", "loops", "alice", 1), "only human criteria"), (("r_ok", "tone", "alice", 7), "scale"),
                      (("nope", "tone", "alice", 4), "no run 'nope'"), (("r_ok", "tone", " ", 4), "reviewer")]:
        with pytest.raises(RubricError, match=msg):
            record_human_score(fstore, rubric, *args)


def test_pass_rates_failing_runs_and_agreement(fstore):
    rubric = parse_rubric(SMALL)
    score_runs(fstore, rubric)
    rates = pass_rates(fstore, rubric, by=("agent_version",))
    scores = fstore.df("SELECT s.criterion, r.agent_version, s.passed FROM scores s JOIN runs r USING (run_id) "
                       "WHERE s.passed IS NOT NULL")
    direct = scores.groupby(["criterion", "agent_version"])["passed"].agg(["size", "sum"]).reset_index()
    mine = rates[rates["criterion"] != "(verdict)"].merge(direct, on=["criterion", "agent_version"])
    assert len(mine) == len(direct) and (mine["applicable"] == mine["size"]).all() and (mine["passed"] == mine["sum"]).all()
    v = verdicts(fstore, rubric)
    overall = rates[rates["criterion"] == "(verdict)"].set_index("agent_version")
    for version, part in v.groupby("agent_version"):
        assert overall.loc[version, "passed"] == (part["verdict"] == "pass").sum()
    failing = failing_runs(fstore, rubric, "loops")
    assert list(failing["run_id"]) == ["r_loop"] and list(failing["step_id"]) == ["r_loop.s1"]

    ag = agreement(fstore, rubric, against="outcome")
    known = v[v["outcome"].isin(["success", "failure"])]
    assert ag.n == len(known) == 10
    pred = (known["verdict"] == "pass").map({True: "ok", False: "failure"})
    ref = known["outcome"].map({"success": "ok", "failure": "failure"})
    assert ag.accuracy == pytest.approx((pred == ref).mean())
    assert ag.kappa == pytest.approx(cohen_kappa_score(ref, pred))
    assert int(ag.matrix.loc["pass", "ok"]) == int(((pred == "ok") & (ref == "ok")).sum())

    # labels: r_loop has a current label (failure), r_ok's label was removed (ok), nobody labeled the others
    events = [("e1", "r_loop", "add", datetime(2026, 3, 5)), ("e2", "r_ok", "add", datetime(2026, 3, 5)),
              ("e3", "r_ok", "remove", datetime(2026, 3, 6))]
    with fstore.transaction() as cur:
        for eid, run, action, at in events:
            cur.execute("INSERT INTO label_events (event_id, run_id, code, reviewer, created_at, action) "
                        "VALUES (?, ?, 'tool.loop', 'maria', ?, ?)", [eid, run, at, action])
    lab = agreement(fstore, rubric, against="labels")
    assert lab.n == 2 and lab.accuracy == 1.0
    assert json.loads(lab.matrix.to_json()) == {"ok": {"pass": 1, "fail": 0}, "failure": {"pass": 0, "fail": 1}}


def test_demo_rubric_validates_all_its_criteria():
    rubric = load_rubric(ROOT / "data" / "rubrics" / "demo.toml")
    assert isinstance(rubric, Rubric)
    assert {c.kind for c in rubric.criteria} == {"check", "human"}
