"""GET /v1/audit: every moderation action, newest first (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta

from .. import store
from ..auth import Role, requires
from ..e164 import to_e164
from ..state import POOL
from .answers import E164, Body, Id, Time
from .bodies import json_answer, responds
from .documented import BAD_QUERY, BEFORE, documented, limit


class AuditEntry(Body):
    """One moderation action."""

    id: Id
    at: Annotated[Time, Meta(description="When it was done.")]
    api_key_id: Annotated[
        int | None, Meta(description="The key that did it; null for the command line.")
    ]
    actor: Annotated[str, Meta(examples=["key:3:moderator", "cli"])]
    action: Annotated[
        str,
        Meta(
            description="allowlist_add, allowlist_remove, list, delist, appeal_delisted, "
            "appeal_rejected or key_revoke."
        ),
    ]
    number: E164 | None
    reason: str | None
    detail: Annotated[dict[str, Any], Meta(description="The action's details.")]


class AuditEntries(Body):
    """Moderation actions, newest first."""

    entries: list[AuditEntry]


AUDIT_LIMIT = limit(100, 1000)


@requires(Role.ADMIN)
@documented("moderation", parameters=(BEFORE, AUDIT_LIMIT), responses={400: BAD_QUERY})
@responds(200, AuditEntries, "The entries.")
async def list_audit(request: web.Request) -> web.Response:
    """The audit log

    Every moderation action, newest first; page with `before` = the last `id`.
    """
    before = BEFORE.read(request)
    limit = AUDIT_LIMIT.read(request)
    entries = await store.audit.entries(request.app[POOL], before, limit)
    return json_answer(
        AuditEntries(
            [
                AuditEntry(
                    id=entry.id,
                    at=entry.at.isoformat(),
                    api_key_id=entry.api_key_id,
                    actor=entry.actor,
                    action=entry.action,
                    number=None if entry.number is None else to_e164(entry.number),
                    reason=entry.reason,
                    detail=entry.detail,
                )
                for entry in entries
            ]
        )
    )
