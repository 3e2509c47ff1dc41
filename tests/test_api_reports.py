"""POST /v1/reports: a person reports a number; it is listed at once."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
import pytest

from tests.conftest import AppClient


def a_report(**fields: object) -> dict[str, object]:
    return {"number": "0912345678", "category": "fake_recruitment", "reporter": "r1", **fields}


async def test_a_report_is_stored_and_lists_the_number(
    client: AppClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/v1/reports",
        json=a_report(
            description="Gọi mời làm cộng tác viên trên sàn thương mại điện tử",
            occurred_at="2026-11-20T09:30:00+07:00",
        ),
        headers=auth,
    )
    assert response.status == 201
    body = await response.json()
    assert body == {
        "report_id": body["report_id"],
        "number": "+84912345678",
        "verdict": "suspicious",
    }
    assert isinstance(body["report_id"], int)
    lookup = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    assert lookup["verdict"] == "suspicious"
    assert lookup["categories"] == ["fake_recruitment"]


async def test_the_same_reporter_counts_once(client: AppClient, auth: dict[str, str]) -> None:
    for category in ("fake_recruitment", "fake_recruitment", "online_loan"):
        response = await client.post("/v1/reports", json=a_report(category=category), headers=auth)
        assert response.status == 201
    lookup = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    assert (lookup["report_count"], lookup["reporter_count"]) == (3, 1)
    assert lookup["categories"] == ["fake_recruitment", "online_loan"]


async def test_concurrent_reports_are_all_counted(client: AppClient, auth: dict[str, str]) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/v1/reports", json=a_report(reporter=f"r{i % 5}"), headers=auth)
            for i in range(20)
        )
    )
    assert [response.status for response in responses] == [201] * 20
    lookup = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    assert (lookup["report_count"], lookup["reporter_count"]) == (20, 5)


async def test_only_a_keyed_hash_of_the_reporter_is_stored(
    client: AppClient, auth: dict[str, str], pool: asyncpg.Pool
) -> None:
    reporter = "device-7f3a9c-user-0001"
    await client.post("/v1/reports", json=a_report(reporter=reporter), headers=auth)
    dump = await pool.fetchval(
        "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM reports) t"
    ) + await pool.fetchval("SELECT string_agg(t::text, ' ') FROM number_reporters t")
    assert reporter not in dump
    assert reporter.encode().hex() not in dump
    stored = await pool.fetchval("SELECT reporter_hash FROM reports")
    assert stored != hashlib.sha256(reporter.encode()).digest()  # keyed, not a bare hash
    assert len(stored) == 32


async def test_categories_are_listed_in_both_languages(
    client: AppClient, auth: dict[str, str]
) -> None:
    response = await client.get("/v1/categories", headers=auth)
    assert response.status == 200
    categories = (await response.json())["categories"]
    ids = [category["id"] for category in categories]
    assert ids == [
        "impersonation_authority", "impersonation_military", "fake_recruitment", "online_loan",
        "account_takeover", "gift_romance", "investment", "other",
    ]  # fmt: skip
    authority = categories[0]
    assert "Công an" in authority["label_vi"] and "police" in authority["label_en"]
    for category in categories:
        response = await client.post(
            "/v1/reports", json=a_report(category=category["id"]), headers=auth
        )
        assert response.status == 201


@pytest.mark.parametrize(
    ("fields", "status", "words"),
    [
        ({"category": "lottery"}, 422, "Unknown category"),
        ({"number": "12"}, 400, "not a valid phone number"),
        ({"number": None}, 400, "'number' is required"),
        ({"reporter": ""}, 400, "'reporter' must not be empty"),
        ({"reporter": "x" * 201}, 400, "longer than 200"),
        ({"description": "x" * 2001}, 400, "longer than 2000"),
        ({"occurred_at": "yesterday"}, 400, "RFC 3339"),
        ({"occurred_at": "2026-11-20T09:30:00"}, 400, "UTC offset"),
        ({"occurred_at": "2999-01-01T00:00:00+00:00"}, 400, "future"),
        ({"occurred_at": 1732345678}, 400, "must be a string"),
    ],
)
async def test_invalid_reports_are_refused_with_the_reason(
    client: AppClient, auth: dict[str, str], fields: dict[str, object], status: int, words: str
) -> None:
    response = await client.post("/v1/reports", json=a_report(**fields), headers=auth)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert words in (await response.json())["detail"]
    lookup = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    assert lookup["report_count"] == 0


async def test_reporters_that_differ_only_in_invisible_ways_are_one_reporter(
    client: AppClient, auth: dict[str, str]
) -> None:
    composed, decomposed = "Nguy\u1ec5n", "Nguy\u0065\u0302\u0303n"  # NFC and NFD of Nguyễn
    variants = [
        composed,
        decomposed,
        f" {composed}\t",
        f"\u200b{composed}\ufeff",
        "Nguy\u200d\u1ec5n",
    ]
    for reporter in variants:
        response = await client.post("/v1/reports", json=a_report(reporter=reporter), headers=auth)
        assert response.status == 201, reporter
    lookup = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    assert (lookup["report_count"], lookup["reporter_count"]) == (len(variants), 1)
    assert lookup["verdict"] == "suspicious"  # one person alone cannot make it a scam


@pytest.mark.parametrize("reporter", [" ", "\u200b", "\u200b \u2060\ufeff", "\u202e\u00ad"])
async def test_a_reporter_empty_once_normalised_is_refused(
    client: AppClient, auth: dict[str, str], reporter: str
) -> None:
    response = await client.post("/v1/reports", json=a_report(reporter=reporter), headers=auth)
    assert response.status == 400
    assert "'reporter' must not be empty" in (await response.json())["detail"]


async def test_categories_are_read_in_any_letter_case(
    client: AppClient, auth: dict[str, str]
) -> None:
    for category in ("ONLINE_LOAN", " Online_Loan ", "online_loan"):
        response = await client.post("/v1/reports", json=a_report(category=category), headers=auth)
        assert response.status == 201, category
    lookup = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    assert lookup["categories"] == ["online_loan"]


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-11-23T09:09:59Z",  # within the clock skew of the service's 09:00
        "2026-11-20T02:30:00z",
        "2026-11-20t09:30:00+07:00",
        "2026-11-20 09:30:00.123456789+07:00",
        "2000-01-01T00:00:00Z",
    ],
)
async def test_rfc_3339_times_are_accepted(
    timed_client: AppClient, auth: dict[str, str], occurred_at: str
) -> None:
    response = await timed_client.post(
        "/v1/reports", json=a_report(occurred_at=occurred_at), headers=auth
    )
    assert response.status == 201, await response.text()


@pytest.mark.parametrize(
    ("occurred_at", "words"),
    [
        ("2026-11-23T09:10:01Z", "in the future"),
        ("2099-01-01T00:00:00Z", "in the future"),
        ("1999-12-31T23:59:59Z", "before 2000-01-01"),
        ("0001-01-01T00:00:00+01:00", "before 2000-01-01"),
        ("9999-12-31T23:59:59-01:00", "in the future"),
        ("2026-02-30T09:30:00Z", "not a real date and time"),
        ("2026-11-20T09:30:00+24:00", "not a real date and time"),
        ("2026-11-20", "UTC offset"),
        ("20261120T093000Z", "RFC 3339"),
        ("2026-W47-5T09:30:00Z", "RFC 3339"),
        ("2026-11-20T09:30Z", "RFC 3339"),
    ],
)
async def test_times_outside_rfc_3339_or_the_plausible_range_are_refused(
    timed_client: AppClient, auth: dict[str, str], occurred_at: str, words: str
) -> None:
    response = await timed_client.post(
        "/v1/reports", json=a_report(occurred_at=occurred_at), headers=auth
    )
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert words in (await response.json())["detail"]
