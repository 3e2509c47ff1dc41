"""Looking numbers up, reporting and moderating them: the Bloom filter in front, Postgres behind.

A number the filter has never seen is answered "unknown" without a database round trip; a
"maybe" is answered from the positive cache (service/cache.py) or reads what is stored about
it, and the verdict is judged then, as of now, so expiry and delisting take effect at once
whatever the filter still holds.

The filter and cache follow the change log (store.changes.since): `catch_up` applies every
change past this process's cursor, an import's numbers included, before it moves the cursor
past it, so the filter holds every number listed up to the cursor. Start-up runs it before
the process serves; the feed (service/feed.py) runs it on each notification and after each
reconnect. The filter is saved (store.snapshots.FilterSnapshot) once enough was added since
the newest snapshot, and at a clean stop, so a start replays little. A Bloom filter cannot
forget, so `rebuild` builds a fresh one from Postgres in the background and swaps it in
between two lookups; numbers added meanwhile are recorded and added to the new filter before
the swap.

When Postgres cannot be reached, lookups still answer from the filter and the cache, marked
degraded: a negative is still certain, a cached number keeps its evidence, and any other
"maybe" is answered unknown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from . import store
from .cache import EvidenceCache
from .config import Config
from .filter import NumberFilter, capacity_for, load_filter, make_filter
from .metrics import Metrics
from .reporters import community_reporter_hash
from .reputation import (
    UNKNOWN,
    Evidence,
    Judgement,
    Verdict,
    judge,
    window_start,
)

log = logging.getLogger(__name__)

CHANGE_PAGE = 10_000
"""Changes read from the log at a time."""
ADDING_KINDS = frozenset({"reported", "listed", "allowlisted"})
"""Changes that may give a number a verdict: it goes into the filter."""
Clock = Callable[[], datetime]
STOP_SNAPSHOT_SECONDS = 10.0
_SNAPSHOT_AT_STOP_ERRORS: tuple[type[Exception], ...] = (
    TimeoutError,
    *store.database.DATABASE_UNAVAILABLE,
)


def utc_now() -> datetime:
    """The real clock; tests pass their own."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Answer:
    """What a lookup says about one number."""

    number: int
    evidence: Evidence
    judgement: Judgement
    degraded: bool = False
    """Postgres could not be reached: answered from the filter and cache alone."""


@dataclass(frozen=True, slots=True)
class Report:
    """A report as a client sends it, number already normalised."""

    number: int
    category: str
    reporter: str
    """The app's pseudonymous id of the person reporting; only a keyed hash is kept."""
    description: str | None
    occurred_at: datetime | None


@dataclass(frozen=True, slots=True)
class Built:
    """A filter built from Postgres, and the last change it holds."""

    filter: NumberFilter
    cursor: int
    seconds: float
    source: str
    """"snapshot" (a saved filter plus the changes after it) or "tables" (a full read)."""


async def build_filter(pool: asyncpg.Pool, config: Config, now: datetime) -> Built:
    """A filter holding every listed number, from a full read of the tables."""
    started = time.perf_counter()
    since = window_start(now, config.rules)
    async with store.snapshots.listed_numbers(pool, since) as listed:
        capacity = capacity_for(listed.rows, config.filter_min_capacity, config.filter_headroom)
        number_filter = make_filter(config.filter_backend, capacity, config.filter_error_rate)
        await listed.copy(number_filter.update)
    return Built(number_filter, listed.cursor, time.perf_counter() - started, "tables")


async def load_snapshot(pool: asyncpg.Pool, config: Config) -> Built | None:
    """The newest saved filter, if it suits this configuration and the log still holds
    every change after it."""
    started = time.perf_counter()
    snapshot = await store.snapshots.latest(pool)
    if snapshot is None or snapshot.error_rate != config.filter_error_rate:
        return None
    first = await store.changes.first(pool)
    if first is not None and first > snapshot.cursor + 1:
        return None  # changes it lacks were pruned
    loaded = load_filter(
        config.filter_backend,
        snapshot.capacity,
        snapshot.error_rate,
        snapshot.entries,
        snapshot.data,
    )
    if loaded is None:
        return None
    return Built(loaded, snapshot.cursor, time.perf_counter() - started, "snapshot")


class Listings:
    """The read and write paths for numbers in one process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        built: Built,
        metrics: Metrics,
        reporter_key: bytes,
        config: Config,
        clock: Clock,
    ) -> None:
        self.pool = pool
        self.filter = built.filter
        self.cursor = built.cursor
        """Every change up to this seq is applied here."""
        self.config = config
        self.clock = clock
        self.cache = EvidenceCache(
            config.cache_size, config.cache_max_age, metrics.cache_lookups.counts
        )
        self.feed_live = False
        """The change feed is connected and caught up: the cache may be trusted."""
        self.built_at = time.monotonic()
        self._metrics = metrics
        self._reporter_key = reporter_key
        self._since_snapshot = 0
        """Numbers added from the change log since the newest snapshot this process knows."""
        self._background: set[asyncio.Task[object]] = set()
        self._recording: list[Collection[int]] | None = None
        self._catching_up = asyncio.Lock()
        self._rebuilding = asyncio.Lock()
        self._checks = metrics.filter_checks.counts
        self._verdicts = metrics.lookups.counts
        metrics.filter_entries.set_function(lambda: self.filter.entries)
        metrics.filter_capacity.set_function(lambda: self.filter.capacity)
        metrics.filter_bytes.set_function(lambda: self.filter.nbytes)
        metrics.cache_entries.set_function(lambda: len(self.cache))
        metrics.change_cursor.set_function(lambda: self.cursor)
        metrics.database_up.set_function(lambda: float(self.feed_live))
        self._count_build(built)

    def ruled_out(self, number: int) -> bool:
        """Whether the filter rules the number out, so its answer is unknown without reading
        anything (counted as such); False for a maybe, which needs lookup(). The fast path
        of single and batch lookups."""
        if number in self.filter:
            return False
        self.count_ruled_out(1)
        return True

    def count_ruled_out(self, count: int) -> None:
        """Count numbers a batch found not in the filter (answered unknown), as ruled_out()
        counts one."""
        self._checks["negative"] += count
        self._verdicts["unknown"] += count

    async def lookup(self, number: int) -> Answer:
        """The verdict on one number."""
        return (await self.lookup_many([number]))[0]

    async def lookup_many(self, numbers: Sequence[int]) -> list[Answer]:
        """The verdicts on many numbers, in their order, with one query for all the maybes
        the cache cannot answer."""
        now = self.clock()
        maybes = [number for number in numbers if number in self.filter]
        negatives = len(numbers) - len(maybes)
        self._checks["negative"] += negatives
        found: dict[int, Evidence] = {}
        degraded = False
        if maybes:
            found, degraded = await self._evidence_for(maybes, now)
        unsure = frozenset(maybes) if degraded else frozenset()  # negatives stay certain
        answers = []
        for number in numbers:
            evidence = found.get(number)
            if evidence is None:  # not in the filter, or nothing known while degraded
                answer = Answer(number, Evidence(number), UNKNOWN, number in unsure)
            else:
                judgement = judge(evidence, now, self.config.rules)
                answer = Answer(number, evidence, judgement, number in unsure)
                self._count_maybe(answer)
            self._verdicts[answer.judgement.verdict.value] += 1
            answers.append(answer)
        return answers

    async def _evidence_for(
        self, maybes: Sequence[int], now: datetime
    ) -> tuple[dict[int, Evidence], bool]:
        """Evidence for the filter's maybes: from the cache while the feed keeps it
        current, else from Postgres; from the cache alone (degraded) if Postgres is gone."""
        found: dict[int, Evidence] = {}
        missing: Sequence[int] = maybes
        if self.feed_live:
            missing = []
            for number in maybes:
                cached = self.cache.get(number, now)
                if cached is None:
                    missing.append(number)
                else:
                    found[number] = cached
        if not missing:
            return found, False
        generation = self.cache.generation
        try:
            read = await self._evidence(missing, now)
        except store.database.DATABASE_UNAVAILABLE:
            for number in missing:  # whatever the cache still has, feed or not
                cached = self.cache.get(number, now)
                if cached is not None:
                    found[number] = cached
            return found, True
        window = self.config.rules.window
        for evidence in read.values():
            found[evidence.number] = evidence
            if evidence.known:
                self.cache.put(evidence, now, window, generation)
        return found, False

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
        report_id = await store.reports.add(
            self.pool, new_report, self.config.reports_per_reporter_per_day
        )
        self._changed(report.number, listed=True)
        self._metrics.reports_accepted.labels(report.category).inc()
        return report_id, await self._answer(report.number, now)

    async def list_trusted(
        self, number: int, source: str, category: str, note: str | None, actor: store.audit.Actor
    ) -> Answer:
        """List a number as a scam on a trusted source's word."""
        now = self.clock()
        await store.trusted.list_number(self.pool, number, source, category, note, actor, now)
        self._changed(number, listed=True)
        return await self._answer(number, now)

    async def delist(self, number: int, reason: str, actor: store.audit.Actor) -> bool:
        """End every listing of the number at once; False if nothing was listed."""
        delisted = await store.trusted.delist(self.pool, number, reason, actor, self.clock())
        self._changed(number, listed=False)
        return delisted

    async def allowlist_add(
        self, number: int, owner: str, note: str | None, actor: store.audit.Actor
    ) -> Answer:
        """Verify a number."""
        now = self.clock()
        await store.allowlist.add(self.pool, number, owner, note, actor, now)
        self._changed(number, listed=True)
        return await self._answer(number, now)

    async def allowlist_remove(
        self, number: int, reason: str | None, actor: store.audit.Actor
    ) -> bool:
        """Take a number off the allowlist; False if it was not on it."""
        removed = await store.allowlist.remove(self.pool, number, reason, actor, self.clock())
        self._changed(number, listed=False)
        return removed

    async def resolve_appeal(
        self, appeal_id: int, delist: bool, note: str, actor: store.audit.Actor
    ) -> store.appeals.Appeal | None:
        """Decide an open appeal; see store.appeals.resolve."""
        appeal = await store.appeals.resolve(
            self.pool, appeal_id, delist, note, actor, self.clock()
        )
        if appeal is not None:
            self._changed(appeal.number, listed=False)
        return appeal

    def _changed(self, number: int, listed: bool) -> None:
        """This process changed a number: answer from the change at once, before the
        change log brings it round again."""
        if listed:
            self.add_numbers([number])
        self.cache.invalidate(number)

    def add_numbers(self, numbers: Collection[int]) -> None:
        """Put numbers in the filter, once what listed them has committed: a number in the
        filter that nothing lists costs a database read on every lookup of it, until the
        next rebuild."""
        if len(numbers) == 1:  # a change, maybe applied twice (here, then from the log)
            self.filter.add(next(iter(numbers)))
        else:
            self.filter.update(numbers)
        if self._recording is not None:
            self._recording.append(numbers)

    async def catch_up(self) -> int:
        """Apply every change logged past the cursor; return how many. One run at a time.

        The cursor passes a change only once it is applied, an import's numbers all read
        into the filter: so a lookup here never misses a number listed up to the cursor,
        and a snapshot taken at the cursor holds every one of them."""
        applied = 0
        async with self._catching_up:
            while True:
                changes = await store.changes.since(self.pool, self.cursor, CHANGE_PAGE)
                if changes and changes[0].seq > self.cursor + 1:
                    first = await store.changes.first(self.pool)
                    if first is not None and first > self.cursor + 1:
                        log.warning("the change log was pruned past this process: rebuilding")
                        await self._rebuild_behind()
                        continue
                for change in changes:
                    self._since_snapshot += await self._apply(change)
                    self.cursor = change.seq
                applied += len(changes)
                if len(changes) < CHANGE_PAGE:
                    break
        if self._since_snapshot >= self.config.filter_snapshot_after:
            self._in_background(self.save_snapshot())
        return applied

    async def _apply(self, change: store.changes.Change) -> int:
        """Apply one change to the filter and cache; return how many numbers it added."""
        if change.import_id is not None:
            self.cache.clear()  # its numbers' trusted sources changed
            return await self._load_import(change.import_id)
        assert change.number is not None
        self.cache.invalidate(change.number)
        if change.kind not in ADDING_KINDS:
            return 0
        self.add_numbers([change.number])
        return 1

    def _in_background(self, work: Coroutine[Any, Any, object]) -> None:
        """Run work in a task that close() cancels."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _load_import(self, import_id: int) -> int:
        loaded = 0
        async for numbers in store.imports.numbers(self.pool, import_id):
            self.add_numbers(numbers)
            loaded += len(numbers)
        return loaded

    async def rebuild(self) -> Built:
        """Build a fresh filter from Postgres and swap it in; the live one keeps answering
        meanwhile, and what is added to it meanwhile goes into the new one too."""
        async with self._rebuilding:
            recorded: list[Collection[int]] = []
            self._recording = recorded
            try:
                built = await build_filter(self.pool, self.config, self.clock())
            finally:
                self._recording = None
            snapshot = self.snapshot_of(built)
            for numbers in recorded:  # no await from here to the swap
                built.filter.update(numbers)
            self.filter = built.filter
            self.built_at = time.monotonic()
            self._count_build(built)
        if snapshot is not None:
            self._since_snapshot = 0
            await store.snapshots.save(self.pool, snapshot)
        return built

    def snapshot_of(self, built: Built) -> store.snapshots.FilterSnapshot | None:
        """A just-built filter's bits to save for other processes' start, if it was built
        from the tables and snapshots are on; taken before anything else is added."""
        if built.source != "tables" or not self.config.filter_snapshots:
            return None
        return self._snapshot(built.filter, built.cursor)

    def _snapshot(
        self, number_filter: NumberFilter, cursor: int
    ) -> store.snapshots.FilterSnapshot | None:
        """A filter's bits as of `cursor`, None if its backend cannot save them."""
        data = number_filter.to_bytes()
        if data is None:
            return None
        return store.snapshots.FilterSnapshot(
            cursor=cursor,
            created_at=self.clock(),
            capacity=number_filter.capacity,
            error_rate=number_filter.error_rate,
            entries=number_filter.entries,
            data=data,
        )

    def save_snapshot_later(self, snapshot: store.snapshots.FilterSnapshot) -> None:
        """Save a snapshot in the background (cancelled at shutdown)."""
        self._in_background(store.snapshots.save(self.pool, snapshot))

    async def save_snapshot(self) -> bool:
        """Save the live filter as of the cursor, unless snapshots are off or one as new is
        saved already (another replica's); True if saved. The filter may hold a few numbers
        past the cursor (this process's own changes, added ahead): a maybe more, never a
        number less."""
        if not self.config.filter_snapshots:
            return False
        saved = await store.snapshots.newest_cursor(self.pool)
        # No await from here until the snapshot is taken: the cursor and the bits agree.
        self._since_snapshot = 0  # counted afresh, whether this one is saved or not needed
        if saved is not None and saved >= self.cursor:
            return False
        snapshot = self._snapshot(self.filter, self.cursor)
        if snapshot is None:
            return False
        await store.snapshots.save(self.pool, snapshot)
        return True

    async def _rebuild_behind(self) -> None:
        """The cursor is behind a pruned log: rebuild, then go on from the build's cursor."""
        built = await self.rebuild()
        self.cache.clear()
        self.cursor = max(self.cursor, built.cursor)

    async def maintain(self) -> None:
        """Forever: rebuild the filter on schedule, when it is full, or when too many of its
        entries are stale; prune the change log and erase old report details. Errors are
        logged and retried."""
        config = self.config
        while True:
            await asyncio.sleep(config.filter_check_interval.total_seconds())
            try:
                await self.upkeep()
            except store.database.DATABASE_UNAVAILABLE as err:
                log.warning("filter maintenance: database unavailable (%r)", err)
            except Exception:
                log.exception("filter maintenance failed")

    async def upkeep(self) -> str | None:
        """Prune the change log and erase old report details; rebuild the filter if it is
        full, too stale or too old.
        Returns why it was rebuilt, if it was."""
        config, now = self.config, self.clock()
        await store.changes.prune(self.pool, config.change_retention)
        await self.erase_old_report_details(now)
        listed = await store.snapshots.count_listed_rows(
            self.pool, window_start(now, self.config.rules)
        )
        entries = self.filter.entries
        stale_share = max(0.0, 1 - listed / entries) if entries else 0.0
        self._metrics.filter_stale_share.set(stale_share)
        age = time.monotonic() - self.built_at
        reason = None
        if listed > self.filter.capacity:
            reason = f"{listed} listed numbers exceed its capacity {self.filter.capacity}"
        elif stale_share > config.filter_stale_share:
            reason = f"{stale_share:.0%} of its entries are stale"
        elif age > config.filter_rebuild_interval.total_seconds():
            reason = f"it is {age / 3600:.1f} h old"
        if reason is not None:
            built = await self.rebuild()
            log.info("filter rebuilt from %s in %.2f s: %s", built.source, built.seconds, reason)
        return reason

    async def erase_old_report_details(self, now: datetime) -> int:
        """Erase report details past their retention period, but none a verdict may still
        need: a reporter counts while their last report is in the window."""
        keep = max(self.config.report_retention, self.config.rules.window)
        erased = await store.reports.erase_details(self.pool, now - keep)
        if erased:
            log.info("erased the details of %d reports older than %d days", erased, keep.days)
        return erased

    async def close(self) -> None:
        """The process is stopping cleanly: stop the work in the background, then save the
        filter if changes were added since the newest snapshot, so the next start replays
        none of them. A database that does not answer within STOP_SNAPSHOT_SECONDS only
        costs the next start a longer catch-up."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._since_snapshot == 0:
            return
        try:
            async with asyncio.timeout(STOP_SNAPSHOT_SECONDS):
                await self.save_snapshot()
        except _SNAPSHOT_AT_STOP_ERRORS as err:
            log.warning("no filter snapshot saved at stop (%s)", type(err).__name__)

    def _count_build(self, built: Built) -> None:
        self._metrics.filter_builds.labels(built.source).inc()
        self._metrics.filter_build_seconds.labels(built.source).set(built.seconds)

    def _count_maybe(self, answer: Answer) -> None:
        self._checks[_maybe_outcome(answer)] += 1

    async def _evidence(self, numbers: Sequence[int], now: datetime) -> dict[int, Evidence]:
        return await store.reports.evidence(
            self.pool, numbers, window_start(now, self.config.rules)
        )

    async def _answer(self, number: int, now: datetime) -> Answer:
        evidence = (await self._evidence([number], now))[number]
        return Answer(number, evidence, judge(evidence, now, self.config.rules))


def _maybe_outcome(answer: Answer) -> str:
    """How a filter "maybe" turned out: listed, stale (known but no longer listed), or a
    false positive (nothing stored)."""
    if not answer.evidence.known:
        return "false_positive"
    return "stale" if answer.judgement.verdict is Verdict.UNKNOWN else "listed"
