"""A `ReviewPack` as one self-contained HTML page that opens offline.

Inline CSS and inline SVG drawn here; no script, font, image or stylesheet from anywhere, and a
Content-Security-Policy that forbids loading any, should something slip in. Every value from the store is
escaped (html.escape); the only links are the page's own anchors and the app's run pages.
"""

from __future__ import annotations

import html

from workbench.review_pack import ReviewPack
from workbench.review_pack_render import Cell, Table, document


# -- charts -------------------------------------------------------------------------------------------------
def _sparkline(title: str, series: list[tuple[str, float | None, str]], width: int = 220, height: int = 56) -> str:
    """A weekly line with a dot per week (its value in a tooltip), the reviewed week marked."""
    points = [(i, v, w, text) for i, (w, v, text) in enumerate(series) if v is not None]
    if not points:
        return ""
    lo, hi = min(p[1] for p in points), max(p[1] for p in points)
    pad, n = 6, max(len(series) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad + i * (width - 2 * pad) / n, height - pad - (v - lo) / ((hi - lo) or 1) * (height - 2 * pad)

    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v, _, _ in points))
    dots = "".join(_dot(*xy(i, v), i == len(series) - 1, f"{w}: {text}") for i, v, w, text in points)
    last = points[-1]
    return (f'<figure class="spark"><svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{html.escape(title)}"><polyline points="{line}"/>{dots}</svg>'
            f'<figcaption>{html.escape(title)}: {html.escape(last[3])} '
            f'(week of {html.escape(last[2])})</figcaption></figure>')


def _dot(x: float, y: float, now: bool, tip: str) -> str:
    mark = ' r="3.5" class="now"' if now else ' r="2"'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}"{mark}><title>{html.escape(tip)}</title></circle>'


# -- HTML ---------------------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;margin:0 auto;
max-width:1180px;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #d0d7de;
padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}.meta{color:#57606a;margin:2px 0}
nav{margin:12px 0;display:flex;flex-wrap:wrap;gap:6px 14px}nav a{color:#0969da;text-decoration:none}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}th,td{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top;overflow-wrap:break-word}td a{white-space:nowrap}th{background:#f6f8fa}td.num,th.num{text-align:right;
white-space:nowrap}td.better{color:#1a7f37;font-weight:600}td.worse{color:#cf222e;font-weight:600}
a{color:#0969da}.glance{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 12px}.card{border:1px solid #d0d7de;
border-radius:6px;padding:8px 12px;min-width:140px}.card b{display:block;font-size:20px}.card span{color:#57606a;
font-size:12px}.charts{display:flex;flex-wrap:wrap;gap:18px}.spark{margin:0}.spark polyline{fill:none;
stroke:#0969da;stroke-width:1.5}.spark circle{fill:#0969da}.spark circle.now{fill:#cf222e}
.spark figcaption{font-size:12px;color:#57606a}#actions td{height:1.6em}
@media print{nav{display:none}body{padding:0}a{color:inherit}}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def _html_cell(cell: Cell, numeric: bool) -> str:
    css = " ".join(c for c in ("num" if numeric else "", cell.css) if c)
    text = html.escape(cell.text)
    if cell.href:
        text = f'<a href="{html.escape(cell.href, quote=True)}">{text}</a>'
    links = ", ".join(f'<a href="{html.escape(h, quote=True)}">{html.escape(t)}</a>' for t, h in cell.links)
    body = " ".join(p for p in (text, links) if p)
    return f'<td class="{css}">{body}</td>' if css else f"<td>{body}</td>"


def _html_table(t: Table) -> str:
    head = "".join(f'<th class="num">{html.escape(h)}</th>' if i in t.numeric else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(t.header))
    body = "".join("<tr>" + "".join(_html_cell(c, i in t.numeric) for i, c in enumerate(row)) + "</tr>"
                   for row in t.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_block(kind: str, body) -> str:
    if kind == "p":
        return f"<p>{html.escape(body)}</p>"
    if kind == "h3":
        return f"<h3>{html.escape(body)}</h3>"
    if kind == "table":
        return _html_table(body)
    if kind == "trend":
        return f'<div class="charts">{"".join(_sparkline(title, series) for title, series in body)}</div>'
    cards = "".join(f"<div class=\"card\">{html.escape(k)}<b>{html.escape(v)}</b><span>{html.escape(sub)}</span></div>"
                    for k, v, sub in body)
    return f'<div class="glance">{cards}</div>'


def render_html(pack: ReviewPack) -> str:
    title, meta, sections = document(pack)
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1>", *(f'<p class="meta">{html.escape(m)}</p>' for m in meta),
        f"<nav>{nav}</nav></header>",
    ]
    for s in sections:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>')
        parts += [_html_block(kind, body) for kind, body in s.blocks]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"
