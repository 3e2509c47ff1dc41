"""GET /metrics: Prometheus text that promtool accepts, with figures that follow the traffic."""

from __future__ import annotations

import subprocess

from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.config import Config
from tests.conftest import AppClient, ClientFactory


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: AppClient) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return await response.text()


async def make_traffic(client: AppClient, auth: dict[str, str]) -> None:
    report = {"number": "0987654321", "category": "investment", "reporter": "r1"}
    assert (await client.post("/v1/reports", json=report, headers=auth)).status == 201
    for number in ("0912345678", "0987654321", "0987654321", "abc"):
        await client.get(f"/v1/numbers/{number}", headers=auth)
    await client.post("/v1/lookups", json={"numbers": ["0911111111", "0987654321"]}, headers=auth)
    await client.get("/v1/categories")


async def test_promtool_accepts_the_metrics(client: AppClient, auth: dict[str, str]) -> None:
    await make_traffic(client, auth)
    text = await scrape(client)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_the_figures_follow_the_traffic(client: AppClient, auth: dict[str, str]) -> None:
    await make_traffic(client, auth)
    figures = samples(await scrape(client))

    def value(name: str, **labels: str) -> float:
        return figures[(name, tuple(sorted(labels.items())))]

    assert value("callguard_reports_accepted_total", category="investment") == 1
    assert value("callguard_filter_checks_total", outcome="negative") == 2
    assert value("callguard_filter_checks_total", outcome="listed") == 3
    assert value("callguard_lookups_total", verdict="unknown") == 2
    assert value("callguard_lookups_total", verdict="suspicious") == 3
    assert value("callguard_filter_entries") == 1
    assert value("callguard_filter_bytes") > 0
    assert value("callguard_filter_capacity") == 10_000
    assert value("callguard_db_pool_connections") >= 1
    assert value("callguard_db_pool_connections_in_use") == 0
    route = "/v1/numbers/{number}"
    assert value("callguard_http_requests_total", route=route, method="GET", status="200") == 3
    assert value("callguard_http_requests_total", route=route, method="GET", status="400") == 1
    assert (
        value("callguard_http_requests_total", route="/v1/categories", method="GET", status="401")
        == 1
    )
    assert value("callguard_http_request_duration_seconds_count", route=route, method="GET") == 4


async def test_unmatched_paths_do_not_make_new_series(
    client: AppClient, auth: dict[str, str]
) -> None:
    for i in range(20):
        await client.get(f"/random/{i}")
    figures = samples(await scrape(client))
    routes = {dict(labels).get("route") for name, labels in figures if "http_requests" in name}
    assert routes == {"unmatched"}  # a scrape is counted only after it is answered


async def test_each_app_has_its_own_registry(
    aiohttp_client: ClientFactory, config: Config, auth: dict[str, str]
) -> None:
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    await first.get("/v1/numbers/0912345678", headers=auth)
    unknown = ("callguard_lookups_total", (("verdict", "unknown"),))
    assert samples(await scrape(first))[unknown] == 1
    assert samples(await scrape(second))[unknown] == 0
