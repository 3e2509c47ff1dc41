"""POST /v1/reports and /v1/feedback: a person says the number that called them was a scam,
or was not; through an attesting key, with their own verified phone number."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Literal

import msgspec
from aiohttp import web
from msgspec import Meta

from ..auth import API_KEY, client_address
from ..e164 import MAX_INPUT_LENGTH, to_e164
from ..problems import answers, too_many_requests
from ..reporting import REPORTING, Feedback, Report, Reporter
from ..reputation import Verdict
from ..state import CLOCK, CONFIG, REPORT_LIMITS
from ..text import UnknownCategory, category, identifier, timestamp
from .answers import E164, Body, Id
from .bodies import FreeText, accepts, json_answer, responds
from .documented import BAD_BODY, documented, use
from .numbers import PHONE_NUMBER, CategoryInput, PhoneNumberInput, parse_number

MAX_REPORTER_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000


class ReportCreated(Body):
    """A stored report: its id and the number's verdict now."""

    report_id: Id
    number: E164
    verdict: Verdict


ReporterField = Annotated[
    FreeText,
    Meta(
        max_length=MAX_REPORTER_LENGTH,
        description="The app's pseudonymous id of the person; compared as Unicode NFC, with "
        "invisible characters and surrounding white space left out. Only an HMAC is stored.",
        examples=["a1b2c3"],
    ),
]
ReporterPhone = Annotated[
    FreeText,
    Meta(
        max_length=MAX_INPUT_LENGTH,
        description="Only from an attesting key (`callguard keys create --trust attesting`): "
        "the person's own phone number, which the app verified (OTP, or the operator's own "
        "network). The person is then a verified reporter, one per phone whatever the app or "
        "reporter id; only an HMAC of it is stored. A community key sending it gets 403.",
        examples=["0987654321"],
        extra_json_schema={"format": PHONE_NUMBER},
    ),
]


class ReportIn(msgspec.Struct, forbid_unknown_fields=True):
    """A report of a call. Only an HMAC of `reporter` is stored."""

    number: PhoneNumberInput
    category: CategoryInput
    reporter: ReporterField
    reporter_phone: ReporterPhone | None = None
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


class FeedbackIn(msgspec.Struct, forbid_unknown_fields=True):
    """The called person saying a call from the number was legitimate."""

    number: PhoneNumberInput
    reporter: ReporterField
    verdict: Annotated[
        Literal["not_scam"],
        Meta(description="What the person says: the call was not a scam.", examples=["not_scam"]),
    ]
    reporter_phone: ReporterPhone | None = None
    note: (
        Annotated[
            FreeText,
            Meta(
                max_length=MAX_DESCRIPTION_LENGTH,
                description="Who called, or why it was legitimate.",
                examples=["Shipper giao hàng của tôi"],
            ),
        ]
        | None
    ) = None

    def __post_init__(self) -> None:
        self.reporter = identifier(self.reporter, "reporter", MAX_REPORTER_LENGTH)


class FeedbackCreated(Body):
    """A stored not-scam answer: its id and the number's verdict now."""

    feedback_id: Id
    number: E164
    verdict: Verdict


def _reporter(reporter: str, phone: str | None) -> Reporter:
    """Who speaks; reporting.py refuses a phone from a key that cannot vouch for it (403)."""
    return Reporter(reporter, None if phone is None else parse_number(phone, "reporter_phone"))


FORBIDDEN_PHONE = use("CannotVouch")


@answers(UnknownCategory)
@documented(
    "reports",
    responses={400: BAD_BODY, 403: FORBIDDEN_PHONE, 429: use("TooManyReports")},
)
@responds(201, ReportCreated, "Stored; the number's verdict now.")
@accepts(ReportIn, within=_within_rate)
async def create_report(request: web.Request, body: ReportIn) -> web.Response:
    """Report a number

    A person reports the number that called them. Only HMACs of `reporter` and
    `reporter_phone` are stored. Each reporter counts once per number; only verified
    reporters (a `reporter_phone` from an attesting key) can make a number a scam.
    """
    report = Report(
        number=parse_number(body.number),
        category=body.category,
        reporter=_reporter(body.reporter, body.reporter_phone),
        description=body.description,
        occurred_at=body.occurred(request.app[CLOCK]()),
    )
    address = client_address(request, request.app[CONFIG].trusted_proxies)
    report_id, answer = await request.app[REPORTING].report(report, request[API_KEY], address)
    return json_answer(
        ReportCreated(report_id, to_e164(report.number), answer.judgement.verdict),
        status=HTTPStatus.CREATED,
    )


@documented(
    "reports",
    responses={400: BAD_BODY, 403: FORBIDDEN_PHONE, 429: use("TooManyReports")},
)
@responds(201, FeedbackCreated, "Stored; the number's verdict now.")
@accepts(FeedbackIn, within=_within_rate)
async def create_feedback(request: web.Request, body: FeedbackIn) -> web.Response:
    """Say a call was not a scam

    The called person says a call from the number was legitimate: counter-evidence to
    reports, in the same lanes and under the same limits. Each lane's not-scam answers weigh
    against its own reports only.
    """
    feedback = Feedback(
        number=parse_number(body.number),
        reporter=_reporter(body.reporter, body.reporter_phone),
        note=body.note,
    )
    feedback_id, answer = await request.app[REPORTING].feedback(feedback, request[API_KEY])
    return json_answer(
        FeedbackCreated(feedback_id, to_e164(feedback.number), answer.judgement.verdict),
        status=HTTPStatus.CREATED,
    )
