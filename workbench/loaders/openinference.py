"""OpenInference span dumps (Phoenix exports and the like): `runs.format = 'openinference'`.

One row per span, as JSON Lines (or a JSON array) or Parquet. The span's own fields follow Phoenix's export
layout (`context.trace_id`, `context.span_id`, `parent_id`, `name`, `span_kind`, `start_time`, `end_time`,
`status_code`, `status_message`, `events`; a nested `context` object works too). Every other field is an
attribute, written in any of the shapes exports use:

* flattened keys with an `attributes.` prefix: `attributes.llm.input_messages.0.message.role`;
* the same keys without the prefix: `llm.input_messages.0.message.role`;
* an `attributes` object (flat dotted keys, nested objects, or a JSON string of either);
* Phoenix's half-nested columns: `attributes.llm.input_messages` holding a list of
  `{"message.role": ..., "message.content": ...}`, `attributes.metadata` holding an object.

Each row is flattened back into OpenInference's dotted keys (list positions become indexes) and handed to
the OTLP mapping in DuckDB (`otlp_sql.py`), so an OpenInference span maps to the same step whichever way it
was exported. See docs/otlp.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from workbench.loaders import StageContext
from workbench.loaders.documents import EXCERPT_CHARS, file_excerpt
from workbench.loaders.otlp import derive_span_run_facts, finish_spans, insert_spans, prepare_spans
from workbench.loaders.parse import loads_lenient, parse_ts, read_json_lines
from workbench.models import Reject

_SUFFIXES = {".json", ".jsonl", ".ndjson"}
_BATCH = 5000
_EPOCH = datetime(1970, 1, 1)
# the span's own fields in Phoenix's export layout; everything else in a row is an attribute
_SPAN_FIELDS = {
    "name", "span_kind", "parent_id", "parent_span_id", "start_time", "end_time", "status_code",
    "status_message", "events", "context", "context.trace_id", "context.span_id", "trace_id", "span_id",
    "attributes", "latency_ms", "conversation",
}
# attributes whose value is a JSON document in OpenInference: an object or list there is kept whole (as JSON
# text), not flattened into keys of its own
_JSON_VALUED = ("metadata", "invocation_parameters", "input.value", "output.value", "tool.parameters",
                "json_schema", "function.arguments", "function_call_arguments_json", "template.variables")
# list attributes some exports hold as a JSON string of the list rather than the list itself
_LIST_VALUED = ("llm.input_messages", "llm.output_messages", "retrieval.documents", "reranker.input_documents",
                "reranker.output_documents", "embedding.embeddings", "llm.tools", "message.tool_calls",
                "message.contents")
_CONTEXT_TRACE = re.compile(rb'"context"\s*:\s*\{[^{}]*"trace_id"')
_STATUS = {"OK": "STATUS_CODE_OK", "ERROR": "STATUS_CODE_ERROR", "UNSET": "STATUS_CODE_UNSET"}


class OpenInferenceLoader:
    """Span dumps with OpenInference attributes (`.jsonl`, `.json`, `.parquet`), one span per row."""

    name = "openinference"

    def sniff(self, path: Path, head: bytes) -> bool:
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return _parquet_has_spans(path)
        if suffix not in _SUFFIXES or b'"resourceSpans"' in head or b'"resourceLogs"' in head:
            return False  # OTLP requests (even with OpenInference attributes) belong to the `otlp` loader
        has_kind = b'"openinference.span.kind"' in head or b'"span_kind"' in head \
            or b'"attributes.openinference.span.kind"' in head
        has_trace = b'"context.trace_id"' in head or _CONTEXT_TRACE.search(head) is not None
        return has_kind and has_trace

    def stage(self, cur: duckdb.DuckDBPyConnection, path: Path, ctx: StageContext) -> list[Reject]:
        prepare_spans(cur)
        rejects: list[Reject] = []
        batch: list[str] = []
        n_rows = 0
        for location, row in _rows(path, ctx, rejects):
            n_rows += 1
            span, problem = span_of(row)
            if span is None:
                rejects.append(Reject(location=location, reason=problem or "not a span",
                                      excerpt=_excerpt(row)))
                continue
            batch.append(json.dumps(_request(span), ensure_ascii=False, default=str))
            if len(batch) >= _BATCH:
                self._insert(cur, batch)
                batch = []
        if batch:
            self._insert(cur, batch)
        if n_rows == 0 and not rejects:
            rejects.append(Reject(location="file", reason="no span rows in the file"))
        finish_spans(cur, self.name)
        return rejects

    def derive_run_facts(self, cur: duckdb.DuckDBPyConnection) -> None:
        derive_span_run_facts(cur, self.name)

    def _insert(self, cur: duckdb.DuckDBPyConnection, docs: list[str]) -> None:
        import pyarrow as pa

        cur.register("_oi_docs", pa.table({"json": pa.array(docs, pa.string())}))
        try:
            insert_spans(cur, "_oi_docs", {}, self.name)
        finally:
            cur.unregister("_oi_docs")


# -- reading rows -------------------------------------------------------------------------------------------
def _rows(path: Path, ctx: StageContext, rejects: list[Reject]) -> Iterator[tuple[str, Any]]:
    """(location, row) for every record; unreadable records go to `rejects`."""
    if path.suffix.lower() == ".parquet":
        yield from _parquet_rows(path, rejects)
        return
    with open(path, "rb") as fh:
        first = fh.read(1024).lstrip()
    if first.startswith(b"["):  # one JSON array of span objects
        try:
            with open(path, "rb") as fh:
                items = json.load(fh)
        except (ValueError, UnicodeDecodeError) as exc:
            rejects.append(Reject(location="file", reason=f"invalid JSON: {exc}", excerpt=file_excerpt(path)))
            return
        for i, item in enumerate(items):
            yield f"item {i}", item
        return
    for location, excerpt, obj, problem in read_json_lines(path, ctx.max_record_bytes, EXCERPT_CHARS):
        if problem:
            rejects.append(Reject(location=location, reason=problem, excerpt=excerpt))
        else:
            yield location, obj


def _parquet_rows(path: Path, rejects: list[Reject]) -> Iterator[tuple[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        rejects.append(Reject(location="file", reason=f"cannot read Parquet: {exc}"))
        return
    n = 0
    for batch in pf.iter_batches(batch_size=2000):
        for row in batch.to_pylist():
            yield f"row {n}", _without_nulls(row)
            n += 1


def _without_nulls(value: Any) -> Any:
    """A Parquet struct column holds the union of its rows' fields: a null field there means "absent"."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if not _missing(v)}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _parquet_has_spans(path: Path) -> bool:
    """Sniff a Parquet file from its footer only: a trace id column and a span kind column."""
    try:
        with duckdb.connect() as con:
            names = {r[0] for r in con.execute("SELECT name FROM parquet_schema($p)", {"p": str(path)}).fetchall()}
    except duckdb.Error:
        return False
    has_trace = "context.trace_id" in names or {"context", "trace_id"} <= names
    has_kind = bool({"span_kind", "attributes.openinference.span.kind", "openinference.span.kind"} & names)
    return has_trace and has_kind


# -- one row to one OTLP span --------------------------------------------------------------------------------
def span_of(row: Any) -> tuple[dict | None, str | None]:
    """The OTLP/JSON span for one dump row, or (None, why not)."""
    if not isinstance(row, dict):
        return None, "not a JSON object"
    context = row.get("context") if isinstance(row.get("context"), dict) else {}
    trace_id = _first(row.get("context.trace_id"), context.get("trace_id"), row.get("trace_id"))
    span_id = _first(row.get("context.span_id"), context.get("span_id"), row.get("span_id"))
    if trace_id is None or span_id is None:
        return None, "no context.trace_id / context.span_id: not an OpenInference span row"
    attrs: dict[str, Any] = {}
    nested = loads_lenient(row.get("attributes"))
    if isinstance(nested, dict):
        _flatten("", nested, attrs)
    for key, value in row.items():
        if key not in _SPAN_FIELDS:
            _flatten(key.removeprefix("attributes."), value, attrs)
    if "openinference.span.kind" not in attrs and _first(row.get("span_kind")):
        attrs["openinference.span.kind"] = str(row["span_kind"])
    span = {
        "traceId": str(trace_id), "spanId": str(span_id),
        "parentSpanId": str(_first(row.get("parent_id"), row.get("parent_span_id"), context.get("parent_id")) or ""),
        "name": _first(row.get("name")),
        "startTimeUnixNano": _ns(row.get("start_time")), "endTimeUnixNano": _ns(row.get("end_time")),
        "attributes": _key_values(attrs),
        "events": [_event(e) for e in loads_lenient(row.get("events")) or [] if isinstance(e, dict)],
    }
    code = _first(row.get("status_code"))
    if code is not None or _first(row.get("status_message")):
        span["status"] = {"code": _STATUS.get(str(code).upper(), str(code)) if code is not None else None,
                          "message": _first(row.get("status_message"))}
    return span, None


def _request(span: dict) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}


def _event(raw: dict) -> dict:
    attrs: dict[str, Any] = {}
    _flatten("", loads_lenient(raw.get("attributes")) or {}, attrs)
    return {"timeUnixNano": _ns(_first(raw.get("timestamp"), raw.get("time"))), "name": raw.get("name"),
            "attributes": _key_values(attrs)}


def _flatten(key: str, value: Any, out: dict[str, Any]) -> None:
    """Dotted OpenInference keys from nested objects and lists of objects (positions become indexes)."""
    if _missing(value):
        return
    if isinstance(value, str) and key.endswith(_LIST_VALUED) and value.lstrip().startswith("["):
        value = loads_lenient(value)
    json_valued = key.endswith(_JSON_VALUED)
    if isinstance(value, dict) and not json_valued:
        for k, v in value.items():
            _flatten(f"{key}.{k}" if key else str(k), v, out)
    elif isinstance(value, list | tuple) and not json_valued and any(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(f"{key}.{i}", v, out)
    elif key:
        out[key] = value


def _key_values(attrs: dict[str, Any]) -> list[dict]:
    return [{"key": k, "value": v} for k, v in ((k, _any_value(v)) for k, v in attrs.items()) if v is not None]


# OTLP AnyValue fields by Python type (bool before int: a bool is an int too); intValue is a string in OTLP/JSON
_SCALARS = ((bool, "boolValue", bool), (int, "intValue", str), (float, "doubleValue", float), (str, "stringValue", str))


def _any_value(v: Any) -> dict | None:
    """An OTLP AnyValue for a JSON/Parquet value; objects and mixed lists travel as JSON text."""
    if _missing(v):
        return None
    for kind, field, convert in _SCALARS:
        if isinstance(v, kind):
            return {field: convert(v)}
    if isinstance(v, list | tuple) and all(isinstance(x, str | int | float | bool) for x in v):
        return {"arrayValue": {"values": [x for x in (_any_value(x) for x in v) if x is not None]}}
    if isinstance(v, datetime):
        return {"stringValue": v.isoformat()}
    return {"stringValue": json.dumps(v, ensure_ascii=False, default=str)}


def _ns(value: Any) -> str | None:
    ts = parse_ts(value)
    if ts is None:
        return None
    return str((ts - _EPOCH) // timedelta(microseconds=1) * 1000)


def _first(*values: Any) -> Any:
    for v in values:
        if not _missing(v) and v != "":
            return v
    return None


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _excerpt(row: Any) -> str:
    return json.dumps(row, ensure_ascii=False, default=str)[:EXCERPT_CHARS]



