"""Test helpers that ship with the package, so plugins and notebooks can build the same sample databases."""

from __future__ import annotations

import socket
from pathlib import Path

from workbench.demo_build import build_demo


def build_sample_db(path: str | Path, *, seed: int = 7, n_runs: int = 2400) -> Path:
    """The demo fleet ingested into `path` through the real loader (about 10 s at the default size)."""
    path = Path(path)
    build_demo(path, seed=seed, n_runs=n_runs)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
