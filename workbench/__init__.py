"""Agent run review workbench: trace exports -> DuckDB -> review, the same from notebooks, CLI and app.

The public surface lives here; import from `workbench` rather than its modules.
"""

from workbench.demo_build import build_demo
from workbench.ingest import IngestSummary, ingest_file, ingest_paths
from workbench.models import ImportResult, Message, Reject, Run, Step, ToolCall, make_run_id
from workbench.queries import Overview, RunFilter, RunsPage, get_run, overview, run_steps, runs_page
from workbench.rubric_results import agreement, failing_runs, pass_rates, verdicts
from workbench.rubrics import Rubric, RubricError, load_rubric, parse_rubric, record_human_score
from workbench.scoring import ScoreReport, score_runs
from workbench.store import Store, StoreBusyError, StoreError, default_db_path, open_store

__all__ = [
    "ImportResult", "IngestSummary", "Message", "Overview", "Reject", "Rubric", "RubricError", "Run", "RunFilter",
    "RunsPage", "ScoreReport", "Step", "Store", "StoreBusyError", "StoreError", "ToolCall", "agreement",
    "build_demo", "default_db_path", "failing_runs", "get_run", "ingest_file", "ingest_paths", "load_rubric",
    "make_run_id", "open_store", "overview", "parse_rubric", "pass_rates", "record_human_score", "run_steps",
    "runs_page", "score_runs", "verdicts",
]
__version__ = "0.1.0"
