"""Labels: taxonomy versions, append-only events, undo, queue, agreement against scikit-learn."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from tests.otlp_builder import agent_trace, request
from workbench import labels as lb
from workbench.ingest import ingest_file
from workbench.queries import RunFilter


@pytest.fixture
def runs(store, tmp_path):
    """Twelve runs: even ones failed, odd ones succeeded."""
    lines = [json.dumps(request(agent_trace(f"{i:032x}", outcome="fail" if i % 2 == 0 else "pass")))
             for i in range(1, 13)]
    f = tmp_path / "runs.jsonl"
    f.write_text("\n".join(lines) + "\n")
    ingest_file(store, f)
    return [r[0] for r in store.sql("SELECT run_id FROM runs ORDER BY native_id").fetchall()]


def test_default_taxonomy_is_versioned_and_a_new_file_is_a_new_version(store, tmp_path):
    tax = lb.current_taxonomy(store)
    assert "tool.wrong_tool" in tax.codes() and tax.by_key()["1"] == "tool.wrong_tool"
    assert lb.load_taxonomy(store).version == tax.version  # same content, same version
    f = tmp_path / "t.toml"
    f.write_text('[[label]]\ncode = "custom.thing"\nname = "Thing"\nkey = "x"\n')
    new = lb.load_taxonomy(store, f)
    assert new.version != tax.version and lb.current_taxonomy(store).codes() == ["custom.thing"]
    # the old version's rows stay, so old labels keep their meaning
    assert store.sql("SELECT count(DISTINCT version) FROM taxonomy").fetchone()[0] == 2
    with pytest.raises(ValueError):
        lb.parse_taxonomy('[[label]]\ncode = "Bad Code"\nname = "x"\n')


def test_events_are_append_only_with_history_and_undo(store, runs):
    r = runs[0]
    lb.add_label(store, r, "tool.wrong_tool", "ana", severity="high", note="picked refund tool")
    lb.add_label(store, r, "control.loop", "ana")
    lb.remove_label(store, r, "tool.wrong_tool", "ana")
    assert set(lb.current_labels(store, r)["code"]) == {"control.loop"}
    assert lb.undo_last(store, "ana") == 1  # undoes the remove
    assert set(lb.current_labels(store, r)["code"]) == {"control.loop", "tool.wrong_tool"}
    assert lb.undo_last(store, "ana") == 1  # then the add of control.loop
    assert set(lb.current_labels(store, r)["code"]) == {"tool.wrong_tool"}
    hist = lb.history(store, r)
    assert list(hist["action"]) == ["add", "add", "remove", "add", "remove"]
    assert hist["event_id"].is_unique
    with pytest.raises(ValueError, match="unknown label code"):
        lb.add_label(store, r, "no.such", "ana")
    with pytest.raises(ValueError, match="reviewer"):
        lb.add_label(store, r, "other", "")


def test_bulk_label_and_one_step_undo(store, runs):
    batch = lb.bulk_label(store, runs[:5], "ops.timeout", "ben")
    assert len(lb.current_labels(store).query("code == 'ops.timeout'")) == 5
    assert store.sql("SELECT count(DISTINCT batch_id) FROM label_events").fetchone()[0] == 1 and batch
    assert lb.undo_last(store, "ben") == 5
    assert lb.current_labels(store).empty
    assert store.sql("SELECT count(*) FROM label_events").fetchone()[0] == 10  # nothing deleted


def test_queue_prefers_assigned_and_skips_labeled(store, runs):
    failed = [r[0] for r in store.sql(
        "SELECT run_id FROM runs WHERE outcome = 'failure' ORDER BY started_at, run_id").fetchall()]
    assert len(failed) == 6
    assert lb.next_unlabeled(store, "ana") == failed[0]
    lb.assign(store, [failed[3]], "ana")
    assert lb.next_unlabeled(store, "ana") == failed[3]
    assert lb.next_unlabeled(store, "ben") == failed[0]  # others' assignments come last
    lb.add_label(store, failed[3], "other", "ana")
    assert lb.next_unlabeled(store, "ana") == failed[0]
    assert lb.next_unlabeled(store, "ana", skip=[failed[0]]) == failed[1]
    assert lb.next_unlabeled(store, "ana", RunFilter(agent="nobody")) is None
    prog = lb.progress(store).set_index("reviewer")
    assert prog.loc["ana", "assigned"] == 1 and prog.loc["ana", "assigned_done"] == 1


def test_two_reviewer_agreement_equals_sklearn(store, runs):
    rng = np.random.default_rng(3)
    a_votes = rng.integers(0, 2, len(runs))
    b_votes = np.where(rng.random(len(runs)) < 0.75, a_votes, 1 - a_votes)
    for run, a, b in zip(runs, a_votes, b_votes, strict=True):
        for who, vote in (("ana", a), ("ben", b)):
            # every run gets a baseline code so each reviewer has rated it; the tested code varies
            lb.add_label(store, run, "other", who)
            if vote:
                lb.add_label(store, run, "tool.wrong_tool", who)
    got = lb.agreement(store).set_index("code")
    expected = cohen_kappa_score(a_votes, b_votes)
    assert got.loc["tool.wrong_tool", "statistic"] == "cohen_kappa"
    assert got.loc["tool.wrong_tool", "value"] == pytest.approx(expected)
    assert got.loc["tool.wrong_tool", "runs"] == len(runs)
    dis = lb.disagreements(store)
    assert len(dis) == int((a_votes != b_votes).sum())
    first = dis.iloc[0]
    lb.settle(store, first.run_id, first.code, True, "lead", note="ana is right")
    assert len(lb.disagreements(store)) == len(dis) - 1
    assert lb.settled_labels(store).iloc[0]["applies"]
    # the votes themselves are untouched by the settlement
    assert lb.agreement(store).set_index("code").loc["tool.wrong_tool", "value"] == pytest.approx(expected)


def test_krippendorff_alpha_matches_a_worked_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", nominal example: alpha = 0.743
    nan = np.nan
    data = np.array([
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ])
    assert lb.krippendorff_alpha(data) == pytest.approx(0.743, abs=0.001)


def test_imported_labels_enter_agreement_only_when_chosen(store, runs):
    with store.transaction() as cur:
        cur.execute("INSERT INTO label_events VALUES ('imp-1', $r, NULL, 'other', NULL, NULL, 'imported', "
                    "now()::TIMESTAMP, 'add', NULL, 'import:x', NULL)", {"r": runs[0]})
    lb.add_label(store, runs[0], "tool.wrong_tool", "ana")
    assert lb.agreement(store).empty
    both = lb.agreement(store, include_imported=True)
    assert set(both["code"]) == {"other", "tool.wrong_tool"}
    assert lb.next_unlabeled(store, "ana") != runs[0]
    with pytest.raises(ValueError):
        lb.add_label(store, runs[1], "other", "imported")


def test_label_counts_by_version_and_week(store, runs):
    lb.bulk_label(store, runs[:3], "ops.timeout", "ana")
    by_version = lb.label_counts(store, "agent_version")
    assert by_version["runs"].sum() == 3
    assert lb.label_counts(store, "week")["runs"].sum() == 3
    with pytest.raises(ValueError):
        lb.label_counts(store, "runs; DROP TABLE runs")


def test_taxonomy_keys_names_and_round_trip(store):
    tax = lb.current_taxonomy(store)
    assert lb.parse_taxonomy(tax.to_toml()) == tax  # the editor's text reads back to the same version
    # the default keys leave the Review page's own keys and Streamlit's C and R free
    assert not set(tax.by_key()) & lb.RESERVED_KEYS and len(tax.by_key()) == len(tax.labels)
    for bad, reason in (('key = "n"', "key 'n' is taken"), ('key = "C"', "key 'c' is taken"),
                        ('key = "ab"', "pattern"), ('name = "![x](http://127.0.0.1:9/x.png)"', "pattern"),
                        ('name = "<b>bold</b>"', "pattern")):
        field = bad.split(" = ")[0]
        entry = {"code": 'code = "a.b"', "name": 'name = "A"', "key": ""} | {field: bad}
        with pytest.raises(ValueError, match=reason):
            lb.parse_taxonomy("[[label]]\n" + "\n".join(v for v in entry.values() if v) + "\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        lb.parse_taxonomy("[[label]\ncode = ")
    assert lb.parse_taxonomy('[[label]]\ncode = "a.b"\nname = "A"\nkey = "X"\n').by_key() == {"x": "a.b"}


def test_labels_need_a_known_run_and_step(store, runs):
    with pytest.raises(ValueError, match="unknown run"):
        lb.add_label(store, "no-such-run", "other", "ana")
    with pytest.raises(ValueError, match="no step 'nope'"):
        lb.add_label(store, runs[0], "other", "ana", step_id="nope")
    with pytest.raises(ValueError, match="1 unknown run"):
        lb.bulk_label(store, [runs[0], "no-such-run"], "other", "ana")
    step = store.sql("SELECT step_id FROM steps WHERE run_id = $r LIMIT 1", {"r": runs[0]}).fetchone()[0]
    lb.add_label(store, runs[0], "other", "ana", step_id=step)
    assert store.sql("SELECT count(*) FROM label_events").fetchone()[0] == 1  # the refused ones left nothing


def test_undo_batch_and_undo_last_action(store, runs):
    batch = lb.bulk_label(store, runs[:4], "ops.timeout", "ben")
    lb.add_label(store, runs[5], "other", "ben")  # a later action: undo_last would take this one
    with pytest.raises(ValueError, match="only the reviewer"):
        lb.undo_batch(store, batch, "ana")
    assert lb.undo_batch(store, batch, "ben") == 4
    assert lb.undo_batch(store, batch, "ben") == 0  # already undone
    assert lb.current_labels(store)["run_id"].tolist() == [runs[5]]
    done = lb.undo_last_action(store, "ben")
    assert done[["run_id", "code", "action"]].values.tolist() == [[runs[5], "other", "remove"]]
    assert lb.undo_last_action(store, "ben").empty and lb.current_labels(store).empty


def test_an_assigned_run_stays_in_the_assignees_queue_after_others_label_it(store, runs):
    failed = [r[0] for r in store.sql(
        "SELECT run_id FROM runs WHERE outcome = 'failure' ORDER BY started_at, run_id").fetchall()]
    lb.assign(store, failed[:2], "ana")
    lb.assign(store, failed[:2], "ben")
    lb.add_label(store, failed[0], "other", "ana")
    assert lb.next_unlabeled(store, "ben") == failed[0]  # ben's vote is still wanted: a second opinion
    assert lb.next_unlabeled(store, "ana") == failed[1]
    assert lb.next_unlabeled(store, "cleo") == failed[2]  # not assigned to cleo, labeled: not hers


def test_concurrent_writers_lose_nothing(store, runs):
    # two reviewers' script threads write at the same time through the app's one connection
    def work(who: str) -> None:
        for i in range(20):
            lb.add_label(store, runs[i % len(runs)], "other" if i % 2 else "ops.timeout", who)
        lb.undo_last(store, who)
        lb.undo_last(store, who)

    threads = [threading.Thread(target=work, args=(who,)) for who in ("ana", "ben", "cleo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = dict(store.sql("SELECT reviewer, count(*) FROM label_events GROUP BY ALL").fetchall())
    assert got == {"ana": 22, "ben": 22, "cleo": 22}
    assert store.sql("SELECT count(DISTINCT event_id) FROM label_events").fetchone()[0] == 66
    # each reviewer's two undos took back two different events, never the same one twice
    assert store.sql("SELECT count(DISTINCT source) FROM label_events WHERE source LIKE 'undo:%'").fetchone()[0] == 6


def test_agreement_on_an_empty_store(store, runs):
    assert lb.agreement(store).empty and lb.disagreements(store).empty
    assert lb.votes(store).empty
