"""Appeals: a number's owner asks for a delisting, and a moderator decides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import audit, trusted

_APPEAL_COLUMNS = "id, number, contact, message, status, created_at, resolved_at, resolution_note"
_INSERT_APPEAL = f"""
INSERT INTO appeals (number, contact, message, created_at, api_key_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (number, api_key_id) WHERE status = 'open' DO NOTHING
RETURNING {_APPEAL_COLUMNS}
"""
_SELECT_OPEN_APPEAL = f"""
SELECT {_APPEAL_COLUMNS} FROM appeals WHERE number = $1 AND api_key_id = $2 AND status = 'open'
"""
_SELECT_APPEALS = f"""
SELECT {_APPEAL_COLUMNS} FROM appeals
WHERE ($1::text IS NULL OR status = $1) AND id > $2 ORDER BY id LIMIT $3
"""
_LOCK_APPEAL = f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE id = $1 FOR UPDATE"
_RESOLVE_APPEAL = f"""
UPDATE appeals SET status = $2, resolved_at = $3, resolved_by = $4, resolution_note = $5
WHERE id = $1 RETURNING {_APPEAL_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class Appeal:
    """A number's owner asking for it to be delisted."""

    id: int
    number: int
    contact: str
    message: str
    status: str
    created_at: datetime
    resolved_at: datetime | None
    resolution_note: str | None


class AppealOpen(Exception):
    """The key's earlier appeal against the number is still open."""

    def __init__(self, appeal: Appeal) -> None:
        super().__init__(f"appeal {appeal.id} is still open")
        self.appeal = appeal


class AppealNotOpen(Exception):
    """The appeal was already decided."""

    def __init__(self, appeal: Appeal) -> None:
        super().__init__(f"appeal {appeal.id} is already {appeal.status}")
        self.appeal = appeal


async def create(
    pool: asyncpg.Pool, number: int, contact: str, message: str, key_id: int, at: datetime
) -> Appeal:
    """File an appeal against a number's listing; raises AppealOpen if this key's appeal
    against the number is still open."""
    while True:
        record = await pool.fetchrow(_INSERT_APPEAL, number, contact, message, at, key_id)
        if record is not None:
            break
        record = await pool.fetchrow(_SELECT_OPEN_APPEAL, number, key_id)
        if record is not None:
            raise AppealOpen(Appeal(**dict(record)))
        # decided between the two statements: file this one after all
    return Appeal(**dict(record))


async def list_appeals(
    pool: asyncpg.Pool, status: str | None, after_id: int, limit: int
) -> list[Appeal]:
    """Appeals, oldest first, optionally of one status, after an id (for paging)."""
    records = await pool.fetch(_SELECT_APPEALS, status, after_id, limit)
    return [Appeal(**dict(record)) for record in records]


async def resolve(
    pool: asyncpg.Pool,
    appeal_id: int,
    delist_number: bool,
    note: str,
    actor: audit.Actor,
    at: datetime,
) -> Appeal | None:
    """Decide an open appeal, delisting its number if so decided; None if there is no such
    appeal. Raises AppealNotOpen if it was already decided."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(_LOCK_APPEAL, appeal_id)
        if record is None:
            return None
        appeal = Appeal(**dict(record))
        if appeal.status != "open":
            raise AppealNotOpen(appeal)
        if delist_number:
            await trusted.delist_in(conn, appeal.number, f"appeal {appeal_id}: {note}", actor, at)
        status = "delisted" if delist_number else "rejected"
        record = await conn.fetchrow(_RESOLVE_APPEAL, appeal_id, status, at, actor.key_id, note)
        await audit.record(
            conn, at, actor, "appeal_" + status, appeal.number, note, appeal_id=appeal_id
        )
    return Appeal(**dict(record))
