"""What one import, or many, may cost everyone else: slots, pace, pools, stored errors, and
the Bloom filter, which learns an import's numbers only once it has committed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from callguard.app import create_app
from callguard.config import Config
from callguard.state import POOL

from tests.conftest import AppClient, ClientFactory, MakeKey, eventually

IN_IMPORT = """
SELECT count(*) FROM pg_stat_activity
WHERE application_name = 'callguard' AND query LIKE '%import_staging%'
AND pid <> pg_backend_pid()
"""
"""Imports that have opened their transaction (their last statement made the staging table)."""


class Upload:
    """A raw POST /v1/imports on its own connection: headers and a CSV header row sent, the
    rest of its promised megabyte not (yet)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.answering = asyncio.create_task(self._answer())

    @classmethod
    async def start(cls, port: int, key: str, source: str, first: bytes = b"number\n") -> Upload:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /v1/imports?source={source} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: text/csv\r\n"
            "Content-Length: 1000000\r\n\r\n"
        )
        writer.write(head.encode() + first)
        await writer.drain()
        return cls(reader, writer)

    async def answer(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        """The status, headers and problem the service answered (waits at most 20 s)."""
        return await self.answering

    async def _answer(self) -> tuple[int, dict[str, str], dict[str, Any]]:
        async with asyncio.timeout(20):
            head = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = head.decode().split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            body = await self.reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), headers, json.loads(body)

    def answered(self) -> bool:
        return self.answering.done()

    def close(self) -> None:
        self.answering.cancel()
        self.writer.close()


@pytest.fixture
async def uploads() -> AsyncIterator[list[Upload]]:
    """Uploads the test starts, closed at its end."""
    started: list[Upload] = []
    yield started
    for upload in started:
        upload.close()


async def in_import(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(IN_IMPORT)
    return count


async def test_imports_past_the_limits_per_key_and_in_all_are_429_and_read_nothing(
    aiohttp_client: ClientFactory,
    config: Config,
    make_key: MakeKey,
    pool: asyncpg.Pool,
    uploads: list[Upload],
) -> None:
    config = replace(config, imports_per_key=2, imports_at_once=3)
    client = await aiohttp_client(create_app(config))
    first, second, third = [await make_key("operator") for _ in range(3)]
    for key in (first, first, second):
        uploads.append(await Upload.start(client.port, key, "held"))
    await eventually(lambda: _equals(in_import(pool), 3), what="three imports running")

    refusals = ((first, "2 imports are in progress for this key"), (third, "on this replica"))
    for key, words in refusals:
        refused = await Upload.start(client.port, key, "refused")
        uploads.append(refused)
        status, headers, problem = await refused.answer()
        assert status == 429, problem
        assert int(headers["retry-after"]) >= 1
        assert problem["type"] == "urn:callguard:problem:rate-limited"
        assert words in problem["detail"]
    assert await in_import(pool) == 3  # the refused took no connection

    uploads[0].close()  # one of the first key's ends: its slot is free again
    await eventually(lambda: _equals(in_import(pool), 2), what="the closed import ended")
    done = await client.post(
        "/v1/imports?source=after",
        data=b"number\n+84912345678\n",
        headers={"Authorization": f"Bearer {first}", "Content-Type": "text/csv"},
    )
    assert done.status == 201, await done.text()


async def _equals(count: Any, expected: int) -> bool:
    return bool(await count == expected)


async def test_stalled_uploads_leave_reports_and_lookups_their_connections(
    aiohttp_client: ClientFactory,
    config: Config,
    make_key: MakeKey,
    pool: asyncpg.Pool,
    uploads: list[Upload],
) -> None:
    client = await aiohttp_client(create_app(config))
    keys = [await make_key("operator") for _ in range(4)]
    client_key = {"Authorization": f"Bearer {await make_key('client')}"}
    listed = await client.post(
        "/v1/imports?source=listed",
        data=b"number\n+84912345678\n",
        headers={"Authorization": f"Bearer {keys[0]}", "Content-Type": "text/csv"},
    )
    assert listed.status == 201  # in the filter, and nobody has looked it up: not cached
    assert (await client.get("/healthz", headers=client_key)).status == 200  # the key is known

    for n in range(12):
        uploads.append(await Upload.start(client.port, keys[n % 4], "stalled"))

    # Every upload is in an import, or refused, as far as the database connections allow.
    async def taken() -> bool:
        refused = sum(upload.answered() for upload in uploads)
        return refused + await in_import(pool) >= min(len(uploads), config.pool_max_size)

    await eventually(taken, what="the uploads taken in")
    async with asyncio.timeout(10):  # well before the uploads' 30 s idle timeout
        report = await client.post(
            "/v1/reports",
            json={"number": "0987654321", "category": "investment", "reporter": "r1"},
            headers=client_key,
        )
        lookup = await client.get("/v1/numbers/+84912345678", headers=client_key)
        body = await lookup.json()
    assert report.status == 201, await report.text()
    assert lookup.status == 200
    assert body["verdict"] == "scam" and not body.get("degraded")
    answers = [await upload.answer() for upload in uploads if upload.answered()]
    assert answers and all(status == 429 for status, _, _ in answers)


async def test_a_request_that_finds_no_free_connection_is_503_at_once(
    aiohttp_client: ClientFactory, config: Config, auth: dict[str, str]
) -> None:
    config = replace(config, pool_min_size=1, pool_max_size=1, pool_acquire_timeout=0.2)
    client: AppClient = await aiohttp_client(create_app(config))
    assert (await client.get("/v1/numbers/0912345678", headers=auth)).status == 200
    async with client.app[POOL].acquire(timeout=5):  # the pool's only connection, held
        async with asyncio.timeout(10):
            response = await client.post(
                "/v1/reports",
                json={"number": "0987654321", "category": "investment", "reporter": "r1"},
                headers=auth,
            )
            problem = await response.json()
    assert response.status == 503, problem
    assert response.headers["Retry-After"] == "1"
    assert problem["type"] == "urn:callguard:problem:database-busy"
    assert "within 0.2 s" in problem["detail"]
    response = await client.post(
        "/v1/reports",
        json={"number": "0987654321", "category": "investment", "reporter": "r1"},
        headers=auth,
    )
    assert response.status == 201  # and once the connection is back, all is as before


async def test_an_upload_slower_than_the_minimum_pace_is_408_and_imports_nothing(
    aiohttp_client: ClientFactory,
    config: Config,
    make_key: MakeKey,
    pool: asyncpg.Pool,
    uploads: list[Upload],
) -> None:
    config = replace(config, import_grace_seconds=0.5, import_min_bytes_per_second=64 << 10)
    client = await aiohttp_client(create_app(config))
    upload = await Upload.start(client.port, await make_key("operator"), "trickle")
    uploads.append(upload)

    async def trickle() -> None:  # a row every 0.1 s: never idle, never fast enough
        for n in range(1000):
            upload.writer.write(b"+8491%07d\n" % n)
            await upload.writer.drain()
            await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle())
    try:
        status, _headers, problem = await upload.answer()
    finally:
        trickling.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await trickling
    assert status == 408, problem
    assert "averaged less than 64 KiB/s after 0.5 s" in problem["detail"]
    for table in ("imports", "trusted_listings"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0


async def filter_entries(client: AppClient) -> int:
    return int((await (await client.get("/readyz")).json())["filter_entries"])


async def test_an_import_that_fails_adds_nothing_to_the_filter(
    aiohttp_client: ClientFactory,
    config: Config,
    make_key: MakeKey,
    pool: asyncpg.Pool,
    uploads: list[Upload],
) -> None:
    config = replace(config, import_block_bytes=16 << 10, upload_idle_timeout=1.0)
    client = await aiohttp_client(create_app(config))
    before = await filter_entries(client)
    rows = b"".join(b"+8491%07d\n" % n for n in range(20_000))
    upload = await Upload.start(client.port, await make_key("operator"), "cut", b"number\n" + rows)
    uploads.append(upload)
    status, _headers, problem = await upload.answer()  # then nothing more: 408
    assert status == 408, problem
    assert await pool.fetchval("SELECT count(*) FROM trusted_listings") == 0
    assert await filter_entries(client) == before


@pytest.mark.slow  # imports 100,000 refused rows
async def test_error_pages_and_stored_errors_are_capped(
    client: AppClient, make_key: MakeKey, pool: asyncpg.Pool
) -> None:
    operator = {"Authorization": f"Bearer {await make_key('operator')}"}
    bad_rows = 100_010  # each a row without a number
    body = b"number,category\n" + b",other\n" * bad_rows + b"+84912345678,other\n"
    response = await client.post(
        "/v1/imports?source=bad", data=body, headers={**operator, "Content-Type": "text/csv"}
    )
    summary = await response.json()
    assert response.status == 201, summary
    assert (summary["rows"], summary["accepted"], summary["rejected"]) == (
        bad_rows + 1,
        1,
        bad_rows,
    )
    assert summary["errors_stored"] == 100_000
    assert len(summary["errors"]) == 1000
    import_id = summary["import_id"]
    stored = await pool.fetchval(
        "SELECT count(*) FROM import_errors WHERE import_id = $1", import_id
    )
    assert stored == 100_000
    got = await client.get(f"/v1/imports/{import_id}", headers=operator)
    assert (await got.json())["errors_stored"] == 100_000

    page = await client.get(f"/v1/imports/{import_id}/errors?limit=5000", headers=operator)
    assert len((await page.json())["errors"]) == 5000
    page = await client.get(f"/v1/imports/{import_id}/errors?after=100000", headers=operator)
    assert [e["line"] for e in (await page.json())["errors"]] == [100_001]  # the last stored
    too_many = await client.get(f"/v1/imports/{import_id}/errors?limit=5001", headers=operator)
    assert too_many.status == 400
    assert "from 1 to 5000" in (await too_many.json())["detail"]
