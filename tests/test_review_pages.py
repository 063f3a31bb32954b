"""The Review and Labels pages through streamlit's AppTest, on the fixture database (tests/browser_util.py).

Each test gets its own copy of the fixture, because labeling writes. Expected run ids and counts are computed
here from `browser_util.sample_runs()` (the rows the fixture inserts), not read back from the library.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from streamlit.testing.v1 import AppTest

from tests import browser_util as bu
from tests.test_pages import _opener, assert_trace_text_is_inert, no_errors
from workbench import labels as lb
from workbench.store import Store, shared_store

REVIEW, LABELS = "app_pages/review.py", "app_pages/labels.py"


def failures_in_queue_order() -> list[str]:
    """Failed runs of the fixture (outcome failure or status error), oldest first: the review queue's order."""
    runs = [r for r in bu.sample_runs() if r["outcome"] == "failure" or r["status"] == "error"]
    return [r["run_id"] for r in sorted(runs, key=lambda r: (r["started_at"], r["run_id"]))]


FAILED = failures_in_queue_order()
AGENT = {r["run_id"]: r["agent"] for r in bu.sample_runs()}
VERSION = {r["run_id"]: r["agent_version"] for r in bu.sample_runs()}


@pytest.fixture
def db(tmp_path):
    return bu.build_sample_db(tmp_path / "wb.duckdb")


@pytest.fixture
def open_page(db, monkeypatch):
    return _opener(db, monkeypatch)


def app_store(db) -> Store:
    """The app's own connection (this process serves the app; another configuration would be refused)."""
    return shared_store(db, serving=True)


def sign_in(at: AppTest, name: str) -> AppTest:
    at.text_input(key="review.name_input").input(name)
    at.button(key="FormSubmitter:review.who-Start").click().run()
    no_errors(at)
    return at


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def events(db, reviewer: str | None = None) -> list[tuple]:
    return app_store(db).sql(
        "SELECT run_id, step_id, code, action, severity, note FROM label_events "
        "WHERE $r IS NULL OR reviewer = $r ORDER BY rowid", {"r": reviewer}).fetchall()


def table(at: AppTest, *columns: str):
    """The first dataframe on the page that has all these columns (AppTest does not expose their keys)."""
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def current_table(at: AppTest):
    """The current labels: reviewer and taxonomy version like the history, but no action column."""
    return next(d.value for d in at.dataframe
                if {"reviewer", "taxonomy_version"} <= set(d.value.columns) and "action" not in d.value.columns)


def press(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    no_errors(at)
    return at


# -- Review -------------------------------------------------------------------------------------------------
def test_fixture_has_the_failures_the_tests_expect():
    # sample_runs: outcome cycles over 7 values with failures at positions 2 and 5 (runs 2, 5, 9, 12, 16, 19,
    # 23, 26, 30, 33), plus run 8 (the hostile one) forced to failure: 11 failed runs
    assert len(FAILED) == 11 and bu.EVIL_RUN_ID in FAILED


def test_review_asks_the_name_once_then_serves_the_queue(open_page):
    at = open_page(REVIEW)
    no_errors(at)
    assert [b.key for b in at.button] == ["FormSubmitter:review.who-Start"]  # no label pad before a name
    sign_in(at, "  ana  ")
    assert texts(at)[0] == "reviewing as ana"
    assert at.query_params["run"] == FAILED[0]
    assert at.code[0].value == FAILED[0]  # the embedded replay's header
    # the name is kept for the browser session: another page does not ask again
    at.switch_page(LABELS).run()
    no_errors(at)
    assert texts(at)[0] == "reviewing as ana"
    assert "review.name_input" not in [t.key for t in at.text_input]


def test_a_new_filter_restarts_the_queue_and_another_name_can_sign_in(open_page):
    at = sign_in(open_page(REVIEW), "ana")
    assert at.query_params["run"] == FAILED[0] and AGENT[FAILED[0]] == "coder"
    at.sidebar.multiselect(key="agent").select("support-bot").run()
    no_errors(at)
    assert at.query_params["run"] == next(r for r in FAILED if AGENT[r] == "support-bot")
    press(at, "review.forget")  # "Not you?": the name form again, then the new name labels
    assert "review.name_input" in [t.key for t in at.text_input]
    sign_in(at, "ben")
    assert texts(at)[0] == "reviewing as ben"


def test_the_name_imported_is_refused(open_page):
    at = open_page(REVIEW)
    at.text_input(key="review.name_input").input("imported")
    at.button(key="FormSubmitter:review.who-Start").click().run()
    assert at.warning and "kept for labels that came with trace files" in at.warning[0].value
    assert "review.name_input" in [t.key for t in at.text_input]


def test_signed_in_user_is_the_reviewer(db, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB", str(db))
    at = AppTest.from_file(bu.ROOT / "app.py", default_timeout=30)
    at.user = {"is_logged_in": True, "name": "Maria Lopez", "email": "maria@example.com"}
    at.run()
    at.switch_page(REVIEW).run()
    no_errors(at)
    assert texts(at)[0] == "reviewing as Maria Lopez (signed in)"
    press(at, "review.code.other")
    assert app_store(db).sql("SELECT reviewer FROM label_events").fetchall() == [("Maria Lopez",)]


def test_every_code_and_queue_action_has_its_key(open_page):
    at = sign_in(open_page(REVIEW), "ana")
    shortcuts = {b.key: b.proto.shortcut for b in at.button if b.key}
    tax = lb.default_taxonomy()
    for label in tax.labels:
        assert shortcuts[f"review.code.{label.code}"] == label.key
    assert {k: shortcuts[k] for k in ("review.next", "review.skip", "review.undo", "review.target")} == {
        "review.next": "n", "review.skip": "s", "review.undo": "u", "review.target": "g"}
    # the replay's keys are there too, and no key is used twice
    assert {shortcuts[f"replay.{k}"] for k in ("prev", "next", "error", "tool", "finding")} == set("kjetl")
    used = [s for s in shortcuts.values() if s]
    assert len(used) == len(set(used)) == len(tax.labels) + 4 + 5


def test_label_toggle_severity_note_next_skip_undo(open_page, db):
    at = sign_in(open_page(REVIEW), "ana")
    first, second, third = FAILED[:3]
    press(at, "review.code.tool.wrong_tool")
    assert events(db) == [(first, None, "tool.wrong_tool", "add", None, None)]
    assert at.button(key="review.code.tool.wrong_tool").proto.type == "primary"
    current = next(d.value for d in at.dataframe if "reviewer" in d.value.columns)
    assert current[["code", "reviewer"]].values.tolist() == [["tool.wrong_tool", "ana"]]
    assert current["created_at"].notna().all()
    press(at, "review.code.tool.wrong_tool")  # the same key again takes it back
    assert [e[3] for e in events(db)] == ["add", "remove"]
    assert at.button(key="review.code.tool.wrong_tool").proto.type == "secondary"
    at.selectbox(key="review.severity").select("high")
    at.text_input(key="review.note").input("retried the same call six times")
    press(at, "review.code.control.loop")
    assert events(db)[-1] == (first, None, "control.loop", "add", "high", "retried the same call six times")
    assert at.text_input(key="review.note").value == "" and at.selectbox(key="review.severity").value is None
    assert texts(at)[1] == "✓ added control.loop to the run"
    press(at, "review.next")
    assert at.query_params["run"] == second and at.code[0].value == second
    press(at, "review.skip")
    assert at.query_params["run"] == third and "skipped in this session: 1" in texts(at)
    # undo takes back the last action, which was on the first run: the page goes back there
    press(at, "review.undo")
    assert at.query_params["run"] == first
    assert events(db)[-1] == (first, None, "control.loop", "remove", "high", "retried the same call six times")
    assert texts(at)[1].startswith("✓ undone: 1 event(s) on 1 run(s): remove control.loop")
    assert len(events(db)) == 4  # nothing was deleted: add, remove, add, and the undo's remove
    press(at, "review.undo")  # then the removal of wrong_tool is undone: the label is back
    assert lb.current_labels(app_store(db), first)["code"].tolist() == ["tool.wrong_tool"]


def test_next_passes_over_an_unlabeled_run_and_the_queue_ends(open_page, db):
    at = sign_in(open_page(REVIEW, agent="coder"), "ana")
    coder = [r for r in FAILED if AGENT[r] == "coder"]  # oldest first
    assert len(coder) == 5  # runs 2, 5, 8 (the hostile one), 23, 26: i % 3 == 2 and a failure
    for i, run in enumerate(coder):
        assert at.query_params["run"] == run
        if i % 2 == 0:
            press(at, "review.code.other")
        press(at, "review.next")  # on an unlabeled run, N passes it over for this session
    assert any("No unlabeled failures left" in s.value for s in at.success)
    assert "2 run(s) skipped in this session come back in a new session." in texts(at)  # the 2nd and 4th
    assert [e[0] for e in events(db)] == coder[::2]


def test_label_a_step(open_page, db):
    at = sign_in(open_page(REVIEW), "ana")
    assert "labels go to: the whole run" in texts(at)
    press(at, "review.target")  # G: the step now
    assert at.toggle(key="review.on_step").value
    press(at, "replay.error")  # E: the failing tool step s2
    assert "labels go to: step #2 └ lookup_order" in texts(at)
    press(at, "review.code.tool.ignored_error")
    assert events(db) == [(FAILED[0], "s2", "tool.ignored_error", "add", None, None)]
    press(at, "review.target")
    press(at, "review.code.tool.ignored_error")  # the run-level label is another label
    assert [e[1] for e in events(db)] == ["s2", None]


def test_review_deep_link_unknown_run_and_hostile_text(open_page, db):
    at = sign_in(open_page(REVIEW, run="run0000000000003"), "![x](http://127.0.0.1:9/x.png)")
    assert at.query_params["run"] == "run0000000000003"  # a deep link opens any run, not only the queue's
    assert texts(at)[0] == "reviewing as ![x](http://127.0.0.1:9/x.png)"
    at.query_params["run"] = bu.EVIL_RUN_ID
    at.run()
    at.selectbox(key="review.severity").select("low")
    at.text_input(key="review.note").input(bu.EVIL_SCRIPT)
    press(at, "review.code.other")
    assert events(db)[-1] == (bu.EVIL_RUN_ID, None, "other", "add", "low", bu.EVIL_SCRIPT)
    assert assert_trace_text_is_inert(at) >= 4  # header, name, the replay's texts and the note in the table
    at.query_params["run"] = "no-such-run"
    at.run()
    no_errors(at)
    assert at.warning and "No run with this id" in at.warning[0].value
    press(at, "review.code.other")
    assert texts(at)[1] == "⚠ 1 unknown run id(s), e.g. 'no-such-run'"
    assert len(events(db)) == 1  # refused: nothing stored for an unknown run
    press(at, "review.next")
    assert at.query_params["run"] == FAILED[0]


def test_two_sessions_share_the_store(open_page, db):
    ana = sign_in(open_page(REVIEW), "ana")
    ben = sign_in(open_page(REVIEW), "ben")
    assert ana.query_params["run"] == ben.query_params["run"] == FAILED[0]
    press(ana, "review.code.other")
    press(ben, "review.code.other")
    press(ben, "review.next")
    # ana labeled the first run, so ben's queue moves on to runs nobody has labeled
    assert ben.query_params["run"] == FAILED[1]
    prog = next(d.value for d in ben.dataframe if "assigned" in d.value.columns).set_index("reviewer")
    assert prog.loc["ana", "labeled"] == prog.loc["ben", "labeled"] == 1


# -- Labels -------------------------------------------------------------------------------------------------
def _seed_votes(db, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """ana and ben each rate every failed run ('other' on all, tool.wrong_tool by a seeded coin)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2, len(FAILED))
    b = np.where(rng.random(len(FAILED)) < 0.7, a, 1 - a)
    store = Store(db)
    with store:
        for run, va, vb in zip(FAILED, a, b, strict=True):
            for who, vote in (("ana", va), ("ben", vb)):
                lb.add_label(store, run, "other", who)
                if vote:
                    lb.add_label(store, run, "tool.wrong_tool", who)
    return a, b


def test_labels_agreement_and_settling(open_page, db):
    a, b = _seed_votes(db)
    at = sign_in(open_page(LABELS), "lead")
    agreement = table(at, "statistic").set_index("code")
    assert agreement.loc["tool.wrong_tool", "statistic"] == "cohen_kappa"
    assert agreement.loc["tool.wrong_tool", "value"] == pytest.approx(cohen_kappa_score(a, b))
    assert agreement.loc["tool.wrong_tool", "runs"] == len(FAILED)
    assert agreement.loc["other", "value"] == 1.0
    dis = table(at, "yes_by")
    differ = [r for r, va, vb in zip(FAILED, a, b, strict=True) if va != vb]
    assert sorted(dis["run_id"]) == sorted(differ) and len(differ) >= 2
    pick = next(w for w in at.selectbox if w.key.startswith("labels.pick."))
    target = dis["run_id"].iloc[1]
    pick.select(1).run()
    at.radio(key="labels.applies").set_value("does not apply")
    at.text_input(key="labels.settle_note").input("the tool was right; the data was stale")
    press(at, "labels.settle")
    assert texts(at)[1] == f"✓ settled tool.wrong_tool on {target}: does not apply"
    assert sorted(table(at, "yes_by")["run_id"]) == sorted(set(differ) - {target})
    settled = table(at, "applies")
    assert settled[["run_id", "code", "applies", "settled_by"]].values.tolist() == [
        [target, "tool.wrong_tool", False, "lead"]]
    # the votes are untouched: the agreement is the same as before
    assert table(at, "statistic").set_index("code").loc["tool.wrong_tool", "value"] == (
        pytest.approx(cohen_kappa_score(a, b)))
    assert events(db, "lead") == [(target, None, "tool.wrong_tool", "settle_remove", None,
                                   "the tool was right; the data was stale")]


def test_labels_tables_and_charts(open_page, db):
    _seed_votes(db)
    at = sign_in(open_page(LABELS), "lead")
    current = current_table(at)
    history = table(at, "action")
    n_events = app_store(db).sql("SELECT count(*) FROM label_events").fetchone()[0]
    assert len(history) == n_events and history["created_at"].is_monotonic_decreasing  # newest first
    assert len(current) == n_events  # nothing was removed
    assert len(at.get("plotly_chart")) == 2


def test_bulk_label_with_confirmation_and_undo(open_page, db):
    at = sign_in(open_page(LABELS, agent="coder"), "lead")
    assert "the current filter (sidebar) selects 12 run(s)" in texts(at)  # runs 2, 5, 8 ... 35: i % 3 == 2
    press(at, "labels.bulk")
    assert "This adds tool.wrong_tool to 12 run(s): every run the current filter selects, as lead." in texts(at)
    press(at, "labels.bulk_no")  # cancel: nothing stored
    assert events(db) == []
    at.selectbox(key="labels.bulk_code").select("ops.timeout")
    press(at, "labels.bulk")
    assert "This adds ops.timeout to 12 run(s): every run the current filter selects, as lead." in texts(at)
    press(at, "labels.bulk_yes")
    rows = app_store(db).sql("SELECT run_id, code, count(DISTINCT batch_id) FROM label_events GROUP BY ALL").fetchall()
    coder = sorted(r["run_id"] for r in bu.sample_runs() if r["agent"] == "coder")
    assert sorted(r[0] for r in rows) == coder and {r[1] for r in rows} == {"ops.timeout"}
    assert app_store(db).sql("SELECT count(DISTINCT batch_id) FROM label_events").fetchone()[0] == 1
    assert "last bulk action: ops.timeout on 12 runs" in texts(at)
    press(at, "labels.bulk_undo")
    assert lb.current_labels(app_store(db)).empty
    assert len(events(db)) == 24  # 12 adds and 12 removes: the batch is still in the history
    assert "labels.bulk_undo" not in [b.key for b in at.button]


def test_assign_puts_runs_in_a_reviewers_queue(open_page, db):
    at = sign_in(open_page(LABELS, agent="support-bot", version="v2"), "lead")
    at.text_input(key="labels.assignee").input("ben")
    press(at, "labels.assign")
    # support-bot v2 is i % 3 == 1; its failures: runs 16 and 19 (i % 7 in {2, 5})
    expected = [r for r in FAILED if AGENT[r] == "support-bot" and VERSION[r] == "v2"]
    assert expected == ["run0000000000016", "run0000000000019"]
    got = app_store(db).sql("SELECT run_id, reviewer, assigned_by FROM assignments ORDER BY run_id").fetchall()
    assert got == [(r, "ben", "lead") for r in expected]
    assert lb.next_unlabeled(app_store(db), "ben") == expected[0]


GOOD_TOML = b'[[label]]\ncode = "billing.refund_wrong"\nname = "Wrong refund"\nkey = "x"\n\n' \
            b'[[label]]\ncode = "other"\nname = "Other"\nkey = "o"\n'


def test_taxonomy_upload_edit_and_bad_files(open_page, db):
    at = sign_in(open_page(LABELS), "lead")
    before = lb.current_taxonomy(app_store(db)).version
    at.file_uploader(key="labels.tax_file").set_value(("team.toml", GOOD_TOML, "application/toml"))
    press(at, "labels.tax_load")
    tax = lb.current_taxonomy(app_store(db))
    assert tax.codes() == ["billing.refund_wrong", "other"] and tax.version != before
    assert texts(at)[1] == f"✓ taxonomy {tax.version} is now in use (2 codes)"
    assert table(at, "description")["code"].tolist() == ["billing.refund_wrong", "other"]
    # the Review page now offers the new codes with their keys
    at.switch_page(REVIEW).run()
    assert {b.key: b.proto.shortcut for b in at.button if (b.key or "").startswith("review.code.")} == {
        "review.code.billing.refund_wrong": "x", "review.code.other": "o"}
    at.switch_page(LABELS).run()
    # a reserved key, a Markdown name, and a file that is not TOML are refused with the reason; nothing changes
    for name, content, reason in (
            ("keys.toml", b'[[label]]\ncode = "a.b"\nname = "A"\nkey = "n"\n', "key 'n' is taken"),
            ("md.toml", b'[[label]]\ncode = "a.b"\nname = "![x](http://127.0.0.1:9/x.png)"\n',
             "name\n  String should match pattern"),
            ("bad.toml", b"[[label]\ncode = ", "not valid TOML")):
        at.file_uploader(key="labels.tax_file").set_value((name, content, "application/toml"))
        at.button(key="labels.tax_load").click().run()
        assert not at.exception
        assert at.error and reason in at.code[0].value and at.code[0].value.startswith(name)
        assert lb.current_taxonomy(app_store(db)).version == tax.version
    # edit in place: rename a code, save as a new version
    area = next(a for a in at.text_area if a.key.startswith("labels.tax_text."))
    assert area.value == tax.to_toml()
    area.input(tax.to_toml().replace('name = "Wrong refund"', 'name = "Refund to the wrong customer"'))
    press(at, "labels.tax_save")
    edited = lb.current_taxonomy(app_store(db))
    assert edited.names()["billing.refund_wrong"] == "Refund to the wrong customer" and edited.version != tax.version
    assert app_store(db).sql("SELECT count(DISTINCT version) FROM taxonomy").fetchone()[0] == 3  # all kept


# -- imported labels (Who&When) -----------------------------------------------------------------------------
def test_imported_labels_are_shown_and_enter_agreement_only_when_chosen(real_dir, db, open_page):
    from workbench.ingest import ingest_paths

    files = [real_dir / "who-and-when" / "Hand-Crafted" / f"{i}.json" for i in (1, 2, 3)]
    store = Store(db)
    with store:
        assert {r.status for r in ingest_paths(store, files).results} == {"ok"}
        ww = [r for (r,) in store.sql("SELECT run_id FROM runs WHERE format = 'who-and-when' "
                                      "ORDER BY run_id").fetchall()]
        for run in ww[:2]:  # ana rates two of the three imported runs
            lb.add_label(store, run, "content.hallucination", "ana")
    at = sign_in(open_page(LABELS), "lead")
    current = current_table(at)
    # one imported label per Who&When file (its recorded mistake step), with reviewer `imported`
    imported = current[current["reviewer"] == "imported"]
    assert sorted(imported["run_id"]) == ww and set(imported["code"]) == {"whowhen.mistake"}
    assert imported["step_id"].notna().all()
    assert any("No agreement yet" in i.value for i in at.info)  # ana alone: nothing to agree on
    at.checkbox(key="labels.imported").check().run()
    no_errors(at)
    agreement = table(at, "statistic").set_index("code")
    # both codes were rated on the two runs ana and the import share; they never agree
    assert sorted(agreement.index) == ["content.hallucination", "whowhen.mistake"]
    assert agreement["runs"].tolist() == [2, 2] and set(agreement["statistic"]) == {"cohen_kappa"}
    assert agreement["raw_agreement"].tolist() == [0.0, 0.0]
    assert sorted(table(at, "yes_by")["run_id"].unique()) == ww[:2]
