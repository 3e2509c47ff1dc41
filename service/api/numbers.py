"""GET /v1/numbers/{number}: the verdict on one number."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.listings import Answer
from service.numbers import InvalidNumber, normalize, to_e164
from service.problems import bad_request
from service.state import LISTINGS

from .bodies import json_response


def parse_number(text: str) -> int:
    """A number from the request, or a 400 problem saying why it is not one."""
    try:
        return normalize(text)
    except InvalidNumber as err:
        raise bad_request(f"{text!r} is not a valid phone number: {err}.", number=text) from err


def answer_body(answer: Answer) -> dict[str, Any]:
    """The JSON a lookup returns for one number."""
    listing = answer.listing
    return {
        "number": to_e164(answer.number),
        "verdict": answer.judgement.verdict.value,
        "score": answer.judgement.score,
        "report_count": listing.report_count if listing else 0,
        "reporter_count": listing.reporter_count if listing else 0,
        "categories": list(listing.categories) if listing else [],
        "first_reported_at": listing.first_reported_at.isoformat() if listing else None,
        "last_reported_at": listing.last_reported_at.isoformat() if listing else None,
    }


async def get_number(request: web.Request) -> web.Response:
    """The verdict on the number in the path, in whatever form it was typed."""
    number = parse_number(request.match_info["number"])
    answer = await request.app[LISTINGS].lookup(number)
    return json_response(answer_body(answer))
