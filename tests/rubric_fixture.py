"""A small store whose runs each exercise one behaviour the rubric checks look for.

Steps are written with plain inserts (no loader), so the expected check results below follow from this file
alone. `RUNS` documents each run; the tests state the expected value / passed / evidence step per run.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from workbench.store import Store

T0 = datetime(2026, 3, 2, 9, 0, 0)  # a Monday

_RUN_COLS = ("run_id", "format", "native_id", "agent", "agent_version", "task_id", "started_at", "duration_ms",
             "status", "outcome", "input", "output", "n_steps", "n_llm_calls", "n_tool_calls", "n_errors",
             "input_tokens", "output_tokens", "cost_usd", "cost_estimated", "attributes")
_STEP_COLS = ("run_id", "step_id", "seq", "depth", "kind", "name", "started_at", "status", "error", "model",
              "tool_name", "tool_args", "tool_result", "input_tokens", "output_tokens", "cost_usd",
              "cost_estimated", "attributes")


def llm(tokens: int = 100, cost: float = 0.01, status: str = "ok") -> dict:
    return {"kind": "llm", "name": "chat", "model": "gpt-4.1-mini", "input_tokens": tokens, "output_tokens": 10,
            "cost_usd": cost, "status": status, "error": "rate limited" if status == "error" else None}


def tool(name: str, args: dict | str | None = None, result: str = "ok", error: str | None = None) -> dict:
    return {"kind": "tool", "name": name, "tool_name": name,
            "tool_args": args if isinstance(args, str) or args is None else json.dumps(args),
            "tool_result": None if error else result, "status": "error" if error else "ok", "error": error}


def gate(kind: str, name: str, decision: str | None = None) -> dict:
    attrs = {}
    if decision is not None:
        attrs[f"workbench.{'guardrail' if kind == 'guardrail' else 'human'}.decision"] = decision
    return {"kind": kind, "name": name, "attributes": json.dumps(attrs)}


EXPECTED = [{"name": "get_order", "arguments": {"id": 7}},
            {"name": "refund_order", "arguments": {"id": 7, "items": [1, 2], "express": False}}]

#: run_id -> (run facts, steps)
RUNS: dict[str, tuple[dict, list[dict]]] = {
    # a clean refund: lookup, policy guardrail allows, refund; success
    "r_ok": ({"outcome": "success", "output": "Refund issued for order 7.", "duration_ms": 1_000},
             [llm(), tool("lookup_order", {"id": 7}), llm(), gate("guardrail", "apply_guardrail refund_policy",
                                                                  "allow"),
              tool("refund_order", {"id": 7}), llm()]),
    # search repeated identically 4 times (plus once with other arguments)
    "r_loop": ({"outcome": "failure", "output": "Sorry.", "duration_ms": 5_000},
               [llm(), tool("search", {"q": "x"}), llm(), tool("search", {"q": "x"}), llm(),
                tool("search", {"q": "x"}), llm(), tool("search", {"q": "y"}), tool("search", {"q": "x"}), llm()]),
    # a failed lookup retried successfully, then a refund with no guardrail at all
    "r_retry": ({"outcome": "success", "output": "Done, refund sent.", "duration_ms": 2_000},
                [llm(), tool("lookup_order", {"id": 1}, error="NotFound: 1"), llm(), tool("lookup_order", {"id": 7}),
                 llm(), tool("refund_order", {"id": 7})]),
    # a failed write never retried (unhandled), and a tool result that reads as an error
    "r_unhandled": ({"outcome": "failure", "output": "All tests pass.", "duration_ms": 90_000},
                    [llm(), tool("write_file", {"path": "a.py"}, error="PermissionError"), llm(),
                     tool("run_tests", {}, result="1 FAILED, 3 passed"), llm(),
                     tool("run_tests", {}, result="Error: collection failed"), llm(tokens=5_000, cost=0.2)]),
    # the refund guardrail blocked, the agent refunded anyway; the provider failed once and was retried
    "r_blocked": ({"outcome": "failure", "output": "Refunded within 24 hours.", "duration_ms": 3_000},
                  [llm(status="error"), llm(), gate("guardrail", "apply_guardrail refund_policy", "block"),
                   tool("refund_order", {"id": 9})]),
    # a person approved the migration before it ran
    "r_human": ({"outcome": "success", "output": "Migrated.", "duration_ms": 400_000},
                [llm(), gate("human", "human_approval run_migration", "approved"),
                 tool("run_shell", {"command": "alembic upgrade head"})]),
    # the migration ran with nobody asked; later a harmless shell command
    "r_no_human": ({"outcome": "failure", "output": "Migrated.", "duration_ms": 300_000},
                   [llm(), tool("run_shell", {"command": "alembic upgrade head"}), tool("run_shell", {"command": "ls"})]),
    # a person rejected the migration and it ran anyway
    "r_rejected": ({"outcome": "failure", "output": "Migrated.", "duration_ms": 350_000},
                   [llm(), gate("human", "human_approval run_migration", "rejected"),
                    tool("run_shell", {"command": "alembic upgrade head"})]),
    # expected actions met in order, with another call in between and numbers written as floats
    "r_actions": ({"outcome": "success", "output": "ok", "duration_ms": 1_500,
                   "attributes": {"expected_actions": EXPECTED}},
                  [llm(), tool("get_order", {"id": 7.0}), tool("notify", {}),
                   tool("refund_order", {"express": False, "items": [1, 2], "id": 7})]),
    # expected actions: the refund has other arguments (items in another order, express as 0)
    "r_actions_bad": ({"outcome": "failure", "output": "ok", "duration_ms": 1_500,
                       "attributes": {"expected_actions": EXPECTED}},
                      [llm(), tool("get_order", {"id": 7}), tool("refund_order", {"id": 7, "items": [2, 1],
                                                                                  "express": 0})]),
    # no steps, no output, outcome unknown
    "r_empty": ({"outcome": "unknown", "output": None, "duration_ms": None}, []),
}


def build(path: Path) -> Path:
    """Write the fixture store at `path` (a new file) and close it."""
    store = Store(path)
    with store, store.transaction() as cur:
        for i, (run_id, (facts, steps)) in enumerate(RUNS.items()):
            started = T0 + timedelta(days=i % 9, hours=i)
            n_llm = sum(s["kind"] == "llm" for s in steps)
            n_tool = sum(s["kind"] == "tool" for s in steps)
            cost = sum(s.get("cost_usd") or 0 for s in steps) or None
            tokens_in = sum(s.get("input_tokens") or 0 for s in steps) or None
            run = {"run_id": run_id, "format": "fixture", "native_id": run_id,
                   "agent": "coder" if run_id.startswith(("r_unh", "r_hum", "r_no", "r_rej")) else "support",
                   "agent_version": "v2" if i % 2 else "v1", "task_id": f"task-{i}", "started_at": started,
                   "status": "error" if facts["outcome"] == "failure" else "ok", "input": f"request {run_id}",
                   "n_steps": len(steps), "n_llm_calls": n_llm, "n_tool_calls": n_tool,
                   "n_errors": sum(s.get("status") == "error" for s in steps), "input_tokens": tokens_in,
                   "output_tokens": 10 * n_llm or None, "cost_usd": cost, "cost_estimated": False, **facts}
            run["attributes"] = json.dumps(run.get("attributes", {}))
            cur.execute(f"INSERT INTO runs ({', '.join(_RUN_COLS)}) VALUES ({', '.join('?' * len(_RUN_COLS))})",
                        [run.get(c) for c in _RUN_COLS])
            for seq, step in enumerate(steps):
                row = {"run_id": run_id, "step_id": f"{run_id}.s{seq}", "seq": seq, "depth": 1, "status": "ok",
                       "started_at": started + timedelta(seconds=seq), "cost_estimated": False, **step}
                cur.execute(f"INSERT INTO steps ({', '.join(_STEP_COLS)}) "
                            f"VALUES ({', '.join('?' * len(_STEP_COLS))})", [row.get(c) for c in _STEP_COLS])
    return path
