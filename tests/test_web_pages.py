"""The public pages over HTTP, on the real database: the number box, a number's page, the
report form with its proof of work and its limits, the trends page, the languages, and what
every page promises a cheap phone (size, no inline code, a strict CSP, contrast).
tests/test_browser.py drives the same pages in Chromium."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from callguard import store
from callguard.app import create_app
from callguard.config import Config
from callguard.lists import LISTS
from callguard.state import REQUEST_LOG
from callguard.web.proof import ChallengeFailed, Challenges, solve
from callguard.web.site import PAGE_KEY_HASH

from tests.conftest import AppClient, ClientFactory, MakeKey, report_verified
from tests.waiting import eventually

PAGE_BUDGET = 50 * 1024
"""What a page may weigh with everything it loads (issue 16): a cheap phone on a slow link."""
STATIC = Path(__file__).parents[1] / "service" / "web" / "static"


def attribute(page: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', page)
    assert found, f"no {name} in the page"
    return found[1]


def verdict_of(page: str) -> str:
    return attribute(page, "data-verdict")


def report_count_of(page: str) -> int:
    return int(attribute(page, "data-report-count"))


async def admin_headers(make_key: MakeKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key('admin')}"}


async def send_report(
    client: AppClient,
    number: str = "0912345678",
    category: str = "online_loan",
    headers: dict[str, str] | None = None,
    answer: str | None = None,
) -> tuple[int, str]:
    """Send the report form as the page's script does; (status, the page it ends on)."""
    page = await (await client.get(f"/so/{number}", headers=headers)).text()
    challenge = attribute(page, 'name="challenge" value')
    form = {
        "category": category,
        "description": "Gọi mời vay",
        "challenge": challenge,
        "answer": solve(challenge) if answer is None else answer,
    }
    response = await client.post(f"/so/{number}/bao-cao", data=form, headers=headers)
    return response.status, await response.text()


async def test_the_front_page_is_vietnamese_with_a_labelled_number_box(client: AppClient) -> None:
    response = await client.get("/")
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Language"] == "vi"
    page = await response.text()
    assert '<html lang="vi">' in page
    assert '<label for="so">Số điện thoại</label>' in page and 'id="so" name="so"' in page
    assert 'data-form="lookup" action="/so" method="get"' in page


async def test_english_by_accept_language_and_by_the_switch(client: AppClient) -> None:
    english = await client.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    page = await english.text()
    assert '<html lang="en">' in page and "Phone number" in page
    assert english.headers["Vary"].startswith("Accept-Language, Cookie")
    switched = await client.get("/", params={"lang": "en"})
    assert '<html lang="en">' in await switched.text()
    assert switched.cookies["lang"].value == "en"
    # The choice is remembered: the next page is English with no query.
    later = await client.get("/xu-huong", headers={"Cookie": "lang=en"})
    assert '<html lang="en">' in await later.text()
    back = attribute(page, 'data-lang-switch hreflang="vi" lang="vi" href')
    assert back == "/?lang=vi"


async def test_the_number_box_leads_to_the_numbers_shareable_page(client: AppClient) -> None:
    response = await client.get("/so", params={"so": "+84 912 345 678"}, allow_redirects=False)
    assert response.status == HTTPStatus.SEE_OTHER
    assert response.headers["Location"] == "/so/0912345678"
    page = await (await client.get("/so/0912345678")).text()
    assert verdict_of(page) == "unknown"
    assert "Chưa có báo cáo" in page
    foreign = await client.get("/so", params={"so": "+1 202 555 0100"}, allow_redirects=False)
    assert foreign.headers["Location"] == "/so/+12025550100"
    empty = await client.get("/so", params={"so": " "}, allow_redirects=False)
    assert empty.headers["Location"] == "/"


@pytest.mark.parametrize("text", ["12", "not a number", "0" * 300, "<script>x</script>"])
async def test_text_that_is_no_number_gets_the_box_again_saying_so(
    client: AppClient, text: str
) -> None:
    for response in (
        await client.get("/so", params={"so": text}),
        await client.get(f"/so/{text.replace('/', '')}"),
    ):
        assert response.status == HTTPStatus.BAD_REQUEST
        assert response.content_type == "text/html"
        page = await response.text()
        assert 'aria-invalid="true"' in page and 'role="alert"' in page
        assert "<script>x" not in page  # escaped


async def test_a_scam_numbers_page_says_why_what_to_do_and_where_to_report(
    client: AppClient, make_key: MakeKey
) -> None:
    body = {"category": "impersonation_authority", "note": "Công an tỉnh báo"}
    listed = await client.put(
        "/v1/numbers/0987111222", json=body, headers=await admin_headers(make_key)
    )
    assert listed.status == HTTPStatus.OK, await listed.text()
    page = await (await client.get("/so/0987111222")).text()
    assert verdict_of(page) == "scam"
    assert "Số lừa đảo" in page
    assert 'data-category="impersonation_authority"' in page
    assert "Giấy triệu tập" in page  # the seeds' advice for this category
    assert "data-what-to-do" in page and "5656" in page
    assert "Công an nơi gần nhất" in page  # where to report to the police
    reasons = re.search(r"<ul data-reasons>(.*?)</ul>", page, re.S)
    assert reasons and "<li>" in reasons[1]


async def test_a_verified_numbers_page_names_its_owner(
    client: AppClient, make_key: MakeKey
) -> None:
    body = {"owner": "Công an tỉnh Đồng Nai", "note": "Đường dây nóng"}
    added = await client.put(
        "/v1/allowlist/02513685134", json=body, headers=await admin_headers(make_key)
    )
    assert added.status in (HTTPStatus.OK, HTTPStatus.CREATED), await added.text()
    page = await (await client.get("/so/02513685134")).text()
    assert verdict_of(page) == "verified"
    assert "<dd data-owner>Công an tỉnh Đồng Nai</dd>" in page
    assert 'data-form="report"' not in page


async def test_a_report_from_the_page_is_counted_and_says_what_happens_next(
    client: AppClient,
) -> None:
    status, page = await send_report(client)
    assert status == HTTPStatus.OK
    assert report_count_of(page) == 1
    assert verdict_of(page) == "suspicious"
    assert "data-report-sent" in page and "khiếu nại" in page


async def test_page_reports_are_community_lane_and_never_make_a_scam(
    aiohttp_client: ClientFactory, config: Config
) -> None:
    behind_proxy = replace(config, trusted_proxies=frozenset({"127.0.0.1"}))
    client = await aiohttp_client(create_app(behind_proxy))
    for network in range(8):
        headers = {"X-Forwarded-For": f"203.0.{network}.7"}
        status, page = await send_report(
            client, category="impersonation_authority", headers=headers
        )
        assert status == HTTPStatus.OK, page
    assert report_count_of(page) == 8
    assert verdict_of(page) == "suspicious"


async def test_a_challenge_is_spent_once_and_only_for_its_number(client: AppClient) -> None:
    page = await (await client.get("/so/0912345678")).text()
    challenge = attribute(page, 'name="challenge" value')
    form = {
        "category": "other",
        "challenge": challenge,
        "answer": solve(challenge),
        "description": "",
    }
    elsewhere = await client.post("/so/0912000000/bao-cao", data=form)
    assert elsewhere.status == HTTPStatus.BAD_REQUEST
    assert (await client.post("/so/0912345678/bao-cao", data=form)).status == HTTPStatus.OK
    again = await client.post("/so/0912345678/bao-cao", data=form)
    assert again.status == HTTPStatus.BAD_REQUEST
    assert "hết hạn hoặc đã được dùng" in await again.text()
    page = await (await client.get("/so/0912345678")).text()
    assert report_count_of(page) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"answer": "0"},
        {"answer": ""},
        {"challenge": "1.2.3.4"},
        {"category": "no_such_category"},
        {"description": "x" * 2001},
    ],
)
async def test_a_form_that_is_not_right_is_refused_and_not_counted(
    client: AppClient, change: dict[str, str]
) -> None:
    page = await (await client.get("/so/0912345678")).text()
    challenge = attribute(page, 'name="challenge" value')
    form = {
        "category": "other",
        "description": "",
        "challenge": challenge,
        "answer": solve(challenge),
    }
    if change.get("answer") == "0" and solve(challenge) == "0":
        change = {"answer": "1"}
    response = await client.post("/so/0912345678/bao-cao", data={**form, **change})
    assert response.status == HTTPStatus.BAD_REQUEST
    assert response.content_type == "text/html"
    page = await (await client.get("/so/0912345678")).text()
    assert report_count_of(page) == 0


async def test_reports_are_limited_per_network(
    aiohttp_client: ClientFactory, config: Config
) -> None:
    limited = replace(
        config, trusted_proxies=frozenset({"127.0.0.1"}), page_report_burst_per_network=2
    )
    client = await aiohttp_client(create_app(limited))
    one_network = [{"X-Forwarded-For": f"198.51.100.{host}"} for host in (1, 2, 3)]
    statuses = [(await send_report(client, headers=headers))[0] for headers in one_network]
    assert statuses == [HTTPStatus.OK, HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS]
    page = await client.get("/so/0912345678", headers={"X-Forwarded-For": "198.51.100.9"})
    challenge = attribute(await page.text(), 'name="challenge" value')
    form = {
        "category": "other",
        "description": "",
        "challenge": challenge,
        "answer": solve(challenge),
    }
    refused = await client.post("/so/0912345678/bao-cao", data=form, headers=one_network[0])
    assert int(refused.headers["Retry-After"]) > 0
    other_network = {"X-Forwarded-For": "192.0.2.1"}
    assert (await send_report(client, headers=other_network))[0] == HTTPStatus.OK


async def test_a_network_is_one_reporter_under_the_daily_limit(
    aiohttp_client: ClientFactory, config: Config
) -> None:
    limited = replace(config, reports_per_reporter_per_day=2)
    client = await aiohttp_client(create_app(limited))
    statuses = [(await send_report(client, f"091234567{n}"))[0] for n in range(3)]
    assert statuses == [HTTPStatus.OK, HTTPStatus.OK, HTTPStatus.TOO_MANY_REQUESTS]
    _status, page = await send_report(client, "0912345679")
    assert "đủ số báo cáo cho phép hôm nay" in page
    # The language switch on a form's answer leads to the number's page, not the form.
    assert 'href="/so/0912345679?lang=en"' in page


async def test_page_lookups_are_limited_per_network(
    aiohttp_client: ClientFactory, config: Config
) -> None:
    limited = replace(
        config, page_lookup_burst_per_network=3, page_lookups_per_network_per_second=0.01
    )
    client = await aiohttp_client(create_app(limited))
    statuses = [(await client.get(f"/so/091234567{n}")).status for n in range(4)]
    assert statuses == [HTTPStatus.OK] * 3 + [HTTPStatus.TOO_MANY_REQUESTS]
    refused = await client.get("/so/0912345670")
    assert refused.content_type == "text/html" and int(refused.headers["Retry-After"]) > 0


async def test_revoking_the_page_key_turns_reports_off_at_once(
    client: AppClient, pool: asyncpg.Pool
) -> None:
    page = await (await client.get("/so/0912345678")).text()
    challenge = attribute(page, 'name="challenge" value')
    actor = store.audit.Actor(None, "test")
    assert await store.keys.revoke(pool, None, PAGE_KEY_HASH, actor, datetime.now(UTC))

    async def off() -> bool:
        page = await (await client.get("/so/0912345678")).text()
        return 'data-form="report"' not in page

    await eventually(off, what="the report form gone")
    form = {
        "category": "other",
        "description": "",
        "challenge": challenge,
        "answer": solve(challenge),
    }
    response = await client.post("/so/0912345678/bao-cao", data=form)
    assert response.status == HTTPStatus.SERVICE_UNAVAILABLE


async def test_the_trends_page_draws_the_weeks_and_names_networks_and_official_numbers(
    client: AppClient, auth: dict[str, str], attesting: dict[str, str], make_key: MakeKey
) -> None:
    for reporter in range(6):
        body = {"number": "0912345678", "category": "fake_recruitment", "reporter": f"r{reporter}"}
        assert (await client.post("/v1/reports", json=body, headers=auth)).status == 201
    await report_verified(client, attesting, "0981234567")  # a Viettel number, now a scam
    await client.app[LISTS].publish()  # newly listed: on the published scam list
    owner = {"owner": "Công an tỉnh Đồng Nai", "note": "Đường dây nóng"}
    added = await client.put(
        "/v1/allowlist/02513685134", json=owner, headers=await admin_headers(make_key)
    )
    assert added.status in (HTTPStatus.OK, HTTPStatus.CREATED), await added.text()
    page = await (await client.get("/xu-huong")).text()
    charts = re.findall(r'<figure data-category="(\w+)">.*?</figure>', page, re.S)
    assert "fake_recruitment" in charts and len(charts) >= 7
    recruitment = re.search(r'<figure data-category="fake_recruitment">(.*?)</figure>', page, re.S)
    assert recruitment is not None
    counts = [int(count) for count in re.findall(r'data-count="(\d+)"', recruitment[1])]
    assert len(counts) == 12 and counts[-1] == 6 and sum(counts) == 6
    assert re.search(r'<li data-category="fake_recruitment">', page)  # rising: 6 from nothing
    assert 'data-network="Viettel"' in page
    assert re.search(
        r"<ul data-official><li><a href=\"tel:025\d+\">025[\d ]+</a>: Công an tỉnh Đồng Nai", page
    )


@pytest.mark.parametrize(
    ("path", "language"),
    [("/", "vi"), ("/so/0912345678", "vi"), ("/xu-huong", "vi"), ("/so/0912345678", "en")],
)
async def test_every_page_fits_a_slow_phone_and_runs_no_inline_code(
    client: AppClient, path: str, language: str
) -> None:
    response = await client.get(path, headers={"Accept-Language": language})
    page = await response.text()
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "an inline script"
    assert not re.search(r"\s(style|on\w+)=", page), "an inline style or handler"
    loaded = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert loaded, "the page loads its style sheet"
    weight = len(await response.read())
    for url in loaded:
        asset = await client.get(url)
        assert asset.status == HTTPStatus.OK
        weight += len(await asset.read())
    assert weight <= PAGE_BUDGET, weight
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page), "something from elsewhere"


async def test_static_files_are_kept_until_they_change(client: AppClient) -> None:
    page = await (await client.get("/")).text()
    url = attribute(page, 'rel="stylesheet" href')
    gzip = {"Accept-Encoding": "gzip"}
    response = await client.get(url, headers=gzip)
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.content_type == "text/css"
    assert response.headers["Content-Encoding"] == "gzip"
    page_response = await client.get("/", headers=gzip)
    assert page_response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page_response.headers["Vary"]
    assert (await client.get("/static/nothing.css")).status == HTTPStatus.NOT_FOUND


def contrast(foreground: str, background: str) -> float:
    """WCAG 2's contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_colours_meet_wcag_aa() -> None:
    css = (STATIC / "style.css").read_text()
    colours = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", css))
    white = "#ffffff"
    pairs = [(colours["text"], white), (colours["muted"], white), (colours["link"], white)]
    pairs += [(colours["muted"], colours["soft"]), (colours["text"], colours["soft"])]
    # White text on the verdict banners and the buttons.
    pairs += [
        (white, colours[name]) for name in ("scam", "suspicious", "verified", "unknown", "link")
    ]
    for foreground, background in pairs:
        assert contrast(foreground, background) >= 4.5, (foreground, background)


async def test_the_log_never_holds_the_number_asked_about(config: Config) -> None:
    lines = io.StringIO()
    async with TestClient(TestServer(create_app(config, log_stream=lines))) as client:
        assert (await client.get("/so/0912345678")).status == HTTPStatus.OK
        assert (
            await client.get("/so", params={"so": "0912345678"}, allow_redirects=False)
        ).status == 303
        client.app[REQUEST_LOG].buffer.flush()
    records = [json.loads(line) for line in lines.getvalue().splitlines()]
    assert {record["route"] for record in records} >= {"/so/{number}", "/so"}
    assert "912345678" not in lines.getvalue()


def test_a_challenge_takes_work_to_answer_and_is_good_once_for_a_while() -> None:
    now = [1_000_000.0]
    challenges = Challenges(b"k" * 32, 8, lambda: now[0])
    challenge = challenges.issue(84912345678)
    answer = solve(challenge)
    with pytest.raises(ChallengeFailed):
        challenges.check(84912345679, challenge, answer)  # another number
    tampered = challenge.replace(".8.", ".1.")
    with pytest.raises(ChallengeFailed):
        challenges.check(84912345678, tampered, solve(tampered))  # an easier difficulty
    challenges.check(84912345678, challenge, answer)
    with pytest.raises(ChallengeFailed):
        challenges.check(84912345678, challenge, answer)  # spent
    late = challenges.issue(84912345678)
    now[0] += 31 * 60
    with pytest.raises(ChallengeFailed):
        challenges.check(84912345678, late, solve(late))  # expired
