"""The change feed: LISTEN on Postgres for changes other processes make, and apply them here.

API keys are loaded into the key cache once the feed listens (so no change slips between the
two), and again after each new key; a revocation drops that key at once. Number changes are
read from the change log (store.changes.since), not from the notifications, which only say
"there is more": on each one, and on every keepalive, the listings catch up from their
cursor. After a dropped connection the feed reconnects and catches up from the same cursor,
so no change is lost. The key cache and the positive cache are trusted only while the feed
is connected and caught up; in between they are checked against Postgres.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from . import store
from .auth import KeyCache

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0
"""How often an idle listening connection is checked (and the log read), so a dead one is
noticed."""
RETRY_SECONDS = 1.0
APPLICATION_NAME = "callguard-feed"
"""How the listening connection shows in pg_stat_activity."""


@dataclass(frozen=True, slots=True)
class Subscribers:
    """What the feed keeps current."""

    keys: KeyCache
    catch_up: Callable[[], Awaitable[int]]
    """Apply the change log past the process's cursor."""
    set_live: Callable[[bool], None]
    """Whether the feed is connected and caught up."""


async def follow_changes(dsn: str, subscribers: Subscribers) -> None:
    """Apply other processes' changes here, reconnecting forever; cancel to stop."""
    while True:
        try:
            await _listen(dsn, subscribers)
            log.warning("change feed connection closed; reconnecting")
        except store.database.DATABASE_UNAVAILABLE as err:
            log.warning("change feed lost its connection (%r); retrying", err)
        except Exception:
            # Never let the feed die: while it is down the caches are bypassed, not stale.
            log.exception("change feed failed; retrying")
        await asyncio.sleep(RETRY_SECONDS)


async def _listen(dsn: str, subscribers: Subscribers) -> None:
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
        keys = subscribers.keys

        def key_changed(_conn: object, _pid: int, _channel: str, change: str) -> None:
            if keys.key_changed(change):
                more.set()  # the loop below loads the keys

        await conn.add_listener(store.keys.CHANNEL, key_changed)
        await conn.add_listener(store.changes.CHANNEL, lambda *_args: more.set())
        await _load_keys(conn, keys)  # after LISTEN: a change made meanwhile is heard
        await subscribers.catch_up()
        subscribers.set_live(True)
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
                await subscribers.catch_up()
    finally:
        subscribers.set_live(False)
        subscribers.keys.suspend()
        await asyncio.shield(_close(conn))


async def _load_keys(conn: asyncpg.Connection, keys: KeyCache) -> None:
    keys.reload_needed = False  # before reading: a key made meanwhile asks again
    keys.load(await store.keys.active(conn))


async def _close(conn: asyncpg.Connection) -> None:
    try:
        async with asyncio.timeout(2):
            await conn.close()
    except store.database.DATABASE_UNAVAILABLE:
        conn.terminate()
