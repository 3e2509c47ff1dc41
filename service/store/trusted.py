"""Trusted listings, made by moderators on a source's word, and delisting, which ends them
and the number's community listing."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from . import audit, changes

_UPSERT_TRUSTED = """
INSERT INTO trusted_listings (number, source, category, note, listed_at, api_key_id)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (number, source) DO UPDATE
SET category = EXCLUDED.category, note = EXCLUDED.note, listed_at = EXCLUDED.listed_at,
    api_key_id = EXCLUDED.api_key_id
"""
_DELETE_TRUSTED = "DELETE FROM trusted_listings WHERE number = $1 RETURNING source"
_RESET_COMMUNITY = """
UPDATE community_listings
SET report_count = 0, categories = '{}', first_reported_at = NULL, last_reported_at = NULL,
    epoch = epoch + 1, delisted_at = $2
WHERE number = $1 AND report_count > 0
RETURNING number
"""


async def list_number(
    pool: asyncpg.Pool,
    number: int,
    source: str,
    category: str,
    note: str | None,
    actor: audit.Actor,
    at: datetime,
) -> None:
    """List a number as a scam on a trusted source's word, until it is delisted."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_UPSERT_TRUSTED, number, source, category, note, at, actor.key_id)
        await audit.record(conn, at, actor, "list", number, note, source=source, category=category)
        await changes.log(conn, "listed", number)


async def delist(
    pool: asyncpg.Pool, number: int, reason: str, actor: audit.Actor, at: datetime
) -> bool:
    """End every listing of the number now; reports before `at` stop counting. False if
    nothing was listed."""
    async with pool.acquire() as conn, conn.transaction():
        return await delist_in(conn, number, reason, actor, at)


async def end_community_listing(conn: asyncpg.Connection, number: int, at: datetime) -> bool:
    """End the number's listing from reports now, in the caller's transaction: reports and
    answers before `at` stop counting; trusted listings stay. False if it had no reports."""
    return await conn.fetchval(_RESET_COMMUNITY, number, at) is not None


async def delist_in(
    conn: asyncpg.Connection, number: int, reason: str, actor: audit.Actor, at: datetime
) -> bool:
    """delist, in the caller's transaction."""
    sources = [row["source"] for row in await conn.fetch(_DELETE_TRUSTED, number)]
    community = await end_community_listing(conn, number, at)
    if not sources and not community:
        return False
    await audit.record(
        conn, at, actor, "delist", number, reason, trusted_sources=sources, community=community
    )
    await changes.log(conn, "delisted", number)
    return True
