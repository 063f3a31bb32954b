"""The maturity scorecard as Markdown and as one self-contained HTML page with an inline SVG radar.

The HTML opens offline: inline CSS, an SVG drawn here (no script, no web font, no external reference). Agent
names and formats in the scope come from trace files and the framework's texts from a team's file, so every
string is escaped (html.escape in HTML; Markdown's special characters and HTML's in Markdown). Coordinates are
rounded to 0.1 so the same assessment always gives the same bytes.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.maturity import Assessment

PRIORITY_RULE = "priority = risk × impact / effort"


def _md(value: object) -> str:
    """Text for Markdown (table cells included): Markdown's specials backslash-escaped, HTML's as entities."""
    text = str(value).replace("\\", "\\\\")
    for ch in "`*_[]|#":
        text = text.replace(ch, "\\" + ch)
    return html.escape(text, quote=False).replace("\n", " ")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _when(a: Assessment) -> str:
    return f"{a.taken_at:%Y-%m-%d %H:%M} UTC"


def _scope_lines(a: Assessment) -> tuple[str, str]:
    """(evidence line, agents line) in plain text, unescaped."""
    s = a.scope
    if not s.get("runs"):
        return "Evidence: the store holds no runs.", ""
    period = f" from {s['first_run'][:10]} to {s['last_run'][:10]}" if s.get("first_run") else ""
    agents = ", ".join(s["agents"]) + (f" and {s['more_agents']} more" if s.get("more_agents") else "")
    return (f"Evidence: {s['runs']:,} runs{period} · formats: {', '.join(s['formats'])}", f"Agents: {agents}")


def _previous_line(a: Assessment) -> str:
    if a.previous is None:
        return "No earlier snapshot of this name: no movement to show."
    return f"Compared with the snapshot of {a.previous.taken_at:%Y-%m-%d %H:%M} UTC ({a.previous.assessment_id})."


# -- Markdown -----------------------------------------------------------------------------------------------
def to_markdown(a: Assessment) -> str:
    """The scorecard as Markdown: levels, reasons, remediation, evidence and answers."""
    evidence, agents = _scope_lines(a)
    moved = a.previous is not None
    out = [f"# Maturity scorecard: {_md(a.name)}", "",
           f"Taken {_when(a)} · framework {_md(a.framework_name)} {_md(a.framework_version)} · "
           f"assessment {a.assessment_id}", "", _md(_previous_line(a)), "", _md(evidence)]
    if agents:
        out += ["", _md(agents)]
    out += ["", "## Levels", "", "| Dimension | Level |" + (" Since last |" if moved else "") + " Evidence |",
            "|---|---|" + ("---|" if moved else "") + "---|"]
    for d in a.results:
        out.append(f"| {_md(d.name)} | {d.level} {_md(d.level_name)} |" + (f" {d.movement} |" if moved else "")
                   + f" {d.evidence} |")
    out += ["", "## Why each level, and what would raise it", ""]
    for d in a.results:
        out += [f"### {_md(d.name)}: level {d.level} ({_md(d.level_name)})", "",
                f"- Why: {_md(d.reason)}", f"- To raise: {_md(d.to_raise)}", ""]
    out += [f"## Remediation ({PRIORITY_RULE})", ""]
    if a.actions:
        out += ["| # | Dimension | Action | Progress shown by | Now | Target | Risk | Impact | Effort | Priority |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        out += [f"| {r.rank} | {_md(r.dimension_name)} → {r.target_level} | {_md(r.action)} | `{r.evidence}` "
                f"{_md(r.label)} | {_md(r.current)} | {_md(r.target)} | {r.risk} | {r.impact} | {r.effort} | "
                f"{r.priority:g} |" for r in a.actions]
    else:
        out.append("Every dimension is at level 5.")
    out += ["", "## Evidence measured in the store", "", "| Metric | Value | What it is |", "|---|---|---|"]
    out += [f"| `{e.name}` | {_md(e.shown)} | {_md(e.label)} |" for e in a.evidence]
    out += ["", "## Questionnaire", "", "| Question | Answer |", "|---|---|"]
    out += [f"| {_md(text)} | {_md(a.answers.get(qid, 'not answered'))} |" for qid, text in a.questions.items()]
    return "\n".join(out) + "\n"


# -- radar --------------------------------------------------------------------------------------------------
def _point(cx: float, cy: float, radius: float, i: int, n: int) -> tuple[float, float]:
    angle = -math.pi / 2 + 2 * math.pi * i / n
    return cx + radius * math.cos(angle), cy + radius * math.sin(angle)


def _points(cx: float, cy: float, radii: list[float]) -> str:
    n = len(radii)
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in (_point(cx, cy, r, i, n) for i, r in enumerate(radii)))


def radar_svg(labels: list[str], levels: list[int], previous: list[int | None] | None = None) -> str:
    """An SVG radar of levels 1-5 per dimension; `previous` (when given) is drawn as a dashed second polygon."""
    width, height, cx, cy, r = 560, 400, 280.0, 200.0, 140.0
    n = len(labels)
    parts = [f'<svg viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="Maturity radar" font-family="sans-serif" font-size="12">']
    for ring in range(1, 6):
        parts.append(f'<polygon points="{_points(cx, cy, [r * ring / 5] * n)}" fill="none" stroke="#d0d0d0"/>')
        parts.append(f'<text x="{cx + 3:.1f}" y="{cy - r * ring / 5 - 2:.1f}" fill="#888" font-size="10">{ring}</text>')
    for i, label in enumerate(labels):
        x, y = _point(cx, cy, r, i, n)
        parts.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="#d0d0d0"/>')
        lx, ly = _point(cx, cy, r + 14, i, n)
        dx = lx - cx
        anchor = "middle" if abs(dx) < 1 else ("start" if dx > 0 else "end")
        parts.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="{anchor}">{_e(label)}</text>')
    if previous is not None and any(p is not None for p in previous):
        radii = [r * (p or 0) / 5 for p in previous]
        parts.append(f'<polygon points="{_points(cx, cy, radii)}" fill="none" stroke="#757575" '
                     'stroke-width="2" stroke-dasharray="6 4"><title>previous snapshot</title></polygon>')
    parts.append(f'<polygon points="{_points(cx, cy, [r * v / 5 for v in levels])}" fill="#1976d2" '
                 'fill-opacity="0.25" stroke="#1976d2" stroke-width="2"><title>this assessment</title></polygon>')
    for i, v in enumerate(levels):
        x, y = _point(cx, cy, r * v / 5, i, n)
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="#1976d2"/>')
    parts.append("</svg>")
    return "\n".join(parts)


# -- HTML ---------------------------------------------------------------------------------------------------
_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1f1f1f;padding:0 1rem;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555;margin:.2rem 0}.top{display:flex;flex-wrap:wrap;gap:1.5rem;align-items:flex-start}
table{border-collapse:collapse;font-size:.92rem}th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;
vertical-align:top}th{background:#f5f5f5}.lvl{font-weight:600;white-space:nowrap}
.up{color:#2e7d32}.down{color:#c62828}.same{color:#757575}.dim{margin:1rem 0}.dim p{margin:.2rem 0}
.legend{color:#555;font-size:.9rem}code{background:#f3f3f3;padding:0 .2rem}"""


def _movement_cell(movement: str) -> str:
    css = "up" if movement.endswith("↑") else "down" if movement.endswith("↓") else "same"
    return f'<td class="{css}">{_e(movement)}</td>'


def _table(head: list[str], rows: list[list[str]]) -> str:
    """A table whose cells are already-escaped HTML."""
    header = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def to_html(a: Assessment) -> str:
    """The scorecard as one HTML page with no external reference."""
    moved = a.previous is not None
    evidence, agents = _scope_lines(a)
    radar = radar_svg([d.name for d in a.results], [d.level for d in a.results],
                      [d.previous_level for d in a.results] if moved else None)
    legend = ("solid: this assessment · dashed: previous snapshot" if moved else "solid: this assessment")
    levels = _table(["Dimension", "Level"] + (["Since last"] if moved else []) + ["Evidence"], [
        [_e(d.name), f'<td class="lvl">{d.level} {_e(d.level_name)}</td>']
        + ([_movement_cell(d.movement)] if moved else []) + [_e(d.evidence)] for d in a.results])
    dims = "".join(f'<div class="dim"><h3>{_e(d.name)}: level {d.level} ({_e(d.level_name)})</h3>'
                   f"<p><b>Why:</b> {_e(d.reason)}</p><p><b>To raise:</b> {_e(d.to_raise)}</p></div>"
                   for d in a.results)
    actions = _table(["#", "Dimension", "Action", "Progress shown by", "Now", "Target", "Risk", "Impact", "Effort",
                      "Priority"], [
        [str(r.rank), f"{_e(r.dimension_name)} → {r.target_level}", _e(r.action),
         f"<code>{_e(r.evidence)}</code> {_e(r.label)}", _e(r.current), _e(r.target), str(r.risk), str(r.impact),
         str(r.effort), f"{r.priority:g}"] for r in a.actions]) if a.actions else "<p>Every dimension is at level 5.</p>"
    measured = _table(["Metric", "Value", "What it is"],
                      [[f"<code>{_e(e.name)}</code>", _e(e.shown), _e(e.label)] for e in a.evidence])
    answers = _table(["Question", "Answer"],
                     [[_e(text), _e(a.answers.get(qid, "not answered"))] for qid, text in a.questions.items()])
    title = f"Maturity scorecard: {a.name}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>
{_CSS}
</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="meta">Taken {_e(_when(a))} · framework {_e(a.framework_name)} {_e(a.framework_version)} · assessment {_e(a.assessment_id)}</p>
<p class="meta">{_e(_previous_line(a))}</p>
<p class="meta">{_e(evidence)}</p>
{f'<p class="meta">{_e(agents)}</p>' if agents else ""}
<div class="top">
<div>{radar}<p class="legend">{legend}</p></div>
<div>{levels}</div>
</div>
<h2>Why each level, and what would raise it</h2>
{dims}
<h2>Remediation ({_e(PRIORITY_RULE)})</h2>
{actions}
<h2>Evidence measured in the store</h2>
{measured}
<h2>Questionnaire</h2>
{answers}
</body>
</html>
"""
