"""The SQL that maps OTLP/JSON spans with GenAI attributes onto the canonical steps (see docs/otlp.md).

It runs inside DuckDB over `read_json`, several times faster than parsing spans in Python. Kept apart from
the loader's control flow so the mapping reads as one piece.
"""

from __future__ import annotations

_ANY_VALUE = (
    "STRUCT(stringValue VARCHAR, intValue VARCHAR, doubleValue DOUBLE, boolValue BOOLEAN, "
    "arrayValue JSON, kvlistValue JSON, bytesValue VARCHAR)"
)
_ATTRS = f"STRUCT(key VARCHAR, value {_ANY_VALUE})[]"
_SPAN = (
    "STRUCT(traceId VARCHAR, spanId VARCHAR, parentSpanId VARCHAR, name VARCHAR, kind VARCHAR, "
    f"startTimeUnixNano VARCHAR, endTimeUnixNano VARCHAR, attributes {_ATTRS}, "
    f"events STRUCT(timeUnixNano VARCHAR, name VARCHAR, attributes {_ATTRS})[], "
    "status STRUCT(code VARCHAR, message VARCHAR))"
)
RESOURCE_SPANS_TYPE = (
    f"STRUCT(resource STRUCT(attributes {_ATTRS}), "
    f"scopeSpans STRUCT(scope STRUCT(name VARCHAR, version VARCHAR), spans {_SPAN}[])[])[]"
)

# Attributes moved into their own columns; not repeated in steps.attributes.
PAYLOAD_KEYS = (
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
)

MACROS = r"""
CREATE OR REPLACE TEMP MACRO _av(attrs, k) AS list_extract(list_filter(attrs, lambda a: a.key = k), 1).value;
-- the same lookup given the span's key list, computed once per span: list_position is native and several
-- times cheaper than one lambda filter per attribute looked up
CREATE OR REPLACE TEMP MACRO _ak(attrs, keys, k) AS attrs[list_position(keys, k)].value;
CREATE OR REPLACE TEMP MACRO _as_text(v) AS coalesce(v.stringValue, v.intValue, CAST(v.doubleValue AS VARCHAR),
    CAST(v.boolValue AS VARCHAR), CAST(v.arrayValue AS VARCHAR), CAST(v.kvlistValue AS VARCHAR));
CREATE OR REPLACE TEMP MACRO _as_int(v) AS coalesce(TRY_CAST(v.intValue AS BIGINT), CAST(v.doubleValue AS BIGINT),
    TRY_CAST(v.stringValue AS BIGINT));
CREATE OR REPLACE TEMP MACRO _as_json(v) AS CASE
    WHEN v.stringValue IS NOT NULL THEN to_json(v.stringValue)
    WHEN v.intValue IS NOT NULL THEN coalesce(CAST(TRY_CAST(v.intValue AS BIGINT) AS JSON), to_json(v.intValue))
    WHEN v.doubleValue IS NOT NULL THEN to_json(v.doubleValue)
    WHEN v.boolValue IS NOT NULL THEN to_json(v.boolValue)
    WHEN v.arrayValue IS NOT NULL THEN v.arrayValue
    WHEN v.kvlistValue IS NOT NULL THEN v.kvlistValue
    ELSE to_json(v.bytesValue) END;
CREATE OR REPLACE TEMP MACRO _norm_id(x) AS CASE
    WHEN x IS NULL OR trim(x) = '' THEN NULL
    WHEN regexp_full_match(x, '(0[xX])?[0-9a-fA-F]+') THEN regexp_replace(lower(trim(x)), '^0x', '')
    WHEN regexp_full_match(x, '[A-Za-z0-9+/]+=*') AND length(x) IN (12, 24)
        THEN lower(hex(from_base64(x)))
    ELSE lower(trim(x)) END;
CREATE OR REPLACE TEMP MACRO _ts(ns) AS CASE WHEN TRY_CAST(ns AS BIGINT) > 0
    THEN make_timestamp(TRY_CAST(ns AS BIGINT) // 1000) END;
CREATE OR REPLACE TEMP MACRO _json_or_text(s) AS CASE WHEN s IS NULL THEN NULL
    WHEN json_valid(s) THEN CAST(s AS JSON) ELSE to_json(s) END;
-- current GenAI messages: [{role, parts: [{type: text|tool_call|tool_call_response|..., ...}]}]. One lenient
-- json_transform parses each list once (extra keys ignored); walking it with json_extract re-parsed it per
-- field and was 3x slower.
CREATE OR REPLACE TEMP MACRO _parts_messages(j) AS CASE WHEN j IS NULL OR NOT json_valid(j) THEN [] ELSE coalesce(
    list_transform(json_transform(j, '[{"role": "VARCHAR", "parts": [{"type": "VARCHAR", "content": "VARCHAR",
        "id": "VARCHAR", "name": "VARCHAR", "arguments": "JSON", "response": "JSON", "result": "JSON"}]}]'),
    lambda m: struct_pack(
        role := coalesce(m.role, 'unknown'),
        content := nullif(array_to_string(list_transform(
            list_filter(m.parts, lambda p: p.type IN ('text', 'reasoning') OR p.type IS NULL),
            lambda p: p.content), chr(10)), ''),
        tool_calls := list_transform(list_filter(m.parts, lambda p: p.type = 'tool_call'),
            lambda p: struct_pack(id := p.id, name := p.name, arguments := CASE
                WHEN json_type(p.arguments) = 'VARCHAR' THEN _json_or_text(p.arguments->>'$') ELSE p.arguments END)),
        tool_call_id := list_extract(list_transform(list_filter(m.parts, lambda p: p.type = 'tool_call_response'),
            lambda p: p.id), 1)
    )), []) END;
CREATE OR REPLACE TEMP MACRO _tool_response_text(j) AS CASE WHEN j IS NULL OR NOT json_valid(j) THEN NULL
    ELSE list_extract(list_transform(list_filter(json_extract(CAST(j AS JSON), '$[*].parts[*]'),
        lambda p: p->>'$.type' = 'tool_call_response'), lambda p: coalesce(p->>'$.response', p->>'$.result')), 1) END;
CREATE OR REPLACE TEMP MACRO _system_message(j) AS CASE WHEN j IS NULL THEN []
    WHEN NOT json_valid(j) THEN [struct_pack(role := 'system', content := j,
        tool_calls := []::STRUCT(id VARCHAR, name VARCHAR, arguments JSON)[], tool_call_id := NULL::VARCHAR)]
    ELSE [struct_pack(role := 'system', content := array_to_string(list_transform(
        json_extract(CAST(j AS JSON), '$[*]'), lambda p: coalesce(p->>'$.content', p->>'$')), chr(10)),
        tool_calls := []::STRUCT(id VARCHAR, name VARCHAR, arguments JSON)[], tool_call_id := NULL::VARCHAR)] END;
-- kind: an explicit GenAI operation wins, then the OpenInference span kind, then what GenAI attributes imply
CREATE OR REPLACE TEMP MACRO _genai_kind(op) AS CASE lower(op)
    WHEN 'chat' THEN 'llm' WHEN 'text_completion' THEN 'llm' WHEN 'generate_content' THEN 'llm'
    WHEN 'completion' THEN 'llm' WHEN 'execute_tool' THEN 'tool' WHEN 'invoke_agent' THEN 'agent'
    WHEN 'create_agent' THEN 'agent' WHEN 'embeddings' THEN 'retrieval' WHEN 'retrieval' THEN 'retrieval'
    WHEN 'apply_guardrail' THEN 'guardrail' WHEN 'guardrail' THEN 'guardrail'
    WHEN 'human_approval' THEN 'human' WHEN 'human_review' THEN 'human' END;
CREATE OR REPLACE TEMP MACRO _oi_kind(k) AS CASE upper(k)
    WHEN 'LLM' THEN 'llm' WHEN 'TOOL' THEN 'tool' WHEN 'AGENT' THEN 'agent' WHEN 'CHAIN' THEN 'chain'
    WHEN 'RETRIEVER' THEN 'retrieval' WHEN 'EMBEDDING' THEN 'retrieval' WHEN 'RERANKER' THEN 'retrieval'
    WHEN 'GUARDRAIL' THEN 'guardrail' WHEN 'EVALUATOR' THEN 'guardrail' WHEN 'PROMPT' THEN 'chain' END;
CREATE OR REPLACE TEMP MACRO _kind(attrs, keys) AS coalesce(
    _genai_kind(_as_text(_ak(attrs, keys, 'gen_ai.operation.name'))),
    _oi_kind(_as_text(_ak(attrs, keys, 'openinference.span.kind'))),
    CASE WHEN _ak(attrs, keys, 'gen_ai.request.model') IS NOT NULL OR _ak(attrs, keys, 'gen_ai.response.model') IS NOT NULL
              OR _ak(attrs, keys, 'llm.model_name') IS NOT NULL THEN 'llm'
         WHEN _ak(attrs, keys, 'gen_ai.tool.name') IS NOT NULL OR _ak(attrs, keys, 'tool.name') IS NOT NULL THEN 'tool'
         ELSE 'other' END);
-- OpenInference flattened messages: llm.{input,output}_messages.N.message.FIELD, one attribute per leaf.
-- `_oi_flat` parses the keys once (d: output?, n: message index as a number, f: FIELD); `_oi_messages`
-- groups them by (d, n) sorted numerically, so message 10 follows message 9.
CREATE OR REPLACE TEMP MACRO _oi_flat(attrs) AS list_transform(
    list_filter(attrs, lambda z: starts_with(z.key, 'llm.input_messages.') OR starts_with(z.key, 'llm.output_messages.')),
    lambda z: struct_pack(d := starts_with(z.key, 'llm.output'), n := TRY_CAST(split_part(z.key, '.', 3) AS INTEGER),
                          f := nullif(regexp_extract(z.key, '^llm\.\w+\.\d+\.message\.(.+)$', 1), ''),
                          v := _as_text(z.value)));
CREATE OR REPLACE TEMP MACRO _oi_get(ms, field) AS list_extract(list_filter(ms, lambda q: q.f = field), 1).v;
CREATE OR REPLACE TEMP MACRO _oi_indexes(ms, prefix) AS list_sort(list_distinct(list_transform(
    list_filter(ms, lambda q: starts_with(q.f, prefix)), lambda q: TRY_CAST(split_part(q.f, '.', 2) AS INTEGER))));
CREATE OR REPLACE TEMP MACRO _oi_message(ms) AS struct_pack(
    role := coalesce(_oi_get(ms, 'role'), 'unknown'),
    content := coalesce(_oi_get(ms, 'content'), nullif(array_to_string(list_transform(_oi_indexes(ms, 'contents.'),
        lambda k: _oi_get(ms, 'contents.' || k || '.message_content.text')), chr(10)), '')),
    tool_calls := list_concat(
        list_transform(_oi_indexes(ms, 'tool_calls.'), lambda k: struct_pack(
            id := _oi_get(ms, 'tool_calls.' || k || '.tool_call.id'),
            name := _oi_get(ms, 'tool_calls.' || k || '.tool_call.function.name'),
            arguments := _json_or_text(_oi_get(ms, 'tool_calls.' || k || '.tool_call.function.arguments')))),
        -- the legacy single function call of older instrumentations
        CASE WHEN _oi_get(ms, 'function_call_name') IS NOT NULL THEN [struct_pack(id := NULL::VARCHAR,
            name := _oi_get(ms, 'function_call_name'),
            arguments := _json_or_text(_oi_get(ms, 'function_call_arguments_json')))] END),
    tool_call_id := _oi_get(ms, 'tool_call_id'));
CREATE OR REPLACE TEMP MACRO _oi_messages(flat) AS list_transform(
    list_sort(list_distinct(list_transform(list_filter(flat, lambda q: q.n IS NOT NULL AND q.f IS NOT NULL),
        lambda q: struct_pack(d := q.d, n := q.n)))),
    lambda i: _oi_message(list_filter(flat, lambda q: q.d = i.d AND q.n = i.n)));
-- a JSON list of OpenAI-style tool calls ([{id, function: {name, arguments}}] or [{id, name, arguments}])
CREATE OR REPLACE TEMP MACRO _json_tool_calls(j) AS coalesce(list_transform(json_extract(j, '$[*]'),
    lambda t: struct_pack(id := t->>'$.id', name := coalesce(t->>'$.function.name', t->>'$.name'),
        arguments := _json_or_text(coalesce(t->>'$.function.arguments', t->>'$.arguments')))),
    []::STRUCT(id VARCHAR, name VARCHAR, arguments JSON)[]);
CREATE OR REPLACE TEMP MACRO _is_object(s) AS json_valid(s) AND json_type(s) = 'OBJECT';
CREATE OR REPLACE TEMP MACRO _attrs_json(attrs) AS to_json(map(
    list_transform(attrs, lambda a: a.key), list_transform(attrs, lambda a: _as_json(a.value))));
CREATE OR REPLACE TEMP MACRO _dedupe_attrs(attrs) AS CASE
    WHEN len(list_distinct(list_transform(attrs, lambda a: a.key))) = len(attrs) THEN attrs
    ELSE list_filter(attrs, lambda a, i: NOT list_contains(list_transform(attrs[i + 1:], lambda b: b.key), a.key))
    END;
"""

# deprecated GenAI message events: gen_ai.{{system,user,assistant,tool}}.message and gen_ai.choice, with the
# message in attributes (`content`, `tool_calls`, `id`) or as the event body serialized into the attribute
# `gen_ai.event.content` ({{"content": ...}}, a choice's {{"index", "message": {{"content", "tool_calls"}}}}).
# Inlined rather than a macro: DuckDB cannot bind a macro that reaches into a lambda parameter's fields.
_EVENT_MESSAGES = """list_transform(
    list_filter(coalesce({events}, []), lambda e: e.name IN ('gen_ai.system.message', 'gen_ai.user.message',
        'gen_ai.assistant.message', 'gen_ai.tool.message', 'gen_ai.choice')),
    lambda e: struct_pack(
        role := CASE WHEN e.name = 'gen_ai.choice' THEN 'assistant' ELSE split_part(e.name, '.', 2) END,
        content := coalesce(_as_text(_av(e.attributes, 'content')), CASE
            WHEN _is_object(_as_text(_av(e.attributes, 'gen_ai.event.content')))
            THEN coalesce(CAST(_as_text(_av(e.attributes, 'gen_ai.event.content')) AS JSON)->>'$.content',
                          CAST(_as_text(_av(e.attributes, 'gen_ai.event.content')) AS JSON)->>'$.message.content')
            ELSE _as_text(_av(e.attributes, 'gen_ai.event.content')) END),
        tool_calls := CASE
            WHEN json_valid(_as_text(_av(e.attributes, 'tool_calls')))
                THEN _json_tool_calls(CAST(_as_text(_av(e.attributes, 'tool_calls')) AS JSON))
            WHEN e.name IN ('gen_ai.choice', 'gen_ai.assistant.message')
                 AND _is_object(_as_text(_av(e.attributes, 'gen_ai.event.content')))
                THEN _json_tool_calls(coalesce(
                    CAST(_as_text(_av(e.attributes, 'gen_ai.event.content')) AS JSON)->'$.tool_calls',
                    CAST(_as_text(_av(e.attributes, 'gen_ai.event.content')) AS JSON)->'$.message.tool_calls'))
            ELSE []::STRUCT(id VARCHAR, name VARCHAR, arguments JSON)[] END,
        tool_call_id := CASE WHEN e.name = 'gen_ai.tool.message' THEN coalesce(_as_text(_av(e.attributes, 'id')),
            CASE WHEN _is_object(_as_text(_av(e.attributes, 'gen_ai.event.content')))
                 THEN CAST(_as_text(_av(e.attributes, 'gen_ai.event.content')) AS JSON)->>'$.id' END) END
    ))"""


def spans_query(source: str) -> str:
    """SELECT one row per span from `source` (a table expression with columns resourceSpans, bad, has_logs).

    Columns: `_trace_id`, `_res_*` and `_bad`/`_has_logs` helpers, and the canonical step columns except
    seq/depth. The statement takes the parameter `$fmt`, the loader's name, which keys the run ids.
    """
    payload = ", ".join(f"'{k}'" for k in PAYLOAD_KEYS)
    return f"""
    WITH r AS (
        -- bad lines travel on as one row with a NULL span, so one scan both loads and counts them
        SELECT bad, has_logs, unnest(CASE WHEN bad OR has_logs OR len(resourceSpans) = 0 THEN [NULL]
                                          ELSE resourceSpans END) AS rs
        FROM {source}
    ),
    s AS (SELECT bad, has_logs, coalesce(rs.resource.attributes, []) AS res,
                 unnest(CASE WHEN len(rs.scopeSpans) > 0 THEN rs.scopeSpans ELSE [NULL] END) AS ss FROM r),
    x AS (SELECT bad, has_logs, res,
                 unnest(CASE WHEN len(ss.spans) > 0 THEN ss.spans ELSE [NULL] END) AS sp FROM s),
    y AS (
        SELECT bad, has_logs, res, sp, coalesce(sp.attributes, []) AS a,
               list_transform(coalesce(sp.attributes, []), lambda z: z.key) AS keys,
               _norm_id(sp.traceId) AS trace_id,
               _norm_id(sp.parentSpanId) AS parent_id,
               list_filter(coalesce(sp.events, []), lambda e: e.name = 'gen_ai.evaluation.result') AS evals,
               list_filter(coalesce(sp.events, []), lambda e: e.name = 'exception') AS exc,
               _oi_flat(coalesce(sp.attributes, [])) AS oi
        FROM x WHERE (sp.traceId IS NOT NULL AND sp.spanId IS NOT NULL) OR bad OR has_logs
    ),
    z AS (SELECT *, list_concat(_system_message(_as_text(_ak(a, keys, 'gen_ai.system_instructions'))),
                    _parts_messages(_as_text(_ak(a, keys, 'gen_ai.input.messages'))),
                    {_EVENT_MESSAGES.format(events='sp.events')},
                    _parts_messages(_as_text(_ak(a, keys, 'gen_ai.output.messages')))) AS m,
                 upper(_as_text(_ak(a, keys, 'openinference.span.kind'))) = 'TOOL' AS oi_tool FROM y)
    SELECT
        bad AS _bad, has_logs AS _has_logs,
        trace_id AS _trace_id,
        _as_text(_av(res, 'service.name')) AS _res_service,
        _as_text(_av(res, 'service.version')) AS _res_version,
        coalesce(_as_text(_av(res, 'deployment.environment.name')),
                 _as_text(_av(res, 'deployment.environment'))) AS _res_env,
        substr(sha256($fmt || chr(31) || trace_id), 1, 16) AS run_id,
        _norm_id(sp.spanId) AS step_id,
        parent_id AS parent_step_id,
        _kind(a, keys) AS kind,
        sp.name AS name,
        _ts(sp.startTimeUnixNano) AS started_at,
        _ts(sp.endTimeUnixNano) AS ended_at,
        (TRY_CAST(sp.endTimeUnixNano AS BIGINT) - TRY_CAST(sp.startTimeUnixNano AS BIGINT)) / 1e6 AS duration_ms,
        CASE WHEN sp.status.code IN ('2', 'STATUS_CODE_ERROR') THEN 'error'
             WHEN sp.status.code IN ('1', 'STATUS_CODE_OK') THEN 'ok' ELSE 'unset' END AS status,
        CASE WHEN sp.status.code IN ('2', 'STATUS_CODE_ERROR') OR len(exc) > 0 THEN coalesce(
            nullif(sp.status.message, ''), _as_text(_ak(a, keys, 'error.type')),
            _as_text(_av(list_extract(exc, 1).attributes, 'exception.message')), 'error') END AS error,
        coalesce(_as_text(_ak(a, keys, 'gen_ai.response.model')), _as_text(_ak(a, keys, 'gen_ai.request.model')),
                 _as_text(_ak(a, keys, 'llm.model_name'))) AS model,
        coalesce(_as_text(_ak(a, keys, 'gen_ai.provider.name')), _as_text(_ak(a, keys, 'gen_ai.system')),
                 _as_text(_ak(a, keys, 'llm.provider')), _as_text(_ak(a, keys, 'llm.system'))) AS provider,
        -- GenAI messages win; OpenInference's flattened ones fill in where a span has none
        CASE WHEN len(m) > 0 THEN to_json(m) WHEN len(oi) > 0 THEN to_json(_oi_messages(oi)) END AS messages,
        coalesce(_as_text(_ak(a, keys, 'gen_ai.tool.name')), _as_text(_ak(a, keys, 'tool.name')),
                 _as_text(_ak(a, keys, 'tool_call.function.name'))) AS tool_name,
        _json_or_text(coalesce(_as_text(_ak(a, keys, 'gen_ai.tool.call.arguments')),
                               _as_text(_ak(a, keys, 'tool_call.function.arguments')),
                               CASE WHEN oi_tool THEN _as_text(_ak(a, keys, 'input.value')) END,
                               _as_text(_ak(a, keys, 'tool.parameters')))) AS tool_args,
        coalesce(_as_text(_ak(a, keys, 'gen_ai.tool.call.result')),
                 _tool_response_text(_as_text(_ak(a, keys, 'gen_ai.input.messages'))),
                 CASE WHEN oi_tool THEN _as_text(_ak(a, keys, 'output.value')) END) AS tool_result,
        coalesce(_as_int(_ak(a, keys, 'gen_ai.usage.input_tokens')), _as_int(_ak(a, keys, 'gen_ai.usage.prompt_tokens')),
                 _as_int(_ak(a, keys, 'llm.token_count.prompt'))) AS input_tokens,
        coalesce(_as_int(_ak(a, keys, 'gen_ai.usage.output_tokens')),
                 _as_int(_ak(a, keys, 'gen_ai.usage.completion_tokens')),
                 _as_int(_ak(a, keys, 'llm.token_count.completion'))) AS output_tokens,
        coalesce(_as_int(_ak(a, keys, 'gen_ai.usage.cache_read.input_tokens')),
                 _as_int(_ak(a, keys, 'gen_ai.usage.cache_read_input_tokens')),
                 _as_int(_ak(a, keys, 'llm.token_count.prompt_details.cache_read'))) AS cache_tokens,
        coalesce(_as_int(_ak(a, keys, 'gen_ai.usage.reasoning.output_tokens')),
                 _as_int(_ak(a, keys, 'gen_ai.usage.reasoning_tokens')),
                 _as_int(_ak(a, keys, 'llm.token_count.completion_details.reasoning'))) AS reasoning_tokens,
        -- a cost the source reported; spans with tokens but no cost are estimated after staging
        nullif(TRY_CAST(coalesce(_as_text(_ak(a, keys, 'gen_ai.usage.cost')),
                                 _as_text(_ak(a, keys, 'llm.cost.total'))) AS DOUBLE), 0) AS cost_usd,
        CASE WHEN TRY_CAST(coalesce(_as_text(_ak(a, keys, 'gen_ai.usage.cost')),
                                    _as_text(_ak(a, keys, 'llm.cost.total'))) AS DOUBLE) > 0 THEN false END
            AS cost_estimated,
        _attrs_json(_dedupe_attrs(list_concat(
            -- attributes moved into columns are not repeated (OpenInference messages only when present)
            CASE WHEN len(oi) = 0 THEN list_filter(a, lambda k: k.key NOT IN ({payload}))
                 ELSE list_filter(a, lambda k: k.key NOT IN ({payload}) AND NOT starts_with(k.key, 'llm.input_messages.')
                                               AND NOT starts_with(k.key, 'llm.output_messages.')) END,
            list_transform(list_extract(evals, 1).attributes, lambda k: k),
            CASE WHEN parent_id IS NULL
                 THEN list_transform(res, lambda k: struct_pack(key := 'resource.' || k.key, value := k.value))
                 ELSE [] END))) AS attributes
    FROM z
    """


# Run-level facts from each affected run's root step (the first step without a parent, else the first step).
# The rows that matter are picked on keys first and their payloads joined back once: aggregating over the
# payload columns themselves (arg_min(messages, ...)) spilled and took minutes at 1M spans.
RUN_FACTS = (r"""
CREATE OR REPLACE TEMP TABLE _span_facts AS
WITH mine AS (
    SELECT run_id, step_id, seq, depth, parent_step_id, kind, messages IS NOT NULL AS has_messages,
           contains(CAST(attributes AS VARCHAR), 'gen_ai.evaluation.score') AS has_eval
    FROM steps WHERE run_id IN (SELECT run_id FROM _affected)
),
picks AS (
    SELECT run_id,
        arg_min(step_id, (parent_step_id IS NOT NULL, seq)) AS root_id,
        arg_min(step_id, seq) FILTER (kind = 'llm' AND has_messages) AS first_llm,
        arg_max(step_id, seq) FILTER (kind = 'llm' AND has_messages) AS last_llm,
        arg_min(step_id, (depth, seq)) FILTER (has_eval) AS eval_id
    FROM mine GROUP BY run_id
),
facts AS (
    SELECT p.run_id, p.root_id, r.attributes AS ra, r.messages AS rm, f.messages AS first_m, l.messages AS last_m,
        lower(e.attributes->>'$."gen_ai.evaluation.score.label"') AS label,
        TRY_CAST(e.attributes->>'$."gen_ai.evaluation.score.value"' AS DOUBLE) AS score,
        r.attributes->>'$."input.value"' AS in_v, r.attributes->>'$."input.mime_type"' AS in_mime,
        r.attributes->>'$."output.value"' AS out_v, r.attributes->>'$."output.mime_type"' AS out_mime
    -- each pick joins `steps` itself: the small side (picks) is hashed and the wide rows stream past it. A
    -- shared CTE of the picked rows was materialized with all their payloads and ran out of memory at 1M spans
    FROM picks p
    JOIN steps r ON r.run_id = p.run_id AND r.step_id = p.root_id
    LEFT JOIN steps f ON f.run_id = p.run_id AND f.step_id = p.first_llm
    LEFT JOIN steps l ON l.run_id = p.run_id AND l.step_id = p.last_llm
    LEFT JOIN steps e ON e.run_id = p.run_id AND e.step_id = p.eval_id
)
SELECT facts.run_id,
    coalesce(ra->>'$."gen_ai.agent.name"', ra->>'$."agent.name"', ra->>'$."resource.service.name"', res.service)
        AS agent,
    coalesce(ra->>'$."gen_ai.agent.version"', ra->>'$."resource.service.version"', res.version) AS agent_version,
    coalesce(ra->>'$."resource.deployment.environment.name"', ra->>'$."resource.deployment.environment"',
             res.env) AS environment,
    coalesce(ra->>'$."workbench.task.id"', ra->>'$."task.id"') AS task_id,
    coalesce(ra->>'$."gen_ai.conversation.id"', ra->>'$."session.id"') AS session_id,
    coalesce(ra->>'$."user.id"', ra->>'$."enduser.id"') AS user_id,
    CASE
        WHEN label IN ('pass', 'passed', 'success', 'succeeded', 'correct', 'true', 'yes', 'c') THEN 'success'
        WHEN label IN ('fail', 'failed', 'failure', 'incorrect', 'false', 'no', 'i') THEN 'failure'
        WHEN label IS NULL AND score IS NOT NULL THEN CASE WHEN score >= 0.5 THEN 'success' ELSE 'failure' END
        WHEN lower(ra->>'$."workbench.outcome"') IN ('success', 'failure') THEN lower(ra->>'$."workbench.outcome"')
        ELSE NULL END AS outcome,
    score AS outcome_score,
    -- OpenInference roots (AGENT, CHAIN) carry input.value / output.value instead of messages: plain text is
    -- the task itself; a JSON payload is taken only when no llm step has a user message
    _first_text(rm, ['user']) AS root_user, _first_text(first_m, ['user']) AS llm_user, in_v, in_mime,
    _last_text(rm, ['assistant', 'model']) AS root_answer, _last_text(last_m, ['assistant', 'model']) AS llm_answer,
    out_v, out_mime, _tags(ra->'$."tag.tags"') AS tags, root_id
FROM facts LEFT JOIN _otlp_resources res USING (run_id)
""", r"""
-- in a second statement over the small per-run table: evaluated inside the big one above, the plain-text
-- macro ran a 1M-span file out of memory
INSERT INTO _stage_runs (run_id, format, agent, agent_version, environment, task_id, session_id, user_id,
                         outcome, outcome_score, input, output, tags, attributes)
SELECT f.run_id, $fmt, agent, agent_version, environment, task_id, session_id, user_id, outcome, outcome_score,
    coalesce(root_user, _plain_text(in_v, in_mime), llm_user, in_v),
    coalesce(root_answer, _plain_text(out_v, out_mime), llm_answer, out_v),
    tags, s.attributes  -- the root's attributes, joined again rather than held in the temp table
FROM _span_facts f JOIN steps s ON s.run_id = f.run_id AND s.step_id = f.root_id
""", "DROP TABLE _span_facts")

TEXT_MACROS = r"""
-- first / last text of a message with one of the roles `r` (Gemini's assistant is `model`)
CREATE OR REPLACE TEMP MACRO _first_text(msgs, r) AS list_extract(list_filter(list_transform(json_extract(msgs, '$[*]'),
    lambda m: CASE WHEN list_contains(r, m->>'$.role') THEN m->>'$.content' END), lambda t: t IS NOT NULL), 1);
CREATE OR REPLACE TEMP MACRO _last_text(msgs, r) AS list_extract(list_filter(list_transform(json_extract(msgs, '$[*]'),
    lambda m: CASE WHEN list_contains(r, m->>'$.role') THEN m->>'$.content' END), lambda t: t IS NOT NULL), -1);
-- OpenInference input.value / output.value as the run's text: plain text (by mime type, or not JSON), or the
-- one string of a one-key JSON object such as LangChain's {"question": ...} / {"output": ...}
CREATE OR REPLACE TEMP MACRO _plain_text(v, mime) AS CASE
    WHEN mime = 'text/plain' OR (mime IS NULL AND NOT coalesce(json_valid(v), false)) THEN v
    WHEN coalesce(json_valid(v), false) AND json_type(v) = 'OBJECT' AND len(json_keys(v)) = 1 AND json_type(v, '$.*') = ['VARCHAR']
        THEN json_extract_string(v, '$.*')[1] END;
CREATE OR REPLACE TEMP MACRO _plain_value(attrs, io) AS _plain_text(
    json_extract_string(attrs, '$."' || io || '.value"'), json_extract_string(attrs, '$."' || io || '.mime_type"'));
-- OpenInference tag.tags: an OTLP array ({"values": [{"stringValue": ...}]}), a JSON list, or a JSON string of one
CREATE OR REPLACE TEMP MACRO _tags(j) AS CASE
    WHEN json_type(j) = 'OBJECT' THEN json_extract_string(j, '$.values[*].stringValue')
    WHEN json_type(j) = 'ARRAY' THEN json_extract_string(j, '$[*]')
    WHEN json_type(j) = 'VARCHAR' AND json_valid(j->>'$') AND json_type(j->>'$') = 'ARRAY'
        THEN json_extract_string(CAST(j->>'$' AS JSON), '$[*]') END;
"""
