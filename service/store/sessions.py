"""Moderators' sessions on the pages under /admin: which admin key signed in, the token that
proves it (stored as its SHA-256 only), the session's CSRF token, and until when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .keys import KEY_COLUMNS, ApiKey, api_key_of

_DELETE_EXPIRED = "DELETE FROM admin_sessions WHERE expires_at <= $1"
_INSERT_SESSION = """
INSERT INTO admin_sessions (token_hash, key_id, csrf, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5)
"""
_SELECT_SESSION = f"""
SELECT s.csrf, s.expires_at, {", ".join(f"k.{column}" for column in KEY_COLUMNS.split(", "))}
FROM admin_sessions s JOIN api_keys k ON k.id = s.key_id
WHERE s.token_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL AND k.role = 'admin'
"""
_DELETE_SESSION = "DELETE FROM admin_sessions WHERE token_hash = $1"


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in moderator: their admin key, as it is now, and the session's CSRF token."""

    key: ApiKey
    csrf: str
    expires_at: datetime


async def start(
    pool: asyncpg.Pool,
    token_hash: bytes,
    key_id: int,
    csrf: str,
    at: datetime,
    expires_at: datetime,
) -> None:
    """Store a new session, and forget every session expired by `at` (they are few)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_DELETE_EXPIRED, at)
        await conn.execute(_INSERT_SESSION, token_hash, key_id, csrf, at, expires_at)


async def find(pool: asyncpg.Pool, token_hash: bytes, at: datetime) -> Session | None:
    """The session with this token hash, if it is unexpired at `at` and its key is still an
    unrevoked admin key."""
    record = await pool.fetchrow(_SELECT_SESSION, token_hash, at)
    if record is None:
        return None
    return Session(key=api_key_of(record), csrf=record["csrf"], expires_at=record["expires_at"])


async def end(pool: asyncpg.Pool, token_hash: bytes) -> None:
    """Forget the session with this token hash (signed out)."""
    await pool.execute(_DELETE_SESSION, token_hash)
