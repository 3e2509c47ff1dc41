"""Every SQL statement callguard runs, on asyncpg. Functions return plain dataclasses."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema.sql"
KEYS_CHANNEL = "callguard_keys"
"""NOTIFY channel: a key was created or revoked, so processes drop their key caches."""

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
"""The errors that mean Postgres cannot be reached or went away, rather than a bad query."""

_SCHEMA_LOCK = 0x63616C6C  # any constant; serialises schema application across replicas


@dataclass(frozen=True, slots=True)
class Listing:
    """What is known of a reported number."""

    number: int
    report_count: int
    reporter_count: int
    categories: tuple[str, ...]
    first_reported_at: datetime
    last_reported_at: datetime


@dataclass(frozen=True, slots=True)
class NewReport:
    """A report as the service accepts it: number normalised, reporter already hashed."""

    number: int
    category: str
    reporter_hash: bytes
    description: str | None
    occurred_at: datetime | None
    api_key_id: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's identity; the key itself is known only to its holder."""

    id: int
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


async def create_pool(dsn: str, min_size: int, max_size: int) -> asyncpg.Pool:
    """The process's one connection pool."""
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, server_settings={"application_name": "callguard"}
    )


async def apply_schema(conn: asyncpg.Connection) -> None:
    """Apply schema.sql in one transaction; safe to run at every start, from many replicas."""
    sql = SCHEMA_PATH.read_text(encoding="utf-8")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(sql)


# --- settings ---------------------------------------------------------------

_INSERT_SETTING = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_SELECT_SETTING = "SELECT value FROM settings WHERE name = $1"


async def secret_setting(pool: asyncpg.Pool, name: str) -> bytes:
    """A 32-byte secret shared by all replicas, made on first use."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_INSERT_SETTING, name, secrets.token_bytes(32))
        value: bytes = await conn.fetchval(_SELECT_SETTING, name)
    return value


# --- listings and reports -----------------------------------------------------

_LISTING_COLUMNS = (
    "number, report_count, reporter_count, categories, first_reported_at, last_reported_at"
)
_SELECT_LISTING = f"SELECT {_LISTING_COLUMNS} FROM listings WHERE number = $1"
_SELECT_LISTINGS = f"SELECT {_LISTING_COLUMNS} FROM listings WHERE number = ANY($1::bigint[])"
_SELECT_LISTED_NUMBERS = "SELECT number FROM listings"

# One statement, so one round trip and atomic: keep the report, count its reporter once
# per number, and fold it into the number's listing.
_ADD_REPORT = f"""
WITH report AS (
    INSERT INTO reports (number, category, reporter_hash, description, occurred_at, api_key_id)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING id, received_at
), new_reporter AS (
    INSERT INTO number_reporters (number, reporter_hash) VALUES ($1, $3)
    ON CONFLICT DO NOTHING
    RETURNING 1
), listing AS (
    INSERT INTO listings AS l ({_LISTING_COLUMNS})
    SELECT $1, 1, (SELECT count(*) FROM new_reporter), ARRAY[$2::text], received_at, received_at
    FROM report
    ON CONFLICT (number) DO UPDATE SET
        report_count = l.report_count + 1,
        reporter_count = l.reporter_count + EXCLUDED.reporter_count,
        categories = CASE WHEN $2 = ANY (l.categories) THEN l.categories
                          ELSE l.categories || $2::text END,
        last_reported_at = EXCLUDED.last_reported_at
    RETURNING l.*
)
SELECT report.id AS report_id, listing.* FROM report, listing
"""


def _listing(record: asyncpg.Record) -> Listing:
    return Listing(
        number=record["number"],
        report_count=record["report_count"],
        reporter_count=record["reporter_count"],
        categories=tuple(record["categories"]),
        first_reported_at=record["first_reported_at"],
        last_reported_at=record["last_reported_at"],
    )


async def get_listing(pool: asyncpg.Pool, number: int) -> Listing | None:
    """The listing of one number, or None if it was never reported."""
    record = await pool.fetchrow(_SELECT_LISTING, number)
    return None if record is None else _listing(record)


async def get_listings(pool: asyncpg.Pool, numbers: Sequence[int]) -> dict[int, Listing]:
    """The listings of those numbers that have one, by number."""
    records = await pool.fetch(_SELECT_LISTINGS, numbers)
    return {record["number"]: _listing(record) for record in records}


async def add_report(pool: asyncpg.Pool, report: NewReport) -> tuple[int, Listing]:
    """Store a report; return its id and the number's listing after it."""
    record = await pool.fetchrow(
        _ADD_REPORT,
        report.number,
        report.category,
        report.reporter_hash,
        report.description,
        report.occurred_at,
        report.api_key_id,
    )
    return record["report_id"], _listing(record)


async def listed_numbers(pool: asyncpg.Pool, batch: int = 50_000) -> AsyncIterator[list[int]]:
    """Every listed number, in batches, without holding them all in memory at once."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(_SELECT_LISTED_NUMBERS)
        while rows := await cursor.fetch(batch):
            yield [row["number"] for row in rows]


async def count_listings(pool: asyncpg.Pool) -> int:
    """How many numbers are listed."""
    count: int = await pool.fetchval("SELECT count(*) FROM listings")
    return count


# --- API keys ---------------------------------------------------------------

_KEY_COLUMNS = "id, name, role, created_at, revoked_at"
_INSERT_KEY = (
    f"INSERT INTO api_keys (name, role, key_hash) VALUES ($1, $2, $3) RETURNING {_KEY_COLUMNS}"
)
_SELECT_ACTIVE_KEY = (
    f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
)
_SELECT_KEYS = f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY id"
_REVOKE_KEY = f"""
UPDATE api_keys SET revoked_at = now()
WHERE (id = $1 OR key_hash = $2) AND revoked_at IS NULL
RETURNING {_KEY_COLUMNS}
"""
_NOTIFY_KEYS = "SELECT pg_notify($1, $2)"


def _api_key(record: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=record["id"],
        name=record["name"],
        role=record["role"],
        created_at=record["created_at"],
        revoked_at=record["revoked_at"],
    )


async def create_key(pool: asyncpg.Pool, name: str, role: str, key_hash: bytes) -> ApiKey:
    """Store a new key's hash."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(_INSERT_KEY, name, role, key_hash)
        await conn.execute(_NOTIFY_KEYS, KEYS_CHANNEL, str(record["id"]))
    return _api_key(record)


async def find_active_key(pool: asyncpg.Pool, key_hash: bytes) -> ApiKey | None:
    """The unrevoked key with this hash, if any."""
    record = await pool.fetchrow(_SELECT_ACTIVE_KEY, key_hash)
    return None if record is None else _api_key(record)


async def list_keys(pool: asyncpg.Pool) -> list[ApiKey]:
    """Every key ever made, revoked ones included."""
    return [_api_key(record) for record in await pool.fetch(_SELECT_KEYS)]


async def revoke_key(pool: asyncpg.Pool, key_id: int | None, key_hash: bytes) -> ApiKey | None:
    """Revoke the active key with this id or hash; tell every process at commit."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(_REVOKE_KEY, key_id, key_hash)
        if record is None:
            return None
        await conn.execute(_NOTIFY_KEYS, KEYS_CHANNEL, str(record["id"]))
    return _api_key(record)
