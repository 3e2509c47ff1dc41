"""What is rising, for the people who warn others (issue 16): reports per category per week
over the last 12 weeks, the categories rising this week, numbers newly listed per mobile
network, and the official numbers to call. Read from Postgres at most once per TRENDS_AGE per
process: the figures are weekly, and a public page must not cost a scan per visit."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import asyncpg
import phonenumbers
from aiohttp import web
from phonenumbers import carrier

from . import store
from .categories import CATEGORIES
from .clock import VIETNAM, Clock
from .state import CLOCK, POOL

WEEKS = 12
TRENDS_AGE = timedelta(minutes=10)
RISING_FACTOR = 1.5
"""A category is rising when this week's reports are at least this many times its weekly
average over the weeks before..."""
RISING_MINIMUM = 5
"""...and at least this many."""
OFFICIAL_LIMIT = 50
OTHER_NETWORK = "other"


@dataclass(frozen=True, slots=True)
class Rising:
    """A category rising this week."""

    category: str
    this_week: int
    usual: float
    """Its weekly average over the weeks before this one."""


@dataclass(frozen=True, slots=True)
class Trends:
    """The figures, oldest week first; this week is the last, and counts so far."""

    weeks: list[date]
    """Each week's Monday, in Vietnam."""
    reports: dict[str, list[int]]
    """Per category, reports per week."""
    rising: list[Rising]
    listed: dict[str, list[int]]
    """Per mobile network (or "other"), numbers newly on the scam list per week."""
    official: list[tuple[int, str]]


def network_of(number: int) -> str:
    """The Vietnamese mobile network whose prefix the number has, as phonenumbers' carrier
    data names it (Viettel, Vinaphone, MobiFone, Vietnamobile, G-Mobile, ...), or "other"
    (landlines, foreign numbers, prefixes it does not know)."""
    digits = str(number)
    if not digits.startswith("84"):
        return OTHER_NETWORK  # a foreign number: none of Vietnam's networks
    parsed = phonenumbers.PhoneNumber(country_code=84, national_number=int(digits[2:]))
    return carrier.name_for_number(parsed, "en") or OTHER_NETWORK


def week_of(at: datetime) -> date:
    """The Monday of the week `at` falls in, in Vietnam."""
    day = at.astimezone(VIETNAM).date()
    return day - timedelta(days=day.weekday())


def rising(reports: dict[str, list[int]]) -> list[Rising]:
    """The categories whose reports this week stand well above their usual weekly number,
    most risen first."""
    found = []
    for category, counts in reports.items():
        *before, now = counts
        usual = sum(before) / len(before) if before else 0.0
        if now >= RISING_MINIMUM and now >= RISING_FACTOR * usual:
            found.append(Rising(category, now, round(usual, 1)))
    return sorted(found, key=lambda item: item.this_week / max(item.usual, 1.0), reverse=True)


async def read_trends(pool: asyncpg.Pool, now: datetime) -> Trends:
    """The figures as of now, from Postgres."""
    this_week = week_of(now)
    weeks = [this_week - timedelta(weeks=back) for back in range(WEEKS - 1, -1, -1)]
    since = datetime.combine(weeks[0], time(), VIETNAM)
    index = {week: position for position, week in enumerate(weeks)}
    reports = {category.id: [0] * WEEKS for category in CATEGORIES}  # in their order
    for week, category, count in await store.stats.reports_by_week(pool, since):
        if week in index and category in reports:
            reports[category][index[week]] += count
    listed: dict[str, list[int]] = defaultdict(lambda: [0] * WEEKS)
    for number, week in await store.stats.listed_since(pool, since):
        if week in index:
            listed[network_of(number)][index[week]] += 1
    official = await store.stats.official_numbers(pool, OFFICIAL_LIMIT)
    return Trends(weeks, reports, rising(reports), dict(sorted(listed.items())), official)


class TrendsCache:
    """The figures, read at most once per TRENDS_AGE (and once at a time)."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock
        self._read: tuple[datetime, asyncio.Future[Trends]] | None = None

    async def get(self) -> Trends:
        now = self.clock()
        if self._read is not None:
            at, reading = self._read
            failed = reading.done() and (reading.cancelled() or reading.exception() is not None)
            if timedelta(0) <= now - at < TRENDS_AGE and not failed:
                return await asyncio.shield(reading)
        reading = asyncio.ensure_future(read_trends(self.pool, now))
        self._read = (now, reading)
        return await asyncio.shield(reading)


TRENDS = web.AppKey("trends", TrendsCache)


async def trends(app: web.Application) -> AsyncIterator[None]:
    """The trends' figures, cached for the process."""
    app[TRENDS] = TrendsCache(app[POOL], app[CLOCK])
    yield
