"""Moderation over HTTP: the allowlist, listing and delisting, appeals, the audit log, roles."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from callguard import store
from callguard.app import create_app
from callguard.config import Config

from tests.conftest import AppClient, ClientFactory, MakeKey, report_verified

HOTLINE = "+842513685134"
"""An official hotline, typed in the tests as people write it: 02513.685.134."""
SCAM = "+84912345678"
OTHER = "+84987654321"
PROBLEM = "application/problem+json"


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def admin(make_key: MakeKey) -> dict[str, str]:
    """Authorization headers of an admin key (named "test admin")."""
    return headers(await make_key("admin"))


async def admin_key_id(pool: asyncpg.Pool) -> int:
    key_id: int = await pool.fetchval("SELECT id FROM api_keys WHERE name = 'test admin'")
    return key_id


async def report(
    client: AppClient,
    auth: dict[str, str],
    number: str,
    reporter: str,
    category: str = "impersonation_authority",
) -> dict[str, Any]:
    """Report a number; the 201 body."""
    response = await client.post(
        "/v1/reports",
        json={"number": number, "category": category, "reporter": reporter},
        headers=auth,
    )
    assert response.status == 201
    body: dict[str, Any] = await response.json()
    return body


async def lookup(client: AppClient, auth: dict[str, str], number: str) -> dict[str, Any]:
    response = await client.get(f"/v1/numbers/{number}", headers=auth)
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def get_json(client: AppClient, auth: dict[str, str], path: str) -> dict[str, Any]:
    """GET a path that must answer 200; its body."""
    response = await client.get(path, headers=auth)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def list_trusted(
    client: AppClient, admin: dict[str, str], number: str, note: str = "Công an tỉnh báo"
) -> dict[str, Any]:
    response = await client.put(
        f"/v1/numbers/{number}", json={"category": "online_loan", "note": note}, headers=admin
    )
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def appeal(client: AppClient, auth: dict[str, str], number: str = SCAM) -> dict[str, Any]:
    """File an appeal; the 201 body."""
    response = await client.post(
        "/v1/appeals",
        json={
            "number": number,
            "contact": "chu.thue.bao@example.vn",
            "message": "Số này là của tiệm bánh nhà tôi, không phải lừa đảo.",
        },
        headers=auth,
    )
    assert response.status == 201
    body: dict[str, Any] = await response.json()
    return body


async def resolve(
    client: AppClient, admin: dict[str, str], appeal_id: int | str, decision: str, note: str
) -> Any:
    return await client.post(
        f"/v1/appeals/{appeal_id}/resolve",
        json={"decision": decision, "note": note},
        headers=admin,
    )


async def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status; its body."""
    assert response.status == status, await response.text()
    assert response.content_type == PROBLEM
    body: dict[str, Any] = await response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


# --- the allowlist ------------------------------------------------------------


async def allowlist(client: AppClient, admin: dict[str, str]) -> None:
    """Put the hotline on the allowlist, written as a person types it."""
    response = await client.put(
        "/v1/allowlist/02513.685.134",
        json={"owner": "Sở Công Thương Đồng Nai", "note": "Đường dây nóng"},
        headers=admin,
    )
    assert response.status == 200
    assert await response.json() == {
        "number": HOTLINE,
        "owner": "Sở Công Thương Đồng Nai",
        "note": "Đường dây nóng",
        "verdict": "verified",
    }


async def test_an_allowlisted_number_is_verified_whatever_its_reports(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    await allowlist(client, admin)
    verified = await lookup(client, auth, HOTLINE)
    assert verified["verdict"] == "verified"
    assert verified["owner"] == "Sở Công Thương Đồng Nai"
    assert "advice" not in verified and "sources" not in verified

    categories = ["impersonation_authority", "online_loan", "investment"]
    for reporter, category in enumerate(categories):
        body = await report(client, auth, "02513685134", f"r{reporter}", category)
        assert (body["number"], body["verdict"]) == (HOTLINE, "verified")
    still = await lookup(client, auth, "(+84) 251 3685 134")
    assert still["verdict"] == "verified"
    assert still["owner"] == "Sở Công Thương Đồng Nai"
    assert "advice" not in still

    entries = (await get_json(client, admin, "/v1/allowlist"))["entries"]
    assert len(entries) == 1
    assert entries[0]["number"] == HOTLINE
    assert entries[0]["owner"] == "Sở Công Thương Đồng Nai"
    assert entries[0]["note"] == "Đường dây nóng"
    assert entries[0]["spoofing_reports"] == 3

    entry = await get_json(client, admin, "/v1/allowlist/02513685134")
    assert entry["number"] == HOTLINE and entry["spoofing_reports"] == 3
    flagged = entry["flagged_reports"]
    assert [report["category"] for report in flagged] == categories[::-1]  # newest first
    ids = [report["report_id"] for report in flagged]
    assert ids == sorted(ids, reverse=True)


async def test_removing_a_number_from_the_allowlist_lets_its_reports_count(
    client: AppClient, auth: dict[str, str], admin: dict[str, str], attesting: dict[str, str]
) -> None:
    await allowlist(client, admin)
    await report_verified(client, attesting, HOTLINE)  # three verified phones

    response = await client.delete("/v1/allowlist/+84 251 3685 134", headers=admin)
    assert response.status == 204
    after = await lookup(client, auth, HOTLINE)
    assert after["verdict"] == "scam"
    assert (after["reporter_count"], after["report_count"]) == (3, 3)
    assert "owner" not in after
    assert after["advice"]

    await assert_problem(await client.delete(f"/v1/allowlist/{HOTLINE}", headers=admin), 404)
    await assert_problem(await client.get(f"/v1/allowlist/{HOTLINE}", headers=admin), 404)
    assert (await get_json(client, admin, "/v1/allowlist"))["entries"] == []


async def test_an_unlisted_number_has_no_allowlist_entry(
    client: AppClient, admin: dict[str, str]
) -> None:
    await allowlist(client, admin)
    await assert_problem(await client.get("/v1/allowlist/0912345678", headers=admin), 404)


@pytest.mark.parametrize(
    ("number", "body", "words"),
    [
        ("02513685134", {"note": "no owner"}, "'owner' is required"),
        ("02513685134", {"owner": ""}, "'owner' must not be empty"),
        ("02513685134", {"owner": "x", "phone": "y"}, "Unknown field"),
        ("12", {"owner": "Sở Công Thương"}, "not a valid phone number"),
    ],
)
async def test_bad_allowlist_entries_are_refused(
    client: AppClient,
    auth: dict[str, str],
    admin: dict[str, str],
    number: str,
    body: dict[str, str],
    words: str,
) -> None:
    response = await client.put(f"/v1/allowlist/{number}", json=body, headers=admin)
    assert words in (await assert_problem(response, 400))["detail"]
    assert (await get_json(client, admin, "/v1/allowlist"))["entries"] == []
    assert (await lookup(client, auth, HOTLINE))["verdict"] == "unknown"


# --- trusted listings and delisting ---------------------------------------------


async def test_an_admin_lists_a_number_as_a_scam(
    client: AppClient, auth: dict[str, str], admin: dict[str, str], make_key: MakeKey
) -> None:
    listed = await list_trusted(client, admin, "0912 345 678")
    assert listed["number"] == SCAM
    assert listed["verdict"] == "scam"
    assert listed["sources"] == ["moderator"]  # the admin key's name is not shown
    assert listed["categories"] == ["online_loan"]
    # A second admin listing it too is the same moderators' word.
    await list_trusted(client, headers(await make_key("admin")), SCAM)

    for form in (SCAM, "0912345678", "0084912345678"):
        found = await lookup(client, auth, form)
        assert found["verdict"] == "scam"
        assert found["sources"] == ["moderator"]
        assert "test admin" not in json.dumps(found)
        assert found["advice"] and all(isinstance(text, str) and text for text in found["advice"])
    # The audit log, which only admins read, names the key.
    entries = (await get_json(client, admin, "/v1/audit"))["entries"]
    assert {entry["detail"]["source"] for entry in entries} == {"admin:test admin"}


async def test_an_unknown_category_is_not_listed(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    response = await client.put(f"/v1/numbers/{SCAM}", json={"category": "lottery"}, headers=admin)
    assert "Unknown category" in (await assert_problem(response, 422))["detail"]
    assert (await lookup(client, auth, SCAM))["verdict"] == "unknown"


async def test_an_admin_delists_a_trusted_listing(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    await list_trusted(client, admin, SCAM)
    response = await client.delete(
        "/v1/numbers/0912345678", json={"reason": "Nhầm số"}, headers=admin
    )
    assert response.status == 200
    body = await response.json()
    assert (body["number"], body["verdict"]) == (SCAM, "unknown")
    assert "sources" not in body and "advice" not in body

    after = await lookup(client, auth, SCAM)
    assert after["verdict"] == "unknown"
    assert "sources" not in after


async def test_delisting_an_unlisted_number_is_not_found(
    client: AppClient, admin: dict[str, str]
) -> None:
    response = await client.delete(f"/v1/numbers/{OTHER}", json={"reason": "x"}, headers=admin)
    await assert_problem(response, 404)


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": 7}, {"note": "x"}])
async def test_delisting_needs_a_reason(
    client: AppClient, auth: dict[str, str], admin: dict[str, str], body: object
) -> None:
    await list_trusted(client, admin, SCAM)
    response = await client.delete(f"/v1/numbers/{SCAM}", json=body, headers=admin)
    await assert_problem(response, 400)
    assert (await lookup(client, auth, SCAM))["verdict"] == "scam"


async def test_a_delisted_community_listing_counts_only_new_reports(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    await report(client, auth, SCAM, "r1")
    assert (await report(client, auth, SCAM, "r2"))["verdict"] == "suspicious"

    response = await client.delete(f"/v1/numbers/{SCAM}", json={"reason": "x"}, headers=admin)
    assert response.status == 200
    assert (await response.json())["verdict"] == "unknown"
    delisted = await lookup(client, auth, SCAM)
    assert delisted["verdict"] == "unknown"
    assert (delisted["report_count"], delisted["reporter_count"]) == (0, 0)
    assert delisted["categories"] == []

    assert (await report(client, auth, SCAM, "r1", "investment"))["verdict"] == "suspicious"
    fresh = await lookup(client, auth, SCAM)
    assert fresh["verdict"] == "suspicious"
    assert (fresh["report_count"], fresh["reporter_count"]) == (1, 1)
    assert fresh["categories"] == ["investment"]


# --- appeals ----------------------------------------------------------------------


async def test_an_appeal_is_filed_with_a_client_key(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    filed = await appeal(client, auth, "0912.345.678")
    assert isinstance(filed["appeal_id"], int)
    assert filed["number"] == SCAM
    assert filed["status"] == "open"
    assert filed["contact"] == "chu.thue.bao@example.vn"
    assert filed["resolved_at"] is None

    listed = (await get_json(client, admin, "/v1/appeals?status=open"))["appeals"]
    assert listed == [filed]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"number": None}, "'number' is required"),
        ({"contact": None}, "'contact' is required"),
        ({"message": None}, "'message' is required"),
        ({"contact": "   "}, "'contact' must not be empty"),
        ({"message": 42}, "'message' must be a string"),
        ({"message": "x" * 4001}, "longer than 4000"),
        ({"urgent": True}, "Unknown field"),
        ({"number": "12"}, "not a valid phone number"),
        ({"number": "gọi lại sau"}, "not a valid phone number"),
    ],
)
async def test_invalid_appeals_are_refused(
    client: AppClient,
    auth: dict[str, str],
    admin: dict[str, str],
    fields: dict[str, object],
    words: str,
) -> None:
    body = {"number": SCAM, "contact": "0912000000", "message": "Xin gỡ số", **fields}
    body = {name: value for name, value in body.items() if value is not None}
    response = await client.post("/v1/appeals", json=body, headers=auth)
    assert words in (await assert_problem(response, 400))["detail"]
    assert (await get_json(client, admin, "/v1/appeals"))["appeals"] == []


@pytest.mark.parametrize(
    "query", ["status=bogus", "status=OPEN", "limit=0", "limit=1001", "after=-1", "after=x"]
)
async def test_bad_appeal_queries_are_refused(
    client: AppClient, admin: dict[str, str], query: str
) -> None:
    await assert_problem(await client.get(f"/v1/appeals?{query}", headers=admin), 400)


async def test_appeals_are_paged_oldest_first(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    ids = [(await appeal(client, auth, number))["appeal_id"] for number in (SCAM, OTHER, HOTLINE)]
    first = (await get_json(client, admin, "/v1/appeals?limit=2"))["appeals"]
    assert [item["appeal_id"] for item in first] == ids[:2]
    assert [item["number"] for item in first] == [SCAM, OTHER]
    rest = (await get_json(client, admin, f"/v1/appeals?after={ids[1]}&limit=2"))["appeals"]
    assert [item["appeal_id"] for item in rest] == ids[2:]
    assert (await get_json(client, admin, f"/v1/appeals?after={ids[2]}"))["appeals"] == []


async def test_a_delist_decision_delists_the_number_at_once(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    await list_trusted(client, admin, SCAM)
    for reporter in ("r1", "r2", "r3"):
        await report(client, auth, SCAM, reporter)
    assert (await lookup(client, auth, SCAM))["verdict"] == "scam"
    filed = await appeal(client, auth, SCAM)

    response = await resolve(client, admin, filed["appeal_id"], "delist", "Đã xác minh chủ số")
    assert response.status == 200
    decided = await response.json()
    assert decided["appeal_id"] == filed["appeal_id"]
    assert decided["status"] == "delisted"
    assert decided["resolution_note"] == "Đã xác minh chủ số"
    assert decided["resolved_at"] is not None
    after = await lookup(client, auth, SCAM)
    assert after["verdict"] == "unknown"
    assert (after["report_count"], after["reporter_count"]) == (0, 0)
    assert "sources" not in after

    again = await resolve(client, admin, filed["appeal_id"], "reject", "Đổi ý")
    assert "delisted" in (await assert_problem(again, 409))["detail"]
    assert (await get_json(client, admin, "/v1/appeals?status=open"))["appeals"] == []
    assert (await get_json(client, admin, "/v1/appeals?status=delisted"))["appeals"] == [decided]


async def test_a_reject_decision_leaves_the_number_listed(
    client: AppClient, auth: dict[str, str], admin: dict[str, str], make_key: MakeKey
) -> None:
    await list_trusted(client, admin, SCAM)
    other_app = headers(await make_key("client"))
    first, second = await appeal(client, auth, SCAM), await appeal(client, other_app, SCAM)

    response = await resolve(client, admin, second["appeal_id"], "reject", "Nhiều báo cáo xác thực")
    assert response.status == 200
    assert (await response.json())["status"] == "rejected"
    assert (await lookup(client, auth, SCAM))["verdict"] == "scam"

    again = await resolve(client, admin, second["appeal_id"], "delist", "Đổi ý")
    await assert_problem(again, 409)
    assert (await lookup(client, auth, SCAM))["verdict"] == "scam"
    still_open = (await get_json(client, admin, "/v1/appeals?status=open"))["appeals"]
    assert [item["appeal_id"] for item in still_open] == [first["appeal_id"]]
    rejected = (await get_json(client, admin, "/v1/appeals?status=rejected"))["appeals"]
    assert [item["appeal_id"] for item in rejected] == [second["appeal_id"]]


async def test_an_appeal_is_decided_once_when_two_admins_decide_at_once(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    await list_trusted(client, admin, SCAM)
    filed = await appeal(client, auth, SCAM)
    responses = await asyncio.gather(
        resolve(client, admin, filed["appeal_id"], "delist", "Đã xác minh"),
        resolve(client, admin, filed["appeal_id"], "reject", "Không có căn cứ"),
    )
    assert sorted(response.status for response in responses) == [200, 409]
    (winner,) = [response for response in responses if response.status == 200]
    decided = await winner.json()
    expected = "unknown" if decided["status"] == "delisted" else "scam"
    assert (await lookup(client, auth, SCAM))["verdict"] == expected
    actions = [entry["action"] for entry in (await get_json(client, admin, "/v1/audit"))["entries"]]
    assert actions.count("appeal_delisted") + actions.count("appeal_rejected") == 1


async def test_a_key_has_one_open_appeal_per_number(
    client: AppClient, auth: dict[str, str], admin: dict[str, str], make_key: MakeKey
) -> None:
    await list_trusted(client, admin, SCAM)
    filed = await appeal(client, auth, SCAM)
    body = {"number": "0912345678", "contact": "x@example.vn", "message": "x" * 4000}
    for _ in range(3):
        again = await client.post("/v1/appeals", json=body, headers=auth)
        problem = await assert_problem(again, 409)
        assert problem["type"] == "urn:callguard:problem:appeal-open"
        assert problem["appeal_id"] == filed["appeal_id"]
    other_app = await appeal(client, headers(await make_key("client")), SCAM)
    other_number = await appeal(client, auth, OTHER)
    open_ids = [
        item["appeal_id"]
        for item in (await get_json(client, admin, "/v1/appeals?status=open"))["appeals"]
    ]
    assert open_ids == [filed["appeal_id"], other_app["appeal_id"], other_number["appeal_id"]]
    # Once decided, the key may appeal the number again.
    response = await resolve(client, admin, filed["appeal_id"], "reject", "Không có căn cứ")
    assert response.status == 200
    assert (await appeal(client, auth, SCAM))["appeal_id"] > other_number["appeal_id"]


async def test_appeals_are_limited_per_key(
    aiohttp_client: ClientFactory, config: Config, auth: dict[str, str], make_key: MakeKey
) -> None:
    config = replace(config, appeal_burst_per_key=3, appeals_per_key_per_second=0.001)
    client = await aiohttp_client(create_app(config))
    for number in (SCAM, OTHER, HOTLINE):
        await appeal(client, auth, number)
    body = {"number": "0911111111", "contact": "x@example.vn", "message": "x"}
    response = await client.post("/v1/appeals", json=body, headers=auth)
    await assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    await appeal(client, headers(await make_key("client")), "0911111111")


async def test_the_schema_closes_duplicate_open_appeals_made_before_the_rule(
    pool: asyncpg.Pool, make_key: MakeKey
) -> None:
    await make_key("client")
    async with pool.acquire() as conn:
        # As a database from before the rule: no index, three open appeals by one key.
        await conn.execute("DROP INDEX appeals_open_idx")
        for number in (84912345678, 84912345678, 84912345678, 84987654321):
            await conn.execute(
                "INSERT INTO appeals (number, contact, message, created_at, api_key_id) "
                "VALUES ($1, 'c', 'm', now(), 1)",
                number,
            )
        for _ in range(2):  # idempotent: the second start changes nothing
            await store.database.apply_schema(conn)
            rows = await conn.fetch("SELECT id, status, resolution_note FROM appeals ORDER BY id")
            assert [tuple(row) for row in rows] == [
                (1, "open", None),
                (2, "rejected", "duplicate of open appeal 1"),
                (3, "rejected", "duplicate of open appeal 1"),
                (4, "open", None),
            ]


@pytest.mark.parametrize("appeal_id", ["999", "abc", "-1", "1.0", "9" * 19])
async def test_resolving_a_missing_appeal_is_not_found(
    client: AppClient, auth: dict[str, str], admin: dict[str, str], appeal_id: str
) -> None:
    await appeal(client, auth, SCAM)  # appeal 1 exists; none of these names it
    await assert_problem(await resolve(client, admin, appeal_id, "delist", "x"), 404)


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "approve", "note": "x"},
        {"decision": "DELIST", "note": "x"},
        {"note": "x"},
        {"decision": True, "note": "x"},
        {"decision": "delist", "note": "x", "extra": 1},
    ],
)
async def test_a_bad_decision_is_refused(
    client: AppClient,
    auth: dict[str, str],
    admin: dict[str, str],
    body: dict[str, object],
) -> None:
    await list_trusted(client, admin, SCAM)
    filed = await appeal(client, auth, SCAM)
    response = await client.post(
        f"/v1/appeals/{filed['appeal_id']}/resolve", json=body, headers=admin
    )
    await assert_problem(response, 400)
    assert (await get_json(client, admin, "/v1/appeals?status=open"))["appeals"] == [filed]
    assert (await lookup(client, auth, SCAM))["verdict"] == "scam"


# --- the audit log ------------------------------------------------------------------


async def moderate_everything(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> tuple[int, int]:
    """One of every moderation action, in a known order; the two appeals' ids."""
    await allowlist(client, admin)
    response = await client.delete(
        "/v1/allowlist/02513685134", json={"reason": "Số đã ngừng hoạt động"}, headers=admin
    )
    assert response.status == 204
    await list_trusted(client, admin, SCAM, note="Công an tỉnh báo")
    response = await client.delete(f"/v1/numbers/{SCAM}", json={"reason": "Nhầm số"}, headers=admin)
    assert response.status == 200
    await list_trusted(client, admin, OTHER, note="Vay tiền qua app")
    delisted, rejected = await appeal(client, auth, OTHER), await appeal(client, auth, SCAM)
    response = await resolve(client, admin, delisted["appeal_id"], "delist", "Chủ số đã xác minh")
    assert response.status == 200
    response = await resolve(client, admin, rejected["appeal_id"], "reject", "Không có căn cứ")
    assert response.status == 200
    return delisted["appeal_id"], rejected["appeal_id"]


async def test_the_audit_log_records_every_moderation_action(
    client: AppClient, auth: dict[str, str], admin: dict[str, str], pool: asyncpg.Pool
) -> None:
    delisted, rejected = await moderate_everything(client, auth, admin)
    entries = (await get_json(client, admin, "/v1/audit"))["entries"]
    assert [(entry["action"], entry["number"], entry["reason"]) for entry in entries] == [
        ("appeal_rejected", SCAM, "Không có căn cứ"),
        ("appeal_delisted", OTHER, "Chủ số đã xác minh"),
        ("delist", OTHER, f"appeal {delisted}: Chủ số đã xác minh"),
        ("list", OTHER, "Vay tiền qua app"),
        ("delist", SCAM, "Nhầm số"),
        ("list", SCAM, "Công an tỉnh báo"),
        ("allowlist_remove", HOTLINE, "Số đã ngừng hoạt động"),
        ("allowlist_add", HOTLINE, "Đường dây nóng"),
    ]
    ids = [entry["id"] for entry in entries]
    assert ids == sorted(ids, reverse=True)
    key_id = await admin_key_id(pool)
    assert {entry["api_key_id"] for entry in entries} == {key_id}
    assert {entry["actor"] for entry in entries} == {f"key:{key_id}:test admin"}
    assert entries[0]["detail"] == {"appeal_id": rejected}
    assert entries[5]["detail"] == {"source": "admin:test admin", "category": "online_loan"}


async def test_the_audit_log_pages_backwards(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    await moderate_everything(client, auth, admin)
    everything = (await get_json(client, admin, "/v1/audit"))["entries"]
    paged = (await get_json(client, admin, "/v1/audit?limit=1"))["entries"]
    while True:
        page = (await get_json(client, admin, f"/v1/audit?before={paged[-1]['id']}&limit=1"))[
            "entries"
        ]
        if not page:
            break
        assert len(page) == 1
        paged += page
    assert paged == everything
    assert len(everything) == 8


@pytest.mark.parametrize("query", ["before=0", "before=x", "limit=0", "limit=1001"])
async def test_bad_audit_queries_are_refused(
    client: AppClient, admin: dict[str, str], query: str
) -> None:
    await assert_problem(await client.get(f"/v1/audit?{query}", headers=admin), 400)


async def test_failed_moderation_is_not_audited(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    await client.delete(f"/v1/numbers/{SCAM}", json={"reason": "x"}, headers=admin)
    await client.delete(f"/v1/allowlist/{SCAM}", headers=admin)
    await client.put(f"/v1/numbers/{SCAM}", json={"category": "lottery"}, headers=admin)
    await resolve(client, admin, 999, "delist", "x")
    assert (await get_json(client, admin, "/v1/audit"))["entries"] == []


# --- roles ----------------------------------------------------------------------------

MODERATION_CALLS = [
    ("GET", "/v1/allowlist", None),
    ("GET", f"/v1/allowlist/{SCAM}", None),
    ("PUT", f"/v1/allowlist/{SCAM}", {"owner": "Kẻ gian", "note": "tự xưng tổng đài"}),
    ("DELETE", f"/v1/allowlist/{SCAM}", {"reason": "x"}),
    ("PUT", f"/v1/numbers/{OTHER}", {"category": "online_loan", "note": "x"}),
    ("DELETE", f"/v1/numbers/{SCAM}", {"reason": "Tôi là chủ số"}),
    ("GET", "/v1/appeals", None),
    ("POST", "/v1/appeals/{appeal_id}/resolve", {"decision": "delist", "note": "x"}),
    ("GET", "/v1/audit", None),
    ("GET", "/v1/reviews", None),
    ("POST", "/v1/reviews/{review_id}/decide", {"decision": "brigade", "note": "x"}),
]
CALL_IDS = [f"{method} {path}" for method, path, _ in MODERATION_CALLS]
BRIGADED = "+84933333333"
"""A number that ten first-time reporters report within minutes: it is queued for review."""


async def call(
    client: AppClient,
    method: str,
    path: str,
    body: object,
    auth: dict[str, str],
    appeal_id: int = 1,
    review_id: int = 1,
) -> Any:
    return await client.request(
        method, path.format(appeal_id=appeal_id, review_id=review_id), json=body, headers=auth
    )


async def queue_for_review(client: AppClient, auth: dict[str, str], admin: dict[str, str]) -> Any:
    """Ten first-time reporters on BRIGADED within minutes: its open review."""
    for reporter in range(10):
        await report(client, auth, BRIGADED, f"new-{reporter}")
    (review,) = (await get_json(client, admin, "/v1/reviews?status=open"))["reviews"]
    assert (review["number"], review["sign"]) == (BRIGADED, "newcomers")
    return review


@pytest.mark.parametrize("role", ["client", "operator"])
@pytest.mark.parametrize(("method", "path", "body"), MODERATION_CALLS, ids=CALL_IDS)
async def test_moderation_is_forbidden_below_admin(
    client: AppClient,
    auth: dict[str, str],
    admin: dict[str, str],
    attesting: dict[str, str],
    make_key: MakeKey,
    role: str,
    method: str,
    path: str,
    body: object,
) -> None:
    await report_verified(client, attesting, SCAM)  # three verified phones make it a scam
    filed = await appeal(client, auth, SCAM)
    queued = await queue_for_review(client, auth, admin)

    response = await call(
        client,
        method,
        path,
        body,
        headers(await make_key(role)),
        filed["appeal_id"],
        queued["review_id"],
    )
    problem = await assert_problem(response, 403)
    assert "admin" in problem["detail"]

    found = await lookup(client, auth, SCAM)
    assert (found["verdict"], found["report_count"]) == ("scam", 3)
    assert (await lookup(client, auth, OTHER))["verdict"] == "unknown"
    assert (await lookup(client, auth, BRIGADED))["verdict"] == "suspicious"
    assert (await get_json(client, admin, "/v1/appeals?status=open"))["appeals"] == [filed]
    assert (await get_json(client, admin, "/v1/reviews"))["reviews"] == [queued]
    assert (await get_json(client, admin, "/v1/allowlist"))["entries"] == []
    assert (await get_json(client, admin, "/v1/audit"))["entries"] == []


@pytest.mark.parametrize(("method", "path", "body"), MODERATION_CALLS, ids=CALL_IDS)
@pytest.mark.parametrize("auth_header", [{}, {"Authorization": "Bearer cg_not-a-key"}])
async def test_moderation_needs_a_key(
    client: AppClient, method: str, path: str, body: object, auth_header: dict[str, str]
) -> None:
    response = await call(client, method, path, body, auth_header)
    await assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", ["client", "operator", "admin"])
async def test_any_key_may_file_an_appeal(client: AppClient, make_key: MakeKey, role: str) -> None:
    filed = await appeal(client, headers(await make_key(role)), SCAM)
    assert filed["status"] == "open"


async def test_filing_an_appeal_needs_a_key(client: AppClient) -> None:
    response = await client.post(
        "/v1/appeals", json={"number": SCAM, "contact": "x", "message": "x"}
    )
    await assert_problem(response, 401)


async def test_an_owner_is_an_identifier(client: AppClient, admin: dict[str, str]) -> None:
    decomposed = "So\u031b\u0309 Co\u0302ng Thu\u031bo\u031bng"  # NFD of Sở Công Thương
    response = await client.put(
        "/v1/allowlist/02513.685.134", json={"owner": f"\u200b {decomposed}\ufeff"}, headers=admin
    )
    assert response.status == 200
    assert (await response.json())["owner"] == "Sở Công Thương"
    response = await client.put(
        "/v1/allowlist/02513.685.134", json={"owner": "\u200b\u2060 "}, headers=admin
    )
    assert response.status == 400
    assert "'owner' must not be empty" in (await response.json())["detail"]
    entry = await (await client.get("/v1/allowlist/02513.685.134", headers=admin)).json()
    assert entry["owner"] == "Sở Công Thương"
