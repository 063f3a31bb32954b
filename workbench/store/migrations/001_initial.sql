-- Schema version 1: the first released shape.
CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE imports (
    import_id VARCHAR PRIMARY KEY, path VARCHAR NOT NULL, format VARCHAR, sha256 VARCHAR, size_bytes BIGINT,
    started_at TIMESTAMP, finished_at TIMESTAMP, n_runs INTEGER DEFAULT 0, n_steps INTEGER DEFAULT 0,
    n_rejects INTEGER DEFAULT 0, status VARCHAR, message VARCHAR);
CREATE TABLE runs (
    run_id VARCHAR PRIMARY KEY, format VARCHAR NOT NULL, native_id VARCHAR NOT NULL, import_id VARCHAR,
    agent VARCHAR, agent_version VARCHAR, environment VARCHAR, task_id VARCHAR, session_id VARCHAR,
    user_id VARCHAR, started_at TIMESTAMP, ended_at TIMESTAMP, duration_ms DOUBLE, status VARCHAR,
    outcome VARCHAR, outcome_score DOUBLE, input VARCHAR, output VARCHAR, n_steps INTEGER,
    n_llm_calls INTEGER, n_tool_calls INTEGER, n_errors INTEGER, input_tokens BIGINT, output_tokens BIGINT,
    cache_tokens BIGINT, reasoning_tokens BIGINT, cost_usd DOUBLE, cost_estimated BOOLEAN, tags VARCHAR[],
    attributes JSON);
CREATE TABLE steps (
    run_id VARCHAR NOT NULL, step_id VARCHAR NOT NULL, parent_step_id VARCHAR, seq INTEGER, depth INTEGER,
    kind VARCHAR, name VARCHAR, started_at TIMESTAMP, ended_at TIMESTAMP, duration_ms DOUBLE, status VARCHAR,
    error VARCHAR, model VARCHAR, provider VARCHAR, messages JSON, tool_name VARCHAR, tool_args JSON,
    tool_result VARCHAR, input_tokens BIGINT, output_tokens BIGINT, cache_tokens BIGINT,
    reasoning_tokens BIGINT, cost_usd DOUBLE, cost_estimated BOOLEAN, attributes JSON);
CREATE TABLE rejects (import_id VARCHAR NOT NULL, location VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    excerpt VARCHAR);
