"""The generic loader: a bespoke chat log read through a mapping file (docs/generic-mapping.md).

The fixture is the hand-written example shipped in data/examples (support-chats.jsonl, six conversations, and
support-chats.workbench.toml). Per run: 1 root step + 1 step per message, except tool messages that answer a
call (they are the call's result) + 1 step per tool call:
  c-1001 system, customer, bot(1 call), bot          -> 1 + 4 + 1 = 6
  c-1002 customer, bot(1), bot, customer, bot(1), bot -> 1 + 6 + 2 = 9
  c-1003 customer, bot -> 3    c-1004 customer, bot -> 3
  c-1005 customer, bot(1 call, never answered)        -> 1 + 2 + 1 = 4
  c-1006 customer, bot(2 calls), bot                  -> 1 + 3 + 2 = 6          total 31
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.loader_util import loaded_store, one, snapshot, truncated_copy
from workbench.ingest import ingest_file
from workbench.loaders import detect
from workbench.loaders.mapping import MappingError, load_mapping

EXAMPLE = ROOT / "data" / "examples" / "support-chats.jsonl"
MAPPING = ROOT / "data" / "examples" / "support-chats.workbench.toml"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    yield from loaded_store(tmp_path_factory.mktemp("generic"), [EXAMPLE])


def test_example_is_found_by_its_mapping_and_loads(loaded):
    store, summary = loaded
    assert detect(EXAMPLE).name == "generic"  # support-chats.workbench.toml sits next to it
    [res] = summary.results
    assert (res.status, res.format, res.n_runs, res.n_steps, res.n_rejects) == ("ok", "generic", 6, 31, 0)
    per_run = dict(store.sql("SELECT native_id, n_steps FROM runs").fetchall())
    assert per_run == {"c-1001": 6, "c-1002": 9, "c-1003": 3, "c-1004": 3, "c-1005": 4, "c-1006": 6}
    # bot messages 2 + 4 + 1 + 1 + 1 + 2; tool calls 1 + 2 + 0 + 0 + 1 + 2
    assert one(store, "SELECT sum(n_llm_calls), sum(n_tool_calls) FROM runs") == (11, 6)


def test_outcome_status_and_run_fields(loaded):
    store, _ = loaded
    # resolution: resolved, escalated, abandoned, (none), (none), "Resolved" -> success = ["resolved"],
    # failure = ["escalated", "abandoned"], compared without case
    rows = store.sql(
        "SELECT native_id, outcome, outcome_score, status, error FROM runs ORDER BY native_id"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [
        ("c-1001", "success"),
        ("c-1002", "failure"),
        ("c-1003", "failure"),
        ("c-1004", "unknown"),
        ("c-1005", "unknown"),
        ("c-1006", "success"),
    ]
    assert [r[2] for r in rows][:3] == [5.0, 2.0, None]  # csat
    # only c-1005 has an `error`; the mapping names [run].error, so the others are ok
    assert [(r[3], r[4]) for r in rows if r[3] != "ok"] == [("error", "knowledge base timed out after 60 s")]
    assert json.loads(one(store, "SELECT attributes FROM runs WHERE native_id = 'c-1002'")[0]) == {
        "channel": "email",
        "mapping": "support-chats.workbench.toml",
    }  # as docs/generic-mapping.md says
    assert one(
        store,
        "SELECT agent, agent_version, user_id, tags, attributes->>'channel', input, output, "
        "started_at, ended_at, duration_ms FROM runs WHERE native_id = 'c-1001'",
    ) == (
        "support-bot",
        "2.3.0",
        "u-88",
        ["orders"],
        "web",
        "Where is my order A-17?",
        "Your order A-17 has shipped and should arrive on 4 March.",
        *store.sql("SELECT TIMESTAMP '2026-03-02 09:15:00', TIMESTAMP '2026-03-02 09:16:10'").fetchone(),
        70000.0,
    )


def test_tokens_and_costs(loaded):
    store, _ = loaded
    # usage.in: 420+510 | 380+450+520+560 | 300 | 310 | 305 | 400+470; usage.out: 35+60 | 40+30+25+20 | 10
    # | 22 | 18 | 50+28
    assert one(store, "SELECT sum(input_tokens), sum(output_tokens) FROM runs") == (4625, 338)
    # c-1002 reports usage.cost_usd (0.000081 + 0.0000855 + 0.000093 + 0.000096); the others are estimated at
    # gpt-4o-mini prices (0.15 / 0.60 per million): (2715 * 0.15 + 223 * 0.60) / 1e6
    reported = one(store, "SELECT cost_usd, cost_estimated FROM runs WHERE native_id = 'c-1002'")
    assert reported[0] == pytest.approx(0.0003555, abs=1e-12) and reported[1] is False
    estimated = one(
        store, "SELECT sum(cost_usd), bool_and(cost_estimated) FROM runs WHERE native_id <> 'c-1002'"
    )
    assert estimated[0] == pytest.approx(0.00054105, abs=1e-12) and estimated[1] is True


def test_tool_calls_arguments_and_results(loaded):
    store, _ = loaded
    rows = store.sql(
        "SELECT r.native_id, s.step_id, s.tool_name, s.tool_args, s.tool_result FROM steps s "
        "JOIN runs r USING (run_id) WHERE s.kind = 'tool' ORDER BY r.native_id, s.seq"
    ).fetchall()
    calls = [(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]
    assert calls == [
        (
            "c-1001",
            "m2.0",
            "lookup_order",
            {"order_id": "A-17"},
            '{"status": "shipped", "eta": "2026-03-04"}',
        ),
        # arguments recorded as a JSON string are parsed
        (
            "c-1002",
            "m1.0",
            "check_refund_policy",
            {"order_id": "B-2", "days_since_delivery": 45},
            "refund window is 30 days: not eligible",
        ),
        (
            "c-1002",
            "m5.0",
            "escalate_to_human",
            {"reason": "refund outside window", "priority": 2},
            "ticket T-5521 created",
        ),
        ("c-1005", "m1.0", "search_kb", {"query": "reset password"}, None),
        # results answered out of order are matched by call id
        (
            "c-1006",
            "m1.0",
            "get_account",
            {"email": "ana@example.com"},
            '{"account_id": "acc-3", "verified": true}',
        ),
        (
            "c-1006",
            "m1.1",
            "send_reset_link",
            {"email": "ana@example.com", "expires_minutes": 30},
            "reset link sent",
        ),
    ]


def test_truncated_copies(store, tmp_path):
    opts = {"fmt": "generic", "options": {"mapping": MAPPING}}
    assert ingest_file(store, EXAMPLE, **opts).status == "ok"
    before = snapshot(store)
    # the example is 5249 bytes; its lines end at bytes 977, 2627, 3077, 3539, 4094, 5249
    # cut inside the first record (10 % = byte 524): nothing readable, the import fails and names the line
    first = truncated_copy(EXAMPLE, tmp_path / "first.jsonl", keep=0.1)
    res = ingest_file(store, first, **opts)
    assert res.status == "rejected" and res.n_runs == 0
    assert res.message.startswith("line 1: not valid JSON") and "truncated" in res.message
    assert snapshot(store) == before
    # cut in the middle (byte 2624, 3 bytes before line 2 ends): line 1 is a record like any other (equal to
    # what is stored, so nothing changes) and the cut line 2 is a reject
    half = truncated_copy(EXAMPLE, tmp_path / "half.jsonl", keep=0.5)
    res = ingest_file(store, half, **opts)
    assert (res.status, res.n_runs, res.n_steps, res.n_rejects) == ("partial", 1, 0, 1)
    assert res.message.startswith("line 2: not valid JSON") and "truncated" in res.message
    assert snapshot(store) == before


def test_one_message_per_record_from_a_json_document(store, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[source]\nformat = "json"\nrecords = "export.rows"\nper = "message"\n'
        '[run]\nid = "session"\nagent = { value = "faq-bot" }\noutcome = "thumbs_up"\n'
        'success = [true]\n[messages]\nrole = "from"\ncontent = "body"\ntimestamp = "ts"\n'
        '[roles]\nassistant = ["bot"]\nuser = ["human"]\n'
    )
    rows = [
        {"session": "s1", "from": "human", "body": "hi", "ts": 1767258000000},
        {"session": "s2", "from": "human", "body": "price?", "ts": 1767258001000},
        {"session": "s1", "from": "bot", "body": "hello", "ts": 1767258002000, "thumbs_up": True},
        {"from": "bot", "body": "orphan"},
        {"session": "s2", "from": "bot", "body": "10 EUR", "ts": 1767258003000, "thumbs_up": False},
    ]
    data = tmp_path / "log.json"
    data.write_text(json.dumps({"export": {"rows": rows}}))
    res = ingest_file(store, data, fmt="generic", options={"mapping": mapping})
    assert (res.status, res.n_runs, res.n_steps, res.n_rejects) == ("partial", 2, 6, 1)
    assert res.message == "/export/rows/3: no run id at [run].id = 'session'"
    assert store.sql(
        "SELECT native_id, agent, outcome, input, output, n_steps FROM runs ORDER BY ALL"
    ).fetchall() == [
        ("s1", "faq-bot", "success", "hi", "hello", 3),
        ("s2", "faq-bot", "failure", "price?", "10 EUR", 3),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[run]\nidd = "x"\n[messages]\npath = "m"\n', "unknown key [run].idd"),
        ('[messages]\npath = "m"\n', "missing required key [run].id"),
        ('[run]\nid = "x"\n', "missing required key [messages].path"),
        ('[run]\nid = "x"\noutcome = "o"\n[messages]\npath = "m"\n', "missing key [run].success"),
        ('[run]\nid = 3\n[messages]\npath = "m"\n', "[run].id must be a key path"),
        ('[source]\nper = "line"\n[run]\nid = "x"\n', "[source].per must be"),
        ('[run]\nid = "x"\nsuccess = [{}]\n[messages]\npath = "m"\n', "[run].success must be"),
        ('[run\nid = "x"\n', "not valid TOML"),
        ("colour = 1\n", "unknown key 'colour'"),
    ],
)
def test_bad_mappings_name_the_key(tmp_path, text, says):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(MappingError) as err:
        load_mapping(bad)
    assert says in str(err.value) and str(bad) in str(err.value)


def test_cli_mapping_option(tmp_path):
    data = shutil.copy(EXAMPLE, tmp_path / "chats.jsonl")  # no mapping next to this copy
    db = tmp_path / "wb.duckdb"
    cli = [sys.executable, "-m", "workbench.cli", "ingest", "--db", str(db), "--quiet"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nid = "conversation_id"\nagnet = "bot.name"\n[messages]\npath = "turns"\n')
    out = subprocess.run(
        [*cli, "--mapping", str(bad), str(data)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "unknown key [run].agnet" in out.stderr
    assert "Traceback" not in out.stdout + out.stderr and not db.exists()
    out = subprocess.run([*cli, str(data)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "no loader recognized" in out.stdout
    out = subprocess.run(
        [*cli, "--mapping", str(MAPPING), str(data)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "generic" in out.stdout and "6 runs, 31 steps" in out.stdout
