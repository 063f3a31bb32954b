"""The weekly review pack: sections computed from the store, the default week, numbers equal to the library's,
no data, offline and escaped output, golden files, the CLI and the Overview's button.

Golden files (tests/golden/weekly-pack.md and .html) are the pack of the session's demo fleet with a fixed
clock. To regenerate them after an intended change: `WORKBENCH_REGEN_GOLDEN=1 pytest tests/test_review_pack.py`,
then review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from streamlit.testing.v1 import AppTest

from tests.test_pages import APP, no_errors
from workbench import analytics, labels
from workbench.cli import main
from workbench.queries import RunFilter
from workbench.review_pack import DEFAULT_BASE_URL, METRICS, weekly_pack
from workbench.review_pack_render import headline_lines
from workbench.store import Store

GOLDEN = Path(__file__).resolve().parent / "golden"
NOW = datetime(2026, 11, 16, 9, 0)
EVIL_SCRIPT = "<script>alert(1)</script>"
EVIL_MARKDOWN = "a | b\n| c ` d ![x](http://127.0.0.1:9/x.png) [y](javascript:alert(2))"
EVIL_RUN_ID = "evil|`<b>run</b>"
NEW_ANSWER = "Per the zeta shard embeddings, refunds for quantum vouchers settle within ninety fortnights."
N_NEW = 8


@pytest.fixture(scope="module")
def demo_copy(demo_db, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pack") / "demo.duckdb"
    shutil.copyfile(demo_db, path)
    return path


@pytest.fixture(scope="module")
def base_pack(demo_copy):
    with Store(demo_copy) as s:
        return weekly_pack(s, now=NOW)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _latest_day(store: Store) -> date:
    return store.sql("SELECT max(started_at)::DATE FROM runs").fetchone()[0]


# -- planting a change in a copy of the store ---------------------------------------------------------------
_RUN = ("run_id", "format", "native_id", "agent", "agent_version", "task_id", "started_at", "ended_at",
        "duration_ms", "status", "outcome", "input", "output", "error", "n_steps", "n_llm_calls", "n_tool_calls",
        "n_errors", "input_tokens", "output_tokens", "cost_usd", "cost_estimated")
_STEP = ("run_id", "step_id", "parent_step_id", "seq", "depth", "kind", "name", "started_at", "duration_ms",
         "status", "error", "tool_name", "tool_args", "tool_result")


def _plant_failures(store: Store, monday: date) -> list[str]:
    """N_NEW failed runs of a failure the demo never has, in the given week, plus one costly run whose id and
    texts are hostile; returns the new failures' ids."""
    ids = [f"newfail{i:09d}" for i in range(N_NEW)]
    runs, steps = [], []
    for i, run_id in enumerate([*ids, EVIL_RUN_ID]):
        evil = run_id == EVIL_RUN_ID
        start = datetime.combine(monday, datetime.min.time()) + timedelta(days=1 + i % 5, hours=3 + i)
        error = f"{EVIL_SCRIPT} {EVIL_MARKDOWN}" if evil else None
        answer = EVIL_MARKDOWN if evil else NEW_ANSWER
        runs.append((run_id, "otlp", f"native-{i}", "support-agent", "v2", "support.kb", start,
                     start + timedelta(seconds=4), 4000.0, "error" if evil else "ok", "failure",
                     "Find the refund policy", answer, error, 2, 0, 1, 0, 100, 10, 5.0 if evil else 0.004 + 0.0001 * i,
                     True))
        steps += [(run_id, "s0", None, 0, 0, "agent", "invoke_agent support-agent", start, 4000.0, "ok", None,
                   None, None, None),
                  (run_id, "s1", "s0", 1, 1, "tool", "execute_tool vector_quota", start + timedelta(seconds=1),
                   500.0, "ok", None, "vector_quota", '{"shard": "zeta"}', '{"remaining": 0}')]
    with store.transaction() as cur:
        cur.executemany(f"INSERT INTO runs ({', '.join(_RUN)}) VALUES ({', '.join('?' * len(_RUN))})", runs)
        cur.executemany(f"INSERT INTO steps ({', '.join(_STEP)}) VALUES ({', '.join('?' * len(_STEP))})", steps)
    return ids


@pytest.fixture(scope="module")
def changed(demo_db, tmp_path_factory):
    """A copy of the demo where last week gained a new kind of failure, two reviewers disagree on a run (with a
    hostile note), and a cheap failure carries a critical label; (store, pack, planted ids, labeled run)."""
    path = tmp_path_factory.mktemp("pack-changed") / "demo.duckdb"
    shutil.copyfile(demo_db, path)
    store = Store(path)
    monday = _monday(_latest_day(store))
    planted = _plant_failures(store, monday)
    week = RunFilter(date_from=monday, date_to=monday + timedelta(days=6))
    failed = labels.run_ids(store, week, failures_only=True)
    cheapest = store.sql("SELECT run_id FROM runs WHERE list_contains($ids, run_id) AND NOT starts_with(run_id, "
                         "'newfail') AND run_id <> $evil ORDER BY cost_usd, run_id LIMIT 1",
                         {"ids": failed, "evil": EVIL_RUN_ID}).fetchone()[0]
    labels.add_label(store, cheapest, "tool.wrong_tool", "ana", severity="critical", note=EVIL_MARKDOWN)
    labels.add_label(store, cheapest, "control.loop", "ben", note=EVIL_SCRIPT)
    yield store, weekly_pack(store, now=NOW), planted, cheapest
    store.close()


# -- sections follow the data -------------------------------------------------------------------------------
def test_a_new_failure_mode_shows_up_as_a_new_cluster(changed, base_pack):
    _, pack, planted, _ = changed
    new = pack.clusters[pack.clusters["change"] == "new"]
    mine = new[[set(ex) <= set(planted) and len(ex) > 0 for ex in new["examples"]]]
    assert len(mine) == 1, pack.clusters[["change", "name", "size", "examples"]]
    assert mine.iloc[0]["size"] == N_NEW and mine.iloc[0]["delta"] == N_NEW
    assert pack.n_failures == base_pack.n_failures + N_NEW + 1
    assert len(pack.unlabeled) == len(base_pack.unlabeled) + N_NEW  # + the evil run, - `cheapest` (labeled)
    assert not any(set(ex) & set(planted) for ex in base_pack.clusters["examples"])
    # ... and the suggested actions name it, with a link to one of its runs
    action = pack.actions[pack.actions["action"].str.contains(mine.iloc[0]["name"], regex=False)]
    assert len(action) == 1 and action.iloc[0]["link"].split("run=")[1] in planted


def test_a_second_reviewer_makes_an_open_disagreement_until_settled(changed, base_pack):
    store, pack, _, cheapest = changed
    assert base_pack.disagreements.empty
    open_ = pack.disagreements.set_index(["run_id", "code"])
    # ana says wrong tool, ben says loop: both codes are disputed
    assert set(open_.index) == {(cheapest, "tool.wrong_tool"), (cheapest, "control.loop")}
    assert open_.loc[(cheapest, "tool.wrong_tool"), "yes_by"] == "ana"
    assert open_.loc[(cheapest, "tool.wrong_tool"), "no_by"] == "ben"
    assert open_.loc[(cheapest, "control.loop"), "this_week"]
    assert any("Settle the 2 open disagreement" in a for a in pack.actions["action"])
    labels.settle(store, cheapest, "control.loop", False, "chair")
    labels.settle(store, cheapest, "tool.wrong_tool", True, "chair")
    assert weekly_pack(store, now=NOW).disagreements.empty


def test_the_most_severe_failure_comes_first(changed, base_pack):
    _, pack, _, cheapest = changed
    assert pack.top_failures.iloc[0]["run_id"] == cheapest
    assert pack.top_failures.iloc[0]["severity"] == "critical"
    assert cheapest not in set(base_pack.top_failures["run_id"])  # it is there for its label, not its cost
    rest = pack.top_failures.iloc[1:]
    assert list(rest["cost_usd"]) == sorted(rest["cost_usd"], reverse=True)


def test_default_week_is_the_week_of_the_latest_run(demo_copy, base_pack):
    with Store(demo_copy, read_only=True) as s:
        latest = _latest_day(s)
    assert base_pack.week_start == _monday(latest) and base_pack.week_start.weekday() == 0
    assert base_pack.label == f"{latest.isocalendar()[0]}-W{latest.isocalendar()[1]:02d}"
    assert base_pack.last_week_start == base_pack.week_start - timedelta(days=7)


def test_figures_equal_service_levels_of_each_weeks_filter(demo_copy, base_pack):
    with Store(demo_copy) as s:
        for column, start in (("this_week", base_pack.week_start), ("last_week", base_pack.last_week_start)):
            flt = RunFilter(date_from=start, date_to=start + timedelta(days=6))
            direct = analytics.service_levels(s, flt).compare().set_index("metric")["this_week"]
            got = base_pack.service.set_index("metric")[column]
            for m in analytics.SERVICE_METRICS:
                assert got[m] == pytest.approx(float(direct[m])), (column, m)
            n = s.sql("SELECT count(*) FROM runs WHERE started_at >= $a AND started_at < $b",
                      {"a": start, "b": start + timedelta(days=7)}).fetchone()[0]
            assert got["runs"] == n
            assert got["cost"] == pytest.approx(analytics.waste(s, flt)["total_usd"])
            agent = analytics.service_levels(s, flt.model_copy(update={"agent": ("coding-agent",)}))
            row = base_pack.by_agent.set_index("agent").loc["coding-agent"]
            suffix = "" if column == "this_week" else "_last"
            assert row[f"success_rate{suffix}"] == pytest.approx(
                float(agent.compare().set_index("metric").loc["success_rate", "this_week"]))
    service = base_pack.service.set_index("metric")
    assert list(service.index) == list(METRICS)
    assert service.loc["success_rate", "change"] == pytest.approx(
        service.loc["success_rate", "this_week"] - service.loc["success_rate", "last_week"])


def test_an_earlier_week_is_reviewed_against_its_own_previous_week(demo_copy, base_pack):
    earlier = base_pack.week_start - timedelta(days=5)  # a Wednesday of the week before
    with Store(demo_copy) as s:
        pack = weekly_pack(s, earlier, now=NOW)
    assert pack.week_start == base_pack.last_week_start
    assert pack.service.set_index("metric").loc["runs", "this_week"] == \
        base_pack.service.set_index("metric").loc["runs", "last_week"]


def test_an_empty_store_gives_a_no_data_pack(store, tmp_path):
    pack = weekly_pack(store, now=NOW)
    assert not pack.has_data and pack.week_start == _monday(NOW.date())
    md, page = pack.write(tmp_path)
    assert md.name == "weekly-review-2026-W47.md" and page.name == "weekly-review-2026-W47.html"
    for text in (md.read_text(), page.read_text()):
        assert "There is no data" in text
    sections = pack.sections()
    assert {n for n, frame in sections.items() if len(frame)} == {"service", "waste"}  # one row per metric
    assert (sections["service"][["this_week", "last_week"]].fillna(0) == 0).all().all()
    assert (sections["waste"][["this_week", "last_week"]] == 0).all().all()
    assert headline_lines(pack)[-1].startswith("no data")


# -- the files ----------------------------------------------------------------------------------------------
def test_golden_files(base_pack, tmp_path):
    md, page = base_pack.write(tmp_path)
    for path, golden in ((md, GOLDEN / "weekly-pack.md"), (page, GOLDEN / "weekly-pack.html")):
        if os.environ.get("WORKBENCH_REGEN_GOLDEN"):
            golden.write_bytes(path.read_bytes())
        assert path.read_bytes() == golden.read_bytes(), golden.name


_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "nav", "section", "h1", "h2", "h3", "p", "a",
         "table", "thead", "tbody", "tr", "th", "td", "div", "b", "span", "figure", "figcaption", "svg",
         "polyline", "circle"}


class _Markup(HTMLParser):
    """Tags, attributes and stylesheet text of a page (text content is not markup, whatever it says)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str]] = []
        self.css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs += [(k, v or "") for k, v in attrs]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.css.append(data)


def _assert_offline(page: str, base_url: str) -> None:
    """Nothing in the page's markup can load anything: known tags only, no source or event attributes, links
    only to the page's own anchors and the app's run pages, no url() or @import in the stylesheet."""
    markup = _Markup()
    markup.feed(page)
    assert markup.tags <= _TAGS, markup.tags - _TAGS
    names = {k for k, _ in markup.attrs}
    assert not names & {"src", "srcset", "style", "action", "formaction", "data", "xlink:href", "background"}
    assert not any(n.startswith("on") for n in names)
    hrefs = [v for k, v in markup.attrs if k == "href"]
    assert hrefs and all(h.startswith(("#", base_url + "/")) for h in hrefs), hrefs
    css = "".join(markup.css).lower()
    assert "url(" not in css and "@import" not in css


def test_html_has_no_external_references(base_pack):
    page = base_pack.to_html()
    _assert_offline(page, DEFAULT_BASE_URL)
    # the demo's texts hold no address: every one in the file, text included, is a run link or the app's
    assert all(u.startswith(DEFAULT_BASE_URL) for u in re.findall(r"https?://[^\s\"'<>]+", page))
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert page.count(f'href="{DEFAULT_BASE_URL}/run?run=') >= len(base_pack.top_failures)
    assert "Content-Security-Policy" in page and "<svg" in page


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_hostile_text_is_escaped_in_both_formats(changed):
    _, pack, _, _ = changed
    assert pack.top_failures.iloc[1]["run_id"] == EVIL_RUN_ID  # the costliest: shown, and in the actions
    assert pack.cost_outliers.iloc[0]["run_id"] == EVIL_RUN_ID
    assert (pack.disagreements["notes"].str.contains(EVIL_MARKDOWN.split("\n")[0], regex=False)).any()
    page = pack.to_html()
    _assert_offline(page, DEFAULT_BASE_URL)
    assert EVIL_SCRIPT not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>run</b>" not in page and "run?run=evil%7C%60%3Cb%3Erun%3C%2Fb%3E" in page
    md = pack.to_markdown()
    # no HTML tag, image or link from the text: each opening character is escaped
    assert not re.search(r"(?<!\\)<", md) and not re.search(r"(?<!\\)\[(x|y)\\?\]", md)
    assert r"\<script\>alert(1)\</script\>" in md and r"\!\[x\](http://127.0.0.1:9/x.png)" in md
    # every row of every table has as many cell borders as its header: nothing broke out of a cell
    blocks = re.split(r"\n(?!\|)", md)
    for block in (b for b in blocks if b.startswith("|")):
        rows = block.splitlines()
        assert len({_unescaped_pipes(r) for r in rows}) == 1, block
        assert not any(re.search(r"(?<!\\)`", r) for r in rows), block
    assert not any(line.startswith("| c ") for line in md.splitlines())


# -- CLI and the Overview's button --------------------------------------------------------------------------
def test_cli_writes_both_files_and_prints_the_headline(demo_copy, base_pack, tmp_path):
    res = CliRunner().invoke(main, ["pack", "--db", str(demo_copy), "--out", str(tmp_path / "out"),
                                    "--week", str(base_pack.week_start + timedelta(days=3)),
                                    "--base-url", "https://review.example.org/wb/"])
    assert res.exit_code == 0, res.output
    md = tmp_path / "out" / f"weekly-review-{base_pack.label}.md"
    html = md.with_suffix(".html")
    assert str(md) in res.output and str(html) in res.output
    for line in headline_lines(base_pack):
        assert line in res.output
    assert "https://review.example.org/wb/run?run=" in html.read_text()
    bad = CliRunner().invoke(main, ["pack", "--db", str(demo_copy), "--week", "last tuesday"])
    assert bad.exit_code == 2 and "--week takes a date" in bad.output


def test_overview_button_builds_the_pack_for_download(demo_copy, base_pack, monkeypatch):
    monkeypatch.setenv("WORKBENCH_DB", str(demo_copy))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    no_errors(at)
    assert at.selectbox(key="pack.week").value == base_pack.week_start  # the latest week by default
    assert not at.download_button
    at.button(key="pack.build").click().run()
    no_errors(at)
    assert [b.label for b in at.download_button] == ["Download HTML", "Download Markdown"]
    shown = next(t.value for t in at.text if t.value.startswith("week "))
    assert shown.splitlines() == headline_lines(base_pack)
