"""POST /v1/lookups: many numbers in one call, answered in input order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import quote

import msgspec
import pytest
from aiohttp import ClientResponse
from callguard.api.numbers import UNKNOWN_ANSWER, UNKNOWN_RESULT_TEXT, answer_body
from callguard.app import create_app
from callguard.config import Config
from callguard.reputation import UNKNOWN, Evidence
from callguard.verdicts import Answer

from tests.conftest import AppClient, ClientFactory, MakeKey, eventually


async def test_results_come_in_input_order_and_invalid_items_do_not_fail_the_batch(
    client: AppClient, auth: dict[str, str]
) -> None:
    await client.post(
        "/v1/reports",
        json={"number": "0987654321", "category": "online_loan", "reporter": "r1"},
        headers=auth,
    )
    inputs = ["0912345678", "not a number", "+84 987 654 321", "tel:abc", "+16502530000"]
    response = await client.post("/v1/lookups", json={"numbers": inputs}, headers=auth)
    assert response.status == 200
    results = (await response.json())["results"]
    assert [result["input"] for result in results] == inputs
    assert [result.get("verdict") for result in results] == [
        "unknown", None, "suspicious", None, "unknown",
    ]  # fmt: skip
    assert results[2]["number"] == "+84987654321"
    assert results[2]["categories"] == ["online_loan"]
    assert "phone number" in results[1]["error"]
    assert results[3]["error"]


@pytest.mark.parametrize("item", [912345678, None, ["0912345678"], {"number": "0912345678"}])
async def test_a_batch_with_an_item_that_is_no_string_is_refused(
    client: AppClient, auth: dict[str, str], item: object
) -> None:
    numbers = ["0912345678", "not a number", item]
    response = await client.post("/v1/lookups", json={"numbers": numbers}, headers=auth)
    assert response.status == 400
    assert "item 2 is not a string" in (await response.json())["detail"]


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


async def test_a_batch_answers_each_number_as_a_single_lookup_does(
    client: AppClient, auth: dict[str, str]
) -> None:
    # Numbers the filter rules out are answered from pre-encoded bytes, the rest from what
    # is stored: either way, each result is the single lookup's answer plus its input.
    await client.post(
        "/v1/reports",
        json={"number": "0987654321", "category": "online_loan", "reporter": "r1"},
        headers=auth,
    )
    inputs = [
        "+84912345678",  # echoed as it is
        "(+84) 912.345.678",
        "tel:+84912345678",  # echoed through the JSON encoder
        "０９１２３４５６７８",  # noqa: RUF001 (full-width digits)
        '0912345678"',  # invalid: an error, escaped
        "+84987654321",  # reported
        "+1 650 253 0000",
    ]
    response = await client.post("/v1/lookups", json={"numbers": inputs}, headers=auth)
    assert response.status == 200
    assert response.headers["Content-Language"] == "vi"
    results = (await response.json())["results"]
    for item, result in zip(inputs, results, strict=True):
        single = await client.get("/v1/numbers/" + quote(item, safe=""), headers=auth)
        if single.status == 200:
            assert result == {"input": item, **(await single.json())}, item
        else:
            assert set(result) == {"input", "error"}, item


@pytest.mark.parametrize("number", [84912345678, 84321234567, 12025550123, 8424123456])
def test_the_pre_encoded_unknown_answers_are_answer_bodys(number: int) -> None:
    body = msgspec.to_builtins(answer_body(Answer(number, Evidence(number), UNKNOWN), "vi"))
    assert json.loads(UNKNOWN_ANSWER % number) == body
    result = UNKNOWN_RESULT_TEXT % (number, "0912 345 678")
    assert json.loads(result) == {"input": "0912 345 678", **body}


async def test_each_key_may_look_up_so_many_numbers_a_second(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    slow = replace(config, lookups_per_key_per_second=2.0, lookup_burst_per_key=5)
    client = await aiohttp_client(create_app(slow))
    first = {"Authorization": f"Bearer {await make_key('client')}"}
    second = {"Authorization": f"Bearer {await make_key('client')}"}
    batch = {"numbers": ["0912345678", "0987654321", "0933333333"]}
    assert (await client.post("/v1/lookups", json=batch, headers=first)).status == 200
    for _ in range(2):
        assert (await client.get("/v1/numbers/0912345678", headers=first)).status == 200
    refused = await client.get("/v1/numbers/0912345678", headers=first)  # the 6th number
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    assert refused.headers["Retry-After"] == "1"
    assert "2 numbers a second" in (await refused.json())["detail"]
    too_many = await client.post("/v1/lookups", json=batch, headers=first)
    assert (too_many.status, too_many.headers["Retry-After"]) == (429, "2")  # 3 at 2 a second
    # Another key has its own bucket.
    assert (await client.post("/v1/lookups", json=batch, headers=second)).status == 200


async def test_numbers_that_cost_more_are_charged_more(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    costly = replace(
        config,
        lookups_per_key_per_second=1.0,
        lookup_burst_per_key=100,
        lookup_slow_cost=50,
        lookup_refused_cost=10,
        lookup_listed_cost=20,
    )
    client = await aiohttp_client(create_app(costly))
    auth = {"Authorization": f"Bearer {await make_key('client')}"}
    cheap = {"numbers": [f"+8491{i:07d}" for i in range(60)]}
    assert (await client.post("/v1/lookups", json=cheap, headers=auth)).status == 200
    # 40 tokens left: one number phonenumbers must read costs 50.
    slow = {"numbers": ["+1 650 253 0000"]}
    refused = await client.post("/v1/lookups", json=slow, headers=auth)
    assert refused.status == 429
    assert "counts as 50" in (await refused.json())["detail"]
    single = await client.get(f"/v1/numbers/{quote('+1 650 253 0000')}", headers=auth)
    assert single.status == 429
    # Refused by its shape, an item costs 10: checked and answered once its token is
    # there, then charged into debt (40 - 5 x 10), so the key's next lookup waits.
    shapeless = {"numbers": ["x" * 40] * 5}
    answered = await client.post("/v1/lookups", json=shapeless, headers=auth)
    assert answered.status == 200
    assert "letters" in (await answered.json())["results"][0]["error"]
    one = {"numbers": ["+84912345678"]}
    assert (await client.post("/v1/lookups", json=one, headers=auth)).status == 429


async def test_a_listed_number_costs_its_evidence(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    costly = replace(
        config, lookups_per_key_per_second=1.0, lookup_burst_per_key=30, lookup_listed_cost=20
    )
    client = await aiohttp_client(create_app(costly))
    auth = {"Authorization": f"Bearer {await make_key('client')}"}
    report = {"number": "0987654321", "category": "online_loan", "reporter": "r1"}
    assert (await client.post("/v1/reports", json=report, headers=auth)).status == 201
    listed = await client.post("/v1/lookups", json={"numbers": ["0987654321"]}, headers=auth)
    assert listed.status == 200  # 1 + 20 of 30
    again = await client.post("/v1/lookups", json={"numbers": ["0987654321"]}, headers=auth)
    assert again.status == 429
    unlisted = await client.post("/v1/lookups", json={"numbers": ["0912345678"]}, headers=auth)
    assert unlisted.status == 200


async def test_a_key_has_so_many_batches_in_progress(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey
) -> None:
    client = await aiohttp_client(create_app(replace(config, lookup_batches_per_key=1)))
    first = {"Authorization": f"Bearer {await make_key('client')}"}
    second = {"Authorization": f"Bearer {await make_key('client')}"}
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"numbers": ["0912'
        await release.wait()
        yield b'345678"]}'

    held = asyncio.create_task(
        client.post(
            "/v1/lookups",
            data=slow_body(),
            headers={**first, "Content-Type": "application/json"},
        )
    )
    batch = {"numbers": ["0912345678"]}
    busy: list[ClientResponse] = []

    async def refused() -> bool:
        response = await client.post("/v1/lookups", json=batch, headers=first)
        busy.append(response)
        return response.status == 429

    await eventually(refused, within=10, what="the second batch refused")
    assert busy[-1].headers["Retry-After"] == "1"
    assert "in progress" in (await busy[-1].json())["detail"]
    assert (await client.post("/v1/lookups", json=batch, headers=second)).status == 200
    release.set()
    assert (await asyncio.wait_for(held, 10)).status == 200
    assert (await client.post("/v1/lookups", json=batch, headers=first)).status == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"numbers": [' + b", ".join([b"[]"] * 50_000) + b"]}",
        b'{"numbers": [' + b", ".join([b"0"] * 200_000) + b"]}",
    ],
)
async def test_a_body_bigger_in_structure_than_any_request_is_refused_before_decoding(
    client: AppClient, auth: dict[str, str], body: bytes
) -> None:
    response = await client.post(
        "/v1/lookups", data=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status == 400
    assert "The body holds" in (await response.json())["detail"]


async def test_brackets_and_commas_inside_strings_are_not_structure(
    client: AppClient, auth: dict[str, str]
) -> None:
    numbers = ['0912,345,678 [home] {"\\\\"}'] * 20 + ["0912345678"] * 900
    response = await client.post("/v1/lookups", json={"numbers": numbers}, headers=auth)
    assert response.status == 200
    assert len((await response.json())["results"]) == 920
