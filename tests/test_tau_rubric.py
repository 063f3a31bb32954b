"""The tau-bench rubric (data/rubrics/tau-bench.toml) against tau-bench's own reward on the 200 gpt-4o airline
runs in ../shared/data/real/tau-bench (SOURCE.md: 200 runs, 84 pass / 116 fail).

Two tests: one through the tau-bench loader (skipped when it is not registered), and one that maps the
trajectories with the shared convention directly (assistant turn = llm step, tool result = tool step with
tool_name, tool_args and tool_result; expected actions in runs.attributes), so the rubric is checked on its own.
Both find the same 195 agreements and the same five disagreements.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.ingest import ingest_file
from workbench.loaders import registry as loaders
from workbench.queries import RunFilter
from workbench.rubrics import load_rubric
from workbench.scoring import score_runs
from workbench.store import Store

pytestmark = pytest.mark.real_data
RUBRIC = Path(__file__).resolve().parents[1] / "data" / "rubrics" / "tau-bench.toml"
FILE = Path("tau-bench") / "gpt-4o-airline.json"

#: (task_id, trial) where the check and the reward disagree, and why (docs/rubrics.md says the same):
DISAGREE = {
    (2, 1): "reward 0 with no reward info in the file; the writes match (the task also wants the total 23553 said)",
    (5, 1): "the same three writes in another order: same final database, reward 1",
    (44, 1): "no write expected; the reward's output check wanted the answer 4, which was not given",
    (44, 3): "no write expected; the reward's output check wanted the answer 4, which was not given",
    (46, 3): "reward 0 with no reward info in the file; the one expected write (send_certificate 50) happened",
}


def agreement(store: Store) -> tuple[int, set[str]]:
    """(runs where the check agrees with the reward, native ids of the others)."""
    rows = store.df("""SELECT r.native_id, s.passed, r.outcome FROM scores s JOIN runs r USING (run_id)
                       WHERE s.criterion = 'expected_writes'""")
    agree = (rows["passed"].fillna(False).astype(bool) == (rows["outcome"] == "success"))
    return int(agree.sum()), set(rows.loc[~agree, "native_id"])


def test_expected_writes_agree_with_the_reward_through_the_loader(real_dir, tmp_path):
    assert "tau-bench" in loaders()  # built in: a missing loader is a failure, not a skip
    with Store(tmp_path / "tau.duckdb") as store:
        ingest_file(store, real_dir / FILE, fmt="tau-bench")
        counts = store.df("SELECT outcome, count(*) AS n FROM runs GROUP BY 1").set_index("outcome")["n"]
        assert counts.to_dict() == {"success": 84, "failure": 116}  # SOURCE.md
        score_runs(store, load_rubric(RUBRIC), RunFilter(format="tau-bench"))
        agree, wrong = agreement(store)
    assert agree >= 190, f"the check agrees with the reward on {agree} of 200 runs (target: 95%)"
    # the loader names runs gpt-4o-airline/TASK/TRIAL
    assert agree == 195 and wrong == {f"gpt-4o-airline/{t}/{n}" for t, n in DISAGREE}


def test_expected_writes_agree_with_the_reward(real_dir, tmp_path):
    data = json.loads((real_dir / FILE).read_text(encoding="utf-8"))
    assert len(data) == 200
    with Store(tmp_path / "tau.duckdb") as store:
        with store.transaction() as cur:
            for traj in data:
                _stage(cur, traj)
        score_runs(store, load_rubric(RUBRIC))
        agree, wrong = agreement(store)
        seen = store.df("""SELECT count(*) FILTER (s.passed = (r.outcome = 'success')) AS agree FROM scores s
                           JOIN runs r USING (run_id) WHERE s.criterion = 'expected_actions_seen'""")
    assert agree == 195 and wrong == {f"{t}-{n}" for t, n in DISAGREE}
    # the plain reading (every expected action, reads included, seen in order) agrees far less often: agents
    # skip or repeat lookups without changing the outcome
    assert seen["agree"].iloc[0] == 154


def _stage(cur, traj: dict) -> None:
    run_id = f"{traj['task_id']}-{traj['trial']}"
    expected = [{"name": a["name"], "arguments": a["kwargs"]} for a in traj["info"]["task"]["actions"]]
    cur.execute("INSERT INTO runs (run_id, format, native_id, task_id, outcome, attributes) VALUES (?, ?, ?, ?, ?, ?)",
                [run_id, "tau-bench-test", run_id, str(traj["task_id"]),
                 "success" if traj["reward"] == 1.0 else "failure", json.dumps({"expected_actions": expected})])
    calls: dict[str, dict] = {}
    for seq, message in enumerate(traj["traj"]):
        if message["role"] == "assistant":
            calls.update({c["id"]: c["function"] for c in message.get("tool_calls") or []})
            cur.execute("INSERT INTO steps (run_id, step_id, seq, kind) VALUES (?, ?, ?, 'llm')",
                        [run_id, f"s{seq}", seq])
        elif message["role"] == "tool":
            fn = calls[message["tool_call_id"]]
            cur.execute("INSERT INTO steps (run_id, step_id, seq, kind, tool_name, tool_args, tool_result) "
                        "VALUES (?, ?, ?, 'tool', ?, ?, ?)",
                        [run_id, f"s{seq}", seq, fn["name"], fn["arguments"], message.get("content")])
