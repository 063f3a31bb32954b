"""Labeling in a real browser: one reviewer with the keyboard alone, then two reviewers at the same time.

`workbench serve` on a small demo fleet (200 runs through the real loader) + Debian's Chromium through
Playwright. The app owns the database while it runs, so each test stops its server before reading
`label_events` itself. Screenshots go to test-artifacts/browser-review-*.png.
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests import browser_util as bu
from tests.browser_util import EXCEPTION, settle, shot
from workbench import labels as lb
from workbench.store import Store
from workbench.testing import build_sample_db

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

bu.require_browser()

from playwright.sync_api import expect  # noqa: E402

FIRST_LOAD_MS = 60_000  # a fresh server imports pandas, plotly ... on a busy 2-core box
N_RUNS = 200
KEYBOARD_RUNS = 20
SHARED_RUNS = 8


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The demo fleet at 200 runs (64 failures with seed 7), built once; each test serves its own copy."""
    return build_sample_db(tmp_path_factory.mktemp("browser-review") / "fleet.duckdb", n_runs=N_RUNS)


@pytest.fixture(scope="module")
def browser():
    with bu.chromium() as chromium:
        yield chromium


def failed_runs(db) -> list[str]:
    """Failed runs, oldest first: the queue's order when nobody has labeled or been assigned anything."""
    store = Store(db, read_only=True)
    try:
        return [r for (r,) in store.sql("SELECT run_id FROM runs WHERE outcome = 'failure' OR status = 'error' "
                                        "ORDER BY started_at, run_id").fetchall()]
    finally:
        store.close()


def new_page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    return ctx, page


def run_in_url(page) -> str:
    m = re.search(r"[?&]run=([^&]+)", page.url)
    return m.group(1) if m else ""


def sign_in(page, base: str, name: str) -> None:
    """Open Review and type the name once (focus the field, type, Enter): the only typing in these tests."""
    page.goto(f"{base}/review")
    field = page.get_by_label("Your name: it is stored with every label you make")
    expect(field).to_be_visible(timeout=FIRST_LOAD_MS)
    field.focus()
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    expect(page.get_by_text(f"reviewing as {name}", exact=True)).to_be_visible(timeout=bu.WAIT_MS)
    page.wait_for_url(re.compile(r"[?&]run="), timeout=bu.WAIT_MS)
    ready(page)


def ready(page) -> None:
    """Wait until the script run is over, so the label pad with its shortcuts is on the page."""
    expect(page.locator('[data-testid="stApp"]')).to_have_attribute("data-test-script-state", "notRunning",
                                                                    timeout=bu.WAIT_MS)
    expect(page.get_by_role("button", name=re.compile(r"^Undo"))).to_be_visible(timeout=bu.WAIT_MS)


def message(page, text: str):
    return page.locator('[data-testid="stText"]', has_text=text)


def wait_label(page, code: str) -> None:
    expect(message(page, f"✓ added {code} to the run")).to_be_visible(timeout=bu.WAIT_MS)
    ready(page)


def wait_next(page, previous: str) -> str:
    page.wait_for_url(lambda url: (run := re.search(r"[?&]run=([^&]+)", url)) is not None
                      and run.group(1) != previous, timeout=bu.WAIT_MS)
    expect(page.locator('[data-testid="stCode"]').first).to_have_text(run_in_url(page), timeout=bu.WAIT_MS)
    ready(page)
    return run_in_url(page)


def read_events(db) -> list[tuple]:
    store = Store(db, read_only=True)
    try:
        return store.sql("SELECT event_id, reviewer, run_id, step_id, code, action FROM label_events "
                         "ORDER BY created_at, rowid").fetchall()
    finally:
        store.close()


def test_a_reviewer_labels_20_failures_with_the_keyboard_only(fleet, browser, tmp_path):
    db = tmp_path / "keyboard.duckdb"
    shutil.copyfile(fleet, db)
    queue = failed_runs(db)
    tax = lb.default_taxonomy()
    codes = [tax.labels[i % len(tax.labels)] for i in range(KEYBOARD_RUNS)]  # every key once, then some again
    seen: list[str] = []
    ctx, page = new_page(browser)
    try:
        with bu.served_app(db, bu.free_port(), timeout=90) as base:
            sign_in(page, base, "ana")
            run = run_in_url(page)
            for i, label in enumerate(codes):
                seen.append(run)
                page.keyboard.press(label.key)
                wait_label(page, label.code)
                if i == 3:
                    shot(page, "review-keyboard", height=1800)
                page.keyboard.press("n")
                run = wait_next(page, run)
            assert page.locator(EXCEPTION).count() == 0 and page.dialogs == []  # type: ignore[attr-defined]
    finally:
        ctx.close()
    got = read_events(db)
    # one event per key press, on the run shown at that moment, with the key's code; all for the whole run
    assert [(r, c, a, s) for _, who, r, s, c, a in got if who == "ana"] == [
        (run, label.code, "add", None) for run, label in zip(seen, codes, strict=True)]
    assert len(got) == KEYBOARD_RUNS
    # the queue served the 20 oldest failures, each once
    assert seen == queue[:KEYBOARD_RUNS]


def test_two_reviewers_label_the_same_runs_at_the_same_time(fleet, browser, tmp_path):
    db = tmp_path / "two.duckdb"
    shutil.copyfile(fleet, db)
    shared = failed_runs(db)[:SHARED_RUNS]
    with Store(db) as store:  # both get the same runs: assignment is how a run gets two votes
        lb.assign(store, shared, "rita", "lead")
        lb.assign(store, shared, "sam", "lead")
    # rita: "1" (wrong tool) on every run; sam: "1" on even runs, "2" on odd ones, and "4" (loop) on every third
    plan = {"rita": [["1"] for _ in shared],
            "sam": [["1" if i % 2 == 0 else "2"] + (["4"] if i % 3 == 0 else []) for i in range(len(shared))]}
    keys = lb.default_taxonomy().by_key()
    ctx_a, rita = new_page(browser)
    ctx_b, sam = new_page(browser)
    pages = {"rita": rita, "sam": sam}
    try:
        with bu.served_app(db, bu.free_port(), timeout=90) as base:
            for name, page in pages.items():
                sign_in(page, base, name)
            for i, run in enumerate(shared):
                assert run_in_url(rita) == run_in_url(sam) == run
                for k in range(max(len(plan[n][i]) for n in pages)):
                    pressed = {n: plan[n][i][k] for n in pages if k < len(plan[n][i])}
                    for n, key in pressed.items():  # both key presses are sent before either page is waited on
                        pages[n].keyboard.press(key)
                    for n, key in pressed.items():
                        wait_label(pages[n], keys[key])
                for page in pages.values():
                    page.keyboard.press("n")
                for page in pages.values():
                    wait_next(page, run)
                if i == 1:
                    shot(rita, "review-two-rita", height=1600)
                    shot(sam, "review-two-sam", height=1600)
            for page in pages.values():
                assert page.locator(EXCEPTION).count() == 0 and page.dialogs == []  # type: ignore[attr-defined]
            # the Labels page shows their agreement on the codes both used
            rita.locator('[data-testid="stSidebarNav"] a', has_text="Labels").click()  # same session: no name
            rita.wait_for_url("**/labels", timeout=bu.WAIT_MS)  # the Review page also says "reviewing as rita"
            expect(rita.get_by_role("heading", name="Labels").first).to_be_visible(timeout=bu.WAIT_MS)
            expect(rita.get_by_text("reviewing as rita", exact=True)).to_be_visible(timeout=bu.WAIT_MS)
            settle(rita)
            expect(rita.locator('[data-testid="stDataFrame"]').first).to_be_visible()
            shot(rita, "review-agreement", height=1600)
    finally:
        ctx_a.close()
        ctx_b.close()
    got = read_events(db)
    expected = {(n, run, keys[key]) for n in pages for run, ks in zip(shared, plan[n], strict=True) for key in ks}
    assert len(got) == sum(len(ks) for n in pages for ks in plan[n]) == 8 + 8 + 3  # nothing lost
    assert len({e[0] for e in got}) == len(got)  # every event its own id: nothing overwritten
    assert {(who, r, c) for _, who, r, _, c, _ in got} == expected
    assert {who: sum(1 for e in got if e[1] == who) for who in pages} == {"rita": 8, "sam": 11}
    assert {e[5] for e in got} == {"add"}
    with Store(db, read_only=True) as store:
        table = lb.agreement(store).set_index("code")
    # wrong tool: rita yes on all 8, sam yes on the 4 even runs
    assert table.loc["tool.wrong_tool", "runs"] == SHARED_RUNS
    assert table.loc["tool.wrong_tool", "raw_agreement"] == pytest.approx(0.5)
