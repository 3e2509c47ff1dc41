"""People's word on the numbers that called them: reports (a scam) and feedback (not a
scam), each in its lane, with the verdict after it.

A word through an attesting key may carry the reporter's own phone number, which its app
verified: the reporter is then that phone (a keyed hash of it), the same through every app,
and their word is in the verified lane. Any other word is in the community lane, its
reporter the app's id scoped by the key. A reporter phone that is itself a scam is recorded
as such, so its words count for nothing (docs/verdicts.md).

It follows feed.py's rule for writes: stored through the store, which logs the change in the
same transaction; then this process catches up from the log before answering, so the
client's next lookup here sees the word.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiohttp import web

from . import store
from .auth import check_can_vouch
from .clock import Clock
from .config import Config
from .feed import FEED, Feed
from .metrics import Metrics
from .reporters import REPORTER_KEY, community_reporter_hash, network_hash, phone_reporter_hash
from .reputation import Lane, Verdict
from .standing import STANDING, Standing
from .state import CLOCK, CONFIG, METRICS, POOL
from .store.keys import ApiKey
from .verdicts import VERDICTS, Answer, Verdicts


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who speaks: the app's pseudonymous id, and the phone the app verified, if any."""

    id: str
    phone: int | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """A report as a client sends it, numbers already normalised."""

    number: int
    category: str
    reporter: Reporter
    description: str | None
    occurred_at: datetime | None


@dataclass(frozen=True, slots=True)
class Feedback:
    """The called person saying a call from the number was legitimate."""

    number: int
    reporter: Reporter
    note: str | None


class Reporting:
    """Reports and feedback taken in one process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        feed: Feed,
        verdicts: Verdicts,
        standing: Standing,
        reporter_key: bytes,
        metrics: Metrics,
        config: Config,
        clock: Clock,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.config = config
        self._feed = feed
        self._verdicts = verdicts
        self._standing = standing
        self._reporter_key = reporter_key
        self._accepted = metrics.reports_accepted
        self._feedback = metrics.feedback_accepted
        self._reviews = metrics.reviews_opened

    async def report(self, report: Report, api_key: ApiKey, address: str) -> tuple[int, Answer]:
        """Store a report and list its number; return the report id and the new verdict.
        `address` is the client's, whose network a brigade check compares.

        Raises the 403 problem for a phone sent through a community key (auth.py), and the
        store's ReporterLimitReached or KeyDayLimitReached past a daily limit.
        """
        now = self.clock()
        lane, reporter_hash = await self._reporter(report.reporter, api_key, now)
        word = store.reports.NewReport(
            number=report.number,
            reporter_hash=reporter_hash,
            lane=lane,
            received_at=now,
            api_key_id=api_key.id,
            category=report.category,
            description=report.description,
            occurred_at=report.occurred_at,
            network=network_hash(self._reporter_key, address),
        )
        stored = await store.reports.add(self.pool, word, self._limits(api_key), self.config.rules)
        self._accepted.labels(report.category, lane.value).inc()
        if stored.review is not None:
            self._reviews.labels(stored.review.value).inc()
        await self._feed.catch_up()
        answer = await self._verdicts.read(report.number, now)
        if answer.judgement.verdict is Verdict.SCAM:
            await self._standing.listed([report.number], now)
        return stored.id, answer

    async def feedback(self, feedback: Feedback, api_key: ApiKey) -> tuple[int, Answer]:
        """Store a not-scam answer; return its id and the number's verdict now."""
        now = self.clock()
        lane, reporter_hash = await self._reporter(feedback.reporter, api_key, now)
        word = store.reports.NewFeedback(
            number=feedback.number,
            reporter_hash=reporter_hash,
            lane=lane,
            received_at=now,
            api_key_id=api_key.id,
            note=feedback.note,
        )
        stored = await store.reports.add(self.pool, word, self._limits(api_key), self.config.rules)
        self._feedback.labels(lane.value).inc()
        await self._feed.catch_up()
        return stored.id, await self._verdicts.read(feedback.number, now)

    def _limits(self, api_key: ApiKey) -> store.reports.Limits:
        return store.reports.Limits(
            per_reporter_daily=self.config.reports_per_reporter_per_day,
            per_key_daily=api_key.reports_per_day or self.config.reports_per_key_per_day,
        )

    async def _reporter(
        self, reporter: Reporter, api_key: ApiKey, now: datetime
    ) -> tuple[Lane, bytes]:
        """The word's lane and its reporter's hash. A verified phone that is itself a scam
        now is recorded so, before its word is stored."""
        if reporter.phone is None:
            return Lane.COMMUNITY, community_reporter_hash(
                self._reporter_key, api_key.id, reporter.id
            )
        check_can_vouch(api_key)
        # Most reporters' phones are listed nowhere: the filter says so with no round trip.
        if reporter.phone in self._verdicts.filter:
            own = await self._verdicts.read(reporter.phone, now)
            if own.judgement.verdict is Verdict.SCAM:
                await self._standing.listed([reporter.phone], now, known_only=False)
        return Lane.VERIFIED, phone_reporter_hash(self._reporter_key, reporter.phone)


REPORTING = web.AppKey("reporting", Reporting)


async def reporting(app: web.Application) -> AsyncIterator[None]:
    """Reports and feedback, with the reporters' hash key (reporters.py)."""
    app[REPORTING] = Reporting(
        app[POOL],
        app[FEED],
        app[VERDICTS],
        app[STANDING],
        app[REPORTER_KEY],
        app[METRICS],
        app[CONFIG],
        app[CLOCK],
    )
    yield
