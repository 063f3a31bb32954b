"""Every built-in check against a small store whose runs are described in tests/rubric_fixture.py, and one
conformance test that every registered scorer passes."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from pydantic import ValidationError

from tests import rubric_fixture as fx
from workbench.rubric_checks import RESULT_COLUMNS, registry
from workbench.rubrics import Criterion, Rubric
from workbench.scoring import score_runs
from workbench.store import Store

ALL = list(fx.RUNS)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return fx.build(tmp_path_factory.mktemp("checks") / "fixture.duckdb")


@pytest.fixture
def fstore(db):
    with Store(db, read_only=True) as s:
        yield s


def evaluate(store: Store, name: str, runs: list[str] | None = None, **args) -> pd.DataFrame:
    scorer = registry()[name]
    cur = store.cursor()
    try:
        cur.execute("CREATE OR REPLACE TEMP TABLE _target AS SELECT run_id FROM runs "
                    "WHERE $ids IS NULL OR list_contains($ids, run_id)", {"ids": runs})
        return scorer.evaluate(cur, scorer.args_model.model_validate(args)).set_index("run_id").sort_index()
    finally:
        cur.close()


def results(store, name, **args) -> dict[str, tuple]:
    """run_id -> (value, passed, step_id) with NaN/NA turned into None."""
    frame = evaluate(store, name, **args)
    clean = lambda v: None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v  # noqa: E731
    return {r: (clean(row.value), clean(row.passed), clean(row.step_id)) for r, row in frame.iterrows()}


def expect(store, name, expected: dict[str, tuple], default: tuple, **args) -> None:
    got = results(store, name, **args)
    want = {r: expected.get(r, default) for r in ALL}
    assert got == want


# -- each check --------------------------------------------------------------------------------------------
def test_outcome(fstore):
    wins = {"r_ok", "r_retry", "r_human", "r_actions"}
    want = {r: (1.0, True, None) if r in wins else (0.0, False, None) for r in ALL}
    want["r_empty"] = (None, None, None)  # unknown outcome: not decided
    expect(fstore, "outcome", want, None)


def test_limit_on_steps_duration_and_call_context(fstore):
    steps = {r: len(s) for r, (_, s) in fx.RUNS.items()}
    expect(fstore, "limit", {r: (float(n), n <= 5, None) for r, n in steps.items()}, None, metric="steps", max=5)
    durations = {r: f["duration_ms"] for r, (f, _) in fx.RUNS.items()}
    want = {r: (None, None, None) if d is None else (float(d), d <= 60_000, None) for r, d in durations.items()}
    expect(fstore, "limit", want, None, metric="duration_ms", max=60_000)
    # the largest single LLM call: 5,000 tokens in r_unhandled's last call, 100 elsewhere; no LLM call: undecided
    want = {r: (100.0, True, None) for r in ALL}
    want["r_unhandled"] = (5000.0, False, "r_unhandled.s6")
    want["r_empty"] = (None, None, None)
    got = results(fstore, "limit", metric="max_call_tokens", max=1000)
    assert {r: (v, p) for r, (v, p, _) in got.items()} == {r: w[:2] for r, w in want.items()}
    assert got["r_unhandled"][2] == "r_unhandled.s6"
    with pytest.raises(ValidationError):
        registry()["limit"].args_model.model_validate({"metric": "steps"})  # no bound at all


def test_tool_called_and_not_called(fstore):
    expect(fstore, "tool_called", {"r_ok": (1.0, True, "r_ok.s1"), "r_retry": (2.0, True, "r_retry.s1")},
           (0.0, False, None), tool="lookup_order")
    expect(fstore, "tool_called", {"r_loop": (5.0, True, "r_loop.s1")}, (0.0, False, None), tool="search",
           min_count=5)
    # only the alembic command counts, not the later `ls`
    expect(fstore, "tool_called", {"r_human": (1.0, True, "r_human.s2"), "r_no_human": (1.0, True, "r_no_human.s1"),
                                   "r_rejected": (1.0, True, "r_rejected.s2")},
           (0.0, False, None), tool="run_shell", args_pattern="alembic")
    refunds = {"r_ok": "r_ok.s4", "r_retry": "r_retry.s5", "r_blocked": "r_blocked.s3", "r_actions": "r_actions.s3",
               "r_actions_bad": "r_actions_bad.s2"}
    expect(fstore, "tool_not_called", {r: (1.0, False, s) for r, s in refunds.items()}, (0.0, True, None),
           tool="refund_order")


def test_tool_order(fstore):
    expect(fstore, "tool_order",
           {"r_ok": (1.0, True, None), "r_retry": (1.0, True, None), "r_blocked": (0.0, False, "r_blocked.s3"),
            "r_actions": (0.0, False, "r_actions.s3"), "r_actions_bad": (0.0, False, "r_actions_bad.s2")},
           (None, None, None), first="lookup_order", then="refund_order")


def test_no_unhandled_errors(fstore):
    # r_retry's failed lookup and r_blocked's failed LLM call were retried successfully
    expect(fstore, "no_unhandled_errors", {"r_unhandled": (1.0, False, "r_unhandled.s1")}, (0.0, True, None))
    # a tool result starting with "Error" also fails, and no later run_tests succeeded after it
    expect(fstore, "no_unhandled_errors", {"r_unhandled": (2.0, False, "r_unhandled.s1")}, (0.0, True, None),
           error_result_pattern="^Error")
    expect(fstore, "no_unhandled_errors",
           {"r_unhandled": (1.0, False, "r_unhandled.s1"), "r_retry": (1.0, False, "r_retry.s1"),
            "r_blocked": (1.0, False, "r_blocked.s0")}, (0.0, True, None), allow_recovered=False)


def test_no_loops(fstore):
    most = {"r_ok": 1, "r_loop": 4, "r_retry": 1, "r_unhandled": 2, "r_blocked": 1, "r_human": 1, "r_no_human": 1,
            "r_rejected": 1, "r_actions": 1, "r_actions_bad": 1, "r_empty": 0}
    want = {r: (float(n), n <= 3, None) for r, n in most.items()}
    want["r_loop"] = (4.0, False, "r_loop.s1")
    expect(fstore, "no_loops", want, None, max_identical=3)
    assert evaluate(fstore, "no_loops", ["r_loop"], max_identical=3).loc["r_loop", "evidence"] == \
        "search called 4 time(s) with identical arguments"


def test_output_patterns(fstore):
    refunds = {"r_ok", "r_retry", "r_blocked"}
    expect(fstore, "output_matches", {r: (1.0, True, None) for r in refunds}, (0.0, False, None),
           pattern="(?i)refund")
    expect(fstore, "output_not_matches", {"r_blocked": (1.0, False, None)}, (0.0, True, None), pattern="24 hours")
    assert evaluate(fstore, "output_not_matches", ["r_blocked"], pattern="24 hours").loc["r_blocked", "evidence"] \
        == "matched 24 hours"
    assert evaluate(fstore, "output_matches", ["r_empty"], pattern="x").loc["r_empty", "evidence"] == "output missing"


def test_last_result(fstore):
    expect(fstore, "last_result", {"r_unhandled": (1.0, False, "r_unhandled.s5")}, (None, None, None),
           tool="run_tests", pattern="FAILED|Error")
    # the last run is the error, not the earlier FAILED one
    expect(fstore, "last_result", {"r_unhandled": (0.0, True, "r_unhandled.s5")}, (None, None, None),
           tool="run_tests", pattern="FAILED")


def test_guardrail_before(fstore):
    want = {"r_ok": (0.0, True, None), "r_retry": (1.0, False, "r_retry.s5"), "r_blocked": (1.0, False, "r_blocked.s3"),
            "r_actions": (1.0, False, "r_actions.s3"), "r_actions_bad": (1.0, False, "r_actions_bad.s2")}
    expect(fstore, "guardrail_before", want, (None, None, None), tool="refund_order")
    assert "said no" in evaluate(fstore, "guardrail_before", ["r_blocked"], tool="refund_order").loc[
        "r_blocked", "evidence"]
    # a guardrail with another name does not clear the call
    got = results(fstore, "guardrail_before", tool="refund_order", name_pattern="shell_policy")
    assert got["r_ok"] == (1.0, False, "r_ok.s4")


def test_human_required(fstore):
    expect(fstore, "human_required",
           {"r_human": (0.0, True, None), "r_no_human": (1.0, False, "r_no_human.s1"),
            "r_rejected": (1.0, False, "r_rejected.s2")},
           (None, None, None), before_tool="run_shell", args_pattern="alembic")
    expect(fstore, "human_required", {"r_human": (1.0, True, "r_human.s1"), "r_rejected": (1.0, True, "r_rejected.s1")},
           (0.0, False, None))


def test_expected_actions(fstore):
    got = evaluate(fstore, "expected_actions")
    assert got.loc["r_actions", "passed"] and got.loc["r_actions", "value"] == 1.0  # 7.0 == 7, key order ignored
    bad = got.loc["r_actions_bad"]
    assert not bad["passed"] and bad["value"] == 0.5 and bad["step_id"] == "r_actions_bad.s1"
    assert bad["evidence"] == "expected action 2 (refund_order) missing; called with other arguments"
    others = got.drop(index=["r_actions", "r_actions_bad"])
    assert others["passed"].isna().all() and (others["evidence"] == "no expected actions").all()
    exact = evaluate(fstore, "expected_actions", ["r_actions"], match="exact").loc["r_actions"]
    assert not exact["passed"] and exact["step_id"] == "r_actions.s2" and exact["value"] == 0.5  # notify in between
    for match in ("exact", "multiset"):
        assert evaluate(fstore, "expected_actions", ["r_actions"], match=match,
                        ignore_tools="^notify$").loc["r_actions", "passed"]


# -- conformance --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(registry()))
def test_scorer_conformance(name, fstore, db, tmp_path):
    """What every scorer promises: strict arguments, one row per target run and nothing else, typed values,
    evidence steps that belong to the run, determinism, no leakage between runs, its name and arguments stored
    with each score."""
    scorer = registry()[name]
    args = scorer.args_model.model_validate(scorer.example)
    with pytest.raises(ValidationError):
        scorer.args_model.model_validate({**scorer.example, "no_such_argument": 1})
    full = evaluate(fstore, name, **scorer.example)
    assert list(full.reset_index().columns) == list(RESULT_COLUMNS)
    assert sorted(full.index) == sorted(ALL)
    assert full["passed"].isna().sum() + full["passed"].dropna().isin([True, False]).sum() == len(full)
    assert pd.api.types.is_numeric_dtype(full["value"])
    assert all(isinstance(e, str) and e for e in full["evidence"])
    for run_id, step in full["step_id"].dropna().items():
        assert step.startswith(f"{run_id}.s"), (run_id, step)
    pd.testing.assert_frame_equal(full, evaluate(fstore, name, **scorer.example))
    assert evaluate(fstore, name, [], **scorer.example).empty
    part = evaluate(fstore, name, ["r_ok", "r_empty"], **scorer.example)
    pd.testing.assert_frame_equal(part, full.loc[["r_empty", "r_ok"]], check_dtype=False)
    # through the engine: every selected run gets a row carrying the scorer's name and normalized arguments
    copy = tmp_path / "c.duckdb"
    copy.write_bytes(db.read_bytes())
    with Store(copy) as store:
        rubric = Rubric(name="conformance", criteria=[Criterion(id="c", check=name, args=scorer.example)])
        score_runs(store, rubric)
        stored = store.df("SELECT scorer, scorer_name, scorer_args, passed FROM scores")
    assert len(stored) == len(ALL)
    assert set(stored["scorer"]) == {"auto"} and set(stored["scorer_name"]) == {name}
    assert {json.dumps(json.loads(a), sort_keys=True) for a in stored["scorer_args"]} == {
        json.dumps(args.model_dump(mode="json"), sort_keys=True)}
