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
from ..reputation import Verdict
from ..state import POOL
from ..text import identifier
from .answers import E164, Body, CategoryId, Count, Id, Time
from .bodies import FreeText, accepts, iso, json_answer, responds
from .documented import BAD_NUMBER, bad, documented, limit, missing
from .numbers import NUMBER, actor, parse_number

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


class AllowlistPutIn(msgspec.Struct, forbid_unknown_fields=True):
    """Who owns a number being verified."""

    owner: Annotated[
        FreeText,
        Meta(
            max_length=MAX_OWNER_LENGTH,
            description="Who owns the number; compared as Unicode NFC, with invisible "
            "characters and surrounding white space left out.",
            examples=["Công an tỉnh Đồng Nai"],
        ),
    ]
    note: (
        Annotated[
            FreeText,
            Meta(
                max_length=MAX_NOTE_LENGTH,
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
            FreeText,
            Meta(
                max_length=MAX_NOTE_LENGTH,
                description="Why.",
                examples=["The hotline was retired"],
            ),
        ]
        | None
    ) = None


def _entry_fields(entry: store.allowlist.AllowlistEntry) -> dict[str, Any]:
    return {
        "number": to_e164(entry.number),
        "owner": entry.owner,
        "note": entry.note,
        "added_at": entry.added_at.isoformat(),
        "spoofing_reports": entry.spoofing_reports,
    }


NOT_ALLOWLISTED = missing("The number is not on the allowlist.")


@requires(Role.ADMIN)
@documented("moderation")
@responds(200, AllowlistEntries, "The allowlist.")
async def list_allowlist(request: web.Request) -> web.Response:
    """Verified numbers

    Every verified number, with how many reports against it look like spoofing.
    """
    entries = await store.allowlist.entries(request.app[POOL])
    return json_answer(
        AllowlistEntries([AllowlistEntry(**_entry_fields(entry)) for entry in entries])
    )


SPOOFING_REPORTS = limit(50, 1000)


@requires(Role.ADMIN)
@documented(
    "moderation",
    parameters=(NUMBER, SPOOFING_REPORTS),
    responses={
        400: bad("The number is not valid, or `limit` is out of range."),
        404: NOT_ALLOWLISTED,
    },
)
@responds(200, AllowlistEntryDetail, "The entry.")
async def get_allowlist_entry(request: web.Request) -> web.Response:
    """One verified number

    The entry and its newest reports flagged as possible spoofing.
    """
    number = parse_number(request.match_info["number"])
    entries = await store.allowlist.entries(request.app[POOL], number)
    if not entries:
        raise not_found(f"{to_e164(number)} is not on the allowlist.")
    limit = SPOOFING_REPORTS.read(request)
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
@documented("moderation", parameters=(NUMBER,), responses={400: BAD_NUMBER})
@responds(200, AllowlistPut, "Verified.")
@accepts(AllowlistPutIn)
async def put_allowlist_entry(request: web.Request, body: AllowlistPutIn) -> web.Response:
    """Verify a number

    Its lookups say `verified` with its owner, whatever the reports.
    """
    number = parse_number(request.match_info["number"])
    answer = await request.app[MODERATION].allowlist_add(
        number, body.owner, body.note, actor(request[API_KEY])
    )
    return json_answer(
        AllowlistPut(to_e164(number), body.owner, body.note, answer.judgement.verdict)
    )


@requires(Role.ADMIN)
@documented(
    "moderation",
    parameters=(NUMBER,),
    responses={
        204: {"description": "Taken off the allowlist."},
        400: BAD_NUMBER,
        404: NOT_ALLOWLISTED,
    },
)
@accepts(AllowlistDeleteIn)
async def delete_allowlist_entry(request: web.Request, body: AllowlistDeleteIn) -> web.Response:
    """Un-verify a number

    Its reports count again from now on. The body is optional.
    """
    number = parse_number(request.match_info["number"])
    moderation = request.app[MODERATION]
    if not await moderation.allowlist_remove(number, body.reason, actor(request[API_KEY])):
        raise not_found(f"{to_e164(number)} is not on the allowlist.")
    return web.Response(status=HTTPStatus.NO_CONTENT)
