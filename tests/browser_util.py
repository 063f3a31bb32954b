"""Helpers shared by the query, page and browser tests: a small fixture database and a served app.

The fixture is built with plain SQL inserts so these tests do not depend on a loader; it holds a few runs
whose text is hostile on purpose (HTML, a Markdown image pointing at an outside URL, `%` and quotes).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from workbench.store import Store
from workbench.testing import free_port  # noqa: F401  (re-exported for the browser tests)

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"

EVIL_SCRIPT = "<script>alert(1)</script>"
EVIL_IMAGE = "![x](http://127.0.0.1:9/x.png)"
EVIL_RUN_ID = "evil00000000run1"
PERCENT_RUN_ID = "pct0000000000run"

_RUN_COLUMNS = (
    "run_id", "format", "native_id", "agent", "agent_version", "task_id", "started_at", "ended_at",
    "duration_ms", "status", "outcome", "input", "output", "error", "n_steps", "n_llm_calls", "n_tool_calls",
    "n_errors", "input_tokens", "output_tokens", "cost_usd", "cost_estimated",
)
_STEP_COLUMNS = (
    "run_id", "step_id", "parent_step_id", "seq", "depth", "kind", "name", "started_at", "duration_ms",
    "status", "error", "model", "messages", "tool_name", "tool_args", "tool_result", "input_tokens",
    "output_tokens", "cost_usd",
)


def sample_runs() -> list[dict]:
    """The fixture's runs as dicts (column -> value); tests recompute expected figures from these."""
    base = datetime(2024, 3, 4, 9, 0, 0)  # a Monday, so week buckets are easy to reason about
    agents = [("support-bot", "v1"), ("support-bot", "v2"), ("coder", "2024.03")]
    outcomes = ["success", "success", "failure", "unknown", "success", "failure", "success"]
    runs = []
    for i in range(36):
        agent, version = agents[i % 3]
        outcome = outcomes[i % 7]
        started = base + timedelta(days=i % 28, hours=i)
        duration = 1000.0 + 250.0 * i
        runs.append({
            "run_id": f"run{i:013d}",
            "format": "otlp" if i % 4 else "langfuse",
            "native_id": f"trace-{i:04x}",
            "agent": agent,
            "agent_version": version,
            "task_id": f"task-{i % 5}",
            "started_at": started,
            "ended_at": started + timedelta(milliseconds=duration),
            "duration_ms": duration,
            "status": "error" if outcome == "failure" and i % 2 else "ok",
            "outcome": outcome,
            "input": f"Customer asks about order {1000 + i}",
            "output": f"Answered order {1000 + i}",
            "error": "Tool timeout after 30s" if outcome == "failure" else None,
            "n_steps": 3,
            "n_llm_calls": 2,
            "n_tool_calls": 1,
            "n_errors": 1 if outcome == "failure" else 0,
            "input_tokens": 100 + i,
            "output_tokens": 20 + i,
            "cost_usd": None if i == 5 else round(0.001 * (i + 1), 6),
            "cost_estimated": i % 2 == 0,
        })
    runs[7].update(run_id=PERCENT_RUN_ID, input="Apply the 50% discount for O'Brien_family")
    runs[8].update(run_id=EVIL_RUN_ID, input=f"Summarise {EVIL_SCRIPT} {EVIL_IMAGE}",
                   output=f"{EVIL_IMAGE} done", error=f"failed near {EVIL_SCRIPT}", outcome="failure",
                   task_id=EVIL_IMAGE)
    return runs


def sample_steps(runs: list[dict]) -> list[dict]:
    """Three steps per run (agent root, llm call, tool call); the evil run's payloads carry hostile text."""
    steps = []
    for run in runs:
        evil = run["run_id"] == EVIL_RUN_ID
        content = f"Look at this {EVIL_IMAGE} and {EVIL_SCRIPT}" if evil else "What is the order status?"
        messages = (
            '[{"role": "user", "content": ' + json.dumps(content) + '}, '
            '{"role": "assistant", "content": "Checking.", "tool_calls": '
            '[{"id": "c1", "name": "lookup_order", "arguments": {"order": 1}}]}]'
        )
        t0 = run["started_at"]
        common = {"run_id": run["run_id"], "error": None, "model": None, "messages": None, "tool_name": None,
                  "tool_args": None, "tool_result": None, "input_tokens": None, "output_tokens": None,
                  "cost_usd": None}
        steps.append({**common, "step_id": "s0", "parent_step_id": None, "seq": 0, "depth": 0,
                      "kind": "agent", "name": "handle_ticket", "started_at": t0,
                      "duration_ms": run["duration_ms"], "status": "ok"})
        steps.append({**common, "step_id": "s1", "parent_step_id": "s0", "seq": 1, "depth": 1, "kind": "llm",
                      "name": "chat gpt-4o-mini", "started_at": t0 + timedelta(milliseconds=10),
                      "duration_ms": 400.0, "status": "ok", "model": "gpt-4o-mini", "messages": messages,
                      "input_tokens": run["input_tokens"], "output_tokens": run["output_tokens"],
                      "cost_usd": run["cost_usd"]})
        steps.append({**common, "step_id": "s2", "parent_step_id": "s0", "seq": 2, "depth": 1, "kind": "tool",
                      "name": "lookup_order", "started_at": t0 + timedelta(milliseconds=500),
                      "duration_ms": 120.0, "status": "error" if run["error"] else "ok",
                      "error": run["error"], "tool_name": "lookup_order", "tool_args": '{"order": 1}',
                      "tool_result": f"{EVIL_SCRIPT} {EVIL_IMAGE}" if evil else '{"status": "shipped"}'})
    return steps


def build_sample_db(path: Path) -> Path:
    """Create the fixture database at `path` (a new file) and close it again."""
    store = Store(path)
    runs = sample_runs()
    steps = sample_steps(runs)
    with store, store.transaction() as cur:
        cur.executemany(_insert("runs", _RUN_COLUMNS), [[r[c] for c in _RUN_COLUMNS] for r in runs])
        cur.executemany(_insert("steps", _STEP_COLUMNS), [[s[c] for c in _STEP_COLUMNS] for s in steps])
    return path


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join(f"${i + 1}" for i in range(len(columns)))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - fixed names


def require_browser() -> None:
    """Skip the calling test module when no browser can run, except in CI, where that is a broken setup.

    Call it at module level before importing playwright.
    """
    missing = browser_missing()
    if missing and os.environ.get("CI"):
        # ./dev test installs Chromium; in CI a missing browser is a broken setup, not a reason to skip
        raise RuntimeError(f"browser tests cannot run in CI: {missing}")
    if missing:
        import pytest

        pytest.skip(f"browser test skipped: {missing}", allow_module_level=True)


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's Chromium driven by Playwright, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# -- driving the page (Playwright objects are passed in; this module does not import playwright) ----------
EXCEPTION = '[data-testid="stException"]'
WAIT_MS = 20_000


def settle(page) -> None:
    """Wait until the script run is over (Streamlit shows a running indicator meanwhile)."""
    page.wait_for_load_state("networkidle")
    running = page.locator('[data-testid="stStatusWidget"]')
    deadline = time.monotonic() + 15
    while running.count() and running.first.is_visible() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    page.wait_for_timeout(300)


def shot(page, name: str, height: int = 2000) -> None:
    """Screenshot into test-artifacts/browser-NAME.png.

    Streamlit scrolls an inner container, so full_page alone captures one screen: grow the window instead.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)
    page.set_viewport_size(size)


def nav_lines(page) -> list[str]:
    return [line.strip() for line in page.locator('[data-testid="stSidebarNav"]').inner_text().splitlines()
            if line.strip()]


# -- serving the app --------------------------------------------------------------------------------------
def browser_missing() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (install Debian's chromium package)"
    if shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} is not executable"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed"
    return None


@contextlib.contextmanager
def served_app(db: Path, port: int, timeout: float = 30.0) -> Iterator[str]:
    """Run `workbench serve --db DB --port PORT` and yield its base URL; the server always stops after."""
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "browser-server.log", "wb")  # closed in finally
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "serve", "--db", str(db), "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"workbench serve exited with {proc.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200 and resp.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer on {base} within {timeout:.0f} s")
            time.sleep(0.25)
        yield base
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen) -> None:
    # `workbench serve` starts streamlit as a child: signal the whole process group we created.
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            proc.wait(timeout=5)
