"""`callguard import` and service.upload against the real service, over real HTTP."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.cli import main
from service.config import Config
from service.upload import ImportRefused, ImportResult, Progress, upload
from tests.conftest import AppClient, MakeKey

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


def test_callguard_import_refuses_a_file_of_unknown_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "list.xlsx"
    path.write_bytes(b"")

    with pytest.raises(SystemExit) as exited:
        main(["import", str(path), "--url", "http://127.0.0.1:9", "--key", "cg_x"])

    assert exited.value.code == 2
    assert "must end in .csv" in capsys.readouterr().err
