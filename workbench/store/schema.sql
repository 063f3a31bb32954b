-- The canonical store: the single source of truth for a fresh database.
-- Older databases reach the same shape through migrations/NNN_*.sql (tests check they agree).
-- Timestamps are UTC, stored as plain TIMESTAMP (no time-zone library needed to read them).

CREATE TABLE IF NOT EXISTS meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR
);

CREATE TABLE IF NOT EXISTS imports (
    import_id   VARCHAR PRIMARY KEY,   -- sha256 of (path, content hash, started_at)
    path        VARCHAR NOT NULL,
    format      VARCHAR,
    sha256      VARCHAR,
    size_bytes  BIGINT,
    started_at  TIMESTAMP,
    finished_at TIMESTAMP,
    n_runs      INTEGER DEFAULT 0,     -- runs touched (new or merged)
    n_steps     INTEGER DEFAULT 0,     -- steps that were new or more complete
    n_rejects   INTEGER DEFAULT 0,
    status      VARCHAR,               -- ok / partial / rejected / skipped / failed
    message     VARCHAR
);

CREATE TABLE IF NOT EXISTS runs (
    run_id           VARCHAR PRIMARY KEY,  -- sha256(format \x1f native_id)[:16]
    format           VARCHAR NOT NULL,     -- loader name: otlp, langfuse, tau-bench ...
    native_id        VARCHAR NOT NULL,     -- trace id / trajectory id as the source wrote it, normalized
    import_id        VARCHAR,              -- first import that brought this run
    agent            VARCHAR,
    agent_version    VARCHAR,
    environment      VARCHAR,
    task_id          VARCHAR,
    session_id       VARCHAR,
    user_id          VARCHAR,
    started_at       TIMESTAMP,
    ended_at         TIMESTAMP,
    duration_ms      DOUBLE,
    status           VARCHAR,              -- ok / error / unknown
    outcome          VARCHAR,              -- success / failure / unknown
    outcome_score    DOUBLE,
    input            VARCHAR,
    output           VARCHAR,
    n_steps          INTEGER,
    n_llm_calls      INTEGER,
    n_tool_calls     INTEGER,
    n_errors         INTEGER,
    input_tokens     BIGINT,
    output_tokens    BIGINT,
    cache_tokens     BIGINT,
    reasoning_tokens BIGINT,
    cost_usd         DOUBLE,
    cost_estimated   BOOLEAN,              -- true when any part of cost_usd came from the price table
    tags             VARCHAR[],
    attributes       JSON,
    error            VARCHAR               -- first error message in the run (added by migration 002)
);

CREATE TABLE IF NOT EXISTS steps (
    run_id           VARCHAR NOT NULL,
    step_id          VARCHAR NOT NULL,
    parent_step_id   VARCHAR,
    seq              INTEGER,              -- position in the run, by start time
    depth            INTEGER,
    kind             VARCHAR,              -- llm tool agent chain retrieval guardrail human message event other
    name             VARCHAR,
    started_at       TIMESTAMP,
    ended_at         TIMESTAMP,
    duration_ms      DOUBLE,
    status           VARCHAR,              -- ok / error / unset
    error            VARCHAR,
    model            VARCHAR,
    provider         VARCHAR,
    messages         JSON,                 -- [{role, content, tool_calls?, tool_call_id?}]
    tool_name        VARCHAR,
    tool_args        JSON,
    tool_result      VARCHAR,
    input_tokens     BIGINT,
    output_tokens    BIGINT,
    cache_tokens     BIGINT,
    reasoning_tokens BIGINT,
    cost_usd         DOUBLE,
    cost_estimated   BOOLEAN,
    attributes       JSON
);

CREATE TABLE IF NOT EXISTS label_events (
    event_id         VARCHAR PRIMARY KEY,  -- deterministic for imported labels, random for reviewers' actions
    run_id           VARCHAR NOT NULL,
    step_id          VARCHAR,              -- NULL: the label is on the whole run
    code             VARCHAR NOT NULL,     -- taxonomy code, e.g. tool.wrong_tool
    severity         VARCHAR,              -- low / medium / high / critical
    note             VARCHAR,
    reviewer         VARCHAR NOT NULL,     -- a person, or `imported` for labels that came with a trace file
    created_at       TIMESTAMP NOT NULL,
    action           VARCHAR NOT NULL,     -- add / remove; settle_add / settle_remove decide a disagreement
    taxonomy_version VARCHAR,
    source           VARCHAR,              -- app, bulk:<batch>, import:<import_id>, notebook
    batch_id         VARCHAR               -- events made by one bulk action share it (undo takes the batch)
);

CREATE TABLE IF NOT EXISTS taxonomy (
    version     VARCHAR NOT NULL,      -- content hash of the taxonomy file it came from
    code        VARCHAR NOT NULL,      -- dotted: the part before the first dot is the group
    parent      VARCHAR,               -- the group code (e.g. tool for tool.wrong_tool)
    name        VARCHAR NOT NULL,
    description VARCHAR,
    key         VARCHAR,               -- keyboard key on the Review page
    loaded_at   TIMESTAMP,
    PRIMARY KEY (version, code)
);

CREATE TABLE IF NOT EXISTS assignments (
    run_id      VARCHAR NOT NULL,
    reviewer    VARCHAR NOT NULL,
    assigned_by VARCHAR,
    assigned_at TIMESTAMP,
    PRIMARY KEY (run_id, reviewer)
);

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

CREATE TABLE IF NOT EXISTS clusterings (
    clustering_id VARCHAR PRIMARY KEY,
    name          VARCHAR,              -- optional title, e.g. "weekly review 46"
    created_at    TIMESTAMP NOT NULL,
    created_by    VARCHAR,
    method        VARCHAR,              -- kmeans-merge / kmeans / hdbscan
    params        JSON,                 -- every FailureClusterer parameter
    filter        JSON,                 -- the run selection (RunFilter)
    period_from   DATE,                 -- first and last day of the clustered runs (or of the filter)
    period_to     DATE,
    n_runs        INTEGER,              -- failed runs clustered
    n_selected    INTEGER,              -- runs in the selection, failed or not
    n_clusters    INTEGER,
    clusters      JSON                  -- {"table": [cluster table rows], "profiles": {cluster: {term: weight}}}
);

CREATE TABLE IF NOT EXISTS cluster_members (
    clustering_id VARCHAR NOT NULL,
    run_id        VARCHAR NOT NULL,
    cluster       INTEGER NOT NULL,     -- 0 = largest cluster; -1 = left unclustered (HDBSCAN noise)
    cluster_name  VARCHAR,
    x             DOUBLE,               -- position on the cluster map
    y             DOUBLE,
    distance      DOUBLE,               -- cosine distance to the cluster's centre
    PRIMARY KEY (clustering_id, run_id)
);

CREATE TABLE IF NOT EXISTS assessments (
    assessment_id     VARCHAR PRIMARY KEY,  -- sha256(name, taken_at, framework version)[:16]
    taken_at          TIMESTAMP NOT NULL,   -- UTC
    name              VARCHAR NOT NULL,     -- the scope assessed, e.g. "fleet"; snapshots of one name are compared
    framework_version VARCHAR NOT NULL,     -- `version` of the framework file the levels were computed with
    answers           JSON,                 -- questionnaire: {question id: chosen answer}
    result            JSON NOT NULL         -- the whole assessment (levels, criteria, evidence, remediation)
);

CREATE TABLE IF NOT EXISTS rejects (
    import_id VARCHAR NOT NULL,
    location  VARCHAR NOT NULL,            -- "line 12", "/resourceSpans/0/..." or the file itself
    reason    VARCHAR NOT NULL,
    excerpt   VARCHAR                      -- first 500 characters of the raw record
);
