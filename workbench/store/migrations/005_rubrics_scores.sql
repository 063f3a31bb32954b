-- Schema version 5: rubrics and their scores, and two tables derived from `steps` for the cost and service
-- pages. Rubric versions are content hashes, so a changed rubric is a new row and old scores keep theirs.
CREATE TABLE IF NOT EXISTS rubrics (
    rubric_id   VARCHAR NOT NULL,      -- the rubric's name, stable across edits
    version     VARCHAR NOT NULL,      -- first 12 hex digits of sha256 over the validated definition
    title       VARCHAR,
    definition  JSON NOT NULL,         -- the validated rubric (criteria, weights, scorer arguments)
    source      VARCHAR,               -- file path, `app` or `notebook`
    source_text VARCHAR,               -- the text as written (TOML or YAML), for the editor
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS scores (
    rubric_id   VARCHAR NOT NULL,
    version     VARCHAR NOT NULL,
    run_id      VARCHAR NOT NULL,
    criterion   VARCHAR NOT NULL,
    scorer      VARCHAR NOT NULL,      -- auto / human:NAME / judge:NAME
    scorer_name VARCHAR NOT NULL,      -- registered check, `human`, or the judge's name
    scorer_args JSON,                  -- the exact configuration that produced the score
    value       DOUBLE,
    passed      BOOLEAN,               -- NULL: not applicable to this run, or could not be decided
    step_id     VARCHAR,               -- evidence: the step that decided
    evidence    VARCHAR,               -- evidence: what was seen, in words
    cost_usd    DOUBLE,                -- what producing the score cost (judge calls)
    scored_at   TIMESTAMP NOT NULL
);

-- Derived from `steps` (rebuilt by workbench.analytics when steps change; never edited by hand).
CREATE TABLE IF NOT EXISTS call_facts (
    run_id      VARCHAR NOT NULL,
    agent          VARCHAR,            -- the run's: so filters need no join (see run_flags)
    agent_version  VARCHAR,
    format         VARCHAR,
    status         VARCHAR,
    outcome        VARCHAR,
    started_at     TIMESTAMP,
    step_id     VARCHAR NOT NULL,      -- the tool (or retrieval) step
    seq         INTEGER,
    tool_name   VARCHAR,
    failed      BOOLEAN,
    tool_n      INTEGER,               -- 1 for the run's first call of this tool, 2 for the second ...
    repeat_n    INTEGER,               -- 1 for the first of identical calls (same tool and arguments), 2 ...
    is_retry    BOOLEAN,               -- the previous call of the same tool in the run failed
    llm_step_id VARCHAR,               -- the LLM call that asked for it (latest llm step before it)
    cost_share  DOUBLE,                -- that LLM call's cost, split evenly over the calls it asked for
    cost_estimated BOOLEAN             -- that LLM call's cost came from the price table
);

-- One row per run: the runs columns the analytics filter and group on, copied so that service-level and cost
-- queries read one small table, plus what the steps say about the run.
CREATE TABLE IF NOT EXISTS run_flags (
    run_id               VARCHAR NOT NULL,
    agent                VARCHAR,
    agent_version        VARCHAR,
    format               VARCHAR,
    task_id              VARCHAR,
    started_at           TIMESTAMP,
    status               VARCHAR,
    outcome              VARCHAR,
    duration_ms          DOUBLE,
    cost_usd             DOUBLE,
    input_tokens         BIGINT,
    output_tokens        BIGINT,
    cache_tokens         BIGINT,
    reasoning_tokens     BIGINT,
    n_human              INTEGER,      -- steps of kind `human`
    n_retries            INTEGER,      -- calls after a failed call of the same tool, llm calls after a failed one
    max_identical        INTEGER,      -- most identical tool calls (same tool and arguments)
    loop_cost_usd        DOUBLE,       -- cost share of repeated identical calls
    retry_cost_usd       DOUBLE,       -- cost share of retried calls
    cost_estimated_usd   DOUBLE,       -- part of cost_usd that came from the price table
    cost_reported_usd    DOUBLE,       -- part of cost_usd the source reported
    answer_cost_usd      DOUBLE,       -- cost of LLM calls that asked for no tool (final answers and the like)
    answer_estimated_usd DOUBLE
);

-- Leaf steps' cost and tokens per run and model, per run and provider, per run and kind (`dim` says which):
-- what cost breakdowns by model, provider and step kind read.
CREATE TABLE IF NOT EXISTS step_costs (
    run_id           VARCHAR NOT NULL,
    agent          VARCHAR,            -- the run's: so filters need no join (see run_flags)
    agent_version  VARCHAR,
    format         VARCHAR,
    status         VARCHAR,
    outcome        VARCHAR,
    started_at     TIMESTAMP,
    dim              VARCHAR NOT NULL, -- model / provider / kind
    key              VARCHAR,          -- the model, provider or kind
    n_steps          INTEGER,
    cost_usd         DOUBLE,
    estimated_usd    DOUBLE,
    input_tokens     BIGINT,
    output_tokens    BIGINT,
    cache_tokens     BIGINT,
    reasoning_tokens BIGINT,
    unpriced_calls   INTEGER           -- calls with tokens but no cost (a model missing from the price table)
);
