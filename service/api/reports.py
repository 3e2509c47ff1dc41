"""POST /v1/reports: a person reports the number that called them."""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web

from ..auth import API_KEY
from ..e164 import to_e164
from ..problems import answers, too_many_requests
from ..reporting import REPORTING, Report
from ..reputation import Verdict
from ..state import CLOCK, CONFIG, REPORT_LIMITS
from ..text import UnknownCategory
from .answers import E164, Body, Id
from .bodies import (
    identifier_field,
    json_answer,
    optional_text_field,
    read_object,
    responds,
    text_field,
    timestamp_field,
)
from .numbers import category_field, parse_number

FIELDS = ("number", "category", "reporter", "description", "occurred_at")
MAX_REPORTER_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000


class ReportCreated(Body):
    """A stored report: its id and the number's verdict now."""

    report_id: Id
    number: E164
    verdict: Verdict


@answers(UnknownCategory)
@responds(201, ReportCreated, "Stored; the number's verdict now.")
async def create_report(request: web.Request) -> web.Response:
    """Store the report; answer its id and the number's verdict now."""
    api_key = request[API_KEY]
    wait = request.app[REPORT_LIMITS].take(api_key.id)
    if wait:
        rate = request.app[CONFIG].reports_per_key_per_second
        raise too_many_requests(f"This key may send {rate:g} reports a second.", wait)
    data = await read_object(request, FIELDS)
    reporting = request.app[REPORTING]
    report = Report(
        number=parse_number(text_field(data, "number", 64)),
        category=category_field(data),
        reporter=identifier_field(data, "reporter", MAX_REPORTER_LENGTH),
        description=optional_text_field(data, "description", MAX_DESCRIPTION_LENGTH),
        occurred_at=timestamp_field(data, "occurred_at", request.app[CLOCK]()),
    )
    report_id, answer = await reporting.report(report, api_key.id)
    return json_answer(
        ReportCreated(report_id, to_e164(report.number), answer.judgement.verdict),
        status=HTTPStatus.CREATED,
    )
