"""Replay benchmark: open a 2,000-step run (step list + waterfall, server side) and align two such runs.

    python bench/replay.py [--steps 2000] [--repeat 5] [--history 40]

Builds a store with two synthetic runs of `--steps` steps (an agent root, then LLM call / tool call pairs
over ten tools, with errors and a loop; run B is run A with about 5% of the calls changed, dropped or
added). LLM steps carry their conversation the way OTLP GenAI spans do, capped at the last `--history`
messages (a context window), so reading the step list pays for the JSON it has to look into.

Measured, each warmed up once and then timed `--repeat` times (median):

- open: what the Replay page computes before it renders: `load_replay` (run row, step list with signatures,
  loop findings, labels), the grid's Arrow conversion of the step list, and the waterfall figure built and
  serialized to JSON (what st.plotly_chart sends). Baseline, same machine and run: the straightforward way,
  every step with its payloads read into pandas, messages and arguments parsed with `json.loads` per step,
  and a waterfall with one bar trace per step.
- page: the Replay page's whole script run for that run in Streamlit's AppTest (the server side of opening
  the page: every query, the grid, both charts and the step detail turned into the messages sent to the
  browser), with the data caches cleared before each run ("cold") and then once more with them ("warm").
- align: `compare_runs`' work on the two loaded replays (`comparison_of`: numpy DP, traceback, pair table).
  Baseline: the same edit distance with a plain two-loop Python DP (`edit_distance_reference`, cost only,
  no traceback).

Targets (issue 4): open < 1.5 s, align < 1 s. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import pyarrow as pa  # noqa: E402
from _common import DEFAULT_WORKDIR, ROOT, median, remove_db, table  # noqa: E402

from workbench import queries, viz  # noqa: E402
from workbench.replay import load_replay  # noqa: E402
from workbench.replay.align import edit_distance_reference  # noqa: E402
from workbench.replay.compare import comparison_of  # noqa: E402
from workbench.store import Store  # noqa: E402

TARGET_OPEN_S = 1.5
TARGET_ALIGN_S = 1.0
TOOLS = ["search_code", "read_file", "write_file", "run_tests", "run_shell", "git_diff", "lookup_order",
         "get_customer", "search_kb", "send_email"]
GRID_COLUMNS = ["seq", "label", "kind", "duration_ms", "status", "flags", "error"]


def _calls(rng: random.Random, n_calls: int) -> list[tuple[str, dict]]:
    calls = []
    for i in range(n_calls):
        tool = rng.choice(TOOLS)
        calls.append((tool, {"path": f"src/mod_{rng.randrange(60)}.py", "query": f"q{rng.randrange(40)}",
                             "i": i % 7}))
    for k in range(5):  # a loop: the same call five times
        calls.insert(n_calls // 2 + k, ("run_tests", {"target": "tests/test_loop.py"}))
    return calls[:n_calls]


def _perturb(rng: random.Random, calls: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    out = []
    for tool, args in calls:
        r = rng.random()
        if r < 0.02:
            continue  # dropped
        if r < 0.04:
            args = {**args, "query": args["query"] + "-changed"}
        out.append((tool, args))
        if rng.random() < 0.01:
            out.append((rng.choice(TOOLS), {"path": "extra.py", "query": "x", "i": 0}))
    return out


def _run_rows(run_id: str, calls: list[tuple[str, dict]], history: int, rng: random.Random) -> list[dict]:
    t = datetime(2026, 11, 2, 9, 0, 0)
    rows = [{"run_id": run_id, "step_id": "root", "parent_step_id": None, "seq": 0, "depth": 0, "kind": "agent",
             "name": "invoke_agent bench", "started_at": t, "duration_ms": None, "status": "ok"}]
    convo: list[dict] = [{"role": "user", "content": "Fix the failing test in the payments module, please."}]
    seq = 1
    for k, (tool, args) in enumerate(calls):
        call = {"id": f"call_{run_id}_{k}", "name": tool, "arguments": args}
        said = {"role": "assistant", "content": f"Step {k}: calling {tool}.", "tool_calls": [call]}
        llm_ms, tool_ms = 400 + rng.random() * 900, 20 + rng.random() * 600
        rows.append({"run_id": run_id, "step_id": f"l{k}", "parent_step_id": "root", "seq": seq, "depth": 1,
                     "kind": "llm", "name": "chat model-x", "started_at": t, "duration_ms": llm_ms, "status": "ok",
                     "model": "gpt-4.1-mini", "messages": json.dumps((convo + [said])[-history:]),
                     "input_tokens": 1200 + 60 * k, "output_tokens": 40, "cost_usd": 0.0004 + 0.00002 * k})
        t += timedelta(milliseconds=llm_ms)
        error = "TimeoutError: took too long" if rng.random() < 0.02 else None
        result = f"result of {tool} #{k % 50}: " + "x" * rng.randrange(50, 800)
        rows.append({"run_id": run_id, "step_id": f"t{k}", "parent_step_id": "root", "seq": seq + 1, "depth": 1,
                     "kind": "tool", "name": f"execute_tool {tool}", "started_at": t, "duration_ms": tool_ms,
                     "status": "error" if error else "ok", "error": error, "tool_name": tool,
                     "tool_args": json.dumps(args), "tool_result": None if error else result})
        t += timedelta(milliseconds=tool_ms)
        convo += [said, {"role": "tool", "content": error or result, "tool_call_id": call["id"]}]
        seq += 2
    rows[0]["duration_ms"] = (t - rows[0]["started_at"]).total_seconds() * 1000
    return rows


def build(path: Path, n_steps: int, history: int, seed: int = 3) -> tuple[str, str]:
    """A fresh store with run A and run B of about `n_steps` steps each; returns their ids."""
    remove_db(path)
    rng = random.Random(seed)
    calls_a = _calls(rng, (n_steps - 1) // 2)
    calls_b = _perturb(rng, calls_a)
    steps = pd.DataFrame(_run_rows("bench-run-a", calls_a, history, rng) + _run_rows("bench-run-b", calls_b,
                                                                                      history, rng))
    store = Store(path)
    with store, store.transaction() as cur:
        cur.register("new_steps", steps)
        cur.execute("INSERT INTO steps BY NAME SELECT * FROM new_steps")
        cur.execute(
            "INSERT INTO runs (run_id, format, native_id, agent, agent_version, task_id, started_at, duration_ms, "
            "status, outcome, n_steps, input_tokens, output_tokens, cost_usd, cost_estimated) "
            "SELECT run_id, 'bench', run_id, 'bench-agent', CASE WHEN run_id LIKE '%a' THEN 'v1' ELSE 'v2' END, "
            "'bench.task', min(started_at), max(duration_ms) FILTER (WHERE depth = 0), 'ok', "
            "CASE WHEN run_id LIKE '%a' THEN 'failure' ELSE 'success' END, count(*), sum(input_tokens), "
            "sum(output_tokens), sum(cost_usd), true FROM steps GROUP BY run_id")
    return "bench-run-a", "bench-run-b"


# -- what is measured ---------------------------------------------------------------------------------------
def open_replay(store: Store, run_id: str) -> dict:
    rp = load_replay(store, run_id)
    grid = pa.Table.from_pandas(rp.steps[GRID_COLUMNS], preserve_index=False)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, grid.schema) as writer:
        writer.write_table(grid)
    figure = viz.waterfall(rp.steps, selected=0).to_json()
    return {"steps": len(rp.steps), "findings": len(rp.findings), "grid_bytes": sink.tell(),
            "figure_bytes": len(figure)}


def open_naive(store: Store, run_id: str) -> dict:
    frame = queries.run_steps(store, run_id, payloads=True)
    calls, errors = [], 0
    for raw_messages, raw_args in zip(frame["messages"], frame["tool_args"], strict=True):
        msgs = json.loads(raw_messages) if isinstance(raw_messages, str) else []
        calls.append([c["name"] for m in msgs[-1:] for c in m.get("tool_calls") or []])
        args = json.loads(raw_args) if isinstance(raw_args, str) else None
        errors += args is None
    t0 = frame["started_at"].min()
    fig = go.Figure()
    for row in frame.itertuples():
        fig.add_bar(x=[row.duration_ms or 0], base=[(row.started_at - t0).total_seconds() * 1000],
                    y=[row.seq], orientation="h", name=str(row.kind), showlegend=False)
    return {"steps": len(frame), "figure_bytes": len(fig.to_json())}


def page_runs(db: Path, run_id: str, n_steps: int, repeat: int) -> tuple[float, float]:
    """Median seconds of the Replay page's script run with cleared caches, and of one run with warm caches."""
    os.environ["WORKBENCH_DB"] = str(db)
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.query_params["run"] = run_id
    at.run()
    at.switch_page("app_pages/run.py")
    at.query_params["run"] = run_id
    at.run().run()  # the run after switch_page sees the URL's values on the next one (see tests/test_pages.py)
    assert not at.exception and at.code[0].value == run_id, [e.value for e in at.exception]
    grid = next(d.value for d in at.dataframe if "label" in d.value.columns)
    assert len(grid) == n_steps
    cold = []
    for _ in range(repeat):
        st.cache_data.clear()
        started = time.perf_counter()
        at.run()
        cold.append(time.perf_counter() - started)
    started = time.perf_counter()
    at.run()
    return median(cold), time.perf_counter() - started


def timed(fn, repeat: int) -> tuple[float, object]:
    result = fn()  # warm-up (and the value reported)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--history", type=int, default=40, help="messages kept per LLM step (context window)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = args.workdir / f"bench-replay-{args.steps}.duckdb"
    started = time.perf_counter()
    a, b = build(db, args.steps, args.history)
    print(f"built {db} in {time.perf_counter() - started:.1f} s")
    store = Store(db, read_only=True)
    try:
        open_s, opened = timed(lambda: open_replay(store, a), args.repeat)
        naive_s, naive = timed(lambda: open_naive(store, a), max(1, args.repeat // 2))
        ra, rb = load_replay(store, a), load_replay(store, b)
        align_s, cmp = timed(lambda: comparison_of(ra, rb), args.repeat)
        sa, sb = list(ra.steps["signature"]), list(rb.steps["signature"])
        ka = list(ra.steps["kind"] + "|" + ra.steps["key"])
        kb = list(rb.steps["kind"] + "|" + rb.steps["key"])
        ref_s, ref_cost = timed(lambda: edit_distance_reference(sa, sb, ka, kb), 1)
    finally:
        store.close()
    assert ref_cost == cmp.distance, (ref_cost, cmp.distance)  # the fast DP is exact, not an approximation
    page_cold_s, page_warm_s = page_runs(db, a, len(ra.steps), args.repeat)
    print(f"run A: {opened['steps']:,} steps, {opened['findings']} findings; run B: {len(rb.steps):,} steps; "
          f"{len(cmp.pairs):,} aligned pairs, edit cost {cmp.distance}, first divergence at pair "
          f"{cmp.first_divergence}")
    rows = [
        ["open 2k-step run (replay + grid + waterfall)", f"{open_s:.3f}", f"{naive_s:.3f}",
         f"{naive_s / open_s:.1f}x", f"< {TARGET_OPEN_S}", "ok" if open_s < TARGET_OPEN_S else "MISSED"],
        ["Replay page script run, cold caches", f"{page_cold_s:.3f}", "", "", f"< {TARGET_OPEN_S}",
         "ok" if page_cold_s < TARGET_OPEN_S else "MISSED"],
        ["Replay page script run, warm caches", f"{page_warm_s:.3f}", "", "", "", ""],
        ["align two 2k-step runs", f"{align_s:.3f}", f"{ref_s:.3f}", f"{ref_s / align_s:.1f}x",
         f"< {TARGET_ALIGN_S}", "ok" if align_s < TARGET_ALIGN_S else "MISSED"],
    ]
    print(table(["measure", "workbench s", "baseline s", "speed-up", "target s", ""], rows))
    print(json.dumps({"steps": args.steps, "open_s": round(open_s, 4), "open_naive_s": round(naive_s, 4),
                      "page_cold_s": round(page_cold_s, 4), "page_warm_s": round(page_warm_s, 4),
                      "align_s": round(align_s, 4), "align_reference_s": round(ref_s, 4),
                      "grid_bytes": opened["grid_bytes"], "figure_bytes": opened["figure_bytes"],
                      "naive_figure_bytes": naive["figure_bytes"]}))


if __name__ == "__main__":
    main()
