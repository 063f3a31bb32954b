"""Staging and merging: how a file's records land in `steps` and `runs` without losing or doubling anything.

Loaders write into two temporary tables inside the ingest transaction:

* `_stage_steps` — the columns of `steps` (seq and depth may be left NULL);
* `_stage_runs` — run-level facts the loader knows (any column of `runs`; NULL means "derive it").

`merge_staged` then, for every run the file touches:

1. unions the staged steps with the steps already stored for those runs and keeps, per (run_id, step_id),
   the most complete record (ties keep the stored one, so re-importing a file changes nothing);
2. renumbers `seq` by start time and computes `depth` from the parent links;
3. rewrites those runs' steps and rebuilds their `runs` rows: counts, tokens and cost aggregated from the
   steps, run-level facts from the loader (falling back to what was stored before).

Labels, scores and assessments hold run ids, not positions, so they survive every merge.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb

STEP_COLUMNS = (
    "run_id", "step_id", "parent_step_id", "seq", "depth", "kind", "name", "started_at", "ended_at",
    "duration_ms", "status", "error", "model", "provider", "messages", "tool_name", "tool_args", "tool_result",
    "input_tokens", "output_tokens", "cache_tokens", "reasoning_tokens", "cost_usd", "cost_estimated",
    "attributes",
)
RUN_FACT_COLUMNS = (
    "run_id", "format", "native_id", "import_id", "agent", "agent_version", "environment", "task_id",
    "session_id", "user_id", "status", "outcome", "outcome_score", "input", "output", "tags", "attributes",
)

_COLS = ", ".join(STEP_COLUMNS)

# A record is "more complete" when more of these are known; the stored record wins ties.
_COMPLETENESS = " + ".join(
    f"({c} IS NOT NULL)::INT"
    for c in ("ended_at", "parent_step_id", "status", "error", "model", "messages", "tool_args", "tool_result",
              "input_tokens", "output_tokens", "cost_usd", "attributes")
)


def create_staging(cur: duckdb.DuckDBPyConnection) -> None:
    """(Re)create empty staging tables shaped like `steps` and like the run facts of `runs`."""
    cur.execute("DROP TABLE IF EXISTS _stage_steps")
    cur.execute("DROP TABLE IF EXISTS _stage_runs")
    # _stored marks rows copied back from `steps` when a file adds to runs the store already has
    cur.execute(f"CREATE TEMP TABLE _stage_steps AS SELECT {_COLS}, false AS _stored FROM steps LIMIT 0")
    cur.execute("ALTER TABLE _stage_steps ALTER COLUMN _stored SET DEFAULT false")
    cur.execute(f"CREATE TEMP TABLE _stage_runs AS SELECT {', '.join(RUN_FACT_COLUMNS)} FROM runs LIMIT 0")


def drop_staging(cur: duckdb.DuckDBPyConnection) -> None:
    for table in ("_stage_steps", "_stage_runs", "_numbered", "_affected", "_tree_notes"):
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def merge_staged(cur: duckdb.DuckDBPyConnection, import_id: str,
                 after_steps: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> tuple[int, int]:
    """Merge the staging tables into `steps` and `runs`. Returns (runs touched, steps new or improved).

    `after_steps(cur)` runs once the merged, numbered steps of the affected runs are in `steps` (the runs
    are listed in `_affected`): loaders whose run-level facts live on a root span derive them into
    `_stage_runs` there.

    Dedupe and numbering work on the keys only and the wide rows (messages, payloads) are copied once, into
    `steps`: carrying payloads through every stage made a 1M-span file several times slower.
    """
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE _affected AS "
        "SELECT DISTINCT run_id FROM _stage_steps UNION SELECT DISTINCT run_id FROM _stage_runs"
    )
    n_runs = cur.execute("SELECT count(*) FROM _affected").fetchone()[0]
    if n_runs == 0:
        return 0, 0
    has_existing = cur.execute(
        "SELECT count(*) > 0 FROM runs WHERE run_id IN (SELECT run_id FROM _affected)"
    ).fetchone()[0]
    if has_existing:
        # a file that adds to known runs: their stored steps compete with the new ones, then are rewritten
        cur.execute(f"""INSERT INTO _stage_steps ({_COLS}, _stored) SELECT {_COLS}, true FROM steps
                        WHERE run_id IN (SELECT run_id FROM _affected)""")
        cur.execute("DELETE FROM steps WHERE run_id IN (SELECT run_id FROM _affected)")
    _number_steps(cur)
    n_new = cur.execute("SELECT count(*) FROM _numbered WHERE NOT stored").fetchone()[0]
    wide = ", ".join(f"k.{c}" if c in ("seq", "depth") else f"s.{c}" for c in STEP_COLUMNS)
    cur.execute(f"""INSERT INTO steps ({_COLS})
                    SELECT {wide} FROM _stage_steps s JOIN _numbered k ON s.rowid = k.rid""")
    # free the staged payloads and the numbering before the run facts are derived: temp tables count
    # against the memory limit, and at 1M spans these two made the next step run out of memory
    cur.execute("DROP TABLE _stage_steps")
    cur.execute("DROP TABLE _numbered")
    if after_steps is not None:
        after_steps(cur)
    _rebuild_runs(cur, import_id)
    return n_runs, n_new


def _number_steps(cur: duckdb.DuckDBPyConnection) -> None:
    """Keys only: keep the most complete record per (run_id, step_id) (stored wins ties, so re-importing
    changes nothing), seq by start time, depth by walking parent links (bounded, so cycles cannot hang)."""
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE _numbered AS
        WITH RECURSIVE
        kept AS (
            SELECT rowid AS rid, run_id, step_id, parent_step_id, started_at, seq AS old_seq, _stored AS stored
            FROM _stage_steps
            QUALIFY row_number() OVER (PARTITION BY run_id, step_id
                                       ORDER BY {_COMPLETENESS} DESC, _stored DESC, rowid) = 1
        ),
        base AS (
            SELECT *, (row_number() OVER (PARTITION BY run_id
                ORDER BY started_at NULLS LAST, (parent_step_id IS NOT NULL), old_seq NULLS LAST, step_id) - 1
            )::INTEGER AS seq
            FROM kept
        ),
        tops AS (  -- spans without a parent, and orphans whose parent never arrived (orphan = true)
            SELECT b.run_id, b.step_id, b.parent_step_id IS NOT NULL AS orphan FROM base b
            WHERE b.parent_step_id IS NULL
               OR NOT EXISTS (SELECT 1 FROM base p WHERE p.run_id = b.run_id AND p.step_id = b.parent_step_id)
        ),
        roots AS (  -- an orphan hangs under the run's root (depth 1) when the run has one
            SELECT t.run_id, t.step_id,
                   CASE WHEN t.orphan AND bool_or(NOT t.orphan) OVER (PARTITION BY t.run_id) THEN 1 ELSE 0 END
                       AS depth
            FROM tops t
        ),
        tree(run_id, step_id, depth) AS (
            SELECT run_id, step_id, depth FROM roots
            UNION ALL
            SELECT c.run_id, c.step_id, t.depth + 1
            FROM base c JOIN tree t ON c.run_id = t.run_id AND c.parent_step_id = t.step_id
            WHERE t.depth < 64
        ),
        depths AS (SELECT run_id, step_id, min(depth)::INTEGER AS depth FROM tree GROUP BY ALL)
        SELECT base.rid, base.stored, base.seq, coalesce(d.depth, 0) AS depth, base.run_id,
               t.run_id IS NOT NULL AS is_top, coalesce(t.orphan, false) AS orphan
        FROM base LEFT JOIN depths d USING (run_id, step_id) LEFT JOIN tops t USING (run_id, step_id)"""
    )
    # what the run says about its tree: spans whose parent is missing, and whether the root itself is
    cur.execute(
        """CREATE OR REPLACE TEMP TABLE _tree_notes AS
        SELECT run_id, count(*) FILTER (orphan) AS orphans, NOT bool_or(is_top AND NOT orphan) AS root_missing
        FROM _numbered GROUP BY run_id HAVING count(*) FILTER (orphan) > 0"""
    )


def _rebuild_runs(cur: duckdb.DuckDBPyConnection, import_id: str) -> None:
    """Rebuild the `runs` rows of the affected runs from their steps, the staged facts and the old rows."""
    cur.execute(
        """CREATE OR REPLACE TEMP TABLE _old_runs AS
        SELECT * FROM runs WHERE run_id IN (SELECT run_id FROM _affected)"""
    )
    cur.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM _affected)")
    cur.execute(
        _REBUILD_RUNS,
        {"import_id": import_id},
    )
    cur.execute("DROP TABLE IF EXISTS _old_runs")


# Facts stored while a run had no root span were read from whatever arrived first (a resource's service name,
# a child's session): provisional, so a file's facts win over them. Otherwise stored facts win.
_PROVISIONAL = "coalesce((o.attributes->>'workbench.root_missing')::BOOLEAN, false)"


def _pick(col: str, old: str | None = None) -> str:
    old = old or f"o.{col}"
    return f"CASE WHEN {_PROVISIONAL} THEN coalesce(f.{col}, {old}) ELSE coalesce({old}, f.{col}) END"


_REBUILD_RUNS = re.sub(
    r"""\{_pick\('(\w+)'(?:, (['"])(.*?)\2)?\)\}""", lambda m: _pick(m[1], m[3]), """
        INSERT INTO runs (run_id, format, native_id, import_id, agent, agent_version, environment, task_id,
            session_id, user_id, started_at, ended_at, duration_ms, status, outcome, outcome_score, input,
            output, error, n_steps, n_llm_calls, n_tool_calls, n_errors, input_tokens, output_tokens,
            cache_tokens, reasoning_tokens, cost_usd, cost_estimated, tags, attributes)
        WITH agg AS (
            SELECT run_id,
                count(*)::INTEGER AS n_steps,
                count(*) FILTER (kind = 'llm')::INTEGER AS n_llm_calls,
                count(*) FILTER (kind = 'tool')::INTEGER AS n_tool_calls,
                count(*) FILTER (status = 'error')::INTEGER AS n_errors,
                min(started_at) AS started_at,
                max(coalesce(ended_at, started_at)) AS ended_at,
                -- agent and chain spans often repeat their children's usage: count leaf calls only
                sum(input_tokens) FILTER (kind NOT IN ('agent', 'chain')) AS input_tokens,
                sum(output_tokens) FILTER (kind NOT IN ('agent', 'chain')) AS output_tokens,
                sum(cache_tokens) FILTER (kind NOT IN ('agent', 'chain')) AS cache_tokens,
                sum(reasoning_tokens) FILTER (kind NOT IN ('agent', 'chain')) AS reasoning_tokens,
                -- summed as exact decimals: float sums differ in the last bit with thread scheduling,
                -- and the same seed must give the same database
                CAST(sum(CAST(cost_usd AS DECIMAL(18, 12))) FILTER (kind NOT IN ('agent', 'chain')) AS DOUBLE)
                    AS cost_usd,
                bool_or(cost_estimated) FILTER (kind NOT IN ('agent', 'chain') AND cost_usd IS NOT NULL)
                    AS cost_estimated,
                arg_min(error, seq) FILTER (error IS NOT NULL) AS error,
                arg_min(duration_ms, seq) FILTER (depth = 0) AS root_duration,
                arg_min(status, seq) FILTER (depth = 0) AS root_status
            FROM steps WHERE run_id IN (SELECT run_id FROM _affected) GROUP BY run_id
        ),
        facts AS (
            SELECT run_id, any_value(format) AS format, any_value(native_id) AS native_id,
                any_value(agent) AS agent, any_value(agent_version) AS agent_version,
                any_value(environment) AS environment, any_value(task_id) AS task_id,
                any_value(session_id) AS session_id, any_value(user_id) AS user_id,
                any_value(status) AS status, any_value(outcome) AS outcome,
                any_value(outcome_score) AS outcome_score, any_value(input) AS input,
                any_value(output) AS output, any_value(tags) AS tags, any_value(attributes) AS attributes
            FROM _stage_runs GROUP BY run_id
        )
        SELECT a.run_id,
            -- stored facts win and a file's facts fill gaps, so a later (or damaged) copy never rewrites a run;
            -- facts stored while the run had no root were provisional, and the file's win over them
            {_pick('format')}, {_pick('native_id')}, coalesce(o.import_id, $import_id),
            {_pick('agent')}, {_pick('agent_version')},
            {_pick('environment')}, {_pick('task_id')},
            {_pick('session_id')}, {_pick('user_id')},
            agg.started_at, agg.ended_at,
            coalesce(agg.root_duration, epoch_ms(agg.ended_at) - epoch_ms(agg.started_at)),
            coalesce({_pick('status', "nullif(o.status, 'unknown')")}, CASE WHEN agg.root_status = 'error' THEN 'error'
                                    WHEN agg.root_status IS NOT NULL THEN 'ok' END, 'unknown'),
            coalesce({_pick('outcome', "nullif(o.outcome, 'unknown')")}, 'unknown'), {_pick('outcome_score')},
            {_pick('input')}, {_pick('output')}, agg.error,
            coalesce(agg.n_steps, 0), coalesce(agg.n_llm_calls, 0), coalesce(agg.n_tool_calls, 0),
            coalesce(agg.n_errors, 0), agg.input_tokens, agg.output_tokens, agg.cache_tokens,
            agg.reasoning_tokens, agg.cost_usd, agg.cost_estimated,
            coalesce({_pick('tags', 'nullif(o.tags, []::VARCHAR[])')}, []::VARCHAR[]),
            -- the tree notes are recomputed on every merge: a root that arrives later clears them
            nullif(json_merge_patch(CASE WHEN {_PROVISIONAL} THEN coalesce(f.attributes, o.attributes, '{{}}')
                                  ELSE json_merge_patch(coalesce(f.attributes, '{{}}'), coalesce(o.attributes, '{{}}')) END,
                CASE WHEN tn.run_id IS NULL
                     THEN '{"workbench.orphan_steps": null, "workbench.root_missing": null}'::JSON
                     ELSE json_object('workbench.orphan_steps', tn.orphans, 'workbench.root_missing',
                                      tn.root_missing) END)::VARCHAR, '{}')::JSON
        FROM _affected a
        LEFT JOIN _tree_notes tn USING (run_id)
        LEFT JOIN agg USING (run_id)
        LEFT JOIN facts f USING (run_id)
        LEFT JOIN _old_runs o USING (run_id)
        WHERE {_pick('format')} IS NOT NULL
"""
).replace("{_PROVISIONAL}", _PROVISIONAL).replace("{{}}", "{}")
