"""GET /v1/numbers/{number}: one lookup, in whatever form the number was typed."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from callguard.app import create_app
from callguard.config import Config

from tests.conftest import AppClient, ClientFactory, FakeClock, MakeKey

FORMS = [
    "0912345678",
    "+84 912 345 678",
    "(+84) 912.345.678",
    "0084912345678",
    "84912345678",
    "０９１２３４５６７８",  # noqa: RUF001 - full-width digits, as some phone keyboards type
    "tel:+84912345678",
    "tel:+84-91-234-5678",
]


async def report(client: AppClient, auth: dict[str, str], number: str, reporter: str) -> None:
    response = await client.post(
        "/v1/reports",
        json={"number": number, "category": "impersonation_authority", "reporter": reporter},
        headers=auth,
    )
    assert response.status == 201


async def test_a_clean_number_is_unknown(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.get("/v1/numbers/0912345678", headers=auth)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {
        "number": "+84912345678",
        "verdict": "unknown",
        "score": 0,
        "report_count": 0,
        "reporter_count": 0,
        "categories": [],
        "first_reported_at": None,
        "last_reported_at": None,
    }


@pytest.mark.parametrize("form", FORMS)
async def test_every_form_of_a_reported_number_finds_it(
    client: AppClient, auth: dict[str, str], form: str
) -> None:
    await report(client, auth, "0912 345 678", "reporter-1")
    response = await client.get(f"/v1/numbers/{quote(form)}", headers=auth)
    assert response.status == 200
    body = await response.json()
    assert body["number"] == "+84912345678"
    assert body["verdict"] == "suspicious"
    assert body["report_count"] == 1
    assert body["categories"] == ["impersonation_authority"]
    assert body["first_reported_at"] == body["last_reported_at"] is not None


async def test_foreign_numbers_in_international_form(
    client: AppClient, auth: dict[str, str]
) -> None:
    await report(client, auth, "+1 650-253-0000", "reporter-1")
    body = await (await client.get(f"/v1/numbers/{quote('+16502530000')}", headers=auth)).json()
    assert (body["number"], body["verdict"]) == ("+16502530000", "suspicious")
    # The same digits typed as a Vietnamese national number are a different, unreported number.
    response = await client.get("/v1/numbers/0912345678", headers=auth)
    assert (await response.json())["verdict"] == "unknown"


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "113",
        "12",
        "+999 1234567",
        "0912345678901234567890",
        "\x000912345678",
        "091\n2345678",
        "x" * 65,
    ],
)
async def test_not_a_phone_number_is_400(
    client: AppClient, auth: dict[str, str], text: str
) -> None:
    response = await client.get(f"/v1/numbers/{quote(text)}", headers=auth)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == 400
    assert "not a valid phone number" in problem["detail"]


@pytest.mark.parametrize("role", ["client", "operator", "admin"])
async def test_every_role_may_look_up(client: AppClient, make_key: MakeKey, role: str) -> None:
    headers = {"Authorization": f"Bearer {await make_key(role)}"}
    response = await client.get("/v1/numbers/0912345678", headers=headers)
    assert response.status == 200


async def test_reports_from_distinct_reporters_raise_count_and_score(
    client: AppClient, auth: dict[str, str]
) -> None:
    await report(client, auth, "0912345678", "reporter-1")
    first = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    await report(client, auth, "0912345678", "reporter-2")
    second = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    assert (first["reporter_count"], second["reporter_count"]) == (1, 2)
    assert second["score"] > first["score"]
    assert second["last_reported_at"] >= first["last_reported_at"]
    assert second["first_reported_at"] == first["first_reported_at"]


async def test_the_filter_is_rebuilt_from_postgres_at_start(
    aiohttp_client: ClientFactory, config: Config, auth: dict[str, str]
) -> None:
    first = await aiohttp_client(create_app(config))
    await report(first, auth, "0912345678", "reporter-1")
    await first.close()
    second = await aiohttp_client(create_app(config))
    body = await (await second.get("/v1/numbers/0912345678", headers=auth)).json()
    assert body["verdict"] == "suspicious"


async def test_report_times_are_shown_as_their_day_in_vietnam(
    timed_client: AppClient, auth: dict[str, str], clock: FakeClock, make_key: MakeKey
) -> None:
    """A scammer looking up their own number learns the day of its reports, not the moment
    (which would point at the person who reported): every role, single and batch lookups."""
    clock.now = datetime(2026, 11, 23, 16, 59, 59, 123456, tzinfo=UTC)  # 23:59:59 in Hanoi
    await report(timed_client, auth, "0912345678", "reporter-1")
    clock.advance(seconds=1)  # 00:00:00.123456 on the 24th in Hanoi
    await report(timed_client, auth, "0912345678", "reporter-2")
    for role in ("client", "operator", "admin"):
        headers = {"Authorization": f"Bearer {await make_key(role)}"}
        single = await (await timed_client.get("/v1/numbers/0912345678", headers=headers)).json()
        batch = await timed_client.post(
            "/v1/lookups", json={"numbers": ["0912345678"]}, headers=headers
        )
        (result,) = (await batch.json())["results"]
        for body in (single, result):
            assert (body["first_reported_at"], body["last_reported_at"]) == (
                "2026-11-23",
                "2026-11-24",
            )
