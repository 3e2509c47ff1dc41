"""/v1/appeals: a number's owner asks for a delisting (any key, limited per key); admins
decide."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Annotated, Literal, cast, get_args

import msgspec
from aiohttp import web
from msgspec import Meta

from .. import store
from ..auth import API_KEY, Role, requires
from ..e164 import to_e164
from ..moderation import MODERATION
from ..problems import answers, not_found, too_many_requests
from ..state import APPEAL_LIMITS, CLOCK, CONFIG, POOL
from .answers import E164, Body, Id, Time
from .bodies import FreeText, accepts, iso, json_answer, path_id, query_choice, responds
from .documented import (
    BAD_BODY,
    BAD_QUERY,
    DEFAULTS,
    ID_MAX,
    RETRY_AFTER,
    after,
    documented,
    integer,
    limit,
    missing,
    path,
    problem,
    query,
    ref,
)
from .numbers import PhoneNumberInput, actor, parse_number

AppealStatus = Literal["open", "delisted", "rejected"]
STATUSES: tuple[str, ...] = get_args(AppealStatus)
Decision = Literal["delist", "reject"]
DELISTS: dict[Decision, bool] = {"delist": True, "reject": False}
"""Whether a decision delists the number (mypy holds the keys to Decision's values)."""
MAX_CONTACT_LENGTH = 200
MAX_MESSAGE_LENGTH = 4000


class Appeal(Body):
    """An owner's appeal against a number's listing."""

    appeal_id: Id
    number: E164
    contact: str
    message: str
    status: AppealStatus
    created_at: Annotated[Time, Meta(description="When it was filed.")]
    resolved_at: Annotated[Time, Meta(description="When an admin decided it.")] | None
    resolution_note: str | None


class Appeals(Body):
    """Appeals, oldest first."""

    appeals: list[Appeal]


def appeal_body(appeal: store.appeals.Appeal) -> Appeal:
    """The body for one appeal."""
    return Appeal(
        appeal_id=appeal.id,
        number=to_e164(appeal.number),
        contact=appeal.contact,
        message=appeal.message,
        status=cast(AppealStatus, appeal.status),
        created_at=appeal.created_at.isoformat(),
        resolved_at=iso(appeal.resolved_at),
        resolution_note=appeal.resolution_note,
    )


class AppealIn(msgspec.Struct, forbid_unknown_fields=True):
    """A number's owner asks for its delisting."""

    number: PhoneNumberInput
    contact: Annotated[
        FreeText,
        Meta(
            max_length=MAX_CONTACT_LENGTH,
            description="How to reach the owner.",
            examples=["owner@example.com"],
        ),
    ]
    message: Annotated[
        FreeText,
        Meta(
            max_length=MAX_MESSAGE_LENGTH,
            description="Why to delist it.",
            examples=["This is my shop's number."],
        ),
    ]


class AppealDecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    """An admin's decision on an open appeal."""

    decision: Annotated[
        Decision,
        Meta(
            description="`delist` delists the number at once; `reject` leaves it listed.",
            examples=["reject"],
        ),
    ]
    note: Annotated[
        FreeText,
        Meta(
            max_length=MAX_MESSAGE_LENGTH,
            description="Why.",
            examples=["Reported by many people this week."],
        ),
    ]


@contextmanager
def _within_rate(request: web.Request) -> Iterator[None]:
    """An appeal costs the key a token before its body is read: 429 past the rate."""
    wait = request.app[APPEAL_LIMITS].take(request[API_KEY].id)
    if wait:
        rate = request.app[CONFIG].appeals_per_key_per_second
        raise too_many_requests(f"This key may file {rate:g} appeals a second.", wait)
    yield


@answers(store.appeals.AppealOpen)
@documented(
    "appeals",
    responses={
        400: BAD_BODY,
        429: problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            f"Too many appeals: over {DEFAULTS.appeals_per_key_per_second:g} a second for the key.",
            {"Retry-After": RETRY_AFTER},
        ),
    },
)
@responds(201, Appeal, "Filed, open.")
@accepts(AppealIn, within=_within_rate)
async def create_appeal(request: web.Request, body: AppealIn) -> web.Response:
    """Appeal a listing

    A number's owner asks for a delisting; an admin decides. A key has one open appeal per
    number.
    """
    api_key = request[API_KEY]
    appeal = await store.appeals.create(
        request.app[POOL],
        parse_number(body.number),
        body.contact,
        body.message,
        api_key.id,
        request.app[CLOCK](),
    )
    return json_answer(appeal_body(appeal), status=HTTPStatus.CREATED)


APPEALS_AFTER = after("Only appeals with a higher id.")
APPEALS_LIMIT = limit(100, 1000)


@requires(Role.ADMIN)
@documented(
    "appeals",
    parameters=(
        query("status", ref("AppealStatus"), "Only appeals of this status."),
        APPEALS_AFTER,
        APPEALS_LIMIT,
    ),
    responses={400: BAD_QUERY},
)
@responds(200, Appeals, "The appeals.")
async def list_appeals(request: web.Request) -> web.Response:
    """Appeals

    Appeals oldest first; page with `after` = the last `appeal_id` seen.
    """
    status = query_choice(request, "status", STATUSES)
    after = APPEALS_AFTER.read(request)
    limit = APPEALS_LIMIT.read(request)
    appeals = await store.appeals.list_appeals(request.app[POOL], status, after, limit)
    return json_answer(Appeals([appeal_body(appeal) for appeal in appeals]))


@requires(Role.ADMIN)
@answers(store.appeals.AppealNotOpen)
@documented(
    "appeals",
    parameters=(path("appeal_id", integer(1, ID_MAX), "The appeal's id.", 1),),
    responses={400: BAD_BODY, 404: missing("There is no such appeal.")},
)
@responds(200, Appeal, "Decided.")
@accepts(AppealDecisionIn)
async def resolve_appeal(request: web.Request, body: AppealDecisionIn) -> web.Response:
    """Decide an appeal

    `delist` delists the number at once; `reject` leaves it listed.
    """
    appeal_id = path_id(request, "appeal_id", "appeal")
    appeal = await request.app[MODERATION].resolve_appeal(
        appeal_id, DELISTS[body.decision], body.note, actor(request[API_KEY])
    )
    if appeal is None:
        raise not_found(f"There is no appeal {appeal_id}.")
    return json_answer(appeal_body(appeal))
