"""Answering a number: the live filter rules most numbers out with no database round trip;
a "maybe" is answered from the positive cache or Postgres, judged as of now.

The verdict is judged at lookup, so expiry and delisting take effect at once whatever the
filter still holds. When Postgres cannot be reached, lookups still answer from the filter and
the cache, marked degraded: a negative is still certain, a cached number keeps its evidence,
and any other "maybe" is answered unknown. Lookups only read; writes follow feed.py's rule.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from aiohttp import web

from . import store
from .cache import CACHE, EvidenceCache
from .clock import Clock
from .config import Config
from .feed import FEED, Feed
from .filter import NumberFilter
from .live_filter import LIVE_FILTER, LiveFilter
from .metrics import Metrics
from .reputation import UNKNOWN, Evidence, Judgement, Verdict, judge, window_start
from .state import CLOCK, CONFIG, METRICS, POOL

JUDGEMENT_REUSE = timedelta(seconds=1)
MEMO_VOICES = 16
"""Evidence with fewer voices is judged afresh at every lookup: that takes microseconds."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What a lookup says about one number."""

    number: int
    evidence: Evidence
    judgement: Judgement
    degraded: bool = False
    """Postgres could not be reached: answered from the filter and cache alone."""


class Verdicts:
    """The verdicts on numbers, as this process answers them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        live_filter: LiveFilter,
        cache: EvidenceCache,
        feed: Feed,
        metrics: Metrics,
        config: Config,
        clock: Clock,
    ) -> None:
        self.pool = pool
        self.cache = cache
        self.config = config
        self.clock = clock
        self.filter: NumberFilter
        """The live filter's current filter, held here so a lookup asks it directly."""
        self._feed = feed
        self._judged: dict[int, tuple[Evidence, datetime, Judgement]] = {}
        """The last judgement of evidence with many voices, by number (see _judge)."""
        self._checks = metrics.filter_checks.counts
        self._verdicts = metrics.lookups.counts
        live_filter.on_swap(self._use)

    def _use(self, number_filter: NumberFilter) -> None:
        self.filter = number_filter

    def ruled_out(self, number: int) -> bool:
        """Whether the filter rules the number out, so its answer is unknown without reading
        anything (counted as such); False for a maybe, which answer_maybe() answers. The
        fast path of a single lookup."""
        if number in self.filter:
            return False
        self.count_ruled_out(1)
        return True

    def batch_check(self) -> Callable[[int], bool]:
        """The filter's test as of now, for one batch's loop (a call a number, no layer
        between): True for a maybe, to answer with answer_maybes(); the numbers it rules out
        are counted with count_ruled_out()."""
        return self.filter.__contains__

    def count_ruled_out(self, count: int) -> None:
        """Count numbers the filter ruled out (answered unknown)."""
        self._checks["negative"] += count
        self._verdicts["unknown"] += count

    async def lookup(self, number: int) -> Answer:
        """The verdict on one number, checked against the filter first."""
        if self.ruled_out(number):
            return Answer(number, Evidence(number), UNKNOWN)
        return await self.answer_maybe(number)

    async def answer_maybe(self, number: int) -> Answer:
        """The verdict on one number the filter did not rule out."""
        return (await self.answer_maybes([number]))[0]

    async def answer_maybes(self, maybes: Sequence[int]) -> list[Answer]:
        """The verdicts on numbers the filter did not rule out, in their order, with one
        query for all that the cache cannot answer."""
        now = self.clock()
        found, degraded = await self._evidence_for(maybes, now)
        answers = []
        for number in maybes:
            evidence = found.get(number)
            if evidence is None:  # nothing known while degraded
                answer = Answer(number, Evidence(number), UNKNOWN, degraded)
            else:
                answer = Answer(number, evidence, self._judge(evidence, now), degraded)
                self._checks[_maybe_outcome(answer)] += 1
            self._verdicts[answer.judgement.verdict.value] += 1
            answers.append(answer)
        return answers

    def _judge(self, evidence: Evidence, now: datetime) -> Judgement:
        """Judge evidence as of now; the judgement of the same evidence (the same cached
        object) made less than JUDGEMENT_REUSE ago is used again. A hot number has hundreds
        of voices and is looked up thousands of times a second: it is judged about once a
        second, and its score's decay over that second is nothing anyone would see."""
        memo = self._judged.get(evidence.number)
        if memo is not None:
            judged, at, judgement = memo
            if judged is evidence and timedelta(0) <= now - at < JUDGEMENT_REUSE:
                return judgement
        judgement = judge(evidence, now, self.config.rules)
        if len(evidence.voices) >= MEMO_VOICES:
            if len(self._judged) >= self.cache.size:
                self._judged.clear()
            self._judged[evidence.number] = (evidence, now, judgement)
        return judgement

    async def read(self, number: int, now: datetime) -> Answer:
        """The verdict from Postgres itself, as of `now`, uncounted: a writer's answer."""
        evidence = (await self._evidence([number], now))[number]
        return Answer(number, evidence, judge(evidence, now, self.config.rules))

    async def _evidence_for(
        self, maybes: Sequence[int], now: datetime
    ) -> tuple[dict[int, Evidence], bool]:
        """Evidence for the filter's maybes: from the cache while the feed keeps it
        current (or from another lookup's read of it under way), else from Postgres; from
        the cache alone (degraded) if Postgres is gone."""
        found: dict[int, Evidence] = {}
        missing: Sequence[int] = maybes
        shared: dict[int, asyncio.Future[Evidence | None]] = {}
        if self._feed.live:
            missing = []
            for number in maybes:
                cached = self.cache.get(number, now)
                if cached is not None:
                    found[number] = cached
                elif (reading := self.cache.read_in_flight(number)) is not None:
                    shared[number] = reading
                else:
                    missing.append(number)
        degraded = await self._read(missing, now, found) if missing else False
        again = []
        for number, reading in shared.items():
            await asyncio.wait((reading,))  # never cancels the read, which is not ours
            if reading.cancelled():  # that read failed: read it here
                again.append(number)
            elif (evidence := reading.result()) is not None:
                found[number] = evidence
        if again:
            degraded = await self._read(again, now, found) or degraded
        return found, degraded

    async def _read(
        self, numbers: Sequence[int], now: datetime, found: dict[int, Evidence]
    ) -> bool:
        """Read numbers' evidence from Postgres into `found` and the cache, announced for
        other lookups to share while the feed is live; True if Postgres could not be
        reached (then whatever the cache still has goes into `found`)."""
        generation = self.cache.generation
        futures = self.cache.reading(numbers) if self._feed.live else {}
        try:
            read = await self._evidence(numbers, now)
        except BaseException as err:
            self.cache.read_done(futures, None)
            if not isinstance(err, store.database.DATABASE_UNAVAILABLE):
                raise
            for number in numbers:  # whatever the cache still has, feed or not
                cached = self.cache.get(number, now)
                if cached is not None:
                    found[number] = cached
            return True
        self.cache.read_done(futures, read)
        window = self.config.rules.window
        for evidence in read.values():
            found[evidence.number] = evidence
            if evidence.known:
                self.cache.put(evidence, now, window, generation)
        return False

    async def _evidence(self, numbers: Sequence[int], now: datetime) -> dict[int, Evidence]:
        return await store.reports.evidence(
            self.pool, numbers, window_start(now, self.config.rules)
        )


def _maybe_outcome(answer: Answer) -> str:
    """How a filter "maybe" turned out: listed, stale (known but no longer listed), or a
    false positive (nothing stored)."""
    if not answer.evidence.known:
        return "false_positive"
    return "stale" if answer.judgement.verdict is Verdict.UNKNOWN else "listed"


VERDICTS = web.AppKey("verdicts", Verdicts)


async def verdicts(app: web.Application) -> AsyncIterator[None]:
    """The lookups' owner, answering from the live filter, the positive cache and Postgres."""
    app[VERDICTS] = Verdicts(
        app[POOL],
        app[LIVE_FILTER],
        app[CACHE],
        app[FEED],
        app[METRICS],
        app[CONFIG],
        app[CLOCK],
    )
    yield
