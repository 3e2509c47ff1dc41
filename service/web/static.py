"""The pages' own static files (style sheet, script), read once and served with a version in
their URL, so browsers keep them until they change."""

from __future__ import annotations

import functools
import hashlib
import mimetypes
from importlib import resources
from typing import Final

from aiohttp import web

from ..auth import public
from ..problems import not_found

STATIC_PATH: Final = "/static"
IMMUTABLE: Final = "public, max-age=31536000, immutable"


@functools.cache
def _files() -> dict[str, tuple[bytes, str, str]]:
    """name -> (content, content type, version)."""
    found = {}
    for entry in resources.files("callguard.web").joinpath("static").iterdir():
        content = entry.read_bytes()
        kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
        found[entry.name] = (content, kind, hashlib.sha256(content).hexdigest()[:12])
    return found


def asset(name: str) -> str:
    """A static file's URL, with its version."""
    return f"{STATIC_PATH}/{name}?v={_files()[name][2]}"


@public
async def static_file(request: web.Request) -> web.Response:
    """One of the pages' static files."""
    found = _files().get(request.match_info["name"])
    if found is None:
        raise not_found("No such file.")
    content, kind, version = found
    response = web.Response(
        body=content,
        content_type=kind,
        charset="utf-8",
        headers={
            "Cache-Control": IMMUTABLE if request.query.get("v") == version else "no-cache",
            "ETag": f'"{version}"',
            "X-Content-Type-Options": "nosniff",
            "Vary": "Accept-Encoding",
        },
    )
    response.enable_compression()
    return response
