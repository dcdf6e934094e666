"""Inline SVG charts for the run report: no JavaScript, no CDN, so the page opens anywhere, offline, years later.

Every data mark carries the class `mark` (the browser test counts them). With no data a chart says so in words
instead of drawing an empty frame. Values are floats only for drawing; the figures printed are the exact ones.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 16, 40
MAX_X_LABELS = 8
LABEL_CHARS = 48
"""Characters per line of a wrapped bar label."""
CHAR_WIDTH = 6.5
"""About how wide a character of the 11 px labels draws; labels that would collide are slanted instead."""
SLANT_ROOM = 60
"""Extra height under a chart whose group labels are slanted."""
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


def line_chart(title: str, x_labels: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """One line per series over shared x labels (e.g. days)."""
    if not x_labels or not series:
        return _empty(title)
    values = [v for points in series.values() for v in points]
    ticks = nice_ticks(min(0.0, *values), max(0.0, *values), whole=all(v == int(v) for v in values))
    low, high = ticks[0], ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(x_labels) - 1)

    def y(value: float) -> float:
        return TOP + plot_h - (value - low) / ((high - low) or 1.0) * plot_h

    parts = _axes(ticks, y)
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{LEFT + i * step:.1f},{y(v):.1f}" for i, v in enumerate(points))
        parts.append(
            f'<polyline class="mark" fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        parts.append(_legend(index, name, colour))
    every = max(1, -(-len(x_labels) // MAX_X_LABELS))
    parts += _x_labels(x_labels, lambda i: LEFT + i * step, every=every)
    return _svg(title, parts)


def bar_chart(title: str, bars: Sequence[tuple[str, float]]) -> str:
    """Horizontal bars, one per label (e.g. rejected rows by reason); long labels wrap instead of being cut."""
    if not bars:
        return _empty(title)
    label_w, plot_w = 330, WIDTH - 330 - 80
    top = max(v for _, v in bars) or 1.0
    parts = []
    y = TOP
    for label, value in bars:
        lines = _wrapped(label, LABEL_CHARS)
        row = max(26, 14 * len(lines) + 12)
        width = max(1.0, value / top * plot_w)
        first = y + row / 2 - 7 * (len(lines) - 1) + 4
        spans = "".join(
            f'<tspan x="{label_w - 8}" y="{first + 14 * i:.1f}">{escape(line)}</tspan>' for i, line in enumerate(lines)
        )
        parts.append(f'<text text-anchor="end">{spans}</text>')
        parts.append(
            f'<rect class="mark" x="{label_w}" y="{y + row / 2 - 9:.1f}" width="{width:.1f}" height="18" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {_number(value)}</title></rect>'
        )
        parts.append(f'<text x="{label_w + width + 6:.1f}" y="{y + row / 2 + 4:.1f}">{_number(value)}</text>')
        y += row
    return _svg(title, parts, height=int(y + BOTTOM))


def grouped_bar_chart(title: str, groups: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Vertical bars: for each group (e.g. a landing), one bar per series (e.g. requests, retries)."""
    if not groups or not series:
        return _empty(title)
    values = [v for points in series.values() for v in points]
    ticks = nice_ticks(0.0, max(0.0, *values), whole=True)
    high = ticks[-1] or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(groups)
    bar = max(2.0, slot * 0.8 / len(series))

    def y(value: float) -> float:
        return TOP + plot_h - value / high * plot_h

    parts = _axes(ticks, y)
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        for group, value in enumerate(points):
            x = LEFT + group * slot + slot * 0.1 + index * bar
            height = max(1.0, TOP + plot_h - y(value)) if value > 0 else 0.0
            if height:
                parts.append(
                    f'<rect class="mark" x="{x:.1f}" y="{TOP + plot_h - height:.1f}" width="{bar:.1f}" '
                    f'height="{height:.1f}" fill="{colour}"><title>{escape(groups[group])} · {escape(name)}: '
                    f"{_number(value)}</title></rect>"
                )
        parts.append(_legend(index, name, colour))
    slanted = max(len(group) for group in groups) * CHAR_WIDTH > slot
    parts += _x_labels(groups, lambda i: LEFT + i * slot + slot / 2, every=1, slanted=slanted)
    return _svg(title, parts, height=HEIGHT + (SLANT_ROOM if slanted else 0))


FINEST_STEP = 1e-9
"""Charted values are counts, quantities and money: a range finer than this (subnormal floats included, where the
step's logarithm underflows) is drawn at this step."""


def nice_ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """Round axis values (steps of 1, 2 or 5 × 10ⁿ) covering [low, high]: 0, 500, 1,000, not -544, 304, 1,151.
    `whole` keeps steps of counts at 1 or more (no 0.5 request)."""
    if high <= low:
        high = low + 1.0
    rough = max((high - low) / max(1, count - 1), FINEST_STEP)
    if whole:
        rough = max(rough, 1.0)
    magnitude = 10.0 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= rough)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [k * step for k in range(first, last + 1)]


def _axes(ticks: Sequence[float], y: Callable[[float], float]) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#9ca3af"/>']
    for value in ticks:
        pixel = y(value)
        parts.append(f'<line x1="{LEFT}" y1="{pixel:.1f}" x2="{WIDTH - RIGHT}" y2="{pixel:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{pixel + 4:.1f}" text-anchor="end">{_number(value)}</text>')
    return parts


def _x_labels(labels: Sequence[str], x: Callable[[int], float], *, every: int, slanted: bool = False) -> list[str]:
    """Every `every`-th label under its mark; slanted when there are too many to stand side by side."""
    y = HEIGHT - BOTTOM + 16
    placed = []
    for i, label in enumerate(labels):
        if i % every:
            continue
        at = f'x="{x(i):.1f}" y="{y}"'
        if slanted:
            placed.append(f'<text {at} text-anchor="end" transform="rotate(-35 {x(i):.1f} {y})">{escape(label)}</text>')
        else:
            placed.append(f'<text {at} text-anchor="middle">{escape(_short(label, 14))}</text>')
    return placed


def _wrapped(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True) or [""]


def _legend(index: int, name: str, colour: str) -> str:
    y = TOP + 6 + index * 18
    x = WIDTH - RIGHT + 12
    return (
        f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
        f'<text x="{x + 16}" y="{y}">{escape(_short(name, 18))}</text>'
    )


def _svg(title: str, parts: list[str], *, height: int = HEIGHT) -> str:
    return (
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">{"".join(parts)}</svg></figure>'
    )


def _empty(title: str) -> str:
    return f'<figure class="chart empty"><figcaption>{escape(title)}</figcaption><p>No data.</p></figure>'


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.2f}"
