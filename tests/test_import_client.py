"""`callguard import` and callguard.import_client against the real service, over real HTTP."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler, Middleware
from callguard.app import create_app
from callguard.cli import main
from callguard.config import Config
from callguard.import_client import ImportRefused, ImportResult, Progress, Retries, upload

from tests.conftest import AppClient, MakeKey, eventually

ServerFactory = Callable[..., Awaitable[TestServer]]
ClientOf = Callable[[TestServer], Awaitable[AppClient]]

HEADER = ["number", "category", "reported_at", "note"]
ROWS = [
    ["+84912345678", "impersonation_authority", "2026-11-20T09:15:00+07:00", "Xưng là công an"],
    ["84913345678", "online_loan", "2026-11-21T10:00:00+07:00", ""],
    ["091 444 5678", "fake_recruitment", "", "Tuyển cộng tác viên, việc nhẹ lương cao"],
    ["0162 345 6789", "investment", "2026-11-22T08:00:00+07:00", "số cũ 11 chữ số"],
    ["0123", "other", "", "not a number"],
    ["0912.345.678", "impersonation_authority", "", "the first number again"],
]
"""Six rows: four numbers (one a legacy 11-digit one), one invalid value, one duplicate."""
LISTED = ["+84912345678", "+84913345678", "+84914445678", "+84323456789"]
INVALID_ROW = 5
"""The invalid row's line in NDJSON; in CSV the header makes it line 6."""
COUNTS = ("rows", "accepted", "duplicates", "rejected", "mapped_legacy")


@pytest.fixture
async def server(aiohttp_server: ServerFactory, config: Config) -> TestServer:
    """The real app, listening on 127.0.0.1."""
    return await aiohttp_server(create_app(config), host="127.0.0.1")


@pytest.fixture
async def lookups(aiohttp_client: ClientOf, server: TestServer) -> AppClient:
    """A client of the same server, for what a later lookup says."""
    return await aiohttp_client(server)


@pytest.fixture
async def operator(make_key: MakeKey) -> str:
    return await make_key("operator")


def write_csv(path: Path) -> Path:
    """ROWS as CSV at path, gzipped if its name ends in .gz."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([HEADER, *ROWS])
    data = text.getvalue().encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_ndjson(path: Path) -> Path:
    """ROWS as NDJSON, with the empty fields left out."""
    objects = [
        {name: value for name, value in zip(HEADER, row, strict=True) if value} for row in ROWS
    ]
    path.write_text("".join(json.dumps(obj, ensure_ascii=False) + "\n" for obj in objects))
    return path


async def assert_imported(
    result: ImportResult, lookups: AppClient, key: str, invalid_line: int
) -> None:
    """The counts say what ROWS hold, and every listed number now looks up as a scam."""
    counts = {name: result[name] for name in COUNTS}
    assert counts == {"rows": 6, "accepted": 4, "duplicates": 1, "rejected": 1, "mapped_legacy": 1}
    assert [(error["line"], error["value"]) for error in result["errors"]] == [
        (invalid_line, "0123")
    ]
    for number in LISTED:
        response = await lookups.get(f"/v1/numbers/{number}", headers=bearer(key))
        assert response.status == 200
        assert (await response.json())["verdict"] == "scam", number


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def service_url(server: TestServer) -> str:
    return str(server.make_url(""))


async def test_a_csv_file_is_imported_and_its_numbers_look_up_as_scams(
    server: TestServer, lookups: AppClient, operator: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "police-hanoi.csv")

    result = await upload(path, service_url(server), operator, "police-hanoi")

    assert result["source"] == "police-hanoi"
    await assert_imported(result, lookups, operator, INVALID_ROW + 1)


async def test_an_ndjson_file_is_imported(
    server: TestServer, lookups: AppClient, operator: str, tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "viettel.ndjson")

    result = await upload(path, service_url(server), operator, "viettel")

    await assert_imported(result, lookups, operator, INVALID_ROW)


async def test_a_gzipped_csv_file_is_imported(
    server: TestServer, lookups: AppClient, operator: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "police-hanoi.csv.gz")

    result = await upload(path, service_url(server), operator, "police-hanoi")

    await assert_imported(result, lookups, operator, INVALID_ROW + 1)


async def test_progress_follows_the_file_to_its_end(
    server: TestServer, operator: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "police-hanoi.csv.gz")
    seen: list[Progress] = []

    await upload(path, service_url(server), operator, "police-hanoi", progress=seen.append)

    last = seen[-1]
    assert last.sent
    assert last.read_bytes == last.total_bytes == path.stat().st_size
    assert last.rows == 1 + len(ROWS)


async def test_the_same_idempotency_key_imports_once(
    server: TestServer, operator: str, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "police-hanoi.csv")
    url = service_url(server)

    first = await upload(path, url, operator, "police-hanoi", idempotency_key="2026-11-23")
    again = await upload(path, url, operator, "police-hanoi", idempotency_key="2026-11-23")

    assert again == first


async def test_a_client_key_may_not_import(
    server: TestServer, make_key: MakeKey, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "police-hanoi.csv")
    key = await make_key("client")

    with pytest.raises(ImportRefused) as refused:
        await upload(path, service_url(server), key, "police-hanoi")

    assert refused.value.status == 403
    assert refused.value.detail


async def test_callguard_import_prints_the_counts_and_the_errors(
    server: TestServer,
    lookups: AppClient,
    operator: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write_csv(tmp_path / "police-hanoi.csv")
    argv = ["import", str(path), "--url", service_url(server), "--key", operator, "--progress"]

    # In a thread: the command runs its own event loop, beside the test's serving one.
    status = await asyncio.to_thread(main, argv)

    out, err = capsys.readouterr()
    assert status == 0
    assert "rows/s" in err
    assert "source 'police-hanoi'" in out  # the file's name, without its extension
    assert re.search(r"accepted\s+4$", out, re.MULTILINE)
    assert f"line {INVALID_ROW + 1}: '0123'" in out
    response = await lookups.get(f"/v1/numbers/{LISTED[0]}", headers=bearer(operator))
    assert (await response.json())["verdict"] == "scam"


async def test_callguard_import_exits_1_with_the_services_detail(
    server: TestServer, make_key: MakeKey, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "police-hanoi.csv")
    key = await make_key("client")
    argv = ["import", str(path), "--url", service_url(server), "--key", key]

    status = await asyncio.to_thread(main, argv)

    assert status == 1
    assert "import refused (403)" in capsys.readouterr().err


async def test_a_file_of_any_name_is_imported_by_its_content(
    server: TestServer, lookups: AppClient, operator: str, tmp_path: Path
) -> None:
    csv_file = write_csv(tmp_path / "police-hanoi.txt")
    ndjson_file = tmp_path / "viettel.export"
    ndjson_file.write_bytes(gzip.compress(write_ndjson(tmp_path / "rows").read_bytes()))
    url = service_url(server)

    from_csv = await upload(csv_file, url, operator, "police-hanoi")
    from_ndjson = await upload(ndjson_file, url, operator, "viettel")

    await assert_imported(from_csv, lookups, operator, INVALID_ROW + 1)
    await assert_imported(from_ndjson, lookups, operator, INVALID_ROW)


async def test_callguard_import_takes_the_key_from_callguard_key_and_a_url_without_scheme(
    server: TestServer,
    lookups: AppClient,
    operator: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CALLGUARD_KEY", operator)
    path = write_csv(tmp_path / "police-hanoi.csv")
    argv = ["import", str(path), "--url", f"127.0.0.1:{server.port}"]

    status = await asyncio.to_thread(main, argv)

    assert status == 0, capsys.readouterr().err
    assert re.search(r"accepted\s+4$", capsys.readouterr().out, re.MULTILINE)


def test_callguard_import_needs_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CALLGUARD_KEY", raising=False)
    path = write_csv(tmp_path / "police-hanoi.csv")

    status = main(["import", str(path), "--url", "http://127.0.0.1:9"])

    assert status == 2
    assert "set CALLGUARD_KEY" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8080", "http://", "file:///tmp/x"])
def test_callguard_import_refuses_a_url_it_cannot_send_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    path = write_csv(tmp_path / "police-hanoi.csv")

    with pytest.raises(SystemExit) as exited:
        main(["import", str(path), "--url", url, "--key", "cg_x"])

    assert exited.value.code == 2
    assert f"argument --url: {url!r}: the URL" in capsys.readouterr().err


QUICK_RETRIES = Retries(attempts=3, seconds=60.0, first_wait=0.0)
"""The client's retries without its waits (the service's Retry-After is 0 here)."""


def answering(status: int, times: int, seen: list[str | None]) -> Middleware:
    """A middleware that lets the first `times` imports through to the service, then
    answers `status` with Retry-After: 0 in place of the service's answer (an answer lost to
    an overloaded proxy, say); it notes each import's Idempotency-Key."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/v1/imports" or request.method != "POST":
            return await handler(request)
        seen.append(request.headers.get("Idempotency-Key"))
        response = await handler(request)
        if len(seen) > times:
            return response
        return web.json_response(
            {"title": "busy", "status": status, "detail": "try again"},
            status=status,
            headers={"Retry-After": "0"},
            content_type="application/problem+json",
        )

    return middleware


@pytest.mark.parametrize("status", [503, 429])
async def test_a_retried_import_is_imported_once(
    aiohttp_server: ServerFactory,
    aiohttp_client: ClientOf,
    config: Config,
    operator: str,
    tmp_path: Path,
    status: int,
) -> None:
    seen: list[str | None] = []
    app = create_app(config)
    app.middlewares.append(answering(status, 1, seen))
    server = await aiohttp_server(app, host="127.0.0.1")
    path = write_csv(tmp_path / "police-hanoi.csv")
    waits: list[float] = []

    result = await upload(
        path,
        service_url(server),
        operator,
        "police-hanoi",
        retries=QUICK_RETRIES,
        retrying=lambda refused, seconds: waits.append(seconds),
    )

    assert len(seen) == 2 and seen[0] == seen[1] and seen[0], seen
    assert waits == [0.0]
    assert result["accepted"] == 4
    listing = await (await aiohttp_client(server)).get("/v1/imports", headers=bearer(operator))
    imports = (await listing.json())["imports"]
    assert [entry["import_id"] for entry in imports] == [result["import_id"]]


async def test_retries_are_bounded(
    aiohttp_server: ServerFactory, config: Config, operator: str, tmp_path: Path
) -> None:
    seen: list[str | None] = []
    app = create_app(config)
    app.middlewares.append(answering(503, QUICK_RETRIES.attempts + 1, seen))
    server = await aiohttp_server(app, host="127.0.0.1")
    path = write_csv(tmp_path / "police-hanoi.csv")

    with pytest.raises(ImportRefused) as refused:
        await upload(path, service_url(server), operator, "police-hanoi", retries=QUICK_RETRIES)

    assert refused.value.status == 503
    assert len(seen) == QUICK_RETRIES.attempts


async def test_an_import_told_to_come_back_waits_out_the_restart(
    aiohttp_server: ServerFactory,
    aiohttp_client: ClientOf,
    config: Config,
    operator: str,
    tmp_path: Path,
) -> None:
    # The service takes the import, answers 503 (as one stopping does) and goes away; the
    # client finds the port closed, waits, and sends again to the service started anew.
    seen: list[str | None] = []
    stopping = create_app(config)
    stopping.middlewares.append(answering(503, 1, seen))
    first = await aiohttp_server(stopping, host="127.0.0.1")
    port = first.port
    path = write_csv(tmp_path / "police-hanoi.csv")
    waits: list[tuple[type[Exception], float]] = []
    retries = Retries(attempts=5, seconds=60.0, first_wait=0.5)
    sending = asyncio.create_task(
        upload(
            path,
            service_url(first),
            operator,
            "police-hanoi",
            retries=retries,
            retrying=lambda failure, seconds: waits.append((type(failure), seconds)),
        )
    )
    await eventually(lambda: len(waits) == 1, what="the 503 answered")
    await first.close()
    await eventually(lambda: len(waits) == 2, what="a send finding the port closed")
    restarted = await aiohttp_server(create_app(config), host="127.0.0.1", port=port)
    result = await sending

    assert [kind for kind, _ in waits] == [ImportRefused, aiohttp.ClientConnectorError]
    assert result["accepted"] == 4
    listing = await (await aiohttp_client(restarted)).get("/v1/imports", headers=bearer(operator))
    assert [entry["import_id"] for entry in (await listing.json())["imports"]] == [
        result["import_id"]
    ]


async def test_a_service_never_reached_is_not_retried(tmp_path: Path) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    path = write_csv(tmp_path / "police-hanoi.csv")
    waits: list[float] = []
    with pytest.raises(aiohttp.ClientConnectorError):
        await upload(
            path,
            f"http://127.0.0.1:{port}",
            "cg_key",
            "police-hanoi",
            retries=QUICK_RETRIES,
            retrying=lambda failure, seconds: waits.append(seconds),
        )
    assert waits == []
