"""/v1/lists: the lists phones hold, as updates from the version a phone holds (docs/lists.md),
and whole as gzipped TSV for integrators."""

from __future__ import annotations

import builtins
import zlib
from datetime import UTC
from http import HTTPStatus
from typing import Annotated, Literal

from aiohttp import web
from msgspec import Meta

from .. import store
from ..e164 import to_e164
from ..lists import LIST_NAMES, LISTS, BadState
from ..problems import Problem, answers, bad_request, not_found
from ..state import POOL
from .answers import Body, Count
from .bodies import responds
from .documented import documented, header, path, problem, query, text_response

ListName = Literal["scam", "verified"]
MAX_STATE_LENGTH = 100
EXPORT_BATCH = 10_000
RETRY_UNPUBLISHED_SECONDS = 10


class CodedList(Body):
    """A sorted list of distinct integers, Rice-Golomb coded (docs/lists.md, "The wire
    format")."""

    first_value: Annotated[int, Meta(ge=0, description="The smallest value; 0 when empty.")]
    rice_parameter: Annotated[int, Meta(ge=0, le=62, description="k.")]
    count: Annotated[Count, Meta(description="How many values the list holds.")]
    encoded_data: Annotated[
        str,
        Meta(
            pattern=r"^[A-Za-z0-9+/]*={0,2}$",
            description="Base64 of the coded gaps, least significant bit of each byte first.",
        ),
    ]


class Additions(Body):
    """Numbers added, with the detail they share."""

    detail: Annotated[str, Meta(description="The category (scam), or the owner (verified).")]
    numbers: CodedList


class ListUpdate(Body):
    """An update from the version the phone holds to the newest, or the whole list."""

    list: ListName
    state: Annotated[
        str, Meta(max_length=MAX_STATE_LENGTH, description="Send it back as `state` next time.")
    ]
    partial: Annotated[
        bool, Meta(description="False: the whole list; replace what you hold with it.")
    ]
    removals: Annotated[
        CodedList,
        Meta(description="Indices into the sorted list the phone holds, before the update."),
    ]
    additions: Annotated[
        builtins.list[Additions],  # `list` is the field above, in this class
        Meta(description="By detail; a number is in one group at most."),
    ]
    entries: Annotated[Count, Meta(description="Numbers in the list after the update.")]
    sha256: Annotated[
        str,
        Meta(
            pattern=r"^[A-Za-z0-9+/]{43}=$",
            description="Base64 of the SHA-256 of the sorted list after the update, each "
            "number as 8 bytes big-endian: check it, and ask with no state if it differs.",
        ),
    ]
    minimum_wait_seconds: Annotated[int, Meta(ge=0, description="Ask again no sooner.")]


NAME = path("name", {"enum": list(LIST_NAMES)}, "Which list.", "scam")
CACHING = {
    "ETag": header(
        "The update's tag (its gzipped form has its own): send it as If-None-Match to get "
        "304 if unchanged."
    ),
    "Cache-Control": header("private, max-age= the minimum wait."),
    "Vary": header("Accept-Encoding: gzip is sent to a client that accepts it."),
}


@answers(BadState)
@documented(
    "lists",
    parameters=(
        NAME,
        query(
            "state",
            {"type": "string", "minLength": 1, "maxLength": MAX_STATE_LENGTH},
            "The `state` of the last answer; without it, the whole list.",
        ),
    ),
    responses={
        304: {"description": "Unchanged since the ETag sent as If-None-Match.", "headers": CACHING},
        404: problem(HTTPStatus.NOT_FOUND, "There is no such list."),
        503: problem(HTTPStatus.SERVICE_UNAVAILABLE, "Not published yet, or Postgres is away."),
    },
)
@responds(200, ListUpdate, "The update, or the whole list.")
async def get_list(request: web.Request) -> web.Response:
    """A list for phones

    The update from the version the phone holds (`state`) to the newest, Rice-Golomb coded
    in the shape of Safe Browsing v5, or the whole list for a phone holding none, or an old
    one. Never `suspicious` numbers: a list on every phone is public.
    """
    name = _list_name(request)
    state = request.query.get("state")
    if state is not None and not 0 < len(state) <= MAX_STATE_LENGTH:
        raise bad_request(f"'state' must be 1 to {MAX_STATE_LENGTH} characters.")
    answer = await request.app[LISTS].answer(name, state)
    if answer is None:
        raise Problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "The list is not published yet.",
            headers={"Retry-After": str(RETRY_UNPUBLISHED_SECONDS)},
        )
    gzipped = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
    headers = {
        "ETag": answer.gzipped_etag if gzipped else answer.etag,
        "Cache-Control": f"private, max-age={request.app[LISTS].minimum_wait}",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("If-None-Match") == headers["ETag"]:
        return web.Response(status=HTTPStatus.NOT_MODIFIED, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    body = answer.gzipped if gzipped else answer.body
    return web.Response(body=body, content_type="application/json", headers=headers)


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether Accept-Encoding names gzip with a quality above 0 (RFC 9110, 12.5.3)."""
    for part in accept_encoding.split(","):
        coding, *params = part.split(";")
        if coding.strip().lower() not in ("gzip", "x-gzip"):
            continue
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


@documented(
    "lists",
    parameters=(NAME,),
    responses={
        200: text_response(
            "Gzipped UTF-8 TSV: number (E.164), level, category or owner, since (UTC day).",
            "application/gzip",
        ),
        404: problem(HTTPStatus.NOT_FOUND, "There is no such list."),
    },
)
async def export_list(request: web.Request) -> web.StreamResponse:
    """A list for integrators

    The whole list as the newest version holds it, one number a line, sorted: `number`,
    `level` (`scam` or `verified`), `detail` (the category or the owner), `since` (the UTC
    day it entered the list), in the shape of Hiya's Protect Cache.
    """
    name = _list_name(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/gzip",
            "Content-Disposition": f'attachment; filename="{name}.tsv.gz"',
        }
    )
    gzip = zlib.compressobj(wbits=31)  # a gzip member
    # Categories and owners hold no tab or line break: owners are identifiers (text.py).
    level = "verified" if name == "verified" else "scam"
    async with store.lists.export(request.app[POOL], name) as rows:
        await response.prepare(request)
        await response.write(gzip.compress(b"number\tlevel\tdetail\tsince\n"))
        while batch := await rows.fetch(EXPORT_BATCH):
            lines = "".join(
                f"{to_e164(row['number'])}\t{level}\t{row['detail']}\t"
                f"{row['since'].astimezone(UTC).date().isoformat()}\n"
                for row in batch
            )
            await response.write(gzip.compress(lines.encode("utf-8")))
    await response.write(gzip.flush())
    await response.write_eof()
    return response


def _list_name(request: web.Request) -> str:
    """The list the path names, or the 404."""
    name = request.match_info["name"]
    if name not in LIST_NAMES:
        raise not_found(f"There is no list {name!r}: there are {', '.join(LIST_NAMES)}.")
    return name
