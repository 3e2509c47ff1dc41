"""The trends page's charts: reports per week as inline SVG, drawn on the server (no script,
no image requests; CSP governs none of an SVG's attributes)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Final

from markupsafe import Markup

from ..trends import Trends
from .texts import translator

WIDTH: Final = 240
HEIGHT: Final = 110
TOP: Final = 14
BASE: Final = 92
BAR: Final = 14
GAP: Final = 5
LEFT: Final = 8
BAR_COLOUR: Final = "#0a4fb8"
THIS_WEEK_COLOUR: Final = "#a51c14"
AXIS_COLOUR: Final = "#4a4a4a"


@dataclass(frozen=True, slots=True)
class Chart:
    """One category's reports per week, as a caption and an SVG."""

    category: str
    caption: str
    svg: Markup


def category_charts(trends: Trends, language: str) -> list[Chart]:
    """A chart per category, all on one scale so their bars compare."""
    t = translator(language)
    top = max((max(counts) for counts in trends.reports.values()), default=0) or 1
    charts = []
    for category, counts in trends.reports.items():
        label = t(f"category_{category}")
        caption = t("chart_label").format(label=label, total=sum(counts), last=counts[-1])
        week_titles = [t("week_of").format(day=week.strftime("%d/%m")) for week in trends.weeks]
        charts.append(Chart(category, caption, _bars(counts, top, caption, week_titles)))
    return charts


def _bars(counts: list[int], top: int, label: str, week_titles: list[str]) -> Markup:
    parts = [
        f'<svg class="chart" data-chart="category" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{LEFT}" y="10" font-size="10" fill="{AXIS_COLOUR}">{top}</text>',
    ]
    for position, (count, title) in enumerate(zip(counts, week_titles, strict=True)):
        height = round((BASE - TOP) * count / top, 1)
        x = LEFT + position * (BAR + GAP)
        colour = THIS_WEEK_COLOUR if position == len(counts) - 1 else BAR_COLOUR
        parts.append(
            f'<rect x="{x}" y="{BASE - height}" width="{BAR}" height="{height}" '
            f'fill="{colour}" data-count="{count}"><title>{escape(title)}: {count}</title></rect>'
        )
    parts.append(
        f'<line x1="{LEFT - 2}" y1="{BASE}" x2="{WIDTH - 4}" y2="{BASE}" '
        f'stroke="{AXIS_COLOUR}" stroke-width="1"/>'
    )
    first, last = week_titles[0].rsplit(" ", 1)[-1], week_titles[-1].rsplit(" ", 1)[-1]
    parts.append(f'<text x="{LEFT}" y="106" font-size="10" fill="{AXIS_COLOUR}">{first}</text>')
    parts.append(
        f'<text x="{WIDTH - 4}" y="106" font-size="10" fill="{AXIS_COLOUR}" '
        f'text-anchor="end">{last}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
