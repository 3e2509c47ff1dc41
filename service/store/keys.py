"""API keys: their hashes, roles and sources, and the notifications that keep every
process's key cache current."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import audit

CHANNEL = "callguard_keys"
"""NOTIFY channel: a key was created, changed (its sources) or revoked; the payload is
CREATED, CHANGED or REVOKED, a space, and the key's id. Processes update their key caches."""
CREATED = "created"
CHANGED = "changed"
REVOKED = "revoked"

KEY_COLUMNS = "id, name, role, created_at, revoked_at, sources, trust, reports_per_day"
"""What api_key_of() reads; store.sessions reads them too, through a join."""
_INSERT_KEY = f"""
INSERT INTO api_keys (name, role, key_hash, sources, trust, reports_per_day)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING {KEY_COLUMNS}
"""
_SET_KEY_SOURCES = f"""
UPDATE api_keys SET sources = $2 WHERE id = $1 AND role = 'operator' AND revoked_at IS NULL
RETURNING {KEY_COLUMNS}
"""
_SET_KEY_TRUST = f"""
UPDATE api_keys SET trust = $2, reports_per_day = coalesce($3, reports_per_day)
WHERE id = $1 AND revoked_at IS NULL
RETURNING {KEY_COLUMNS}
"""
_SELECT_ACTIVE_KEY = (
    f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
)
_SELECT_KEYS = f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"
_SELECT_ACTIVE_KEYS = f"SELECT key_hash, {KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL"
_REVOKE_KEY = f"""
UPDATE api_keys SET revoked_at = now()
WHERE (id = $1 OR key_hash = $2) AND revoked_at IS NULL
RETURNING {KEY_COLUMNS}
"""
_NOTIFY_KEYS = "SELECT pg_notify($1, $2)"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's identity; the key itself is known only to its holder."""

    id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None
    sources: tuple[str, ...] = ()
    """The sources an operator key may import under."""
    trust: str = "community"
    """Whether the key may vouch for its users' own phone numbers ("attesting") or not
    ("community"): docs/verdicts.md."""
    reports_per_day: int | None = None
    """Reports and answers the key may send a day; None for the configured default."""


def api_key_of(record: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=record["id"],
        name=record["name"],
        role=record["role"],
        created_at=record["created_at"],
        revoked_at=record["revoked_at"],
        sources=tuple(record["sources"]),
        trust=record["trust"],
        reports_per_day=record["reports_per_day"],
    )


async def create(
    pool: asyncpg.Pool,
    name: str,
    role: str,
    key_hash: bytes,
    sources: Sequence[str] = (),
    trust: str = "community",
    reports_per_day: int | None = None,
) -> ApiKey:
    """Store a new key's hash (and, for an operator key, the sources it may import under),
    with its trust and daily report cap."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(
            _INSERT_KEY, name, role, key_hash, list(sources), trust, reports_per_day
        )
        await conn.execute(_NOTIFY_KEYS, CHANNEL, f"{CREATED} {record['id']}")
    return api_key_of(record)


_ENSURE_KEY = """
INSERT INTO api_keys (name, role, key_hash, trust) VALUES ($1, $2, $3, $4)
ON CONFLICT (key_hash) DO NOTHING
"""
_SELECT_KEY_BY_HASH = f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"


async def ensure(pool: asyncpg.Pool, name: str, role: str, key_hash: bytes, trust: str) -> ApiKey:
    """The key with this hash, made if there is none (by whichever process comes first);
    revoked or not."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.execute(_ENSURE_KEY, name, role, key_hash, trust) == "INSERT 0 1":
            record = await conn.fetchrow(_SELECT_KEY_BY_HASH, key_hash)
            await conn.execute(_NOTIFY_KEYS, CHANNEL, f"{CREATED} {record['id']}")
            return api_key_of(record)
    record = await pool.fetchrow(_SELECT_KEY_BY_HASH, key_hash)
    return api_key_of(record)


async def find_active(pool: asyncpg.Pool, key_hash: bytes) -> ApiKey | None:
    """The unrevoked key with this hash, if any."""
    record = await pool.fetchrow(_SELECT_ACTIVE_KEY, key_hash)
    return None if record is None else api_key_of(record)


async def active(conn: asyncpg.Connection) -> dict[bytes, ApiKey]:
    """Every unrevoked key, by its hash."""
    return {
        record["key_hash"]: api_key_of(record) for record in await conn.fetch(_SELECT_ACTIVE_KEYS)
    }


async def list_keys(pool: asyncpg.Pool) -> list[ApiKey]:
    """Every key ever made, revoked ones included."""
    return [api_key_of(record) for record in await pool.fetch(_SELECT_KEYS)]


async def set_sources(
    pool: asyncpg.Pool, key_id: int, sources: Sequence[str], actor: audit.Actor, at: datetime
) -> ApiKey | None:
    """Set the sources an active operator key may import under (None if there is no such
    key); audited, and every process told at commit."""
    return await _change(
        pool,
        _SET_KEY_SOURCES,
        (key_id, list(sources)),
        "key_sources",
        lambda key: {"sources": list(key.sources)},
        actor,
        at,
    )


async def set_trust(
    pool: asyncpg.Pool,
    key_id: int,
    trust: str,
    reports_per_day: int | None,
    actor: audit.Actor,
    at: datetime,
) -> ApiKey | None:
    """Set whether an active key may vouch for reporters' phones, and its daily report cap if
    given; None if there is no such key. Audited, and every process told at commit."""
    return await _change(
        pool,
        _SET_KEY_TRUST,
        (key_id, trust, reports_per_day),
        "key_trust",
        lambda key: {"trust": key.trust, "reports_per_day": key.reports_per_day},
        actor,
        at,
    )


async def _change(
    pool: asyncpg.Pool,
    update: str,
    args: tuple[object, ...],
    action: str,
    detail: Callable[[ApiKey], dict[str, object]],
    actor: audit.Actor,
    at: datetime,
) -> ApiKey | None:
    """Change a key by an UPDATE returning its row (none: no such key), tell every process
    at commit, and audit the change with its detail."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(update, *args)
        if record is None:
            return None
        changed = api_key_of(record)
        await conn.execute(_NOTIFY_KEYS, CHANNEL, f"{CHANGED} {changed.id}")
        await audit.record(
            conn,
            at,
            actor,
            action,
            None,
            None,
            key_id=changed.id,
            key_name=changed.name,
            **detail(changed),
        )
    return changed


async def revoke(
    pool: asyncpg.Pool, key_id: int | None, key_hash: bytes, actor: audit.Actor, at: datetime
) -> ApiKey | None:
    """Revoke the active key with this id or hash; tell every process at commit."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(_REVOKE_KEY, key_id, key_hash)
        if record is None:
            return None
        await conn.execute(_NOTIFY_KEYS, CHANNEL, f"{REVOKED} {record['id']}")
        revoked = api_key_of(record)
        await audit.record(
            conn, at, actor, "key_revoke", None, None, key_id=revoked.id, key_name=revoked.name
        )
    return revoked
