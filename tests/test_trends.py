"""GET /v1/stats/trends on the real database: reports per category per week, what rises this
week, numbers newly listed per mobile network, the official numbers, and CSV by Accept."""

from __future__ import annotations

from typing import Any

import pytest
from callguard.lists import LISTS

from tests.conftest import AppClient, FakeClock, MakeKey, eventually

Json = dict[str, Any]


@pytest.fixture
async def admin(make_key: MakeKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key('admin')}"}


async def report(
    client: AppClient, auth: dict[str, str], number: str, category: str, who: str
) -> None:
    body = {"number": number, "category": category, "reporter": who}
    assert (await client.post("/v1/reports", json=body, headers=auth)).status == 201


async def trends(client: AppClient, auth: dict[str, str]) -> Json:
    response = await client.get("/v1/stats/trends", headers=auth)
    assert response.status == 200
    body: Json = await response.json()
    return body


async def test_reports_per_week_and_what_rises_this_week(
    timed_client: AppClient, auth: dict[str, str], clock: FakeClock
) -> None:
    for week in range(3):  # two online-loan reports a week, for three weeks
        for i in range(2):
            await report(timed_client, auth, f"09120000{week}{i}", "online_loan", f"w{week}-{i}")
        clock.advance(days=7)
    for i in range(6):  # this week: investment scams jump
        await report(timed_client, auth, f"098700000{i}", "investment", f"now-{i}")
    await report(timed_client, auth, "0912000099", "online_loan", "now-loan")
    clock.advance(minutes=11)  # past the figures' 10 minutes
    body = await trends(timed_client, auth)
    assert len(body["weeks"]) == 12
    series = {item["category"]: item["reports"] for item in body["categories"]}
    assert series["online_loan"][-4:] == [2, 2, 2, 1]
    assert series["investment"][-1] == 6 and sum(series["investment"]) == 6
    assert body["rising"] == [{"category": "investment", "this_week": 6, "usual": 0}]


async def test_newly_listed_numbers_per_network_and_the_official_numbers(
    client: AppClient, auth: dict[str, str], admin: dict[str, str]
) -> None:
    for number in ("0987654321", "0321234567", "0912345678", "0901234567", "+16502530000"):
        response = await client.put(
            f"/v1/numbers/{number}", json={"category": "other"}, headers=admin
        )
        assert response.status == 200
    response = await client.put(
        "/v1/allowlist/02513685134", json={"owner": "Công an tỉnh Đồng Nai"}, headers=admin
    )
    assert response.status == 200
    owner = client.app[LISTS]
    await eventually(lambda: all(held.version for held in owner.held.values()), what="lists")
    await owner.publish()
    body = await trends(client, auth)
    networks = {item["network"]: sum(item["listed"]) for item in body["networks"]}
    assert networks == {"Viettel": 2, "Vinaphone": 1, "MobiFone": 1, "other": 1}
    assert body["official"] == [{"number": "+842513685134", "owner": "Công an tỉnh Đồng Nai"}]


async def test_csv_by_accept(timed_client: AppClient, auth: dict[str, str]) -> None:
    await report(timed_client, auth, "0912345678", "online_loan", "r1")
    response = await timed_client.get(
        "/v1/stats/trends", headers={**auth, "Accept": "text/csv, application/json;q=0.5"}
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    lines = (await response.text()).splitlines()
    assert lines[0] == "week,kind,name,count"
    assert len(lines) == 1 + 12 * 8  # every category, every week; no number listed yet
    assert lines[-12:][-1].endswith(",reports,other,0")
    assert any(line.endswith(",reports,online_loan,1") for line in lines)
    assert (await timed_client.get("/v1/stats/trends")).status == 401
