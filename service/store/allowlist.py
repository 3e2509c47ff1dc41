"""The allowlist: verified numbers, which lookups answer as `verified` whatever the
reports, and the reports against them that look like spoofing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import audit, changes

_UPSERT_ALLOWLIST = """
INSERT INTO allowlist (number, owner, note, added_at, api_key_id) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (number) DO UPDATE
SET owner = EXCLUDED.owner, note = EXCLUDED.note, added_at = EXCLUDED.added_at,
    api_key_id = EXCLUDED.api_key_id
"""
_DELETE_ALLOWLIST = "DELETE FROM allowlist WHERE number = $1 RETURNING number"
_SELECT_ALLOWLIST = """
SELECT a.number, a.owner, a.note, a.added_at,
       (SELECT count(*) FROM reports r WHERE r.number = a.number AND r.possible_spoofing)
           AS spoofing_reports
FROM allowlist a
"""
_SELECT_SPOOFING_REPORTS = """
SELECT id, category, description, occurred_at, received_at FROM reports
WHERE number = $1 AND possible_spoofing ORDER BY id DESC LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class AllowlistEntry:
    """A verified number and how many reports against it look like spoofing."""

    number: int
    owner: str
    note: str | None
    added_at: datetime
    spoofing_reports: int


@dataclass(frozen=True, slots=True)
class SpoofingReport:
    """A report against an allowlisted number: kept, flagged, never counted."""

    id: int
    category: str
    description: str | None
    occurred_at: datetime | None
    received_at: datetime


async def add(
    pool: asyncpg.Pool, number: int, owner: str, note: str | None, actor: audit.Actor, at: datetime
) -> None:
    """Verify a number: its lookups say `verified` whatever the reports."""
    async with pool.acquire() as conn, conn.transaction():
        await _add(conn, number, owner, note, actor, at)


async def load(
    pool: asyncpg.Pool,
    entries: Sequence[tuple[int, str, str | None]],
    actor: audit.Actor,
    at: datetime,
) -> None:
    """Verify many (number, owner, note) entries in one transaction: all or none."""
    async with pool.acquire() as conn, conn.transaction():
        for number, owner, note in entries:
            await _add(conn, number, owner, note, actor, at)


async def _add(
    conn: asyncpg.Connection,
    number: int,
    owner: str,
    note: str | None,
    actor: audit.Actor,
    at: datetime,
) -> None:
    await conn.execute(_UPSERT_ALLOWLIST, number, owner, note, at, actor.key_id)
    await audit.record(conn, at, actor, "allowlist_add", number, note, owner=owner)
    await changes.log(conn, "allowlisted", number)


async def remove(
    pool: asyncpg.Pool, number: int, reason: str | None, actor: audit.Actor, at: datetime
) -> bool:
    """Take a number off the allowlist; False if it was not on it."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(_DELETE_ALLOWLIST, number) is None:
            return False
        await audit.record(conn, at, actor, "allowlist_remove", number, reason)
        await changes.log(conn, "unallowlisted", number)
    return True


async def entries(pool: asyncpg.Pool, number: int | None = None) -> list[AllowlistEntry]:
    """The allowlist (or the entry for one number), by number."""
    if number is None:
        records = await pool.fetch(_SELECT_ALLOWLIST + " ORDER BY a.number")
    else:
        records = await pool.fetch(_SELECT_ALLOWLIST + " WHERE a.number = $1", number)
    return [AllowlistEntry(**dict(record)) for record in records]


async def spoofing_reports(pool: asyncpg.Pool, number: int, limit: int) -> list[SpoofingReport]:
    """The newest reports flagged as possible spoofing of an allowlisted number."""
    records = await pool.fetch(_SELECT_SPOOFING_REPORTS, number, limit)
    return [SpoofingReport(**dict(record)) for record in records]
