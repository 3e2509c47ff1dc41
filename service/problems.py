"""RFC 9457 problem+json errors, and turning any failure into one (app.py's middleware)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadStatusLine,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)
from aiohttp.web_protocol import RequestHandler
from msgspec import UNSET, Meta, UnsetType

from .categories import CATEGORY_IDS, CategoryId
from .e164 import to_e164
from .import_parsing import (
    ImportFormatError,
    ImportTooLarge,
    ParserLost,
    ServiceStopping,
    UploadStalled,
)
from .limits import Busy
from .lists import BadState
from .metrics import route_label
from .state import CLOCK
from .store.appeals import AppealNotOpen, AppealOpen
from .store.database import DATABASE_UNAVAILABLE, PoolExhausted
from .store.reports import KeyDayLimitReached, ReporterLimitReached
from .store.reviews import ReviewNotOpen
from .text import TextError, UnknownCategory

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
RETRY_AFTER_SECONDS = 1


def encode_json(body: Any) -> bytes:
    """UTF-8 JSON with Vietnamese text readable; echoed client text that cannot be UTF-8
    (a lone surrogate) falls back to ASCII escapes, which are always valid JSON. NaN and the
    infinities are no JSON: they raise ValueError (a 500) rather than go out."""
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(body, allow_nan=False).encode("ascii")


_ENCODER = msgspec.json.Encoder()


def encode_body(value: msgspec.Struct | list[Any]) -> bytes:
    """A declared body (a msgspec Struct) as UTF-8 JSON, Vietnamese text readable; echoed
    client text that cannot be UTF-8 (a lone surrogate) falls back to encode_json's ASCII
    escapes."""
    try:
        return _ENCODER.encode(value)
    except UnicodeEncodeError:
        return encode_json(msgspec.to_builtins(value))


class ProblemBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """An RFC 9457 problem: every error is one. Past the four standard fields, a problem
    carries only the extensions declared here (a Problem raised with another one fails)."""

    type: Annotated[
        str,
        Meta(
            pattern=r"^(about:blank|urn:callguard:problem:[a-z-]+)$",
            description="urn:callguard:problem:<kind>, or about:blank.",
        ),
    ]
    title: Annotated[str, Meta(description="The status's reason phrase.")]
    status: Annotated[int, Meta(ge=400, le=599)]
    detail: Annotated[str, Meta(description="What went wrong, for people.")]
    number: Annotated[str, Meta(description="400: the text that is no number.")] | UnsetType = UNSET
    categories: (
        Annotated[list[CategoryId], Meta(description="422 unknown-category: the known categories.")]
        | UnsetType
    ) = UNSET
    retry_after: (
        Annotated[int, Meta(ge=1, description="429: seconds to wait, as in Retry-After.")]
        | UnsetType
    ) = UNSET
    limit: (
        Annotated[int, Meta(ge=1, description="413 batch-too-large: the most numbers a call.")]
        | UnsetType
    ) = UNSET
    appeal_id: (
        Annotated[int, Meta(ge=1, description="409 appeal-open: the appeal still open.")]
        | UnsetType
    ) = UNSET
    source: (
        Annotated[str, Meta(description="403 source-forbidden: the source the key may not use.")]
        | UnsetType
    ) = UNSET


class Problem(Exception):
    """A failure the client should hear about; handlers raise it, the middleware answers it."""

    def __init__(
        self,
        status: HTTPStatus,
        detail: str,
        *,
        kind: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = f"urn:callguard:problem:{kind}" if kind else "about:blank"
        self.headers = dict(headers or {})
        self.extensions = extensions

    def response(self) -> web.Response:
        """This problem as an application/problem+json response."""
        body = ProblemBody(
            type=self.type,
            title=self.status.phrase,
            status=int(self.status),
            detail=self.detail,
            **self.extensions,
        )
        return web.Response(
            status=self.status,
            body=encode_body(body),
            content_type=PROBLEM_CONTENT_TYPE,
            charset="utf-8",
            headers=self.headers,
        )


def bad_request(detail: str, **extensions: Any) -> Problem:
    """400: the request itself is malformed."""
    return Problem(HTTPStatus.BAD_REQUEST, detail, kind="bad-request", **extensions)


def not_found(detail: str) -> Problem:
    """404: the thing named does not exist."""
    return Problem(HTTPStatus.NOT_FOUND, detail, kind="not-found")


def too_many_requests(detail: str, retry_after_seconds: float) -> Problem:
    """429 with a Retry-After in whole seconds, rounded up."""
    seconds = max(1, math.ceil(retry_after_seconds))
    return Problem(
        HTTPStatus.TOO_MANY_REQUESTS,
        detail,
        kind="rate-limited",
        headers={"Retry-After": str(seconds)},
        retry_after=seconds,
    )


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> Problem:
    status = HTTPStatus(exc.status)
    if status == HTTPStatus.NOT_FOUND:
        detail = f"There is nothing at {request.path}."
    elif status == HTTPStatus.METHOD_NOT_ALLOWED:
        detail = f"{request.method} is not allowed on {request.path}."
    else:
        detail = exc.text or status.description
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    return Problem(status, detail, headers=headers)


@dataclass(frozen=True)
class DomainAnswer:
    """How a domain exception is answered: its status and problem kind, the detail made from
    the exception, and for a 429 the seconds to wait (a 503 always says RETRY_AFTER_SECONDS)."""

    status: HTTPStatus
    kind: str | None
    detail: Callable[[Any], str]
    description: str = ""
    """When it is answered, for the OpenAPI document of the handlers marked with it."""
    retry_after: Callable[[Any, web.Request], float] | None = None
    extensions: Callable[[Any], dict[str, Any]] | None = None
    logged: bool = False
    """A failure of the service's own (the database): logged by route, never by path."""


def _now(request: web.Request) -> datetime:
    return request.app[CLOCK]()


_DATABASE_UNAVAILABLE = DomainAnswer(
    HTTPStatus.SERVICE_UNAVAILABLE,
    "database-unavailable",
    lambda err: "The database is unavailable; try again shortly.",
    logged=True,
)

DOMAIN_ERRORS: dict[type[Exception], DomainAnswer] = {
    Busy: DomainAnswer(
        HTTPStatus.TOO_MANY_REQUESTS,
        "rate-limited",
        lambda err: f"{err}; send it again when one is answered.",
        retry_after=lambda err, request: err.retry_after,
    ),
    ReporterLimitReached: DomainAnswer(
        HTTPStatus.TOO_MANY_REQUESTS,
        "rate-limited",
        lambda err: (
            f"This reporter has sent {err.limit} reports and answers in the last 24 hours, "
            "the most allowed."
        ),
        retry_after=lambda err, request: (err.retry_at - _now(request)).total_seconds(),
    ),
    KeyDayLimitReached: DomainAnswer(
        HTTPStatus.TOO_MANY_REQUESTS,
        "rate-limited",
        lambda err: (
            f"This key has sent {err.limit} reports and answers today (UTC), its daily cap."
        ),
        retry_after=lambda err, request: (err.retry_at - _now(request)).total_seconds(),
    ),
    AppealOpen: DomainAnswer(
        HTTPStatus.CONFLICT,
        "appeal-open",
        lambda err: (
            f"This key's appeal {err.appeal.id} against {to_e164(err.appeal.number)} "
            "is still open; it is decided before another is taken."
        ),
        "This key's appeal against the number is still open (`appeal_id`).",
        extensions=lambda err: {"appeal_id": err.appeal.id},
    ),
    AppealNotOpen: DomainAnswer(
        HTTPStatus.CONFLICT,
        "appeal-decided",
        lambda err: f"Appeal {err.appeal.id} was already decided: {err.appeal.status}.",
        "The appeal was already decided.",
    ),
    ReviewNotOpen: DomainAnswer(
        HTTPStatus.CONFLICT,
        "review-decided",
        lambda err: f"Review {err.review.id} was already decided: {err.review.status}.",
        "The review was already decided.",
    ),
    UnknownCategory: DomainAnswer(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "unknown-category",
        lambda err: f"{err} GET /v1/categories lists them.",
        "Unknown category; `categories` lists the known ones.",
        extensions=lambda err: {"categories": sorted(CATEGORY_IDS)},
    ),
    TextError: DomainAnswer(HTTPStatus.BAD_REQUEST, "bad-request", str),
    BadState: DomainAnswer(
        HTTPStatus.BAD_REQUEST,
        "bad-request",
        lambda err: f"{err}; send the state an answer gave, or none for the whole list.",
        "A `state` this service never gave, or bad query parameters.",
    ),
    ImportFormatError: DomainAnswer(
        HTTPStatus.BAD_REQUEST, "bad-request", lambda err: f"Nothing was imported: {err}."
    ),
    UploadStalled: DomainAnswer(
        HTTPStatus.REQUEST_TIMEOUT,
        "request-timeout",
        lambda err: f"Nothing was imported: {err}.",
        "Nothing imported: the upload stalled, sending nothing for a while, or kept sending "
        "more slowly than the minimum pace.",
    ),
    ImportTooLarge: DomainAnswer(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "import-too-large",
        lambda err: f"Nothing was imported: {err}, more than one import may; split it.",
        "Nothing imported: the list holds more bytes (after decompression) or lines than one "
        "import may.",
    ),
    ServiceStopping: DomainAnswer(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "stopping",
        lambda err: "Nothing was imported: the service is stopping. Send the list again.",
    ),
    ParserLost: DomainAnswer(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "parser-lost",
        lambda err: "Nothing was imported: a parser process stopped. Send the list again.",
    ),
    PoolExhausted: DomainAnswer(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "database-busy",
        lambda err: f"The service is busy: {err}; try again shortly.",
        logged=True,
    ),
    **dict.fromkeys(DATABASE_UNAVAILABLE, _DATABASE_UNAVAILABLE),
}
"""Every domain exception a request may end in, by type, and how it is answered: handlers
raise these and never build their problems. A subclass not listed is answered as the nearest
listed base class (PoolExhausted is a TimeoutError, a database failure, but answered apart)."""


_ANSWERS_ATTRIBUTE = "__callguard_answers__"
F = TypeVar("F", bound=Callable[..., Any])


def answers(*errors: type[Exception]) -> Callable[[F], F]:
    """Mark a handler with the domain exceptions of DOMAIN_ERRORS it may end in, each with a
    status of its own there: its OpenAPI operation documents those answers (openapi.py)."""

    def mark(handler: F) -> F:
        setattr(handler, _ANSWERS_ATTRIBUTE, errors)
        return handler

    return mark


def answered_by(handler: object) -> tuple[type[Exception], ...]:
    """The domain exceptions a handler is marked with (answers)."""
    errors: tuple[type[Exception], ...] = getattr(handler, _ANSWERS_ATTRIBUTE, ())
    return errors


def domain_answer(err: Exception) -> DomainAnswer | None:
    """The row of DOMAIN_ERRORS for this exception, by its class or the nearest base."""
    for kind in type(err).__mro__:
        answer = DOMAIN_ERRORS.get(kind)
        if answer is not None:
            return answer
    return None


def problem_for(request: web.Request, err: Exception) -> Problem | None:
    """The problem to answer a failure with, never a stack trace; None for an HTTP
    exception that is not a failure (a redirect), to be raised on."""
    if isinstance(err, Problem):
        return err
    if isinstance(err, web.HTTPException):
        return _from_http_exception(request, err) if err.status >= 400 else None
    answer = domain_answer(err)
    if answer is None:
        log.error("unhandled error on %s %s", request.method, route_label(request), exc_info=err)
        return Problem(HTTPStatus.INTERNAL_SERVER_ERROR, "The service failed; the error is logged.")
    if answer.logged:
        # The route template, not the path: a path holds the phone number asked about.
        log.warning("%s on %s %s: %r", answer.kind, request.method, route_label(request), err)
    if answer.retry_after is not None:
        return too_many_requests(answer.detail(err), answer.retry_after(err, request))
    extensions = answer.extensions(err) if answer.extensions else {}
    headers = {}
    if answer.status == HTTPStatus.SERVICE_UNAVAILABLE:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return Problem(
        answer.status, answer.detail(err), kind=answer.kind, headers=headers, **extensions
    )


_PROTOCOL_DETAILS: tuple[tuple[type[BaseException], str], ...] = (
    (LineTooLong, "The request line or a header is too long (8190 bytes at most)."),
    (BadStatusLine, "The request line is malformed."),
    (InvalidURLError, "The request's target is malformed."),
    (PayloadEncodingError, "The body's framing (Content-Length, chunks) is malformed."),
    (BadHttpMessage, "The request's headers are malformed."),
)
"""What to say about a request aiohttp's parser refused, by the parser's exception: a fixed
sentence, as the parser's own message quotes the request's bytes."""


def protocol_problem(status: int, error: BaseException | None) -> Problem:
    """The problem for a request answered by aiohttp itself (RequestHandler.handle_error):
    one it could not parse (400), a handler timeout (504), or an error past the middleware."""
    if status >= 500:
        return Problem(HTTPStatus(status), "The service failed; the error is logged.")
    detail = next(
        (text for kind, text in _PROTOCOL_DETAILS if isinstance(error, kind)),
        "The request is not valid HTTP/1.1.",
    )
    return Problem(HTTPStatus(status), detail, kind="bad-request")


_aiohttp_handle_error = RequestHandler.handle_error


def _handle_error(
    self: RequestHandler,
    request: web.BaseRequest,
    status: int = 500,
    exc: BaseException | None = None,
    message: str | None = None,
) -> web.StreamResponse:
    # aiohttp's own first: it logs (through logs.LibraryRecords) and refuses to answer twice.
    _aiohttp_handle_error(self, request, status, exc, message)
    response = protocol_problem(status, exc).response()
    response.force_close()
    return response


def answer_protocol_errors_as_problems() -> None:
    """Make aiohttp answer the requests it handles itself as problem+json, not text/plain.

    A request line or header aiohttp cannot parse is answered from RequestHandler.handle_error
    before any middleware or signal runs, and aiohttp 3.14 has no option to shape that answer
    (aio-libs/aiohttp#3287; handler_args reach only its limits and loggers). So its method is
    wrapped, once: aiohttp's still runs first, and its answer is replaced by the problem."""
    if RequestHandler.handle_error is not _handle_error:
        RequestHandler.handle_error = _handle_error  # type: ignore[method-assign]
