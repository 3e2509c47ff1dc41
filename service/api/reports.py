"""POST /v1/reports: a person reports the number that called them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http import HTTPStatus
from typing import Annotated

import msgspec
from aiohttp import web
from msgspec import Meta

from ..auth import API_KEY
from ..e164 import to_e164
from ..problems import answers, too_many_requests
from ..reporting import REPORTING, Report
from ..reputation import Verdict
from ..state import CLOCK, CONFIG, REPORT_LIMITS
from ..text import UnknownCategory, category, identifier, timestamp
from .answers import E164, Body, Id
from .bodies import FreeText, accepts, json_answer, responds
from .documented import BAD_BODY, documented, use
from .numbers import CategoryInput, PhoneNumberInput, parse_number

MAX_REPORTER_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000


class ReportCreated(Body):
    """A stored report: its id and the number's verdict now."""

    report_id: Id
    number: E164
    verdict: Verdict


class ReportIn(msgspec.Struct, forbid_unknown_fields=True):
    """A report of a call. Only an HMAC of `reporter` is stored."""

    number: PhoneNumberInput
    category: CategoryInput
    reporter: Annotated[
        FreeText,
        Meta(
            max_length=MAX_REPORTER_LENGTH,
            description="The app's pseudonymous id of the person reporting; compared as "
            "Unicode NFC, with invisible characters and surrounding white space left out.",
            examples=["a1b2c3"],
        ),
    ]
    description: (
        Annotated[
            FreeText,
            Meta(
                max_length=MAX_DESCRIPTION_LENGTH,
                description="What happened.",
                examples=["Xưng là công an, yêu cầu chuyển tiền"],
            ),
        ]
        | None
    ) = None
    occurred_at: (
        Annotated[
            str,
            Meta(
                max_length=64,
                description="When the call came: RFC 3339 with a UTC offset, from 2000-01-01 "
                "to 10 minutes past the service's clock.",
                examples=["2024-03-26T09:30:00+07:00"],
                extra_json_schema={"format": "date-time"},
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        self.category = category(self.category)
        self.reporter = identifier(self.reporter, "reporter", MAX_REPORTER_LENGTH)

    def occurred(self, now: datetime) -> datetime | None:
        """occurred_at as a time, checked against the service's clock (text.timestamp)."""
        return None if self.occurred_at is None else timestamp(self.occurred_at, "occurred_at", now)


@contextmanager
def _within_rate(request: web.Request) -> Iterator[None]:
    """A report costs the key a token before its body is read: 429 past the rate."""
    wait = request.app[REPORT_LIMITS].take(request[API_KEY].id)
    if wait:
        rate = request.app[CONFIG].reports_per_key_per_second
        raise too_many_requests(f"This key may send {rate:g} reports a second.", wait)
    yield


@answers(UnknownCategory)
@documented("reports", responses={400: BAD_BODY, 429: use("TooManyReports")})
@responds(201, ReportCreated, "Stored; the number's verdict now.")
@accepts(ReportIn, within=_within_rate)
async def create_report(request: web.Request, body: ReportIn) -> web.Response:
    """Report a number

    A person reports the number that called them. Only an HMAC of `reporter` is stored.
    Each reporter counts once per number.
    """
    api_key = request[API_KEY]
    report = Report(
        number=parse_number(body.number),
        category=body.category,
        reporter=body.reporter,
        description=body.description,
        occurred_at=body.occurred(request.app[CLOCK]()),
    )
    report_id, answer = await request.app[REPORTING].report(report, api_key.id)
    return json_answer(
        ReportCreated(report_id, to_e164(report.number), answer.judgement.verdict),
        status=HTTPStatus.CREATED,
    )
