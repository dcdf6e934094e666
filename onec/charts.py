"""Inline SVG charts for the run report: no JavaScript, no CDN, so the page opens anywhere, offline, years later.

Every data mark carries the class `mark` (the browser test counts them). With no data a chart says so in words
instead of drawing an empty frame. Values are floats only for drawing; the figures printed are the exact ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 16, 40
MAX_X_LABELS = 6
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


def line_chart(title: str, x_labels: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """One line per series over shared x labels (e.g. days)."""
    if not x_labels or not series:
        return _empty(title)
    values = [v for points in series.values() for v in points]
    low, high = min(0.0, *values), max(0.0, *values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(x_labels) - 1)

    def y(value: float) -> float:
        return TOP + plot_h - (value - low) / ((high - low) or 1.0) * plot_h

    parts = _axes(low, high, y)
    for index, (name, points) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{LEFT + i * step:.1f},{y(v):.1f}" for i, v in enumerate(points))
        parts.append(
            f'<polyline class="mark" fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
            f"<title>{escape(name)}</title></polyline>"
        )
        parts.append(_legend(index, name, colour))
    parts += _x_labels(x_labels, lambda i: LEFT + i * step)
    return _svg(title, parts)


def bar_chart(title: str, bars: Sequence[tuple[str, float]]) -> str:
    """Horizontal bars, one per label (e.g. rejected rows by reason)."""
    if not bars:
        return _empty(title)
    height = TOP + BOTTOM + 26 * len(bars)
    label_w, plot_w = 330, WIDTH - 330 - 80
    top = max(v for _, v in bars) or 1.0
    parts = []
    for index, (label, value) in enumerate(bars):
        y = TOP + index * 26
        width = max(1.0, value / top * plot_w)
        parts.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(_short(label, 52))}</text>')
        parts.append(
            f'<rect class="mark" x="{label_w}" y="{y + 3}" width="{width:.1f}" height="18" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {_number(value)}</title></rect>"
        )
        parts.append(f'<text x="{label_w + width + 6:.1f}" y="{y + 15}">{_number(value)}</text>')
    return _svg(title, parts, height=height)


def grouped_bar_chart(title: str, groups: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Vertical bars: for each group (e.g. a landing), one bar per series (e.g. requests, retries)."""
    if not groups or not series:
        return _empty(title)
    values = [v for points in series.values() for v in points]
    high = max(0.0, *values) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(groups)
    bar = max(2.0, slot * 0.8 / len(series))

    def y(value: float) -> float:
        return TOP + plot_h - value / high * plot_h

    parts = _axes(0.0, high, y)
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
    parts += _x_labels(groups, lambda i: LEFT + i * slot + slot / 2)
    return _svg(title, parts)


def _axes(low: float, high: float, y: Callable[[float], float]) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#9ca3af"/>']
    for value in (low, (low + high) / 2, high):
        pixel = y(value)
        parts.append(f'<line x1="{LEFT}" y1="{pixel:.1f}" x2="{WIDTH - RIGHT}" y2="{pixel:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{pixel + 4:.1f}" text-anchor="end">{_number(value)}</text>')
    return parts


def _x_labels(labels: Sequence[str], x: Callable[[int], float]) -> list[str]:
    every = max(1, -(-len(labels) // MAX_X_LABELS))
    return [
        f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(_short(label, 14))}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    ]


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
