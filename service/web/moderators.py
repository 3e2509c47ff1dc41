"""Moderators' sessions on the pages under /admin: signing in with an admin key (attempts
limited per client network), the session cookie, and what every moderator's page checks
first (a live session; for a form, that it came from our own page: Origin and CSRF token).

A session lives in Postgres (store.sessions), so any replica serves it, and its key is
checked on every request, so revoking the key ends its sessions at once everywhere.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web

from .. import store
from ..auth import client_address
from ..limits import NetworkBuckets
from ..state import CLOCK, CONFIG, POOL
from ..store.sessions import Session
from .render import PageHandler, page, render

SESSION_COOKIE: Final = "callguard_admin"
SESSION_LIFETIME: Final = timedelta(hours=8)
"""A session ends this long after signing in, however busy (a working day)."""
ADMIN_PATH: Final = "/admin"
SIGN_IN_PATH: Final = "/admin/sign-in"
MAX_TOKEN_LENGTH: Final = 100
"""Longer than any token made here (43 characters): a longer cookie is not looked up."""
MAX_NETWORKS: Final = 65_536
"""Client networks whose sign-in attempts are counted at once (about 10 MB at most)."""
CSRF_FIELD: Final = "csrf"

SIGN_INS = web.AppKey("admin_sign_ins", NetworkBuckets)
"""Sign-in attempts per client network, in this process."""

ModeratorHandler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


async def moderators(app: web.Application) -> AsyncIterator[None]:
    """The limit on sign-in attempts per client network."""
    config = app[CONFIG]
    app[SIGN_INS] = NetworkBuckets(
        config.admin_sign_ins_per_network_per_minute / 60,
        config.admin_sign_in_burst_per_network,
        MAX_NETWORKS,
        v4_prefix=24,
        v6_prefix=48,
    )
    yield


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _scheme(request: web.Request) -> str:
    """The scheme the browser used: the one a trusted proxy (a balancer ending TLS) names in
    X-Forwarded-Proto, else this connection's."""
    forwarded = request.headers.get("X-Forwarded-Proto")
    if forwarded and (request.remote or "") in request.app[CONFIG].trusted_proxies:
        return forwarded.rsplit(",", 1)[-1].strip().lower()
    return request.scheme


def same_origin(request: web.Request) -> bool:
    """Whether a form came from a page of ours as far as the browser says: an Origin header,
    if sent, must be this site's."""
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{_scheme(request)}://{request.host}"


def sign_in_wait(request: web.Request) -> float:
    """Count a sign-in attempt for the client's network: 0.0, or the seconds to wait."""
    address = client_address(request, request.app[CONFIG].trusted_proxies)
    return request.app[SIGN_INS].take(address)


async def signed_in(request: web.Request) -> Session | None:
    """The request's live session: its cookie names one that has not expired, and whose
    key is still an unrevoked admin key."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    app = request.app
    return await store.sessions.find(app[POOL], _token_hash(token), app[CLOCK]())


async def start_session(request: web.Request, key: store.keys.ApiKey) -> web.Response:
    """Sign an admin key in: a new session (a fresh token, never one the browser brought),
    its cookie, and on to the review queue."""
    token = secrets.token_urlsafe(32)
    now = request.app[CLOCK]()
    await store.sessions.start(
        request.app[POOL],
        _token_hash(token),
        key.id,
        secrets.token_urlsafe(32),
        now,
        now + SESSION_LIFETIME,
    )
    response = web.Response(
        status=HTTPStatus.SEE_OTHER, headers={"Location": ADMIN_PATH, "Cache-Control": "no-store"}
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=ADMIN_PATH,
        secure=_scheme(request) == "https",
        httponly=True,
        samesite="Strict",
    )
    return response


async def end_session(request: web.Request) -> web.Response:
    """Sign out: the session forgotten, its cookie cleared, back to the sign-in page."""
    token = request.cookies.get(SESSION_COOKIE, "")
    await store.sessions.end(request.app[POOL], _token_hash(token))
    response = web.Response(
        status=HTTPStatus.SEE_OTHER,
        headers={"Location": SIGN_IN_PATH, "Cache-Control": "no-store"},
    )
    response.del_cookie(SESSION_COOKIE, path=ADMIN_PATH)
    return response


def render_admin(
    request: web.Request,
    template: str,
    session: Session | None,
    context: Mapping[str, Any],
    *,
    status: int = HTTPStatus.OK,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A moderator's page: never cached, and with the session's CSRF token for its forms.
    Not compressed: it holds that token beside text others wrote (appeals), which
    compression would leak (BREACH)."""
    return render(
        request,
        template,
        {"here": None, **context, "session": session},
        status=status,
        cache="no-store",
        headers=headers,
    )


def refused(request: web.Request, session: Session | None, message: str) -> web.Response:
    """The 403 page: the form is not one of ours, or the key may not moderate."""
    return render_admin(
        request,
        "admin/message.html",
        session,
        {"title": "admin_forbidden_title", "message": message, "seconds": 0},
        status=HTTPStatus.FORBIDDEN,
    )


def moderator_page(handler: ModeratorHandler) -> PageHandler:
    """Mark a handler as a moderator's page (a page: see render.page): without a live
    session, on to the sign-in page; a form (POST) from another origin, or without the
    session's CSRF token, is refused (403) before the handler runs. The handler is called as
    handler(request, session)."""

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        posted = request.method == "POST"
        if posted and not same_origin(request):
            return refused(request, None, "admin_form_refused")
        session = await signed_in(request)
        if session is None:
            raise web.HTTPSeeOther(SIGN_IN_PATH)
        if posted:
            sent = (await request.post()).get(CSRF_FIELD)
            if not isinstance(sent, str) or not hmac.compare_digest(
                sent.encode("utf-8", "surrogatepass"), session.csrf.encode("ascii")
            ):
                return refused(request, session, "admin_form_refused")
        return await handler(request, session)

    return page(checked)
