"""The demo rubric (data/rubrics/demo.toml) against the demo fleet: each injected failure mode is caught by the
criteria that target it, and no criterion fails a run the generator made successful.

Ground truth is the generator's own: `runs.attributes['workbench.demo.failure_mode']` (`none` for a successful
run), written on every root span by workbench/demo.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from workbench.demo import FAILURE_MODES
from workbench.rubric_results import agreement
from workbench.rubrics import load_rubric
from workbench.scoring import score_runs
from workbench.store import Store

RUBRIC = Path(__file__).resolve().parents[1] / "data" / "rubrics" / "demo.toml"

#: Failure mode -> the demo rubric's criteria meant to catch it (the comments in demo.toml say the same).
TARGETS = {
    "tool_loop": ["no_loops"],
    "wrong_tool": ["refund_not_escalated", "policy_from_kb", "order_looked_up", "edits_with_write_file",
                   "explain_is_read_only"],
    "malformed_tool_args": ["errors_handled"],
    "ignored_tool_error": ["errors_handled", "tests_pass_at_end"],
    "policy_violation": ["refund_cleared", "shell_cleared"],
    "missed_escalation": ["escalates_when_asked", "migration_approved"],
    "hallucinated_answer": ["no_false_promises", "tests_pass_at_end"],
    "timeout": ["support_duration", "coding_duration"],
    "provider_error": ["errors_handled"],
    "cost_blowup": ["support_context", "coding_context"],
}
MODE = """json_extract_string(r.attributes, '$."workbench.demo.failure_mode"')"""


@pytest.fixture(scope="module")
def scored(demo_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("rubric-demo") / "demo.duckdb"
    shutil.copy(demo_db, path)
    rubric = load_rubric(RUBRIC)
    with Store(path) as store:
        score_runs(store, rubric)
        yield store, rubric


def runs_failing(store: Store, criteria: list[str]) -> set[str]:
    rows = store.sql("SELECT DISTINCT run_id FROM scores WHERE NOT passed AND list_contains($c, criterion)",
                     {"c": criteria}).fetchall()
    return {r[0] for r in rows}


def runs_of_mode(store: Store, mode: str) -> set[str]:
    return {r[0] for r in store.sql(f"SELECT run_id FROM runs r WHERE {MODE} = $m", {"m": mode}).fetchall()}


def honest_rejections(store: Store) -> set[str]:
    """Hallucinating refunds whose approval a person rejected: they end with the honest store-credit answer
    (demo_content._refund returns before the made-up one), so there is nothing false to catch."""
    rows = store.sql(f"""SELECT DISTINCT s.run_id FROM steps s JOIN runs r USING (run_id)
        WHERE {MODE} = 'hallucinated_answer' AND s.kind = 'human'
          AND json_extract_string(s.attributes, '$."workbench.human.decision"') = 'rejected'""").fetchall()
    return {r[0] for r in rows}


def test_targets_cover_every_mode_and_name_real_criteria(scored):
    _, rubric = scored
    assert set(TARGETS) == set(FAILURE_MODES)
    ids = {c.id for c in rubric.criteria}
    assert {c for cs in TARGETS.values() for c in cs} <= ids


@pytest.mark.parametrize("mode", FAILURE_MODES)
def test_each_injected_failure_mode_is_caught(scored, mode):
    store, _ = scored
    injected = runs_of_mode(store, mode)
    assert injected, f"the demo fleet has no {mode} runs"
    missed = injected - runs_failing(store, TARGETS[mode])
    if mode == "hallucinated_answer":
        assert missed == honest_rejections(store)
    else:
        assert missed == set(), f"{len(missed)} of {len(injected)} {mode} runs passed {TARGETS[mode]}"


def test_no_criterion_fails_a_successful_run(scored):
    store, _ = scored
    wrong = store.df(f"""SELECT s.criterion, count(*) AS n FROM scores s JOIN runs r USING (run_id)
        WHERE {MODE} = 'none' AND NOT s.passed GROUP BY 1""")
    assert wrong.empty, wrong.to_dict("records")


def test_the_verdict_agrees_with_the_outcome(scored):
    # the rubric has no outcome criterion, so this measures how much of the outcome its checks explain:
    # every failure but the honest rejected-refund ones above, and no false alarm
    store, rubric = scored
    ag = agreement(store, rubric)
    n_fail = store.sql("SELECT count(*) FROM runs WHERE outcome = 'failure'").fetchone()[0]
    assert int(ag.matrix.loc["fail", "ok"]) == 0
    assert int(ag.matrix.loc["fail", "failure"]) + int(ag.matrix.loc["pass", "failure"]) == n_fail
    assert set(ag.disagreements["run_id"]) == honest_rejections(store)
