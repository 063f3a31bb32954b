"""Failure clustering: recovery of the demo fleet's failure modes, determinism, naming, storage, comparison
across periods, bulk labels on a cluster, and tau-bench's failures as a reviewer sees them."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score

from workbench import labels as lb
from workbench.clustering import FailureClusterer
from workbench.clustering_features import load_failures, mask_numbers
from workbench.clustering_results import (
    cluster_failures,
    compare_periods,
    list_clusterings,
    load_clustering,
    save_clustering,
)
from workbench.clustering_vectors import WeightedTfidf
from workbench.queries import RunFilter
from workbench.store import Store


@pytest.fixture(scope="module")
def demo(demo_db):
    """The demo fleet's failures with their injected failure mode (ground truth written by the generator)."""
    with Store(demo_db, read_only=True) as store:
        docs = load_failures(store)
        truth = store.df("SELECT run_id, attributes->>'workbench.demo.failure_mode' AS mode FROM runs")
    return docs.merge(truth, on="run_id", how="left")


def test_demo_fleet_clusters_recover_the_failure_modes(demo):
    # every failed run is clustered, and every one of them had a failure mode injected
    assert demo["mode"].notna().all() and (demo["mode"] != "none").all()
    n_modes = demo["mode"].nunique()
    assert n_modes == 10  # workbench.demo.FAILURE_MODES

    started = time.perf_counter()
    model = FailureClusterer().fit(demo)
    seconds = time.perf_counter() - started
    ours = adjusted_rand_score(demo["mode"], model.labels_)

    # the plain baseline: one TF-IDF over the same texts, k-means told the true number of modes
    texts = (demo["errors"] + " " + demo["output_text"] + " " + demo["signature"]).tolist()
    plain = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    base = adjusted_rand_score(demo["mode"], KMeans(n_modes, n_init=10, random_state=0).fit_predict(plain))
    print(f"\ndemo fleet: {len(demo)} failures, {n_modes} modes; FailureClusterer ARI {ours:.3f} "
          f"({model.n_clusters_} clusters, {seconds:.2f} s); plain TF-IDF + k-means(k={n_modes}) ARI {base:.3f}")
    assert ours >= 0.7


def test_clusters_are_named_by_what_went_wrong(demo):
    model = FailureClusterer().fit(demo)
    frame = demo.assign(cluster=model.labels_)
    # the cluster holding most timeouts is named after the error text the timeouts share
    timeouts = frame[frame["mode"] == "timeout"]["cluster"].mode()[0]
    assert "deadline exceeded" in model.cluster_names_[timeouts]
    loops = frame[frame["mode"] == "tool_loop"]["cluster"].mode()[0]
    assert "same call repeated" in model.cluster_names_[loops]
    # every cluster has a name, terms, and centres of unit length
    assert set(model.cluster_names_) == set(range(model.n_clusters_))
    assert np.allclose(np.linalg.norm(model.cluster_centers_, axis=1), 1, atol=1e-4)
    # cluster 0 is the largest
    sizes = np.bincount(model.labels_)
    assert sizes[0] == sizes.max() and list(sizes) == sorted(sizes, reverse=True)


def test_same_input_gives_the_same_clusters(demo):
    a = FailureClusterer().fit(demo)
    b = clone(a).fit(demo.copy())
    assert np.array_equal(a.labels_, b.labels_)
    assert a.cluster_names_ == b.cluster_names_
    # k-means with a silhouette-chosen k is deterministic too
    k1 = FailureClusterer(method="kmeans", k_range=(5, 12)).fit(demo)
    k2 = FailureClusterer(method="kmeans", k_range=(5, 12)).fit(demo)
    assert np.array_equal(k1.labels_, k2.labels_) and k1.k_scores_ == k2.k_scores_
    assert k1.n_clusters_ in range(5, 13)


def test_hdbscan_behind_the_same_interface(demo):
    model = FailureClusterer(method="hdbscan", min_cluster_size=15).fit(demo)
    assert len(model.labels_) == len(demo)
    assert set(np.unique(model.labels_)) <= set(range(-1, model.n_clusters_))
    if (model.labels_ == -1).any():
        assert model.cluster_names_[-1].startswith("unclustered")


def test_estimator_takes_plain_texts_and_fixed_k():
    texts = ["Timeout after 30s calling search"] * 5 + ["ValidationError: field required: order_id"] * 4 + \
            ["Permission denied: /etc/passwd"] * 3
    model = FailureClusterer(n_clusters=3).fit(texts)
    assert model.n_clusters_ == 3
    assert list(model.labels_) == [0] * 5 + [1] * 4 + [2] * 3
    assert FailureClusterer().fit_predict(["one failure"]).tolist() == [0]
    with pytest.raises(ValueError, match="no failed runs"):
        FailureClusterer().fit([])
    with pytest.raises(ValueError, match="method"):
        FailureClusterer(method="spectral").fit(texts)


def test_weighted_tfidf_matches_sklearn_on_repeated_documents():
    docs = ["a b c", "a b", "x y z a", "a b", "q", "x y z a"] * 3
    ref = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, token_pattern=r"\b\w+\b")
    expected = ref.fit_transform(docs).toarray()
    ours = WeightedTfidf(ngram_range=(1, 2), min_df=2, token_pattern=r"\b\w+\b")
    got = ours.fit_transform(docs).toarray()
    assert list(ours.terms_) == list(ref.get_feature_names_out())
    assert np.abs(expected - got).max() < 1e-6
    distinct = ["a b c", "a b", "x y z a", "q"]
    weighted = ours.fit_transform(distinct, np.array([3, 6, 6, 3])).toarray()
    assert np.abs(ref.transform(distinct).toarray() - weighted).max() < 1e-6


def test_mask_numbers_keeps_words():
    assert mask_numbers("ORD-2026-237232 failed after 30s (0x1f), trace 4bf92f3577b34da6 in deadbeef") == \
        "ORD-0-0 failed after 0s (0x0f), trace 0 in deadbeef"


# -- a constructed store ------------------------------------------------------------------------------------
_KINDS = {
    # kind: (run status, run error, output, [(tool, args, status, error)])
    "timeout": ("error", "deadline exceeded", "", [("run_tests", '{"t": 1}', "error", "deadline exceeded")]),
    "loop": ("ok", None, "I'm sorry, I'm having trouble retrieving that information right now.",
             [("lookup_order", '{"id": 7}', "ok", None)] * 5),
    "validation": ("ok", "ValidationError: invalid JSON in arguments",
                   "I couldn't apply the change because the tool rejected my edits.",
                   [("write_file", '"{\\"p"', "error", "ValidationError: invalid JSON in arguments")] * 2),
    "permission": ("ok", "PermissionError: [Errno 13] Permission denied",
                   "Done. I changed the file and the tests pass.",
                   [("write_file", '{"p": 1}', "error", "PermissionError: [Errno 13] Permission denied"),
                    ("run_tests", '{"t": 1}', "ok", None)]),
}


def add_runs(store: Store, day: date, counts: dict[str, int], successes: int = 40) -> None:
    """Insert failed runs of the given kinds (and some successes) starting on `day`, with varied ids."""
    runs, steps = [], []
    plan = [(k, i) for k, n in counts.items() for i in range(n)] + [("ok", i) for i in range(successes)]
    for j, (kind, i) in enumerate(plan):
        rid = f"{kind[:4]}{day:%m%d}{i:08d}"
        start = datetime.combine(day, datetime.min.time()) + timedelta(hours=j % 120)
        status, error, output, calls = _KINDS.get(kind, ("ok", None, f"Order {j} shipped.", []))
        runs.append((rid, "otlp", rid, "bot", "v1", start, status, "success" if kind == "ok" else "failure",
                     error, f"{output} (ref {1000 + j})" if output else output, len(calls), 0.01))
        for s, (tool, args, st_status, st_error) in enumerate(calls):
            steps.append((rid, f"s{s}", s, "tool", tool, tool, st_status, st_error, args))
    with store.transaction() as cur:
        cur.executemany("INSERT INTO runs (run_id, format, native_id, agent, agent_version, started_at, status, "
                        "outcome, error, output, n_steps, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        runs)
        if steps:
            cur.executemany("INSERT INTO steps (run_id, step_id, seq, kind, name, tool_name, status, error, "
                            "tool_args) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", steps)


WEEK_A, WEEK_B = date(2026, 3, 2), date(2026, 3, 9)


@pytest.fixture
def two_weeks(store):
    add_runs(store, WEEK_A, {"timeout": 30, "loop": 20, "permission": 15})
    add_runs(store, WEEK_B, {"timeout": 8, "loop": 20, "validation": 15}, successes=62)  # 105 runs each week
    return store


def test_period_comparison_marks_new_growing_shrinking_gone(two_weeks):
    cmp = compare_periods(two_weeks, (WEEK_A, WEEK_A + timedelta(days=6)), (WEEK_B, WEEK_B + timedelta(days=6)))
    assert cmp.before.n_failures == 65 and cmp.after.n_failures == 43  # the counts add_runs was given
    assert cmp.before.n_selected == cmp.after.n_selected == 105
    assert len(cmp.before.clusters) == 3 and len(cmp.after.clusters) == 3
    table = cmp.table
    print("\n" + table[["name_before", "size_before", "name_after", "size_after", "change"]].to_string())
    changes = {(row.size_before, row.size_after): row.change for row in table.itertuples()}
    # timeouts 30 -> 8 in weeks of equal traffic; loops 20 -> 20; validation errors only in week B,
    # permission errors only in week A
    assert changes == {(30, 8): "shrinking", (20, 20): "steady", (0, 15): "new", (15, 0): "gone"}
    new = table[table["change"] == "new"].iloc[0]
    assert "invalid json" in new["name_after"]
    gone = table[table["change"] == "gone"].iloc[0]
    assert "permission" in gone["name_before"].lower()


def test_growth_is_measured_against_traffic(store):
    add_runs(store, WEEK_A, {"timeout": 10}, successes=90)    # 10 per 100 runs
    add_runs(store, WEEK_B, {"timeout": 10}, successes=10)    # 10 per 20 runs: five times the rate
    cmp = compare_periods(store, (WEEK_A, WEEK_A + timedelta(days=6)), (WEEK_B, WEEK_B + timedelta(days=6)))
    assert cmp.table["change"].tolist() == ["growing"]
    assert cmp.table["rate_before"].tolist() == [100.0] and cmp.table["rate_after"].tolist() == [500.0]


def test_a_stored_clustering_reopens_as_it_was(two_weeks):
    flt = RunFilter(date_from=WEEK_A, date_to=WEEK_A + timedelta(days=6))
    first = cluster_failures(two_weeks, flt)
    cid = save_clustering(two_weeks, first, name="week 10", created_by="maria.k")
    # a label given later changes today's clustering table, not the stored one
    lb.bulk_label(two_weeks, first.members(0)["run_id"].tolist(), "tool.wrong_tool", "tom.b")
    again = load_clustering(two_weeks, cid)
    pd.testing.assert_frame_equal(again.clusters, first.clusters)
    pd.testing.assert_frame_equal(again.runs, first.runs.sort_values("run_id").reset_index(drop=True),
                                  check_dtype=False)
    assert again.params == first.params and again.params["method"] == "kmeans-merge"
    assert (again.period_from, again.period_to) == (WEEK_A, WEEK_A + timedelta(days=6))
    assert again.filter["date_from"] == WEEK_A.isoformat() and again.n_selected == 105
    assert again.profiles == first.profiles
    listed = list_clusterings(two_weeks)
    assert listed[["clustering_id", "name", "created_by", "n_runs", "n_clusters"]].values.tolist() == \
        [[cid, "week 10", "maria.k", 65, 3]]
    assert two_weeks.sql("SELECT json_extract(params, '$.merge_threshold')::DOUBLE FROM clusterings").fetchone()[0] \
        == first.params["merge_threshold"]
    with pytest.raises(KeyError):
        load_clustering(two_weeks, "nope")


def test_label_a_whole_cluster_and_undo(two_weeks):
    c = cluster_failures(two_weeks, RunFilter(date_from=WEEK_A, date_to=WEEK_A + timedelta(days=6)))
    biggest = c.clusters.iloc[0]
    assert biggest["top_label"] is None and biggest["size"] == 30
    run_ids = c.members(int(biggest["cluster"]))["run_id"].tolist()
    lb.bulk_label(two_weeks, run_ids, "tool.wrong_tool", "maria.k", note="all the same")
    after = cluster_failures(two_weeks, RunFilter(date_from=WEEK_A, date_to=WEEK_A + timedelta(days=6)))
    # the same clusters (a note is a feature, but the note is on every run of the cluster alike)
    assert after.clusters["size"].tolist() == c.clusters["size"].tolist()
    row = after.clusters.iloc[0]
    assert (row["top_label"], row["top_label_runs"]) == ("tool.wrong_tool", 30)
    assert set(lb.current_labels(two_weeks)["run_id"]) == set(run_ids)
    assert lb.undo_last(two_weeks, "maria.k") == 30
    assert lb.current_labels(two_weeks).empty


def test_no_failures_gives_an_empty_clustering(store):
    add_runs(store, WEEK_A, {}, successes=5)
    c = cluster_failures(store)
    assert c.n_failures == 0 and c.clusters.empty and c.n_selected == 5


def test_features_come_from_the_store_in_one_pass(two_weeks):
    docs = load_failures(two_weeks, RunFilter(date_from=WEEK_B))
    assert len(docs) == 43
    loop = docs[docs["run_id"].str.startswith("loop")].iloc[0]
    assert loop["signature"] == "lookup_order_repeated" and "same_call_repeated" in loop["shape"]
    validation = docs[docs["run_id"].str.startswith("vali")].iloc[0]
    assert "stopped_at_tool_error" in validation["shape"] and "tool_errors_repeated" in validation["shape"]
    assert "ValidationError" in validation["errors"]


# -- tau-bench ----------------------------------------------------------------------------------------------
def test_tau_bench_failures_as_a_reviewer_sees_them(real_dir, tmp_path):
    from workbench.ingest import ingest_paths
    from workbench.loaders import registry

    # the loader is built in since it landed on main (its absence is a failure, as in the other tau tests)
    assert "tau-bench" in registry()
    with Store(tmp_path / "tau.duckdb") as store:
        ingest_paths(store, [real_dir / "tau-bench" / "gpt-4o-airline.json"], fmt="tau-bench")
        c = cluster_failures(store)
        # SOURCE.md: 200 runs, 84 pass / 116 fail
        assert c.n_selected == 200 and c.n_failures == 116
        assert c.clusters["size"].sum() == 116 and c.clusters["name"].str.len().min() > 0
        with pd.option_context("display.width", 250, "display.max_colwidth", 110):
            print("\n" + c.clusters[["cluster", "size", "share", "name"]].to_string(index=False))
