"""POST /v1/imports and the import history: streamed, all or nothing, idempotent."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import os
import signal
import zlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import psutil
import pytest
from callguard import store
from callguard.app import create_app
from callguard.auth import hash_key, new_key
from callguard.clock import utc_now
from callguard.config import Config
from callguard.state import PARSERS

from tests.conftest import AppClient, ClientFactory, MakeKey, eventually

ACTOR = store.audit.Actor(None, "test")

CSV_TYPE = {"Content-Type": "text/csv"}
NDJSON_TYPE = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
async def operator(make_key: MakeKey) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_key('operator')}"}


async def post_import(
    client: AppClient,
    headers: dict[str, str],
    body: bytes | str | io.BytesIO,
    source: str = "viettel",
    status: int = 201,
) -> dict[str, Any]:
    response = await client.post(f"/v1/imports?source={source}", data=body, headers=headers)
    payload: dict[str, Any] = await response.json()
    assert response.status == status, payload
    return payload


async def verdict(client: AppClient, headers: dict[str, str], number: str) -> str:
    response = await client.get(f"/v1/numbers/{number}", headers=headers)
    return str((await response.json())["verdict"])


async def count(pool: asyncpg.Pool, table: str) -> int:
    value: int = await pool.fetchval(f"SELECT count(*) FROM {table}")
    return value


MESSY_CSV = """number,category,reported_at,note,extra
0912345678,online_loan,2024-03-26T09:30:00+07:00,vay online,x
+84 987 654 321,INVESTMENT,2024-03-26,,y
0912.345.678,other,,dup of line 2,
not-a-number,other,,,
0162 123 4567,,,,legacy
0987654321,lottery,,,
0911111111,other,yesterday,,
,other,,,
"0933 333 333","fake_recruitment","","quoted, with a comma",
"""


async def test_a_messy_csv_is_imported_and_its_errors_reported(
    client: AppClient, operator: dict[str, str], auth: dict[str, str], pool: asyncpg.Pool
) -> None:
    body = await post_import(client, {**operator, **CSV_TYPE}, MESSY_CSV)
    assert {k: body[k] for k in ("rows", "accepted", "duplicates", "rejected")} == {
        "rows": 9,
        "accepted": 4,
        "duplicates": 1,
        "rejected": 4,
    }
    assert body["mapped_legacy"] == 1
    assert body["source"] == "viettel"
    assert [(e["line"], e["value"]) for e in body["errors"]] == [
        (5, "not-a-number"),
        (7, "0987654321"),
        (8, "0911111111"),
        (9, ""),
    ]
    assert "not a valid number" in body["errors"][0]["reason"]
    assert "Unknown category 'lottery'" in body["errors"][1]["reason"]
    assert "RFC 3339" in body["errors"][2]["reason"]
    assert "missing" in body["errors"][3]["reason"]
    for number in ("0912345678", "+84987654321", "0321234567", "01621234567", "0933333333"):
        assert await verdict(client, auth, number) == "scam", number
    assert await verdict(client, auth, "0911111111") == "unknown"
    lookup = await (await client.get("/v1/numbers/0912345678", headers=auth)).json()
    assert lookup["sources"] == ["viettel"]
    assert lookup["categories"] == ["online_loan"]  # the first row of the number wins
    stored = await pool.fetch(
        "SELECT number, reported_at, note FROM trusted_listings ORDER BY number"
    )
    vietnam = timezone(timedelta(hours=7))
    assert [tuple(record) for record in stored] == [
        (84321234567, None, None),
        (84912345678, datetime(2024, 3, 26, 9, 30, tzinfo=vietnam), "vay online"),
        (84933333333, None, "quoted, with a comma"),
        (84987654321, datetime(2024, 3, 26, tzinfo=vietnam), None),  # local midnight
    ]


async def test_ndjson_and_gzip(
    client: AppClient, operator: dict[str, str], auth: dict[str, str]
) -> None:
    lines = [
        {"number": "+84912345678", "category": "account_takeover", "note": "Zalo"},
        {"number": 84987654321},
        ["not", "an", "object"],
        {"number": "0912345678"},
    ]
    body = "\n".join(json.dumps(line) for line in lines) + "\n{broken\n"
    headers = {**operator, **NDJSON_TYPE, "Content-Encoding": "gzip"}
    result = await post_import(client, headers, gzip.compress(body.encode()))
    assert {k: result[k] for k in ("rows", "accepted", "duplicates", "rejected")} == {
        "rows": 5,
        "accepted": 2,
        "duplicates": 1,
        "rejected": 2,
    }
    assert [(e["line"], e["reason"]) for e in result["errors"]] == [
        (3, "not a JSON object"),
        (5, "not valid JSON"),
    ]
    assert await verdict(client, auth, "0987654321") == "scam"


async def test_semicolon_csv_with_a_bom_and_crlf(
    client: AppClient, operator: dict[str, str], auth: dict[str, str]
) -> None:
    body = "\ufeffSố thứ tự;Number;Category\r\n1;0912345678;online_loan\r\n2;0987654321;\r\n"
    result = await post_import(client, {**operator, **CSV_TYPE}, body.encode())
    assert (result["accepted"], result["rejected"]) == (2, 0)
    assert await verdict(client, auth, "0987654321") == "scam"


# One block, and many (several MiB: seconds).
@pytest.mark.parametrize("rows", [3, pytest.param(200_000, marks=pytest.mark.slow)])
async def test_a_csv_with_bare_cr_line_ends_is_read_line_by_line(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool, rows: int
) -> None:
    lines = [f"+8491{n:07d};online_loan" for n in range(rows)]
    lines[-2] = "not-a-number;other"
    body = "Number;Category\r" + "\r".join(lines) + "\r"  # Excel's "CSV (Macintosh)"
    result = await post_import(client, {**operator, **CSV_TYPE}, io.BytesIO(body.encode()))
    assert {k: result[k] for k in ("rows", "accepted", "rejected")} == {
        "rows": rows,
        "accepted": rows - 1,
        "rejected": 1,
    }
    assert [(e["line"], e["value"]) for e in result["errors"]] == [(rows, "not-a-number")]
    assert await count(pool, "trusted_listings") == rows - 1


async def test_long_and_undecodable_lines_reject_only_their_row(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    body = (
        b"number,note\n0912345678,ok\n0987654321,"
        + b"x" * 10_000
        + b"\n\xff\xfe0911111111,bad bytes\n0933333333,fine\n"
    )
    result = await post_import(client, {**operator, **CSV_TYPE}, body)
    assert (result["accepted"], result["rejected"]) == (2, 2)
    assert [(e["line"], e["reason"]) for e in result["errors"]] == [
        (3, "the line is longer than 4096 bytes"),
        (4, "the line is not valid UTF-8"),
    ]
    assert await count(pool, "trusted_listings") == 2


@pytest.mark.parametrize(
    ("headers", "body", "words"),
    [
        ({"Content-Type": "application/json"}, b'{"number": "0912345678"}', "text/csv"),
        (CSV_TYPE, b"phone,category\n0912345678,other\n", "no 'number' column"),
        (CSV_TYPE, b"", "empty"),
        ({**CSV_TYPE, "Content-Encoding": "br"}, b"number\n0912345678\n", "br"),
        (
            {**CSV_TYPE, "Content-Encoding": "gzip"},
            gzip.compress(b"number\n" + b"0912345678\n" * 1000)[:-30],
            "cut short",
        ),
        ({**CSV_TYPE, "Content-Encoding": "gzip"}, b"this is not gzip", "corrupt"),
        (CSV_TYPE, gzip.compress(b"number\n0912345678\n"), "Content-Encoding: gzip"),
        (CSV_TYPE, "number\n0912345678\n".encode("utf-16-le"), "NUL bytes"),
        (CSV_TYPE, "number\n0912345678\n".encode("utf-16"), "NUL bytes"),
        (NDJSON_TYPE, b"number,category\n0912345678,other\n", "not NDJSON"),
        (NDJSON_TYPE, b'\n  \n["0912345678"]\n{"number": "0912345678"}\n', "not a JSON object"),
        (NDJSON_TYPE, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        (NDJSON_TYPE, b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "not NDJSON"),
        (NDJSON_TYPE, b"x" * 10_000 + b"\n", "too long"),
        ({**NDJSON_TYPE, "Content-Encoding": "gzip"}, gzip.compress(b"hello\n"), "not NDJSON"),
        (NDJSON_TYPE, b"", "empty"),
        (NDJSON_TYPE, b"\n  \n\r\n" * 1000, "empty"),
        (CSV_TYPE, b'"number\n0912345678\n', "quote that is not closed"),
    ],
)
async def test_unreadable_uploads_import_nothing(
    client: AppClient,
    operator: dict[str, str],
    pool: asyncpg.Pool,
    headers: dict[str, str],
    body: bytes,
    words: str,
) -> None:
    response = await client.post("/v1/imports?source=x", data=body, headers={**operator, **headers})
    assert 400 <= response.status < 500
    assert response.content_type == "application/problem+json"
    assert words in (await response.json())["detail"]
    for table in ("trusted_listings", "imports", "import_errors"):
        assert await count(pool, table) == 0, table


async def test_a_connection_dropped_mid_upload_imports_nothing(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    rows = b"".join(b"+8491%07d,other\n" % i for i in range(50_000))
    head = (
        f"POST /v1/imports?source=cut HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {operator['Authorization']}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(rows) + 1_000_000}\r\n\r\n"
    ).encode()
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head + b"number,category\n" + rows)
    await writer.drain()
    writer.close()  # a million promised bytes never come
    await writer.wait_closed()

    async def closed() -> bool:
        idle = "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in%'"
        return not await pool.fetchval(idle)

    await eventually(closed, what="the import's transaction closed")
    for table in ("trusted_listings", "imports", "import_errors"):
        assert await count(pool, table) == 0, table


async def test_the_same_idempotency_key_returns_the_first_import(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    headers = {**operator, **CSV_TYPE, "Idempotency-Key": "telco-2024-03-26"}
    body = "number\n0912345678\nbad\n"
    first, second = await asyncio.gather(
        post_import(client, headers, body), post_import(client, headers, body)
    )
    assert first == second
    assert first["errors"] == [{"line": 3, "value": "bad", "reason": first["errors"][0]["reason"]}]
    # The same list gzipped (as `callguard import` sends it) is the same list.
    gzipped = await post_import(
        client, {**headers, "Content-Encoding": "gzip"}, gzip.compress(body.encode())
    )
    assert gzipped == first
    assert await count(pool, "imports") == 1
    assert await count(pool, "trusted_listings") == 1
    other = await post_import(client, {**headers, "Idempotency-Key": "another"}, body)
    assert other["import_id"] != first["import_id"]


@pytest.mark.parametrize(
    ("source", "body"),
    [
        ("viettel", "number\n0987654321\n"),  # a different list
        ("viettel", "number\n0912345678\nbad\n0987654321\n"),  # the first list and more
        ("police", "number\n0912345678\nbad\n"),  # the same list from another source
    ],
)
async def test_the_same_idempotency_key_for_another_list_is_refused(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool, source: str, body: str
) -> None:
    headers = {**operator, **CSV_TYPE, "Idempotency-Key": "telco-2024-03-26"}
    first = await post_import(client, headers, "number\n0912345678\nbad\n")
    response = await client.post(f"/v1/imports?source={source}", data=body, headers=headers)
    assert response.status == 422
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"] == "urn:callguard:problem:idempotency-key-reused"
    assert f"import {first['import_id']}" in problem["detail"]
    assert await count(pool, "imports") == 1
    assert [r["number"] for r in await pool.fetch("SELECT number FROM trusted_listings")] == [
        84912345678
    ]


async def test_an_import_from_before_digests_is_not_replayed_for_any_list(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    headers = {**operator, **CSV_TYPE, "Idempotency-Key": "old"}
    body = "number\n0912345678\n"
    await post_import(client, headers, body)
    await pool.execute("UPDATE imports SET body_sha256 = NULL")  # as stored before the upgrade
    response = await client.post("/v1/imports?source=viettel", data=body, headers=headers)
    assert response.status == 422
    assert await count(pool, "imports") == 1


async def test_history_and_all_errors(
    client: AppClient, operator: dict[str, str], make_key: MakeKey
) -> None:
    body = "number\n" + "".join(f"bad-{i}\n" for i in range(1500)) + "0912345678\n"
    result = await post_import(client, {**operator, **CSV_TYPE}, body)
    assert (result["rejected"], len(result["errors"])) == (1500, 1000)
    import_id = result["import_id"]

    summary = await (await client.get(f"/v1/imports/{import_id}", headers=operator)).json()
    assert {k: summary[k] for k in ("rows", "accepted", "rejected")} == {
        "rows": 1501,
        "accepted": 1,
        "rejected": 1500,
    }
    response = await client.get(f"/v1/imports/{import_id}/errors", headers=operator)
    errors = (await response.json())["errors"]
    assert [e["line"] for e in errors] == list(range(2, 1502))
    page = await client.get(f"/v1/imports/{import_id}/errors?after=1000&limit=2", headers=operator)
    assert [e["value"] for e in (await page.json())["errors"]] == ["bad-999", "bad-1000"]

    history = await (await client.get("/v1/imports", headers=operator)).json()
    assert [i["import_id"] for i in history["imports"]] == [import_id]
    stranger = {"Authorization": f"Bearer {await make_key('operator')}"}
    assert (await client.get(f"/v1/imports/{import_id}", headers=stranger)).status == 404
    assert (await (await client.get("/v1/imports", headers=stranger)).json())["imports"] == []
    admin = {"Authorization": f"Bearer {await make_key('admin')}"}
    assert (await client.get(f"/v1/imports/{import_id}", headers=admin)).status == 200
    assert (await client.get("/v1/imports/nope", headers=operator)).status == 404


async def test_clients_may_not_import(
    client: AppClient, auth: dict[str, str], pool: asyncpg.Pool
) -> None:
    response = await client.post(
        "/v1/imports?source=x", data="number\n0912345678\n", headers={**auth, **CSV_TYPE}
    )
    assert response.status == 403
    assert (await client.get("/v1/imports", headers=auth)).status == 403
    assert await count(pool, "imports") == 0


async def operator_key(pool: asyncpg.Pool, name: str, *sources: str) -> dict[str, str]:
    """Authorization and CSV headers of a new operator key with these sources."""
    key = new_key()
    await store.keys.create(pool, name, "operator", hash_key(key), sources)
    return {"Authorization": f"Bearer {key}", **CSV_TYPE}


async def known(client: AppClient, headers: dict[str, str]) -> bool:
    """Whether the app accepts the key yet (its creation's notification arrived)."""
    return (await client.get("/v1/imports", headers=headers)).status == 200


@pytest.mark.parametrize(
    ("sources", "source", "role"),
    [
        (("viettel",), "mobifone", "operator"),  # another operator's source
        (("viettel",), "Viettel", "operator"),  # sources are compared as written
        ((), "viettel", "operator"),  # a key from before sources: none until given some
        (("viettel",), "admin:staff", "operator"),
        ((), "admin:staff", "admin"),  # reserved even for admins
        ((), "ADMIN:Staff", "admin"),
    ],
)
async def test_an_import_under_a_source_not_the_keys_is_forbidden(
    client: AppClient,
    pool: asyncpg.Pool,
    auth: dict[str, str],
    sources: tuple[str, ...],
    source: str,
    role: str,
) -> None:
    key = new_key()
    await store.keys.create(pool, "telco", role, hash_key(key), sources)
    headers = {"Authorization": f"Bearer {key}", **CSV_TYPE}
    await eventually(lambda: known(client, headers), what="the key accepted")
    response = await client.post(
        "/v1/imports", params={"source": source}, data="number\n0912345678\n", headers=headers
    )
    assert response.status == 403
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"] == "urn:callguard:problem:source-forbidden"
    assert problem["source"] == source
    assert await count(pool, "imports") == 0
    assert await verdict(client, auth, "0912345678") == "unknown"


async def test_new_sources_for_a_key_apply_at_once_in_a_running_service(
    client: AppClient, pool: asyncpg.Pool
) -> None:
    headers = await operator_key(pool, "telco", "viettel")
    await eventually(lambda: known(client, headers), what="the key accepted")
    body = "number\n0912345678\n"
    await post_import(client, headers, body, source="mobifone", status=403)
    key_id = await pool.fetchval("SELECT id FROM api_keys WHERE name = 'telco'")
    changed = await store.keys.set_sources(pool, key_id, ["mobifone"], ACTOR, utc_now())
    assert changed is not None and changed.sources == ("mobifone",)

    async def imported() -> bool:
        response = await client.post(
            "/v1/imports", params={"source": "mobifone"}, data=body, headers=headers
        )
        return response.status == 201

    await eventually(imported, what="the import under the new source taken")
    await post_import(client, headers, body, source="viettel", status=403)


async def test_an_import_never_overwrites_rows_another_active_key_owns(
    client: AppClient, pool: asyncpg.Pool, auth: dict[str, str]
) -> None:
    first = await operator_key(pool, "viettel north", "viettel")
    second = await operator_key(pool, "viettel south", "viettel")
    await eventually(lambda: known(client, first), what="the first key accepted")
    await eventually(lambda: known(client, second), what="the second key accepted")

    def listing(category: str) -> str:
        return f"number,category,note\n0912345678,{category},{category} note\n"

    async def categories() -> list[str]:
        response = await client.get("/v1/numbers/0912345678", headers=auth)
        body = await response.json()
        assert body["sources"] == ["viettel"]
        return list(body["categories"])

    await post_import(client, first, listing("online_loan"))
    await post_import(client, second, listing("investment"))
    assert await categories() == ["online_loan"]  # still the first key's row
    owner = "SELECT api_key_id FROM trusted_listings WHERE number = 84912345678"
    assert await pool.fetchval(owner) == await pool.fetchval(
        "SELECT id FROM api_keys WHERE name = 'viettel north'"
    )
    # A rotation: the first key is revoked, and its rows pass to the next import.
    await store.keys.revoke(pool, None, hash_key(first["Authorization"][7:]), ACTOR, utc_now())
    await post_import(client, second, listing("investment"))

    async def relisted() -> bool:  # once the change feed has cleared the lookup cache
        return await categories() == ["investment"]

    await eventually(relisted, what="the number relisted by the second key")


@pytest.mark.parametrize("query", ["", "?source=", "?source=%00x"])
async def test_a_source_is_required(
    client: AppClient, operator: dict[str, str], query: str
) -> None:
    response = await client.post(
        f"/v1/imports{query}", data="number\n0912345678\n", headers={**operator, **CSV_TYPE}
    )
    assert response.status == 400
    assert "source" in (await response.json())["detail"]


async def test_another_replica_answers_imported_numbers(
    aiohttp_client: ClientFactory, config: Config, operator: dict[str, str], auth: dict[str, str]
) -> None:
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    numbers = [f"+8491{i:07d}" for i in range(5000)]
    body = "number\n" + "\n".join(numbers) + "\n"
    await post_import(first, {**operator, **CSV_TYPE}, body)
    assert await verdict(first, auth, numbers[-1]) == "scam"  # at once where it was imported

    async def learned() -> bool:
        return await verdict(second, auth, numbers[-1]) == "scam"

    await eventually(learned, what="the other replica aware of the import")
    response = await second.post("/v1/lookups", json={"numbers": numbers[:1000]}, headers=auth)
    results = (await response.json())["results"]
    assert {result["verdict"] for result in results} == {"scam"}


async def test_an_imported_number_can_be_delisted(
    client: AppClient, operator: dict[str, str], make_key: MakeKey, auth: dict[str, str]
) -> None:
    await post_import(client, {**operator, **CSV_TYPE}, "number\n0912345678\n")
    admin = {"Authorization": f"Bearer {await make_key('admin')}"}
    response = await client.delete(
        "/v1/numbers/0912345678", json={"reason": "owner appealed"}, headers=admin
    )
    assert (await response.json())["verdict"] == "unknown"
    assert await verdict(client, auth, "0912345678") == "unknown"


async def test_quoted_fields_may_hold_line_breaks(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    body = (
        'number,category,note\n0912345678,other,"first line\nsecond line, and ""quotes"""\n'
        '0987654321,other,plain\n0933333333,other,"never closed\n0944444444,other,\n'
    )
    result = await post_import(client, {**operator, **CSV_TYPE}, body)
    assert {k: result[k] for k in ("rows", "accepted", "rejected")} == {
        "rows": 3,
        "accepted": 2,
        "rejected": 1,
    }
    assert [(e["line"], e["reason"]) for e in result["errors"]] == [
        (5, "a quoted field is not closed")
    ]
    note = await pool.fetchval("SELECT note FROM trusted_listings WHERE number = 84912345678")
    assert note == 'first line\nsecond line, and "quotes"'


async def test_a_parser_process_killed_mid_import_imports_nothing_and_the_next_works(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    parsers = client.app[PARSERS]
    killed = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"number,category\n"
        for start in range(0, 200_000, 20_000):
            yield b"".join(b"+8491%07d,other\n" % n for n in range(start, start + 20_000))
            if start == 100_000:
                await killed.wait()

    async def kill_the_parsers() -> None:
        await eventually(parsers.pids, what="the parsers started")
        for pid in parsers.pids():
            os.kill(pid, signal.SIGKILL)
        killed.set()

    killer = asyncio.create_task(kill_the_parsers())
    response = await client.post(
        "/v1/imports?source=killed", data=body(), headers={**operator, **CSV_TYPE}
    )
    await killer
    assert response.status == 503, await response.text()
    assert response.headers["Retry-After"] == "1"
    assert (await response.json())["type"] == "urn:callguard:problem:parser-lost"
    assert "Send the list again" in (await response.json())["detail"]
    for table in ("trusted_listings", "imports", "import_errors"):
        assert await count(pool, table) == 0, table
    # No worker of the broken pool is left, not even one started as it broke: on Python 3.11
    # such a worker could wait forever, and keep this process from exiting.
    await eventually(
        lambda: not parser_workers(), what=lambda: f"the parsers gone: {parser_workers()}"
    )
    again = await post_import(client, {**operator, **CSV_TYPE}, b"number\n0912345678\n")
    assert again["accepted"] == 1


async def test_a_parser_process_killed_while_idle_does_not_fail_the_next_import(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    await post_import(client, {**operator, **CSV_TYPE}, b"number\n0912345678\n")
    parsers = client.app[PARSERS]
    killed = parsers.pids()[0]
    os.kill(killed, signal.SIGKILL)
    # Gone, reaped by multiprocessing's forkserver.
    await eventually(lambda: not psutil.pid_exists(killed), what=f"parser {killed} gone")
    result = await post_import(client, {**operator, **CSV_TYPE}, b"number\n0987654321\n")
    assert result["accepted"] == 1
    assert await count(pool, "trusted_listings") == 2
    assert killed not in parsers.pids()


def parser_workers() -> list[int]:
    """The live processes multiprocessing's forkserver started: the import parsers."""
    workers = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if "multiprocessing.forkserver" in " ".join(child.cmdline()):
                for worker in child.children():
                    with contextlib.suppress(psutil.Error):
                        if worker.status() != psutil.STATUS_ZOMBIE:
                            workers.append(worker.pid)
    return workers


async def test_a_note_with_an_unpaired_surrogate_refuses_only_its_row(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    body = b'{"number": 84912345675, "note": "\\ud800"}\n{"number": "0987654321"}\n'
    result = await post_import(client, {**operator, **NDJSON_TYPE}, body)
    assert (result["accepted"], result["rejected"]) == (1, 1)
    assert "unpaired surrogate" in result["errors"][0]["reason"]
    assert await count(pool, "trusted_listings") == 1


async def test_sources_and_idempotency_keys_are_identifiers(
    client: AppClient, operator: dict[str, str]
) -> None:
    body = "number\n0912345678\n"
    headers = {**operator, **CSV_TYPE}
    first = await post_import(client, {**headers, "Idempotency-Key": "telco-1"}, body, " viettel")
    assert first["source"] == "viettel"
    again = await post_import(
        client, {**headers, "Idempotency-Key": "\u200btelco-1 "}, body, "viettel\u200b"
    )
    assert again["import_id"] == first["import_id"]
    refused = await post_import(client, headers, body, "%E2%80%8B", status=400)
    assert "'source' must not be empty" in refused["detail"]
    refused = await post_import(client, {**headers, "Idempotency-Key": "\ufeff"}, body, status=400)
    assert "'Idempotency-Key' must not be empty" in refused["detail"]


async def test_reported_at_follows_the_same_rule_as_occurred_at(
    timed_client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    rows = [
        ("0912345678", "2026-11-23T16:09:00"),  # Vietnam time: 09:09Z, within the skew
        ("0912345679", "2026-11-23T09:00:00z"),
        ("0912345680", "2024-03-26"),
        ("0912345681", "2026-11-23T16:11:00"),  # 09:11Z: in the future
        ("0912345682", "2099-01-01T00:00:00+07:00"),
        ("0912345683", "0001-01-01T00:00:00"),
        ("0912345684", "2026-11-23T09:30"),
    ]
    body = "number,reported_at\n" + "".join(f"{n},{t}\n" for n, t in rows)
    result = await post_import(timed_client, {**operator, **CSV_TYPE}, body)
    assert (result["accepted"], result["rejected"]) == (3, 4)
    assert [(e["line"], e["reason"]) for e in result["errors"]] == [
        (5, "'reported_at' is in the future."),
        (6, "'reported_at' is in the future."),
        (7, "'reported_at' is before 2000-01-01."),
        (8, "'reported_at' is not an RFC 3339 time such as 2024-03-26T09:30:00+07:00."),
    ]
    stored = await pool.fetch("SELECT reported_at FROM trusted_listings ORDER BY number")
    assert [row["reported_at"].isoformat() for row in stored] == [
        "2026-11-23T09:09:00+00:00",
        "2026-11-23T09:00:00+00:00",
        "2024-03-25T17:00:00+00:00",
    ]


@pytest.mark.parametrize(
    ("limits", "body", "words"),
    [
        ({"import_max_lines": 1000}, b"number\n" + b"\n" * 999, None),  # at the limit
        ({"import_max_lines": 1000}, b"number\n" + b"\n" * 1000, "more than 1,000 lines"),
        ({"import_max_lines": 1000}, b"number\n" + b"0912345678\n" * 5000, "1,000 lines"),
        ({"import_max_bytes": 100_000}, b"number\n" + b"0912345678\n" * 9090, None),
        ({"import_max_bytes": 100_000}, b"number\n" + b"0912345678\n" * 9091, "100,000 bytes"),
    ],
)
async def test_an_import_larger_than_the_limits_is_refused_with_413(
    aiohttp_client: ClientFactory,
    config: Config,
    operator: dict[str, str],
    pool: asyncpg.Pool,
    limits: dict[str, int],
    body: bytes,
    words: str | None,
) -> None:
    client = await aiohttp_client(create_app(replace(config, import_block_bytes=4096, **limits)))
    for headers in (CSV_TYPE, {**CSV_TYPE, "Content-Encoding": "gzip"}):
        data = body if "Content-Encoding" not in headers else gzip.compress(body)
        response = await client.post(
            "/v1/imports?source=big", data=data, headers={**operator, **headers}
        )
        if words is None:
            assert response.status == 201, await response.text()
            await pool.execute("TRUNCATE trusted_listings, import_errors, imports")
            continue
        assert response.status == 413, await response.text()
        problem = await response.json()
        assert problem["type"] == "urn:callguard:problem:import-too-large"
        assert words in problem["detail"]
        for table in ("trusted_listings", "imports", "import_errors"):
            assert await count(pool, table) == 0, table


async def test_a_gzip_bomb_of_blank_lines_is_refused_at_the_line_limit(
    aiohttp_client: ClientFactory, config: Config, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    client = await aiohttp_client(create_app(replace(config, import_max_lines=100_000)))
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = deflate.compress(b"number\n") + deflate.compress(b"\n" * (1 << 28)) + deflate.flush()
    assert len(bomb) < 1 << 20  # 256 MiB of blank lines in a few hundred kilobytes
    headers = {**operator, **CSV_TYPE, "Content-Encoding": "gzip"}
    response = await client.post("/v1/imports?source=bomb", data=io.BytesIO(bomb), headers=headers)
    assert response.status == 413, await response.text()
    assert "100,000 lines" in (await response.json())["detail"]
    assert await count(pool, "imports") == 0


IN_TRANSACTION = """
SELECT count(*) FROM pg_stat_activity
WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND application_name = 'callguard'
"""


@pytest.mark.slow  # seconds of parsing
async def test_a_client_gone_mid_import_stops_its_parsing_and_transaction(
    client: AppClient, operator: dict[str, str], pool: asyncpg.Pool
) -> None:
    # 20 M rows in under a megabyte of gzip: all of it sits in the server's buffers while
    # the parsers work through it, minutes of work for a client that has left.
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    rows = b"+84912345678,other\n" * 1_000_000
    gzipped = deflate.compress(b"number,category\n")
    gzipped += b"".join(deflate.compress(rows) for _ in range(20)) + deflate.flush()
    head = (
        f"POST /v1/imports?source=gone HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {operator['Authorization']}\r\nContent-Type: text/csv\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {len(gzipped) + 1000}\r\n\r\n"
    ).encode()
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(head + gzipped)
    parsers = client.app[PARSERS]
    await eventually(lambda: pool.fetchval(IN_TRANSACTION), 30, "the import started")
    writer.close()  # and 1000 promised bytes never come
    await writer.wait_closed()

    async def closed() -> bool:
        return not await pool.fetchval(IN_TRANSACTION)

    def parsers_idle() -> bool:
        return all(psutil.Process(pid).status() != psutil.STATUS_RUNNING for pid in parsers.pids())

    await eventually(closed, what="the import's transaction closed")
    await eventually(parsers_idle, what="the parsers idle")
    for table in ("trusted_listings", "imports", "import_errors"):
        assert await count(pool, table) == 0, table
