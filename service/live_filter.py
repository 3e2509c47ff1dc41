"""The live filter: the Bloom filter lookups ask and how far into the change log it holds;
built at start, saved as snapshots, rebuilt and swapped, checked on schedule.

The filter holds every number listed up to `cursor`: the catch-up (feed.py) adds a change's
numbers before it moves the cursor past it, and nothing else adds to it (the rule for writes
is in feed.py). At start it is loaded from the newest snapshot (store.snapshots.FilterSnapshot) that
the log still covers, or built from the tables; it is saved once enough was added since the
newest snapshot, and at a clean stop, so a start replays little. A Bloom filter cannot
forget, so `rebuild` builds a fresh one from Postgres in the background and swaps it in
between two lookups; numbers added meanwhile are recorded and added to the new filter
before the swap. Upkeep rebuilds it when it is full, too stale or too old.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from . import store
from .clock import Clock
from .config import Config
from .filter import NumberFilter, capacity_for, load_filter, make_filter
from .metrics import Metrics
from .reputation import window_start
from .state import CLOCK, CONFIG, METRICS, POOL

log = logging.getLogger(__name__)

STOP_SNAPSHOT_SECONDS = 10.0
_SNAPSHOT_AT_STOP_ERRORS: tuple[type[Exception], ...] = (
    TimeoutError,
    *store.database.DATABASE_UNAVAILABLE,
)


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


class LiveFilter:
    """The filter this process answers from, and the last change it holds."""

    def __init__(
        self, pool: asyncpg.Pool, built: Built, metrics: Metrics, config: Config, clock: Clock
    ) -> None:
        self.pool = pool
        self.filter = built.filter
        self.cursor = built.cursor
        """Every change up to this seq is applied to the filter (and the positive cache)."""
        self.config = config
        self.clock = clock
        self.built_at = time.monotonic()
        self._metrics = metrics
        self._since_snapshot = 0
        """Numbers added from the change log since the newest snapshot this process knows."""
        self._swapped: list[Callable[[NumberFilter], None]] = []
        self._background: set[asyncio.Task[object]] = set()
        self._recording: list[Collection[int]] | None = None
        self._rebuilding = asyncio.Lock()
        metrics.filter_entries.set_function(lambda: self.filter.entries)
        metrics.filter_capacity.set_function(lambda: self.filter.capacity)
        metrics.filter_bytes.set_function(lambda: self.filter.nbytes)
        metrics.change_cursor.set_function(lambda: self.cursor)
        self._count_build(built)

    def on_swap(self, use: Callable[[NumberFilter], None]) -> None:
        """Hand `use` the filter now and each one swapped in later, so a lookup holds the
        filter itself rather than asking for it through this object."""
        self._swapped.append(use)
        use(self.filter)

    def add_numbers(self, numbers: Collection[int]) -> None:
        """Put numbers in the filter, once what listed them has committed: a number in the
        filter that nothing lists costs a database read on every lookup of it, until the
        next rebuild."""
        if len(numbers) == 1:  # add() keeps rbloom's count exact; update() leaves an estimate
            self.filter.add(next(iter(numbers)))
        else:
            self.filter.update(numbers)
        if self._recording is not None:
            self._recording.append(numbers)

    def applied(self, seq: int, added: int) -> None:
        """The change `seq` is applied, having added `added` numbers: move the cursor past it."""
        self._since_snapshot += added
        self.cursor = seq

    def snapshot_if_due(self) -> None:
        """Save the filter in the background once filter_snapshot_after numbers were added
        since the newest snapshot."""
        if self._since_snapshot >= self.config.filter_snapshot_after:
            self._in_background(self.save_snapshot())

    def _in_background(self, work: Coroutine[Any, Any, object]) -> None:
        """Run work in a task that close() cancels."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
            for use in self._swapped:
                use(built.filter)
            self.built_at = time.monotonic()
            self._count_build(built)
        if snapshot is not None:
            self._since_snapshot = 0
            await store.snapshots.save(self.pool, snapshot)
        return built

    async def rebuild_behind(self) -> None:
        """The cursor is behind a pruned log: rebuild, then go on from the build's cursor."""
        built = await self.rebuild()
        self.cursor = max(self.cursor, built.cursor)

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
        saved already (another replica's); True if saved. The filter may hold some numbers
        past the cursor (an import still being read in): a maybe more, never a number less."""
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

    async def maintain(self) -> None:
        """Forever: run upkeep every filter_check_interval. Errors are logged and retried."""
        while True:
            await asyncio.sleep(self.config.filter_check_interval.total_seconds())
            try:
                await self.upkeep()
            except store.database.DATABASE_UNAVAILABLE as err:
                log.warning("filter maintenance: database unavailable (%r)", err)
            except Exception:
                log.exception("filter maintenance failed")

    async def upkeep(self) -> str | None:
        """Rebuild the filter if it is full, too stale or too old; return why, if it was."""
        config, now = self.config, self.clock()
        listed = await store.snapshots.count_listed_rows(self.pool, window_start(now, config.rules))
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


LIVE_FILTER = web.AppKey("live_filter", LiveFilter)


async def live_filter(app: web.Application) -> AsyncIterator[None]:
    """The live filter (from the newest snapshot, or from the tables) and its upkeep in the
    background; saved at a clean stop."""
    config, pool, clock = app[CONFIG], app[POOL], app[CLOCK]
    built = await load_snapshot(pool, config) if config.filter_snapshots else None
    if built is None:
        built = await build_filter(pool, config, clock())
    live = LiveFilter(pool, built, app[METRICS], config, clock)
    app[LIVE_FILTER] = live
    snapshot = live.snapshot_of(built)  # so the next process to start need not read it all
    if snapshot is not None:
        live.save_snapshot_later(snapshot)
    upkeep = asyncio.create_task(live.maintain())
    yield
    upkeep.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await upkeep
    await live.close()
