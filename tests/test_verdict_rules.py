"""The verdict rules end to end on the real database, with the clock moved by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest
from callguard.app import create_app
from callguard.config import Config

from tests.conftest import AppClient, ClientFactory, FakeClock, MakeKey

NUMBER = "0912345678"


async def report(
    client: AppClient, auth: dict[str, str], reporter: str, phone: str | None = None, **fields: str
) -> int:
    """Report NUMBER; with a phone, as a verified reporter (auth must be attesting)."""
    body = {"number": NUMBER, "category": "impersonation_authority", "reporter": reporter}
    if phone is not None:
        body["reporter_phone"] = phone
    response = await client.post("/v1/reports", json={**body, **fields}, headers=auth)
    return response.status


async def lookup(client: AppClient, auth: dict[str, str], **headers: str) -> dict[str, object]:
    response = await client.get(f"/v1/numbers/{NUMBER}", headers={**auth, **headers})
    assert response.status == 200
    body: dict[str, object] = await response.json()
    return body


async def test_distinct_verified_phones_make_suspicious_then_scam(
    timed_client: AppClient, attesting: dict[str, str]
) -> None:
    verdicts = []
    for phone in ("0987000001", "0987000001", "0987000002", "0987000002", "0987000003"):
        assert await report(timed_client, attesting, f"id-{phone}", phone) == 201
        verdicts.append((await lookup(timed_client, attesting))["verdict"])
    assert verdicts == ["suspicious", "suspicious", "suspicious", "suspicious", "scam"]
    body = await lookup(timed_client, attesting, **{"Accept-Language": "en"})
    assert (body["report_count"], body["reporter_count"], body["score"]) == (5, 3, 90)
    assert body["reasons"] == ["3 verified reporters over 1 day"]


async def test_a_scam_from_reports_fades_then_expires_after_90_days(
    timed_client: AppClient, attesting: dict[str, str], clock: FakeClock
) -> None:
    for phone in ("0987000001", "0987000002", "0987000003"):
        await report(timed_client, attesting, "a", phone)
    # Each phone's unit halves every 60 days; three units are 2.25 at 24.9 days, too few to
    # be sure of a scam (docs/verdicts.md).
    clock.advance(days=24.8)
    body = await lookup(timed_client, attesting)
    assert body["verdict"] == "scam"
    assert 0 < int(str(body["score"])) < 90
    clock.advance(days=0.2)
    assert (await lookup(timed_client, attesting))["verdict"] == "suspicious"
    clock.advance(days=66)  # 91 days: the phones' words have left the window
    body = await lookup(timed_client, attesting)
    assert (body["verdict"], body["score"], body["reporter_count"]) == ("unknown", 0, 0)
    assert body["report_count"] == 3  # the history stays
    assert "reasons" not in body


async def test_reporters_fall_out_of_the_window_one_by_one(
    timed_client: AppClient, attesting: dict[str, str], clock: FakeClock
) -> None:
    await report(timed_client, attesting, "a", "0987000001")
    clock.advance(days=50)
    await report(timed_client, attesting, "b", "0987000002")
    clock.advance(days=30)
    await report(timed_client, attesting, "c", "0987000003")
    # Units 0.4 + 0.71 + 1 from three phones in the window: not sure enough of a scam.
    assert (await lookup(timed_client, attesting))["verdict"] == "suspicious"
    clock.advance(days=11)  # a's report is now 91 days old
    body = await lookup(timed_client, attesting)
    assert (body["verdict"], body["reporter_count"]) == ("suspicious", 2)
    await report(timed_client, attesting, "a", "0987000001")  # counts once, and recently
    body = await lookup(timed_client, attesting, **{"Accept-Language": "en"})
    assert (body["verdict"], body["reporter_count"]) == ("scam", 3)
    assert body["reasons"] == ["3 verified reporters over 91 days"]  # from a's first


async def test_an_admin_listing_does_not_expire(
    timed_client: AppClient, make_key: MakeKey, clock: FakeClock, auth: dict[str, str]
) -> None:
    admin = {"Authorization": f"Bearer {await make_key('admin')}"}
    response = await timed_client.put(
        f"/v1/numbers/{NUMBER}", json={"category": "investment"}, headers=admin
    )
    assert response.status == 200
    clock.advance(days=400)
    body = await lookup(timed_client, auth)
    assert (body["verdict"], body["score"], body["categories"]) == ("scam", 70, ["investment"])


@pytest.mark.parametrize("clock_offset_minutes", [0, -5])
async def test_a_report_after_a_delisting_counts_whatever_the_clocks_say(
    timed_client: AppClient,
    make_key: MakeKey,
    clock: FakeClock,
    auth: dict[str, str],
    clock_offset_minutes: int,
) -> None:
    admin = {"Authorization": f"Bearer {await make_key('admin')}"}
    for reporter in ("a", "b"):
        await report(timed_client, auth, reporter)
    response = await timed_client.delete(
        f"/v1/numbers/{NUMBER}", json={"reason": "owner proved it is theirs"}, headers=admin
    )
    assert (await response.json())["verdict"] == "unknown"
    # The next report is written after the delisting, but stamped at the same instant, or
    # earlier, as by a replica whose clock runs behind: it counts all the same.
    clock.advance(minutes=clock_offset_minutes)
    assert await report(timed_client, auth, "a", category="online_loan") == 201
    body = await lookup(timed_client, auth)
    assert (body["verdict"], body["report_count"], body["reporter_count"]) == ("suspicious", 1, 1)
    assert body["categories"] == ["online_loan"]


async def test_a_reporter_may_send_20_reports_a_day(
    timed_client: AppClient, auth: dict[str, str], clock: FakeClock
) -> None:
    for i in range(20):
        body = {"number": f"+8491{i:07d}", "category": "other", "reporter": "busy"}
        assert (await timed_client.post("/v1/reports", json=body, headers=auth)).status == 201
        clock.advance(minutes=10)
    response = await timed_client.post(
        "/v1/reports",
        json={"number": NUMBER, "category": "other", "reporter": "busy"},
        headers=auth,
    )
    assert response.status == 429
    assert response.content_type == "application/problem+json"
    # The first of the 20 was 200 minutes ago; it leaves the 24-hour window in 20 h 40 min.
    assert int(response.headers["Retry-After"]) == 20 * 3600 + 40 * 60
    assert await report(timed_client, auth, "someone-else") == 201
    clock.advance(hours=20, minutes=41)
    assert await report(timed_client, auth, "busy") == 201
    assert (await lookup(timed_client, auth))["reporter_count"] == 2


async def test_a_key_past_its_report_rate_gets_429(
    aiohttp_client: ClientFactory, config: Config, auth: dict[str, str]
) -> None:
    limited = replace(config, reports_per_key_per_second=0.5, report_burst_per_key=3)
    client = await aiohttp_client(create_app(limited))
    statuses = [await report(client, auth, f"r{i}") for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    response = await client.post(
        "/v1/reports",
        json={"number": NUMBER, "category": "other", "reporter": "r9"},
        headers=auth,
    )
    assert response.status == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 2
    assert (await lookup(client, auth))["report_count"] == 3


@pytest.mark.parametrize(
    ("accept_language", "content_language", "words"),
    [
        (None, "vi", "Giấy mời"),
        ("en-US,en;q=0.9", "en", "written invitation"),
        ("fr, vi;q=0.5", "vi", "Giấy mời"),
    ],
)
async def test_listed_numbers_carry_advice_in_the_callers_language(
    timed_client: AppClient,
    auth: dict[str, str],
    accept_language: str | None,
    content_language: str,
    words: str,
) -> None:
    assert "advice" not in await lookup(timed_client, auth)
    await report(timed_client, auth, "a")
    headers = {**auth, **({"Accept-Language": accept_language} if accept_language else {})}
    response = await timed_client.get(f"/v1/numbers/{NUMBER}", headers=headers)
    assert response.headers["Content-Language"] == content_language
    advice = (await response.json())["advice"]
    assert words.lower() in advice[0].lower()
    assert "02513.685.134" in advice[-1]


async def test_filter_hits_on_expired_numbers_count_as_stale(
    timed_client: AppClient, auth: dict[str, str], clock: FakeClock, metrics_auth: dict[str, str]
) -> None:
    await report(timed_client, auth, "a")
    await lookup(timed_client, auth)
    clock.advance(days=91)
    await lookup(timed_client, auth)
    metrics = await (await timed_client.get("/metrics", headers=metrics_auth)).text()
    assert 'callguard_filter_checks_total{outcome="listed"} 1.0' in metrics
    assert 'callguard_filter_checks_total{outcome="stale"} 1.0' in metrics


async def test_a_hot_number_is_judged_afresh_as_time_passes(
    timed_client: AppClient, attesting: dict[str, str], clock: FakeClock
) -> None:
    # Many voices: the judgement of the cached evidence is reused within a second, no longer.
    for i in range(20):
        assert await report(timed_client, attesting, f"r{i}", f"09870000{i:02d}") == 201
    first = await lookup(timed_client, attesting)
    assert (first["verdict"], first["score"]) == ("scam", 90)
    assert await lookup(timed_client, attesting) == first
    clock.advance(days=60)
    later = await lookup(timed_client, attesting)
    assert (later["verdict"], later["score"]) == ("scam", 90)  # 20 units halved: 10
    clock.advance(days=60)
    assert (await lookup(timed_client, attesting))["verdict"] == "unknown"
