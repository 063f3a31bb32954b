"""A reviewer's click path in a real browser: `workbench serve` + Debian's Chromium driven by Playwright.

Screenshots land in test-artifacts/ (browser-*.png) for a person to look at.
"""

from __future__ import annotations

import pytest

from tests import browser_util as bu

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]
bu.require_browser()

from playwright.sync_api import expect  # noqa: E402

from tests.browser_util import EXCEPTION, WAIT_MS, nav_lines, settle, shot  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    db = bu.build_sample_db(tmp_path_factory.mktemp("browser") / "wb.duckdb")
    with bu.served_app(db, bu.free_port()) as base:
        yield base


@pytest.fixture(scope="module")
def browser(served):
    with bu.chromium() as chromium:
        yield chromium


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    # Nothing on these pages may reach outside the app: trace text with a Markdown image would try.
    outside: list[str] = []
    ctx.on("request", lambda req: outside.append(req.url) if "127.0.0.1:9/" in req.url else None)
    ctx.outside_requests = outside  # type: ignore[attr-defined]
    yield ctx
    ctx.close()


def test_overview_runs_and_click_into_a_run(served, context):
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(served)
    expect(page.locator('[data-testid="stMetric"]').first).to_be_visible(timeout=WAIT_MS)
    settle(page)
    assert page.locator(EXCEPTION).count() == 0
    values = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    labels = [t.strip() for t in page.locator('[data-testid="stMetricLabel"]').all_inner_texts()]
    # the six headline figures come first; the service levels (this week against last) follow them
    assert labels[:6] == ["Runs", "Success rate", "Total cost", "Cost per success", "p50 duration", "p95 duration"]
    assert values[0].strip() == "36" and len(values) == len(labels)
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    shot(page, "overview")

    # to Runs through the navigation
    page.locator('[data-testid="stSidebarNav"] a', has_text="Runs").click()
    page.wait_for_url("**/runs", timeout=WAIT_MS)
    expect(page.get_by_text("rows 1–36 of 36")).to_be_visible(timeout=WAIT_MS)  # the Runs page, not the Overview
    settle(page)
    grid = page.locator('[data-testid="stDataFrame"]')
    expect(grid).to_have_count(1)
    expect(grid).to_be_visible()
    assert page.locator(EXCEPTION).count() == 0
    shot(page, "runs")

    # The grid is a canvas; its accessible twin says which run is on the first row.
    first_link = page.locator('[data-testid="glide-cell-1-0"]').inner_text()
    run_id = first_link.split("run=", 1)[1]
    box = grid.bounding_box()
    row_y = box["y"] + 35 + 17  # header row, then the middle of the first data row

    # 1) the link cell opens the run in a new tab (a shareable deep link); the grid reacts to a link only
    # once the pointer has hovered it, as a person's would
    page.mouse.move(box["x"] + 90, row_y)
    page.wait_for_timeout(300)
    with context.expect_page(timeout=WAIT_MS) as opened:
        page.mouse.click(box["x"] + 90, row_y)
    tab = opened.value
    expect(tab.locator('[data-testid="stCode"]').first).to_have_text(run_id, timeout=WAIT_MS)
    settle(tab)
    assert f"/run?run={run_id}&step=" in tab.url  # the Replay page names the step it shows
    assert tab.locator(EXCEPTION).count() == 0
    tab.close()

    # 2) selecting the row opens the run in place
    page.mouse.click(box["x"] + 15, row_y)
    page.wait_for_url(f"**/run?run={run_id}*", timeout=WAIT_MS)
    expect(page.locator('[data-testid="stCode"]').first).to_have_text(run_id, timeout=WAIT_MS)
    settle(page)
    assert page.locator(EXCEPTION).count() == 0
    expect(page.get_by_text("agent:", exact=False).first).to_be_visible()
    assert [v.strip() for v in page.locator('[data-testid="stMetricValue"]').all_inner_texts()][1] == "3"
    shot(page, "run")
    assert dialogs == []


def test_deep_link_to_a_step_with_hostile_text(served, context):
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{served}/run?run={bu.EVIL_RUN_ID}&step=s1")
    expect(page.locator('[data-testid="stCode"]').first).to_have_text(bu.EVIL_RUN_ID, timeout=WAIT_MS)
    settle(page)
    assert page.locator(EXCEPTION).count() == 0
    # a deep link is routed by app.py: its navigation, not a legacy multipage listing
    lines = nav_lines(page)
    assert {"Overview", "Runs", "Replay", "Compare"} <= set(lines) and not {"app", "overview", "runs"} & set(lines)
    # the hostile text is on the page, as text ...
    codes = " ".join(page.locator('[data-testid="stCode"]').all_inner_texts())
    assert bu.EVIL_SCRIPT in codes and bu.EVIL_IMAGE in codes
    # ... and did nothing: no script ran, no image was fetched, no element was created from it
    assert dialogs == []
    assert page.locator('img[src*="127.0.0.1:9"]').count() == 0
    assert context.outside_requests == []  # type: ignore[attr-defined]
    shot(page, "run-hostile")


def test_unknown_run_is_a_clear_warning(served, context):
    page = context.new_page()
    page.goto(f"{served}/run?run=does-not-exist")
    expect(page.locator('[data-testid="stAlertContentWarning"]')).to_contain_text("No run with this id",
                                                                                     timeout=WAIT_MS)
    assert page.locator(EXCEPTION).count() == 0


def test_demo_fleet_renders_and_deep_links(demo_db, browser):
    """The bundled demo as a new user sees it: Overview and Runs with no error, then ?run= opens that run."""
    import duckdb

    con = duckdb.connect(str(demo_db), read_only=True)
    n_runs, run_id, agent = con.execute(
        "SELECT (SELECT count(*) FROM runs), run_id, agent FROM runs WHERE outcome = 'failure' "
        "ORDER BY cost_usd DESC LIMIT 1").fetchone()
    con.close()
    with bu.served_app(demo_db, bu.free_port()) as base:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            page = ctx.new_page()
            page.goto(base)
            expect(page.locator('[data-testid="stMetric"]').first).to_be_visible(timeout=WAIT_MS)
            settle(page)
            assert page.locator(EXCEPTION).count() == 0
            assert page.locator('[data-testid="stMetricValue"]').first.inner_text().replace(",", "") == str(n_runs)
            shot(page, "demo-overview")
            page.locator('[data-testid="stSidebarNav"] a', has_text="Runs").click()
            # The Overview's own tables stay in the DOM until the Runs script has replaced them, so wait for
            # the Runs page's caption (only it counts rows "of N") before looking at its table.
            page.wait_for_url("**/runs", timeout=WAIT_MS)
            expect(page.get_by_text(f"of {n_runs:,}", exact=False).first).to_be_visible(timeout=WAIT_MS)
            settle(page)
            expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=WAIT_MS)
            assert page.locator(EXCEPTION).count() == 0
            shot(page, "demo-runs")
            page.goto(f"{base}/run?run={run_id}")
            expect(page.locator('[data-testid="stCode"]').first).to_have_text(run_id, timeout=WAIT_MS)
            settle(page)
            assert page.locator(EXCEPTION).count() == 0
            expect(page.get_by_text(agent).first).to_be_visible()
            shot(page, "demo-run")
        finally:
            ctx.close()
