"""/v1/numbers/{number}: look a number up (any key), list or delist it (admin)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta
from multidict import CIMultiDict

from .. import store
from ..advice import LANGUAGES, advice_for, pick_language
from ..auth import API_KEY, RESERVED_SOURCE_PREFIX, Role, requires, shown_sources
from ..clock import VIETNAM
from ..e164 import MAX_INPUT_LENGTH, InvalidNumber, check_shape, normalize, normalize_fast, to_e164
from ..moderation import MODERATION
from ..problems import answers, bad_request, encode_body, not_found, too_many_requests
from ..reasons import reasons_in
from ..reputation import UNKNOWN, Evidence, Verdict
from ..state import CONFIG, LOOKUP_LIMITS
from ..text import UnknownCategory, category
from ..verdicts import VERDICTS, Answer
from .answers import LookupAnswer, NumberVerdict
from .bodies import FreeText, accepts, responds
from .documented import BAD_NUMBER, bad, documented, header, missing, path, use

MAX_NOTE_LENGTH = 2000
PHONE_NUMBER = "phone-number"
"""Our JSON Schema format name for a phone number in any form a person types."""


def parse_number(text: str, field: str = "") -> int:
    """A number from the request, or a 400 problem saying why it is not one (naming the
    body's field, if given)."""
    try:
        return normalize(text)
    except InvalidNumber as err:
        where = f"{field}: " if field else ""
        raise bad_request(
            f"{where}{text!r} is not a valid phone number: {err}.", number=text
        ) from err


def limit_lookups(request: web.Request, tokens: int) -> None:
    """Take `tokens` from the key's lookup bucket, or answer 429 with Retry-After."""
    wait = request.app[LOOKUP_LIMITS].take(request[API_KEY].id, tokens)
    if wait:
        config = request.app[CONFIG]
        raise too_many_requests(
            f"This key may look up {config.lookups_per_key_per_second:g} numbers a second; one "
            f"in a form the fast path does not read counts as {config.lookup_slow_cost}, an "
            f"item that cannot be a number as {config.lookup_refused_cost}, and a listed "
            f"number as {config.lookup_listed_cost} more.",
            wait,
        )


def shape_error(text: str) -> str | None:
    """Why text cannot be a number, found cheaply (numbers.check_shape), or None."""
    try:
        check_shape(text)
    except InvalidNumber as err:
        return str(err)
    return None


PhoneNumberInput = Annotated[
    FreeText,
    Meta(
        max_length=MAX_INPUT_LENGTH,
        description="A phone number as a person types it or a switch passes it: 0912345678, "
        "+84 912 345 678, (+84) 912.345.678, 0084912345678, tel: URIs, foreign numbers in "
        "international form. Text that is not a valid number gets 400.",
        examples=["0912345678", "+84 912 345 678"],
        extra_json_schema={"format": PHONE_NUMBER},
    ),
]
"""A body's phone number, read by parse_number."""
CategoryInput = Annotated[
    FreeText,
    Meta(
        max_length=64,
        description="A scam category; GET /v1/categories lists them with labels. Read in any "
        "letter case; an unknown one gets 422 with the list.",
        examples=["impersonation_authority"],
        extra_json_schema={"$ref": "#/components/schemas/CategoryId"},
    ),
]
"""A body's category id: its Struct's __post_init__ reads it with text.category, and an
unknown one is answered 422 with the list (problems.DOMAIN_ERRORS)."""
Note = Annotated[
    FreeText,
    Meta(
        max_length=MAX_NOTE_LENGTH,
        description="Why.",
        examples=["Reported by the police"],
    ),
]


class ListNumberIn(msgspec.Struct, forbid_unknown_fields=True):
    """Why a number is listed as a scam on an admin's word."""

    category: CategoryInput
    note: Note | None = None

    def __post_init__(self) -> None:
        self.category = category(self.category)


class DelistNumberIn(msgspec.Struct, forbid_unknown_fields=True):
    """Why a number is delisted."""

    reason: Annotated[
        FreeText,
        Meta(
            max_length=MAX_NOTE_LENGTH,
            description="Why it is delisted.",
            examples=["The owner's appeal was upheld"],
        ),
    ]


def actor(api_key: store.keys.ApiKey) -> store.audit.Actor:
    """The key doing a moderation action, for the audit log."""
    return store.audit.Actor(api_key.id, f"key:{api_key.id}:{api_key.name}")


def language(request: web.Request) -> str:
    """The language for advice, from Accept-Language; Vietnamese by default."""
    return pick_language(request.headers.get("Accept-Language"))


def answer_body(answer: Answer, lang: str) -> NumberVerdict:
    """The verdict a lookup returns for one number."""
    return NumberVerdict(**_verdict_fields(answer, lang))


def result_body(item: str, answer: Answer, lang: str) -> LookupAnswer:
    """A batch's result for one item that is a number: its verdict and its input."""
    return LookupAnswer(**_verdict_fields(answer, lang), input=item)


def _verdict_fields(answer: Answer, lang: str) -> dict[str, Any]:
    evidence, verdict = answer.evidence, answer.judgement.verdict
    fields: dict[str, Any] = {
        "number": to_e164(answer.number),
        "verdict": verdict,
        "score": answer.judgement.score,
        "report_count": evidence.report_count,
        "reporter_count": evidence.recent_reporters,
        "categories": list(evidence.categories),
        "first_reported_at": report_day(evidence.first_reported_at),
        "last_reported_at": report_day(evidence.last_reported_at),
    }
    if verdict is Verdict.VERIFIED:
        fields["owner"] = evidence.allowlisted_owner
    if evidence.trusted_sources and verdict is Verdict.SCAM:
        fields["sources"] = shown_sources(evidence.trusted_sources)
    if verdict in (Verdict.SUSPICIOUS, Verdict.SCAM):
        fields["advice"] = advice_for(evidence.categories, lang)
    if answer.judgement.reasons:
        fields["reasons"] = reasons_in(answer.judgement.reasons, lang)
    if answer.degraded:
        fields["degraded"] = True  # Postgres unreachable: from the filter and cache alone
    return fields


def report_day(at: datetime | None) -> date | None:
    """A report time as its day in Vietnam (encoded "2026-11-23"): anyone may look a number
    up, its scammer too, and an exact time would tell them when, and so who, reported them."""
    return None if at is None else at.astimezone(VIETNAM).date()


def lookup_response(body: NumberVerdict, lang: str) -> web.Response:
    """A lookup's JSON, marked with the language of its advice."""
    return lookup_bytes(encode_body(body), lang)


def lookup_bytes(data: bytes, lang: str) -> web.Response:
    """A lookup's encoded JSON, marked with the language of its advice."""
    return web.Response(body=data, headers=_LOOKUP_HEADERS[lang])


_LOOKUP_HEADERS = {
    lang: CIMultiDict(
        {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Language": lang,
            "Vary": "Accept-Language",
        }
    )
    for lang in LANGUAGES
}
"""A lookup's headers by language, made once: aiohttp copies them into each response."""

NUMBER = path(
    "number",
    {"type": "string", "format": PHONE_NUMBER, "minLength": 1, "maxLength": MAX_INPUT_LENGTH},
    "The number, in any form a person types (URL-encoded); invalid text gets 400.",
    "0912345678",
)
ACCEPT_LANGUAGE = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Advice is in Vietnamese unless this prefers English.",
    "example": "en",
}
LOOKUP_ANSWERED = {
    "headers": {
        "Content-Language": header(
            "The language of the advice: vi or en.", {"enum": list(LANGUAGES)}
        ),
        "Vary": header("Accept-Language: the advice depends on it.", {"const": "Accept-Language"}),
    }
}
"""A lookup's 200, as documented: the headers _LOOKUP_HEADERS sends."""


def unknown_answer(number: int) -> Answer:
    """The answer for a number the filter rules out."""
    return Answer(number, Evidence(number), UNKNOWN)


def _unknown_template(with_input: bool) -> str:
    """The declared answer for a number the filter rules out (answer_body, result_body),
    encoded once, with %d for the number (and %s after it for the input)."""
    answer, lang = unknown_answer(0), "vi"
    body = result_body("INPUT", answer, lang) if with_input else answer_body(answer, lang)
    text = encode_body(body).decode().replace('"INPUT"', '"%s"').replace('"+0"', '"+%d"')
    assert "%s" not in text or text.index("%d") < text.index("%s"), text
    return text


UNKNOWN_ANSWER = _unknown_template(with_input=False).encode()
"""The whole answer for a number the filter rules out: UNKNOWN_ANSWER % number."""
UNKNOWN_RESULT_TEXT = _unknown_template(with_input=True)
"""A batch result for one, as text: UNKNOWN_RESULT_TEXT % (number, input), for input that
needs no JSON escaping."""


@documented(
    "lookups",
    parameters=(NUMBER, ACCEPT_LANGUAGE),
    responses={
        200: LOOKUP_ANSWERED,
        400: bad("The text is not a valid phone number."),
        429: use("TooManyLookups"),
    },
)
@responds(200, NumberVerdict, "The verdict.")
async def get_number(request: web.Request) -> web.Response:
    """The verdict on one number

    The number is normalised to E.164 and judged afresh, as of now.
    """
    text = request.match_info["number"]
    config = request.app[CONFIG]
    # Charged by what the number costs, before the work: phonenumbers only for text that
    # could be a number, and a listed number's evidence only once that is paid for.
    number = normalize_fast(text)
    if number is None:
        limit_lookups(
            request, config.lookup_refused_cost if shape_error(text) else config.lookup_slow_cost
        )
        number = parse_number(text)
    else:
        limit_lookups(request, 1)
    verdicts = request.app[VERDICTS]
    lang = language(request)
    if verdicts.ruled_out(number):  # the common case: nothing to read, nothing to build
        return lookup_bytes(UNKNOWN_ANSWER % number, lang)
    limit_lookups(request, config.lookup_listed_cost)
    answer = await verdicts.answer_maybe(number)
    return lookup_response(answer_body(answer, lang), lang)


@requires(Role.ADMIN)
@answers(UnknownCategory)
@documented(
    "moderation",
    parameters=(NUMBER, ACCEPT_LANGUAGE),
    responses={200: LOOKUP_ANSWERED, 400: BAD_NUMBER},
)
@responds(200, NumberVerdict, "The verdict now.")
@accepts(ListNumberIn)
async def list_number(request: web.Request, body: ListNumberIn) -> web.Response:
    """List a number as a scam

    Lists the number on the admin's word until it is delisted; answers the verdict now.
    Clients see its source as `moderator`; the audit log names the key.
    """
    number = parse_number(request.match_info["number"])
    api_key = request[API_KEY]
    answer = await request.app[MODERATION].list_trusted(
        number,
        f"{RESERVED_SOURCE_PREFIX}{api_key.name}",  # shown to clients as MODERATOR_LABEL
        body.category,
        body.note,
        actor(api_key),
    )
    lang = language(request)
    return lookup_response(answer_body(answer, lang), lang)


@requires(Role.ADMIN)
@documented(
    "moderation",
    parameters=(NUMBER, ACCEPT_LANGUAGE),
    responses={
        200: LOOKUP_ANSWERED,
        400: BAD_NUMBER,
        404: missing("The number is not listed."),
    },
)
@responds(200, NumberVerdict, "The verdict after delisting.")
@accepts(DelistNumberIn)
async def delist_number(request: web.Request, body: DelistNumberIn) -> web.Response:
    """Delist a number

    Ends every trusted listing now; reports from before now stop counting. Answers the
    verdict after.
    """
    number = parse_number(request.match_info["number"])
    if not await request.app[MODERATION].delist(number, body.reason, actor(request[API_KEY])):
        raise not_found(f"{to_e164(number)} is not listed.")
    answer = await request.app[VERDICTS].lookup(number)
    lang = language(request)
    return lookup_response(answer_body(answer, lang), lang)
