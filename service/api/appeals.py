"""/v1/appeals: a number's owner asks for a delisting (any key, limited per key); admins
decide."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Literal, cast, get_args

from aiohttp import web
from msgspec import Meta

from .. import store
from ..auth import API_KEY, Role, requires
from ..e164 import to_e164
from ..moderation import MODERATION
from ..problems import answers, bad_request, not_found, too_many_requests
from ..state import APPEAL_LIMITS, CLOCK, CONFIG, POOL
from .answers import E164, Body, Id, Time
from .bodies import digits, iso, json_answer, query_int, read_object, responds, text_field
from .numbers import actor, parse_number

AppealStatus = Literal["open", "delisted", "rejected"]
STATUSES: tuple[str, ...] = get_args(AppealStatus)
DECISIONS = {"delist": True, "reject": False}
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


@answers(store.appeals.AppealOpen)
@responds(201, Appeal, "Filed, open.")
async def create_appeal(request: web.Request) -> web.Response:
    """File an appeal against a number's listing: one open appeal per number per key."""
    api_key = request[API_KEY]
    wait = request.app[APPEAL_LIMITS].take(api_key.id)
    if wait:
        rate = request.app[CONFIG].appeals_per_key_per_second
        raise too_many_requests(f"This key may file {rate:g} appeals a second.", wait)
    data = await read_object(request, ("number", "contact", "message"))
    number = parse_number(text_field(data, "number", 64))
    appeal = await store.appeals.create(
        request.app[POOL],
        number,
        text_field(data, "contact", MAX_CONTACT_LENGTH),
        text_field(data, "message", MAX_MESSAGE_LENGTH),
        api_key.id,
        request.app[CLOCK](),
    )
    return json_answer(appeal_body(appeal), status=HTTPStatus.CREATED)


@requires(Role.ADMIN)
@responds(200, Appeals, "The appeals.")
async def list_appeals(request: web.Request) -> web.Response:
    """Appeals oldest first, optionally of one status; page with ?after=<last appeal_id>."""
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise bad_request(f"'status' must be one of {', '.join(STATUSES)}.")
    after = query_int(request, "after", 0, 0, 2**62)
    limit = query_int(request, "limit", 100, 1, 1000)
    appeals = await store.appeals.list_appeals(request.app[POOL], status, after, limit)
    return json_answer(Appeals([appeal_body(appeal) for appeal in appeals]))


@requires(Role.ADMIN)
@answers(store.appeals.AppealNotOpen)
@responds(200, Appeal, "Decided.")
async def resolve_appeal(request: web.Request) -> web.Response:
    """Decide an open appeal: delist its number at once, or reject it."""
    text = request.match_info["appeal_id"]
    appeal_id = digits(text, 18)
    if appeal_id is None:
        raise not_found(f"There is no appeal {text!r}.")
    data = await read_object(request, ("decision", "note"))
    decision = text_field(data, "decision", 16)
    if decision not in DECISIONS:
        raise bad_request("'decision' must be 'delist' or 'reject'.")
    note = text_field(data, "note", MAX_MESSAGE_LENGTH)
    appeal = await request.app[MODERATION].resolve_appeal(
        appeal_id, DECISIONS[decision], note, actor(request[API_KEY])
    )
    if appeal is None:
        raise not_found(f"There is no appeal {text}.")
    return json_answer(appeal_body(appeal))
