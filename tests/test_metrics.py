"""GET /metrics: Prometheus text that promtool accepts, with figures that follow the traffic."""

from __future__ import annotations

import io
import random
import subprocess

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from callguard.app import create_app
from callguard.config import Config
from callguard.metrics import LATENCY_BUCKETS, RequestTally, outcome_of
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import VERIFIED_PHONES, AppClient, ClientFactory, MakeKey


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: AppClient, metrics_auth: dict[str, str]) -> str:
    response = await client.get("/metrics", headers=metrics_auth)
    assert response.status == 200
    assert response.content_type == "text/plain"
    return await response.text()


async def make_traffic(client: AppClient, auth: dict[str, str], attesting: dict[str, str]) -> None:
    """One number reported in each lane and answered not a scam once: still suspicious."""
    report = {"number": "0987654321", "category": "investment", "reporter": "r1"}
    assert (await client.post("/v1/reports", json=report, headers=auth)).status == 201
    verified = {**report, "reporter_phone": VERIFIED_PHONES[0]}
    assert (await client.post("/v1/reports", json=verified, headers=attesting)).status == 201
    answer = {"number": "0987654321", "reporter": "r2", "verdict": "not_scam"}
    assert (await client.post("/v1/feedback", json=answer, headers=auth)).status == 201
    for number in ("0912345678", "0987654321", "0987654321", "abc"):
        await client.get(f"/v1/numbers/{number}", headers=auth)
    await client.post("/v1/lookups", json={"numbers": ["0911111111", "0987654321"]}, headers=auth)
    await client.get("/v1/categories")


@pytest.mark.parametrize("role", ["client", "operator"])
async def test_metrics_need_a_metrics_or_admin_key(
    client: AppClient, make_key: MakeKey, role: str
) -> None:
    assert (await client.get("/metrics")).status == 401
    for allowed in ("metrics", "admin"):
        headers = {"Authorization": f"Bearer {await make_key(allowed)}"}
        assert (await client.get("/metrics", headers=headers)).status == 200
    response = await client.get(
        "/metrics", headers={"Authorization": f"Bearer {await make_key(role)}"}
    )
    assert response.status == 403
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/numbers/0912345678", None),
        ("POST", "/v1/lookups", {"numbers": ["0912345678"]}),
        ("POST", "/v1/reports", {"number": "0912345678", "category": "other", "reporter": "r"}),
        ("POST", "/v1/appeals", {"number": "0912345678", "contact": "c", "message": "m"}),
        ("GET", "/v1/categories", None),
    ],
)
async def test_a_metrics_key_can_do_nothing_else(
    client: AppClient, metrics_auth: dict[str, str], method: str, path: str, body: object
) -> None:
    response = await client.request(method, path, json=body, headers=metrics_auth)
    assert response.status == 403
    assert response.content_type == "application/problem+json"


@pytest.mark.slow  # runs promtool
async def test_promtool_accepts_the_metrics(
    client: AppClient,
    auth: dict[str, str],
    attesting: dict[str, str],
    metrics_auth: dict[str, str],
) -> None:
    await make_traffic(client, auth, attesting)
    text = await scrape(client, metrics_auth)
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_the_figures_follow_the_traffic(
    client: AppClient,
    auth: dict[str, str],
    attesting: dict[str, str],
    metrics_auth: dict[str, str],
) -> None:
    await make_traffic(client, auth, attesting)
    figures = samples(await scrape(client, metrics_auth))

    def value(name: str, **labels: str) -> float:
        return figures[(name, tuple(sorted(labels.items())))]

    for lane in ("community", "verified"):
        assert value("callguard_reports_accepted_total", category="investment", lane=lane) == 1
    assert value("callguard_feedback_accepted_total", lane="community") == 1
    assert ("callguard_feedback_accepted_total", (("lane", "verified"),)) not in figures
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
    client: AppClient, metrics_auth: dict[str, str]
) -> None:
    for i in range(20):
        await client.get(f"/random/{i}")
    figures = samples(await scrape(client, metrics_auth))
    routes = {dict(labels).get("route") for name, labels in figures if "http_requests" in name}
    assert routes == {"unmatched"}  # a scrape is counted only after it is answered


async def test_each_app_has_its_own_registry(
    aiohttp_client: ClientFactory,
    config: Config,
    auth: dict[str, str],
    metrics_auth: dict[str, str],
) -> None:
    first = await aiohttp_client(create_app(config))
    second = await aiohttp_client(create_app(config))
    await first.get("/v1/numbers/0912345678", headers=auth)
    unknown = ("callguard_lookups_total", (("verdict", "unknown"),))
    assert samples(await scrape(first, metrics_auth))[unknown] == 1
    assert samples(await scrape(second, metrics_auth))[unknown] == 0


async def test_request_latency_is_the_histogram_prometheus_client_would_give() -> None:
    # RequestTally keeps plain numbers; prometheus_client's own Histogram is the oracle,
    # with values on every bucket bound, between them, and past the last.
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/v1/numbers/{number}", handler)
    request = make_mocked_request("GET", "/v1/numbers/0912345678", app=app)
    request._match_info = await app.router.resolve(request)
    tally = RequestTally(LATENCY_BUCKETS)
    registry, oracle_registry = CollectorRegistry(), CollectorRegistry()
    registry.register(tally)
    oracle = Histogram(
        "callguard_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template and method.",
        ["route", "method"],
        buckets=LATENCY_BUCKETS,
        registry=oracle_registry,
    )
    rng = random.Random(5)
    values = [*LATENCY_BUCKETS, 0.0, 2.5, *(rng.uniform(0, 1.2) ** 3 for _ in range(300))]
    for seconds in values:
        tally.observe(outcome_of(request, 200), seconds)
        oracle.labels("/v1/numbers/{number}", "GET").observe(seconds)

    def histogram(registry: CollectorRegistry) -> dict[object, float]:
        return {
            key: value
            for key, value in samples(generate_latest(registry).decode()).items()
            if key[0].startswith("callguard_http_request_duration_seconds")
            and not key[0].endswith("_created")
        }

    assert histogram(registry) == histogram(oracle_registry)
    labels = (("method", "GET"), ("route", "/v1/numbers/{number}"), ("status", "200"))
    counted = samples(generate_latest(registry).decode())[("callguard_http_requests_total", labels)]
    assert counted == len(values)


async def test_the_filter_counts_each_number_once(
    client: AppClient, auth: dict[str, str], make_key: MakeKey, metrics_auth: dict[str, str]
) -> None:
    operator = {"Authorization": f"Bearer {await make_key('operator')}", "Content-Type": "text/csv"}
    body = "number,category\n" + "0912345678,online_loan\n" * 50_000 + "0933333333,other\n"
    response = await client.post(
        "/v1/imports?source=telco", data=io.BytesIO(body.encode()), headers=operator
    )
    assert response.status == 201, await response.text()
    for reporter in ("r1", "r2"):  # numbers the filter already holds
        report = {"number": "0912345678", "category": "online_loan", "reporter": reporter}
        assert (await client.post("/v1/reports", json=report, headers=auth)).status == 201
    figures = samples(await scrape(client, metrics_auth))
    assert figures[("callguard_filter_entries", ())] == 2


async def test_an_invalid_batch_item_is_no_lookup_and_no_filter_check(
    client: AppClient, auth: dict[str, str], metrics_auth: dict[str, str]
) -> None:
    batch = {"numbers": ["0911111111", "abc", "12", "", "+84 1"]}
    response = await client.post("/v1/lookups", json=batch, headers=auth)
    assert response.status == 200
    results = (await response.json())["results"]
    assert [("error" in result) for result in results] == [False, True, True, True, True]
    figures = samples(await scrape(client, metrics_auth))
    assert figures[("callguard_lookups_total", (("verdict", "unknown"),))] == 1
    assert figures[("callguard_filter_checks_total", (("outcome", "negative"),))] == 1
