"""Verdicts that cannot be forged, end to end through the HTTP API on the real database:
the two lanes, one phone one reporter, not-scam answers, earned weight, listed reporter
phones, brigades and the review queue, the limits (docs/verdicts.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from callguard.app import create_app
from callguard.config import Config
from callguard.retention import apply_retention

from tests.conftest import (
    VERIFIED_PHONES,
    AppClient,
    ClientFactory,
    FakeClock,
    MakeKey,
    report_verified,
)

NUMBER = "0912345678"
OTHER = "0933333333"
SHOP = "02838225678"
SHOP_2 = "02438251234"
Json = dict[str, Any]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def admin(make_key: MakeKey) -> dict[str, str]:
    return bearer(await make_key("admin"))


async def report(
    client: AppClient,
    headers: dict[str, str],
    reporter: str,
    number: str = NUMBER,
    phone: str | None = None,
) -> int:
    body = {"number": number, "category": "online_loan", "reporter": reporter}
    if phone is not None:
        body["reporter_phone"] = phone
    response = await client.post("/v1/reports", json=body, headers=headers)
    return response.status


async def not_scam(
    client: AppClient,
    headers: dict[str, str],
    reporter: str,
    number: str = NUMBER,
    phone: str | None = None,
) -> Json:
    body = {"number": number, "reporter": reporter, "verdict": "not_scam"}
    if phone is not None:
        body["reporter_phone"] = phone
    response = await client.post("/v1/feedback", json=body, headers=headers)
    assert response.status == 201, await response.text()
    answer: Json = await response.json()
    return answer


async def lookup(client: AppClient, headers: dict[str, str], number: str = NUMBER) -> Json:
    response = await client.get(
        f"/v1/numbers/{number}", headers={**headers, "Accept-Language": "en"}
    )
    assert response.status == 200
    body: Json = await response.json()
    return body


async def reviews(client: AppClient, admin: dict[str, str], **query: str) -> list[Json]:
    response = await client.get("/v1/reviews", params=query, headers=admin)
    assert response.status == 200
    found: list[Json] = (await response.json())["reviews"]
    return found


async def test_a_community_brigade_of_50_ids_never_makes_a_scam(
    timed_client: AppClient, make_key: MakeKey, admin: dict[str, str]
) -> None:
    keys = [bearer(await make_key("client")) for _ in range(3)]
    for i in range(50):
        assert await report(timed_client, keys[i % 3], f"brigade-{i}") == 201
    body = await lookup(timed_client, keys[0])
    assert (body["verdict"], body["reporter_count"], body["score"]) == ("suspicious", 50, 30)
    assert body["reasons"] == ["50 unverified reporters", "under review by moderators"]


async def test_a_community_key_cannot_vouch_for_a_phone(
    timed_client: AppClient, auth: dict[str, str]
) -> None:
    body = {
        "number": NUMBER,
        "category": "online_loan",
        "reporter": "a",
        "reporter_phone": "0987000001",
    }
    response = await timed_client.post("/v1/reports", json=body, headers=auth)
    assert response.status == 403
    problem = await response.json()
    assert problem["type"] == "urn:callguard:problem:cannot-vouch"
    feedback = {
        "number": NUMBER,
        "reporter": "a",
        "verdict": "not_scam",
        "reporter_phone": "0987000001",
    }
    response = await timed_client.post("/v1/feedback", json=feedback, headers=auth)
    assert response.status == 403
    assert (await lookup(timed_client, auth))["verdict"] == "unknown"  # nothing was stored


async def test_one_verified_phone_behind_three_ids_and_two_apps_counts_once(
    timed_client: AppClient, make_key: MakeKey
) -> None:
    apps = [bearer(await make_key("client", "attesting")) for _ in range(2)]
    for i, reporter in enumerate(("x", "y", "z")):
        assert await report(timed_client, apps[i % 2], reporter, phone="0987000001") == 201
    body = await lookup(timed_client, apps[0])
    assert (body["verdict"], body["reporter_count"], body["report_count"]) == ("suspicious", 1, 3)
    assert body["reasons"] == ["1 verified reporter over 1 day"]
    # The same phone written another way is the same reporter.
    assert await report(timed_client, apps[1], "w", phone="+84 987 000 001") == 201
    assert (await lookup(timed_client, apps[0]))["reporter_count"] == 1


async def test_three_verified_phones_make_a_scam_and_say_why_in_both_languages(
    timed_client: AppClient, attesting: dict[str, str]
) -> None:
    await report_verified(timed_client, attesting, NUMBER)
    body = await lookup(timed_client, attesting)
    assert (body["verdict"], body["score"]) == ("scam", 90)
    assert body["reasons"] == ["3 verified reporters over 1 day"]
    response = await timed_client.get(f"/v1/numbers/{NUMBER}", headers=attesting)
    assert (await response.json())["reasons"] == [
        "3 người báo cáo đã xác minh số điện thoại, trong 1 ngày"
    ]


async def test_verified_not_scam_answers_outweigh_a_smear(
    timed_client: AppClient, attesting: dict[str, str], auth: dict[str, str]
) -> None:
    await report_verified(timed_client, attesting, SHOP)
    assert (await lookup(timed_client, auth, SHOP))["verdict"] == "scam"
    await not_scam(timed_client, attesting, "friend-1", SHOP, phone="0987111111")
    answer = await not_scam(timed_client, attesting, "friend-2", SHOP, phone="0987222222")
    assert answer["verdict"] == "suspicious"
    body = await lookup(timed_client, auth, SHOP)
    assert body["reasons"] == ["3 verified reporters over 1 day", "2 not-scam answers"]


async def test_community_answers_cannot_clear_a_scam_that_verified_phones_made(
    timed_client: AppClient, attesting: dict[str, str], auth: dict[str, str]
) -> None:
    await report_verified(timed_client, attesting, NUMBER)
    for i in range(30):
        await not_scam(timed_client, auth, f"scammer-{i}")
    body = await lookup(timed_client, auth)
    assert body["verdict"] == "scam"
    assert body["reasons"][-1] == "30 not-scam answers"


async def test_a_reporter_phone_listed_as_a_scam_counts_for_nothing(
    timed_client: AppClient, attesting: dict[str, str], admin: dict[str, str]
) -> None:
    scammer = VERIFIED_PHONES[0]
    await report_verified(timed_client, attesting, NUMBER)
    assert (await lookup(timed_client, attesting))["verdict"] == "scam"
    # The first reporter's own phone is listed: its report stops counting, at once.
    response = await timed_client.put(
        f"/v1/numbers/{scammer}", json={"category": "online_loan"}, headers=admin
    )
    assert response.status == 200
    body = await lookup(timed_client, attesting)
    assert (body["verdict"], body["reasons"]) == (
        "suspicious",
        ["2 verified reporters over 1 day"],
    )
    # A listed phone reporting afresh counts for nothing either.
    await report(timed_client, attesting, "again", OTHER, phone=scammer)
    assert (await lookup(timed_client, attesting, OTHER))["verdict"] == "unknown"
    # Delisted, its word counts again.
    response = await timed_client.delete(
        f"/v1/numbers/{scammer}", json={"reason": "a mistake"}, headers=admin
    )
    assert response.status == 200
    assert (await lookup(timed_client, attesting))["verdict"] == "scam"


async def test_a_phone_that_is_a_scam_by_reports_counts_for_nothing(
    timed_client: AppClient, attesting: dict[str, str]
) -> None:
    scammer = "0966666666"
    await report_verified(timed_client, attesting, scammer, VERIFIED_PHONES[2:5])
    assert (await lookup(timed_client, attesting, scammer))["verdict"] == "scam"
    await report_verified(timed_client, attesting, NUMBER, [*VERIFIED_PHONES[:2], scammer])
    assert (await lookup(timed_client, attesting))["verdict"] == "suspicious"


async def test_weight_is_earned_from_later_trusted_outcomes(
    timed_client: AppClient, attesting: dict[str, str], admin: dict[str, str], clock: FakeClock
) -> None:
    good, late, smear = "0987100001", "0987100002", "0987100003"
    # `good` reports a number before a moderator lists it; `late` only after.
    await report(timed_client, attesting, "g", OTHER, phone=good)
    clock.advance(minutes=1)
    response = await timed_client.put(
        f"/v1/numbers/{OTHER}", json={"category": "online_loan"}, headers=admin
    )
    assert response.status == 200
    clock.advance(minutes=1)
    await report(timed_client, attesting, "l", OTHER, phone=late)
    await report(timed_client, attesting, "g", NUMBER, phone=good)
    assert (await lookup(timed_client, attesting))["score"] == 38  # 30 x 1.25
    await report(timed_client, attesting, "l", "0944444444", phone=late)
    assert (await lookup(timed_client, attesting, "0944444444"))["score"] == 30
    # `smear` reports two shops' numbers that are then verified: it loses weight, and no
    # longer counts towards the three phones a scam needs (once would leave it in standing:
    # an honest report of a spoofed number).
    for shop, owner in ((SHOP, "Cửa hàng Hoa Mai"), (SHOP_2, "Tiệm vàng Kim Long")):
        await report(timed_client, attesting, "s", shop, phone=smear)
        clock.advance(minutes=1)
        response = await timed_client.put(
            f"/v1/allowlist/{shop}", json={"owner": owner}, headers=admin
        )
        assert response.status == 200
        clock.advance(minutes=1)
        await not_scam(timed_client, attesting, "s", shop, phone=smear)  # too late to undo it
    target = "0955555555"
    await report_verified(timed_client, attesting, target, [smear, *VERIFIED_PHONES[:2]])
    body = await lookup(timed_client, attesting, target)
    assert (body["verdict"], body["reporter_count"]) == ("suspicious", 3)


async def test_a_burst_of_first_time_reporters_is_queued_and_a_brigade_decision_ends_it(
    timed_client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    for i in range(9):
        await report(timed_client, auth, f"new-{i}")
    assert await reviews(timed_client, admin) == []
    await report(timed_client, auth, "new-9")
    [queued] = await reviews(timed_client, admin, status="open")
    assert (queued["number"], queued["sign"], queued["status"]) == (
        "+84912345678",
        "newcomers",
        "open",
    )
    assert queued["detail"]["newcomers"] == 10
    response = await timed_client.post(
        f"/v1/reviews/{queued['review_id']}/decide",
        json={"decision": "brigade", "note": "ten new ids in a minute"},
        headers=admin,
    )
    assert response.status == 200
    assert (await response.json())["status"] == "brigade"
    assert (await lookup(timed_client, auth))["verdict"] == "unknown"
    audit = await (await timed_client.get("/v1/audit", headers=admin)).json()
    entry = audit["entries"][-1]
    assert (entry["action"], entry["number"], entry["reason"]) == (
        "review_brigade",
        "+84912345678",
        "ten new ids in a minute",
    )
    again = await timed_client.post(
        f"/v1/reviews/{queued['review_id']}/decide",
        json={"decision": "genuine", "note": "second thoughts"},
        headers=admin,
    )
    assert again.status == 409
    assert (await again.json())["type"] == "urn:callguard:problem:review-decided"


async def test_a_review_does_not_hold_back_a_campaign_reported_by_verified_phones(
    timed_client: AppClient, attesting: dict[str, str], admin: dict[str, str]
) -> None:
    phones = [f"09871000{i:02d}" for i in range(12)]
    await report_verified(timed_client, attesting, NUMBER, phones)
    [queued] = await reviews(timed_client, admin, status="open")
    assert queued["number"] == "+84912345678"
    body = await lookup(timed_client, attesting)
    assert body["verdict"] == "scam"
    assert body["reasons"] == ["12 verified reporters over 1 day", "under review by moderators"]
    response = await timed_client.post(
        f"/v1/reviews/{queued['review_id']}/decide",
        json={"decision": "genuine", "note": "a real loan-shark campaign"},
        headers=admin,
    )
    assert response.status == 200
    body = await lookup(timed_client, attesting)
    assert (body["verdict"], body["reasons"]) == ("scam", ["12 verified reporters over 1 day"])


async def test_one_key_far_above_its_usual_share_is_queued(
    timed_client: AppClient,
    make_key: MakeKey,
    admin: dict[str, str],
    clock: FakeClock,
) -> None:
    busy, usual = bearer(await make_key("client")), bearer(await make_key("client"))
    for i in range(60):  # the usual traffic: another app reporting other numbers
        await report(timed_client, usual, f"u{i}", f"09770{i:05d}")
    for i in range(10):  # reporters of the busy key who have reported before
        await report(timed_client, busy, f"b{i}", f"09880{i:05d}")
    clock.advance(hours=1)
    for i in range(10):
        await report(timed_client, busy, f"b{i}")
    [queued] = await reviews(timed_client, admin)
    assert (queued["sign"], queued["detail"]["newcomers"]) == ("key_share", 0)
    assert queued["detail"]["top_key_reports"] == 10


async def test_a_verified_phone_may_send_20_reports_a_day_across_apps_and_ids(
    timed_client: AppClient, make_key: MakeKey
) -> None:
    apps = [bearer(await make_key("client", "attesting")) for _ in range(2)]
    for i in range(20):
        number = f"09770{i:05d}"
        assert await report(timed_client, apps[i % 2], f"id-{i}", number, phone="0987000001") == 201
    assert await report(timed_client, apps[0], "fresh-id", phone="0987000001") == 429
    body = {
        "number": NUMBER,
        "reporter": "x",
        "verdict": "not_scam",
        "reporter_phone": "0987000001",
    }
    response = await timed_client.post("/v1/feedback", json=body, headers=apps[1])
    assert response.status == 429


async def test_each_key_has_a_daily_cap(
    timed_client: AppClient, make_key: MakeKey, clock: FakeClock
) -> None:
    small_app = bearer(await make_key("client", "community", 3))
    statuses = [await report(timed_client, small_app, f"r{i}") for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    response = await timed_client.post(
        "/v1/reports",
        json={"number": NUMBER, "category": "other", "reporter": "r9"},
        headers=small_app,
    )
    assert response.status == 429
    assert "daily cap" in (await response.json())["detail"]
    assert (await lookup(timed_client, small_app))["report_count"] == 3
    clock.advance(days=1)
    assert await report(timed_client, small_app, "tomorrow") == 201


async def test_reports_stored_before_lanes_are_community_reports(
    aiohttp_client: ClientFactory,
    config: Config,
    pool: asyncpg.Pool,
    auth: dict[str, str],
    clock: FakeClock,
) -> None:
    # Rows as the earlier schema wrote them, with no lane and no stance, read by a service
    # started afterwards.
    await pool.execute(
        "INSERT INTO community_listings (number, report_count, categories, first_reported_at, "
        "last_reported_at) VALUES (84912345678, 3, '{online_loan}', $1, $1)",
        clock(),
    )
    for reporter in (b"a", b"b", b"c"):
        await pool.execute(
            "INSERT INTO number_reporters (number, reporter_hash, first_reported_at, "
            "last_reported_at, epoch) VALUES (84912345678, $1, $2, $2, 0)",
            reporter,
            clock(),
        )
    client = await aiohttp_client(create_app(config, clock))
    body = await lookup(client, auth)
    assert (body["verdict"], body["reasons"]) == ("suspicious", ["3 unverified reporters"])


async def test_a_reporter_phone_an_import_lists_counts_for_nothing(
    timed_client: AppClient, attesting: dict[str, str], make_key: MakeKey
) -> None:
    await report_verified(timed_client, attesting, NUMBER)
    operator = bearer(await make_key("operator"))
    listed = f"number,category\n{VERIFIED_PHONES[1]},online_loan\n"
    response = await timed_client.post(
        "/v1/imports?source=viettel",
        data=listed.encode(),
        headers={**operator, "Content-Type": "text/csv"},
    )
    assert response.status == 201, await response.text()
    assert (await lookup(timed_client, attesting))["verdict"] == "suspicious"


async def test_who_sent_a_not_scam_answer_is_erased_after_retention(
    timed_client: AppClient,
    auth: dict[str, str],
    pool: asyncpg.Pool,
    config: Config,
    clock: FakeClock,
) -> None:
    await not_scam(timed_client, auth, "friend", SHOP)
    answer = "SELECT reporter_hash IS NOT NULL, note FROM feedback"
    clock.advance(days=179)
    await apply_retention(pool, config, clock())
    assert tuple(await pool.fetchrow(answer)) == (True, None)
    await timed_client.post(
        "/v1/feedback",
        json={"number": OTHER, "reporter": "f2", "verdict": "not_scam", "note": "my bank"},
        headers=auth,
    )
    clock.advance(days=2)  # the first answer is 181 days old, the second 2 days
    await apply_retention(pool, config, clock())
    rows = await pool.fetch("SELECT reporter_hash IS NOT NULL, note FROM feedback ORDER BY id")
    assert [tuple(row) for row in rows] == [(False, None), (True, "my bank")]
    assert await pool.fetchval("SELECT count(*) FROM number_reporters") == 1


async def test_one_network_far_above_its_usual_share_is_queued(
    aiohttp_client: ClientFactory,
    config: Config,
    clock: FakeClock,
    auth: dict[str, str],
    admin: dict[str, str],
) -> None:
    behind_proxy = replace(config, trusted_proxies=frozenset({"127.0.0.1"}))
    client = await aiohttp_client(create_app(behind_proxy, clock))

    async def report_from(address: str, reporter: str, number: str = NUMBER) -> None:
        body = {"number": number, "category": "online_loan", "reporter": reporter}
        headers = {**auth, "X-Forwarded-For": address}
        assert (await client.post("/v1/reports", json=body, headers=headers)).status == 201

    for i in range(60):  # the usual traffic: one app's users on many networks
        await report_from(f"198.51.{i}.7", f"u{i}", f"09770{i:05d}")
    for i in range(10):  # reporters who have reported before, from their own networks
        await report_from(f"192.0.{i}.9", f"b{i}", f"09880{i:05d}")
    clock.advance(hours=1)
    for i in range(10):  # now all from one /24
        await report_from(f"203.0.113.{i}", f"b{i}")
    [queued] = await reviews(client, admin)
    assert (queued["sign"], queued["detail"]["newcomers"]) == ("network_share", 0)
    assert queued["detail"]["top_network_reports"] == 10
