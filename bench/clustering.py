"""Clustering benchmark: 50,000 and 100,000 failed runs end to end, against plain scikit-learn.

    python bench/clustering.py [--failures 50000 100000] [--workdir DIR] [--demo-db PATH]

The store is built in SQL, not by ingesting 100k traces: the demo fleet's failed runs (691 at the default
size, each with its injected failure mode) and their steps are copied as many times as needed. Each copy gets
its own run ids, a start time spread over four weeks, and a varied word in its output and errors (one of 400),
so the texts are not all identical (numbers would be masked anyway). The demo's successful runs are copied
once, so "cost far above usual" still has a median to compare with.

Each measurement runs in a fresh interpreter, so its peak memory (ru_maxrss) is its own:

- workbench: `cluster_failures(Store(db))`: features from the store (one SQL query), TF-IDF blocks + SVD,
  kmeans-merge, names, map layout and the cluster table; the time is split into those parts.
- baseline: what a notebook would do with scikit-learn alone on the same texts (errors, output and tool
  signature joined): TfidfVectorizer (words) + TruncatedSVD(64) + KMeans(k=20, n_init=1). The texts are read
  with `load_failures` first, outside the timed part, so the baseline gets its input for free.

Both print the adjusted Rand index against the injected failure modes. Each runs `--repeat` times (default 3)
in fresh processes, alternating; the table shows the median wall time, its range, the median CPU time (user +
system, all threads: less sensitive to other sessions' load than wall time) and the highest peak memory.
Targets (issue 7): 50k failures < 8 s and < 1 GiB, 100k < 15 s, end to end. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402 - the path above makes `_common` importable as a script
    DEFAULT_WORKDIR,
    emit_result,
    median,
    peak_rss_mib,
    remove_db,
    run_child,
    table,
)

TARGETS = {50_000: 8.0, 100_000: 15.0}
TARGET_MIB = {50_000: 1024}  # the issue bounds memory at 50k only
_WORDS = 400


def build_store(demo_db: Path, db: Path, n_failures: int) -> dict:
    """A store of `n_failures` failed runs copied (with variations) from the demo fleet at `demo_db`."""
    from workbench.store import Store

    remove_db(db)
    started = time.perf_counter()
    with Store(db, memory_limit="2GB") as store, store.transaction() as cur:
        cur.execute("ATTACH $p AS demo (READ_ONLY)", {"p": str(demo_db)})
        cur.execute("CREATE TEMP TABLE words AS SELECT i, 'w' || md5(i::VARCHAR)[:6] AS w FROM range($n) t(i)",
                    {"n": _WORDS})
        cur.execute("""CREATE TEMP TABLE picked AS
            WITH f AS (SELECT run_id, row_number() OVER (ORDER BY run_id) - 1 AS rn, count(*) OVER () AS nf
                       FROM demo.runs WHERE outcome = 'failure' OR status = 'error')
            SELECT f.run_id, g.i AS copy, f.run_id || '-' || g.i AS new_id,
                   (hash(f.run_id, g.i) % $w)::INTEGER AS word
            FROM f, range(($n + (SELECT max(nf) FROM f) - 1) // (SELECT max(nf) FROM f)) g(i)
            WHERE g.i * f.nf + f.rn < $n""", {"n": n_failures, "w": _WORDS})
        cur.execute("""INSERT INTO runs SELECT r.* REPLACE (
                p.new_id AS run_id, p.new_id AS native_id,
                r.started_at + to_seconds((p.copy * 3571 % 2419200)::BIGINT) AS started_at,
                CASE WHEN r.output IS NULL THEN NULL ELSE r.output || ' ' || w.w END AS output,
                CASE WHEN r.error IS NULL THEN NULL ELSE r.error || ' at ' || w.w END AS error)
            FROM demo.runs r JOIN picked p USING (run_id) JOIN words w ON w.i = p.word""")
        cur.execute("INSERT INTO runs SELECT * FROM demo.runs WHERE outcome = 'success' AND status <> 'error'")
        cur.execute("""INSERT INTO steps SELECT s.* REPLACE (
                p.new_id AS run_id,
                CASE WHEN s.error IS NULL THEN NULL ELSE s.error || ' at ' || w.w END AS error)
            FROM demo.steps s JOIN picked p USING (run_id) JOIN words w ON w.i = p.word""")
        runs, steps = cur.execute("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM steps)").fetchone()
    return {"seconds": round(time.perf_counter() - started, 1), "runs": runs, "steps": steps}


def _truth(store) -> dict[str, str]:
    rows = store.sql("SELECT run_id, attributes->>'workbench.demo.failure_mode' FROM runs").fetchall()
    return dict(rows)


def child_workbench(db: Path) -> dict:
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    from workbench import clustering_results as cr
    from workbench.clustering import FailureClusterer, layout_2d
    from workbench.clustering_features import load_failures
    from workbench.store import Store

    store = Store(db, read_only=True)
    # the whole library call as a page makes it (features, fit, names, layout, table), measured first (cold)
    t3, c3 = time.perf_counter(), time.process_time()
    result = cr.cluster_failures(store)
    end_to_end, cpu = time.perf_counter() - t3, time.process_time() - c3
    peak = peak_rss_mib()
    parts = {}
    t0 = time.perf_counter()
    docs = load_failures(store)
    parts["features"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    model = FailureClusterer().fit(docs)
    parts["fit + names"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    layout_2d(model.embedding_, model.labels_, model.cluster_centers_)
    parts["map layout"] = time.perf_counter() - t2
    parts["pieces total"] = time.perf_counter() - t0
    truth = _truth(store)
    ari = adjusted_rand_score([truth[r] for r in result.runs["run_id"]], result.runs["cluster"])
    return {"seconds": end_to_end, "cpu": cpu, "parts": parts, "peak_mib": peak, "failures": len(docs),
            "distinct_docs": int(len(docs[["errors", "output_text", "signature", "shape"]].drop_duplicates())),
            "clusters": int(model.n_clusters_), "ari": float(ari),
            "largest": [str(n) for n in result.clusters["name"].head(3)],
            "labels_equal": bool(np.array_equal(np.sort(result.runs["cluster"]), np.sort(model.labels_)))}


def child_baseline(db: Path) -> dict:
    from sklearn.cluster import KMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import adjusted_rand_score

    from workbench.clustering_features import load_failures
    from workbench.store import Store

    store = Store(db, read_only=True)
    docs = load_failures(store)
    texts = (docs["errors"] + " " + docs["output_text"] + " " + docs["signature"]).tolist()
    started, cpu = time.perf_counter(), time.process_time()
    matrix = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(texts)
    reduced = TruncatedSVD(64, random_state=0).fit_transform(matrix)
    labels = KMeans(20, n_init=1, random_state=0).fit_predict(reduced)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    truth = _truth(store)
    ari = adjusted_rand_score([truth[r] for r in docs["run_id"]], labels)
    return {"seconds": seconds, "cpu": cpu, "peak_mib": peak_rss_mib(), "failures": len(texts), "ari": float(ari)}


def _runs(db: Path, repeat: int) -> tuple[list[dict], list[dict]]:
    """`repeat` fresh processes of each, alternating, so a change of load hits both alike."""
    ours, base = [], []
    for _ in range(repeat):
        for kind, out in (("workbench", ours), ("baseline", base)):
            result = run_child(Path(__file__), ["--child", kind, "--db", str(db)])
            if "error" in result:
                raise RuntimeError(f"{kind}: {result['error']}")
            out.append(result)
    return ours, base


def _summary(results: list[dict]) -> dict:
    secs = sorted(r["seconds"] for r in results)
    return {"seconds": median(secs), "min": secs[0], "max": secs[-1], "cpu": median([r["cpu"] for r in results]),
            "peak_mib": max(r["peak_mib"] for r in results), "ari": results[0]["ari"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--failures", type=int, nargs="+", default=[50_000, 100_000])
    p.add_argument("--repeat", type=int, default=3, help="fresh processes per method and size (median shown)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--demo-db", type=Path, default=None, help="a demo fleet store (built when missing)")
    p.add_argument("--child", choices=["workbench", "baseline"])
    p.add_argument("--db", type=Path)
    a = p.parse_args(argv)
    if a.child:
        emit_result(child_workbench(a.db) if a.child == "workbench" else child_baseline(a.db))
        return

    a.workdir.mkdir(parents=True, exist_ok=True)
    demo = a.demo_db or a.workdir / "clustering-demo.duckdb"
    if not demo.exists():
        from workbench.testing import build_sample_db

        print(f"building the demo fleet at {demo} ...", flush=True)
        build_sample_db(demo)
    rows, summary = [], {}
    for n in a.failures:
        db = a.workdir / f"clustering-{n}.duckdb"
        built = build_store(demo, db, n)
        print(f"{n:,} failures: store of {built['runs']:,} runs and {built['steps']:,} steps built in SQL "
              f"in {built['seconds']} s", flush=True)
        try:
            ours_all, base_all = _runs(db, a.repeat)
        except RuntimeError as exc:
            print(f"    failed: {exc}")
            continue
        finally:
            remove_db(db)
        first = ours_all[0]
        print("    parts (first run, warm): " + ", ".join(f"{k} {v:.2f} s" for k, v in first["parts"].items()))
        print(f"    {first['distinct_docs']:,} distinct failure documents; largest clusters: "
              + " / ".join(first["largest"]))
        ours, base = _summary(ours_all), _summary(base_all)
        target = TARGETS.get(n)
        mib = TARGET_MIB.get(n)
        met = "yes" if target and ours["seconds"] < target and (mib is None or ours["peak_mib"] < mib) else (
            "no" if target else "-")
        goal = (f"< {target:.0f} s" + (", < 1 GiB" if mib else "")) if target else "-"
        for name, r, k in (("workbench", ours, first["clusters"]), ("baseline", base, 20)):
            rows.append([f"{n:,}", name, f"{r['seconds']:.1f}", f"{r['min']:.1f}-{r['max']:.1f}", f"{r['cpu']:.1f}",
                         f"{r['peak_mib']:,.0f}", k, f"{r['ari']:.3f}",
                         goal if name == "workbench" else "-",
                         met if name == "workbench" else "-"])
        summary[n] = {"workbench": ours, "baseline": base, "store": built}
    print()
    print(f"medians of {a.repeat} fresh processes each; load average at the end {os.getloadavg()[0]:.1f} "
          "(2 cores); cpu = user + system seconds of all threads")
    print(table(["failures", "method", "seconds", "range", "cpu s", "peak MiB", "clusters", "ARI", "target", "met"],
                rows))
    print(json.dumps({str(k): {m: {f: round(v[m][f], 3) for f in ("seconds", "cpu", "peak_mib", "ari")}
                               for m in ("workbench", "baseline")} for k, v in summary.items()}))


if __name__ == "__main__":
    main()
