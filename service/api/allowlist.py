"""/v1/allowlist (admin): verified numbers, such as official hotlines, never flagged."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta

from .. import store
from ..auth import API_KEY, Role, requires
from ..e164 import to_e164
from ..moderation import MODERATION
from ..problems import not_found
from ..reputation import Verdict
from ..state import POOL
from .answers import E164, Body, CategoryId, Count, Id, Time
from .bodies import (
    identifier_field,
    iso,
    json_answer,
    optional_text_field,
    query_int,
    read_object,
    responds,
)
from .numbers import actor, parse_number

MAX_OWNER_LENGTH = 200
MAX_NOTE_LENGTH = 2000


class AllowlistEntry(Body):
    """A verified number."""

    number: E164
    owner: str
    note: str | None
    added_at: Annotated[Time, Meta(description="When it was verified.")]
    spoofing_reports: Annotated[Count, Meta(description="Reports against it flagged as spoofing.")]


class FlaggedReport(Body):
    """A report against a verified number flagged as possible spoofing."""

    report_id: Id
    category: CategoryId
    description: str | None
    occurred_at: Annotated[Time, Meta(description="When the caller says it happened.")] | None
    received_at: Annotated[Time, Meta(description="When the report came in.")]


class AllowlistEntryDetail(AllowlistEntry):
    """A verified number and the newest reports against it flagged as possible spoofing."""

    flagged_reports: Annotated[
        list[FlaggedReport],
        Meta(description="The newest reports against it flagged as possible spoofing."),
    ]


class AllowlistEntries(Body):
    """Verified numbers, by number."""

    entries: list[AllowlistEntry]


class AllowlistPut(Body):
    """A number just verified, and its verdict now."""

    number: E164
    owner: str
    note: str | None
    verdict: Verdict


def _entry_fields(entry: store.allowlist.AllowlistEntry) -> dict[str, Any]:
    return {
        "number": to_e164(entry.number),
        "owner": entry.owner,
        "note": entry.note,
        "added_at": entry.added_at.isoformat(),
        "spoofing_reports": entry.spoofing_reports,
    }


@requires(Role.ADMIN)
@responds(200, AllowlistEntries, "The allowlist.")
async def list_entries(request: web.Request) -> web.Response:
    """Every verified number, with how many reports against it look like spoofing."""
    entries = await store.allowlist.entries(request.app[POOL])
    return json_answer(
        AllowlistEntries([AllowlistEntry(**_entry_fields(entry)) for entry in entries])
    )


@requires(Role.ADMIN)
@responds(200, AllowlistEntryDetail, "The entry.")
async def get_entry(request: web.Request) -> web.Response:
    """One verified number and the newest reports flagged as possible spoofing of it."""
    number = parse_number(request.match_info["number"])
    entries = await store.allowlist.entries(request.app[POOL], number)
    if not entries:
        raise not_found(f"{to_e164(number)} is not on the allowlist.")
    limit = query_int(request, "limit", 50, 1, 1000)
    reports = await store.allowlist.spoofing_reports(request.app[POOL], number, limit)
    return json_answer(
        AllowlistEntryDetail(
            **_entry_fields(entries[0]),
            flagged_reports=[
                FlaggedReport(
                    report_id=report.id,
                    category=report.category,
                    description=report.description,
                    occurred_at=iso(report.occurred_at),
                    received_at=report.received_at.isoformat(),
                )
                for report in reports
            ],
        )
    )


@requires(Role.ADMIN)
@responds(200, AllowlistPut, "Verified.")
async def put_entry(request: web.Request) -> web.Response:
    """Verify a number: its lookups say `verified` with its owner."""
    number = parse_number(request.match_info["number"])
    data = await read_object(request, ("owner", "note"))
    owner = identifier_field(data, "owner", MAX_OWNER_LENGTH)
    note = optional_text_field(data, "note", MAX_NOTE_LENGTH)
    answer = await request.app[MODERATION].allowlist_add(
        number, owner, note, actor(request[API_KEY])
    )
    return json_answer(AllowlistPut(to_e164(number), owner, note, answer.judgement.verdict))


@requires(Role.ADMIN)
async def delete_entry(request: web.Request) -> web.Response:
    """Take a number off the allowlist; its reports count again from now on."""
    number = parse_number(request.match_info["number"])
    data = await read_object(request, ("reason",), optional=True)
    reason = optional_text_field(data, "reason", MAX_NOTE_LENGTH)
    if not await request.app[MODERATION].allowlist_remove(number, reason, actor(request[API_KEY])):
        raise not_found(f"{to_e164(number)} is not on the allowlist.")
    return web.Response(status=HTTPStatus.NO_CONTENT)
