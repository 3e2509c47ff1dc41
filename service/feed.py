"""The change feed: LISTEN on Postgres, catch up from the change log, apply to the filter
and the positive cache; and the one rule for writes.

**The rule for writes.** Every write that can change a verdict (a report, a listing, a
delisting, the allowlist, an appeal's decision, an import) goes through the store, which logs
a change in the same transaction. The filter and the positive cache of every process, this
one's included, learn of it only by catching up from that log, here. A writer that must read
its own write (its answer, or the next lookup its client makes here) awaits `catch_up` before
it answers.

The catch-up applies every change past the live filter's cursor, an import's numbers
included, before it moves the cursor past it, so the filter holds every number listed up to
the cursor. Start-up runs it before the process serves; the feed runs it on each
notification, on every keepalive and after each reconnect, so no change is lost. API keys are
loaded into the key cache once the feed listens (so no change slips between the two), and
again after each new key; a revocation drops that key at once. The key cache and the
positive cache are trusted only while the feed is connected and caught up; in between they
are checked against Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from . import store
from .auth import KEY_CACHE, KeyCache
from .cache import CACHE, EvidenceCache
from .live_filter import LIVE_FILTER, LiveFilter
from .metrics import Metrics
from .state import CONFIG, METRICS, POOL

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0
"""How often an idle listening connection is checked (and the log read), so a dead one is
noticed."""
RETRY_SECONDS = 1.0
APPLICATION_NAME = "callguard-feed"
"""How the listening connection shows in pg_stat_activity."""


CHANGE_PAGE = 10_000
"""Changes read from the log at a time."""
ADDING_KINDS = frozenset({"reported", "listed", "allowlisted"})
"""Changes that may give a number a verdict: it goes into the filter."""
FEED_START_SECONDS = 10.0
"""How long start-up waits for the change feed before serving anyway."""


class Feed:
    """This process's follower of the change log: what it keeps current, and whether it is
    connected and caught up."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        live_filter: LiveFilter,
        cache: EvidenceCache,
        keys: KeyCache,
        metrics: Metrics,
    ) -> None:
        self.pool = pool
        self.live_filter = live_filter
        self.cache = cache
        self.keys = keys
        self.live = False
        """Connected and caught up: the caches may be trusted, and the process is ready."""
        self.went_live = asyncio.Event()
        self._catching_up = asyncio.Lock()
        self._runs_begun = 0
        self._last_run_done = 0
        """The number of the last catch-up that finished."""
        metrics.database_up.set_function(lambda: float(self.live))

    def set_live(self, is_live: bool) -> None:
        """The feed connected and caught up, or lost its connection."""
        self.live = is_live
        if is_live:
            self.went_live.set()

    async def catch_up(self) -> int:
        """Apply every change logged before this call, and any after; return how many. One
        run at a time: a caller that waited while a whole run began and finished after its
        call has nothing left to apply, so concurrent writers share one run.

        The cursor passes a change only once it is applied, an import's numbers all read
        into the filter: so a lookup here never misses a number listed up to the cursor,
        and a snapshot taken at the cursor holds every one of them."""
        called_after = self._runs_begun
        async with self._catching_up:
            if self._last_run_done > called_after:
                return 0
            self._runs_begun += 1
            run = self._runs_begun
            applied = await self._apply_log()
            self._last_run_done = run
        self.live_filter.snapshot_if_due()
        return applied

    async def _apply_log(self) -> int:
        live_filter, applied = self.live_filter, 0
        while True:
            changes = await store.changes.since(self.pool, live_filter.cursor, CHANGE_PAGE)
            if changes and changes[0].seq > live_filter.cursor + 1:
                first = await store.changes.first(self.pool)
                if first is not None and first > live_filter.cursor + 1:
                    log.warning("the change log was pruned past this process: rebuilding")
                    await live_filter.rebuild_behind()
                    self.cache.clear()
                    continue
            for change in changes:
                live_filter.applied(change.seq, await self._apply(change))
            applied += len(changes)
            if len(changes) < CHANGE_PAGE:
                return applied

    async def _apply(self, change: store.changes.Change) -> int:
        """Apply one change to the filter and cache; return how many numbers it added."""
        if change.import_id is not None:
            self.cache.clear()  # its numbers' trusted sources changed
            loaded = 0
            async for numbers in store.imports.numbers(self.pool, change.import_id):
                self.live_filter.add_numbers(numbers)
                loaded += len(numbers)
            return loaded
        assert change.number is not None
        self.cache.invalidate(change.number)
        if change.kind not in ADDING_KINDS:
            return 0
        self.live_filter.add_numbers([change.number])
        return 1


FEED = web.AppKey("feed", Feed)


async def change_feed(app: web.Application) -> AsyncIterator[None]:
    """The change feed into the key cache, the live filter and the positive cache; cancelled
    at shutdown. The process serves once the feed listens and has caught up (so it starts
    ready), or after FEED_START_SECONDS without, not ready until it has."""
    config = app[CONFIG]
    assert config.database_url is not None
    feed = Feed(app[POOL], app[LIVE_FILTER], app[CACHE], app[KEY_CACHE], app[METRICS])
    app[FEED] = feed
    await feed.catch_up()  # the changes after the filter's snapshot
    task = asyncio.create_task(follow_changes(config.database_url, feed))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(FEED_START_SECONDS):
            await feed.went_live.wait()
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def follow_changes(dsn: str, feed: Feed) -> None:
    """Apply other processes' changes here, reconnecting forever; cancel to stop."""
    while True:
        try:
            await _listen(dsn, feed)
            log.warning("change feed connection closed; reconnecting")
        except store.database.DATABASE_UNAVAILABLE as err:
            log.warning("change feed lost its connection (%r); retrying", err)
        except Exception:
            # Never let the feed die: while it is down the caches are bypassed, not stale.
            log.exception("change feed failed; retrying")
        await asyncio.sleep(RETRY_SECONDS)


async def _listen(dsn: str, feed: Feed) -> None:
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn, server_settings={"application_name": APPLICATION_NAME}
    )
    lost = asyncio.Event()
    more = asyncio.Event()
    try:

        def terminated(_conn: asyncpg.Connection) -> None:
            lost.set()
            more.set()  # wake the loop below

        conn.add_termination_listener(terminated)
        keys = feed.keys

        def key_changed(_conn: object, _pid: int, _channel: str, change: str) -> None:
            if keys.key_changed(change):
                more.set()  # the loop below loads the keys

        await conn.add_listener(store.keys.CHANNEL, key_changed)
        await conn.add_listener(store.changes.CHANNEL, lambda *_args: more.set())
        await _load_keys(conn, keys)  # after LISTEN: a change made meanwhile is heard
        await feed.catch_up()
        feed.set_live(True)
        while not lost.is_set():
            try:
                # Not asyncio.wait_for: on 3.11 it can swallow a cancel (the shutdown's)
                # that lands as the wait ends, and the process then never exits.
                async with asyncio.timeout(KEEPALIVE_SECONDS):
                    await more.wait()
            except TimeoutError:
                await store.database.ping(conn, timeout=KEEPALIVE_SECONDS)
            more.clear()
            if not lost.is_set():
                if keys.reload_needed:
                    await _load_keys(conn, keys)
                await feed.catch_up()
    finally:
        feed.set_live(False)
        feed.keys.suspend()
        await asyncio.shield(_close(conn))


async def _load_keys(conn: asyncpg.Connection, keys: KeyCache) -> None:
    while True:
        keys.reload_needed = False  # before reading: a key made meanwhile asks again
        revocations = keys.revocations
        active = await store.keys.active(conn)
        # A revocation heard while reading may be missing from what was read: loading it
        # would bring the revoked key back, so read again.
        if keys.revocations == revocations:
            keys.load(active)
            return


async def _close(conn: asyncpg.Connection) -> None:
    try:
        async with asyncio.timeout(2):
            await conn.close()
    except store.database.DATABASE_UNAVAILABLE:
        conn.terminate()
