"""The weekly review pack opened from disk in a real browser with the network cut: it renders every section
and asks for nothing. The fixture's runs carry hostile text (a script tag, a Markdown image at an outside URL).

A screenshot lands in test-artifacts/browser-weekly-pack.png.
"""

from __future__ import annotations

import pytest

from tests import browser_util as bu

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]
bu.require_browser()

from playwright.sync_api import expect  # noqa: E402

from workbench.review_pack import weekly_pack  # noqa: E402
from workbench.store import Store  # noqa: E402

SECTIONS = ["1. Service levels", "2. New and growing failure clusters", "3. Top failures",
            "4. Cost outliers and waste", "5. Open disagreements", "6. Unlabeled failures", "7. Action items"]


def test_the_pack_opens_offline(tmp_path):
    db = bu.build_sample_db(tmp_path / "wb.duckdb")
    with Store(db) as s:
        evil = next(r for r in bu.sample_runs() if r["run_id"] == bu.EVIL_RUN_ID)
        pack = weekly_pack(s, evil["started_at"].date())  # the week of the hostile run
        _, page_path = pack.write(tmp_path / "pack")
    assert bu.EVIL_RUN_ID in set(pack.top_failures["run_id"])  # the hostile run is on the page

    requested: list[str] = []
    aborted: list[str] = []
    dialogs: list[str] = []
    with bu.chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.on("request", lambda req: requested.append(req.url))

        def only_files(route):
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                aborted.append(route.request.url)
                route.abort()

        context.route("**/*", only_files)
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        expect(page.locator("h1")).to_have_text(f"Weekly review {pack.label}")
        assert page.locator("h2").all_inner_texts() == SECTIONS
        for title in SECTIONS:
            expect(page.get_by_role("heading", name=title)).to_be_visible()
        assert page.locator("section#service svg circle").count() == len(pack.trend) * 3  # three sparklines
        links = page.locator("a[href*='/run?run=']")
        assert links.count() > 0
        assert all(h.startswith(pack.base_url) for h in links.evaluate_all("els => els.map(e => e.href)"))
        # the hostile text is on the page as text
        expect(page.get_by_text("<script>alert(1)</script>").first).to_be_attached()
        page.wait_for_timeout(300)
        bu.ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(bu.ARTIFACTS / "browser-weekly-pack.png"), full_page=True)
        context.close()
    assert dialogs == []
    assert aborted == []
    assert [u for u in requested if not u.startswith("file:")] == []
    assert requested == [page_path.as_uri()]
