"""Reports and what they add up to: the evidence on numbers, adding a report under the
reporter's daily limit, and erasing report details past their retention."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from ..reputation import Evidence
from . import changes

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


async def evidence(
    pool: asyncpg.Pool, numbers: Sequence[int], window_start: datetime
) -> dict[int, Evidence]:
    """What is stored about each of these numbers, by number."""
    records = await pool.fetch(_SELECT_EVIDENCE, numbers, window_start)
    return {record["number"]: _evidence(record) for record in records}


async def add(pool: asyncpg.Pool, report: NewReport, per_reporter_daily: int) -> int:
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
        await changes.log(conn, "reported", report.number)
    return report_id


async def erase_details(pool: asyncpg.Pool, before: datetime) -> int:
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
