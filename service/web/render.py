"""Pages from templates: one Jinja2 environment that escapes everything, and the headers
every page carries (a strict Content-Security-Policy: nothing loads from elsewhere, no
inline script or style runs)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from multidict import CIMultiDict

from .static import asset
from .texts import LANGUAGE_COOKIE, LANGUAGE_QUERY, other_language, page_language, translator

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Scripts, styles and images from this origin's files only, no inline script or style (the
charts are inline SVG drawn with attributes, which CSP does not govern); forms post here
only; no page may frame ours."""

PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The number a page is about is in its URL: no other site learns it from a Referer.
    "Referrer-Policy": "no-referrer",
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
) -> web.Response:
    """The template rendered in the visitor's language, with the page headers. A `lang`
    query (the language switch) is remembered in a cookie."""
    language = page_language(request)
    other = other_language(language)
    switch = {**request.query, LANGUAGE_QUERY: other}
    text = environment().get_template(template).render(
        **context,
        t=translator(language),
        asset=asset,
        lang=language,
        other_lang=other,
        switch_url=f"{request.path}?{urlencode(switch)}",
    )
    all_headers = CIMultiDict(PAGE_HEADERS)
    all_headers["Cache-Control"] = cache
    all_headers["Vary"] = "Accept-Language, Cookie"
    all_headers["Content-Language"] = language
    if headers:
        all_headers.update(headers)
    response = web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=all_headers
    )
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
