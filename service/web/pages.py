"""The public pages: look a number up (/ and /so/{number}), report it, and see what is
rising (/xu-huong). Each handler parses, calls the same domain code the API calls, and
renders; what a visitor can get wrong is answered with a page saying so."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, Final
from urllib.parse import quote

import phonenumbers
from aiohttp import web

from ..advice import advice_for
from ..api.numbers import report_day, unknown_answer
from ..auth import client_address
from ..categories import CATEGORIES
from ..e164 import MAX_INPUT_LENGTH, InvalidNumber, normalize, to_e164
from ..reasons import reasons_in
from ..reporters import REPORTER_KEY, network_hash
from ..reporting import REPORTING, Report, Reporter
from ..reputation import Verdict
from ..state import CONFIG
from ..store.reports import KeyDayLimitReached, ReporterLimitReached
from ..text import TextError, category
from ..trends import OTHER_NETWORK, TRENDS
from ..verdicts import VERDICTS, Answer
from . import charts
from .proof import MAX_ANSWER_LENGTH, ChallengeFailed
from .render import page, render
from .site import SITE, reports_open
from .texts import page_language

NUMBER_QUERY: Final = "so"
SENT_QUERY: Final = "da-gui"
MAX_DESCRIPTION_LENGTH: Final = 2000
MAX_CHALLENGE_LENGTH: Final = 120


def number_path(number: int) -> str:
    """A number's page: its national form for a Vietnamese number, else E.164 (shareable)."""
    return f"/so/{quote(shown_number(number, plain=True), safe='+')}"


def shown_number(number: int, *, plain: bool = False) -> str:
    """A number as people write it: 0912 345 678 for Vietnam's, +1 202-555-0100 for others."""
    parsed = phonenumbers.parse(to_e164(number))
    if parsed.country_code == 84:
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return national.replace(" ", "") if plain else national
    if plain:
        return to_e164(number)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _address(request: web.Request) -> str:
    return client_address(request, request.app[CONFIG].trusted_proxies)


def _too_many(request: web.Request, wait: float) -> web.Response:
    seconds = max(1, round(wait))
    return render(
        request,
        "message.html",
        {"title": "too_many_title", "message": "too_many", "seconds": seconds, "back": None},
        status=HTTPStatus.TOO_MANY_REQUESTS,
        headers={"Retry-After": str(seconds)},
    )


@page
async def home(request: web.Request) -> web.Response:
    """The front page: the number box."""
    return render(request, "home.html", {"text": "", "error": False}, compress=True)


@page
async def look_up(request: web.Request) -> web.Response:
    """The number box's answer, without JavaScript: on to the number's page."""
    text = request.query.get(NUMBER_QUERY, "").strip()
    if not text:
        raise web.HTTPSeeOther("/")
    try:
        number = normalize(text)
    except InvalidNumber:
        return _not_a_number(request, text)
    raise web.HTTPSeeOther(number_path(number))


def _not_a_number(request: web.Request, text: str) -> web.Response:
    """The number box again, saying the text is not a number (what the visitor typed, cut
    to the box's length)."""
    return render(
        request,
        "home.html",
        {"text": text[:MAX_INPUT_LENGTH], "error": True},
        status=HTTPStatus.BAD_REQUEST,
    )


@page
async def number_page(request: web.Request) -> web.Response:
    """A number's page: its verdict, why, what to do, and the report form."""
    text = request.match_info["number"]
    try:
        number = normalize(text)
    except InvalidNumber:
        return _not_a_number(request, text)
    site = request.app[SITE]
    wait = site.lookups.take(_address(request))
    if wait:
        return _too_many(request, wait)
    verdicts = request.app[VERDICTS]
    if verdicts.ruled_out(number):
        answer = unknown_answer(number)
    else:
        answer = await verdicts.answer_maybe(number)
    context = _verdict_context(answer, page_language(request))
    context.update(
        sent=request.query.get(SENT_QUERY) == "1",
        reports_open=await reports_open(request.app),
        challenge=site.challenges.issue(number),
        categories=[item.id for item in CATEGORIES],
    )
    return render(request, "number.html", context, compress=True)


def _verdict_context(answer: Answer, language: str) -> dict[str, Any]:
    evidence, verdict = answer.evidence, answer.judgement.verdict
    return {
        "number": answer.number,
        "shown": shown_number(answer.number),
        "path": number_path(answer.number),
        "verdict": verdict.value,
        "reasons": [_sentence(reason) for reason in reasons_in(answer.judgement.reasons, language)],
        "categories_reported": list(evidence.categories),
        "report_count": evidence.report_count,
        "first": report_day(evidence.first_reported_at),
        "last": report_day(evidence.last_reported_at),
        "owner": evidence.allowlisted_owner if verdict is Verdict.VERIFIED else None,
        "advice": (
            advice_for(evidence.categories, language)
            if verdict in (Verdict.SUSPICIOUS, Verdict.SCAM)
            else []
        ),
        "degraded": answer.degraded,
    }


def _sentence(text: str) -> str:
    """A reason as a list item: its first letter a capital (the API's reasons are phrases)."""
    return text[:1].upper() + text[1:]


@page
async def send_report(request: web.Request) -> web.Response:
    """The report form: a community-lane report from the visitor's network, once its proof
    of work checks out; then back to the number's page, which counts it."""
    try:
        number = normalize(request.match_info["number"])
    except InvalidNumber:
        return _not_a_number(request, request.match_info["number"])
    site = request.app[SITE]
    back = number_path(number)
    if not await reports_open(request.app):
        return _refused(request, "report_off", back, HTTPStatus.SERVICE_UNAVAILABLE)
    form = await request.post()
    fields = _form_fields(form)
    if fields is None:
        return _refused(request, "report_stale", back, HTTPStatus.BAD_REQUEST)
    category_id, description, challenge, answer = fields
    address = _address(request)
    wait = site.reports.take(address)
    if wait:
        return _too_many(request, wait)
    try:
        site.challenges.check(number, challenge, answer)
    except ChallengeFailed:
        return _refused(request, "report_stale", back, HTTPStatus.BAD_REQUEST)
    reporter_key = request.app[REPORTER_KEY]
    network = network_hash(reporter_key, address)
    report = Report(
        number=number,
        category=category_id,
        reporter=Reporter(network.hex() if network is not None else "no-network"),
        description=description,
        occurred_at=None,
    )
    try:
        await request.app[REPORTING].report(report, site.key, address)
    except (ReporterLimitReached, KeyDayLimitReached):
        return _refused(request, "report_limit", back, HTTPStatus.TOO_MANY_REQUESTS)
    raise web.HTTPSeeOther(f"{back}?{SENT_QUERY}=1#bao-cao")


def _form_fields(form: Mapping[str, Any]) -> tuple[str, str | None, str, str] | None:
    """(category, description, challenge, answer) from the form, or None if it is not one
    the page sent."""
    values = [form.get(name) for name in ("category", "description", "challenge", "answer")]
    texts = [value for value in values if isinstance(value, str)]
    if len(texts) != len(values):
        return None
    category_text, description, challenge, answer = texts
    description = description.strip()
    if (
        len(description) > MAX_DESCRIPTION_LENGTH
        or len(challenge) > MAX_CHALLENGE_LENGTH
        or len(answer) > MAX_ANSWER_LENGTH
    ):
        return None
    try:
        category_id = category(category_text)
    except TextError:
        return None
    return category_id, description or None, challenge, answer


def _refused(request: web.Request, message: str, back: str, status: int) -> web.Response:
    return render(
        request,
        "message.html",
        {"title": "report_refused_title", "message": message, "back": back, "seconds": 0},
        status=status,
    )


@page
async def trends_page(request: web.Request) -> web.Response:
    """What is rising: reports per category per week as charts, the categories rising this
    week, numbers newly listed per network, and the official numbers."""
    trends = await request.app[TRENDS].get()
    language = page_language(request)
    context = {
        "charts": charts.category_charts(trends, language),
        "rising": trends.rising,
        # (network, this week, 12 weeks), the named networks first and "other" last.
        "networks": [
            (name, counts[-1], sum(counts))
            for name, counts in sorted(
                trends.listed.items(), key=lambda item: (item[0] == OTHER_NETWORK, item[0])
            )
        ],
        "other_network": OTHER_NETWORK,
        "official": [(shown_number(number), owner) for number, owner in trends.official],
        "this_week": trends.weeks[-1],
    }
    return render(request, "trends.html", context, cache="public, max-age=300", compress=True)
