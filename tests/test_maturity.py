"""The maturity assessment: levels computed from evidence and answers, the framework file, remediation order,
snapshots and movement, the three outputs (golden files on the demo fleet) and the CLI.

Regenerate the golden files after an intended change: `WORKBENCH_REGEN_GOLDEN=1 pytest tests/test_maturity.py`,
then review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_store import make_v1_database
from workbench import labels, viz
from workbench.cli import main
from workbench.maturity import assess, diff_assessments, list_assessments, load_assessment, save_assessment
from workbench.maturity_evidence import METRICS, collect_evidence
from workbench.maturity_framework import (
    MaturityError,
    default_framework,
    default_framework_text,
    load_answers,
    load_framework,
    parse_framework,
)
from workbench.store import Store

GOLDEN = Path(__file__).resolve().parent / "golden"
T0 = datetime(2026, 11, 16, 9, 0)
T1 = datetime(2026, 11, 23, 9, 0)
DIMENSIONS = ["platform", "observability", "governance", "security", "finops", "human_in_the_loop",
              "developer_experience", "organizational_enablement"]
ANSWERS = {"dx_replay": "for every agent, within minutes", "dx_versioning": 2, "dx_failure_to_test": "sometimes",
           "dx_release_evals": "by hand, sometimes", "org_owner": "every agent", "org_review": "now and then"}
MONDAY = datetime(2026, 1, 5, 9, 0)


# -- small stores built by hand -------------------------------------------------------------------------------
def add_runs(store: Store, n: int, *, start: int = 0, agent: str = "shop-agent", version: str | None = "v1",
             outcome: str = "success", when: datetime = MONDAY, attributes: str | None = None) -> list[str]:
    rows = [(f"r{i}", "otlp", f"n{i}", agent, version, outcome, "ok", when + timedelta(hours=i), attributes)
            for i in range(start, start + n)]
    with store.transaction() as cur:
        cur.executemany("INSERT INTO runs (run_id, format, native_id, agent, agent_version, outcome, status, "
                        "started_at, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return [r[0] for r in rows]


def add_steps(store: Store, run_ids: list[str], kind: str, **columns) -> None:
    names = ["run_id", "step_id", "kind", *columns]
    rows = [(r, f"{kind}-{r}", kind, *columns.values()) for r in run_ids]
    with store.transaction() as cur:
        cur.executemany(f"INSERT INTO steps ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows)


def add_imports(store: Store, statuses: list[str], message: str | None = None) -> None:
    with store.transaction() as cur:
        n = cur.execute("SELECT count(*) FROM imports").fetchone()[0]
        cur.executemany("INSERT INTO imports (import_id, path, status, message) VALUES (?, ?, ?, ?)",
                        [(f"i{n + i}", f"f{n + i}.jsonl", s, message) for i, s in enumerate(statuses)])


def level(a, key: str) -> int:
    return a.levels[key]


# -- the framework file ---------------------------------------------------------------------------------------
def test_default_framework_has_eight_dimensions_five_levels_and_known_evidence():
    fw = default_framework()
    assert [d.key for d in fw.dimensions] == DIMENSIONS
    assert fw.version and list(fw.level_names) == ["ad hoc", "repeatable", "defined", "measured", "optimizing"]
    for d in fw.dimensions:
        assert [lv.level for lv in d.levels] == [2, 3, 4, 5]
        for c in (c for lv in d.levels for c in lv.criteria):
            assert (c.metric in METRICS) if c.metric else c.question in {q.id for q in d.questions}
    questioned = {d.key for d in fw.dimensions if d.questions}
    assert questioned == {"developer_experience", "organizational_enablement"}


@pytest.mark.parametrize("edit, message", [
    (('metric = "runs", at_least = 1', 'metric = "runz", at_least = 1'),
     "dimension 'platform', level 2: unknown metric 'runz'"),
    (('metric = "runs", at_least = 1', 'metric = "runs", at_least = 1, at_most = 5'),
     "give exactly one of `at_least` or `at_most`"),
    (('question = "dx_replay", at_least = 1', 'question = "dx_replai", at_least = 1'), "unknown question 'dx_replai'"),
    (('question = "dx_replay", at_least = 1', 'question = "dx_replay", at_least = 3'),
     "the threshold on 'dx_replay' must be the index of one of its choices"),
    (('version = "1.0"', ''), "version: Field required"),
    (("level = 5\n", "level = 6\n"), "less than or equal to 5"),
    (('name = "Platform"', 'name = "Platform"\ncolour = "red"'), "colour: Extra inputs are not permitted"),
    (('level_names = [', 'level_names = ['), None),  # unchanged text validates
    (('[[dimensions]]\nkey = "platform"', '[[dimensions]\nkey = "platform"'), "not valid TOML"),
])
def test_broken_framework_names_the_problem(edit, message):
    old, new = edit
    text = default_framework_text()
    assert old in text
    if message is None:
        assert parse_framework(text.replace(old, new, 1)).version == default_framework().version
        return
    with pytest.raises(MaturityError, match=re.escape(message)):
        parse_framework(text.replace(old, new, 1), "team.toml")


def test_framework_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "ours.toml"
    bad.write_text(default_framework_text().replace("[[dimensions.levels]]\nlevel = 3", "[[dimensions.levels]]\nlevel = 4", 1))
    with pytest.raises(MaturityError, match=r"ours\.toml: .*levels must be given for 2, 3, 4 and 5"):
        load_framework(bad)
    with pytest.raises(MaturityError, match="cannot read the framework file"):
        load_framework(tmp_path / "missing.toml")


def test_a_team_framework_changes_the_levels(store):
    add_runs(store, 4)
    strict = parse_framework(default_framework_text().replace(
        'metric = "runs", at_least = 1,', 'metric = "runs", at_least = 5,', 1).replace('version = "1.0"',
                                                                                     'version = "team-2"'))
    assert level(assess(store), "platform") == 2
    ours = assess(store, framework=strict)
    assert level(ours, "platform") == 1 and ours.framework_version == "team-2"
    assert "runs in the store: 4, needs ≥ 5" in ours.dimensions.set_index("dimension").loc["platform", "to_raise"]


# -- evidence and levels ----------------------------------------------------------------------------------------
def test_empty_store_is_level_one_with_no_evidence(store):
    a = assess(store)
    assert set(a.levels.values()) == {1}
    dims = a.dimensions.set_index("dimension")
    assert (dims["evidence"] == "no evidence").all()
    assert all("no evidence" in r for r in dims["reason"])
    assert "the questionnaire is not answered" in dims.loc["developer_experience", "reason"]
    assert all(v is None for v in collect_evidence(store).values())
    assert len(a.remediation) > 0 and "the store holds no runs" in a.to_markdown()


def test_older_database_with_missing_tables_gives_no_evidence_instead_of_failing(tmp_path):
    old = tmp_path / "v1.duckdb"
    make_v1_database(old)  # schema version 1: no label_events, scores, rubrics, clusterings, assessments
    with Store(old, read_only=True) as s:
        values = collect_evidence(s)
        a = assess(s)
        assert list_assessments(s).empty
    assert values["runs"] == 1 and values["failures"] == 1
    assert values["review_coverage"] is None and values["rubric_coverage"] is None and values["clusterings_saved"] is None
    assert level(a, "platform") == 2 and level(a, "human_in_the_loop") == 1


def test_observability_level_moves_when_a_share_crosses_its_threshold(store):
    runs = add_runs(store, 10)
    add_steps(store, runs, "tool", tool_name="lookup", tool_args='{"q": 1}')
    add_steps(store, runs[:2], "llm", model="gpt-4o", input_tokens=100)
    add_steps(store, runs[2:], "llm", model="gpt-4o")
    before = assess(store)
    assert level(before, "observability") == 1
    assert "LLM steps with model and tokens: 20.0%, needs ≥ 25.0%" in before.results[1].to_raise
    with store.transaction() as cur:
        cur.execute("UPDATE steps SET input_tokens = 50 WHERE step_id = 'llm-r2'")
    after = assess(store)
    assert level(after, "observability") == 2
    assert "LLM steps with model and tokens: 30.0% (≥ 25.0%)" in after.results[1].reason


def test_platform_level_moves_when_rejected_imports_fall_under_the_limit(store):
    add_runs(store, 3)
    add_runs(store, 3, start=3, when=MONDAY + timedelta(days=7))  # a second week
    add_imports(store, ["ok"] * 10 + ["partial", "rejected", "skipped", "skipped"])  # 2 of 12 (skips not counted)
    assert collect_evidence(store)["import_problem_share"] == round(2 / 12, 6)
    assert level(assess(store), "platform") == 2
    add_imports(store, ["ok"] * 10)
    assert level(assess(store), "platform") == 3


def test_review_and_safety_evidence_from_labels_and_failure_modes(store):
    failed = add_runs(store, 4, outcome="failure")
    add_runs(store, 4, start=4, attributes='{"workbench.demo.failure_mode": "policy_violation"}')
    add_runs(store, 2, start=8, attributes='{"workbench.demo.failure_mode": "tool_loop"}')
    ev = collect_evidence(store)
    assert ev["review_coverage"] == 0 and ev["policy_violation_rate"] == 0.4 and ev["reviewer_agreement"] is None
    labels.add_label(store, failed[0], "safety.data_leak", "ana")
    labels.add_label(store, failed[0], "safety.data_leak", "ben")
    labels.add_label(store, failed[1], "safety.data_leak", "ana")
    labels.add_label(store, failed[1], "tool.wrong_tool", "ben")
    ev = collect_evidence(store)
    assert ev["review_coverage"] == 0.5 and ev["policy_violation_rate"] == 0.6
    assert ev["reviewers"] == 2 and ev["label_events"] == 4 and ev["review_weeks"] == 1
    per_code = labels.agreement(store)
    assert len(per_code) == 2 and ev["reviewer_agreement"] == pytest.approx(
        (per_code["value"] * per_code["runs"]).sum() / per_code["runs"].sum(), abs=1e-6)
    assert ev["settled_disagreement_share"] == 0  # two open disagreements on failed[1]
    labels.settle(store, failed[1], "safety.data_leak", True, "lead")
    assert collect_evidence(store)["settled_disagreement_share"] == 0.5


def test_cost_per_success_and_its_week_over_week_change(store):
    add_runs(store, 2, when=MONDAY)
    add_runs(store, 2, start=2, when=MONDAY + timedelta(days=7))
    with store.transaction() as cur:
        cur.execute("UPDATE runs SET cost_usd = 0.10, cost_estimated = run_id = 'r0'")
        cur.execute("UPDATE runs SET cost_usd = 0.15 WHERE run_id IN ('r2', 'r3')")
    ev = collect_evidence(store)
    assert ev["cost_per_success_weeks"] == 2 and ev["cost_per_success_change"] == 0.5
    assert ev["cost_known_share"] == 1 and ev["cost_reported_share"] == 0.75 and ev["cost_per_success"] == 0.125


# -- questionnaire ------------------------------------------------------------------------------------------------
def test_answers_set_developer_experience_and_organization_levels(store):
    assert level(assess(store), "developer_experience") == 1
    some = assess(store, {"dx_replay": "for some agents", "dx_versioning": 1})
    assert level(some, "developer_experience") == 2 and level(some, "organizational_enablement") == 1
    best = {q.id: len(q.choices) - 1 for q in default_framework().questions()}
    full = assess(store, best)
    assert level(full, "developer_experience") == 5 and level(full, "organizational_enablement") == 5
    assert full.dimensions.set_index("dimension").loc["developer_experience", "evidence"] == "answered"
    partial = assess(store, {"org_owner": "every agent"})  # org_review unanswered: missing, not guessed
    org = partial.dimensions.set_index("dimension").loc["organizational_enablement"]
    assert org["level"] == 1 and "Is there a standing failure review meeting?: not answered" in org["to_raise"]


def test_bad_answers_are_refused(store):
    with pytest.raises(MaturityError, match="unknown questions: dx_nope"):
        assess(store, {"dx_nope": "yes"})
    with pytest.raises(MaturityError, match="answer to 'dx_replay' must be one of"):
        assess(store, {"dx_replay": "always"})
    with pytest.raises(MaturityError, match="answer to 'dx_replay' must be one of"):
        assess(store, {"dx_replay": 3})


def test_answers_files(tmp_path):
    toml = tmp_path / "a.toml"
    toml.write_text('dx_replay = "for some agents"\norg_owner = 2\n')
    assert load_answers(toml) == {"dx_replay": "for some agents", "org_owner": 2}
    nested = tmp_path / "a.json"
    nested.write_text('{"answers": {"dx_replay": 1}}')
    assert load_answers(nested) == {"dx_replay": 1}
    broken = tmp_path / "b.json"
    broken.write_text("{not json")
    with pytest.raises(MaturityError, match=r"b\.json: not valid JSON"):
        load_answers(broken)
    broken.write_text("[1, 2]")
    with pytest.raises(MaturityError, match="expected a table of question id = answer"):
        load_answers(broken)


# -- remediation ---------------------------------------------------------------------------------------------------
def test_remediation_is_the_unmet_next_level_criteria_by_priority(store):
    runs = add_runs(store, 10)
    add_steps(store, runs[:3], "guardrail")
    a = assess(store, {"dx_replay": 1})
    expected = {(d.key, c.evidence) for d in a.results for c in d.criteria
                if c.level == d.level + 1 and c.status != "met"}
    items = a.remediation
    assert set(zip(items["dimension"], items["evidence"], strict=True)) == expected
    assert list(items["rank"]) == list(range(1, len(items) + 1))
    assert (items["priority"] == (items["risk"] * items["impact"] / items["effort"]).round(2)).all()
    assert list(items["priority"]) == sorted(items["priority"], reverse=True)
    keys = list(zip(items["priority"], items["dimension"].map(a.levels), strict=True))
    for (p1, l1), (p2, l2) in pairwise(keys):
        assert p1 > p2 or l1 <= l2  # ties: the weaker dimension first
    top = items.iloc[0]
    assert (top["dimension"], top["evidence"]) == ("organizational_enablement", "org_owner")  # 4 * 5 / 1
    assert top["current"] == "not answered"


# -- snapshots --------------------------------------------------------------------------------------------------------
def test_snapshots_round_trip_and_the_second_assessment_shows_movement(store):
    add_runs(store, 4)
    first = assess(store, taken_at=T0)
    assert first.previous is None and first.dimensions["movement"].eq("").all()
    assert save_assessment(store, first) == first.assessment_id
    assert save_assessment(store, first) == first.assessment_id  # the same snapshot twice is kept once
    assert load_assessment(store, first.assessment_id) == first
    second = assess(store, {"dx_replay": 1, "dx_versioning": 1}, taken_at=T1)
    assert second.previous.assessment_id == first.assessment_id
    dims = second.dimensions.set_index("dimension")
    assert dims.loc["developer_experience", "movement"] == "1 → 2 ↑"
    assert dims.loc["platform", "movement"] == "2 → 2 ="
    diff = diff_assessments(second, first).set_index("dimension")
    assert diff.loc["developer_experience", "change"] == 1 and diff.loc["developer_experience", "arrow"] == "↑"
    save_assessment(store, second)
    listed = list_assessments(store)
    assert list(listed["assessment_id"]) == [second.assessment_id, first.assessment_id]
    assert list(listed["developer_experience"]) == [2, 1]
    stored = store.sql("SELECT answers, framework_version, name FROM assessments WHERE assessment_id = $i",
                       {"i": second.assessment_id}).fetchone()
    assert json.loads(stored[0]) == {"dx_replay": "for some agents", "dx_versioning": "partly"}
    assert stored[1:] == ("1.0", "fleet")
    assert "1 → 2 ↑" in second.to_markdown() and "1 → 2 ↑" in second.to_html()
    assert second.to_html().count("stroke-dasharray") == 1 and first.to_html().count("stroke-dasharray") == 0
    assert assess(store, taken_at=T1 + timedelta(1), previous=None).previous is None
    assert assess(store, taken_at=T1 + timedelta(1), previous=first.assessment_id).previous.levels == first.levels
    assert assess(store, name="team-b", taken_at=T1 + timedelta(1)).previous is None  # another scope
    with pytest.raises(KeyError):
        load_assessment(store, "nope")


# -- outputs ----------------------------------------------------------------------------------------------------------
EXTERNAL = re.compile(r"<script|<link|@import|url\(|src=|href=|https?://", re.IGNORECASE)


def test_html_is_self_contained_and_escapes_store_text(store):
    evil = '<script>alert(1)</script><img src=x onerror=alert(2)>'
    add_runs(store, 2, agent=evil, version='v1"><u>')
    a = assess(store, name="<i>scope</i>")
    page = a.to_html()
    assert not re.search(r"<script|<img|<u>|<i>", page, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;i&gt;scope&lt;/i&gt;" in page
    assert not EXTERNAL.search(page.replace(html_escaped(evil), ""))
    md = a.to_markdown()
    assert "<script" not in md and "&lt;script&gt;" in md
    assert json.loads(a.to_json())["scope"]["agents"] == [f'{evil} (v1"><u>)']
    fig = viz.maturity_radar(a.dimensions)
    assert len(fig.data) == 1 and list(fig.data[0].r) == [*a.levels.values(), a.levels["platform"]]


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_radar_draws_a_second_polygon_for_the_previous_snapshot(store):
    save_assessment(store, assess(store, taken_at=T0))
    a = assess(store, {"org_owner": 2, "org_review": 2}, taken_at=T1)
    fig = viz.maturity_radar(a.dimensions)
    assert [t.name for t in fig.data] == ["previous snapshot", "this assessment"]
    assert list(fig.data[0].r) == [1] * 9 and fig.data[1].r[7] == 2


@pytest.fixture(scope="module")
def golden_assessment(demo_db, tmp_path_factory):
    """The session's demo fleet (a copy: a snapshot is written), a first snapshot without answers, then the
    assessment with answers a week later."""
    db = tmp_path_factory.mktemp("maturity") / "demo.duckdb"
    shutil.copyfile(demo_db, db)
    with Store(db) as s:
        save_assessment(s, assess(s, taken_at=T0))
        return assess(s, ANSWERS, taken_at=T1)


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_golden(golden_assessment, fmt, tmp_path):
    written = golden_assessment.write(tmp_path)[fmt]
    golden = GOLDEN / f"maturity-scorecard.{fmt}"
    if os.environ.get("WORKBENCH_REGEN_GOLDEN"):
        golden.write_bytes(written.read_bytes())
    assert written.read_bytes() == golden.read_bytes()
    if fmt == "html":
        assert not EXTERNAL.search(written.read_text())


def test_demo_levels_follow_its_evidence(golden_assessment):
    a = golden_assessment
    ev = {e.name: e.value for e in a.evidence}
    assert ev["runs"] == 2400 and ev["guardrail_run_share"] > 0.5 and ev["redacted_import_share"] == 0
    assert a.levels["security"] == 2  # gates on most runs, but nothing redacted at ingest
    assert ev["cost_reported_share"] == 0 and a.levels["finops"] == 3  # every cost is an estimate
    assert a.levels["developer_experience"] == 3 and a.levels["organizational_enablement"] == 2
    assert a.previous is not None and a.dimensions.set_index("dimension").loc[
        "developer_experience", "movement"] == "1 → 3 ↑"


# -- CLI ------------------------------------------------------------------------------------------------------------
def test_cli_writes_the_scorecard_and_saves_a_snapshot(tmp_path):
    db = tmp_path / "wb.duckdb"
    with Store(db) as s:
        add_runs(s, 3)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({"answers": {"dx_replay": "for some agents", "dx_versioning": "partly"}}))
    runner = CliRunner()
    out = runner.invoke(main, ["maturity", "--db", str(db), "--out", str(tmp_path / "sc"), "--no-save"])
    assert out.exit_code == 0, out.output
    assert re.search(r"Platform\s+2\s+repeatable", out.output)
    assert {p.name for p in (tmp_path / "sc").iterdir()} == {"scorecard.md", "scorecard.html", "scorecard.json"}
    out = runner.invoke(main, ["maturity", "--db", str(db), "--out", str(tmp_path / "sc"), "--answers", str(answers)])
    assert out.exit_code == 0, out.output
    assert re.search(r"Developer experience\s+2\s+repeatable", out.output) and "saved" in out.output
    with Store(db, read_only=True) as s:
        assert len(list_assessments(s)) == 1
    assert json.loads((tmp_path / "sc" / "scorecard.json").read_text())["answers"]["dx_replay"] == "for some agents"
    # without --answers, the next assessment starts from the saved snapshot's answers, as the app's form does
    out = runner.invoke(main, ["maturity", "--db", str(db), "--out", str(tmp_path / "sc2"), "--no-save"])
    assert out.exit_code == 0, out.output
    assert "2 answer(s) from the latest 'fleet' snapshot" in out.output
    assert re.search(r"Developer experience\s+2\s+repeatable", out.output)
    broken = tmp_path / "fw.toml"
    broken.write_text(default_framework_text().replace('metric = "runs"', 'metric = "runz"', 1))
    out = runner.invoke(main, ["maturity", "--db", str(db), "--out", str(tmp_path / "x"), "--framework", str(broken)])
    assert out.exit_code == 2 and "unknown metric 'runz'" in out.output
