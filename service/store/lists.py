"""The lists phones hold: their published versions, their entries as of the newest, and what
each version changed (docs/lists.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

_LOCK_PUBLISHING = "SELECT pg_advisory_xact_lock(0x6c69737473)"  # any constant: "lists"
_NEWEST = """
SELECT version, published_at, cursor, entries, sha256, whole FROM list_versions
WHERE list = $1 ORDER BY version DESC LIMIT 1
"""
_LAST_WHOLE = """
SELECT max(published_at) FROM list_versions WHERE list = $1 AND whole
"""
_VERSIONS_SINCE = """
SELECT version, published_at, cursor, entries, sha256, whole FROM list_versions
WHERE list = $1 AND version > $2 ORDER BY version
"""
_OLDEST_SINCE = """
SELECT coalesce(min(version), 0) FROM list_versions WHERE list = $1 AND published_at >= $2
"""
_ENTRIES = "SELECT number, detail FROM list_entries WHERE list = $1 ORDER BY number"
# Every number that may be on a list: what may have a verdict other than unknown, and what
# the lists hold now.
_CANDIDATES = """
SELECT number FROM community_listings WHERE last_reported_at > $1
UNION SELECT number FROM trusted_listings
UNION SELECT number FROM allowlist
UNION SELECT number FROM list_entries
"""
_ENTRIES_OF = """
SELECT number, detail FROM list_entries WHERE list = $1 AND number = ANY($2::bigint[])
"""
_EXPORT = "SELECT number, detail, since FROM list_entries WHERE list = $1 ORDER BY number"
_CHANGES_SINCE = """
SELECT version, number, before, after FROM list_changes
WHERE list = $1 AND version > $2 ORDER BY version, number
"""
_INSERT_VERSION = """
INSERT INTO list_versions (list, version, published_at, cursor, entries, sha256, whole)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
_INSERT_CHANGES = """
INSERT INTO list_changes (list, version, number, before, after)
SELECT $1, $2, number, before, after
FROM unnest($3::bigint[], $4::text[], $5::text[]) AS c (number, before, after)
"""
_UPSERT_ENTRIES = """
INSERT INTO list_entries (list, number, detail, since)
SELECT $1, number, detail, $4 FROM unnest($2::bigint[], $3::text[]) AS e (number, detail)
ON CONFLICT (list, number) DO UPDATE SET detail = EXCLUDED.detail
"""
_DELETE_ENTRIES = "DELETE FROM list_entries WHERE list = $1 AND number = ANY($2::bigint[])"
_PRUNE_CHANGES = """
DELETE FROM list_changes c USING list_versions v
WHERE c.list = v.list AND c.version = v.version AND v.published_at < $1
"""


@dataclass(frozen=True, slots=True)
class Version:
    """A published version of a list."""

    version: int
    published_at: datetime
    cursor: int
    """Every change-log entry up to this seq was judged for it."""
    entries: int
    sha256: bytes
    whole: bool
    """Every candidate was judged afresh for it, not only the numbers the log named."""


@dataclass(frozen=True, slots=True)
class Change:
    """What a version changed for one number: its detail before and after (None: absent)."""

    version: int
    number: int
    before: str | None
    after: str | None


def _version(record: asyncpg.Record) -> Version:
    return Version(**dict(record))


async def newest(pool: asyncpg.Pool | asyncpg.Connection, name: str) -> Version | None:
    """The list's newest published version, if any."""
    record = await pool.fetchrow(_NEWEST, name)
    return None if record is None else _version(record)


async def versions_since(pool: asyncpg.Pool, name: str, after: int) -> list[Version]:
    """The list's versions after `after`, oldest first."""
    return [_version(record) for record in await pool.fetch(_VERSIONS_SINCE, name, after)]


async def candidates(pool: asyncpg.Pool, reported_since: datetime) -> list[int]:
    """Every number that may be on a list now: reported since then, listed, allowlisted, or
    on a list already."""
    return [record["number"] for record in await pool.fetch(_CANDIDATES, reported_since)]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A list as one moment saw it: its newest version, its entries, and what the versions
    published since a time changed."""

    newest: Version | None
    entries: list[tuple[int, str]]
    floor: int
    """The version before the oldest published since that time (or the newest, if none
    was): updates are answered from it on."""
    changes: list[Change]


async def snapshot(pool: asyncpg.Pool, name: str, since: datetime) -> Snapshot:
    """The list's newest version, entries and recent changes, read in one snapshot, so that
    a version published meanwhile cannot mix with them."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        record = await conn.fetchrow(_NEWEST, name)
        newest = None if record is None else _version(record)
        pairs = [(row["number"], row["detail"]) for row in await conn.fetch(_ENTRIES, name)]
        oldest = await conn.fetchval(_OLDEST_SINCE, name, since)
        floor = oldest - 1 if oldest else (newest.version if newest else 0)
        rows = await conn.fetch(_CHANGES_SINCE, name, floor)
    return Snapshot(newest, pairs, floor, [Change(**dict(row)) for row in rows])


async def changes_since(pool: asyncpg.Pool, name: str, after: int) -> list[Change]:
    """What the versions after `after` changed, oldest first."""
    return [Change(**dict(record)) for record in await pool.fetch(_CHANGES_SINCE, name, after)]


@asynccontextmanager
async def export(pool: asyncpg.Pool, name: str) -> AsyncIterator[asyncpg.cursor.Cursor]:
    """A cursor over the list's numbers, details and since, by number, in one snapshot."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        yield await conn.cursor(_EXPORT, name)


class Publishing:
    """One publisher's transaction: the only one at a time, across every replica."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def newest(self, name: str) -> Version | None:
        return await newest(self.conn, name)

    async def last_whole(self, name: str) -> datetime | None:
        """When the list was last published with every candidate judged afresh."""
        at: datetime | None = await self.conn.fetchval(_LAST_WHOLE, name)
        return at

    async def entries_of(self, name: str, numbers: Sequence[int]) -> dict[int, str]:
        """The details of those of these numbers the list holds now."""
        records = await self.conn.fetch(_ENTRIES_OF, name, numbers)
        return {record["number"]: record["detail"] for record in records}

    async def publish(
        self,
        name: str,
        version: Version,
        changed: Mapping[int, tuple[str | None, str | None]],
    ) -> None:
        """Write a new version: its changes (number -> detail before, after) and entries."""
        numbers = sorted(changed)
        befores = [changed[number][0] for number in numbers]
        afters = [changed[number][1] for number in numbers]
        await self.conn.execute(_INSERT_CHANGES, name, version.version, numbers, befores, afters)
        kept = [(number, after) for number, after in zip(numbers, afters, strict=True) if after]
        if kept:
            await self.conn.execute(
                _UPSERT_ENTRIES,
                name,
                [number for number, _ in kept],
                [detail for _, detail in kept],
                version.published_at,
            )
        gone = [number for number, after in zip(numbers, afters, strict=True) if after is None]
        if gone:
            await self.conn.execute(_DELETE_ENTRIES, name, gone)
        await self.conn.execute(
            _INSERT_VERSION,
            name,
            version.version,
            version.published_at,
            version.cursor,
            version.entries,
            version.sha256,
            version.whole,
        )


@asynccontextmanager
async def publishing(pool: asyncpg.Pool) -> AsyncIterator[Publishing]:
    """A transaction to publish in, once any other process's publishing has committed: one
    publisher at a time, across every replica."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_LOCK_PUBLISHING)
        yield Publishing(conn)


async def prune(pool: asyncpg.Pool, before: datetime) -> int:
    """Forget what versions published before `before` changed; return how many rows."""
    status = await pool.execute(_PRUNE_CHANGES, before)
    return int(status.split()[-1])
