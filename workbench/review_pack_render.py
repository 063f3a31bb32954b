"""A `ReviewPack` as a neutral document (sections of paragraphs, tables and chart data), rendered here as
Markdown and in `workbench.review_pack_html` as HTML, so both formats say the same thing.

Every value from the store (agent names, run ids, cluster names, notes, errors) is untrusted: Markdown
backslash-escapes the characters that would open a link, an image, HTML, code or a new table cell, and folds
newlines, so trace text cannot break out of its cell.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

from workbench.review_pack import METRICS, RATE_METRICS, ReviewPack
from workbench.review_pack_findings import OUTLIER_RULE

CELL_CHARS = 200
"""Characters of one text cell; an error message can run to pages."""
LIST_ROWS = 20
UNLABELED_ROWS = 5
BLANK_ACTION_ROWS = 3


# -- the neutral document -----------------------------------------------------------------------------------
@dataclass
class Cell:
    text: str
    href: str | None = None
    css: str = ""
    """better / worse (coloured in HTML)."""
    links: list[tuple[str, str]] = field(default_factory=list)
    """Several links in one cell (text, href), shown after `text`."""


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]
    numeric: set[int] = field(default_factory=set)
    """Columns aligned right."""


@dataclass
class Section:
    anchor: str
    title: str
    blocks: list[tuple[str, object]]
    """("p", text), ("h3", text), ("table", Table), ("glance", [(label, value, note)]) and ("trend",
    [series of `_series`], drawn in HTML only: the week-by-week table says the same)."""


# -- numbers ------------------------------------------------------------------------------------------------
def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _pct(v) -> str:
    return "–" if _missing(v) else f"{v * 100:.1f}%"


def _usd(v) -> str:
    if _missing(v):
        return "–"
    if v == 0:
        return "$0"
    return f"${v:,.0f}" if abs(v) >= 100 else f"${v:,.2f}" if abs(v) >= 1 else f"${v:.4f}"


def _ms(v) -> str:
    if _missing(v):
        return "–"
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if abs(v) >= size:
            return f"{v / size:.1f} {unit}"
    return f"{v:.0f} ms"


def _int(v) -> str:
    return "–" if _missing(v) else f"{int(v):,}"


def _signed(fmt):
    def out(v) -> str:
        if _missing(v):
            return "–"
        return ("+" if v >= 0 else "-") + fmt(abs(v))
    return out


def _pts(v) -> str:
    return "–" if _missing(v) else f"{round(v * 100, 1) + 0.0:+.1f} pts"  # + 0.0: no "-0.0"


_NAMES = {"runs": "Runs", "success_rate": "Success rate", "human_share": "Needed a human",
          "cost_per_success": "Cost per success", "p50_ms": "p50 duration", "p95_ms": "p95 duration",
          "p99_ms": "p99 duration", "error_rate": "Error rate", "retry_rate": "Retry rate", "cost": "Total cost"}


def _fmt(metric: str):
    if metric in RATE_METRICS:
        return _pct, _pts
    if metric.endswith("_ms"):
        return _ms, _signed(_ms)
    if metric in ("cost", "cost_per_success"):
        return _usd, _signed(_usd)
    return _int, lambda v: "–" if _missing(v) else f"{int(v):+,}"


def _day(v) -> str:
    return "–" if _missing(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")


def _text(v) -> str:
    s = "" if _missing(v) else str(v)
    return s if len(s) <= CELL_CHARS else s[:CELL_CHARS - 1] + "…"


_ARROWS = {"up": "▲", "down": "▼", "flat": "="}


# -- sections -----------------------------------------------------------------------------------------------
def _selection(pack: ReviewPack) -> str:
    f = pack.filter
    parts = [f"{name}: {', '.join(values)}" for name, values in (
        ("agent", f.agent), ("version", f.agent_version), ("outcome", f.outcome), ("status", f.status),
        ("format", f.format)) if values]
    if f.text:
        parts.append(f"text: {f.text}")
    return "; ".join(parts) or "all runs"


def _run_cell(pack: ReviewPack, run_id) -> Cell:
    return Cell(str(run_id), href=pack.run_link(run_id))


def _glance(pack: ReviewPack) -> list[tuple[str, str, str]]:
    s = pack.service.set_index("metric")
    pairs = []
    for m in ("runs", "success_rate", "cost_per_success", "p95_ms"):
        value, delta = _fmt(m)
        pairs.append((_NAMES[m], value(s.loc[m, "this_week"]), f"{delta(s.loc[m, 'change'])} vs last week"))
    pairs += [("New / growing clusters", f"{pack.cluster_changes['new']} / {pack.cluster_changes['growing']}",
               f"{pack.n_failures} failed runs"),
              ("Unlabeled failures", _int(len(pack.unlabeled)), f"{_int(pack.unlabeled_backlog)} in all weeks"),
              ("Open disagreements", _int(len(pack.disagreements)), "between reviewers")]
    return pairs


def _service_section(pack: ReviewPack) -> Section:
    s = pack.service.set_index("metric")
    blocks: list[tuple[str, object]] = [("glance", _glance(pack))]
    runs_now, runs_last = s.loc["runs", "this_week"], s.loc["runs", "last_week"]
    blocks.append(("p", f"This week {pack.week_start} to {pack.week_end}: {_int(runs_now)} runs; last week "
                        f"{pack.last_week_start} to {pack.last_week_end}: "
                        f"{_int(runs_last)} runs. Success rate counts runs with a known outcome; cost per success "
                        "is all cost, failures included, over successes."))
    if not runs_now:
        blocks.append(("p", "No runs this week."))
    rows = []
    for m in METRICS:
        value, delta = _fmt(m)
        direction, verdict = s.loc[m, "direction"], s.loc[m, "assessment"]
        rows.append([Cell(_NAMES[m]), Cell(value(s.loc[m, "this_week"])), Cell(value(s.loc[m, "last_week"])),
                     Cell(delta(s.loc[m, "change"])),
                     Cell(f"{_ARROWS.get(direction, '')} {verdict}".strip(), css=verdict)])
    blocks.append(("table", Table(["Metric", "This week", "Last week", "Change", "Direction"], rows, {1, 2, 3})))
    if len(pack.trend) > 1:
        blocks.append(("trend", [_series(pack.trend, m) for m in ("success_rate", "cost_per_success", "p95_ms")]))
    blocks += _agent_blocks(pack) + _trend_blocks(pack) + _drift_blocks(pack)
    return Section("service", "1. Service levels", blocks)


def _series(trend: pd.DataFrame, metric: str) -> tuple[str, list[tuple[str, float | None, str]]]:
    """(title, [(week, value, value as text)]) of one metric week by week: what a chart draws."""
    value = _fmt(metric)[0]
    return f"{_NAMES[metric]} by week", [(str(w), None if _missing(v) else float(v), value(v))
                                         for w, v in zip(trend["week"], trend[metric], strict=True)]


def _agent_blocks(pack: ReviewPack) -> list[tuple[str, object]]:
    if pack.by_agent.empty:
        return []
    shown = ("runs", "success_rate", "cost_per_success", "p95_ms", "error_rate", "cost")
    rows = []
    for _, r in pack.by_agent.iterrows():
        cells = [Cell(_text(r["agent"]))]
        for m in shown:
            value, delta = _fmt(m)
            cells.append(Cell(f"{value(r[m])} ({delta(r[f'{m}_change'])})"))
        rows.append(cells)
    header = ["Agent", *[_NAMES[m] for m in shown]]
    return [("h3", "By agent (this week, change against last week)"),
            ("table", Table(header, rows, set(range(1, len(header)))))]


def _trend_blocks(pack: ReviewPack) -> list[tuple[str, object]]:
    rows = [[Cell(str(r["week"])), Cell(_int(r["runs"])), Cell(_pct(r["success_rate"])),
             Cell(_usd(r["cost_per_success"])), Cell(_ms(r["p95_ms"])), Cell(_usd(r["cost"]))]
            for _, r in pack.trend.iterrows()]
    if not rows:
        return []
    header = ["Week of", "Runs", "Success rate", "Cost per success", "p95 duration", "Total cost"]
    return [("h3", "Week by week"), ("table", Table(header, rows, {1, 2, 3, 4, 5}))]


def _drift_blocks(pack: ReviewPack) -> list[tuple[str, object]]:
    if pack.drift.empty:
        return [("h3", "Drift check"), ("p", "Not tested: one of the two weeks has no runs.")]
    n_sig = int(pack.drift["significant"].sum())
    rows = []
    for _, d in pack.drift.iterrows():
        fmt = _pct if d["metric"] == "success rate" else _ms if d["metric"].startswith("latency") else \
            _usd if d["metric"].startswith("cost") else _text
        rows.append([Cell(d["metric"]), Cell(fmt(d["a"])), Cell(fmt(d["b"])), Cell(d["test"]),
                     Cell(f"{d['p_adjusted']:.2g}"), Cell("yes" if d["significant"] else "no")])
    return [("h3", "Drift check"),
            ("p", f"{n_sig} significant change(s) between last week and this week after a Holm correction "
                  "over these tests (alpha 0.05)."),
            ("table", Table(["Metric", "Last week", "This week", "Test", "Adjusted p", "Significant"], rows,
                            {1, 2, 4}))]


def _cluster_section(pack: ReviewPack) -> Section:
    c = pack.cluster_changes
    blocks: list[tuple[str, object]] = [(
        "p", f"{pack.n_failures} failed runs this week ({pack.n_failures_last} last week), clustered week by week "
             f"and matched: {c['new']} new, {c['growing']} growing, {c['shrinking']} shrinking, {c['gone']} gone, "
             f"{c['steady']} steady. Growing: the cluster's failures per 1,000 runs rose by a quarter or more.")]
    if pack.n_failures == 0:
        blocks.append(("p", "No failed runs this week."))
    elif pack.clusters.empty:
        blocks.append(("p", "No new or growing clusters this week."))
    else:
        rows = [[Cell(r["change"]), Cell(_text(r["name"])), Cell(_int(r["size"])), Cell(f"{r['delta']:+d}"),
                 Cell(_pct(r["share"])), Cell(f"{r['rate_before']:.1f} → {r['rate_after']:.1f}"),
                 Cell(_usd(r["cost_usd"])), Cell("", links=[(x, pack.run_link(x)) for x in r["examples"]])]
                for _, r in pack.clusters.iterrows()]
        header = ["Change", "Cluster", "Failed runs", "Change in runs", "Share of failures",
                  "Per 1,000 runs (last → this)", "Cost", "Typical runs"]
        blocks.append(("table", Table(header, rows, {2, 3, 4, 5, 6})))
    return Section("clusters", "2. New and growing failure clusters", blocks)


def _failure_table(pack: ReviewPack, frame: pd.DataFrame, severity: bool) -> Table:
    rows = []
    for _, r in frame.iterrows():
        extra = [Cell(_text(r["severity"]) or "–"), Cell(_text(r["labels"]) or "–")] if severity else []
        rows.append([_run_cell(pack, r["run_id"]), Cell(_text(r["agent"])), Cell(_text(r["agent_version"])),
                     Cell(_day(r["started_at"])), Cell(_usd(r["cost_usd"])), *extra,
                     Cell(_text(r["cluster_name"])), Cell(_text(r["what_happened"]))])
    header = ["Run", "Agent", "Version", "Started (UTC)", "Cost", *(["Severity", "Labels"] if severity else []),
              "Cluster", "What happened"]
    return Table(header, rows, {4})


def _top_section(pack: ReviewPack) -> Section:
    if pack.top_failures.empty:
        return Section("failures", "3. Top failures", [("p", "No failed runs this week.")])
    return Section("failures", "3. Top failures", [
        ("p", f"This week's failed runs, the most severe reviewer label first, then the most costly "
              f"({len(pack.top_failures)} of {pack.n_failures}). Each run opens on the app's Replay page."),
        ("table", _failure_table(pack, pack.top_failures, severity=True))])


def _cost_section(pack: ReviewPack) -> Section:
    blocks: list[tuple[str, object]] = [("p", f"Rule: {OUTLIER_RULE}.")]
    out = pack.cost_outliers
    if out.empty:
        blocks.append(("p", "No cost outliers this week."))
    else:
        shown = f"; the {LIST_ROWS} most extreme" if len(out) > LIST_ROWS else ", most extreme first"
        blocks.append(("p", f"{len(out)} run(s) flagged this week{shown}."))
        rows = [[_run_cell(pack, r["run_id"]), Cell(_text(r["agent"])), Cell(_text(r["agent_version"])),
                 Cell(_text(r["outcome"])), Cell(_usd(r["cost_usd"])), Cell(_usd(r["median_usd"])),
                 Cell(f"{r['times_median']:.1f}x"), Cell(f"{r['robust_z']:.1f}")]
                for _, r in out.head(LIST_ROWS).iterrows()]
        blocks.append(("table", Table(["Run", "Agent", "Version", "Outcome", "Cost", "Agent's median",
                                       "Times median", "Modified z"], rows, {4, 5, 6, 7})))
    rows = [[Cell(r["item"]), Cell(_usd(r["this_week"])), Cell(_usd(r["last_week"])),
             Cell(_signed(_usd)(r["change"]))] for _, r in pack.waste.iterrows()]
    blocks += [("h3", "Waste: money that bought nothing"),
               ("table", Table(["Spend", "This week", "Last week", "Change"], rows, {1, 2, 3}))]
    return Section("costs", "4. Cost outliers and waste", blocks)


def _disagreement_section(pack: ReviewPack) -> Section:
    d = pack.disagreements
    if d.empty:
        return Section("disagreements", "5. Open disagreements", [
            ("p", "No open disagreements between reviewers.")])
    rows = [[_run_cell(pack, r["run_id"]), Cell(_text(r["code"])), Cell(_text(r["yes_by"])),
             Cell(_text(r["no_by"])), Cell(_text(r["notes"])), Cell(_text(r["agent"])),
             Cell(_day(r["started_at"])), Cell("yes" if r["this_week"] else "no")]
            for _, r in d.head(LIST_ROWS).iterrows()]
    return Section("disagreements", "5. Open disagreements", [
        ("p", f"{len(d)} label(s) reviewers voted differently on and nobody has settled, any week "
              f"({int(d['this_week'].sum())} on this week's runs); settle them on the Labels page. "
              f"Newest runs first{f', {LIST_ROWS} shown' if len(d) > LIST_ROWS else ''}."),
        ("table", Table(["Run", "Label", "Applies (by)", "Does not apply (by)", "Notes", "Agent",
                         "Started (UTC)", "This week"], rows))])


def _unlabeled_section(pack: ReviewPack) -> Section:
    u = pack.unlabeled
    blocks: list[tuple[str, object]] = [(
        "p", f"{len(u)} of {pack.n_failures} failed runs this week have no reviewer's label; "
             f"{pack.unlabeled_backlog} unlabeled failed runs in all weeks.")]
    if pack.n_failures == 0:
        blocks.append(("p", "No failed runs this week."))
    elif u.empty:
        blocks.append(("p", "Every failed run of this week has a reviewer's label."))
    else:
        costly = u.assign(_c=u["cost_usd"].fillna(-1.0)).sort_values(["_c", "run_id"], ascending=[False, True])
        blocks += [("h3", "Oldest"), ("table", _failure_table(pack, u.head(UNLABELED_ROWS), severity=False)),
                   ("h3", "Most expensive"),
                   ("table", _failure_table(pack, costly.head(UNLABELED_ROWS), severity=False))]
    if len(pack.progress):
        rows = [[Cell(_text(r["reviewer"])), Cell(_int(r["assigned"])), Cell(_int(r["assigned_done"])),
                 Cell(_int(r["labeled"]))] for _, r in pack.progress.iterrows()]
        blocks += [("h3", "Reviewers"),
                   ("table", Table(["Reviewer", "Assigned", "Assigned and labeled", "Labeled in all"], rows,
                                   {1, 2, 3}))]
    return Section("unlabeled", "6. Unlabeled failures", blocks)


def _action_section(pack: ReviewPack) -> Section:
    a = pack.actions
    intro = ("Suggested from the data above; fill in owner and due date, and add the meeting's own."
             if len(a) else "Nothing in the data calls for an action this week; add the meeting's own items.")
    rows = [[Cell(str(i + 1)), Cell(_text(r["action"])), Cell(_text(r["why"])),
             Cell("open", href=r["link"]) if r["link"] else Cell(""), Cell(""), Cell("")]
            for i, (_, r) in enumerate(a.iterrows())]
    rows += [[Cell(str(len(a) + i + 1)), Cell(""), Cell(""), Cell(""), Cell(""), Cell("")]
             for i in range(BLANK_ACTION_ROWS)]
    return Section("actions", "7. Action items", [
        ("p", intro), ("table", Table(["#", "Action", "Why", "Link", "Owner", "Due"], rows))])


def headline_lines(pack: ReviewPack) -> list[str]:
    """The pack's headline figures as plain lines (what `workbench pack` prints)."""
    lines = [f"week {pack.label}: {pack.week_start} to {pack.week_end}, against {pack.last_week_start} to "
             f"{pack.last_week_end}"]
    if not pack.has_data:
        return [*lines, "no data: the store holds no runs for this selection"]
    s = pack.service.set_index("metric")
    for m in ("runs", "success_rate", "cost_per_success", "p95_ms", "cost"):
        value, delta = _fmt(m)
        lines.append(f"{_NAMES[m].lower()}: {value(s.loc[m, 'this_week'])} (last week {value(s.loc[m, 'last_week'])},"
                     f" {delta(s.loc[m, 'change'])})")
    c = pack.cluster_changes
    lines += [f"failed runs: {pack.n_failures} (last week {pack.n_failures_last}); clusters: {c['new']} new, "
              f"{c['growing']} growing",
              f"cost outliers: {len(pack.cost_outliers)}",
              f"unlabeled failures: {len(pack.unlabeled)} this week ({pack.unlabeled_backlog} in all weeks)",
              f"open disagreements: {len(pack.disagreements)}",
              f"action items suggested: {len(pack.actions)}"]
    return lines


def document(pack: ReviewPack) -> tuple[str, list[str], list[Section]]:
    """(title, lines under the title, sections) of a pack."""
    title = f"Weekly review {pack.label}"
    meta = [f"Week of Monday {pack.week_start} to Sunday {pack.week_end}, against the week of "
            f"{pack.last_week_start}.",
            f"Selection: {_selection(pack)}. Generated {pack.generated_at:%Y-%m-%d %H:%M} UTC; run links open "
            f"{pack.base_url}."]
    if not pack.has_data:
        return title, meta, [Section("nodata", "No data", [(
            "p", "There is no data: the store holds no runs for this selection, so there is nothing to review. "
                 "Load trace files (workbench ingest PATH) or build the demo (workbench demo), then build the "
                 "pack again.")])]
    return title, meta, [_service_section(pack), _cluster_section(pack), _top_section(pack),
                         _cost_section(pack), _disagreement_section(pack), _unlabeled_section(pack),
                         _action_section(pack)]


# -- Markdown -----------------------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|!~&#])")


def md_escape(text: str) -> str:
    """One line of plain Markdown text: newlines become spaces; characters that would start code, emphasis,
    a link or image, HTML, an entity or a new table cell are backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s*[\r\n]+\s*", " ", text))


def _md_url(url: str) -> str:
    return re.sub(r"[\s()<>]", lambda m: f"%{ord(m.group()):02X}", url)


def _md_cell(cell: Cell) -> str:
    text = f"[{md_escape(cell.text)}]({_md_url(cell.href)})" if cell.href else md_escape(cell.text)
    links = ", ".join(f"[{md_escape(t)}]({_md_url(h)})" for t, h in cell.links)
    return " ".join(p for p in (text, links) if p) or " "


def _md_table(t: Table) -> list[str]:
    lines = ["| " + " | ".join(md_escape(h) for h in t.header) + " |",
             "| " + " | ".join("---:" if i in t.numeric else "---" for i in range(len(t.header))) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
    return lines


def render_markdown(pack: ReviewPack) -> str:
    title, meta, sections = document(pack)
    lines = [f"# {md_escape(title)}", "", *[md_escape(m) + "  " for m in meta], ""]
    for s in sections:
        lines += [f"## {md_escape(s.title)}", ""]
        for kind, body in s.blocks:
            if kind == "p":
                lines += [md_escape(body), ""]
            elif kind == "h3":
                lines += [f"### {md_escape(body)}", ""]
            elif kind == "table":
                lines += [*_md_table(body), ""]
            elif kind == "glance":
                lines += [*(f"- **{md_escape(k)}**: {md_escape(v)} ({md_escape(sub)})" for k, v, sub in body), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


