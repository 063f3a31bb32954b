"""Import through a real browser: `workbench serve` on an empty database, files picked in the uploader.

Screenshots: test-artifacts/browser-import*.png.
"""

from __future__ import annotations

import pytest

from tests import browser_util as bu
from tests import otlp_builder as ob
from tests.test_browser import EXCEPTION, WAIT_MS, settle, shot  # skips this module too without a browser
from workbench.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

from playwright.sync_api import expect, sync_playwright  # noqa: E402


def test_upload_through_the_page(tmp_path):
    db = tmp_path / "db" / "wb.duckdb"
    db.parent.mkdir()
    Store(db).close()  # an empty database, as after `workbench serve` on a new file
    good = tmp_path / "good trace.jsonl"
    ob.write_jsonl(good, [ob.request(ob.agent_trace(ob.trace_id(1)))])  # 1 run of 5 spans (root, 2 llm, 2 tool)
    broken = tmp_path / "broken.jsonl"
    ob.write_jsonl(broken, [ob.request(ob.agent_trace(ob.trace_id(2))), '{"resourceSpans": [oops'])

    with bu.served_app(db, bu.free_port()) as base, sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=bu.CHROMIUM, args=bu.CHROMIUM_ARGS)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{base}/import")
            expect(page.get_by_role("heading", name="Import")).to_be_visible(timeout=WAIT_MS)
            settle(page)
            expect(page.get_by_text("Nothing imported yet.")).to_be_visible()

            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files([good, broken])
            expect(page.get_by_text("broken.jsonl").first).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("button", name="Import uploaded files").click()
            # the last element of the page: history and its rejects are drawn once the import is over
            expect(page.get_by_text("Rejects of import")).to_be_visible(timeout=WAIT_MS)
            settle(page)
            assert page.locator(EXCEPTION).count() == 0
            # metrics: files, runs, steps, rejects (2 runs of 5 steps; line 2 of broken.jsonl rejected)
            metric = page.locator('[data-testid="stMetricValue"]')
            for i, want in enumerate(["2", "2", "10", "1"]):
                expect(metric.nth(i)).to_have_text(want)
            expect(page.get_by_text("2 of 2 files")).to_be_visible()
            expect(page.get_by_text("Rejects of broken.jsonl", exact=False).first).to_be_visible()
            grids = page.locator('[data-testid="stDataFrame"]')
            # results, rejects of the last import, history, rejects in history (grids mount a moment later)
            expect(grids).to_have_count(4, timeout=WAIT_MS)
            # the grids draw on a canvas; their accessible twin (hidden, so text_content) holds the cells, once
            # each grid has laid itself out
            for i in range(4):
                expect(grids.nth(i).locator('[data-testid^="glide-cell-"]').first).to_be_attached(timeout=WAIT_MS)
            cells = " ".join(page.locator('[data-testid^="glide-cell-"]').all_text_contents())
            assert "good_trace.jsonl" in cells and "line 2" in cells and '{"resourceSpans": [oops' in cells
            shot(page, "import", height=2200)

            # the runs are in the store the app serves: the Overview counts them
            page.locator('[data-testid="stSidebarNav"] a', has_text="Overview").click()
            # the Import page has metrics of its own: wait for the Overview's first one, "Runs"
            expect(page.locator('[data-testid="stMetricLabel"]').first).to_have_text("Runs", timeout=WAIT_MS)
            settle(page)
            assert page.locator('[data-testid="stMetricValue"]').first.inner_text().strip() == "2"
        finally:
            chromium.close()
    uploads = sorted(p.name for p in (db.parent / "uploads").rglob("*.jsonl"))
    assert uploads == ["broken.jsonl", "good_trace.jsonl"]
