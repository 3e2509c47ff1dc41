"""Settings: named values the replicas share, such as the reporter key's check."""

from __future__ import annotations

import asyncpg

_INSERT_SETTING = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_SELECT_SETTING = "SELECT value FROM settings WHERE name = $1"
_DELETE_SETTING = "DELETE FROM settings WHERE name = $1"


async def get(pool: asyncpg.Pool, name: str) -> bytes | None:
    """A setting's value, if it is set."""
    value: bytes | None = await pool.fetchval(_SELECT_SETTING, name)
    return value


async def settle(pool: asyncpg.Pool, name: str, value: bytes, drop: str) -> bytes:
    """Set `name` to value unless it is set, and delete the setting `drop`, in one
    transaction; return the value `name` holds (another replica's, if it was first)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_INSERT_SETTING, name, value)
        settled: bytes = await conn.fetchval(_SELECT_SETTING, name)
        await conn.execute(_DELETE_SETTING, drop)
    return settled
