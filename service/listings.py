"""Looking numbers up, reporting and moderating them: the Bloom filter in front, Postgres behind.

A number the filter has never seen is answered "unknown" without a database round trip;
only a "maybe" reads what is stored about it, and the verdict is judged then, as of now,
so expiry and delisting take effect at once whatever the filter still holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from service import store
from service.filter import NumberFilter, make_filter
from service.metrics import Metrics
from service.reputation import (
    UNKNOWN,
    Evidence,
    Judgement,
    Rules,
    Verdict,
    judge,
    window_start,
)
from service.store import Actor, NewReport

REPORTER_KEY_SETTING = "reporter_hash_key"
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock; tests pass their own."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a lookup says about one number."""

    number: int
    evidence: Evidence
    judgement: Judgement


@dataclass(frozen=True, slots=True)
class Report:
    """A report as a client sends it, number already normalised."""

    number: int
    category: str
    reporter: str
    """The app's pseudonymous id of the person reporting; only a keyed hash is kept."""
    description: str | None
    occurred_at: datetime | None


async def build_filter(
    pool: asyncpg.Pool, backend: str, error_rate: float, min_capacity: int
) -> NumberFilter:
    """A filter holding every number stored about, sized with room to grow."""
    capacity = max(min_capacity, 2 * await store.count_known_numbers(pool))
    number_filter = make_filter(backend, capacity, error_rate)
    async for numbers in store.known_numbers(pool):
        number_filter.update(numbers)
    return number_filter


class Listings:
    """The read and write paths for numbers in one process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        number_filter: NumberFilter,
        metrics: Metrics,
        reporter_key: bytes,
        rules: Rules,
        reports_per_reporter_per_day: int,
        clock: Clock,
    ) -> None:
        self.pool = pool
        self.filter = number_filter
        self.rules = rules
        self.clock = clock
        self._metrics = metrics
        self._reporter_key = reporter_key
        self._reports_per_reporter_per_day = reports_per_reporter_per_day
        self._own_imports: set[int] = set()
        self._loading: set[asyncio.Task[None]] = set()
        self._negative = metrics.filter_checks.labels("negative")
        self._verdicts = {verdict: metrics.lookups.labels(verdict.value) for verdict in Verdict}
        metrics.filter_entries.set_function(lambda: self.filter.entries)
        metrics.filter_capacity.set_function(lambda: self.filter.capacity)
        metrics.filter_bytes.set_function(lambda: self.filter.nbytes)

    async def lookup(self, number: int) -> Answer:
        """The verdict on one number."""
        return (await self.lookup_many([number]))[0]

    async def lookup_many(self, numbers: Sequence[int]) -> list[Answer]:
        """The verdicts on many numbers, in their order, with one query for all the maybes."""
        now = self.clock()
        maybes = [number for number in numbers if number in self.filter]
        self._negative.inc(len(numbers) - len(maybes))
        found = await self._evidence(maybes, now) if maybes else {}
        answers = []
        for number in numbers:
            evidence = found.get(number)
            if evidence is None:  # not in the filter: certainly nothing is stored
                answer = Answer(number, Evidence(number), UNKNOWN)
            else:
                answer = Answer(number, evidence, judge(evidence, now, self.rules))
                self._metrics.filter_checks.labels(_maybe_outcome(answer)).inc()
            self._verdicts[answer.judgement.verdict].inc()
            answers.append(answer)
        return answers

    async def report(self, report: Report, api_key_id: int) -> tuple[int, Answer]:
        """Store a report and list its number; return the report id and the new verdict.

        Raises store.ReporterLimitReached past the per-reporter daily limit.
        """
        now = self.clock()
        new_report = NewReport(
            number=report.number,
            category=report.category,
            reporter_hash=hmac.digest(
                self._reporter_key, report.reporter.encode("utf-8"), hashlib.sha256
            ),
            description=report.description,
            occurred_at=report.occurred_at,
            received_at=now,
            api_key_id=api_key_id,
        )
        report_id = await store.add_report(
            self.pool, new_report, self._reports_per_reporter_per_day
        )
        self.filter.add(report.number)
        self._metrics.reports_accepted.labels(report.category).inc()
        return report_id, await self._answer(report.number, now)

    async def list_trusted(
        self, number: int, source: str, category: str, note: str | None, actor: Actor
    ) -> Answer:
        """List a number as a scam on a trusted source's word."""
        now = self.clock()
        await store.list_trusted(self.pool, number, source, category, note, actor, now)
        self.filter.add(number)
        return await self._answer(number, now)

    async def delist(self, number: int, reason: str, actor: Actor) -> bool:
        """End every listing of the number at once; False if nothing was listed."""
        return await store.delist(self.pool, number, reason, actor, self.clock())

    async def allowlist_add(
        self, number: int, owner: str, note: str | None, actor: Actor
    ) -> Answer:
        """Verify a number."""
        now = self.clock()
        await store.allowlist_add(self.pool, number, owner, note, actor, now)
        self.filter.add(number)
        return await self._answer(number, now)

    async def allowlist_remove(self, number: int, reason: str | None, actor: Actor) -> bool:
        """Take a number off the allowlist; False if it was not on it."""
        return await store.allowlist_remove(self.pool, number, reason, actor, self.clock())

    async def resolve_appeal(
        self, appeal_id: int, delist: bool, note: str, actor: Actor
    ) -> store.Appeal | None:
        """Decide an open appeal; see store.resolve_appeal."""
        return await store.resolve_appeal(self.pool, appeal_id, delist, note, actor, self.clock())

    def add_numbers(self, numbers: Collection[int]) -> None:
        """Put numbers in the filter ahead of their commit: a "maybe" for a number whose
        import then fails costs one database read, never a wrong answer."""
        self.filter.update(numbers)

    def own_import(self, import_id: int) -> None:
        """This process made the import: its numbers are already in the filter."""
        self._own_imports.add(import_id)

    def import_committed(self, import_id: int) -> None:
        """Another process's import committed: load its numbers into the filter."""
        if import_id in self._own_imports:
            self._own_imports.discard(import_id)
            return
        task = asyncio.get_running_loop().create_task(self._load_import(import_id))
        self._loading.add(task)
        task.add_done_callback(self._loading.discard)

    async def close(self) -> None:
        """Stop loading other processes' imports: the process is shutting down."""
        for task in list(self._loading):
            task.cancel()
        await asyncio.gather(*self._loading, return_exceptions=True)

    async def _load_import(self, import_id: int) -> None:
        async for numbers in store.imported_numbers(self.pool, import_id):
            self.add_numbers(numbers)

    async def _evidence(self, numbers: Sequence[int], now: datetime) -> dict[int, Evidence]:
        return await store.get_evidence(self.pool, numbers, window_start(now, self.rules))

    async def _answer(self, number: int, now: datetime) -> Answer:
        evidence = (await self._evidence([number], now))[number]
        return Answer(number, evidence, judge(evidence, now, self.rules))


def _maybe_outcome(answer: Answer) -> str:
    """How a filter "maybe" turned out: listed, stale (known but no longer listed), or a
    false positive (nothing stored)."""
    if not answer.evidence.known:
        return "false_positive"
    return "stale" if answer.judgement.verdict is Verdict.UNKNOWN else "listed"
