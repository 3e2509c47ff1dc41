"""/v1/allowlist (admin): verified numbers, such as official hotlines, never flagged."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web

from .. import store
from ..auth import API_KEY, Role, requires
from ..e164 import to_e164
from ..moderation import MODERATION
from ..problems import not_found
from ..state import POOL
from .bodies import (
    identifier_field,
    iso,
    json_response,
    optional_text_field,
    query_int,
    read_object,
)
from .numbers import actor, parse_number

MAX_OWNER_LENGTH = 200
MAX_NOTE_LENGTH = 2000


def entry_body(entry: store.allowlist.AllowlistEntry) -> dict[str, Any]:
    """The JSON for one allowlist entry."""
    return {
        "number": to_e164(entry.number),
        "owner": entry.owner,
        "note": entry.note,
        "added_at": entry.added_at.isoformat(),
        "spoofing_reports": entry.spoofing_reports,
    }


@requires(Role.ADMIN)
async def list_entries(request: web.Request) -> web.Response:
    """Every verified number, with how many reports against it look like spoofing."""
    entries = await store.allowlist.entries(request.app[POOL])
    return json_response({"entries": [entry_body(entry) for entry in entries]})


@requires(Role.ADMIN)
async def get_entry(request: web.Request) -> web.Response:
    """One verified number and the newest reports flagged as possible spoofing of it."""
    number = parse_number(request.match_info["number"])
    entries = await store.allowlist.entries(request.app[POOL], number)
    if not entries:
        raise not_found(f"{to_e164(number)} is not on the allowlist.")
    limit = query_int(request, "limit", 50, 1, 1000)
    reports = await store.allowlist.spoofing_reports(request.app[POOL], number, limit)
    return json_response(
        {
            **entry_body(entries[0]),
            "flagged_reports": [
                {
                    "report_id": report.id,
                    "category": report.category,
                    "description": report.description,
                    "occurred_at": iso(report.occurred_at),
                    "received_at": report.received_at.isoformat(),
                }
                for report in reports
            ],
        }
    )


@requires(Role.ADMIN)
async def put_entry(request: web.Request) -> web.Response:
    """Verify a number: its lookups say `verified` with its owner."""
    number = parse_number(request.match_info["number"])
    data = await read_object(request, ("owner", "note"))
    owner = identifier_field(data, "owner", MAX_OWNER_LENGTH)
    note = optional_text_field(data, "note", MAX_NOTE_LENGTH)
    answer = await request.app[MODERATION].allowlist_add(
        number, owner, note, actor(request[API_KEY])
    )
    return json_response(
        {
            "number": to_e164(number),
            "owner": owner,
            "note": note,
            "verdict": answer.judgement.verdict.value,
        }
    )


@requires(Role.ADMIN)
async def delete_entry(request: web.Request) -> web.Response:
    """Take a number off the allowlist; its reports count again from now on."""
    number = parse_number(request.match_info["number"])
    data = await read_object(request, ("reason",), optional=True)
    reason = optional_text_field(data, "reason", MAX_NOTE_LENGTH)
    if not await request.app[MODERATION].allowlist_remove(number, reason, actor(request[API_KEY])):
        raise not_found(f"{to_e164(number)} is not on the allowlist.")
    return web.Response(status=HTTPStatus.NO_CONTENT)
