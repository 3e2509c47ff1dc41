"""/v1/allowlist (admin): verified numbers, such as official hotlines, never flagged."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from .. import store
from ..auth import API_KEY, Role, requires
from ..e164 import to_e164
from ..moderation import MODERATION
from ..problems import not_found
from ..state import POOL
from ..text import identifier
from .bodies import NOT_BLANK, accepts, iso, json_response, query_int
from .numbers import actor, parse_number

MAX_OWNER_LENGTH = 200
MAX_NOTE_LENGTH = 2000


class AllowlistPutIn(msgspec.Struct, forbid_unknown_fields=True):
    """Who owns a number being verified."""

    owner: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_OWNER_LENGTH,
            pattern=NOT_BLANK,
            description="Who owns the number; compared as Unicode NFC, with invisible "
            "characters and surrounding white space left out.",
            examples=["Công an tỉnh Đồng Nai"],
        ),
    ]
    note: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_NOTE_LENGTH,
                pattern=NOT_BLANK,
                description="A note.",
                examples=["Cyber-crime hotline"],
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        self.owner = identifier(self.owner, "owner", MAX_OWNER_LENGTH)


class AllowlistDeleteIn(msgspec.Struct, forbid_unknown_fields=True):
    """Why a number is taken off the allowlist; the body may be left out."""

    reason: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_NOTE_LENGTH,
                pattern=NOT_BLANK,
                description="Why.",
                examples=["The hotline was retired"],
            ),
        ]
        | None
    ) = None


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
@accepts(AllowlistPutIn)
async def put_entry(request: web.Request, body: AllowlistPutIn) -> web.Response:
    """Verify a number: its lookups say `verified` with its owner."""
    number = parse_number(request.match_info["number"])
    answer = await request.app[MODERATION].allowlist_add(
        number, body.owner, body.note, actor(request[API_KEY])
    )
    return json_response(
        {
            "number": to_e164(number),
            "owner": body.owner,
            "note": body.note,
            "verdict": answer.judgement.verdict.value,
        }
    )


@requires(Role.ADMIN)
@accepts(AllowlistDeleteIn)
async def delete_entry(request: web.Request, body: AllowlistDeleteIn) -> web.Response:
    """Take a number off the allowlist; its reports count again from now on."""
    number = parse_number(request.match_info["number"])
    moderation = request.app[MODERATION]
    if not await moderation.allowlist_remove(number, body.reason, actor(request[API_KEY])):
        raise not_found(f"{to_e164(number)} is not on the allowlist.")
    return web.Response(status=HTTPStatus.NO_CONTENT)
