"""The change feed: LISTEN on Postgres for changes other processes make, and apply them here.

It carries API key changes (created, revoked) to the key cache, and numbers that became
known (reported, listed, allowlisted, imported) to the Bloom filter. The key cache is trusted only
while the listening connection is up; when it drops, the cache is cleared and bypassed
until the feed has reconnected. Numbers notified while the connection was down are not yet
caught up: a sequence-numbered change log for that is the next step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from service.auth import KeyCache
from service.store import DATABASE_UNAVAILABLE, IMPORTS_CHANNEL, KEYS_CHANNEL, NUMBERS_CHANNEL

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 5.0
"""How often an idle listening connection is checked, so a dead one is noticed."""
RETRY_SECONDS = 1.0
APPLICATION_NAME = "callguard-feed"
"""How the listening connection shows in pg_stat_activity."""


@dataclass(frozen=True, slots=True)
class Subscribers:
    """What to do with each kind of change."""

    keys: KeyCache
    add_number: Callable[[int], None]
    import_committed: Callable[[int], None]


async def follow_changes(dsn: str, subscribers: Subscribers) -> None:
    """Apply other processes' changes here, reconnecting forever; cancel to stop."""
    while True:
        try:
            await _listen(dsn, subscribers)
            log.warning("change feed connection closed; reconnecting")
        except DATABASE_UNAVAILABLE as err:
            log.warning("change feed lost its connection (%r); retrying", err)
        except Exception:
            # Never let the feed die: while it is down the key cache is bypassed, not stale.
            log.exception("change feed failed; retrying")
        await asyncio.sleep(RETRY_SECONDS)


async def _listen(dsn: str, subscribers: Subscribers) -> None:
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn, server_settings={"application_name": APPLICATION_NAME}
    )
    lost = asyncio.Event()
    try:
        conn.add_termination_listener(lambda _conn: lost.set())
        cache = subscribers.keys
        await conn.add_listener(KEYS_CHANNEL, lambda *_args: cache.clear())
        await conn.add_listener(
            NUMBERS_CHANNEL,
            lambda _conn, _pid, _channel, payload: subscribers.add_number(int(payload)),
        )
        await conn.add_listener(
            IMPORTS_CHANNEL,
            lambda _conn, _pid, _channel, payload: subscribers.import_committed(int(payload)),
        )
        cache.clear()  # changes made while nobody listened
        cache.live = True
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await conn.execute("SELECT 1", timeout=KEEPALIVE_SECONDS)
    finally:
        subscribers.keys.live = False
        subscribers.keys.clear()
        await asyncio.shield(_close(conn))


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2)
    except DATABASE_UNAVAILABLE:
        conn.terminate()
