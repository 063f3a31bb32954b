"""Shared helpers of the benchmarks: the generated OTLP file, child processes, timing and tables.

The benchmark file is the demo fleet as OTLP JSONL (`workbench.demo.iter_trace_lines`), cached in the work
folder next to a small `.meta.json` so a re-run with the same size and seed skips the generation.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/x.py` from a clone, without installing the package
    sys.path.insert(0, str(ROOT))

DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "workbench-bench"
RESULT_MARK = "BENCH-RESULT "
MIB = 1024 * 1024


@dataclass(frozen=True)
class TraceFile:
    """A generated benchmark file and what is in it."""

    path: Path
    requested_spans: int
    seed: int
    spans: int
    """Spans actually written: the generator stops after the trace that reaches `requested_spans`."""
    traces: int
    """Lines; one trace per line."""
    size_bytes: int
    generation_s: float
    """Seconds the generation took when the file was made (a reused file keeps the figure from then)."""
    reused: bool = False


def trace_file(workdir: Path, n_spans: int, seed: int = 1) -> TraceFile:
    """The OTLP JSONL file of `n_spans` spans for `seed` in `workdir`: reused when present and intact."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"otlp-{n_spans}-seed{seed}.jsonl"
    meta = path.with_suffix(".meta.json")
    if path.exists() and meta.exists():
        info = json.loads(meta.read_text())
        if (info.get("requested_spans"), info.get("seed"), info.get("size_bytes")) == (
                n_spans, seed, path.stat().st_size):
            return TraceFile(path=path, **{k: v for k, v in info.items() if k != "path"}, reused=True)
    from workbench.demo import iter_trace_lines

    started = time.perf_counter()
    spans = traces = 0
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8", newline="\n") as out:
        for line in iter_trace_lines(seed, n_spans=n_spans):
            # `"spanId":"` occurs once per span; inside a JSON string its quotes would be escaped
            spans += line.count('"spanId":"')
            traces += 1
            out.write(line)
            out.write("\n")
    partial.replace(path)
    info = TraceFile(path=path, requested_spans=n_spans, seed=seed, spans=spans, traces=traces,
                     size_bytes=path.stat().st_size, generation_s=round(time.perf_counter() - started, 2))
    meta.write_text(json.dumps({k: v for k, v in asdict(info).items() if k not in ("path", "reused")}))
    return info


class TimedConnection:
    """Wraps a DuckDB connection or cursor and adds up the seconds of each statement run through it.

    Cursors it hands out are wrapped too, so code that takes `store.con.cursor()` is timed unchanged.
    Statements are keyed by their first 90 characters, whitespace collapsed.
    """

    def __init__(self, inner, timings: dict[str, float]):
        self._inner = inner
        self.timings = timings

    def cursor(self) -> TimedConnection:
        return TimedConnection(self._inner.cursor(), self.timings)

    def execute(self, query, *args, **kwargs) -> TimedConnection:
        started = time.perf_counter()
        self._inner.execute(query, *args, **kwargs)
        key = " ".join(str(query).split())[:90]
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - started
        return self

    def __getattr__(self, name):
        return getattr(self._inner, name)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB.

    Linux's VmHWM belongs to this program alone. `ru_maxrss` survives exec: a child started from a parent
    holding 1 GiB would report at least that (Linux reports it in KiB), so it is only the fallback."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit_result(result: dict) -> None:
    """Print a child's result as the one line its parent looks for."""
    print(RESULT_MARK + json.dumps(result), flush=True)


def run_child(script: Path, args: list[str]) -> dict:
    """Run `script` with `args` in a fresh interpreter and return the result it emitted.

    The child's output other than the result line passes through, so its progress shows. A child that
    fails or emits nothing comes back as {"error": ...} instead of stopping the other measurements.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True, env=env,
                            cwd=ROOT)
    result: dict | None = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
        else:
            sys.stdout.write("    | " + line)
    code = proc.wait()
    if code != 0 or result is None:
        return {"error": f"child exited with status {code}" + ("" if result else " and no result")}
    return result


def remove_db(path: Path) -> None:
    """Delete a DuckDB file and its write-ahead log, if present."""
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation, as numpy's default."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain text table, numbers right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]

    def fmt(row: list[str], is_header: bool = False) -> str:
        out = []
        for i, c in enumerate(row):
            numeric = not is_header and c.replace(".", "", 1).replace(",", "").replace("-", "", 1).isdigit()
            out.append(c.rjust(widths[i]) if numeric else c.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [fmt(headers, True), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells]
    return "\n".join(lines)
