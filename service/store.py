"""Every SQL statement callguard runs, on asyncpg. Functions return plain dataclasses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg

from .reputation import Evidence

KEYS_CHANNEL = "callguard_keys"
"""NOTIFY channel: a key was created, changed (its sources) or revoked; the payload is
KEY_CREATED, KEY_CHANGED or KEY_REVOKED, a space, and the key's id. Processes update their
key caches."""
KEY_CREATED = "created"
KEY_CHANGED = "changed"
KEY_REVOKED = "revoked"
CHANGES_CHANNEL = "callguard_changes"
"""NOTIFY channel: a change was logged; the payload is its seq. Processes then read the log."""
_LOCK_CHANGES = "SELECT pg_advisory_xact_lock(0x6368616e676573)"  # any constant: "changes"
_LOG_CHANGE = f"""
WITH logged AS (
    INSERT INTO changes (kind, number, import_id) VALUES ($1, $2, $3) RETURNING seq
)
SELECT pg_notify('{CHANGES_CHANNEL}', seq::text) FROM logged
"""

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
class NewReport:
    """A report as the service accepts it: number normalised, reporter already hashed."""

    number: int
    category: str
    reporter_hash: bytes
    description: str | None
    occurred_at: datetime | None
    received_at: datetime
    api_key_id: int


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


class PoolExhausted(TimeoutError):
    """No connection of the pool came free in time: the service is overloaded, or Postgres is
    slow to accept a new connection. A TimeoutError, so what copes with an unreachable
    database (a degraded lookup, the feed's retry) copes with this too."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no database connection came free within {seconds:g} s")
        self.seconds = seconds


class _Acquiring:
    """`async with pool.acquire()` whose timeout is PoolExhausted."""

    __slots__ = ("_inner", "_seconds")

    def __init__(self, inner: Any, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds

    async def __aenter__(self) -> asyncpg.Connection:
        try:
            return await self._inner.__aenter__()
        except TimeoutError as err:
            raise PoolExhausted(self._seconds) from err

    async def __aexit__(self, *exc_info: object) -> None:
        await self._inner.__aexit__(*exc_info)


class _BoundedPool(asyncpg.Pool):  # type: ignore[misc]
    """A pool whose every acquire, its own fetch/execute included, waits at most
    `acquire_timeout` seconds (unless a caller passes its own): a request never waits
    without end for a connection that a flood of others holds."""

    __slots__ = ("acquire_timeout",)

    def acquire(self, *, timeout: float | None = None) -> _Acquiring:
        seconds = self.acquire_timeout if timeout is None else timeout
        return _Acquiring(super().acquire(timeout=seconds), seconds)


async def create_pool(
    dsn: str, min_size: int, max_size: int, acquire_timeout: float = 60.0
) -> asyncpg.Pool:
    """A connection pool whose acquires time out with PoolExhausted after `acquire_timeout`
    seconds; asyncpg.create_pool's other settings, as it sets them."""
    pool = _BoundedPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings={"application_name": "callguard"},
    )
    pool.acquire_timeout = acquire_timeout
    return await pool


async def apply_schema(conn: asyncpg.Connection) -> None:
    """Apply schema.sql in one transaction; safe to run at every start, from many replicas."""
    sql = resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
        await conn.execute(sql)


async def schema_applied(conn: asyncpg.Connection) -> bool:
    """Whether a callguard has served on this database: its tables are there."""
    return bool(await conn.fetchval("SELECT to_regclass('api_keys') IS NOT NULL"))


# --- settings ---------------------------------------------------------------

_INSERT_SETTING = "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING"
_SELECT_SETTING = "SELECT value FROM settings WHERE name = $1"
_DELETE_SETTING = "DELETE FROM settings WHERE name = $1"


async def setting(pool: asyncpg.Pool, name: str) -> bytes | None:
    """A setting's value, if it is set."""
    value: bytes | None = await pool.fetchval(_SELECT_SETTING, name)
    return value


async def settle_setting(pool: asyncpg.Pool, name: str, value: bytes, drop: str) -> bytes:
    """Set `name` to value unless it is set, and delete the setting `drop`, in one
    transaction; return the value `name` holds (another replica's, if it was first)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_INSERT_SETTING, name, value)
        settled: bytes = await conn.fetchval(_SELECT_SETTING, name)
        await conn.execute(_DELETE_SETTING, drop)
    return settled


# --- evidence and reports ----------------------------------------------------

# Everything that bears on the verdicts of many numbers, in one round trip. Reporters count
# while their last report is after the window's start ($2) and in the current epoch.
_SELECT_EVIDENCE = """
SELECT n.number,
       (c.number IS NOT NULL OR t.sources IS NOT NULL OR a.number IS NOT NULL) AS known,
       a.owner,
       coalesce(t.sources, '{}') AS trusted_sources,
       coalesce(t.categories, '{}') AS trusted_categories,
       r.recent_reporters,
       r.oldest_recent_report,
       coalesce(c.report_count, 0) AS report_count,
       coalesce(c.categories, '{}') AS categories,
       c.first_reported_at,
       c.last_reported_at
FROM unnest($1::bigint[]) AS n (number)
LEFT JOIN community_listings c ON c.number = n.number
LEFT JOIN allowlist a ON a.number = n.number
LEFT JOIN LATERAL (
    SELECT count(*) AS recent_reporters, min(last_reported_at) AS oldest_recent_report
    FROM number_reporters
    WHERE number = n.number AND epoch = c.epoch AND last_reported_at > $2
) r ON true
LEFT JOIN LATERAL (
    SELECT array_agg(source ORDER BY listed_at) AS sources,
           array_agg(category ORDER BY listed_at) AS categories
    FROM trusted_listings WHERE number = n.number
) t ON true
"""
# What the Bloom filter holds: every number whose verdict may be other than unknown.
_LISTED_NUMBERS = """
SELECT number FROM community_listings WHERE last_reported_at > $1
UNION ALL SELECT number FROM trusted_listings
UNION ALL SELECT number FROM allowlist
"""
_COUNT_LISTED_ROWS = f"SELECT count(*) FROM ({_LISTED_NUMBERS}) listed"
_LAST_CHANGE = "SELECT coalesce(max(seq), 0) FROM changes"
_SELECT_CHANGES = """
SELECT seq, kind, number, import_id FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2
"""
_FIRST_CHANGE = "SELECT min(seq) FROM changes"
_PRUNE_CHANGES = """
DELETE FROM changes WHERE at < clock_timestamp() - $1::interval
AND seq < (SELECT max(seq) FROM changes)
"""
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

_LOCK_REPORTER = "SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, 'hex'), 0))"
_REPORTS_SINCE = """
SELECT count(*), min(received_at) FROM reports WHERE reporter_hash = $1 AND received_at > $2
"""
_INSERT_REPORT = """
INSERT INTO reports (number, category, reporter_hash, description, occurred_at, received_at,
                     api_key_id, possible_spoofing)
VALUES ($1, $2, $3, $4, $5, $6, $7, EXISTS (SELECT 1 FROM allowlist WHERE number = $1))
RETURNING id
"""
_UPSERT_REPORTER = """
INSERT INTO number_reporters AS r
    (number, reporter_hash, first_reported_at, last_reported_at, epoch)
VALUES ($1, $2, $3, $3, $4)
ON CONFLICT (number, reporter_hash) DO UPDATE
SET last_reported_at = CASE WHEN r.epoch = EXCLUDED.epoch
                            THEN greatest(r.last_reported_at, EXCLUDED.last_reported_at)
                            ELSE EXCLUDED.last_reported_at END,
    epoch = EXCLUDED.epoch
"""
_UPSERT_COMMUNITY_LISTING = """
INSERT INTO community_listings AS l
    (number, report_count, categories, first_reported_at, last_reported_at)
VALUES ($1, 1, ARRAY[$2::text], $3, $3)
ON CONFLICT (number) DO UPDATE SET
    report_count = l.report_count + 1,
    categories = CASE WHEN $2 = ANY (l.categories) THEN l.categories
                      ELSE l.categories || $2::text END,
    first_reported_at = least(l.first_reported_at, $3),
    last_reported_at = greatest(l.last_reported_at, $3)
RETURNING epoch
"""


# A batch of reports received before $1 loses its details; so does, with them, any reporter
# of a number whose last report was before $1 (a reporter who reported it since is kept).
_ERASE_REPORT_DETAILS = """
WITH erased AS (
    SELECT id, number, reporter_hash FROM reports
    WHERE reporter_hash IS NOT NULL AND received_at < $1
    ORDER BY received_at LIMIT $2
    FOR UPDATE
), forgotten AS (
    DELETE FROM number_reporters r USING erased e
    WHERE r.number = e.number AND r.reporter_hash = e.reporter_hash AND r.last_reported_at < $1
)
UPDATE reports r SET reporter_hash = NULL, description = NULL, occurred_at = NULL
FROM erased e WHERE r.id = e.id
"""
ERASE_BATCH = 10_000
"""Reports erased per statement: a first run on a large backlog holds no long lock."""


class ReporterLimitReached(Exception):
    """The reporter has made as many reports as the limit allows in the last day."""

    def __init__(self, retry_at: datetime, limit: int) -> None:
        super().__init__(f"reporter limit reached until {retry_at.isoformat()}")
        self.retry_at = retry_at
        self.limit = limit


def _evidence(record: asyncpg.Record) -> Evidence:
    return Evidence(
        number=record["number"],
        known=record["known"],
        allowlisted_owner=record["owner"],
        trusted_sources=tuple(record["trusted_sources"]),
        recent_reporters=record["recent_reporters"],
        oldest_recent_report=record["oldest_recent_report"],
        report_count=record["report_count"],
        categories=tuple(dict.fromkeys([*record["categories"], *record["trusted_categories"]])),
        first_reported_at=record["first_reported_at"],
        last_reported_at=record["last_reported_at"],
    )


async def get_evidence(
    pool: asyncpg.Pool, numbers: Sequence[int], window_start: datetime
) -> dict[int, Evidence]:
    """What is stored about each of these numbers, by number."""
    records = await pool.fetch(_SELECT_EVIDENCE, numbers, window_start)
    return {record["number"]: _evidence(record) for record in records}


async def add_report(pool: asyncpg.Pool, report: NewReport, per_reporter_daily: int) -> int:
    """Store a report unless its reporter is over the daily limit; return the report id."""
    day_ago = report.received_at - timedelta(days=1)
    async with pool.acquire() as conn, conn.transaction():
        # One reporter's reports are counted and added one at a time, on every replica.
        await conn.execute(_LOCK_REPORTER, report.reporter_hash)
        count, oldest = await conn.fetchrow(_REPORTS_SINCE, report.reporter_hash, day_ago)
        if count >= per_reporter_daily:
            raise ReporterLimitReached(oldest + timedelta(days=1), per_reporter_daily)
        report_id: int = await conn.fetchval(
            _INSERT_REPORT,
            report.number,
            report.category,
            report.reporter_hash,
            report.description,
            report.occurred_at,
            report.received_at,
            report.api_key_id,
        )
        # The listing first: its row lock orders this report against any delisting.
        epoch = await conn.fetchval(
            _UPSERT_COMMUNITY_LISTING, report.number, report.category, report.received_at
        )
        await conn.execute(
            _UPSERT_REPORTER, report.number, report.reporter_hash, report.received_at, epoch
        )
        await log_change(conn, "reported", report.number)
    return report_id


async def erase_report_details(pool: asyncpg.Pool, before: datetime) -> int:
    """Erase the details of the reports received before `before` (who reported, what they
    said, when it happened), and the reporters of numbers they last reported before it;
    return how many reports were erased. The caller keeps `before` out of the verdict
    window, so no verdict changes."""
    erased = 0
    while True:
        status = await pool.execute(_ERASE_REPORT_DETAILS, before, ERASE_BATCH)
        count = int(status.rpartition(" ")[2])
        erased += count
        if count < ERASE_BATCH:
            return erased


async def _number_batches(
    pool: asyncpg.Pool, query: str, *args: Any, batch: int = 50_000
) -> AsyncIterator[list[int]]:
    """A query's `number` column in batches, without holding it all at once."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(query, *args)
        while rows := await cursor.fetch(batch):
            yield [row["number"] for row in rows]


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the change log: a number's listing changed, or an import committed."""

    seq: int
    kind: str
    number: int | None
    import_id: int | None


async def log_change(
    conn: asyncpg.Connection, kind: str, number: int | None = None, import_id: int | None = None
) -> None:
    """Append a change to the log; the last statement of its transaction before commit, as
    the lock it takes orders commits by seq until then."""
    await conn.execute(_LOCK_CHANGES)
    await conn.execute(_LOG_CHANGE, kind, number, import_id)


async def changes_since(pool: asyncpg.Pool, after: int, limit: int) -> list[Change]:
    """Up to `limit` changes after seq `after`, oldest first."""
    records = await pool.fetch(_SELECT_CHANGES, after, limit)
    return [Change(**dict(record)) for record in records]


async def first_change(pool: asyncpg.Pool) -> int | None:
    """The oldest seq still in the log (older ones were pruned), None if it is empty."""
    seq: int | None = await pool.fetchval(_FIRST_CHANGE)
    return seq


async def prune_changes(pool: asyncpg.Pool, retention: timedelta) -> int:
    """Drop changes logged longer ago than `retention` (never the newest); return how many.

    Their age is told by Postgres' clock, which stamped them, never by this process's: a
    replica whose clock is skewed still prunes what the log's own times say is old."""
    status = await pool.execute(_PRUNE_CHANGES, retention)
    return int(status.split()[-1])


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


async def save_filter_snapshot(pool: asyncpg.Pool, snapshot: FilterSnapshot) -> None:
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


async def snapshot_cursor(pool: asyncpg.Pool) -> int | None:
    """The cursor of the newest saved filter, None if there is none."""
    cursor: int | None = await pool.fetchval(_SNAPSHOT_CURSOR)
    return cursor


async def latest_filter_snapshot(pool: asyncpg.Pool) -> FilterSnapshot | None:
    """The newest saved filter, if any."""
    record = await pool.fetchrow(_SELECT_SNAPSHOT)
    return None if record is None else FilterSnapshot(**dict(record))


# --- moderation: trusted listings, delisting, the allowlist -------------------

_INSERT_AUDIT = """
INSERT INTO audit_log (at, api_key_id, actor, action, number, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
"""
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
class Actor:
    """Who does a moderation action: an API key, or the command line (key_id None)."""

    key_id: int | None
    name: str


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


async def _audit(
    conn: asyncpg.Connection,
    at: datetime,
    actor: Actor,
    action: str,
    number: int | None,
    reason: str | None,
    **detail: Any,
) -> None:
    await conn.execute(
        _INSERT_AUDIT, at, actor.key_id, actor.name, action, number, reason, json.dumps(detail)
    )


async def list_trusted(
    pool: asyncpg.Pool,
    number: int,
    source: str,
    category: str,
    note: str | None,
    actor: Actor,
    at: datetime,
) -> None:
    """List a number as a scam on a trusted source's word, until it is delisted."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_UPSERT_TRUSTED, number, source, category, note, at, actor.key_id)
        await _audit(conn, at, actor, "list", number, note, source=source, category=category)
        await log_change(conn, "listed", number)


async def delist(pool: asyncpg.Pool, number: int, reason: str, actor: Actor, at: datetime) -> bool:
    """End every listing of the number now; reports before `at` stop counting. False if
    nothing was listed."""
    async with pool.acquire() as conn, conn.transaction():
        return await _delist(conn, number, reason, actor, at)


async def _delist(
    conn: asyncpg.Connection, number: int, reason: str, actor: Actor, at: datetime
) -> bool:
    sources = [row["source"] for row in await conn.fetch(_DELETE_TRUSTED, number)]
    community = await conn.fetchval(_RESET_COMMUNITY, number, at) is not None
    if not sources and not community:
        return False
    await _audit(
        conn, at, actor, "delist", number, reason, trusted_sources=sources, community=community
    )
    await log_change(conn, "delisted", number)
    return True


async def allowlist_add(
    pool: asyncpg.Pool, number: int, owner: str, note: str | None, actor: Actor, at: datetime
) -> None:
    """Verify a number: its lookups say `verified` whatever the reports."""
    async with pool.acquire() as conn, conn.transaction():
        await _allowlist_add(conn, number, owner, note, actor, at)


async def allowlist_load(
    pool: asyncpg.Pool,
    entries: Sequence[tuple[int, str, str | None]],
    actor: Actor,
    at: datetime,
) -> None:
    """Verify many (number, owner, note) entries in one transaction: all or none."""
    async with pool.acquire() as conn, conn.transaction():
        for number, owner, note in entries:
            await _allowlist_add(conn, number, owner, note, actor, at)


async def _allowlist_add(
    conn: asyncpg.Connection,
    number: int,
    owner: str,
    note: str | None,
    actor: Actor,
    at: datetime,
) -> None:
    await conn.execute(_UPSERT_ALLOWLIST, number, owner, note, at, actor.key_id)
    await _audit(conn, at, actor, "allowlist_add", number, note, owner=owner)
    await log_change(conn, "allowlisted", number)


async def allowlist_remove(
    pool: asyncpg.Pool, number: int, reason: str | None, actor: Actor, at: datetime
) -> bool:
    """Take a number off the allowlist; False if it was not on it."""
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(_DELETE_ALLOWLIST, number) is None:
            return False
        await _audit(conn, at, actor, "allowlist_remove", number, reason)
        await log_change(conn, "unallowlisted", number)
    return True


async def allowlist_entries(pool: asyncpg.Pool, number: int | None = None) -> list[AllowlistEntry]:
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


# --- appeals ----------------------------------------------------------------

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


async def create_appeal(
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


async def resolve_appeal(
    pool: asyncpg.Pool, appeal_id: int, delist_number: bool, note: str, actor: Actor, at: datetime
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
            await _delist(conn, appeal.number, f"appeal {appeal_id}: {note}", actor, at)
        status = "delisted" if delist_number else "rejected"
        record = await conn.fetchrow(_RESOLVE_APPEAL, appeal_id, status, at, actor.key_id, note)
        await _audit(conn, at, actor, "appeal_" + status, appeal.number, note, appeal_id=appeal_id)
    return Appeal(**dict(record))


# --- bulk imports -------------------------------------------------------------

_IMPORT_COLUMNS = (
    "id, source, api_key_id, created_at, rows, accepted, duplicates, rejected, mapped_legacy"
)
_INSERT_IMPORT = f"""
INSERT INTO imports (source, api_key_id, idempotency_key, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (api_key_id, idempotency_key) DO NOTHING
RETURNING {_IMPORT_COLUMNS}
"""
_SELECT_IMPORT_BY_KEY = f"""
SELECT {_IMPORT_COLUMNS}, body_sha256 FROM imports WHERE api_key_id = $1 AND idempotency_key = $2
"""
_SELECT_IMPORT = f"SELECT {_IMPORT_COLUMNS} FROM imports WHERE id = $1"
_SELECT_IMPORTS = f"""
SELECT {_IMPORT_COLUMNS} FROM imports
WHERE ($1::bigint IS NULL OR api_key_id = $1) AND id < $2 ORDER BY id DESC LIMIT $3
"""
_IMPORT_WORK_MEM = "SET LOCAL work_mem = '256MB'"
"""Room to sort a million staged rows in memory for the merge, for this transaction only."""
_CREATE_STAGING = """
CREATE TEMP TABLE import_staging (
    line bigint, number bigint, category text, reported_at timestamptz, note text
) ON COMMIT DROP
"""
# import_staging's rows in COPY's binary format (PostgreSQL docs, "COPY", "Binary Format").
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, no flags, no header extension
_COPY_TRAILER = b"\xff\xff"
_COPY_ROW_START = struct.Struct(">hiqiq").pack  # 5 fields; line and number, 8-byte ints
_COPY_TIMESTAMP = struct.Struct(">iq").pack  # 8 bytes: microseconds since _PG_EPOCH
_COPY_LENGTH = struct.Struct(">i").pack
_COPY_NULL = b"\xff\xff\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The merge runs once, after the last batch (merging batch by batch cost Postgres half as
# much again), as an update of the numbers the source already lists and a plain insert of
# the rest: 1 M rows in 3 s where INSERT ... ON CONFLICT took 4.4 s. The first row of a
# number in the file wins. One source's imports merge one at a time, so no other can slip
# a number in between the two statements.
_LOCK_SOURCE = "SELECT pg_advisory_xact_lock(hashtextextended('import:' || $1, 0))"
_DEDUPLICATE_STAGING = """
CREATE TEMP TABLE import_numbers ON COMMIT DROP AS
SELECT DISTINCT ON (number) number, category, note, reported_at
FROM import_staging ORDER BY number, line
"""
# A row another key still active listed stays that key's: two operator keys may share a
# source, and neither overwrites the other's category and note. A revoked key's rows (a
# rotation: the new key has the same source) pass to the importing key.
_UPDATE_LISTED = """
UPDATE trusted_listings t
SET category = s.category, note = s.note, listed_at = $2, reported_at = s.reported_at,
    api_key_id = $3, import_id = $4
FROM import_numbers s WHERE t.source = $1 AND t.number = s.number
  AND (t.api_key_id IS NULL OR t.api_key_id = $3
       OR NOT EXISTS (SELECT 1 FROM api_keys k WHERE k.id = t.api_key_id AND k.revoked_at IS NULL))
"""
_INSERT_UNLISTED = """
INSERT INTO trusted_listings
    (number, source, category, note, listed_at, reported_at, api_key_id, import_id)
SELECT s.number, $1, s.category, s.note, $2, s.reported_at, $3, $4 FROM import_numbers s
WHERE NOT EXISTS (SELECT 1 FROM trusted_listings t WHERE t.source = $1 AND t.number = s.number)
"""
_FINISH_IMPORT = f"""
UPDATE imports SET rows = $2, accepted = $3, duplicates = $4, rejected = $5, mapped_legacy = $6,
    body_sha256 = $7
WHERE id = $1 RETURNING {_IMPORT_COLUMNS}
"""
_SELECT_IMPORT_ERRORS = """
SELECT line, value, reason FROM import_errors WHERE import_id = $1 AND line > $2
ORDER BY line LIMIT $3
"""
_SELECT_IMPORTED_NUMBERS = "SELECT number FROM trusted_listings WHERE import_id = $1"


STORED_ERRORS = 100_000
"""Refused rows whose details (line, value, reason) are kept per import; past it the rows
are still refused and counted in `rejected`, and their details dropped: a list of millions
of bad rows stores no more than about 30 MB of them."""


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What an import did: rows read = accepted + duplicates + rejected."""

    id: int
    source: str
    api_key_id: int
    created_at: datetime
    rows: int
    accepted: int
    duplicates: int
    rejected: int
    mapped_legacy: int

    @property
    def errors_stored(self) -> int:
        """How many of the refused rows' details are kept (STORED_ERRORS at most)."""
        return min(self.rejected, STORED_ERRORS)


class ImportWriter:
    """One import in one transaction: stage rows and errors as they stream in, then merge.

    Use `async with store.import_writer(...) as writer`; leaving the block by an exception
    rolls everything back, so a failed or cut import leaves nothing behind.
    """

    def __init__(self, conn: asyncpg.Connection, summary: ImportSummary, at: datetime) -> None:
        self._conn = conn
        self._at = at
        self._copying: asyncio.Task[None] | None = None
        self.summary = summary
        self.staged = 0
        self.rejected = 0
        self.mapped_legacy = 0

    async def stage(
        self,
        copy_data: bytes,
        rows: int,
        errors: Sequence[tuple[int, str, str]],
        mapped_legacy: int,
    ) -> None:
        """Stage `rows` valid rows, encoded by staging_copy_data, and record refused ones
        (line, value, reason), the details of the import's first STORED_ERRORS only. Returns
        once the previous batch is in, so Postgres takes in one batch while the caller reads
        the next."""
        await self._copied()
        self._copying = asyncio.ensure_future(self._copy(copy_data, errors[: self._room()]))
        self.staged += rows
        self.rejected += len(errors)
        self.mapped_legacy += mapped_legacy

    def _room(self) -> int:
        """How many more refused rows' details may be stored."""
        return max(0, STORED_ERRORS - self.rejected)

    async def _copy(self, copy_data: bytes, errors: Sequence[tuple[int, str, str]]) -> None:
        # A memoryview: asyncpg would take bytes for a file name.
        data = memoryview(copy_data)
        await self._conn.copy_to_table("import_staging", source=data, format="binary")
        if errors:
            await self._conn.copy_records_to_table(
                "import_errors",
                records=[(self.summary.id, *error) for error in errors],
                columns=("import_id", "line", "value", "reason"),
            )

    async def _copied(self) -> None:
        if self._copying is not None:
            copying, self._copying = self._copying, None
            await copying

    async def abandon(self) -> None:
        """Stop a COPY under way, so the transaction can roll back."""
        if self._copying is not None:
            self._copying.cancel()
            with contextlib.suppress(BaseException):
                await self._copying

    async def merge(self, body_sha256: bytes) -> ImportSummary:
        """List every staged number under the import's source, once, and record the counts
        and the digest of the list (for a retry with the same idempotency key); the commit
        follows."""
        await self._copied()
        summary, conn = self.summary, self._conn
        listing = (summary.source, self._at, summary.api_key_id, summary.id)
        await conn.execute(_LOCK_SOURCE, summary.source)
        status = await conn.execute(_DEDUPLICATE_STAGING)
        accepted = int(status.split()[-1])  # "SELECT <rows>": one per distinct number
        await conn.execute(_UPDATE_LISTED, *listing)
        await conn.execute(_INSERT_UNLISTED, *listing)
        record = await self._conn.fetchrow(
            _FINISH_IMPORT,
            self.summary.id,
            self.staged + self.rejected,
            accepted,
            self.staged - accepted,
            self.rejected,
            self.mapped_legacy,
            body_sha256,
        )
        await log_change(self._conn, "imported", import_id=self.summary.id)
        self.summary = ImportSummary(**dict(record))
        return self.summary


def staging_copy_data(
    rows: Iterable[tuple[int, int, str, datetime | None, str | None]],
) -> bytes:
    """Rows (line, number, category, reported_at, note) as one binary COPY into
    import_staging, for ImportWriter.stage. Plain Python, so worker processes can encode
    while the event loop only forwards the bytes."""
    parts = [_COPY_HEADER]
    append = parts.append
    texts: dict[str, bytes] = {}  # the few categories, encoded once per call
    for line, number, category, reported_at, note in rows:
        encoded = texts.get(category)
        if encoded is None:
            raw = category.encode()
            encoded = texts[category] = _COPY_LENGTH(len(raw)) + raw
        append(_COPY_ROW_START(5, 8, line, 8, number))
        append(encoded)
        if reported_at is None:
            append(_COPY_NULL)
        else:
            append(_COPY_TIMESTAMP(8, (reported_at - _PG_EPOCH) // _MICROSECOND))
        if note is None:
            append(_COPY_NULL)
        else:
            raw = note.encode()
            append(_COPY_LENGTH(len(raw)))
            append(raw)
    append(_COPY_TRAILER)
    return b"".join(parts)


class ImportReplayed(Exception):
    """The idempotency key was used before: here is that import, and the digest of its list
    (None for an import made before digests were kept)."""

    def __init__(self, summary: ImportSummary, body_sha256: bytes | None) -> None:
        super().__init__(f"import {summary.id} already made with this idempotency key")
        self.summary = summary
        self.body_sha256 = body_sha256


@asynccontextmanager
async def import_writer(
    pool: asyncpg.Pool, source: str, api_key_id: int, idempotency_key: str | None, at: datetime
) -> AsyncIterator[ImportWriter]:
    """Open an import; raises ImportReplayed if the idempotency key was used before."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            # A concurrent request with the same key waits here until this one ends.
            record = await conn.fetchrow(_INSERT_IMPORT, source, api_key_id, idempotency_key, at)
            if record is not None:
                await conn.execute(_IMPORT_WORK_MEM)
                await conn.execute(_CREATE_STAGING)
                writer = ImportWriter(conn, ImportSummary(**dict(record)), at)
                try:
                    yield writer
                except BaseException:
                    await writer.abandon()
                    raise
                return
        first = dict(await conn.fetchrow(_SELECT_IMPORT_BY_KEY, api_key_id, idempotency_key))
        body_sha256 = first.pop("body_sha256")
        raise ImportReplayed(ImportSummary(**first), body_sha256)


async def get_import(pool: asyncpg.Pool, import_id: int) -> ImportSummary | None:
    """One import's summary."""
    record = await pool.fetchrow(_SELECT_IMPORT, import_id)
    return None if record is None else ImportSummary(**dict(record))


async def list_imports(
    pool: asyncpg.Pool, api_key_id: int | None, before_id: int, limit: int
) -> list[ImportSummary]:
    """Imports newest first, of one key or (None) all, before an id (for paging)."""
    records = await pool.fetch(_SELECT_IMPORTS, api_key_id, before_id, limit)
    return [ImportSummary(**dict(record)) for record in records]


async def import_errors(
    pool: asyncpg.Pool, import_id: int, after_line: int, limit: int
) -> list[tuple[int, str, str]]:
    """An import's refused rows (line, value, reason) after a line, in line order."""
    records = await pool.fetch(_SELECT_IMPORT_ERRORS, import_id, after_line, limit)
    return [(record["line"], record["value"], record["reason"]) for record in records]


def imported_numbers(pool: asyncpg.Pool, import_id: int) -> AsyncIterator[list[int]]:
    """The numbers an import listed, in batches."""
    return _number_batches(pool, _SELECT_IMPORTED_NUMBERS, import_id)


# --- the audit log ------------------------------------------------------------

_SELECT_AUDIT = """
SELECT id, at, api_key_id, actor, action, number, reason, detail FROM audit_log
WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One moderation action."""

    id: int
    at: datetime
    api_key_id: int | None
    actor: str
    action: str
    number: int | None
    reason: str | None
    detail: dict[str, Any]


async def audit_entries(pool: asyncpg.Pool, before_id: int | None, limit: int) -> list[AuditEntry]:
    """The newest audit entries first, before an id (for paging)."""
    records = await pool.fetch(_SELECT_AUDIT, before_id, limit)
    return [
        AuditEntry(**{**dict(record), "detail": json.loads(record["detail"])}) for record in records
    ]


# --- API keys ---------------------------------------------------------------

_KEY_COLUMNS = "id, name, role, created_at, revoked_at, sources"
_INSERT_KEY = f"""
INSERT INTO api_keys (name, role, key_hash, sources) VALUES ($1, $2, $3, $4)
RETURNING {_KEY_COLUMNS}
"""
_SET_KEY_SOURCES = f"""
UPDATE api_keys SET sources = $2 WHERE id = $1 AND role = 'operator' AND revoked_at IS NULL
RETURNING {_KEY_COLUMNS}
"""
_SELECT_ACTIVE_KEY = (
    f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
)
_SELECT_KEYS = f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY id"
_SELECT_ACTIVE_KEYS = f"SELECT key_hash, {_KEY_COLUMNS} FROM api_keys WHERE revoked_at IS NULL"
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
        sources=tuple(record["sources"]),
    )


async def create_key(
    pool: asyncpg.Pool, name: str, role: str, key_hash: bytes, sources: Sequence[str] = ()
) -> ApiKey:
    """Store a new key's hash (and, for an operator key, the sources it may import under)."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(_INSERT_KEY, name, role, key_hash, list(sources))
        await conn.execute(_NOTIFY_KEYS, KEYS_CHANNEL, f"{KEY_CREATED} {record['id']}")
    return _api_key(record)


async def find_active_key(pool: asyncpg.Pool, key_hash: bytes) -> ApiKey | None:
    """The unrevoked key with this hash, if any."""
    record = await pool.fetchrow(_SELECT_ACTIVE_KEY, key_hash)
    return None if record is None else _api_key(record)


async def active_keys(conn: asyncpg.Connection) -> dict[bytes, ApiKey]:
    """Every unrevoked key, by its hash."""
    return {
        record["key_hash"]: _api_key(record) for record in await conn.fetch(_SELECT_ACTIVE_KEYS)
    }


async def list_keys(pool: asyncpg.Pool) -> list[ApiKey]:
    """Every key ever made, revoked ones included."""
    return [_api_key(record) for record in await pool.fetch(_SELECT_KEYS)]


async def set_key_sources(
    pool: asyncpg.Pool, key_id: int, sources: Sequence[str], actor: Actor, at: datetime
) -> ApiKey | None:
    """Set the sources an active operator key may import under (None if there is no such
    key); tell every process at commit."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(_SET_KEY_SOURCES, key_id, list(sources))
        if record is None:
            return None
        await conn.execute(_NOTIFY_KEYS, KEYS_CHANNEL, f"{KEY_CHANGED} {key_id}")
        changed = _api_key(record)
        await _audit(
            conn,
            at,
            actor,
            "key_sources",
            None,
            None,
            key_id=changed.id,
            key_name=changed.name,
            sources=list(changed.sources),
        )
    return changed


async def revoke_key(
    pool: asyncpg.Pool, key_id: int | None, key_hash: bytes, actor: Actor, at: datetime
) -> ApiKey | None:
    """Revoke the active key with this id or hash; tell every process at commit."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(_REVOKE_KEY, key_id, key_hash)
        if record is None:
            return None
        await conn.execute(_NOTIFY_KEYS, KEYS_CHANNEL, f"{KEY_REVOKED} {record['id']}")
        revoked = _api_key(record)
        await _audit(
            conn, at, actor, "key_revoke", None, None, key_id=revoked.id, key_name=revoked.name
        )
    return revoked
