"""POST /v1/lookups: verdicts on up to a batch limit of numbers in one call."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from aiohttp import web

from service.numbers import InvalidNumber, normalize
from service.problems import Problem, bad_request, encode_json
from service.state import CONFIG, LISTINGS

from .bodies import read_object
from .numbers import (
    UNKNOWN_RESULT_TEXT,
    answer_body,
    language,
    limit_lookups,
    lookup_bytes,
    unknown_body,
)

_PLAIN = re.compile(r"[0-9+ .()-]{1,64}")
"""Input that is echoed in JSON as it is: the common shapes of a number."""


async def lookup_batch(request: web.Request) -> web.Response:
    """Answer each number in input order; an invalid item is reported, not fatal."""
    data = await read_object(request, ("numbers",))
    items = data.get("numbers")
    if not isinstance(items, list):
        raise bad_request("'numbers' must be a list of phone numbers as strings.")
    limit = request.app[CONFIG].batch_limit
    if len(items) > limit:
        raise Problem(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(items)} numbers in one call; the limit is {limit}. Split the batch.",
            kind="batch-too-large",
            limit=limit,
        )
    limit_lookups(request, len(items))
    listings = request.app[LISTINGS]
    lang = language(request)
    # Each result is written as soon as it is known; a maybe's place holds its index among
    # the maybes until one query has answered them all. The loop is the batch's whole cost,
    # so it keeps to local names and plain text, encoded once at the end.
    parts: list[str | int] = []
    maybes: list[tuple[str, int]] = []
    invalid = 0
    in_filter = listings.filter.__contains__
    unknown = UNKNOWN_RESULT_TEXT
    for item in items:
        if type(item) is not str:
            parts.append(_error(item, "must be a string"))
            invalid += 1
            continue
        try:
            number = normalize(item)
        except InvalidNumber as err:
            parts.append(_error(item, str(err)))
            invalid += 1
            continue
        if in_filter(number):
            parts.append(len(maybes))
            maybes.append((item, number))
        elif (item[0] == "+" and item[1:].isdigit() and item.isascii()) or _PLAIN.fullmatch(item):
            parts.append(unknown % (item, number))  # needs no JSON escaping
        else:
            parts.append(_json({"input": item, **unknown_body(number)}))
    listings.count_ruled_out(len(parts) - len(maybes) - invalid)  # no verdict for an error
    if maybes:
        answers = await listings.lookup_many([number for _, number in maybes])
        for index, part in enumerate(parts):
            if type(part) is int:
                item, _ = maybes[part]
                parts[index] = _json({"input": item, **answer_body(answers[part], lang)})
    text = '{"results": [' + ", ".join(parts) + "]}"  # type: ignore[arg-type]
    return lookup_bytes(text.encode(), lang)


def _error(item: object, reason: str) -> str:
    return _json({"input": item, "error": reason})


def _json(body: dict[str, Any]) -> str:
    """JSON text that encodes to UTF-8 whatever the client sent (encode_json's care)."""
    return encode_json(body).decode()
