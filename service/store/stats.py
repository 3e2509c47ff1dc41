"""Figures for the trends page and GET /v1/stats/trends: reports per category per week, and
numbers newly on the scam list, in Vietnam's weeks (Monday to Sunday, UTC+7)."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

_REPORTS_BY_WEEK = """
SELECT date_trunc('week', received_at AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS week,
       category, count(*) AS reports
FROM reports WHERE received_at >= $1
GROUP BY 1, 2
"""
_LISTED_SINCE = """
SELECT number, date_trunc('week', since AT TIME ZONE 'Asia/Ho_Chi_Minh')::date AS week
FROM list_entries WHERE list = 'scam' AND since >= $1
"""
_OFFICIAL = "SELECT number, owner FROM allowlist ORDER BY owner, number LIMIT $1"


async def reports_by_week(pool: asyncpg.Pool, since: datetime) -> list[tuple[date, str, int]]:
    """(week, category, reports) for the reports received since then."""
    records = await pool.fetch(_REPORTS_BY_WEEK, since)
    return [(record["week"], record["category"], record["reports"]) for record in records]


async def listed_since(pool: asyncpg.Pool, since: datetime) -> list[tuple[int, date]]:
    """(number, week) for the numbers on the scam list that entered it since then."""
    return [(record["number"], record["week"]) for record in await pool.fetch(_LISTED_SINCE, since)]


async def official_numbers(pool: asyncpg.Pool, limit: int) -> list[tuple[int, str]]:
    """Verified numbers and their owners: the official numbers to call."""
    return [(record["number"], record["owner"]) for record in await pool.fetch(_OFFICIAL, limit)]
