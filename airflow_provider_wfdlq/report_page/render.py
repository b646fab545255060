"""The page as one HTML file: inline CSS, inline SVG, no script, nothing fetched.

Every text that comes from the data is escaped (``html.escape``): workflow URLs, dlqIds
and response bodies come from the DLQ, and a response body is hostile input."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

from airflow_provider_wfdlq.report_page import svg
from airflow_provider_wfdlq.report_page.data import Figure, PageData

CSS: Final = """
:root { --ink:#1d2433; --muted:#5b6474; --line:#e3e6ec; --card:#fff; --bg:#f4f6f9;
  --ok:#1a7f4b; --bad:#c62f2f; --warn:#b7791f; --found:#8a94a6; --bar:#3b6fd8; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif; }
main { max-width:1180px; margin:0 auto; padding:24px 28px 40px; }
header { display:flex; align-items:baseline; gap:16px; flex-wrap:wrap; margin-bottom:6px; }
h1 { font-size:24px; margin:0; font-weight:650; }
h2 { font-size:15px; margin:0 0 10px; font-weight:650; }
.pill { display:inline-block; padding:2px 10px; border-radius:999px; font-size:13px;
  font-weight:600; color:#fff; }
.pill.ok { background:var(--ok); } .pill.bad { background:var(--bad); }
.pill.none { background:var(--found); }
.sub { color:var(--muted); font-size:13px; }
.banner { border-radius:8px; padding:10px 14px; margin:14px 0; }
.banner.bad { background:#fdecec; border:1px solid #f3b9b9; }
.banner.note { background:#fff8e6; border:1px solid #f0dca8; }
.banner ul { margin:4px 0 0; padding-left:20px; }
.figures { display:grid; grid-template-columns:repeat(auto-fit,minmax(140px,1fr));
  gap:12px; margin:18px 0; }
.figure { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:12px 14px; }
.figure .value { font-size:30px; font-weight:700; line-height:1.1; }
.figure .label { color:var(--muted); font-size:13px; text-transform:uppercase;
  letter-spacing:.04em; }
.figure .note { color:var(--muted); font-size:12px; margin-top:2px; }
.figure.recovered .value { color:var(--ok); } .figure.failed_again .value { color:var(--bad); }
.figure.still_running .value { color:var(--warn); }
.figure.zero .value { color:var(--muted); }
.grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(480px,1fr)); gap:0 14px;
  align-items:start; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:14px 16px; margin-bottom:14px; overflow:hidden; }
.card.wide { grid-column:1/-1; }
svg { display:block; max-width:100%; height:auto; }
svg text { font:13px system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
  fill:var(--ink); }
svg .tick { fill:var(--muted); font-size:11px; } svg .value { fill:var(--muted); }
svg .bar { fill:var(--bar); } svg .bar.found { fill:var(--found); }
svg .recovered { fill:var(--ok); } svg .failed_again { fill:var(--bad); }
svg .still_running { fill:var(--warn); } svg .canceled { fill:#7d6bb3; }
svg .resumed { fill:var(--found); } svg .axis { stroke:var(--line); }
svg .mark:hover .bar, svg .mark:hover .seg { opacity:.8; }
.legend { display:flex; gap:14px; flex-wrap:wrap; font-size:12px; color:var(--muted);
  margin-top:8px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px;
  margin-right:5px; vertical-align:-1px; }
.legend .recovered { background:var(--ok); } .legend .failed_again { background:var(--bad); }
.legend .still_running { background:var(--warn); } .legend .canceled { background:#7d6bb3; }
.legend .found { background:var(--found); }
.verdicts { list-style:none; margin:0; padding:0; }
.verdicts li { padding:6px 0; border-top:1px solid var(--line); font-size:14px; }
.verdicts li:first-child { border-top:0; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th { text-align:left; color:var(--muted); font-weight:600; border-bottom:2px solid var(--line);
  padding:6px 8px; }
td { border-bottom:1px solid var(--line); padding:6px 8px; vertical-align:top; }
code, pre { font:12px/1.4 ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace; }
pre { margin:0; white-space:pre-wrap; word-break:break-all; max-height:7.5em; overflow:auto;
  background:#f7f8fa; padding:4px 6px; border-radius:4px; }
.empty { color:var(--muted); font-style:italic; }
footer { color:var(--muted); font-size:12px; margin-top:18px; }
"""


def _n(value: int | None) -> str:
    return "not known" if value is None else f"{value:,}"


def _when(ms: int | None) -> str:
    if ms is None:
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _figure(item: Figure) -> str:
    value = "" if item.value is None else str(item.value)
    zero = " zero" if item.value == 0 else ""
    return (
        f'<div class="figure {escape(item.key)}{zero}" data-figure="{escape(item.key)}" '
        f'data-value="{escape(value)}"><div class="label">{escape(item.label)}</div>'
        f'<div class="value">{escape(_n(item.value))}</div>'
        f'<div class="note">{escape(item.note)}</div></div>'
    )


def _card(title: str, body: str, *, wide: bool = False, section: str = "") -> str:
    cls = "card wide" if wide else "card"
    return (
        f'<section class="{cls}" data-section="{escape(section)}">'
        f"<h2>{escape(title)}</h2>{body}</section>"
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="legend">'
        + "".join(f'<span><i class="{escape(c)}"></i>{escape(t)}</span>' for c, t in items)
        + "</div>"
    )


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _table(table: str, head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table of already escaped cells."""
    return (
        f'<table data-table="{escape(table)}"><thead><tr>'
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        + "</tbody></table>"
    )


def _charts(data: PageData) -> str:
    out = []
    out.append(
        _card(
            "Failed runs by workflow URL",
            svg.bars("by_url", data.by_url, by_url=True, label="Failed runs by workflow URL")
            if data.by_url
            else _empty("no entries"),
            section="by_url",
        )
    )
    out.append(
        _card(
            "Failed runs by the status the failed step answered",
            svg.bars("by_status", data.by_status, label="Failed runs by status")
            if data.by_status
            else _empty("no entries"),
            section="by_status",
        )
    )
    outcome = (
        svg.outcome_bars("outcomes", data.outcomes, label="Resumed runs by outcome")
        + _legend(svg.SEGMENTS)
        if data.outcomes
        else _empty(data.outcomes_note or "nothing was resumed")
    )
    if data.outcomes and data.outcomes_note:
        outcome += f'<p class="sub">{escape(data.outcomes_note)}</p>'
    out.append(
        _card("Resumed runs: what became of them, by workflow URL", outcome, section="outcomes")
    )
    trend = svg.history_bars("history", data.history, label="Found and recovered per night")
    trend += _legend((("found", "found"), ("recovered", "recovered")))
    if len(data.history) < 2:
        trend += '<p class="sub">Earlier nights show here once their summaries are beside.</p>'
    out.append(_card(f"The last {len(data.history)} night(s)", trend, section="history"))
    return '<div class="grid">' + "".join(out) + "</div>"


def _safety(data: PageData) -> str:
    items = [
        f'<li data-verdict="{escape(v.name)}">'
        f'<span class="pill {"none" if v.ok is None else "ok" if v.ok else "bad"}">'
        f"{escape(v.name)}</span> {escape(v.text)}</li>"
        for v in data.verdicts
    ]
    items += [
        f'<li data-paused="{escape(key)}"><span class="pill bad">paused</span> '
        f"flow-control key <code>{escape(key)}</code>: resume it in Upstash once the "
        "cause is fixed</li>"
        for key in data.paused
    ]
    body = (
        f'<ul class="verdicts">{"".join(items)}</ul>'
        if items
        else _empty("no canary or circuit breaker in this recovery")
    )
    return _card("Canary and circuit breaker", body, section="safety")


def _failed(data: PageData) -> str:
    rows = [
        (
            f"<code>{escape(f.new_dlq_id)}</code> &larr; <code>{escape(f.resumed_from)}</code>",
            escape(f.url),
            escape(f.status),
            f"<pre>{escape(f.body)}</pre>"
            if f.body
            else '<span class="empty">not looked up</span>',
        )
        for f in data.failed
    ]
    more = len(data.failed) < data.failed_total
    body = (
        _table("failed", ("new dlqId \u2190 resumed from", "workflow URL", "status", "body"), rows)
        if rows
        else _empty("no run failed again")
    )
    if more:
        shown = f"{len(data.failed)} of {data.failed_total} shown"
        body += f'<p class="sub">{shown}; the summary file has the rest.</p>'
    return _card(
        f"Failed again ({data.failed_total}): back in the DLQ as new entries",
        body,
        wide=True,
        section="failed",
    )


def _expiring(data: PageData) -> str:
    rows = [
        (
            f"<code>{escape(e.dlq_id)}</code>",
            escape(_when(e.expires_at)),
            escape(e.why.replace("_", " ")),
            escape(e.url),
        )
        for e in data.expiring
    ]
    body = (
        _table("expiring", ("dlqId", "expires", "left because", "workflow URL"), rows)
        if rows
        else _empty("nothing left in the DLQ expires before the next run")
    )
    if data.expiring_total > len(rows):
        shown = f"{len(rows)} of {data.expiring_total} shown"
        body += f'<p class="sub">{shown}; the JSON-lines report names every one.</p>'
    return _card(
        f"Expiring before the next run ({data.expiring_total})", body, wide=True, section="expiring"
    )


def _skipped(data: PageData) -> str:
    """The skip reasons, every other count of the resume, then what housekeeping did."""
    if not data.skipped and not data.other and not data.housekeeping:
        return ""
    rows = [(escape("skipped: " + b.key.replace("_", " ")), str(b.value)) for b in data.skipped]
    rows += [(escape(b.key.replace("_", " ")), str(b.value)) for b in data.other]
    rows += [
        (escape("housekeeping: " + b.key.replace("_", " ")), str(b.value))
        for b in data.housekeeping
    ]
    return _card(
        "Skipped by reason, and the other counts",
        _table("counts", ("count", "entries"), rows),
        section="counts",
    )


def render(data: PageData, sources: Sequence[str] = ()) -> str:
    """The whole page."""
    status = (
        '<span class="pill ok" data-status="ok">recovered as planned</span>'
        if data.ok
        else '<span class="pill bad" data-status="problems">needs a look</span>'
    )
    banners = ""
    if data.problems:
        banners += (
            '<div class="banner bad" data-problems><strong>Problems</strong><ul>'
            + "".join(f"<li>{escape(p)}</li>" for p in data.problems)
            + "</ul></div>"
        )
    if data.notes:
        banners += (
            '<div class="banner note"><strong>Notes</strong><ul>'
            + "".join(f"<li>{escape(n)}</li>" for n in data.notes)
            + "</ul></div>"
        )
    made_from = ", ".join(f"<code>{escape(s)}</code>" for s in sources)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # Nothing on this page may load anything or run anything.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape(data.title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{escape(data.title)}</h1>{status}</header>"
        + (
            f'<div class="sub">Night of {escape(data.night)}</div>'
            if data.night not in data.title
            else ""
        )
        + banners
        + '<div class="figures">'
        + "".join(_figure(f) for f in data.figures)
        + "</div>"
        + _charts(data)
        + '<div class="grid">'
        + _safety(data)
        + _skipped(data)
        + "</div>"
        + _failed(data)
        + _expiring(data)
        + (
            f"<footer>Made from {made_from}; everything shown comes from these files.</footer>"
            if sources
            else ""
        )
        + "</main></body></html>\n"
    )
