"""Nothing a client sends gets a 500 or a stack trace: every bad request is a clear 4xx problem."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import math
from collections.abc import Iterator
from dataclasses import replace

import asyncpg
import pytest
from callguard import openapi
from callguard.app import create_app
from callguard.config import Config
from callguard.problems import encode_json

from tests.conftest import AppClient, ClientFactory, MakeKey, eventually

REPORT = '{"number": "0912345678", "category": "other", "reporter": "r1"}'
ENDPOINTS = ["/v1/reports", "/v1/lookups"]

BAD_BODIES = [
    ("", 400, "not valid JSON"),
    ("{", 400, "not valid JSON"),
    ("{'number': '0912345678'}", 400, "not valid JSON"),
    ("[]", 400, "must be a JSON object"),
    ('"0912345678"', 400, "must be a JSON object"),
    ("null", 400, "must be a JSON object"),
    ('{"numbers": [' * 50_000, 400, "JSON"),
    ("[" * 100_000 + "]" * 100_000, 400, "JSON arrays and objects"),
    ('{"unexpected": 1}', 400, "Unknown field"),
]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(("body", "status", "words"), BAD_BODIES)
async def test_malformed_bodies(
    client: AppClient, auth: dict[str, str], path: str, body: str, status: int, words: str
) -> None:
    response = await client.post(
        path, data=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status == status
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == status
    assert {"type", "title", "detail"} <= problem.keys()
    assert words in problem["detail"]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_bodies_that_are_not_utf8(client: AppClient, auth: dict[str, str], path: str) -> None:
    response = await client.post(
        path,
        data=b'{"numbers": ["\xff\xfe"]}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert "not UTF-8" in (await response.json())["detail"]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_bodies_over_the_size_limit_are_413(
    client: AppClient, auth: dict[str, str], path: str
) -> None:
    body = io.BytesIO(b'{"numbers": ["' + b"0" * (2 << 20) + b'"]}')
    response = await client.post(
        path, data=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status == 413
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_other_media_types_are_415(
    client: AppClient, auth: dict[str, str], path: str
) -> None:
    response = await client.post(path, data="number=0912345678", headers=auth)
    assert response.status == 415
    assert "application/json" in (await response.json())["detail"]


async def test_compressed_bodies_are_read(client: AppClient, auth: dict[str, str]) -> None:
    response = await client.post(
        "/v1/reports",
        data=gzip.compress(REPORT.encode()),
        headers={**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status == 201


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("number", 912345678),
        ("number", ["0912345678"]),
        ("category", {"id": "other"}),
        ("reporter", 42),
        ("reporter", True),
        ("description", ["x"]),
    ],
)
async def test_wrong_json_types(
    client: AppClient, auth: dict[str, str], field: str, value: object
) -> None:
    body = {"number": "0912345678", "category": "other", "reporter": "r1", field: value}
    response = await client.post("/v1/reports", json=body, headers=auth)
    assert response.status == 400
    assert f"'{field}' must be a string" in (await response.json())["detail"]


@pytest.mark.parametrize("numbers", [{"a": 1}, "0912345678", 5, None])
async def test_lookups_need_a_list(
    client: AppClient, auth: dict[str, str], numbers: object
) -> None:
    response = await client.post("/v1/lookups", json={"numbers": numbers}, headers=auth)
    assert response.status == 400
    assert "'numbers' must be a list" in (await response.json())["detail"]


SQL_LOOKING = ["'; DROP TABLE reports; --", "0912345678' OR '1'='1"]
UNSTORABLE = ["Robert\x00'); DELETE FROM listings;--", "\ud800"]


@pytest.mark.parametrize("text", SQL_LOOKING + UNSTORABLE)
async def test_sql_looking_nul_and_surrogate_strings_are_not_numbers_or_categories(
    client: AppClient, auth: dict[str, str], text: str
) -> None:
    for field in ("number", "category"):
        body = {"number": "0912345678", "category": "other", "reporter": "r1", field: text}
        response = await client.post("/v1/reports", json=body, headers=auth)
        assert 400 <= response.status < 500, (field, response.status)
        assert response.content_type == "application/problem+json"
    response = await client.post("/v1/lookups", json={"numbers": [text]}, headers=auth)
    assert response.status == 200
    assert "error" in (await response.json())["results"][0]


@pytest.mark.parametrize("text", UNSTORABLE)
@pytest.mark.parametrize("field", ["reporter", "description"])
async def test_nul_and_surrogates_are_refused_in_free_text(
    client: AppClient, auth: dict[str, str], text: str, field: str
) -> None:
    body = {"number": "0912345678", "category": "other", "reporter": "r1", field: text}
    response = await client.post("/v1/reports", json=body, headers=auth)
    assert response.status == 400
    assert f"'{field}' contains" in (await response.json())["detail"]
    response = await client.get("/v1/numbers/0912345678", headers=auth)
    assert (await response.json())["report_count"] == 0


@pytest.mark.parametrize("text", SQL_LOOKING)
async def test_sql_looking_free_text_is_stored_verbatim(
    client: AppClient, auth: dict[str, str], pool: asyncpg.Pool, text: str
) -> None:
    body = {"number": "0912345678", "category": "other", "reporter": text, "description": text}
    assert (await client.post("/v1/reports", json=body, headers=auth)).status == 201
    response = await client.get("/v1/numbers/0912345678", headers=auth)
    assert (await response.json())["report_count"] == 1
    assert await pool.fetchval("SELECT description FROM reports") == text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/v1/nowhere", 404),
        ("DELETE", "/v1/reports", 405),
        ("PATCH", "/v1/numbers/0912345678", 405),
        ("GET", "/v1/lookups", 405),
    ],
)
async def test_unknown_routes_and_methods(
    client: AppClient, auth: dict[str, str], method: str, path: str, status: int
) -> None:
    response = await client.request(method, path, headers=auth)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert (await response.json())["status"] == status


async def slow_request(port: int, head: str, first_part: bytes) -> tuple[int, dict[str, object]]:
    """Send the head and part of the body, then nothing: the status and problem answered
    (a deadline of 10 s each for the head and the body, far past the timeouts tested)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head.encode() + first_part)
        await writer.drain()
        headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        status_line, *lines = headers.decode().split("\r\n")
        length = next(
            int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), timeout=10)
    finally:
        writer.close()
    return int(status_line.split()[1]), json.loads(body)


async def test_a_body_that_does_not_arrive_in_time_is_408(
    aiohttp_client: ClientFactory, config: Config, auth: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(replace(config, body_timeout=0.3)))
    head = (
        "POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {auth['Authorization']}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n"
    )
    status, problem = await slow_request(client.port, head, b'{"number": ')
    assert status == 408
    assert problem["detail"] == "The body did not arrive within 0.3 s."


async def test_an_upload_that_stalls_is_408_and_imports_nothing(
    aiohttp_client: ClientFactory, config: Config, make_key: MakeKey, pool: asyncpg.Pool
) -> None:
    client = await aiohttp_client(create_app(replace(config, upload_idle_timeout=0.3)))
    head = (
        "POST /v1/imports?source=stalled HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {await make_key('operator')}\r\nContent-Type: text/csv\r\n"
        "Content-Length: 1000000\r\n\r\n"
    )
    status, problem = await slow_request(client.port, head, b"number\n0912345678\n")
    assert status == 408
    assert "sent nothing for 0.3 s" in str(problem["detail"])
    assert await pool.fetchval("SELECT count(*) FROM imports") == 0
    assert await pool.fetchval("SELECT count(*) FROM trusted_listings") == 0


HUGE = "9" * 5000
"""Past Python's 4300-digit limit for int(): any conversion of it raises."""
NOT_JSON_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", HUGE, "-" + HUGE]


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
async def test_json_numbers_past_what_json_or_int_can_hold_are_400(
    client: AppClient, auth: dict[str, str], path: str, number: str
) -> None:
    body = (
        f'{{"numbers": ["0912345678", {number}]}}'
        if path == "/v1/lookups"
        else f'{{"number": "0912345678", "category": "other", "reporter": {number}}}'
    )
    response = await client.post(
        path, data=body, headers={**auth, "Content-Type": "application/json"}
    )
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["status"] == 400
    assert "not valid JSON" in problem["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/audit?limit={n}",
        "/v1/audit?before={n}",
        "/v1/appeals?after={n}",
        "/v1/imports?limit={n}",
        "/v1/imports?before={n}",
        "/v1/allowlist/0912345678?limit={n}",
    ],
)
async def test_query_integers_past_the_int_limit_are_400(
    client: AppClient, make_key: MakeKey, path: str
) -> None:
    admin = {"Authorization": f"Bearer {await make_key('admin')}"}
    if path.startswith("/v1/allowlist"):
        entry = await client.put(path.split("?")[0], json={"owner": "Viettel"}, headers=admin)
        assert entry.status == 200
    response = await client.get(path.format(n=HUGE), headers=admin)
    assert response.status == 400
    assert response.content_type == "application/problem+json"
    assert "whole number" in (await response.json())["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/appeals/{n}/resolve"),
        ("GET", "/v1/imports/{n}"),
        ("GET", "/v1/imports/{n}/errors"),
    ],
)
async def test_ids_in_paths_past_the_int_limit_are_404(
    client: AppClient, make_key: MakeKey, method: str, path: str
) -> None:
    admin = {"Authorization": f"Bearer {await make_key('admin')}"}
    body = {"decision": "reject", "note": "n"}
    response = await client.request(method, path.format(n=HUGE), json=body, headers=admin)
    assert response.status == 404
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS[:5])
async def test_import_rows_with_numbers_json_cannot_hold_are_refused(
    client: AppClient, make_key: MakeKey, number: str
) -> None:
    operator = {"Authorization": f"Bearer {await make_key('operator')}"}
    rows = f'{{"number": "0912345678"}}\n{{"number": "0987654321", "weight": {number}}}\n'
    response = await client.post(
        "/v1/imports?source=viettel",
        data=rows,
        headers={**operator, "Content-Type": "application/x-ndjson"},
    )
    assert response.status == 201
    result = await response.json()
    assert (result["accepted"], result["rejected"]) == (1, 1)
    (error,) = result["errors"]
    assert error["line"] == 2 and "not valid JSON" in error["reason"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nothing_the_service_writes_holds_nan_or_infinity(value: float) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        encode_json({"results": [{"input": value}]})


def test_no_declared_body_holds_a_float() -> None:
    """Bodies are encoded by msgspec, which writes NaN and the infinities as null rather than
    refusing them (encode_json's care above): so no response body declares a float at all."""

    def types(schema: object) -> Iterator[str]:
        if isinstance(schema, dict):
            if isinstance(schema.get("type"), str):
                yield schema["type"]
            for value in schema.values():
                yield from types(value)
        elif isinstance(schema, list):
            for value in schema:
                yield from types(value)

    found = set(types(openapi._components(openapi._response_types())))
    assert "integer" in found
    assert "number" not in found


@pytest.mark.parametrize("how", ["half-close", "reset"])
async def test_a_body_cut_short_is_the_clients_fault_not_a_database_outage(
    client: AppClient, auth: dict[str, str], make_key: MakeKey, how: str
) -> None:
    metrics = {"Authorization": f"Bearer {await make_key('metrics')}"}
    reader, writer = await asyncio.open_connection(client.host, client.port)
    body = b'{"number": "0912345678", "category": "other", "repo'
    writer.write(
        b"POST /v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: {auth['Authorization']}\r\n".encode()
        + b"Content-Length: 200\r\n\r\n"
        + body
    )
    await writer.drain()
    if how == "half-close":
        writer.write_eof()
    else:
        writer.transport.abort()
    with contextlib.suppress(ConnectionError):
        await reader.read()
    writer.close()

    async def counted() -> bool:
        text = await (await client.get("/metrics", headers=metrics)).text()
        return 'route="/v1/reports"' in text

    await eventually(counted, what="the cut request counted")
    text = await (await client.get("/metrics", headers=metrics)).text()
    statuses = {
        line.split('status="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("callguard_http_requests_total{") and 'route="/v1/reports"' in line
    }
    # 400 if the cut was read as such, 499 if the client left first: never a server error.
    assert statuses and statuses <= {"400", "499"}, statuses
