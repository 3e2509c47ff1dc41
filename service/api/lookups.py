"""POST /v1/lookups: verdicts on up to a batch limit of numbers in one call."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from http import HTTPStatus
from typing import Annotated

import msgspec
from aiohttp import web
from msgspec import Meta, Struct

from ..auth import API_KEY
from ..config import Config
from ..e164 import InvalidNumber, normalize_fast, parse_slow
from ..problems import Problem, encode_body
from ..state import CONFIG, LOOKUP_BATCHES, LOOKUP_LIMITS
from ..verdicts import VERDICTS
from .answers import LookupItemError, LookupResults
from .bodies import accepts, responds
from .documented import DEFAULTS, bad, documented, problem, use
from .numbers import (
    ACCEPT_LANGUAGE,
    LOOKUP_ANSWERED,
    UNKNOWN_RESULT_TEXT,
    language,
    limit_lookups,
    lookup_bytes,
    result_body,
    shape_error,
    unknown_answer,
)

_PLAIN = re.compile(r"[0-9+ .()-]{1,64}")
"""Input that is echoed in JSON as it is: the common shapes of a number."""
SLOW_PARSES_PER_TURN = 10
"""Numbers left to phonenumbers (20-100 µs each) parsed before the batch lets other
requests run: a batch holds the event loop about a millisecond at a time."""
CHECKS_PER_TURN = 50
"""Items refused by their shape (15-20 µs each, checked and written back) between two turns
of other requests: again about a millisecond."""
MAYBES_PER_TURN = 200
"""Listed numbers read and judged at a time, for the same reason (one query each)."""


class LookupsIn(msgspec.Struct, forbid_unknown_fields=True):
    """Numbers to look up, answered in input order."""

    numbers: Annotated[
        list[str],
        Meta(
            description="Numbers in any form, as strings (an item of another JSON type "
            "refuses the batch, 400); text that is not a number gets an error result. More "
            "than the batch limit gets 413.",
            examples=[["0912345678", "+84 912 345 678", "abc"]],
            # Documented, not checked at decoding: the limit is the service's setting, and
            # past it the answer is 413 with the limit (batch-too-large), not 400.
            extra_json_schema={"maxItems": Config().batch_limit},
        ),
    ]


def _in_progress(request: web.Request) -> AbstractContextManager[None]:
    """The key's batch counted as in progress, from the body's first byte to the answer."""
    return request.app[LOOKUP_BATCHES].claim(request[API_KEY].id)


@documented(
    "lookups",
    parameters=(ACCEPT_LANGUAGE,),
    responses={
        200: LOOKUP_ANSWERED,
        400: bad('The body is not {"numbers": [...]} of strings.'),
        413: problem(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"More than {DEFAULTS.batch_limit} numbers, or the body is larger than "
            f"{DEFAULTS.max_body_bytes} bytes.",
        ),
        429: use("TooManyLookups"),
    },
)
@responds(200, LookupResults, "One result per number.")
@accepts(LookupsIn, within=_in_progress)
async def lookup_batch(request: web.Request, body: LookupsIn) -> web.Response:
    """Verdicts on many numbers

    Answers each number in input order; an invalid item gets an `error` and does not fail
    the batch.
    """
    # A key has at most lookup_batches_per_key batches in progress (429 past it).
    key = request[API_KEY].id
    items = body.numbers
    config = request.app[CONFIG]
    limit = config.batch_limit
    if len(items) > limit:
        raise Problem(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(items)} numbers in one call; the limit is {limit}. Split the batch.",
            kind="batch-too-large",
            limit=limit,
        )
    # A token an item before any work. The fast path reads the common forms and answers them
    # at once, in one loop that is the batch's whole cost in the common case, so it keeps to
    # local names and plain text, encoded once at the end; a maybe's place holds its index
    # among the maybes until they are answered. What the fast path leaves waits its turn.
    limit_lookups(request, len(items))
    verdicts = request.app[VERDICTS]
    lang = language(request)
    parts: list[str | int] = []
    maybes: list[tuple[str, int]] = []
    left: list[int] = []  # the places of items the fast path did not read
    in_filter = verdicts.batch_check()
    unknown = UNKNOWN_RESULT_TEXT
    for item in items:
        number = normalize_fast(item)
        if number is None:
            left.append(len(parts))
            parts.append("")
        elif in_filter(number):
            parts.append(len(maybes))
            maybes.append((item, number))
        elif (item[0] == "+" and item[1:].isdigit() and item.isascii()) or _PLAIN.fullmatch(item):
            parts.append(unknown % (number, item))  # needs no JSON escaping
        else:
            parts.append(_json(result_body(item, unknown_answer(number), lang)))
    invalid = await _answer_the_rest(request, key, items, left, parts, maybes) if left else 0
    verdicts.count_ruled_out(len(parts) - len(maybes) - invalid)  # no verdict for an error
    if maybes:
        limit_lookups(request, len(maybes) * config.lookup_listed_cost)
        answered: list[str] = []
        for start in range(0, len(maybes), MAYBES_PER_TURN):
            if start:
                await asyncio.sleep(0)
            turn = maybes[start : start + MAYBES_PER_TURN]
            answers = await verdicts.answer_maybes([number for _, number in turn])
            answered.extend(
                _json(result_body(item, answer, lang))
                for (item, _), answer in zip(turn, answers, strict=True)
            )
        parts = [answered[part] if type(part) is int else part for part in parts]
    # LookupResults, written as text: its results are the parts, encoded already.
    text = '{"results":[' + ",".join(parts) + "]}"  # type: ignore[arg-type]
    return lookup_bytes(text.encode(), lang)


async def _answer_the_rest(
    request: web.Request,
    key: int,
    items: Sequence[str],
    left: Sequence[int],
    parts: list[str | int],
    maybes: list[tuple[str, int]],
) -> int:
    """Answer the items the fast path did not read, at their places in `parts` (a listed
    number joins `maybes`): each is refused by its shape, cheaply, or parsed by phonenumbers.
    The shape checks are charged once done (into debt: the key's next requests wait), the
    parses before they are made; both take turns with other requests. Returns how many
    items were refused."""
    config = request.app[CONFIG]
    slow: list[int] = []
    refused = 0
    for place in left:
        item = items[place]
        reason = shape_error(item)
        if reason is None:
            slow.append(place)
            continue
        parts[place] = _error(item, reason)
        refused += 1
        if refused % CHECKS_PER_TURN == 0:  # 15-20 µs each, checked and written back
            await asyncio.sleep(0)
    request.app[LOOKUP_LIMITS].charge(key, refused * (config.lookup_refused_cost - 1))
    if not slow:
        return refused
    limit_lookups(request, len(slow) * (config.lookup_slow_cost - 1))
    in_filter = request.app[VERDICTS].batch_check()
    for parsed, place in enumerate(slow, start=1):
        item = items[place]
        try:
            number = parse_slow(item).number
        except InvalidNumber as err:
            parts[place] = _error(item, str(err))
            refused += 1
        else:
            if in_filter(number):
                parts[place] = len(maybes)
                maybes.append((item, number))
            else:
                parts[place] = _json(result_body(item, unknown_answer(number), language(request)))
        if parsed % SLOW_PARSES_PER_TURN == 0:
            await asyncio.sleep(0)
    return refused


def _error(item: str, reason: str) -> str:
    return _json(LookupItemError(input=item, error=reason))


def _json(body: Struct) -> str:
    """A declared result as JSON text that encodes to UTF-8 whatever the client sent
    (problems.encode_body's care)."""
    return encode_body(body).decode()
