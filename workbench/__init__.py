"""Agent run review workbench: trace exports -> DuckDB -> review, the same from notebooks, CLI and app.

The public surface lives here; import from `workbench` rather than its modules.
"""

import importlib

from workbench import labels
from workbench.analytics import (
    ServiceLevels,
    cost_breakdown,
    cost_trend,
    service_levels,
    service_trend,
    top_runs,
    waste,
)
from workbench.budgets import Budgets, budget_breaches, budget_summary, load_budgets
from workbench.demo_build import build_demo
from workbench.drift import last_two_weeks
from workbench.imports import import_path, import_rejects, import_uploads, imports_table
from workbench.ingest import IngestSummary, ingest_file, ingest_paths
from workbench.maturity import (
    Assessment,
    assess,
    diff_assessments,
    latest_answers,
    list_assessments,
    load_assessment,
    questionnaire,
    save_assessment,
)
from workbench.maturity_framework import Framework, MaturityError, load_answers, load_framework
from workbench.models import ImportResult, Message, Reject, Run, Step, ToolCall, make_run_id
from workbench.queries import Overview, RunFilter, RunsPage, get_run, overview, run_steps, runs_page
from workbench.replay import (
    Comparison,
    Replay,
    compare_runs,
    load_replay,
    loop_summary,
    nearest_success,
)
from workbench.review_pack import ReviewPack, weekly_pack
from workbench.rubric_results import agreement, failing_runs, pass_rates, verdicts
from workbench.rubrics import Rubric, RubricError, load_rubric, parse_rubric, record_human_score
from workbench.scoring import ScoreReport, score_runs
from workbench.store import Store, StoreBusyError, StoreError, default_db_path, open_store

__all__ = [
    "ClusterComparison", "Clustering", "FailureClusterer", "cluster_failures", "cluster_table",
    "compare_clusterings", "compare_periods", "compare_versions", "list_clusterings", "load_clustering",
    "save_clustering",
    "Budgets", "ServiceLevels", "budget_breaches", "budget_summary", "cost_breakdown", "cost_trend",
    "last_two_weeks", "load_budgets", "service_levels", "service_trend", "top_runs", "waste",
    "Assessment", "Framework", "MaturityError", "assess", "diff_assessments", "latest_answers", "list_assessments", "load_answers",
    "load_assessment", "load_framework", "questionnaire", "save_assessment",
    "Comparison", "ImportResult", "IngestSummary", "Message", "Overview", "Reject", "Replay", "Rubric",
    "RubricError", "Run", "RunFilter", "RunsPage", "ScoreReport", "Step", "Store", "StoreBusyError",
    "StoreError", "ToolCall", "agreement", "build_demo", "compare_runs", "default_db_path", "failing_runs",
    "get_run", "import_path", "import_rejects", "import_uploads", "imports_table", "ingest_file",
    "ingest_paths", "labels", "load_replay", "load_rubric", "loop_summary", "make_run_id", "nearest_success",
    "open_store", "overview", "parse_rubric", "pass_rates", "record_human_score", "run_steps", "runs_page",
    "score_runs", "verdicts", "ReviewPack", "weekly_pack",
]
__version__ = "0.1.0"

# Clustering needs scikit-learn and scipy (about 2 s to import): loaded on first use, so the CLI and notebooks
# that never cluster do not wait for it.
_LAZY = {"FailureClusterer": "workbench.clustering"} | {
    name: "workbench.clustering_results"
    for name in ("ClusterComparison", "Clustering", "cluster_failures", "cluster_table", "compare_clusterings",
                 "compare_periods", "compare_versions", "list_clusterings", "load_clustering", "save_clustering")}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
