"""Pages from templates: one Jinja2 environment that escapes everything, and the headers
every page carries (a strict Content-Security-Policy: nothing loads from elsewhere, no
inline script or style runs)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from multidict import CIMultiDict

from ..auth import public
from ..problems import problem_for
from .static import asset
from .texts import LANGUAGE_COOKIE, LANGUAGE_QUERY, other_language, page_language, translator

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Scripts, styles and images from this origin's files only (and the empty data: icon, which
keeps browsers from asking for /favicon.ico), no inline script or style (the
charts are inline SVG drawn with attributes, which CSP does not govern); forms post here
only; no page may frame ours."""

PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The number a page is about is in its URL: no other site learns it from a Referer.
    # (Not no-referrer: with it, browsers send "Origin: null" on our own forms, which the
    # moderators' forms refuse as foreign.)
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
LANGUAGE_COOKIE_SECONDS: Final = 365 * 24 * 3600


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("callguard.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = HTTPStatus.OK,
    cache: str = "no-cache",
    headers: Mapping[str, str] | None = None,
    compress: bool = False,
) -> web.Response:
    """The template rendered in the visitor's language, with the page headers. A `lang`
    query (the language switch) is remembered in a cookie. `compress` gzips it for a browser
    that accepts that: only for pages that hold no secret, as compressing a secret beside
    text an attacker chooses leaks it (BREACH)."""
    language = page_language(request)
    other = other_language(language)
    switch = {**request.query, LANGUAGE_QUERY: other}
    # A page answering a form (POST) switches on the page the form belongs to.
    here = request.path if request.method in ("GET", "HEAD") else _form_page(request.path)
    text = (
        environment()
        .get_template(template)
        .render(
            **context,
            t=translator(language),
            asset=asset,
            lang=language,
            other_lang=other,
            switch_url=f"{here}?{urlencode(switch)}",
        )
    )
    all_headers = CIMultiDict(PAGE_HEADERS)
    all_headers["Cache-Control"] = cache
    all_headers["Vary"] = "Accept-Language, Cookie" + (", Accept-Encoding" if compress else "")
    all_headers["Content-Language"] = language
    if headers:
        all_headers.update(headers)
    response = web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=all_headers
    )
    if compress:
        response.enable_compression()
    if request.query.get(LANGUAGE_QUERY) == language:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=LANGUAGE_COOKIE_SECONDS,
            path="/",
            samesite="Lax",
            httponly=True,
        )
    return response


def _form_page(path: str) -> str:
    """The page a form posted to `path` lives on: a number's page for its report, /admin for
    a moderator's form, else the front page."""
    if path.startswith("/so/"):
        return path.removesuffix("/bao-cao")
    return "/admin" if path.startswith("/admin") else "/"


PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(handler: PageHandler) -> PageHandler:
    """Mark a handler as a page: open without an API key (a moderators' page checks its own
    session), and any failure the API would answer with problem+json (an outage, a limit, a
    malformed form) answered with a page in the visitor's language, with the same status
    and headers (Retry-After)."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as err:
            problem = problem_for(request, err)
            if problem is None:  # a redirect
                raise
            return error_page(request, problem.status, problem.headers)

    return public(answer)


def error_page(
    request: web.Request, status: int, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A page saying what went wrong, by status, in the visitor's language."""
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        title, message = "too_many_title", "too_many"
    elif status == HTTPStatus.NOT_FOUND:
        title, message = "not_found_title", "not_found"
    elif status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        title, message = "unavailable_title", "unavailable"
    else:
        title, message = "bad_request_title", "bad_request"
    seconds = (headers or {}).get("Retry-After", "60")
    return render(
        request,
        "message.html",
        {"title": title, "message": message, "seconds": seconds, "back": None},
        status=status,
        cache="no-store",
        headers=headers,
    )
