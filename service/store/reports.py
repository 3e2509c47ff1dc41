"""Reports and what they add up to: the evidence on numbers, adding a report under the
reporter's daily limit, and erasing report details past their retention."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import asyncpg

from ..reputation import (
    BrigadeSign,
    Burst,
    Evidence,
    Lane,
    Rules,
    Stance,
    Voice,
    brigade_sign,
)
from . import changes

# Everything that bears on the verdicts of many numbers, in one round trip. A reporter's word
# counts while it is after the window's start ($2) and in the current epoch. A verified
# phone's record is read from the reports it made, on every number, against the outcomes
# that came after its first report there (docs/verdicts.md, "Earned weight"): a later
# "not scam" of its own does not undo a report. (A delisting moves delisted_at on, so the
# latest delisting is after every report an earlier one came after.) Community ids, which can be
# thousands on a number, come grouped by stance and hour: their weight is always 1, so a
# group's count says all the rules need.
_SELECT_EVIDENCE = """
SELECT n.number,
       (c.number IS NOT NULL OR t.sources IS NOT NULL OR a.number IS NOT NULL) AS known,
       a.owner,
       coalesce(t.sources, '{}') AS trusted_sources,
       coalesce(t.categories, '{}') AS trusted_categories,
       coalesce(v.lanes, '{}') AS lanes,
       coalesce(v.stances, '{}') AS stances,
       coalesce(v.firsts, '{}') AS firsts,
       coalesce(v.lasts, '{}') AS lasts,
       coalesce(v.agreed, '{}') AS agreed,
       coalesce(v.contradicted, '{}') AS contradicted,
       coalesce(v.listed, '{}') AS listed,
       coalesce(v.counts, '{}') AS counts,
       v.oldest AS oldest_recent_report,
       EXISTS (SELECT 1 FROM reviews WHERE number = n.number AND status = 'open') AS under_review,
       coalesce(c.report_count, 0) AS report_count,
       coalesce(c.categories, '{}') AS categories,
       c.first_reported_at,
       c.last_reported_at
FROM unnest($1::bigint[]) AS n (number)
LEFT JOIN community_listings c ON c.number = n.number
LEFT JOIN allowlist a ON a.number = n.number
LEFT JOIN LATERAL (
    SELECT array_agg(w.lane) AS lanes, array_agg(w.stance) AS stances,
           array_agg(w.first_at) AS firsts, array_agg(w.last_at) AS lasts,
           array_agg(w.agreed) AS agreed, array_agg(w.contradicted) AS contradicted,
           array_agg(w.listed) AS listed, array_agg(w.voices) AS counts, min(w.oldest) AS oldest
    FROM (
        SELECT r.lane, r.stance, r.first_reported_at AS first_at, r.last_reported_at AS last_at,
               r.last_reported_at AS oldest, 1 AS voices, rec.agreed, rec.contradicted,
               l.reporter_hash IS NOT NULL AS listed
        FROM number_reporters r
        LEFT JOIN listed_reporters l ON l.reporter_hash = r.reporter_hash
        CROSS JOIN LATERAL (
            SELECT count(*) FILTER (WHERE EXISTS (
                       SELECT 1 FROM trusted_listings tl
                       WHERE tl.number = o.number AND tl.listed_at > o.first_at
                   ))::int AS agreed,
                   count(*) FILTER (WHERE EXISTS (
                       SELECT 1 FROM allowlist al
                       WHERE al.number = o.number AND al.added_at > o.first_at
                   ) OR EXISTS (
                       SELECT 1 FROM community_listings cl
                       WHERE cl.number = o.number AND cl.delisted_at > o.first_at
                   ))::int AS contradicted
            FROM (
                SELECT number, min(received_at) AS first_at FROM reports
                WHERE reporter_hash = r.reporter_hash GROUP BY number
            ) o
        ) rec
        WHERE r.number = n.number AND r.lane = 'verified' AND r.epoch = coalesce(c.epoch, 0)
          AND r.last_reported_at > $2
        UNION ALL
        SELECT 'community', r.stance, min(r.first_reported_at), max(r.last_reported_at),
               min(r.last_reported_at), count(*)::int, 0, 0, false
        FROM number_reporters r
        WHERE r.number = n.number AND r.lane = 'community' AND r.epoch = coalesce(c.epoch, 0)
          AND r.last_reported_at > $2
        GROUP BY r.stance, date_trunc('hour', r.last_reported_at)
    ) w
) v ON true
LEFT JOIN LATERAL (
    SELECT array_agg(source ORDER BY listed_at) AS sources,
           array_agg(category ORDER BY listed_at) AS categories
    FROM trusted_listings WHERE number = n.number
) t ON true
"""

_LOCK_REPORTER = "SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, 'hex'), 0))"
# A reporter's words (reports and not-scam answers) in the last day, for their daily limit.
_WORDS_SINCE = """
SELECT count(*), min(received_at) FROM (
    SELECT received_at FROM reports WHERE reporter_hash = $1 AND received_at > $2
    UNION ALL SELECT received_at FROM feedback WHERE reporter_hash = $1 AND received_at > $2
) words
"""
# A key's words today (UTC), across replicas, and a report's network's ($3, if any): the
# rows' locks order one key's (one network's) words, so they are taken last.
_COUNT_DAY = """
WITH network AS (
    INSERT INTO network_report_days AS d (network, day, reports)
    SELECT $3, ($2::timestamptz AT TIME ZONE 'UTC')::date, 1 WHERE $3::bytea IS NOT NULL
    ON CONFLICT (network, day) DO UPDATE SET reports = d.reports + 1
)
INSERT INTO key_report_days AS d (api_key_id, day, reports)
VALUES ($1, ($2::timestamptz AT TIME ZONE 'UTC')::date, 1)
ON CONFLICT (api_key_id, day) DO UPDATE SET reports = d.reports + 1
RETURNING reports
"""
_INSERT_REPORT = """
INSERT INTO reports (number, category, reporter_hash, description, occurred_at, received_at,
                     api_key_id, possible_spoofing, lane, network)
VALUES ($1, $2, $3, $4, $5, $6, $7, EXISTS (SELECT 1 FROM allowlist WHERE number = $1), $8,
        $9)
RETURNING id
"""
_INSERT_FEEDBACK = """
INSERT INTO feedback (number, verdict, reporter_hash, lane, note, received_at, api_key_id)
VALUES ($1, 'not_scam', $2, $3, $4, $5, $6)
RETURNING id
"""
# A reporter's word on a number is their latest, in the current epoch.
_UPSERT_REPORTER = """
INSERT INTO number_reporters AS r
    (number, reporter_hash, first_reported_at, last_reported_at, epoch, lane, stance)
VALUES ($1, $2, $3, $3, $4, $5, $6)
ON CONFLICT (number, reporter_hash) DO UPDATE
SET stance = CASE WHEN r.epoch = EXCLUDED.epoch AND r.last_reported_at > EXCLUDED.last_reported_at
                  THEN r.stance ELSE EXCLUDED.stance END,
    last_reported_at = CASE WHEN r.epoch = EXCLUDED.epoch
                            THEN greatest(r.last_reported_at, EXCLUDED.last_reported_at)
                            ELSE EXCLUDED.last_reported_at END,
    epoch = EXCLUDED.epoch,
    lane = EXCLUDED.lane
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
# Feedback takes the number's epoch under a share lock, so a delisting orders against it.
_NUMBER_EPOCH = "SELECT epoch FROM community_listings WHERE number = $1 FOR SHARE"

# A brigade check: the number's reports since $2: first-time reporters (no report anywhere
# before $2), all of them, and the key that sent the most. Nothing is read while a review of
# the number was opened since $3.
_BURST = """
WITH recent AS (
    SELECT reporter_hash, api_key_id, network FROM reports
    WHERE number = $1 AND received_at > $2
      AND NOT EXISTS (SELECT 1 FROM reviews WHERE number = $1 AND opened_at > $3)
), top_key AS (
    SELECT api_key_id, count(*) AS reports FROM recent
    GROUP BY api_key_id ORDER BY count(*) DESC, api_key_id LIMIT 1
), top_network AS (
    SELECT network, count(*) AS reports FROM recent WHERE network IS NOT NULL
    GROUP BY network ORDER BY count(*) DESC, network LIMIT 1
)
SELECT (SELECT count(DISTINCT r.reporter_hash) FROM recent r
        WHERE NOT EXISTS (SELECT 1 FROM reports o
                          WHERE o.reporter_hash = r.reporter_hash AND o.received_at <= $2))
           AS newcomers,
       (SELECT count(*) FROM recent) AS reports,
       (SELECT api_key_id FROM top_key) AS top_key,
       coalesce((SELECT reports FROM top_key), 0) AS top_key_reports,
       (SELECT network FROM top_network) AS top_network,
       coalesce((SELECT reports FROM top_network), 0) AS top_network_reports
"""
# A key's, or a network's, share of all reports and answers over the days since $2.
_USUAL_KEY_SHARE = """
SELECT coalesce(sum(reports) FILTER (WHERE api_key_id = $1), 0)::float8
       / greatest(sum(reports), 1)
FROM key_report_days WHERE day >= ($2::timestamptz AT TIME ZONE 'UTC')::date
"""
_USUAL_NETWORK_SHARE = """
SELECT coalesce(sum(reports) FILTER (WHERE network = $1), 0)::float8
       / greatest(sum(reports), 1)
FROM network_report_days WHERE day >= ($2::timestamptz AT TIME ZONE 'UTC')::date
"""
_OPEN_REVIEW = """
INSERT INTO reviews (number, sign, detail, opened_at) VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT DO NOTHING RETURNING id
"""
USUAL_SHARE_DAYS = 7
REVIEW_AGAIN_AFTER = timedelta(days=1)
"""A number is not queued again for this long after a review of it was opened."""

# Reporter phones listed as scams ($1: their hashes), recorded if they ever spoke as verified
# reporters (the report path records one that speaks later).
_MARK_LISTED = """
INSERT INTO listed_reporters (reporter_hash, listed_at)
SELECT h, $2 FROM unnest($1::bytea[]) AS h
WHERE $3 OR EXISTS (SELECT 1 FROM number_reporters WHERE reporter_hash = h AND lane = 'verified')
ON CONFLICT (reporter_hash) DO NOTHING
RETURNING reporter_hash
"""
_UNMARK_LISTED = """
DELETE FROM listed_reporters WHERE reporter_hash = ANY($1::bytea[]) RETURNING reporter_hash
"""
# The numbers these reporters spoke about: their verdicts change with the reporters' standing.
_SPOKEN_ABOUT = """
SELECT DISTINCT number FROM number_reporters WHERE reporter_hash = ANY($1::bytea[])
"""
_ANY_VERIFIED = "SELECT EXISTS (SELECT 1 FROM number_reporters WHERE lane = 'verified')"


def _erase_details(table: str, details: str) -> str:
    """The statement erasing a batch of a table's details: the rows received before $1 (at
    most $2 of them) lose their reporter hash and `details`; so does, with them, any reporter
    of a number whose last word on it was before $1 (one who spoke since is kept)."""
    return f"""
WITH erased AS (
    SELECT id, number, reporter_hash FROM {table}
    WHERE reporter_hash IS NOT NULL AND received_at < $1
    ORDER BY received_at LIMIT $2
    FOR UPDATE
), forgotten AS (
    DELETE FROM number_reporters r USING erased e
    WHERE r.number = e.number AND r.reporter_hash = e.reporter_hash AND r.last_reported_at < $1
)
UPDATE {table} t SET reporter_hash = NULL, {details}
FROM erased e WHERE t.id = e.id
"""


_ERASE_REPORT_DETAILS = _erase_details(
    "reports", "description = NULL, occurred_at = NULL, network = NULL"
)
_ERASE_FEEDBACK_DETAILS = _erase_details("feedback", "note = NULL")
ERASE_BATCH = 10_000
"""Reports erased per statement: a first run on a large backlog holds no long lock."""


class ReporterLimitReached(Exception):
    """The reporter has made as many reports as the limit allows in the last day."""

    def __init__(self, retry_at: datetime, limit: int) -> None:
        super().__init__(f"reporter limit reached until {retry_at.isoformat()}")
        self.retry_at = retry_at
        self.limit = limit


class KeyDayLimitReached(Exception):
    """The key has sent as many reports and answers today (UTC) as its cap allows."""

    def __init__(self, retry_at: datetime, limit: int) -> None:
        super().__init__(f"key's daily report cap reached until {retry_at.isoformat()}")
        self.retry_at = retry_at
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Word:
    """What a reporter says about a number, as the service accepts it: number normalised,
    reporter already hashed. A report says scam (with a category); feedback says not scam."""

    number: int
    reporter_hash: bytes
    lane: Lane
    received_at: datetime
    api_key_id: int


@dataclass(frozen=True, slots=True)
class NewReport(Word):
    category: str = "other"
    description: str | None = None
    occurred_at: datetime | None = None
    network: bytes | None = None
    """A keyed hash of the network it came from (an IPv4 /24, an IPv6 /48)."""


@dataclass(frozen=True, slots=True)
class NewFeedback(Word):
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits a word is stored under."""

    per_reporter_daily: int
    per_key_daily: int


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored word: its id, and the review it opened, if its report looked like a brigade."""

    id: int
    review: BrigadeSign | None = None


def _evidence(record: asyncpg.Record) -> Evidence:
    voices = tuple(
        Voice(Lane(lane), Stance(stance), first, last, agreed, contradicted, listed, count)
        for lane, stance, first, last, agreed, contradicted, listed, count in zip(
            record["lanes"],
            record["stances"],
            record["firsts"],
            record["lasts"],
            record["agreed"],
            record["contradicted"],
            record["listed"],
            record["counts"],
            strict=True,
        )
    )
    return Evidence(
        number=record["number"],
        known=record["known"],
        allowlisted_owner=record["owner"],
        trusted_sources=tuple(record["trusted_sources"]),
        voices=voices,
        oldest_recent_report=record["oldest_recent_report"],
        under_review=record["under_review"],
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


async def add(
    pool: asyncpg.Pool, word: NewReport | NewFeedback, limits: Limits, rules: Rules
) -> Stored:
    """Store a report or a not-scam answer unless its reporter or key is over its daily limit;
    a report whose number's recent reports look like a brigade opens a review of it."""
    async with pool.acquire() as conn, conn.transaction():
        # One reporter's words are counted and added one at a time, on every replica.
        await conn.execute(_LOCK_REPORTER, word.reporter_hash)
        day_ago = word.received_at - timedelta(days=1)
        count, oldest = await conn.fetchrow(_WORDS_SINCE, word.reporter_hash, day_ago)
        if count >= limits.per_reporter_daily:
            raise ReporterLimitReached(oldest + timedelta(days=1), limits.per_reporter_daily)
        review = None
        if isinstance(word, NewReport):
            stored = await conn.fetchval(
                _INSERT_REPORT,
                word.number,
                word.category,
                word.reporter_hash,
                word.description,
                word.occurred_at,
                word.received_at,
                word.api_key_id,
                word.lane.value,
                word.network,
            )
            # The listing first: its row lock orders this report against any delisting.
            epoch = await conn.fetchval(
                _UPSERT_COMMUNITY_LISTING, word.number, word.category, word.received_at
            )
            stance, kind = Stance.SCAM, "reported"
        else:
            stored = await conn.fetchval(
                _INSERT_FEEDBACK,
                word.number,
                word.reporter_hash,
                word.lane.value,
                word.note,
                word.received_at,
                word.api_key_id,
            )
            epoch = await conn.fetchval(_NUMBER_EPOCH, word.number) or 0
            stance, kind = Stance.NOT_SCAM, "answered"
        await conn.execute(
            _UPSERT_REPORTER,
            word.number,
            word.reporter_hash,
            word.received_at,
            epoch,
            word.lane.value,
            stance.value,
        )
        if isinstance(word, NewReport):
            review = await _check_brigade(conn, word.number, word.received_at, rules)
        # Counted last: the key's row is locked from here to the commit, which the change
        # log's lock serialises anyway, so one key's words do not queue for longer.
        network = word.network if isinstance(word, NewReport) else None
        if (
            await conn.fetchval(_COUNT_DAY, word.api_key_id, word.received_at, network)
            > limits.per_key_daily
        ):
            midnight = datetime.combine(
                word.received_at.astimezone(UTC).date() + timedelta(days=1), time(), UTC
            )
            raise KeyDayLimitReached(midnight, limits.per_key_daily)
        await changes.log(conn, kind, word.number)
    return Stored(stored, review)


async def _check_brigade(
    conn: asyncpg.Connection, number: int, now: datetime, rules: Rules
) -> BrigadeSign | None:
    """Open a review of the number if its recent reports look like a brigade (and none was
    opened in the last day); the sign that opened one, else None."""
    since, last_review = now - rules.burst_window, now - REVIEW_AGAIN_AFTER
    found = await conn.fetchrow(_BURST, number, since, last_review)
    week_ago = now - timedelta(days=USUAL_SHARE_DAYS)
    key_share = network_share = 1.0
    # The usual shares are read only for a sender with enough reports here to matter.
    if found["top_key_reports"] >= rules.burst_key_reports:
        key_share = await conn.fetchval(_USUAL_KEY_SHARE, found["top_key"], week_ago)
    if found["top_network_reports"] >= rules.burst_key_reports:
        network_share = await conn.fetchval(_USUAL_NETWORK_SHARE, found["top_network"], week_ago)
    burst = Burst(
        newcomers=found["newcomers"],
        top_key_reports=found["top_key_reports"],
        reports=found["reports"],
        top_key_usual_share=key_share,
        top_network_reports=found["top_network_reports"],
        top_network_usual_share=network_share,
    )
    sign = brigade_sign(burst, rules)
    if sign is None:
        return None
    detail = {
        "newcomers": burst.newcomers,
        "reports": burst.reports,
        "top_key_id": found["top_key"],
        "top_key_reports": burst.top_key_reports,
        "top_key_usual_share": round(key_share, 4),
        "top_network_reports": burst.top_network_reports,
        "top_network_usual_share": round(network_share, 4),
        "minutes": rules.burst_window.total_seconds() / 60,
    }
    opened = await conn.fetchval(_OPEN_REVIEW, number, sign.value, json.dumps(detail), now)
    return sign if opened is not None else None


async def mark_listed_reporters(
    pool: asyncpg.Pool, hashes: Sequence[bytes], at: datetime, *, known_only: bool = True
) -> None:
    """Record reporter phones (their hashes) as listed scams, so their words count for
    nothing: only those that have spoken as verified reporters, unless known_only is False.
    The numbers they spoke about are logged as changed, so every process judges them anew."""
    async with pool.acquire() as conn, conn.transaction():
        marked = await conn.fetch(_MARK_LISTED, list(hashes), at, not known_only)
        await _reweighed(conn, [record["reporter_hash"] for record in marked])


async def unmark_listed_reporters(pool: asyncpg.Pool, hashes: Sequence[bytes]) -> None:
    """Reporter phones no longer listed: their words count again."""
    async with pool.acquire() as conn, conn.transaction():
        unmarked = await conn.fetch(_UNMARK_LISTED, list(hashes))
        await _reweighed(conn, [record["reporter_hash"] for record in unmarked])


async def _reweighed(conn: asyncpg.Connection, hashes: list[bytes]) -> None:
    if not hashes:
        return
    for record in await conn.fetch(_SPOKEN_ABOUT, hashes):
        await changes.log(conn, "reweighed", record["number"])


async def any_verified_reporter(pool: asyncpg.Pool) -> bool:
    """Whether any verified reporter has spoken."""
    found: bool = await pool.fetchval(_ANY_VERIFIED)
    return found


async def erase_details(pool: asyncpg.Pool, before: datetime) -> int:
    """Erase the details of the reports and not-scam answers received before `before` (who
    sent them, what they said, when it happened), and the reporters of numbers they last
    spoke about before it; return how many were erased. The caller keeps `before` out of the verdict
    window, so no verdict changes."""
    erased = 0
    for statement in (_ERASE_REPORT_DETAILS, _ERASE_FEEDBACK_DETAILS):
        while True:
            status = await pool.execute(statement, before, ERASE_BATCH)
            count = int(status.rpartition(" ")[2])
            erased += count
            if count < ERASE_BATCH:
                break
    return erased
