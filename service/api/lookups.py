"""POST /v1/lookups: verdicts on up to a batch limit of numbers in one call."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web

from service.auth import API_KEY
from service.numbers import InvalidNumber, normalize_fast, parse_slow
from service.problems import Problem, bad_request, encode_json
from service.state import CONFIG, LISTINGS, LOOKUP_BATCHES, LOOKUP_LIMITS

from .bodies import read_object
from .numbers import (
    UNKNOWN_RESULT_TEXT,
    answer_body,
    language,
    limit_lookups,
    lookup_bytes,
    shape_error,
    unknown_body,
)

_PLAIN = re.compile(r"[0-9+ .()-]{1,64}")
"""Input that is echoed in JSON as it is: the common shapes of a number."""
SLOW_PARSES_PER_TURN = 20
"""Numbers left to phonenumbers (20-100 µs each) parsed before the batch lets other
requests run: a batch holds the event loop about a millisecond at a time."""
CHECKS_PER_TURN = 100
"""Items refused by their shape (5-10 µs each to check, as long to write back) between two
turns of other requests."""
MAYBES_PER_TURN = 200
"""Listed numbers read and judged at a time, for the same reason (one query each)."""


async def lookup_batch(request: web.Request) -> web.Response:
    """Answer each number in input order; an invalid item is reported, not fatal. A key has
    at most lookup_batches_per_key batches in progress (429 past it)."""
    key = request[API_KEY].id
    with request.app[LOOKUP_BATCHES].claim(key):
        return await _lookup_batch(request, key)


async def _lookup_batch(request: web.Request, key: int) -> web.Response:
    data = await read_object(request, ("numbers",))
    items = data.get("numbers")
    if not isinstance(items, list):
        raise bad_request("'numbers' must be a list of phone numbers as strings.")
    config = request.app[CONFIG]
    limit = config.batch_limit
    if len(items) > limit:
        raise Problem(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(items)} numbers in one call; the limit is {limit}. Split the batch.",
            kind="batch-too-large",
            limit=limit,
        )
    # A token an item before any work; then what each item costs, cheaply: the fast path
    # reads the common forms outright, and what it leaves is either refused by its shape or
    # waits for phonenumbers. The checks done are charged whatever comes of them (into debt:
    # the key's next requests wait), and the slow parses before they are made.
    limit_lookups(request, len(items))
    numbers: list[int | str | None] = []  # a number, why the item is none, or None: not yet
    slow = refused = 0
    for item in items:
        if type(item) is not str:
            numbers.append("must be a string")
            continue
        fast = normalize_fast(item)
        if fast is not None:
            numbers.append(fast)
            continue
        reason = shape_error(item)
        numbers.append(reason)
        if reason is None:
            slow += 1
        else:
            refused += 1
            if refused % CHECKS_PER_TURN == 0:
                await asyncio.sleep(0)
    request.app[LOOKUP_LIMITS].charge(key, refused * (config.lookup_refused_cost - 1))
    if slow:
        limit_lookups(request, slow * (config.lookup_slow_cost - 1))
        await _parse_slowly(items, numbers)
    listings = request.app[LISTINGS]
    lang = language(request)
    # Each result is written as soon as it is known; a maybe's place holds its index among
    # the maybes until they are answered. The loop is the batch's whole cost, so it keeps
    # to local names and plain text, encoded once at the end.
    parts: list[str | int] = []
    maybes: list[tuple[str, int]] = []
    invalid = 0
    in_filter = listings.filter.__contains__
    unknown = UNKNOWN_RESULT_TEXT
    for item, number in zip(items, numbers, strict=True):
        if not isinstance(number, int):
            parts.append(_error(item, str(number)))
            invalid += 1
            if invalid % CHECKS_PER_TURN == 0:  # writing an echo of a long item: 10 µs
                await asyncio.sleep(0)
        elif in_filter(number):
            parts.append(len(maybes))
            maybes.append((item, number))
        elif (item[0] == "+" and item[1:].isdigit() and item.isascii()) or _PLAIN.fullmatch(item):
            parts.append(unknown % (item, number))  # needs no JSON escaping
        else:
            parts.append(_json({"input": item, **unknown_body(number)}))
    listings.count_ruled_out(len(parts) - len(maybes) - invalid)  # no verdict for an error
    if maybes:
        limit_lookups(request, len(maybes) * config.lookup_listed_cost)
        answered: list[str] = []
        for start in range(0, len(maybes), MAYBES_PER_TURN):
            if start:
                await asyncio.sleep(0)
            turn = maybes[start : start + MAYBES_PER_TURN]
            answers = await listings.lookup_many([number for _, number in turn])
            answered.extend(
                _json({"input": item, **answer_body(answer, lang)})
                for (item, _), answer in zip(turn, answers, strict=True)
            )
        parts = [answered[part] if type(part) is int else part for part in parts]
    text = '{"results": [' + ", ".join(parts) + "]}"  # type: ignore[arg-type]
    return lookup_bytes(text.encode(), lang)


async def _parse_slowly(items: Sequence[Any], numbers: list[int | str | None]) -> None:
    """Fill in the numbers left to phonenumbers, letting other requests run between turns."""
    parsed = 0
    for index, number in enumerate(numbers):
        if number is not None:
            continue
        if parsed and parsed % SLOW_PARSES_PER_TURN == 0:
            await asyncio.sleep(0)
        parsed += 1
        try:
            numbers[index] = parse_slow(items[index]).number
        except InvalidNumber as err:
            numbers[index] = str(err)


def _error(item: object, reason: str) -> str:
    return _json({"input": item, "error": reason})


def _json(body: dict[str, Any]) -> str:
    """JSON text that encodes to UTF-8 whatever the client sent (encode_json's care)."""
    return encode_json(body).decode()
