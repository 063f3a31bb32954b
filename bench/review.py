"""Weekly review pack and maturity scorecard: what building them costs on a demo fleet.

    python bench/review.py [--runs 2400 9600] [--repeat 5]

For each fleet size, builds the demo (`workbench.build_demo`, seed 7; the fleet always spans four weeks, so more
runs means busier weeks), then times, `--repeat` times after one warm-up:

- pack: `workbench.weekly_pack` for the latest week, what `workbench pack` and the Overview's button run.
- pack floor: the analyses the pack reports and cannot do without, called directly: the weekly service trend,
  this week's and last week's service levels, the drift tests between them, and the two weeks' failure
  clusterings matched (`compare_periods`). pack / floor is what the pack adds on top (top failures, outliers, disagreements,
  unlabeled failures, action items).
- render: the pack's Markdown and HTML.
- assess: `workbench.assess`, the evidence queries and the levels (no snapshot saved).
- evidence floor: `collect_evidence` alone; assess / floor is the cost of levels, reasons and remediation.
- scorecard render: Markdown, HTML and JSON.

Prints median and p95 (seconds) and the ratios. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_WORKDIR, median, percentile, remove_db, table  # noqa: E402

import workbench as wb  # noqa: E402
from workbench import analytics  # noqa: E402
from workbench.clustering_results import compare_periods  # noqa: E402
from workbench.maturity_evidence import collect_evidence  # noqa: E402


def timed(fn, repeat: int) -> list[float]:
    fn()  # warm-up: caches, derived tables, imports
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def pack_floor(store: wb.Store, pack: wb.ReviewPack) -> None:
    start = pack.week_start
    this = wb.RunFilter(date_from=start, date_to=start + timedelta(days=6))
    last = wb.RunFilter(date_from=start - timedelta(days=7), date_to=start - timedelta(days=1))
    analytics.service_trend(store, wb.RunFilter())
    analytics.service_levels(store, this)
    analytics.service_levels(store, last)
    wb.drift.drift(store, last, this)
    compare_periods(store, (last.date_from, last.date_to), (this.date_from, this.date_to))


def measure(n_runs: int, workdir: Path, repeat: int) -> list[list[object]]:
    db = workdir / f"bench-review-{n_runs}.duckdb"
    remove_db(db)
    started = time.perf_counter()
    wb.build_demo(db, seed=7, n_runs=n_runs)
    build_s = time.perf_counter() - started
    rows = []
    with wb.open_store(db) as store:
        n_failed = store.sql("SELECT count(*) FROM runs WHERE outcome = 'failure'").fetchone()[0]
        pack = wb.weekly_pack(store)
        figures = {
            "pack": timed(lambda: wb.weekly_pack(store), repeat),
            "pack floor": timed(lambda: pack_floor(store, pack), repeat),
            "pack render": timed(lambda: (pack.to_markdown(), pack.to_html()), repeat),
            "assess": timed(lambda: wb.assess(store, previous=None), repeat),
            "evidence floor": timed(lambda: collect_evidence(store), repeat),
        }
        card = wb.assess(store, previous=None)
        figures["scorecard render"] = timed(lambda: (card.to_markdown(), card.to_html(), card.to_json()), repeat)
    remove_db(db)
    print(f"{n_runs:,} runs ({n_failed:,} failed; week of {pack.week_start}: {pack.n_failures:,} failed, "
          f"{pack.n_failures_last:,} the week before); demo built in {build_s:.1f} s")
    for name, values in figures.items():
        rows.append([f"{n_runs:,}", name, f"{median(values):.3f}", f"{percentile(values, 0.95):.3f}"])
    ratio = median(figures["pack"]) / median(figures["pack floor"])
    ratio_assess = median(figures["assess"]) / median(figures["evidence floor"])
    rows.append([f"{n_runs:,}", "pack / floor", f"{ratio:.2f}", ""])
    rows.append([f"{n_runs:,}", "assess / evidence floor", f"{ratio_assess:.2f}", ""])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[2400, 9600])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.workdir):
        rows = [row for n in args.runs for row in measure(n, args.workdir, args.repeat)]
    print()
    print(table(["runs", "what", "median s", "p95 s"], rows))


if __name__ == "__main__":
    main()
