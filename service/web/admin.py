"""The moderators' pages under /admin: sign in with an admin key, the review queue (/admin),
appeals, the allowlist and the audit log. Each form calls the same domain code as the API's
handler for it (api/reviews.py, appeals.py, allowlist.py, audit.py), with the body the API
declares, checked by that declaration; the admin's key comes from the session.
Session, CSRF and Origin checks: moderators.py."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

import msgspec
from aiohttp import web
from multidict import MultiDictProxy

from .. import store
from ..api import allowlist, appeals, reviews
from ..api.bodies import path_id
from ..api.documented import BEFORE
from ..api.numbers import actor
from ..auth import KEY_CACHE, Role, authenticate
from ..clock import VIETNAM
from ..e164 import MAX_INPUT_LENGTH, InvalidNumber, normalize, to_e164
from ..moderation import MODERATION
from ..problems import not_found
from ..state import POOL
from ..store.sessions import Session
from ..text import TextError
from .moderators import (
    ADMIN_PATH,
    end_session,
    moderator_page,
    refused,
    render_admin,
    same_origin,
    sign_in_wait,
    signed_in,
    start_session,
)
from .pages import shown_number
from .render import page
from .texts import TEXTS, Translate, page_language, translator

PAGE_SIZE: Final = 50
"""Rows a moderator's page lists at once; the rest are a link away."""
DONE_QUERY: Final = "done"
DONE: Final = frozenset(
    {"brigade", "genuine", "delisted", "rejected", "added", "removed", "already", "not_listed"}
)
"""What a `done` query may say happened (a notice above the list); others are ignored."""
MAX_KEY_LENGTH: Final = 256
"""Longer than any key `callguard keys create` makes: longer text is not checked."""
FORM_LIMITS: Final[Mapping[str, int]] = {
    "review_note": reviews.MAX_NOTE_LENGTH,
    "appeal_note": appeals.MAX_MESSAGE_LENGTH,
    "number": MAX_INPUT_LENGTH,
    "owner": allowlist.MAX_OWNER_LENGTH,
    "allowlist_note": allowlist.MAX_NOTE_LENGTH,
    "reason": allowlist.MAX_NOTE_LENGTH,
}
"""The API's limits, for the forms' maxlength and their messages."""

S = TypeVar("S", bound=msgspec.Struct)


@dataclass(frozen=True, slots=True)
class Invalid:
    """A form sent back to fix: its row (a review's or an appeal's id, an allowlisted
    number; None for the page's own form), the field at fault, and what was typed."""

    row: int | None
    field: str
    values: Mapping[str, str]


class FormInvalid(Exception):
    """A form field breaks the rule the API declares for it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not valid")
        self.field = name


def _texts(form: MultiDictProxy[Any], names: tuple[str, ...]) -> dict[str, str]:
    """The form's text fields of these names, as typed (a file or a missing field as '')."""
    return {name: value if isinstance(value := form.get(name), str) else "" for name in names}


_FIELD_AT = re.compile(r"`\$\.(\w+)`|missing required field `(\w+)`|^'(\w+)'")


def form_body(values: Mapping[str, str], body_type: type[S]) -> S:
    """The API's body from a form's fields (a blank one left out, as the API's optional
    fields are), checked by the API's declaration; FormInvalid names the field at fault."""
    given = {name: value for name, value in values.items() if value.strip()}
    try:
        return msgspec.convert(given, body_type)
    except msgspec.ValidationError as err:
        # msgspec names the field in its message; a TextError from the declaration's
        # __post_init__ (text.identifier) begins with it.
        cause = err.__cause__
        found = _FIELD_AT.search(str(cause if isinstance(cause, TextError) else err))
        name = next((group for group in found.groups() if group), "") if found else ""
        raise FormInvalid(name or next(iter(values))) from err


def _when(at: datetime | None) -> str:
    """A time as moderators in Vietnam read it."""
    return "" if at is None else at.astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M")


def _done(request: web.Request) -> str | None:
    done = request.query.get(DONE_QUERY)
    return done if done in DONE else None


def _back(path: str, done: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"{path}?{urlencode({DONE_QUERY: done})}")


def _page_context(request: web.Request, here: str) -> dict[str, Any]:
    return {
        "here": here,
        "done": _done(request),
        "when": _when,
        "shown": shown_number,
        "e164": to_e164,
        "limits": FORM_LIMITS,
        "invalid": None,
    }


# --- signing in and out ------------------------------------------------------------------


def _sign_in_form(
    request: web.Request, status: int = HTTPStatus.OK, error: str | None = None
) -> web.Response:
    return render_admin(request, "admin/sign_in.html", None, {"error": error}, status=status)


@page
async def sign_in_page(request: web.Request) -> web.Response:
    """The sign-in form; a moderator already signed in goes on to the review queue."""
    if await signed_in(request) is not None:
        raise web.HTTPSeeOther(ADMIN_PATH)
    return _sign_in_form(request)


@page
async def sign_in(request: web.Request) -> web.Response:
    """Sign in with an admin key: attempts are limited per client network before the key is
    checked; a wrong key gets the form again, never a word on whether the key exists."""
    if not same_origin(request):
        return refused(request, None, "admin_form_refused")
    wait = sign_in_wait(request)
    if wait:
        seconds = max(1, round(wait))
        return render_admin(
            request,
            "admin/message.html",
            None,
            {"title": "too_many_title", "message": "admin_too_many", "seconds": seconds},
            status=HTTPStatus.TOO_MANY_REQUESTS,
            headers={"Retry-After": str(seconds)},
        )
    key = _texts(await request.post(), ("key",))["key"].strip()
    caller = None
    if key and len(key) <= MAX_KEY_LENGTH:
        app = request.app
        caller = await authenticate(app[POOL], app[KEY_CACHE], f"Bearer {key}")
    if caller is None:
        return _sign_in_form(request, HTTPStatus.UNAUTHORIZED, "admin_key_wrong")
    if caller.role is not Role.ADMIN:
        return refused(request, None, "admin_not_admin")
    return await start_session(request, caller.key)


@moderator_page
async def sign_out(request: web.Request, session: Session) -> web.Response:
    """Sign out: the session ends here and on every replica."""
    return await end_session(request)


# --- the review queue --------------------------------------------------------------------


async def _review_queue(
    request: web.Request,
    session: Session,
    invalid: Invalid | None = None,
    status: int = HTTPStatus.OK,
) -> web.Response:
    after = reviews.REVIEWS_AFTER.read(request)
    found = await store.reviews.list_reviews(request.app[POOL], "open", after, PAGE_SIZE)
    context = _page_context(request, "reviews")
    t = translator(page_language(request))
    context.update(
        reviews=found,
        figure=lambda name, value: _figure(t, name, value),
        more=found[-1].id if len(found) == PAGE_SIZE else None,
        invalid=invalid,
    )
    return render_admin(request, "admin/reviews.html", session, context, status=status)


def _figure(t: Translate, name: str, value: object) -> str:
    """One figure that queued a review, in words; a figure without words as name: value."""
    key = f"admin_figure_{name}"
    return t(key).format(value=value) if key in TEXTS else f"{name}: {value}"


@moderator_page
async def review_queue(request: web.Request, session: Session) -> web.Response:
    """The open reviews, oldest first, each with its decision form."""
    return await _review_queue(request, session)


@moderator_page
async def decide_review(request: web.Request, session: Session) -> web.Response:
    """Decide a review as POST /v1/reviews/{review_id}/decide does; back to the queue."""
    review_id = path_id(request, "review_id", "review")
    values = _texts(await request.post(), ("decision", "note"))
    try:
        body = form_body(values, reviews.ReviewDecisionIn)
    except FormInvalid as err:
        invalid = Invalid(review_id, err.field, values)
        return await _review_queue(request, session, invalid, HTTPStatus.BAD_REQUEST)
    try:
        review = await request.app[MODERATION].decide_review(
            review_id, body.decision == "brigade", body.note, actor(session.key)
        )
    except store.reviews.ReviewNotOpen:
        raise _back(ADMIN_PATH, "already") from None
    if review is None:
        raise not_found(f"There is no review {review_id}.")
    raise _back(ADMIN_PATH, body.decision)


# --- appeals -----------------------------------------------------------------------------

APPEALS_PATH: Final = "/admin/appeals"


async def _appeals_page(
    request: web.Request,
    session: Session,
    invalid: Invalid | None = None,
    status: int = HTTPStatus.OK,
) -> web.Response:
    after = appeals.APPEALS_AFTER.read(request)
    found = await store.appeals.list_appeals(request.app[POOL], "open", after, PAGE_SIZE)
    context = _page_context(request, "appeals")
    context.update(
        appeals=found,
        more=found[-1].id if len(found) == PAGE_SIZE else None,
        invalid=invalid,
    )
    return render_admin(request, "admin/appeals.html", session, context, status=status)


@moderator_page
async def appeals_page(request: web.Request, session: Session) -> web.Response:
    """The open appeals, oldest first, each with its decision form."""
    return await _appeals_page(request, session)


@moderator_page
async def resolve_appeal(request: web.Request, session: Session) -> web.Response:
    """Decide an appeal as POST /v1/appeals/{appeal_id}/resolve does; back to the appeals."""
    appeal_id = path_id(request, "appeal_id", "appeal")
    values = _texts(await request.post(), ("decision", "note"))
    try:
        body = form_body(values, appeals.AppealDecisionIn)
    except FormInvalid as err:
        invalid = Invalid(appeal_id, err.field, values)
        return await _appeals_page(request, session, invalid, HTTPStatus.BAD_REQUEST)
    try:
        appeal = await request.app[MODERATION].resolve_appeal(
            appeal_id, appeals.DELISTS[body.decision], body.note, actor(session.key)
        )
    except store.appeals.AppealNotOpen:
        raise _back(APPEALS_PATH, "already") from None
    if appeal is None:
        raise not_found(f"There is no appeal {appeal_id}.")
    raise _back(APPEALS_PATH, appeal.status)


# --- the allowlist -----------------------------------------------------------------------

ALLOWLIST_PATH: Final = "/admin/allowlist"


async def _allowlist_page(
    request: web.Request,
    session: Session,
    invalid: Invalid | None = None,
    status: int = HTTPStatus.OK,
) -> web.Response:
    context = _page_context(request, "allowlist")
    context.update(entries=await store.allowlist.entries(request.app[POOL]), invalid=invalid)
    return render_admin(request, "admin/allowlist.html", session, context, status=status)


@moderator_page
async def allowlist_page(request: web.Request, session: Session) -> web.Response:
    """The verified numbers, a form to verify one, and one to un-verify each."""
    return await _allowlist_page(request, session)


@moderator_page
async def add_to_allowlist(request: web.Request, session: Session) -> web.Response:
    """Verify a number as PUT /v1/allowlist/{number} does; back to the allowlist."""
    values = _texts(await request.post(), ("number", "owner", "note"))
    try:
        try:
            number = normalize(values["number"])
        except InvalidNumber:
            raise FormInvalid("number") from None
        body = form_body(
            {"owner": values["owner"], "note": values["note"]}, allowlist.AllowlistPutIn
        )
    except FormInvalid as err:
        invalid = Invalid(None, err.field, values)
        return await _allowlist_page(request, session, invalid, HTTPStatus.BAD_REQUEST)
    await request.app[MODERATION].allowlist_add(number, body.owner, body.note, actor(session.key))
    raise _back(ALLOWLIST_PATH, "added")


@moderator_page
async def remove_from_allowlist(request: web.Request, session: Session) -> web.Response:
    """Un-verify a number as DELETE /v1/allowlist/{number} does; back to the allowlist."""
    text = request.match_info["number"]
    try:
        number = normalize(text)
    except InvalidNumber:
        raise not_found("No such number on the allowlist.") from None
    values = _texts(await request.post(), ("reason",))
    try:
        body = form_body(values, allowlist.AllowlistDeleteIn)
    except FormInvalid as err:
        invalid = Invalid(number, err.field, values)
        return await _allowlist_page(request, session, invalid, HTTPStatus.BAD_REQUEST)
    moderation = request.app[MODERATION]
    if not await moderation.allowlist_remove(number, body.reason, actor(session.key)):
        raise _back(ALLOWLIST_PATH, "not_listed")
    raise _back(ALLOWLIST_PATH, "removed")


# --- the audit log -----------------------------------------------------------------------


@moderator_page
async def audit_page(request: web.Request, session: Session) -> web.Response:
    """Every moderation action, newest first; older ones a link away (`before`)."""
    entries = await store.audit.entries(request.app[POOL], BEFORE.read(request), PAGE_SIZE)
    context = _page_context(request, "audit")
    context.update(
        entries=entries,
        older=entries[-1].id if len(entries) == PAGE_SIZE else None,
    )
    return render_admin(request, "admin/audit.html", session, context)
