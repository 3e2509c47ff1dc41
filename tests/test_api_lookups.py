"""POST /v1/lookups: many numbers in one call, answered in input order."""

from __future__ import annotations

from tests.conftest import AppClient


async def test_results_come_in_input_order_and_invalid_items_do_not_fail_the_batch(
    client: AppClient, auth: dict[str, str]
) -> None:
    await client.post(
        "/v1/reports",
        json={"number": "0987654321", "category": "online_loan", "reporter": "r1"},
        headers=auth,
    )
    inputs = ["0912345678", "not a number", "+84 987 654 321", 912345678, None, "+16502530000"]
    response = await client.post("/v1/lookups", json={"numbers": inputs}, headers=auth)
    assert response.status == 200
    results = (await response.json())["results"]
    assert [result["input"] for result in results] == inputs
    assert [result.get("verdict") for result in results] == [
        "unknown", None, "suspicious", None, None, "unknown",
    ]  # fmt: skip
    assert results[2]["number"] == "+84987654321"
    assert results[2]["categories"] == ["online_loan"]
    assert "phone number" in results[1]["error"]
    assert results[3]["error"] == results[4]["error"] == "must be a string"


async def test_a_batch_at_the_limit_is_answered(client: AppClient, auth: dict[str, str]) -> None:
    numbers = [f"+8491{i:07d}" for i in range(1000)]
    response = await client.post("/v1/lookups", json={"numbers": numbers}, headers=auth)
    assert response.status == 200
    results = (await response.json())["results"]
    assert len(results) == 1000
    assert {result["verdict"] for result in results} == {"unknown"}


async def test_more_than_the_limit_is_413(client: AppClient, auth: dict[str, str]) -> None:
    numbers = [f"+8491{i:07d}" for i in range(1001)]
    response = await client.post("/v1/lookups", json={"numbers": numbers}, headers=auth)
    assert response.status == 413
    assert response.content_type == "application/problem+json"
    assert (await response.json())["limit"] == 1000


async def test_an_empty_batch_is_an_empty_answer(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.post("/v1/lookups", json={"numbers": []}, headers=auth)
    assert (response.status, await response.json()) == (200, {"results": []})


async def test_repeated_numbers_are_each_answered(client: AppClient, auth: dict[str, str]) -> None:
    await client.post(
        "/v1/reports",
        json={"number": "0912345678", "category": "other", "reporter": "r1"},
        headers=auth,
    )
    numbers = ["0912345678", "+84912345678", "0912345678"]
    response = await client.post("/v1/lookups", json={"numbers": numbers}, headers=auth)
    results = (await response.json())["results"]
    assert [result["verdict"] for result in results] == ["suspicious"] * 3
