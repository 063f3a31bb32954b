"""Replay and Compare in a real browser: keyboard stepping, deep links, compare, and inert untrusted text.

`workbench serve` + Debian's Chromium through Playwright; screenshots go to test-artifacts/browser-*.png.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from datetime import datetime, timedelta

import pytest

from tests import browser_util as bu
from tests.browser_util import EXCEPTION, settle, shot
from workbench.replay import load_replay, nearest_success
from workbench.replay.compare import comparison_of
from workbench.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

bu.require_browser()

from playwright.sync_api import expect  # noqa: E402

FIRST_LOAD_MS = 60_000  # the first page of a fresh server imports pandas, plotly ... on a busy 2-core box
MODE = "attributes->>'$.\"workbench.demo.failure_mode\"'"


@pytest.fixture(scope="module")
def browser():
    with bu.chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def demo(demo_db, tmp_path_factory):
    """A served copy of the demo fleet, and what the tests expect of one tool-loop failure in it."""
    path = tmp_path_factory.mktemp("browser-replay") / "demo.duckdb"
    shutil.copyfile(demo_db, path)
    store = Store(path, read_only=True)  # closed before the server opens the file for writing
    try:
        run_id = store.sql(f"SELECT run_id FROM runs WHERE {MODE} = 'tool_loop' AND agent = 'support-agent' "
                           "ORDER BY run_id LIMIT 1").fetchone()[0]
        rp = load_replay(store, run_id)
        nearest = nearest_success(store, run_id)
        cmp = comparison_of(rp, load_replay(store, nearest))
        pair = cmp.pairs.iloc[cmp.first_divergence]
        facts = {"run_id": run_id, "steps": rp.step_ids, "seqs": rp.steps["seq"].tolist(),
                 "loop": rp.findings["step_ids"].iloc[0], "tools": rp.steps["tool_name"].notna().tolist(),
                 "kinds": rp.steps["kind"].tolist(),
                 "nearest": nearest, "div_a": pair["a_step_id"] if isinstance(pair["a_step_id"], str) else None,
                 "div_b": pair["b_step_id"] if isinstance(pair["b_step_id"], str) else None}
    finally:
        store.close()
    with bu.served_app(path, bu.free_port(), timeout=90) as base:
        yield base, facts


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    yield pg
    ctx.close()


def open_url(page, url: str, first_code: str) -> None:
    page.goto(url)
    expect(page.locator('[data-testid="stCode"]').first).to_have_text(first_code, timeout=FIRST_LOAD_MS)
    settle(page)
    assert page.locator(EXCEPTION).count() == 0


def step_in_url(page) -> str:
    return page.url.split("step=", 1)[1].split("&", 1)[0] if "step=" in page.url else ""


def press(page, key: str, expected_step: str) -> None:
    page.keyboard.press(key)
    page.wait_for_url(f"**step={expected_step}*", timeout=bu.WAIT_MS)
    settle(page)
    assert page.locator(EXCEPTION).count() == 0


def detail_header(page, seq: int):
    return page.locator('[data-testid="stText"]', has_text=f"#{seq} · ").first


# -- the demo fleet -----------------------------------------------------------------------------------------
def test_step_through_a_failure_with_the_keyboard(demo, page):
    base, f = demo
    open_url(page, f"{base}/run?run={f['run_id']}", f["run_id"])
    assert step_in_url(page) == f["steps"][0]  # the URL names the step shown
    expect(page.get_by_text("Loop detected: 1 loop", exact=False)).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(2)
    shot(page, "replay-failure")
    press(page, "j", f["steps"][1])
    expect(detail_header(page, f["seqs"][1])).to_be_visible()
    press(page, "k", f["steps"][0])
    first_loop = f["steps"].index(f["loop"][0])
    press(page, "l", f["loop"][0])  # next loop/retry finding
    expect(detail_header(page, f["seqs"][first_loop])).to_be_visible()
    expect(page.get_by_text("loop: ", exact=False).first).to_be_visible()
    next_tool = next(i for i in range(first_loop + 1, len(f["steps"])) if f["tools"][i])
    press(page, "t", f["steps"][next_tool])  # next tool call: the loop's second call
    assert f["steps"][next_tool] == f["loop"][1]
    shot(page, "replay-keyboard")
    # a click on a waterfall bar opens that step: the last bar of the first trace (LLM calls) is the last LLM step
    llm_rows = [i for i, k in enumerate(f["kinds"]) if k == "llm"]
    bar = page.locator(".js-plotly-plot").first.locator(".trace.bars").first.locator(".point").nth(len(llm_rows) - 1)
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # plotly wants a hover first
    page.wait_for_timeout(300)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(f"**step={f['steps'][llm_rows[-1]]}*", timeout=bu.WAIT_MS)
    settle(page)
    assert page.locator(EXCEPTION).count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_deep_link_to_a_step(demo, page):
    base, f = demo
    target = f["loop"][2]
    open_url(page, f"{base}/run?run={f['run_id']}&step={target}", f["run_id"])
    expect(detail_header(page, f["seqs"][f["steps"].index(target)])).to_be_visible()
    assert step_in_url(page) == target
    # the grid has the linked row selected (its checkbox cell is checked in the accessible twin)
    shot(page, "replay-deep-link")


def test_compare_with_the_nearest_success(demo, page):
    base, f = demo
    open_url(page, f"{base}/compare?a={f['run_id']}", f["run_id"])
    codes = page.locator('[data-testid="stCode"]').all_inner_texts()
    assert codes[:2] == [f["run_id"], f["nearest"]]
    expect(page.get_by_text("First divergence at aligned position", exact=False)).to_be_visible()
    # the pair shown in full is where they diverge, with links back into Replay at that step on each side
    expect(page.get_by_text("(the runs diverge here first)", exact=False)).to_be_visible()
    for side, run, step in (("A", f["run_id"], f["div_a"]), ("B", f["nearest"], f["div_b"])):
        link = page.get_by_role("link", name=f"Open in Replay ({side})")
        if step is None:  # a gap on this side
            expect(link).to_have_count(0)
        else:
            expect(link).to_have_attribute("href", f"run?run={run}&step={step}")
    shot(page, "compare", height=2600)


# -- untrusted text -----------------------------------------------------------------------------------------
class _Beacon(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        type(self).hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def beacon():
    """A tiny HTTP server of the test's own: any request to it means hostile text did something."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Beacon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], _Beacon.hits
    finally:
        server.shutdown()
        server.server_close()


def hostile_texts(port: int) -> list[str]:
    beacon = f"http://127.0.0.1:{port}"
    return [
        f"<script>window.__pwned = 'script'; fetch('{beacon}/script')</script>",
        f"<img src=x onerror=\"window.__pwned = 'img'; fetch('{beacon}/img')\">",
        "<style>body { display: none !important }</style>",
        f"![x]({beacon}/beacon.png)",
    ]


def build_hostile_store(path, port: int) -> tuple[str, str]:
    """Two runs of the same task: a failure whose every text field is hostile (and loops), and a success."""
    evil = " ".join(hostile_texts(port))
    t0 = datetime(2026, 3, 2, 9)
    store = Store(path)
    runs, steps = [], []
    for run_id, outcome in (("hostile-fail", "failure"), ("hostile-ok", "success")):
        bad = outcome == "failure"
        runs.append((run_id, "otlp", run_id, "agent", "v1" if bad else "v2", "task-x", t0, 3000.0, outcome,
                     f"input {evil}" if bad else "input", f"output {evil}" if bad else "ok"))
        # both runs share the hostile root and tool names, so the alignment pairs them up and the first
        # divergence is A's second (looping) LLM turn, whose answer is the hostile text
        steps.append((run_id, "root", None, 0, 0, "agent", f"root {evil}", t0, 3000.0, "ok", None, None, None,
                      None, None))
        for k in range(3 if bad else 1):  # three identical calls: a loop, so the findings show the tool name
            messages = [{"role": "user", "content": f"hello {evil}" if bad else "hello"},
                        {"role": "assistant", "content": evil if bad else "ok",
                         "tool_calls": [{"id": f"c{k}", "name": "lookup", "arguments": {"q": evil}}]}]
            t = t0 + timedelta(seconds=1 + k)
            steps.append((run_id, f"l{k}", "root", 1 + 2 * k, 1, "llm", "chat", t, 400.0, "ok", None,
                          json.dumps(messages), None, None, None))
            steps.append((run_id, f"t{k}", "root", 2 + 2 * k, 1, "tool", f"<b>{evil}</b>",
                          t + timedelta(milliseconds=500), 100.0, "error" if bad else "ok",
                          f"error {evil}" if bad else None, None, f"<b>{evil}</b>", json.dumps({"q": evil}),
                          evil if bad else "fine"))
    with store, store.transaction() as cur:
        cur.executemany("INSERT INTO runs (run_id, format, native_id, agent, agent_version, task_id, started_at, "
                        "duration_ms, outcome, input, output) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
                        "$11)", runs)
        cur.executemany("INSERT INTO steps (run_id, step_id, parent_step_id, seq, depth, kind, name, started_at, "
                        "duration_ms, status, error, messages, tool_name, tool_args, tool_result) VALUES ($1, $2, "
                        "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)", steps)
    return "hostile-fail", "hostile-ok"


def assert_inert(page, hits: list[str], port: int) -> None:
    page.wait_for_timeout(1000)  # time for anything that would run or load to do so
    assert page.evaluate("window.__pwned") is None  # no script ran, no onerror fired
    assert page.dialogs == []  # type: ignore[attr-defined]
    assert page.locator(f'img[src*="127.0.0.1:{port}"]').count() == 0
    # the <style> did not become a style sheet, and the page is displayed
    assert page.evaluate("getComputedStyle(document.body).display") != "none"
    assert page.evaluate("[...document.querySelectorAll('style')].filter(s => "
                         "s.textContent.includes('display: none !important')).length") == 0
    expect(page.locator("h1").first).to_be_visible()
    assert hits == []


def test_untrusted_text_is_inert_in_the_browser(browser, beacon, tmp_path, page):
    port, hits = beacon
    db = tmp_path / "hostile.duckdb"
    bad, good = build_hostile_store(db, port)
    texts = hostile_texts(port)
    with bu.served_app(db, bu.free_port(), timeout=90) as base:
        open_url(page, f"{base}/run?run={bad}&step=l1", bad)
        codes = " ".join(page.locator('[data-testid="stCode"]').all_inner_texts())
        for text in texts:  # every hostile string is on the page, as text
            assert text in codes, text
        expect(page.get_by_text("Loop detected", exact=False)).to_be_visible()
        assert_inert(page, hits, port)
        shot(page, "replay-hostile", height=2600)
        press(page, "j", "t1")  # the tool step: hostile name, arguments, result and error
        codes = " ".join(page.locator('[data-testid="stCode"]').all_inner_texts())
        assert texts[0] in codes and texts[3] in codes
        page.locator(".js-plotly-plot").first.hover()  # hover labels carry step names
        assert_inert(page, hits, port)
        open_url(page, f"{base}/compare?a={bad}", bad)
        codes = page.locator('[data-testid="stCode"]').all_inner_texts()
        assert codes[:2] == [bad, good]
        expect(page.get_by_text("position 4: only in A", exact=False)).to_be_visible()
        assert all(text in " ".join(codes) for text in texts)  # A's answer at the divergence, as text
        assert_inert(page, hits, port)
        shot(page, "compare-hostile", height=2600)
