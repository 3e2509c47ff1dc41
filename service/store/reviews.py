"""The review queue: numbers whose recent reports looked like a brigade, waiting for a
moderator, and the moderators' decisions. Reviews are opened by the report path
(reports.add); a `brigade` decision ends the number's report evidence as a delisting does,
which also counts against the reporters who spoke before it (docs/verdicts.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from . import audit, changes, trusted

_REVIEW_COLUMNS = "id, number, sign, detail, opened_at, status, decided_at, note"
_SELECT_REVIEWS = f"""
SELECT {_REVIEW_COLUMNS} FROM reviews
WHERE ($1::text IS NULL OR status = $1) AND id > $2 ORDER BY id LIMIT $3
"""
_LOCK_REVIEW = f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE id = $1 FOR UPDATE"
_DECIDE_REVIEW = f"""
UPDATE reviews SET status = $2, decided_at = $3, decided_by = $4, note = $5
WHERE id = $1 RETURNING {_REVIEW_COLUMNS}
"""


@dataclass(frozen=True, slots=True)
class Review:
    """A number in the review queue, and what was decided."""

    id: int
    number: int
    sign: str
    """Why it was queued: "newcomers" or "key_share" (reputation.BrigadeSign)."""
    detail: dict[str, Any]
    """The figures that queued it."""
    opened_at: datetime
    status: str
    """"open", or the decision: "brigade" or "genuine"."""
    decided_at: datetime | None
    note: str | None


class ReviewNotOpen(Exception):
    """The review was already decided."""

    def __init__(self, review: Review) -> None:
        super().__init__(f"review {review.id} is already decided: {review.status}")
        self.review = review


def _review(record: asyncpg.Record) -> Review:
    return Review(**{**dict(record), "detail": json.loads(record["detail"])})


async def list_reviews(
    pool: asyncpg.Pool, status: str | None, after_id: int, limit: int
) -> list[Review]:
    """Reviews, oldest first, optionally of one status, after an id (for paging)."""
    return [
        _review(record) for record in await pool.fetch(_SELECT_REVIEWS, status, after_id, limit)
    ]


async def decide(
    pool: asyncpg.Pool,
    review_id: int,
    brigade: bool,
    note: str,
    actor: audit.Actor,
    at: datetime,
) -> Review | None:
    """Decide an open review: a brigade ends the number's report evidence now (its trusted
    listings stay); genuine leaves it. None if there is no such review; raises ReviewNotOpen
    if it was already decided. Audited."""
    async with pool.acquire() as conn, conn.transaction():
        record = await conn.fetchrow(_LOCK_REVIEW, review_id)
        if record is None:
            return None
        review = _review(record)
        if review.status != "open":
            raise ReviewNotOpen(review)
        status = "brigade" if brigade else "genuine"
        if brigade:
            await trusted.end_community_listing(conn, review.number, at)
        decided = _review(
            await conn.fetchrow(_DECIDE_REVIEW, review_id, status, at, actor.key_id, note)
        )
        await audit.record(
            conn, at, actor, "review_" + status, review.number, note, review_id=review_id
        )
        await changes.log(conn, "reviewed", review.number)
    return decided
