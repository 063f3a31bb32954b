"""OTLP/JSON traces with GenAI (current and deprecated) and OpenInference attributes: `runs.format = 'otlp'`.

Reads the Collector file exporter's JSON Lines (one `ExportTraceServiceRequest` per line) and single JSON
documents. The mapping runs in DuckDB (`otlp_sql.py`); this module drives it and reports what it could not
read. Log/event exports (`resourceLogs`) carry no spans: their records are reported as rejects with the reason.
`prepare_spans` / `insert_spans` / `finish_spans` / `derive_span_run_facts` are shared with the
`openinference` loader, which turns span dumps into OTLP spans first.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from workbench.loaders import StageContext
from workbench.loaders.base import estimate_costs
from workbench.loaders.documents import EXCERPT_CHARS, file_excerpt
from workbench.loaders.otlp_sql import MACROS, RESOURCE_SPANS_TYPE, RUN_FACTS, TEXT_MACROS, spans_query
from workbench.loaders.parse import read_json_lines
from workbench.models import Reject

_EXTRA_COLUMNS = {"_trace_id": "VARCHAR", "_res_service": "VARCHAR", "_res_version": "VARCHAR",
                  "_res_env": "VARCHAR", "_bad": "BOOLEAN", "_has_logs": "BOOLEAN"}


class OtlpLoader:
    """OpenTelemetry OTLP/JSON trace exports (`.json`, `.jsonl`)."""

    name = "otlp"

    def sniff(self, path: Path, head: bytes) -> bool:
        if path.suffix.lower() not in {".json", ".jsonl", ".ndjson", ".otlp"}:
            return False
        return b'"resourceSpans"' in head or b'"resourceLogs"' in head

    # -- staging ---------------------------------------------------------------------------------------
    def stage(self, cur: duckdb.DuckDBPyConnection, path: Path, ctx: StageContext) -> list[Reject]:
        json_format = "newline_delimited" if _is_json_lines(path) else "auto"
        # read_json_objects + a cast parses faster than read_json with a nested `columns` type, and a bad
        # line becomes a NULL row we can count instead of an error that aborts the file.
        docs = (f"read_json_objects($path, format='{json_format}', ignore_errors=true, "
                "maximum_object_size=$max_bytes)")
        prepare_spans(cur)
        insert_spans(cur, docs, {"path": str(path), "max_bytes": ctx.max_record_bytes}, self.name)
        rejects = self._rejects(cur, path, json_format, ctx)
        finish_spans(cur, self.name)
        return rejects

    def derive_run_facts(self, cur: duckdb.DuckDBPyConnection) -> None:
        """After steps are merged: agent, version, outcome, input/output from each run's root span."""
        derive_span_run_facts(cur, self.name)

    # -- rejects ---------------------------------------------------------------------------------------
    def _rejects(self, cur, path: Path, json_format: str, ctx: StageContext) -> list[Reject]:
        n_bad, n_logs = cur.execute(
            "SELECT count(*) FILTER (_bad AND NOT _has_logs), count(*) FILTER (_has_logs) FROM _stage_steps "
            "WHERE _trace_id IS NULL"
        ).fetchone()
        rejects: list[Reject] = []
        if n_logs:
            rejects.append(Reject(
                location="file",
                reason=f"{n_logs} record(s) hold OTLP logs/events (resourceLogs), not spans; "
                       "log records are not runs and were not loaded",
            ))
        if n_bad:
            if json_format == "newline_delimited":
                rejects.extend(_locate_bad_lines(path, n_bad, ctx))
            else:
                rejects.append(Reject(location="file", reason=_document_error(path),
                                      excerpt=file_excerpt(path)))
        return rejects


def prepare_spans(cur: duckdb.DuckDBPyConnection) -> None:
    """Macros and helper columns `insert_spans` needs; once per staging."""
    cur.execute(MACROS)
    cur.execute(TEXT_MACROS)
    # the spans go straight into the staging table (one copy of the payloads, not two); the extra
    # columns carry per-span facts the merge does not need and are dropped with the staging table
    for column, kind in _EXTRA_COLUMNS.items():  # identifiers from the module constant only
        cur.execute(f"ALTER TABLE _stage_steps ADD COLUMN {column} {kind}")


def insert_spans(cur: duckdb.DuckDBPyConnection, docs: str, params: dict, fmt: str) -> None:
    """Map OTLP documents into `_stage_steps`, their runs keyed by the loader name `fmt`.

    `docs` is a table expression with one column `json` holding one `ExportTraceServiceRequest` per row.
    Rows that are not one (bad JSON, wrong shape, logs) stay in the table with a NULL `_trace_id` until
    `finish_spans`, so the caller can count and locate them first.
    """
    source = f"""(
        SELECT doc.resourceSpans AS resourceSpans,
               doc IS NULL OR (doc.resourceSpans IS NULL AND doc.resourceLogs IS NULL) AS bad,
               doc.resourceLogs IS NOT NULL AS has_logs
        FROM (SELECT TRY_CAST(json AS STRUCT(resourceSpans {RESOURCE_SPANS_TYPE}, resourceLogs JSON)) AS doc
              FROM {docs})
    )"""
    cur.execute(f"INSERT INTO _stage_steps BY NAME ({spans_query(source)})", {**params, "fmt": fmt})


def finish_spans(cur: duckdb.DuckDBPyConnection, fmt: str) -> None:
    """Drop the unreadable rows, estimate costs, stage the runs and keep their resource facts for later."""
    cur.execute("DELETE FROM _stage_steps WHERE _trace_id IS NULL")
    estimate_costs(cur)
    cur.execute("INSERT INTO _stage_runs (run_id, format, native_id) "
                "SELECT DISTINCT run_id, $fmt, _trace_id FROM _stage_steps", {"fmt": fmt})
    # resource facts for runs whose root span is not in this file (it may come later, or never)
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _otlp_resources AS SELECT run_id, any_value(_res_service) AS service, "
        "any_value(_res_version) AS version, any_value(_res_env) AS env FROM _stage_steps GROUP BY run_id"
    )


def derive_span_run_facts(cur: duckdb.DuckDBPyConnection, fmt: str) -> None:
    for statement in RUN_FACTS:
        cur.execute(statement, {"fmt": fmt} if "$fmt" in statement else None)
    cur.execute("DROP TABLE IF EXISTS _otlp_resources")


def _is_json_lines(path: Path) -> bool:
    """JSON Lines when the first non-blank line is a complete JSON value on its own."""
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        return True
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    return False
                # a one-line .json document is the same either way; a second line decides
                rest = fh.readline()
                while rest and not rest.strip():
                    rest = fh.readline()
                return bool(rest)
    return False


def _shape_error(obj: object) -> str | None:
    if not isinstance(obj, dict):
        return "not a JSON object"
    if "resourceSpans" not in obj:
        if "resourceLogs" in obj:
            return None
        return f"no resourceSpans (keys: {', '.join(list(obj)[:5]) or 'none'}); not an OTLP trace record"
    rss = obj["resourceSpans"]
    if not isinstance(rss, list) or not all(isinstance(r, dict) for r in rss):
        return "resourceSpans is not a list of objects"
    for rs in rss:
        for ss in rs.get("scopeSpans") or []:
            if not isinstance(ss, dict) or not isinstance(ss.get("spans", []), list):
                return "scopeSpans[].spans is not a list"
    return "spans do not match the OTLP span shape"


def _locate_bad_lines(path: Path, expected: int, ctx: StageContext) -> list[Reject]:
    """Find which lines DuckDB could not read. Only runs when there are bad lines, so speed matters less."""
    found: list[Reject] = []
    for location, excerpt, obj, problem in read_json_lines(path, ctx.max_record_bytes, EXCERPT_CHARS):
        if problem is None:
            problem = _shape_error(obj)
            if problem and problem.startswith("spans do not match"):
                problem = None  # counted below: DuckDB's cast is stricter than this check
        if problem:
            found.append(Reject(location=location, reason=problem, excerpt=excerpt))
        if len(found) >= expected:
            break
    if len(found) < expected:
        found.append(Reject(location="file", reason=f"{expected - len(found)} record(s) did not match the OTLP "
                                                    "span shape (e.g. a field of the wrong type)"))
    return found


def _document_error(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            obj = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"invalid JSON: {exc}"
    except OSError as exc:
        return f"cannot read: {exc}"
    return _shape_error(obj) or "not an OTLP trace document"


