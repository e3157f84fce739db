"""Charts drawn on the server as SVG: time series (bars, lines, areas) and horizontal bars.

The SVG carries no inline style (the console's Content-Security-Policy forbids it): colours
come from CSS classes (``s0``, ``s1``, ...) that follow the theme's variables, and a
``viewBox`` lets it scale to any width. Every x position is a focusable group with a
``<title>`` (the fallback tooltip) and a ``data-tip`` the console's script shows on hover
or focus. The same numbers are offered as a table (:meth:`TimeChart.rows`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from markupsafe import Markup, escape

from sluice.budgets.spec import format_usd

Unit = Literal["count", "tokens", "usd", "micros", "percent", "ms"]
Kind = Literal["bar", "line", "area", "dash"]

WIDTH = 640
HEIGHT = 220
LEFT = 58
RIGHT = 12
TOP = 12
BOTTOM = 26
MAX_X_LABELS = 7
WHOLE_UNITS = frozenset({"count", "tokens"})
"""Units counted in whole numbers: their axis ticks are whole numbers too."""


def fmt(value: float | None, unit: Unit) -> str:
    """A value for a tooltip or a table cell: exact enough to read off."""
    if value is None:
        return "—"
    if unit == "micros":
        return format_usd(round(value))
    if unit == "usd":
        return format_usd(round(value * 1_000_000))
    if unit == "percent":
        return f"{value * 100:.1f} %"
    if unit == "ms":
        return f"{value:,.0f} ms"
    return f"{round(value):,}"


def short(value: float, unit: Unit) -> str:
    """A value for an axis label: at most four significant characters."""
    if unit in ("usd", "micros"):
        usd = value / 1_000_000 if unit == "micros" else value
        if usd == 0:
            return "$0"
        if abs(usd) < 0.01:
            return "$" + f"{usd:.6f}".rstrip("0").rstrip(".")
        return "$" + _si(usd, 2)
    if unit == "percent":
        return f"{value * 100:.0f}%"
    if unit == "ms":
        return _si(value, 0) + "ms"
    return _si(value, 1)


def _si(value: float, digits: int) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def nice_ticks(top: float, count: int = 4, *, whole: bool = False) -> list[float]:
    """0 and round steps up to at least ``top`` (``[0, 1]`` when everything is zero);
    ``whole``: whole-number steps only (counts: no "0.2 requests" tick)."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    if whole and raw <= 1:
        step = 1.0
        ticks = [0.0]
        while ticks[-1] < top - 1e-9:
            ticks.append(ticks[-1] + step)
        return ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(
        m * magnitude
        for m in (1, 2, 2.5, 5, 10)
        if m * magnitude >= raw and (not whole or float(m * magnitude).is_integer())
    )
    ticks = [0.0]
    while ticks[-1] < top - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[float | None, ...]
    """One per label; ``None`` leaves a gap (a line is not drawn there)."""
    kind: Kind = "line"


@dataclass(frozen=True, slots=True)
class TimeChart:
    """A chart over time: one value per label per series."""

    id: str
    title: str
    labels: tuple[str, ...]
    """Full x labels (tooltips, table rows), e.g. ``2026-03-02`` or ``03-02 14:00``."""
    ticks: tuple[str, ...]
    """Short x labels for the axis, same length as ``labels``."""
    series: tuple[Series, ...]
    unit: Unit = "count"

    @property
    def empty(self) -> bool:
        return not any(v for s in self.series for v in s.values)

    def rows(self) -> list[tuple[str, list[str]]]:
        """The chart as a table: a label and each series' formatted value."""
        return [
            (label, [fmt(s.values[i], self.unit) for s in self.series])
            for i, label in enumerate(self.labels)
        ]

    def svg(self) -> Markup:
        return _time_svg(self)


def _runs(points: Sequence[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """The unbroken stretches of a line (``None`` breaks it)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for p in points:
        if p is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(p)
    return [r for r in runs if r]


def _path(run: Sequence[tuple[float, float]]) -> str:
    return " ".join(
        ("M" if i == 0 else "L") + f"{px:.1f},{py:.1f}" for i, (px, py) in enumerate(run)
    )


def _time_svg(c: TimeChart) -> Markup:
    n = len(c.labels)
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    base = TOP + plot_h
    values = [v for s in c.series for v in s.values if v is not None]
    # With nothing to show, the axis still reads sensibly ($0 to $0.01, 0 to 1).
    ticks = nice_ticks(
        max(values, default=0.0) or (10_000.0 if c.unit == "micros" else 1.0),
        whole=c.unit in WHOLE_UNITS,
    )
    top = ticks[-1]
    band = plot_w / max(n, 1)

    def x(i: int) -> float:
        return LEFT + (i + 0.5) * band

    def y(v: float) -> float:
        return base - (v / top) * plot_h

    out = [
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{c.id}-title" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{c.id}-title">{escape(c.title)}</title>',
        '<g class="grid">',
    ]
    for t in ticks:
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}"/>')
        out.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end">'
            f"{escape(short(t, c.unit))}</text>"
        )
    out.append("</g>")
    every = max(1, math.ceil(n / MAX_X_LABELS))
    for i in range(0, n, every):
        out.append(
            f'<text class="axis" x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
            f"{escape(c.ticks[i])}</text>"
        )
    bars = [s for s in c.series if s.kind == "bar"]
    bar_w = band * 0.8 / max(len(bars), 1)
    for idx, s in enumerate(c.series):
        cls = f"s{idx} {s.kind}"
        if s.kind == "bar":
            slot = bars.index(s)
            for i, v in enumerate(s.values):
                if not v:
                    continue
                bx = LEFT + i * band + band * 0.1 + slot * bar_w
                out.append(
                    f'<rect class="{cls}" x="{bx:.1f}" y="{y(v):.1f}" width="{bar_w:.1f}" '
                    f'height="{base - y(v):.1f}"/>'
                )
            continue
        pts = [None if v is None else (x(i), y(v)) for i, v in enumerate(s.values)]
        for run in _runs(pts):
            d = _path(run)
            if s.kind == "area":
                edge = f" L{run[-1][0]:.1f},{base} L{run[0][0]:.1f},{base} Z"
                out.append(f'<path class="{cls} fill" d="{d}{edge}"/>')
            out.append(f'<path class="{cls} stroke" d="{d}"/>')
    out.append(
        f'<line class="axis-line" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>'
    )
    for i, label in enumerate(c.labels):
        parts = [f"{s.name} {fmt(s.values[i], c.unit)}" for s in c.series]
        tip = f"{label} · " + " · ".join(parts)
        out.append(
            f'<g class="point" tabindex="0" data-tip="{escape(tip)}" data-x="{x(i):.1f}">'
            f"<title>{escape(tip)}</title>"
            f'<rect class="hit" x="{LEFT + i * band:.1f}" y="{TOP}" width="{band:.1f}" '
            f'height="{plot_h}"/>'
        )
        for idx, s in enumerate(c.series):
            v = s.values[i]
            if v is not None and s.kind != "bar":
                out.append(f'<circle class="s{idx} dot" cx="{x(i):.1f}" cy="{y(v):.1f}" r="3"/>')
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))


@dataclass(frozen=True, slots=True)
class BarChart:
    """Horizontal bars, one per labelled group (largest first, as given)."""

    id: str
    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    unit: Unit = "count"

    @property
    def empty(self) -> bool:
        return not any(self.values)

    def svg(self) -> Markup:
        row_h = 26
        label_w = 170
        value_w = 90
        height = row_h * len(self.labels) + 8
        span = WIDTH - label_w - value_w
        top = max(self.values, default=0.0) or 1.0
        out = [
            f'<svg class="chart-svg bars" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-labelledby="{self.id}-title">',
            f'<title id="{self.id}-title">{escape(self.title)}</title>',
        ]
        for i, (label, v) in enumerate(zip(self.labels, self.values, strict=True)):
            yy = 4 + i * row_h
            tip = f"{label} · {fmt(v, self.unit)}"
            width = max(1.0, span * v / top) if v else 0.0
            out.append(
                f'<g class="point" tabindex="0" data-tip="{escape(tip)}">'
                f"<title>{escape(tip)}</title>"
                f'<rect class="hit" x="0" y="{yy}" width="{WIDTH}" height="{row_h}"/>'
                f'<text class="axis label" x="{label_w - 8}" y="{yy + 17}" text-anchor="end">'
                f"{escape(_clip(label, 24))}</text>"
                f'<rect class="s{i % 6} bar" x="{label_w}" y="{yy + 4}" width="{width:.1f}" '
                f'height="{row_h - 8}"/>'
                f'<text class="axis" x="{label_w + width + 6:.1f}" y="{yy + 17}">'
                f"{escape(fmt(v, self.unit))}</text></g>"
            )
        out.append("</svg>")
        return Markup("".join(out))


def _clip(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def cumulative(values: Sequence[float], start: float = 0.0) -> list[float]:
    out: list[float] = []
    total = start
    for v in values:
        total += v
        out.append(total)
    return out


def bucket_labels(buckets: Sequence[int], interval: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Full and short x labels for UTC hour or day buckets (epoch seconds)."""
    moments = [datetime.fromtimestamp(b, UTC) for b in buckets]
    if interval == "hour":
        return (
            tuple(m.strftime("%Y-%m-%d %H:00 UTC") for m in moments),
            tuple(m.strftime("%H:00") if m.hour else m.strftime("%m-%d") for m in moments),
        )
    return tuple(m.strftime("%Y-%m-%d") for m in moments), tuple(
        m.strftime("%m-%d") for m in moments
    )
