"""Charts as SVG text, drawn on the server: no script, no network, nothing to load.

Each chart is an ``<svg data-chart="...">``; each mark (a bar, a row of stacked bars, a
night) is a ``<g class="mark">`` with ``data-key`` (and ``data-url`` for charts by workflow
URL) and ``data-value``, so tests and readers can find it. Every text is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from airflow_provider_wfdlq.report_page.data import Bar, Night, Outcomes

WIDTH: Final = 540
ROW: Final = 28
BAR: Final = 18
LABEL_CHARS: Final = 40
#: About how wide a label character is at the charts' font size (px).
CHAR_PX: Final = 7.6
#: Segment colours of the outcome bars (also the legend), by CSS class.
SEGMENTS: Final = (
    ("recovered", "recovered"),
    ("failed_again", "failed again"),
    ("still_running", "still running"),
    ("canceled", "canceled"),
)


def _a(value: object) -> str:
    return escape(str(value), quote=True)


def short(text: str, limit: int = LABEL_CHARS) -> str:
    """A label that fits: the start and the end of a long URL, an ellipsis between."""
    text = text.removeprefix("https://").removeprefix("http://")
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "\u2026" + text[-(limit - 1 - head) :]


def _svg(chart: str, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg data-chart="{_a(chart)}" role="img" aria-label="{_a(label)}" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'xmlns="http://www.w3.org/2000/svg">' + "".join(body) + "</svg>"
    )


def _scale(biggest: int, room: float) -> float:
    return room / biggest if biggest > 0 else 0.0


def _label_room(keys: Sequence[str]) -> int:
    """Room for the longest (shortened) label, between 40 and 300 px."""
    longest = max((len(short(key)) for key in keys), default=0)
    return int(min(max(longest * CHAR_PX + 14, 40), 300))


def bars(chart: str, items: Sequence[Bar], *, by_url: bool = False, label: str = "") -> str:
    """Horizontal bars, one row per item, the value at the end of the bar."""
    left, right = _label_room([b.key for b in items]), 48
    scale = _scale(max((b.value for b in items), default=0), WIDTH - left - right)
    body = []
    for i, item in enumerate(items):
        y = 4 + i * ROW
        width = max(item.value * scale, 1.5 if item.value else 0)
        url = f' data-url="{_a(item.key)}"' if by_url else ""
        body.append(
            f'<g class="mark" data-key="{_a(item.key)}"{url} data-value="{item.value}">'
            f"<title>{escape(item.key)}: {item.value}</title>"
            f'<text class="label" x="{left - 8}" y="{y + BAR - 3}" text-anchor="end">'
            f"{escape(short(item.key))}</text>"
            f'<rect class="bar" x="{left}" y="{y}" width="{width:.1f}" height="{BAR}" rx="3"/>'
            f'<text class="value" x="{left + width + 6:.1f}" y="{y + BAR - 3}">{item.value}</text>'
            "</g>"
        )
    return _svg(chart, 8 + len(items) * ROW, body, label or chart)


def outcome_bars(chart: str, rows: Sequence[Outcomes], label: str = "") -> str:
    """One stacked bar per workflow URL: recovered, failed again, still running, canceled
    (a bar with no known outcome is drawn as resumed only)."""
    left, right = _label_room([r.url for r in rows]), 78
    scale = _scale(max((r.resumed for r in rows), default=0), WIDTH - left - right)
    body = []
    for i, row in enumerate(rows):
        y = 4 + i * ROW
        parts = [
            (cls, getattr(row, cls) or 0) for cls, _ in SEGMENTS if row.recovered is not None
        ] or [("resumed", row.resumed)]
        x = float(left)
        segs = []
        for cls, n in parts:
            if n:
                segs.append(
                    f'<rect class="seg {cls}" data-segment="{cls}" data-value="{n}" x="{x:.1f}" '
                    f'y="{y}" width="{n * scale:.1f}" height="{BAR}"/>'
                )
                x += n * scale
        tip = ", ".join(f"{n} {cls.replace('_', ' ')}" for cls, n in parts)
        summary = (
            f"{row.recovered}/{row.resumed} ok" if row.recovered is not None else f"{row.resumed}"
        )
        body.append(
            f'<g class="mark" data-key="{_a(row.url)}" data-url="{_a(row.url)}" '
            f'data-value="{row.resumed}">'
            f"<title>{escape(row.url)}: {row.resumed} resumed; {escape(tip)}</title>"
            f'<text class="label" x="{left - 8}" y="{y + BAR - 3}" text-anchor="end">'
            f"{escape(short(row.url))}</text>"
            + "".join(segs)
            + f'<text class="value" x="{x + 6:.1f}" y="{y + BAR - 3}">{summary}</text></g>'
        )
    return _svg(chart, 8 + len(rows) * ROW, body, label or chart)


def history_bars(chart: str, nights: Sequence[Night], label: str = "") -> str:
    """Found and recovered per night, side by side, oldest on the left."""
    height, top, bottom, left = 180, 14, 24, 36
    room = height - top - bottom
    biggest = max((max(n.found or 0, n.recovered or 0) for n in nights), default=0)
    scale = _scale(biggest, room)
    slot = (WIDTH - left - 8) / max(len(nights), 1)
    bar = min(14.0, slot / 2 - 3)
    base = top + room
    body = [
        f'<line class="axis" x1="{left}" y1="{base}" x2="{WIDTH - 4}" y2="{base}"/>',
        f'<text class="tick" x="{left - 6}" y="{top + 4}" text-anchor="end">{biggest}</text>',
        f'<text class="tick" x="{left - 6}" y="{base}" text-anchor="end">0</text>',
    ]
    for i, night in enumerate(nights):
        x = left + i * slot + slot / 2
        found, recovered = night.found or 0, night.recovered or 0
        body.append(
            f'<g class="mark" data-key="{_a(night.night)}" data-night="{_a(night.night)}" '
            f'data-value="{found}">'
            f"<title>{escape(night.night)}: {_n(night.found)} found, "
            f"{_n(night.recovered)} recovered</title>"
            f'<rect class="bar found" x="{x - bar - 1:.1f}" y="{base - found * scale:.1f}" '
            f'width="{bar:.1f}" height="{found * scale:.1f}"/>'
            f'<rect class="bar recovered" x="{x + 1:.1f}" y="{base - recovered * scale:.1f}" '
            f'width="{bar:.1f}" height="{recovered * scale:.1f}"/>'
            f'<text class="tick" x="{x:.1f}" y="{base + 14}" text-anchor="middle">'
            f"{escape(night.night[-5:])}</text></g>"
        )
    return _svg(chart, height, body, label or chart)


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)
