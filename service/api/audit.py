"""GET /v1/audit: every moderation action, newest first (admin)."""

from __future__ import annotations

from aiohttp import web

from .. import store
from ..auth import Role, requires
from ..e164 import to_e164
from ..state import POOL
from .bodies import json_response, query_int


@requires(Role.ADMIN)
async def list_entries(request: web.Request) -> web.Response:
    """Moderation actions newest first; page with ?before=<last id>."""
    before = query_int(request, "before", 2**62, 1, 2**62)
    limit = query_int(request, "limit", 100, 1, 1000)
    entries = await store.audit.entries(request.app[POOL], before, limit)
    return json_response(
        {
            "entries": [
                {
                    "id": entry.id,
                    "at": entry.at.isoformat(),
                    "api_key_id": entry.api_key_id,
                    "actor": entry.actor,
                    "action": entry.action,
                    "number": entry.number and to_e164(entry.number),
                    "reason": entry.reason,
                    "detail": entry.detail,
                }
                for entry in entries
            ]
        }
    )
