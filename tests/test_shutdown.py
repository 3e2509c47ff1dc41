"""Graceful shutdown of the real `callguard serve` on the embedded Postgres: SIGTERM stops
accepting connections, lets requests in flight finish within shutdown_timeout, closes the
pool, exits 0, and loses no report or import that was answered 201."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
import pytest
from callguard.embedded import database_url

from tests.processes import COMMAND_TIMEOUT, STOP_TIMEOUT, Cli, Server, free_port
from tests.test_workers import is_running, listening_workers
from tests.waiting import eventually, eventually_sync

pytestmark = pytest.mark.slow  # serves and stops real `callguard serve` processes

LOAD_CLIENTS = 32
"""Clients posting reports at once: more than the pool's 10 connections, so some always wait."""
LOAD_SECONDS = 1.5
REPORTS_PER_CLIENT = 20_000
"""A bound on each client's loop (and its block of numbers); load ends with the server."""
EXIT_TIMEOUT = 15.0
"""From SIGTERM to exit. aiohttp allows requests in flight far longer (shutdown_timeout); a
report takes milliseconds, and a slow upload here ends within a few seconds of the signal."""
REFUSED_TIMEOUT = 5.0
"""From SIGTERM to the listening socket's close."""
CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=60)
IMPORT_ROWS = 5000
LOCK_TIMEOUT = 30.0
"""Until the import waits for the test's lock: its upload has been read and parsed."""
IN_FLIGHT_SECONDS = 1.0
"""How long the import is held in flight after SIGTERM; the server must wait for it."""
UPLOAD_CHUNKS = 100
UPLOAD_ROWS_PER_CHUNK = 50
CHUNK_SECONDS = 0.1
"""An upload of UPLOAD_CHUNKS chunks would take 10 s."""
CHUNKS_BEFORE_SIGTERM = 3
SLOW_HEADERS_SECONDS = 10.0
"""How long a client keeps sending header lines, ten times the keep-alive timeout it is
given: closed before it ends, it was closed by that timeout."""


@dataclass
class Load:
    """What the report clients saw."""

    created: dict[int, str] = field(default_factory=dict)
    """The id and E.164 number of every report answered 201."""
    statuses: Counter[int] = field(default_factory=Counter)
    sigterm_at: float | None = None
    created_after_sigterm: int = 0
    """201s that arrived after SIGTERM was sent: requests in flight, finished."""
    cut: int = 0
    """Requests the closing server cut off without an answer (they may have been stored)."""
    refused: int = 0
    refused_while_running: int = 0
    """Connections refused while the server process was still running: it stopped listening
    before it stopped."""


async def wait_for_exit(server: Server, timeout: float) -> int:
    """The process's exit status, once it has exited, within `timeout`."""
    await eventually(
        lambda: server.process.poll() is not None, timeout, "serve exited after SIGTERM"
    )
    return server.process.wait()


async def until_refused(server: Server) -> None:
    """Return once a new connection to the server is refused, within REFUSED_TIMEOUT (or
    reset: one the kernel queued for accept is reset when the listening socket closes)."""

    async def refused() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        except (ConnectionRefusedError, ConnectionResetError):
            return True
        writer.close()
        await writer.wait_closed()
        return False

    await eventually(refused, REFUSED_TIMEOUT, lambda: f"new connections refused:\n{server.log()}")


async def post_reports(
    session: aiohttp.ClientSession, server: Server, key: str, client: int, load: Load
) -> None:
    """Post reports of distinct numbers by distinct reporters until a connection is refused."""
    headers = {"Authorization": f"Bearer {key}"}
    for n in range(REPORTS_PER_CLIENT):
        report = {
            "number": f"0912{client * REPORTS_PER_CLIENT + n:06d}",
            "category": "online_loan",
            "reporter": f"shutdown-{client}-{n}",
        }
        try:
            async with session.post(
                f"{server.url}/v1/reports", json=report, headers=headers
            ) as response:
                body = await response.json(content_type=None)
        except aiohttp.ClientConnectorError:
            load.refused += 1
            if server.process.poll() is None:
                load.refused_while_running += 1
            return
        except aiohttp.ClientError:  # the connection closed or reset under the request
            load.cut += 1
            continue
        load.statuses[response.status] += 1
        if response.status == 201:
            load.created[body["report_id"]] = body["number"]
            if load.sigterm_at is not None:
                load.created_after_sigterm += 1


async def load_then_sigterm(server: Server, key: str) -> tuple[Load, int]:
    """Post reports from LOAD_CLIENTS clients, SIGTERM the server after LOAD_SECONDS, and keep
    posting until it refuses; what the clients saw, and the server's exit status."""
    load = Load()
    connector = aiohttp.TCPConnector(limit=LOAD_CLIENTS)
    async with aiohttp.ClientSession(connector=connector, timeout=CLIENT_TIMEOUT) as session:
        clients = [
            asyncio.create_task(post_reports(session, server, key, client, load))
            for client in range(LOAD_CLIENTS)
        ]
        try:
            await asyncio.sleep(LOAD_SECONDS)
            assert load.created, f"no report stored before SIGTERM: {load}\n{server.log()}"
            load.sigterm_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            status = await wait_for_exit(server, EXIT_TIMEOUT)
            await asyncio.wait_for(asyncio.gather(*clients), REFUSED_TIMEOUT)
        finally:
            for task in clients:
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
    return load, status


def assert_stopped_cleanly(cli: Cli, server: Server, status: int) -> None:
    """Exit status 0, nothing logged at error level, and the embedded Postgres stopped after
    every connection to it was closed: its log (pgserver's data_dir/log) would show a FATAL
    "terminating connection" for one left open, and an "unexpected EOF" for one dropped."""
    log = server.log()
    assert status == 0, log
    assert '"level": "error"' not in log, log
    assert "Traceback" not in log, log
    assert not (cli.data_dir / "postmaster.pid").exists(), "embedded Postgres left running"
    postgres_log = (cli.data_dir / "log").read_text()
    assert "FATAL" not in postgres_log, postgres_log
    assert "unexpected EOF" not in postgres_log, postgres_log


def assert_load_shut_down(load: Load, log: str) -> None:
    """The clients saw requests in flight answered after SIGTERM, then connections refused
    while the server still ran, and only the answers a busy or stopping server may give."""
    assert load.created_after_sigterm > 0, load
    assert load.refused == LOAD_CLIENTS, load  # every client ended on a refused connection
    assert load.refused_while_running > 0, load
    assert set(load.statuses) <= {201, 429, 503}, load
    logged = log.count('"route": "/v1/reports", "status": 201,')
    assert logged >= len(load.created), f"{logged} access log lines for {len(load.created)} 201s"


async def stored(data_dir: Path, query: str, *args: Any) -> list[asyncpg.Record]:
    """The rows of a query on the service's embedded Postgres (shared while serve runs)."""
    with database_url(None, data_dir) as url:
        conn = await asyncpg.connect(url)
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query, *args)
            return rows
        finally:
            await conn.close()


async def assert_reports_kept(cli: Cli, key: str, load: Load) -> None:
    """After a restart, every report answered 201 is there, as answered; the only others are
    some of those cut off without an answer."""
    with cli.serve(free_port()) as server:
        rows = await stored(
            cli.data_dir,
            "SELECT id, number FROM reports WHERE id = ANY($1::bigint[])",
            list(load.created),
        )
        ((total,),) = await stored(cli.data_dir, "SELECT count(*) FROM reports")
        assert {row["id"]: f"+{row['number']}" for row in rows} == load.created
        assert len(load.created) <= total <= len(load.created) + load.cut
        last_id = max(load.created)
        status, body = server.request("GET", f"/v1/numbers/{load.created[last_id]}", key)
        assert (status, body["report_count"]) == (200, 1), body
        assert server.terminate() == 0, server.log()


async def test_sigterm_under_load_loses_no_report_answered_201(callguard: Cli) -> None:
    key = callguard.create_key("client", "load")

    with callguard.serve(free_port()) as server:
        load, status = await load_then_sigterm(server, key)
        assert_stopped_cleanly(callguard, server, status)
        assert_load_shut_down(load, server.log())

    await assert_reports_kept(callguard, key, load)


async def test_workers_under_load_stop_on_sigterm_and_lose_no_report(callguard: Cli) -> None:
    key = callguard.create_key("client", "load")

    with callguard.serve(free_port(), "--workers", "2") as server:
        listening_workers(server)
        load, status = await load_then_sigterm(server, key)
        assert_stopped_cleanly(callguard, server, status)
        assert_load_shut_down(load, server.log())

    await assert_reports_kept(callguard, key, load)


def csv_rows(first: int, count: int) -> bytes:
    """CSV rows listing `count` numbers from 0913000000 + first."""
    return "".join(f"0913{n:06d},online_loan\n" for n in range(first, first + count)).encode()


async def slow_csv(uploading: asyncio.Event) -> AsyncIterator[bytes]:
    """A CSV list sent a chunk every CHUNK_SECONDS; sets `uploading` once
    CHUNKS_BEFORE_SIGTERM chunks are out."""
    yield b"number,category\n"
    for chunk in range(UPLOAD_CHUNKS):
        yield csv_rows(chunk * UPLOAD_ROWS_PER_CHUNK, UPLOAD_ROWS_PER_CHUNK)
        if chunk + 1 == CHUNKS_BEFORE_SIGTERM:
            uploading.set()
        await asyncio.sleep(CHUNK_SECONDS)


async def post_import(
    session: aiohttp.ClientSession, server: Server, key: str, source: str, body: Any
) -> tuple[int, Any]:
    """(status, JSON body) of a POST /v1/imports."""
    async with session.post(
        f"{server.url}/v1/imports",
        params={"source": source},
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
    ) as response:
        return response.status, await response.json(content_type=None)


async def assert_stops_accepting_first(
    server: Server, request: asyncio.Task[tuple[int, Any]]
) -> None:
    """SIGTERM the server; it must refuse new connections while it still runs and the
    request in flight is still unanswered."""
    server.process.send_signal(signal.SIGTERM)
    await until_refused(server)
    assert not request.done(), f"answered before the listening socket closed: {request}"
    assert server.process.poll() is None, f"exited with a request in flight:\n{server.log()}"


async def trusted_listings_of(cli: Cli, source: str) -> int:
    """How many numbers the source lists, read after a restart."""
    with cli.serve(free_port()) as server:
        ((count,),) = await stored(
            cli.data_dir, "SELECT count(*) FROM trusted_listings WHERE source = $1", source
        )
        assert server.terminate() == 0, server.log()
    return int(count)


async def test_an_import_in_flight_at_sigterm_is_finished_and_kept(
    callguard: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CALLGUARD_SHUTDOWN_TIMEOUT", raising=False)  # the default, 60 s
    key = callguard.create_key("operator", "telco")
    body = b"number,category\n" + csv_rows(0, IMPORT_ROWS)

    with callguard.serve(free_port()) as server:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
            # The test holds a lock the import's merge needs: once the import waits for it,
            # its whole upload has been read, and SIGTERM finds it in flight.
            with database_url(None, callguard.data_dir) as url:
                conn = await asyncpg.connect(url)
                try:
                    async with conn.transaction():
                        await conn.execute("LOCK TABLE trusted_listings IN EXCLUSIVE MODE")
                        upload = asyncio.create_task(
                            post_import(session, server, key, "in-flight", body)
                        )
                        await until_waiting_for_a_lock(conn, upload)
                        await assert_stops_accepting_first(server, upload)
                        await asyncio.sleep(IN_FLIGHT_SECONDS)
                        assert not upload.done(), upload
                        assert server.process.poll() is None, server.log()
                finally:
                    await conn.close()
            status, answer = await asyncio.wait_for(upload, CLIENT_TIMEOUT.total)
        assert_stopped_cleanly(callguard, server, await wait_for_exit(server, EXIT_TIMEOUT))

    assert status == 201, answer
    assert (answer["rows"], answer["accepted"]) == (IMPORT_ROWS, IMPORT_ROWS), answer
    assert await trusted_listings_of(callguard, "in-flight") == IMPORT_ROWS


async def until_waiting_for_a_lock(
    conn: asyncpg.Connection, request: asyncio.Task[tuple[int, Any]]
) -> None:
    """Return once a session waits for a lock on trusted_listings, within LOCK_TIMEOUT."""
    waiting = (
        "SELECT count(*) FROM pg_locks"
        " WHERE NOT granted AND relation = 'trusted_listings'::regclass"
    )

    async def waits() -> bool:
        assert not request.done(), request
        return bool(await conn.fetchval(waiting))

    await eventually(waits, LOCK_TIMEOUT, "the import waiting at its merge")


async def test_an_upload_still_arriving_at_sigterm_is_answered_503_at_once_and_rolled_back(
    callguard: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiohttp reads nothing more from a connection once shutdown starts, so an upload still
    # arriving cannot finish: it is told so at once (not after the upload's idle timeout,
    # nor the shutdown timeout, both well past EXIT_TIMEOUT), and nothing is imported.
    monkeypatch.delenv("CALLGUARD_SHUTDOWN_TIMEOUT", raising=False)  # the default, 60 s
    key = callguard.create_key("operator", "telco")

    with callguard.serve(free_port()) as server:
        uploading = asyncio.Event()
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:

            async def post() -> tuple[int, str | None, Any]:
                async with session.post(
                    f"{server.url}/v1/imports",
                    params={"source": "cut"},
                    data=slow_csv(uploading),
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
                ) as response:
                    body = await response.json(content_type=None)
                    return response.status, response.headers.get("Retry-After"), body

            upload = asyncio.create_task(post())
            try:
                await asyncio.wait_for(uploading.wait(), CLIENT_TIMEOUT.total)
                server.process.send_signal(signal.SIGTERM)
                status = await wait_for_exit(server, EXIT_TIMEOUT)
                answer = await asyncio.wait_for(upload, CLIENT_TIMEOUT.total)
            finally:
                upload.cancel()
                await asyncio.gather(upload, return_exceptions=True)
        assert_stopped_cleanly(callguard, server, status)

    code, retry_after, problem = answer
    assert (code, retry_after) == (503, "1"), answer
    assert problem["type"] == "urn:callguard:problem:stopping", problem
    assert "Send the list again" in problem["detail"], problem
    assert await trusted_listings_of(callguard, "cut") == 0


async def test_a_client_slow_to_send_its_headers_is_closed(
    callguard: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLGUARD_KEEPALIVE_TIMEOUT", "1")
    with callguard.serve(free_port()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")

        async def closed() -> bool:  # a header line now and then, never the end
            try:
                writer.write(b"X-Slow: yes\r\n")
                await writer.drain()
            except ConnectionError:
                return True
            return reader.at_eof()

        await eventually(closed, SLOW_HEADERS_SECONDS, "closed while sending headers", every=0.2)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed without an answer
        writer.close()


def test_kill_9_leaves_no_parser_and_a_later_clean_stop_stops_postgres(
    callguard: Cli, tmp_path: Path
) -> None:
    key = callguard.create_key("operator", "telco")
    listed = tmp_path / "list.csv"
    listed.write_bytes(b"number,category\n" + csv_rows(0, IMPORT_ROWS))

    with callguard.serve(free_port()) as server:
        imported = subprocess.run(
            [*callguard.argv, "import", str(listed), "--url", server.url, "--key", key],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        assert imported.returncode == 0, imported.stderr
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert children, "the import started no parser process"

        server.process.kill()
        server.process.wait()

        eventually_sync(
            lambda: not any(map(is_running, children)),
            STOP_TIMEOUT,
            lambda: f"every child of the killed serve stopped: {children}",
        )

    with callguard.serve(free_port()) as server:
        assert server.terminate() == 0, server.log()
    assert not (callguard.data_dir / "postmaster.pid").exists(), "embedded Postgres left running"
