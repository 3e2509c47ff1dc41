"""The public pages over HTTP, on the real database: the number box, a number's page, the
report form with its proof of work and limits, the trends page, languages and headers."""

from __future__ import annotations

import re
from http import HTTPStatus

from callguard.web.proof import solve

from .conftest import AppClient, MakeKey


def challenge_of(page: str) -> str:
    found = re.search(r'name="challenge" value="([^"]+)"', page)
    assert found, page
    return found[1]


def verdict_of(page: str) -> str:
    found = re.search(r'data-verdict="(\w+)"', page)
    assert found, page
    return found[1]


def report_count_of(page: str) -> int:
    found = re.search(r'data-report-count="(\d+)"', page)
    assert found, page
    return int(found[1])


async def test_the_front_page_is_vietnamese_with_a_number_box(client: AppClient) -> None:
    response = await client.get("/")
    assert response.status == HTTPStatus.OK
    page = await response.text()
    assert '<html lang="vi">' in page
    assert 'name="so"' in page and '<label for="so">Số điện thoại</label>' in page
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


async def test_the_number_box_leads_to_the_numbers_page(client: AppClient) -> None:
    response = await client.get("/so", params={"so": "+84 912 345 678"}, allow_redirects=False)
    assert response.status == HTTPStatus.SEE_OTHER
    assert response.headers["Location"] == "/so/0912345678"
    page = await (await client.get("/so/0912345678")).text()
    assert verdict_of(page) == "unknown"


async def test_a_report_from_the_page_is_counted_and_stays_community(client: AppClient) -> None:
    page = await (await client.get("/so/0912345678")).text()
    challenge = challenge_of(page)
    form = {
        "category": "online_loan",
        "description": "Gọi mời vay",
        "challenge": challenge,
        "answer": solve(challenge),
    }
    response = await client.post("/so/0912345678/bao-cao", data=form, allow_redirects=False)
    assert response.status == HTTPStatus.SEE_OTHER, await response.text()
    page = await (await client.get(response.headers["Location"])).text()
    assert report_count_of(page) == 1
    assert verdict_of(page) == "suspicious"
    assert "data-report-sent" in page
    again = await client.post("/so/0912345678/bao-cao", data=form, allow_redirects=False)
    assert again.status == HTTPStatus.BAD_REQUEST  # the challenge is spent


async def test_the_trends_page_draws_a_chart_per_category(client: AppClient, auth: dict[str, str]) -> None:
    page = await (await client.get("/xu-huong")).text()
    assert page.count('data-chart="category"') >= 7
