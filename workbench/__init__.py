"""Agent run review workbench: trace exports -> DuckDB -> review, the same from notebooks, CLI and app.

The public surface lives here; import from `workbench` rather than its modules.
"""

from workbench.ingest import IngestSummary, ingest_file, ingest_paths
from workbench.models import ImportResult, Message, Reject, Run, Step, ToolCall, make_run_id
from workbench.store import Store, StoreBusyError, StoreError, default_db_path, open_store

__all__ = [
    "ImportResult", "IngestSummary", "Message", "Reject", "Run", "Step", "Store", "StoreBusyError", "StoreError",
    "ToolCall", "default_db_path", "ingest_file", "ingest_paths", "make_run_id", "open_store",
]
__version__ = "0.1.0"
