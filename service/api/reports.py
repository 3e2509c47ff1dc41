"""POST /v1/reports: a person reports the number that called them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from http import HTTPStatus

from aiohttp import web

from service.auth import API_KEY
from service.categories import CATEGORY_IDS
from service.listings import Report
from service.numbers import to_e164
from service.problems import Problem
from service.state import LISTINGS

from .bodies import json_response, optional_text_field, read_object, text_field, timestamp_field
from .numbers import parse_number

FIELDS = ("number", "category", "reporter", "description", "occurred_at")
MAX_REPORTER_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
CLOCK_SKEW = timedelta(minutes=10)
"""How far in the future a phone's clock may put occurred_at."""


async def create_report(request: web.Request) -> web.Response:
    """Store the report; answer its id and the number's verdict now."""
    data = await read_object(request, FIELDS)
    number = parse_number(text_field(data, "number", 64))
    category = text_field(data, "category", 64)
    if category not in CATEGORY_IDS:
        raise Problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            f"Unknown category {category!r}; GET /v1/categories lists them.",
            kind="unknown-category",
            categories=sorted(CATEGORY_IDS),
        )
    report = Report(
        number=number,
        category=category,
        reporter=text_field(data, "reporter", MAX_REPORTER_LENGTH),
        description=optional_text_field(data, "description", MAX_DESCRIPTION_LENGTH),
        occurred_at=timestamp_field(data, "occurred_at", datetime.now(UTC), CLOCK_SKEW),
    )
    report_id, answer = await request.app[LISTINGS].report(report, request[API_KEY].id)
    return json_response(
        {
            "report_id": report_id,
            "number": to_e164(number),
            "verdict": answer.judgement.verdict.value,
        },
        status=HTTPStatus.CREATED,
    )
