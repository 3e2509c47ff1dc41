"""The change log: every change to what the filter holds, in commit order, and its pruning.
Processes follow it to keep their filters and caches current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg

CHANNEL = "callguard_changes"
"""NOTIFY channel: a change was logged; the payload is its seq. Processes then read the log."""
_LOCK_CHANGES = "SELECT pg_advisory_xact_lock(0x6368616e676573)"  # any constant: "changes"
_LOG_CHANGE = f"""
WITH logged AS (
    INSERT INTO changes (kind, number, import_id) VALUES ($1, $2, $3) RETURNING seq
)
SELECT pg_notify('{CHANNEL}', seq::text) FROM logged
"""
_SELECT_CHANGES = """
SELECT seq, kind, number, import_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2
"""
_FIRST_CHANGE = "SELECT min(seq) FROM changes"
_PRUNE_CHANGES = """
DELETE FROM changes WHERE at < clock_timestamp() - $1::interval
AND seq < (SELECT max(seq) FROM changes)
"""


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the change log: a number's listing changed, or an import committed."""

    seq: int
    kind: str
    number: int | None
    import_id: int | None


async def log(
    conn: asyncpg.Connection, kind: str, number: int | None = None, import_id: int | None = None
) -> None:
    """Append a change to the log; the last statement of its transaction before commit, as
    the lock it takes orders commits by seq until then."""
    await conn.execute(_LOCK_CHANGES)
    await conn.execute(_LOG_CHANGE, kind, number, import_id)


async def since(pool: asyncpg.Pool, after: int, limit: int) -> list[Change]:
    """Up to `limit` changes after seq `after`, oldest first."""
    records = await pool.fetch(_SELECT_CHANGES, after, limit)
    return [Change(**dict(record)) for record in records]


async def first(pool: asyncpg.Pool) -> int | None:
    """The oldest seq still in the log (older ones were pruned), None if it is empty."""
    seq: int | None = await pool.fetchval(_FIRST_CHANGE)
    return seq


async def prune(pool: asyncpg.Pool, retention: timedelta) -> int:
    """Drop changes logged longer ago than `retention` (never the newest); return how many.

    Their age is told by Postgres' clock, which stamped them, never by this process's: a
    replica whose clock is skewed still prunes what the log's own times say is old."""
    status = await pool.execute(_PRUNE_CHANGES, retention)
    return int(status.split()[-1])
