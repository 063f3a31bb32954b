"""Ingest benchmark: the workbench's OTLP ingest against a notebook baseline and DuckDB's own JSON reader.

    python bench/ingest.py [--spans 100000] [--keep] [--workdir DIR] [--skip-baseline]

Each method runs in a fresh interpreter, so its peak memory is its own, and writes a new DuckDB file:

* workbench: `workbench.ingest.ingest_file` on a default `Store` (what `workbench ingest` runs), checked
  afterwards: steps stored = spans in the file, runs = traces;
* baseline: `json.loads` per line, spans flattened into dicts, a pandas DataFrame, `CREATE TABLE ... AS`;
* floor: `CREATE TABLE raw AS SELECT * FROM read_json(...)` with the store's memory settings;
* copy: each line's text stored as one VARCHAR, not parsed into columns at all: the least any loader that keeps
  the payloads must spend, so `baseline / copy` is the highest ratio over the baseline any such loader can reach.

Prints figures, asserts nothing about time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - the path above makes `_common` importable as a script
    DEFAULT_WORKDIR,
    MIB,
    TimedConnection,
    emit_result,
    peak_rss_mib,
    remove_db,
    run_child,
    table,
    trace_file,
)

METHODS = ("workbench", "baseline", "floor", "copy")
TARGET_FLOOR_RATIO = 0.5
TARGET_BASELINE_RATIO = 3.0
TARGET_PEAK_MIB = 1.5 * 1024


# -- the three methods, each run in its own child process -------------------------------------------------
def child_workbench(path: Path, db: Path, expect_spans: int, expect_traces: int) -> dict:
    import workbench.ingest as ingest
    from workbench.store import Store

    timings: dict[str, float] = {}
    original_hash = ingest.file_sha256

    def timed_hash(p: Path) -> str:
        started = time.perf_counter()
        digest = original_hash(p)
        timings["(python) sha256 of the file"] = time.perf_counter() - started
        return digest

    ingest.file_sha256 = timed_hash
    started = time.perf_counter()
    store = Store(db)
    store.con = TimedConnection(store.con, timings)  # per-statement timings; the statements are unchanged
    result = ingest.ingest_file(store, path)
    store.close()
    seconds = time.perf_counter() - started
    if result.status != "ok":
        return {"error": f"ingest {result.status}: {result.message}", "seconds": seconds}
    check = Store(db, read_only=True)
    steps, runs = check.sql("SELECT (SELECT count(*) FROM steps), (SELECT count(*) FROM runs)").fetchone()
    check.close()
    print(f"stored {steps:,} steps (file: {expect_spans:,} spans) and {runs:,} runs "
          f"(file: {expect_traces:,} traces): {'OK' if (steps, runs) == (expect_spans, expect_traces) else 'MISMATCH'}")
    top = sorted(timings.items(), key=lambda kv: -kv[1])[:8]
    return {"seconds": seconds, "peak_mib": peak_rss_mib(), "rows": steps, "runs": runs,
            "verified": (steps, runs) == (expect_spans, expect_traces),
            "statements": [[k, round(v, 2)] for k, v in top]}


def _value(v: dict):
    """An OTLP AnyValue as a plain Python value (intValue is a string in OTLP/JSON)."""
    if "intValue" in v:
        return int(v["intValue"])
    for key in ("stringValue", "doubleValue", "boolValue"):
        if key in v:
            return v[key]
    return v.get("arrayValue") or v.get("kvlistValue")


def _flatten(line: str) -> list[dict]:
    """The spans of one OTLP line as flat dicts, the way a notebook would write it."""
    rows = []
    for rs in json.loads(line).get("resourceSpans", []):
        resource = {a["key"]: _value(a["value"]) for a in rs.get("resource", {}).get("attributes", [])}
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                attrs = {a["key"]: _value(a["value"]) for a in sp.get("attributes", [])}
                start, end = int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"])
                status = sp.get("status", {})
                rows.append({
                    "trace_id": sp["traceId"],
                    "span_id": sp["spanId"],
                    "parent_span_id": sp.get("parentSpanId"),
                    "name": sp.get("name"),
                    "service": resource.get("service.name"),
                    "start_ns": start,
                    "end_ns": end,
                    "duration_ms": (end - start) / 1e6,
                    "status_code": status.get("code", 0),
                    "status_message": status.get("message"),
                    "operation": attrs.get("gen_ai.operation.name"),
                    "model": attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model"),
                    "input_tokens": attrs.get("gen_ai.usage.input_tokens"),
                    "output_tokens": attrs.get("gen_ai.usage.output_tokens"),
                    "tool_name": attrs.get("gen_ai.tool.name"),
                    "attributes": json.dumps(attrs),
                })
    return rows


def child_baseline(path: Path, db: Path) -> dict:
    import duckdb
    import pandas as pd

    started = time.perf_counter()
    rows: list[dict] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rows.extend(_flatten(line))
    parsed = time.perf_counter()
    df = pd.DataFrame(rows)
    del rows
    df["started_at"] = pd.to_datetime(df["start_ns"], unit="ns")
    df["ended_at"] = pd.to_datetime(df["end_ns"], unit="ns")
    framed = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE spans AS SELECT * FROM df")
    n = con.execute("SELECT count(*) FROM spans").fetchone()[0]
    con.close()
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": peak_rss_mib(), "rows": n,
            "phases": {"read + json.loads + flatten": round(parsed - started, 2),
                       "DataFrame": round(framed - parsed, 2),
                       "CREATE TABLE + close": round(seconds - (framed - started), 2)}}


def child_floor(path: Path, db: Path) -> dict:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(db), config={"memory_limit": "1GB", "preserve_insertion_order": "false",
                                          "autoinstall_known_extensions": "false",
                                          "autoload_known_extensions": "false"})
    con.execute("SET temp_directory = $1", [str(db.parent / ".duckdb_tmp")])
    con.execute("CREATE TABLE raw AS SELECT * FROM read_json($path, format='newline_delimited')",
                {"path": str(path)})
    n = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    con.close()
    return {"seconds": time.perf_counter() - started, "peak_mib": peak_rss_mib(), "rows": n}


def child_copy(path: Path, db: Path) -> dict:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(db), config={"memory_limit": "1GB", "preserve_insertion_order": "false",
                                          "autoinstall_known_extensions": "false",
                                          "autoload_known_extensions": "false"})
    con.execute("CREATE TABLE raw (line VARCHAR)")
    con.execute("INSERT INTO raw SELECT json FROM read_json_objects($path, format='newline_delimited')",
                {"path": str(path)})
    n = con.execute("SELECT count(*) FROM raw").fetchone()[0]
    con.close()
    return {"seconds": time.perf_counter() - started, "peak_mib": peak_rss_mib(), "rows": n}


def _child_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("method", choices=METHODS)
    p.add_argument("--file", type=Path, required=True)
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--spans", type=int, default=0)
    p.add_argument("--traces", type=int, default=0)
    a = p.parse_args(argv)
    remove_db(a.db)
    try:
        if a.method == "workbench":
            result = child_workbench(a.file, a.db, a.spans, a.traces)
        elif a.method == "baseline":
            result = child_baseline(a.file, a.db)
        elif a.method == "floor":
            result = child_floor(a.file, a.db)
        else:
            result = child_copy(a.file, a.db)
    except Exception as exc:  # report it as the method's result; the other methods still run
        result = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:400]}",
                  "peak_mib": peak_rss_mib()}
    emit_result(result)


# -- the parent: generate, run each method, compare -----------------------------------------------------
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spans", type=int, default=100_000, help="spans in the generated file (default 100000)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                   help=f"where the file and the databases go (default {DEFAULT_WORKDIR})")
    p.add_argument("--keep", action="store_true", help="keep the databases (the JSONL file is always kept)")
    p.add_argument("--skip-baseline", action="store_true", help="skip the json.loads + pandas baseline")
    args = p.parse_args(argv)

    tf = trace_file(args.workdir, args.spans, args.seed)
    mb = tf.size_bytes / 1e6
    print(f"file: {tf.path}  {mb:,.1f} MB, {tf.spans:,} spans in {tf.traces:,} traces (seed {tf.seed}); "
          + (f"reused (generated earlier in {tf.generation_s:.1f} s)" if tf.reused
             else f"generated in {tf.generation_s:.1f} s"))

    results: dict[str, dict] = {}
    for method in METHODS:
        if method == "baseline" and args.skip_baseline:
            continue
        db = args.workdir / f"bench-{method}-{tf.spans}.duckdb"
        load = os.getloadavg()[0]
        print(f"\n[{method}] -> {db}  (load average before: {load:.1f} on {os.cpu_count()} cores)", flush=True)
        extra = ["--spans", str(tf.spans), "--traces", str(tf.traces)]
        results[method] = run_child(Path(__file__), ["--child", method, "--file", str(tf.path), "--db", str(db),
                                                     *extra])
        r = results[method]
        r["load_before"] = round(load, 1)
        if "error" in r:
            print(f"    FAILED: {r['error']}")
        else:
            print(f"    {r['seconds']:.1f} s, peak {r['peak_mib']:,.0f} MiB, {r['rows']:,} rows")
        for name, secs in r.get("statements", []):
            print(f"      {secs:8.2f} s  {name}")
        for name, secs in r.get("phases", {}).items():
            print(f"      {secs:8.2f} s  {name}")
        if db.exists():
            r["db_mib"] = round(db.stat().st_size / MIB, 1)
            print(f"    database file {r['db_mib']:,.0f} MiB" + ("" if args.keep else " (removed; --keep keeps it)"))
        if not args.keep:
            remove_db(db)
    _report(tf, results)


def _report(tf, results: dict[str, dict]) -> None:
    mb = tf.size_bytes / 1e6
    rows = []
    for method, r in results.items():
        if "error" in r:
            peak = f"{r['peak_mib']:,.0f}" if "peak_mib" in r else "-"
            rows.append([method, "failed", "-", "-", peak])
            continue
        s = r["seconds"]
        rows.append([method, f"{s:.1f}", f"{tf.spans / s:,.0f}", f"{mb / s:.1f}", f"{r['peak_mib']:,.0f}"])
    print(f"\n{tf.spans:,} spans, {tf.traces:,} traces, {mb:,.1f} MB (MB = 10^6 bytes)\n")
    print(table(["method", "seconds", "spans/s", "MB/s", "peak RSS MiB"], rows))

    def secs(m: str) -> float | None:
        r = results.get(m)
        return r["seconds"] if r and "error" not in r else None

    ours, base, floor, copy = secs("workbench"), secs("baseline"), secs("floor"), secs("copy")
    summary: dict[str, object] = {"spans": tf.spans, "traces": tf.traces, "file_mb": round(mb, 1)}
    print()
    if ours and floor:
        ratio = floor / ours
        summary["workbench_over_floor"] = round(ratio, 2)
        print(f"workbench rate / floor rate    = {ratio:.2f}  (target >= {TARGET_FLOOR_RATIO}: "
              f"{'met' if ratio >= TARGET_FLOOR_RATIO else 'NOT met'})")
    if ours and base:
        ratio = base / ours
        summary["workbench_over_baseline"] = round(ratio, 2)
        print(f"workbench rate / baseline rate = {ratio:.2f}  (target >= {TARGET_BASELINE_RATIO}: "
              f"{'met' if ratio >= TARGET_BASELINE_RATIO else 'NOT met'})")
    if base and copy:
        ceiling = base / copy
        summary["baseline_over_copy"] = round(ceiling, 2)
        print(f"baseline rate / copy rate      = {ceiling:.2f}  (the most any loader that stores the payloads "
              f"could reach over the baseline here; the 3x target needs >= 3)")
    wb = results.get("workbench", {})
    if "peak_mib" in wb:
        ok = wb["peak_mib"] < TARGET_PEAK_MIB
        print(f"workbench peak RSS {wb['peak_mib']:,.0f} MiB < 1.5 GiB: {'yes' if ok else 'NO'}")
    if "verified" in wb:
        print(f"workbench stored steps = spans and runs = traces: {'yes' if wb['verified'] else 'NO'}")
    for method, r in results.items():
        summary[method] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                           if k in ("seconds", "peak_mib", "rows", "error", "verified", "db_mib", "load_before")}
        if "seconds" in r and "error" not in r:
            summary[method]["spans_per_s"] = round(tf.spans / r["seconds"])
            summary[method]["mb_per_s"] = round(mb / r["seconds"], 1)
    print("\n" + json.dumps(summary))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
    else:
        main()
