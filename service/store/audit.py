"""The audit log: who did which moderation action, when, and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

_INSERT_AUDIT = """
INSERT INTO audit_log (at, api_key_id, actor, action, number, reason, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
"""
_SELECT_AUDIT = """
SELECT id, at, api_key_id, actor, action, number, reason, detail FROM audit_log
WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2
"""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does a moderation action: an API key, or the command line (key_id None)."""

    key_id: int | None
    name: str


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


async def record(
    conn: asyncpg.Connection,
    at: datetime,
    actor: Actor,
    action: str,
    number: int | None,
    reason: str | None,
    **detail: Any,
) -> None:
    """Log a moderation action, in the transaction that does it."""
    await conn.execute(
        _INSERT_AUDIT, at, actor.key_id, actor.name, action, number, reason, json.dumps(detail)
    )


async def entries(pool: asyncpg.Pool, before_id: int | None, limit: int) -> list[AuditEntry]:
    """The newest audit entries first, before an id (for paging)."""
    records = await pool.fetch(_SELECT_AUDIT, before_id, limit)
    return [
        AuditEntry(**{**dict(record), "detail": json.loads(record["detail"])}) for record in records
    ]
