"""Jinja filters and globals: numbers, dates and the confidence-interval bar.

CI bars are drawn here as inline SVG rather than by the chart library: a results table has one
per metric and variation, they must print and read without JavaScript, and each carries a text
alternative for screen readers.
"""

import math
from datetime import UTC, datetime

from jinja2 import Environment
from markupsafe import Markup, escape


def pct(value: float | None, digits: int = 1, signed: bool = False) -> str:
    """0.0312 → "3.1%" (or "+3.1%" when signed); missing or non-finite → "—"."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:{'+' if signed else ''}.{digits}f}%"


def num(value: float | int | None, digits: int = 3) -> str:
    """A number for people: thousands separated, ``digits`` significant figures for floats."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "—"
    if value == 0 or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def pvalue(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def when(value: datetime | str | None) -> str:
    """A timestamp as ``2026-11-21 14:05 UTC``."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def day(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d")


def ci_bar(
    low: float | None,
    high: float | None,
    estimate: float | None,
    *,
    scale: float,
    tone: str = "neutral",
    width: int = 180,
    height: int = 22,
) -> Markup:
    """An interval whisker on an axis from ``-scale`` to ``+scale`` with zero marked.

    ``tone`` is ``good``, ``bad`` or ``neutral``, the same colours as the significance badge.
    Infinite bounds (a one-sided or not-yet-bounded interval) are drawn to the axis edge.
    """
    if estimate is None or not math.isfinite(estimate) or scale <= 0:
        return Markup('<span class="muted">—</span>')

    def x(v: float | None, default: float) -> float:
        if v is None or not math.isfinite(v):
            v = default
        v = max(-scale, min(scale, v))
        return round(4 + (v + scale) / (2 * scale) * (width - 8), 1)

    lo, hi, mid, zero = x(low, -scale), x(high, scale), x(estimate, 0), x(0, 0)
    y = height / 2
    label = f"{pct(estimate, signed=True)} (interval {pct(low, signed=True)} to "
    label += f"{pct(high, signed=True)})"
    return Markup(
        f'<svg class="ci-bar {escape(tone)}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(label)}" viewBox="0 0 {width} {height}">'
        f'<line class="zero" x1="{zero}" x2="{zero}" y1="2" y2="{height - 2}"/>'
        f'<line class="interval" x1="{lo}" x2="{hi}" y1="{y}" y2="{y}"/>'
        f'<line class="cap" x1="{lo}" x2="{lo}" y1="{y - 5}" y2="{y + 5}"/>'
        f'<line class="cap" x1="{hi}" x2="{hi}" y1="{y - 5}" y2="{y + 5}"/>'
        f'<circle class="estimate" cx="{mid}" cy="{y}" r="4"/></svg>'
    )


def install(env: Environment) -> None:
    env.filters.update(pct=pct, num=num, pvalue=pvalue, when=when, day=day)
    env.globals.update(ci_bar=ci_bar)
