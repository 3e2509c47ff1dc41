"""GET /openapi.json (the API's OpenAPI 3.1 description) and GET /docs (the same, as a page)."""

from __future__ import annotations

import functools

from aiohttp import web

from .. import openapi, openapi_page
from ..auth import public
from ..problems import encode_json
from .documented import documented, json_response, text_response

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
"""The page loads nothing from anywhere and runs no script."""


@functools.cache
def _spec_json() -> bytes:
    return encode_json(openapi.spec())


@functools.cache
def _page() -> str:
    return openapi_page.render(openapi.spec())


@public
@documented(
    "docs",
    operation_id="openapi",
    responses={200: json_response({"type": "object"}, "The OpenAPI document.")},
)
async def openapi_json(request: web.Request) -> web.Response:
    """This description

    The OpenAPI 3.1 description of the API.
    """
    return web.Response(body=_spec_json(), content_type="application/json", charset="utf-8")


@public
@documented(
    "docs", operation_id="docs", responses={200: text_response("An HTML page.", "text/html")}
)
async def docs_page(request: web.Request) -> web.Response:
    """The API's documentation page

    This description as a self-contained HTML page.
    """
    return web.Response(
        text=_page(),
        content_type="text/html",
        charset="utf-8",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )
