from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.store import Store

ROOT = Path(__file__).resolve().parent.parent
# WORKBENCH_REAL_DATA, else next to a clone (../shared/data/real), else further up (a git worktree)
REAL = Path(os.environ.get("WORKBENCH_REAL_DATA") or next(
    (p / "shared" / "data" / "real" for p in ROOT.parents if (p / "shared" / "data" / "real").is_dir()),
    ROOT.parent / "shared" / "data" / "real"))
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "wb.duckdb")
    yield s
    s.close()


@pytest.fixture
def real_dir() -> Path:
    if not REAL.is_dir():
        pytest.skip(f"real trace files not found at {REAL} (they live in ../shared/data/real next to a clone)")
    return REAL


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The full default demo fleet, built once per test session through the real ingest path."""
    from workbench.testing import build_sample_db

    return build_sample_db(tmp_path_factory.mktemp("demo") / "demo.duckdb")
