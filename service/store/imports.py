"""Bulk imports of trusted listings: one transaction per import, rows staged by binary
COPY as they stream in and merged once; their summaries and refused rows."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from . import changes

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

    Use `async with store.imports.begin(...) as writer`; leaving the block by an exception
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
        await changes.log(self._conn, "imported", import_id=self.summary.id)
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
async def begin(
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


async def get(pool: asyncpg.Pool, import_id: int) -> ImportSummary | None:
    """One import's summary."""
    record = await pool.fetchrow(_SELECT_IMPORT, import_id)
    return None if record is None else ImportSummary(**dict(record))


async def list_imports(
    pool: asyncpg.Pool, api_key_id: int | None, before_id: int, limit: int
) -> list[ImportSummary]:
    """Imports newest first, of one key or (None) all, before an id (for paging)."""
    records = await pool.fetch(_SELECT_IMPORTS, api_key_id, before_id, limit)
    return [ImportSummary(**dict(record)) for record in records]


async def errors(
    pool: asyncpg.Pool, import_id: int, after_line: int, limit: int
) -> list[tuple[int, str, str]]:
    """An import's refused rows (line, value, reason) after a line, in line order."""
    records = await pool.fetch(_SELECT_IMPORT_ERRORS, import_id, after_line, limit)
    return [(record["line"], record["value"], record["reason"]) for record in records]


def numbers(pool: asyncpg.Pool, import_id: int) -> AsyncIterator[list[int]]:
    """The numbers an import listed, in batches."""
    return _number_batches(pool, _SELECT_IMPORTED_NUMBERS, import_id)


async def _number_batches(
    pool: asyncpg.Pool, query: str, *args: Any, batch: int = 50_000
) -> AsyncIterator[list[int]]:
    """A query's `number` column in batches, without holding it all at once."""
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(query, *args)
        while rows := await cursor.fetch(batch):
            yield [row["number"] for row in rows]
