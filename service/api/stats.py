"""/v1/stats/trends: what is rising, as JSON or, by Accept, CSV (the trends page's figures)."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from aiohttp import web
from msgspec import Meta

from ..e164 import to_e164
from ..trends import TRENDS, Trends
from .answers import E164, Body, CategoryId, Count
from .bodies import json_answer, responds
from .documented import documented, text_response

CSV = "text/csv"


class CategoryWeeks(Body):
    """A category's reports per week."""

    category: CategoryId
    reports: Annotated[list[Count], Meta(description="One per week, oldest first.")]


class RisingCategory(Body):
    """A category whose reports this week stand well above its usual week."""

    category: CategoryId
    this_week: Count
    usual: Annotated[
        Count, Meta(description="Its weekly average before this week, rounded to a whole number.")
    ]


class NetworkWeeks(Body):
    """Numbers newly on the scam list from one mobile network, per week."""

    network: Annotated[str, Meta(description="The network its prefix belongs to, or `other`.")]
    listed: Annotated[list[Count], Meta(description="One per week, oldest first.")]


class OfficialNumber(Body):
    """A verified number to call."""

    number: E164
    owner: str


class TrendsBody(Body):
    """The last 12 weeks, in Vietnam (UTC+7); the last week counts so far."""

    weeks: Annotated[list[str], Meta(description="Each week's Monday, oldest first (YYYY-MM-DD).")]
    categories: list[CategoryWeeks]
    rising: Annotated[
        list[RisingCategory],
        Meta(description="At least 5 reports this week and 1.5 times its usual week."),
    ]
    networks: list[NetworkWeeks]
    official: list[OfficialNumber]


def trends_body(trends: Trends) -> TrendsBody:
    return TrendsBody(
        weeks=[week.isoformat() for week in trends.weeks],
        categories=[CategoryWeeks(c, counts) for c, counts in trends.reports.items()],
        rising=[RisingCategory(r.category, r.this_week, round(r.usual)) for r in trends.rising],
        networks=[NetworkWeeks(n, counts) for n, counts in trends.listed.items()],
        official=[OfficialNumber(to_e164(number), owner) for number, owner in trends.official],
    )


def trends_csv(trends: Trends) -> str:
    """One row a week per category and per network: week, kind, name, count."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["week", "kind", "name", "count"])
    for kind, series in (("reports", trends.reports), ("listed", trends.listed)):
        for name, counts in series.items():
            for week, count in zip(trends.weeks, counts, strict=True):
                writer.writerow([week.isoformat(), kind, name, count])
    return out.getvalue()


@documented(
    "stats",
    responses={
        200: text_response(
            "With `Accept: text/csv`: week, kind (`reports` or `listed`), name (a category "
            "or a network), count.",
            CSV,
        )
    },
)
@responds(200, TrendsBody, "The figures.")
async def get_trends(request: web.Request) -> web.Response:
    """Trends

    Reports per category per week over the last 12 weeks, the categories rising this week,
    numbers newly on the scam list per mobile network, and the official numbers to call;
    as CSV if Accept prefers `text/csv`. Figures are at most 10 minutes old.
    """
    trends = await request.app[TRENDS].get()
    if _prefers_csv(request.headers.get("Accept", "")):
        return web.Response(text=trends_csv(trends), content_type=CSV, charset="utf-8")
    return json_answer(trends_body(trends))


def _prefers_csv(accept: str) -> bool:
    """Whether Accept names text/csv before (or without) application/json."""
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if CSV not in types:
        return False
    json_at = types.index("application/json") if "application/json" in types else len(types)
    return types.index(CSV) < json_at
