"""GET /healthz and /readyz."""

from __future__ import annotations

from pathlib import Path

import pytest
from callguard.app import create_app
from callguard.config import Config
from callguard.embedded import database_url

from tests.conftest import AppClient, ClientFactory


async def test_healthz(client: AppClient) -> None:
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "ok"})


async def test_readyz_when_the_filter_is_loaded_and_the_database_answers(
    client: AppClient, auth: dict[str, str]
) -> None:
    body = {"number": "0912345678", "category": "other", "reporter": "r"}
    await client.post("/v1/reports", json=body, headers=auth)
    response = await client.get("/readyz")
    assert (response.status, await response.json()) == (
        200,
        {"status": "ready", "filter_entries": 1},
    )


@pytest.mark.slow  # a Postgres of its own
async def test_readyz_is_503_when_the_database_is_gone(
    aiohttp_client: ClientFactory, pg_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with database_url(None, pg_data_dir) as url:  # a Postgres of this test's own
        client = await aiohttp_client(create_app(Config(database_url=url)))
        assert (await client.get("/readyz")).status == 200
    # Leaving the block stopped that Postgres under the running app.
    response = await client.get("/readyz")
    assert response.status == 503
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["detail"] == "The database does not answer."
    # Where the database is (its socket's directory, or host and port) is not told to
    # whoever asks; the log has the error.
    text = await response.text()
    assert str(pg_data_dir) not in text and "Error" not in text
    logged = [
        record.getMessage() for record in caplog.records if record.name == "callguard.api.health"
    ]
    assert logged and "Error" in logged[-1]
    assert (await client.get("/healthz")).status == 200
