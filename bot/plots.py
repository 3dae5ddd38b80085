"""People over time as a small inline SVG, drawn on the server.

Server-side so the dashboard needs no charting library and no script (the CSP allows none inline), and
so the picture is the same in every browser, printed or in an e-mail. Every text is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from markupsafe import Markup, escape


def _nice_max(value: float) -> int:
    """The top of the y axis: at least 2, rounded up to a readable step."""
    top = max(2, int(-(-value // 1)))
    for step in (1, 2, 5, 10, 20, 50, 100):
        if top <= step * 4:
            return int(-(-top // step) * step)
    return top


def people_svg(points: Sequence[tuple[datetime, float]], *, now: datetime, hours: int = 24,
               width: int = 360, height: int = 130, label: str = "People") -> Markup:
    """A line of people counted over the last ``hours`` (points are naive-UTC times and counts)."""
    left, right, top, bottom = 26, 10, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    start = now - timedelta(hours=hours)
    shown = sorted((t, float(c)) for t, c in points if start <= t <= now)
    y_max = _nice_max(max((c for _, c in shown), default=0))

    def x(t: datetime) -> float:
        return left + plot_w * (t - start).total_seconds() / (hours * 3600)

    def y(c: float) -> float:
        return top + plot_h * (1 - c / y_max)

    title = f"{label} over the last {hours} hours"
    if shown:
        peak_t, peak = max(shown, key=lambda p: p[1])
        title += f": peak {peak:g} at {peak_t:%H:%M} UTC"
    parts = [
        f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    # Horizontal grid with the count on the left.
    for i in range(5):
        value = y_max * i / 4
        gy = y(value)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}"/>')
        if value == int(value):
            parts.append(f'<text class="tick" x="{left - 6}" y="{gy + 3.5:.1f}" text-anchor="end">'
                         f"{int(value)}</text>")
    # A time label every 6 hours, on the hour.
    tick = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    while tick <= now:
        if tick.hour % 6 == 0:
            tx = x(tick)
            anchor = "end" if tx > width - right - 16 else "start" if tx < left + 16 else "middle"
            parts.append(f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{top + plot_h}"/>')
            parts.append(f'<text class="tick" x="{tx:.1f}" y="{height - 5}" text-anchor="{anchor}">'
                         f"{tick:%H:%M}</text>")
        tick += timedelta(hours=1)
    if shown:
        coords = [(x(t), y(c)) for t, c in shown]
        path = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(coords))
        area = f"{path} L{coords[-1][0]:.1f},{top + plot_h} L{coords[0][0]:.1f},{top + plot_h} Z"
        parts.append(f'<path class="area" d="{area}"/>')
        parts.append(f'<path class="line" d="{path}"/>')
        for (px, py), (t, c) in zip(coords, shown, strict=True):
            parts.append(f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="2.5">'
                         f"<title>{t:%H:%M} UTC: {c:g}</title></circle>")
    else:
        parts.append(f'<text class="empty" x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
                     f'text-anchor="middle">No detections in the last {hours} hours</text>')
    parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" '
                 f'y2="{top + plot_h}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
