"""Built-in deterministic checks and the scorer registry.

A scorer is a name, a pydantic model of its arguments, and either SQL or a Python function. Both see the runs
to score as the temporary table `_target(run_id)` and must return exactly one row per target run with the
columns `run_id, value, passed, step_id, evidence`:

* `value` (DOUBLE): what was measured (a count, a duration, a share);
* `passed` (BOOLEAN): NULL when the check does not apply to the run (e.g. the tool it guards was never called);
* `step_id`: the step that decided (the first offending call, the loop's first call ...), else NULL;
* `evidence`: the same in words, for the reviewer.

The scorer's name and its validated arguments are stored with every score, so a score can always be traced
back to the exact configuration that made it. Plugins register more with `register_scorer` (or through the
`workbench.scorers` entry-point group, each entry point naming a `Scorer`).

SQL is built only from the fixed fragments below; every value (tool names, patterns, limits) is a parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Annotated, Any, Literal

import duckdb
import pandas as pd
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

RESULT_COLUMNS = ("run_id", "value", "passed", "step_id", "evidence")


class Args(BaseModel):
    """Base of every scorer's arguments: strict, so a typo in a rubric file is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@cache
def _re2_error(pattern: str) -> str | None:
    try:
        duckdb.connect(":memory:").execute("SELECT regexp_matches('', $p)", {"p": pattern}).fetchall()
    except duckdb.Error as exc:
        return str(exc).split("\n")[0]
    return None


def check_pattern(pattern: str | None) -> str | None:
    """Validate a regular expression with DuckDB's engine (RE2: no look-around, no back-references)."""
    if pattern is not None and (err := _re2_error(pattern)):
        raise ValueError(f"invalid regular expression {pattern!r}: {err}")
    return pattern


Pattern = Annotated[str, AfterValidator(check_pattern)]
OptPattern = Annotated[str | None, AfterValidator(check_pattern)]
#: One tool name or a list of them (a single name in a rubric file becomes a one-element list).
ToolList = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


@dataclass(frozen=True)
class Scorer:
    """A named, registered check."""

    name: str
    args_model: type[Args]
    doc: str
    example: dict[str, Any]
    """Arguments that make a meaningful check; the conformance test runs every scorer with them."""
    sql: Callable[[Any], tuple[str, dict[str, Any]]] | None = None
    """args -> (query over `_target`, parameters)."""
    python: Callable[[duckdb.DuckDBPyConnection, Any], pd.DataFrame] | None = None
    """(cursor with `_target`, args) -> frame with RESULT_COLUMNS."""

    def evaluate(self, cur: duckdb.DuckDBPyConnection, args: Args) -> pd.DataFrame:
        """Results for the runs in `_target` of `cur` (used by tests and notebooks; the engine inserts SQL
        results directly)."""
        if self.sql is not None:
            query, params = self.sql(args)
            frame = cur.execute(query, params).df()
        else:
            assert self.python is not None
            frame = self.python(cur, args)
        # one set of dtypes whichever way the scorer is written
        return frame[list(RESULT_COLUMNS)].astype(
            {"run_id": "str", "value": "float64", "passed": "boolean", "step_id": "str", "evidence": "str"})


_REGISTRY: dict[str, Scorer] = {}


def register_scorer(scorer: Scorer) -> Scorer:
    """Add a scorer (a plugin's, or a built-in one); names are unique."""
    if scorer.name in _REGISTRY and _REGISTRY[scorer.name] is not scorer:
        raise ValueError(f"a scorer named {scorer.name!r} is already registered")
    if (scorer.sql is None) == (scorer.python is None):
        raise ValueError(f"scorer {scorer.name!r} needs exactly one of sql or python")
    _REGISTRY[scorer.name] = scorer
    return scorer


def registry() -> dict[str, Scorer]:
    """Every scorer: the built-in ones and those registered under the `workbench.scorers` entry points."""
    from workbench import rubric_actions, rubric_controls  # noqa: F401  (these scorers register on import)

    found = dict(_REGISTRY)
    for ep in entry_points(group="workbench.scorers"):
        if ep.name in found:
            continue
        try:
            obj = ep.load()
        except Exception:  # a broken plugin must not take the built-in checks down with it
            continue
        if isinstance(obj, Scorer):
            found[ep.name] = obj
    return found


def sql_scorer(name: str, args_model: type[Args], example: dict[str, Any]):
    def wrap(fn: Callable[[Any], tuple[str, dict[str, Any]]]):
        register_scorer(Scorer(name=name, args_model=args_model, doc=(fn.__doc__ or "").strip(), example=example,
                               sql=fn))
        return fn
    return wrap


# -- shared fragments ---------------------------------------------------------------------------------------
_FAILED = "(s.status = 'error' OR s.error IS NOT NULL)"
ARGS_TEXT = "CAST(s.tool_args AS VARCHAR)"


class _ToolArgs(Args):
    tool: ToolList = Field(min_length=1)
    """Tool name(s); a call of any of them counts."""
    args_pattern: OptPattern = None
    """Only calls whose arguments (as JSON text) match this regular expression count."""



def _call_filter(a: _ToolArgs, params: dict[str, Any]) -> str:
    params["tools"] = list(a.tool)
    clause = "list_contains($tools, s.tool_name)"
    if a.args_pattern is not None:
        params["args_pattern"] = a.args_pattern
        clause += f" AND regexp_matches({ARGS_TEXT}, $args_pattern)"
    return clause


# -- outcome and limits -------------------------------------------------------------------------------------
class OutcomeArgs(Args):
    equals: Literal["success", "failure"] = "success"
    """The outcome a run must have; runs whose outcome is unknown are not decided (passed NULL)."""


@sql_scorer("outcome", OutcomeArgs, {})
def _outcome(a: OutcomeArgs) -> tuple[str, dict[str, Any]]:
    """The run's recorded outcome equals `equals` (value 1 for success, 0 for failure)."""
    return ("""SELECT t.run_id, CASE r.outcome WHEN 'success' THEN 1.0 WHEN 'failure' THEN 0.0 END AS value,
        CASE WHEN r.outcome IN ('success', 'failure') THEN r.outcome = $equals END AS passed,
        NULL::VARCHAR AS step_id, 'outcome ' || coalesce(r.outcome, 'unknown') AS evidence
        FROM _target t JOIN runs r USING (run_id)""", {"equals": a.equals})


#: Limit metrics read from the per-run summary; identifiers only from this table.
LIMIT_METRICS: dict[str, str] = {
    "steps": "r.n_steps", "llm_calls": "r.n_llm_calls", "tool_calls": "r.n_tool_calls", "errors": "r.n_errors",
    "duration_ms": "r.duration_ms", "cost_usd": "r.cost_usd",
    "tokens": "CASE WHEN r.input_tokens IS NULL AND r.output_tokens IS NULL THEN NULL "
              "ELSE coalesce(r.input_tokens, 0) + coalesce(r.output_tokens, 0) END",
    "input_tokens": "r.input_tokens", "output_tokens": "r.output_tokens",
}


class LimitArgs(Args):
    metric: Literal["steps", "llm_calls", "tool_calls", "errors", "duration_ms", "cost_usd", "tokens",
                    "input_tokens", "output_tokens", "max_call_tokens"]
    """What to bound. `max_call_tokens` is the largest input (context) of a single LLM call."""
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> LimitArgs:
        if self.max is None and self.min is None:
            raise ValueError("give max, min or both")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError("min is above max")
        return self


@sql_scorer("limit", LimitArgs, {"metric": "steps", "max": 5})
def _limit(a: LimitArgs) -> tuple[str, dict[str, Any]]:
    """A run-level figure stays within [min, max]; a run that did not record the figure is not decided."""
    params = {"max": a.max, "min": a.min, "metric": a.metric}
    if a.metric == "max_call_tokens":
        source = """(SELECT t.run_id, m.v, m.step_id FROM _target t LEFT JOIN (
                SELECT s.run_id, max(s.input_tokens) AS v, arg_max(s.step_id, s.input_tokens) AS step_id
                FROM steps s JOIN _target USING (run_id) WHERE s.kind = 'llm' AND s.input_tokens IS NOT NULL
                GROUP BY s.run_id) m USING (run_id))"""
    else:
        source = (f"(SELECT t.run_id, CAST({LIMIT_METRICS[a.metric]} AS DOUBLE) AS v, NULL::VARCHAR AS step_id "
                  "FROM _target t JOIN runs r USING (run_id))")
    return (f"""SELECT run_id, v AS value,
        CASE WHEN v IS NOT NULL THEN (CAST($max AS DOUBLE) IS NULL OR v <= CAST($max AS DOUBLE))
                                 AND (CAST($min AS DOUBLE) IS NULL OR v >= CAST($min AS DOUBLE)) END AS passed,
        step_id, CASE WHEN v IS NULL THEN $metric || ' not recorded'
                      ELSE $metric || ' = ' || CAST(round(v, 6) AS VARCHAR) END AS evidence
        FROM {source}""", params)


# -- tools --------------------------------------------------------------------------------------------------
class ToolCalledArgs(_ToolArgs):
    min_count: int = Field(1, ge=1)
    """At least this many matching calls."""


@sql_scorer("tool_called", ToolCalledArgs, {"tool": "lookup_order"})
def _tool_called(a: ToolCalledArgs) -> tuple[str, dict[str, Any]]:
    """The run called one of `tool` (with arguments matching `args_pattern`) at least `min_count` times."""
    params: dict[str, Any] = {"min_count": a.min_count}
    where = _call_filter(a, params)
    return (f"""WITH c AS (SELECT s.run_id, count(*) AS n, arg_min(s.step_id, s.seq) AS first_step
            FROM steps s JOIN _target USING (run_id) WHERE {where} GROUP BY s.run_id)
        SELECT t.run_id, coalesce(c.n, 0)::DOUBLE AS value, coalesce(c.n, 0) >= $min_count AS passed,
            c.first_step AS step_id,
            CASE WHEN c.n IS NULL THEN 'not called' ELSE 'called ' || c.n || ' time(s)' END AS evidence
        FROM _target t LEFT JOIN c USING (run_id)""", params)


@sql_scorer("tool_not_called", _ToolArgs, {"tool": ["refund_order"]})
def _tool_not_called(a: _ToolArgs) -> tuple[str, dict[str, Any]]:
    """The run never called any of `tool` (with arguments matching `args_pattern`); evidence: the first call."""
    params: dict[str, Any] = {}
    where = _call_filter(a, params)
    return (f"""WITH c AS (SELECT s.run_id, count(*) AS n, arg_min(s.step_id, s.seq) AS first_step,
                arg_min(s.tool_name, s.seq) AS tool FROM steps s JOIN _target USING (run_id)
            WHERE {where} GROUP BY s.run_id)
        SELECT t.run_id, coalesce(c.n, 0)::DOUBLE AS value, c.n IS NULL AS passed, c.first_step AS step_id,
            CASE WHEN c.n IS NULL THEN 'not called' ELSE c.tool || ' called ' || c.n || ' time(s)' END AS evidence
        FROM _target t LEFT JOIN c USING (run_id)""", params)


class ToolOrderArgs(Args):
    first: str
    """This tool must be called ..."""
    then: str
    """... before the first call of this one. Runs that never call `then` are not decided."""


@sql_scorer("tool_order", ToolOrderArgs, {"first": "lookup_order", "then": "refund_order"})
def _tool_order(a: ToolOrderArgs) -> tuple[str, dict[str, Any]]:
    """`first` was called before the first call of `then` (value 1 / 0; NULL when `then` was not called)."""
    return ("""WITH f AS (SELECT s.run_id, min(s.seq) FILTER (s.tool_name = $first) AS fs,
                min(s.seq) FILTER (s.tool_name = $then) AS ts,
                arg_min(s.step_id, s.seq) FILTER (s.tool_name = $then) AS tstep
            FROM steps s JOIN _target USING (run_id) WHERE s.tool_name IN ($first, $then) GROUP BY s.run_id)
        SELECT t.run_id, CASE WHEN f.ts IS NOT NULL THEN coalesce(f.fs < f.ts, false)::INT::DOUBLE END AS value,
            CASE WHEN f.ts IS NOT NULL THEN coalesce(f.fs < f.ts, false) END AS passed,
            CASE WHEN f.ts IS NOT NULL AND NOT coalesce(f.fs < f.ts, false) THEN f.tstep END AS step_id,
            CASE WHEN f.ts IS NULL THEN $then || ' not called'
                 WHEN f.fs IS NULL THEN $then || ' called, ' || $first || ' never'
                 WHEN f.fs < f.ts THEN $first || ' before ' || $then
                 ELSE $then || ' called before ' || $first END AS evidence
        FROM _target t LEFT JOIN f USING (run_id)""", {"first": a.first, "then": a.then})


class NoErrorsArgs(Args):
    exclude_kinds: list[str] = ["agent"]
    """Step kinds not looked at (the run's own root span repeats its children's errors)."""
    allow_recovered: bool = True
    """An error counts as handled when a later call of the same tool (or, for other steps, a later step of
    the same kind) succeeded."""
    error_result_pattern: OptPattern = None
    """Also treat a tool step as failed when its result matches this pattern (e.g. `^Error` for tau-bench)."""



def _failed_expr(pattern: str | None, params: dict[str, Any]) -> str:
    if pattern is None:
        return _FAILED
    params["error_result_pattern"] = pattern
    return f"({_FAILED} OR coalesce(regexp_matches(s.tool_result, $error_result_pattern), false))"


@sql_scorer("no_unhandled_errors", NoErrorsArgs, {})
def _no_unhandled_errors(a: NoErrorsArgs) -> tuple[str, dict[str, Any]]:
    """No failed step is left unhandled; value = number of unhandled failed steps, evidence = the first."""
    params: dict[str, Any] = {"exclude": list(a.exclude_kinds)}
    failed = _failed_expr(a.error_result_pattern, params)
    recovered = "AND (ok.last_ok IS NULL OR ok.last_ok < s.seq)" if a.allow_recovered else ""
    return (f"""WITH s AS (SELECT s.run_id, s.step_id, s.seq, coalesce(s.tool_name, s.kind) AS target,
                {failed} AS failed, left(coalesce(s.error, s.tool_result, ''), 120) AS err
            FROM steps s JOIN _target USING (run_id) WHERE NOT list_contains($exclude, s.kind)),
        ok AS (SELECT run_id, target, max(seq) AS last_ok FROM s WHERE NOT failed GROUP BY ALL),
        u AS (SELECT s.* FROM s LEFT JOIN ok USING (run_id, target) WHERE s.failed {recovered}),
        agg AS (SELECT run_id, count(*) AS n, arg_min(step_id, seq) AS step_id,
                arg_min(target || ': ' || err, seq) AS first FROM u GROUP BY run_id)
        SELECT t.run_id, coalesce(agg.n, 0)::DOUBLE AS value, agg.n IS NULL AS passed, agg.step_id,
            CASE WHEN agg.n IS NULL THEN 'no unhandled error'
                 ELSE agg.n || ' unhandled error(s), first ' || agg.first END AS evidence
        FROM _target t LEFT JOIN agg USING (run_id)""", params)


class NoLoopsArgs(Args):
    max_identical: int = Field(3, ge=1)
    """Identical calls (same tool, same arguments) allowed per run; more is a loop."""


@sql_scorer("no_loops", NoLoopsArgs, {"max_identical": 3})
def _no_loops(a: NoLoopsArgs) -> tuple[str, dict[str, Any]]:
    """No tool call is repeated identically more than `max_identical` times; value = the largest repeat count,
    evidence = the first of those calls."""
    return (f"""WITH c AS (SELECT s.run_id, s.tool_name, count(*) AS n, min(s.seq) AS first_seq,
                arg_min(s.step_id, s.seq) AS first_step
            FROM steps s JOIN _target USING (run_id) WHERE s.tool_name IS NOT NULL
            GROUP BY s.run_id, s.tool_name, {ARGS_TEXT}),
        m AS (SELECT * FROM c QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY n DESC, first_seq) = 1)
        SELECT t.run_id, coalesce(m.n, 0)::DOUBLE AS value, coalesce(m.n, 0) <= $max AS passed,
            CASE WHEN m.n > $max THEN m.first_step END AS step_id,
            CASE WHEN m.n IS NULL THEN 'no tool calls'
                 ELSE m.tool_name || ' called ' || m.n || ' time(s) with identical arguments' END AS evidence
        FROM _target t LEFT JOIN m USING (run_id)""", {"max": a.max_identical})


# -- text ---------------------------------------------------------------------------------------------------
_TEXT_FIELDS = {"output": "r.output", "input": "r.input", "error": "r.error"}


class PatternArgs(Args):
    pattern: Pattern
    """A regular expression (RE2 syntax, searched anywhere in the text; `(?i)` for case-insensitive)."""
    field: Literal["output", "input", "error"] = "output"



def _pattern_sql(a: PatternArgs, *, must_match: bool) -> tuple[str, dict[str, Any]]:
    col = _TEXT_FIELDS[a.field]
    # a missing text does not match: it fails "must match" and passes "must not match"
    matched = f"coalesce(regexp_matches({col}, $pattern), false)"
    return (f"""SELECT t.run_id, {matched}::INT::DOUBLE AS value, {matched} = $must AS passed,
            NULL::VARCHAR AS step_id,
            CASE WHEN {matched} THEN 'matched ' || left(regexp_extract({col}, $pattern), 120)
                 WHEN {col} IS NULL THEN $field || ' missing' ELSE 'no match' END AS evidence
        FROM _target t JOIN runs r USING (run_id)""", {"pattern": a.pattern, "must": must_match, "field": a.field})


@sql_scorer("output_matches", PatternArgs, {"pattern": "(?i)refund"})
def _output_matches(a: PatternArgs) -> tuple[str, dict[str, Any]]:
    """The run's output (or input / error) matches `pattern`."""
    return _pattern_sql(a, must_match=True)


@sql_scorer("output_not_matches", PatternArgs, {"pattern": "(?i)refund"})
def _output_not_matches(a: PatternArgs) -> tuple[str, dict[str, Any]]:
    """The run's output (or input / error) does not match `pattern`; evidence = the matched text."""
    return _pattern_sql(a, must_match=False)


class LastResultArgs(Args):
    tool: str
    """The tool whose last call is looked at (e.g. `run_tests`); runs that never call it are not decided."""
    pattern: Pattern
    """Searched in that call's result (a failed call without a result does not match)."""
    must_match: bool = False
    """False: the last result must not match (e.g. `FAILED`); True: it must."""


@sql_scorer("last_result", LastResultArgs, {"tool": "run_tests", "pattern": "FAILED"})
def _last_result(a: LastResultArgs) -> tuple[str, dict[str, Any]]:
    """The last call of `tool` returned a result that matches (or, by default, does not match) `pattern`:
    e.g. the last test run did not fail. Evidence: that call."""
    return ("""WITH l AS (SELECT s.run_id, arg_max(s.step_id, s.seq) AS step_id, arg_max(s.tool_result, s.seq) AS res
            FROM steps s JOIN _target USING (run_id) WHERE s.tool_name = $tool GROUP BY s.run_id),
        m AS (SELECT *, coalesce(regexp_matches(res, $pattern), false) AS hit FROM l)
        SELECT t.run_id, m.hit::INT::DOUBLE AS value, m.hit = $must AS passed, m.step_id,
            CASE WHEN m.run_id IS NULL THEN $tool || ' not called'
                 WHEN m.hit THEN 'last ' || $tool || ' result matched ' || left(regexp_extract(m.res, $pattern), 120)
                 ELSE 'last ' || $tool || ' result did not match' END AS evidence
        FROM _target t LEFT JOIN m USING (run_id)""", {"tool": a.tool, "pattern": a.pattern, "must": a.must_match})
