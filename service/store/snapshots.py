"""The filter's inputs and saves: the listed numbers read to build a Bloom filter, and the
saved filters (snapshots) a start loads instead of building."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

# What the Bloom filter holds: every number whose verdict may be other than unknown.
_LISTED_NUMBERS = """
SELECT number FROM community_listings WHERE last_reported_at > $1
UNION ALL SELECT number FROM trusted_listings
UNION ALL SELECT number FROM allowlist
"""
_COUNT_LISTED_ROWS = f"SELECT count(*) FROM ({_LISTED_NUMBERS}) listed"
_LAST_CHANGE = "SELECT coalesce(max(seq), 0) FROM changes"
_INSERT_SNAPSHOT = """
INSERT INTO filter_snapshots (cursor, created_at, capacity, error_rate, entries, data)
SELECT $1, $2, $3, $4, $5, $6
WHERE NOT EXISTS (SELECT 1 FROM filter_snapshots WHERE cursor >= $1)
"""
_DELETE_OLD_SNAPSHOTS = "DELETE FROM filter_snapshots WHERE cursor < $1"
_SELECT_SNAPSHOT = """
SELECT cursor, created_at, capacity, error_rate, entries, data FROM filter_snapshots
ORDER BY cursor DESC, id DESC LIMIT 1
"""
_SNAPSHOT_CURSOR = "SELECT max(cursor) FROM filter_snapshots"


@dataclass(frozen=True, slots=True)
class ListedNumbers:
    """One snapshot of the listed numbers: the last change in it, how many rows list a
    number (one listed twice, reported and imported, counts twice), and the numbers."""

    cursor: int
    rows: int
    _conn: asyncpg.Connection
    _query: str

    async def copy(self, add: Callable[[list[int]], None]) -> None:
        """Pass every listed number to `add`, in batches, as COPY streams them."""
        tail = b""

        async def sink(chunk: bytes) -> None:
            nonlocal tail
            data = tail + chunk
            end = data.rfind(b"\n") + 1
            tail = data[end:]
            if end:
                add(list(map(int, data[:end].split())))

        await self._conn.copy_from_query(self._query, output=sink, format="text")
        if tail:
            add([int(tail)])


@asynccontextmanager
async def listed_numbers(
    pool: asyncpg.Pool, window_start: datetime
) -> AsyncIterator[ListedNumbers]:
    """The listed numbers (community listings reported since window_start, trusted
    listings, the allowlist) as of one snapshot of the database."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        cursor: int = await conn.fetchval(_LAST_CHANGE)
        rows: int = await conn.fetchval(_COUNT_LISTED_ROWS, window_start)
        query = _LISTED_NUMBERS.replace("$1", _quote_time(window_start))
        yield ListedNumbers(cursor, rows, conn, query)


def _quote_time(at: datetime) -> str:
    """A timestamptz literal: COPY (query) takes no parameters."""
    return f"'{at.astimezone(UTC).isoformat()}'::timestamptz"


async def count_listed_rows(pool: asyncpg.Pool, window_start: datetime) -> int:
    """How many rows list a number, as ListedNumbers.rows counts them."""
    count: int = await pool.fetchval(_COUNT_LISTED_ROWS, window_start)
    return count


@dataclass(frozen=True, slots=True)
class FilterSnapshot:
    """A saved Bloom filter and the last change it holds."""

    cursor: int
    created_at: datetime
    capacity: int
    error_rate: float
    entries: int
    data: bytes


async def save(pool: asyncpg.Pool, snapshot: FilterSnapshot) -> None:
    """Keep this snapshot as the newest, dropping older ones; nothing if one as new as it
    is saved already (replicas that caught up on the same changes save once)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            _INSERT_SNAPSHOT,
            snapshot.cursor,
            snapshot.created_at,
            snapshot.capacity,
            snapshot.error_rate,
            snapshot.entries,
            snapshot.data,
        )
        await conn.execute(_DELETE_OLD_SNAPSHOTS, snapshot.cursor)


async def newest_cursor(pool: asyncpg.Pool) -> int | None:
    """The cursor of the newest saved filter, None if there is none."""
    cursor: int | None = await pool.fetchval(_SNAPSHOT_CURSOR)
    return cursor


async def latest(pool: asyncpg.Pool) -> FilterSnapshot | None:
    """The newest saved filter, if any."""
    record = await pool.fetchrow(_SELECT_SNAPSHOT)
    return None if record is None else FilterSnapshot(**dict(record))
