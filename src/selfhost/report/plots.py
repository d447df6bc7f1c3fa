"""Small inline SVG charts: no plotting dependency, no external assets, readable without JavaScript."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["bar_chart", "line_chart"]

_PALETTE = ("#3b6fb6", "#e07b39", "#4c9f70", "#b8476b", "#7a5cb0", "#8c8c3a", "#3aa7b5", "#777777")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    import math

    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def bar_chart(
    labels: Sequence[str], values: Sequence[float], *, title: str, unit: str, width: int = 640, bar_h: int = 22
) -> str:
    """Horizontal bars, one per label, value printed at the bar's end."""
    left, right, top = 150, 90, 30
    height = top + bar_h * len(labels) + 20
    vmax = _nice_max(max(values, default=0.0))
    span = width - left - right
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="18" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, v) in enumerate(zip(labels, values)):
        y = top + i * bar_h
        w = 0 if vmax == 0 else span * v / vmax
        out.append(f'<text x="{left - 6}" y="{y + bar_h * 0.65}" text-anchor="end">{escape(label)}</text>')
        out.append(
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" '
            f'fill="{_PALETTE[i % len(_PALETTE)]}"><title>{escape(label)}: {_fmt(v)} {escape(unit)}</title></rect>'
        )
        out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h * 0.65}">{_fmt(v)} {escape(unit)}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 640,
    height: int = 300,
) -> str:
    """Lines (name, xs, ys) on shared linear axes starting at zero."""
    left, right, top, bottom = 60, 150, 30, 45
    xs_all = [x for _, xs, _ in series for x in xs]
    ys_all = [y for _, _, ys in series for y in ys]
    xmax = _nice_max(max(xs_all, default=0.0))
    ymax = _nice_max(max(ys_all, default=0.0))
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + pw * x / xmax

    def py(y: float) -> float:
        return top + ph - ph * y / ymax

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="12">',
        f'<text x="{left}" y="18" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#333"/>',
    ]
    for i in range(5):
        xv, yv = xmax * i / 4, ymax * i / 4
        out.append(f'<text x="{px(xv):.1f}" y="{top + ph + 15}" text-anchor="middle">{_fmt(xv)}</text>')
        out.append(f'<text x="{left - 5}" y="{py(yv) + 4:.1f}" text-anchor="end">{_fmt(yv)}</text>')
        out.append(f'<line x1="{left}" y1="{py(yv):.1f}" x2="{left + pw}" y2="{py(yv):.1f}" stroke="#eee"/>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(
        f'<text x="14" y="{top + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2})">{escape(y_label)}</text>'
    )
    for i, (name, xs, ys) in enumerate(series):
        color = _PALETTE[i % len(_PALETTE)]
        pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = top + 14 * i + 8
        out.append(f'<rect x="{left + pw + 10}" y="{ly - 8}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{left + pw + 24}" y="{ly + 1}">{escape(name[:20])}</text>')
    out.append("</svg>")
    return "".join(out)
