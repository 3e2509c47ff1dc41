"""A person reports the number that called them: the reporter hashed (scoped by key), the
report stored and its number listed, the verdict after it.

It follows feed.py's rule for writes: stored through the store, which logs the change in the
same transaction; then this process catches up from the log before answering, so the
client's next lookup here sees the report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiohttp import web

from . import store
from .clock import Clock
from .config import Config
from .feed import FEED, Feed
from .metrics import Metrics
from .reporters import community_reporter_hash, reporter_key
from .state import CLOCK, CONFIG, METRICS, POOL
from .verdicts import VERDICTS, Answer, Verdicts


@dataclass(frozen=True, slots=True)
class Report:
    """A report as a client sends it, number already normalised."""

    number: int
    category: str
    reporter: str
    """The app's pseudonymous id of the person reporting; only a keyed hash is kept."""
    description: str | None
    occurred_at: datetime | None


class Reporting:
    """Reports taken in one process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        feed: Feed,
        verdicts: Verdicts,
        reporter_key: bytes,
        metrics: Metrics,
        config: Config,
        clock: Clock,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self._feed = feed
        self._verdicts = verdicts
        self._reporter_key = reporter_key
        self._accepted = metrics.reports_accepted
        self._per_reporter_per_day = config.reports_per_reporter_per_day

    async def report(self, report: Report, api_key_id: int) -> tuple[int, Answer]:
        """Store a report and list its number; return the report id and the new verdict.

        Raises store.reports.ReporterLimitReached past the per-reporter daily limit.
        """
        now = self.clock()
        new_report = store.reports.NewReport(
            number=report.number,
            category=report.category,
            reporter_hash=community_reporter_hash(self._reporter_key, api_key_id, report.reporter),
            description=report.description,
            occurred_at=report.occurred_at,
            received_at=now,
            api_key_id=api_key_id,
        )
        report_id = await store.reports.add(self.pool, new_report, self._per_reporter_per_day)
        self._accepted.labels(report.category).inc()
        await self._feed.catch_up()
        return report_id, await self._verdicts.read(report.number, now)


REPORTING = web.AppKey("reporting", Reporting)


async def reporting(app: web.Application) -> AsyncIterator[None]:
    """Reports, with the reporters' hash key (kept outside the database, reporters.py)."""
    config, pool = app[CONFIG], app[POOL]
    key = await reporter_key(pool, config)
    app[REPORTING] = Reporting(
        pool, app[FEED], app[VERDICTS], key, app[METRICS], config, app[CLOCK]
    )
    yield
