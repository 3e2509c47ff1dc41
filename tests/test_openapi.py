"""The OpenAPI description at /openapi.json is valid, names every route, and tells the truth:
real responses match it, and a bounded schemathesis run against the running service finds no
5xx and no response the description does not allow."""

from __future__ import annotations

import asyncio
import copy
import gzip
import io
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import hypothesis
import msgspec
import pytest
import requests
import schemathesis
from aiohttp import ClientResponse, web
from callguard import openapi, store
from callguard.api.bodies import responses_of
from callguard.api.numbers import PHONE_NUMBER
from callguard.app import create_app
from callguard.auth import hash_key, new_key
from callguard.config import Config
from callguard.feed import FEED
from callguard.routes import ROUTES
from callguard.state import POOL
from callguard.web.routes import PAGES
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError
from openapi_spec_validator import validate as validate_openapi

from tests.conftest import (
    TABLES,
    VERIFIED_PHONES,
    AppClient,
    ClientFactory,
    MakeKey,
    own_postgres,
)
from tests.waiting import eventually

SPEC = openapi.spec()
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
NUMBER = "0912345678"
HANDLERS = {
    (route.method, route.path): route.handler for route in ROUTES if isinstance(route, web.RouteDef)
}


def operations() -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(path, METHOD, operation) of every operation in the spec."""
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method.upper(), operation


def body_schema(operation: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema of the operation's JSON request body, $ref resolved; {} if it has none."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is None:
        return {}
    schema: Mapping[str, Any] = SPEC["components"]["schemas"][
        body["schema"]["$ref"].rsplit("/", 1)[1]
    ]
    return schema


def validate(instance: Any, schema: Mapping[str, Any]) -> None:
    """Validate against a schema of the spec; its $refs resolve within the spec."""
    root = {"allOf": [schema], "components": SPEC["components"]}
    Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        instance
    )


def documented(template: str, method: str, status: int) -> Mapping[str, Any]:
    """The response the spec documents for this operation and status, $ref resolved."""
    responses = SPEC["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {template} does not document {status}"
    response: Mapping[str, Any] = responses[str(status)]
    if "$ref" in response:
        response = SPEC["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    return response


async def conforms(response: ClientResponse, template: str, status: int) -> Any:
    """The response's JSON body (or text), once its status, media type, headers and body are
    checked against the spec."""
    text = await response.text()
    assert response.status == status, text
    expected = documented(template, response.method, status)
    for name, header in expected.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, f"{name} missing on {status}"
    content = expected.get("content")
    if not content:
        assert text == ""
        return None
    assert response.content_type in content, f"{response.content_type} not in {list(content)}"
    if not response.content_type.endswith("json"):
        return text
    body = await response.json(content_type=None)
    validate(body, content[response.content_type]["schema"])
    return body


# --- the document itself ----------------------------------------------------------


def test_the_spec_is_valid_openapi_3_1() -> None:
    assert SPEC["openapi"] == "3.1.0"
    validate_openapi(copy.deepcopy(SPEC))


def test_response_checks_check_date_times() -> None:
    with pytest.raises(ValidationError):
        validate("yesterday", {"type": "string", "format": "date-time"})


def test_every_route_is_in_the_spec_and_every_operation_is_a_route() -> None:
    app = create_app(Config(database_url="postgresql://unused"))  # not started
    # The pages (web/routes.py) are HTML for people, not the API: the spec leaves them out.
    pages = {page.path for page in PAGES}
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource and route.resource.canonical not in pages
    }
    # aiohttp answers HEAD on every GET route by itself; the spec leaves HEAD implied.
    heads = {(method, path) for method, path in routes if method == "HEAD"}
    assert {("GET", path) for _method, path in heads} <= routes
    assert {(method, path) for path, method, _operation in operations()} == routes - heads


def test_operation_ids_stay_as_clients_know_them() -> None:
    """An operationId is its handler's name in camelCase unless its mark names it, and
    clients generate SDKs from them: renaming a handler must not change one unawares."""
    assert {operation["operationId"] for _path, _method, operation in operations()} == {
        "createAppeal",
        "createFeedback",
        "createImport",
        "createReport",
        "decideReview",
        "deleteAllowlistEntry",
        "delistNumber",
        "docs",
        "exportList",
        "getAllowlistEntry",
        "getImport",
        "getImportErrors",
        "getList",
        "getNumber",
        "getTrends",
        "healthz",
        "listAllowlist",
        "listAppeals",
        "listAudit",
        "listCategories",
        "listImports",
        "listNumber",
        "listReviews",
        "lookupBatch",
        "metrics",
        "openapi",
        "putAllowlistEntry",
        "readyz",
        "resolveAppeal",
    }


def test_every_operation_documents_its_errors() -> None:
    for path, method, operation in operations():
        statuses = set(operation["responses"])
        assert any(status.startswith("2") for status in statuses), (method, path)
        if path.startswith("/v1/"):
            assert {"401", "503"} <= statuses, (method, path)
            forbidden = operation["responses"].get("403")
            if operation["x-role"] == "client":
                # Any key may call it: a 403 only where a community key may not vouch for a
                # reporter's phone.
                vouches = "reporter_phone" in body_schema(operation).get("properties", {})
                expected = {"$ref": "#/components/responses/CannotVouch"} if vouches else None
                assert forbidden == expected, (method, path)
            else:
                assert forbidden == {"$ref": "#/components/responses/Forbidden"}, (method, path)
        if "requestBody" in operation:
            assert {"400", "415"} <= statuses, (method, path)
        if "{" in path:
            assert "404" in statuses, (method, path)


def test_every_json_answer_is_declared_by_its_handler() -> None:
    """A JSON success body in the spec comes from its handler's declaration (responds), so the
    spec cannot describe a body the handler does not build."""
    for path, method, operation in operations():
        handler = HANDLERS[(method.upper(), path)]
        for status, response in operation["responses"].items():
            if status.startswith("2") and "application/json" in response.get("content", {}):
                declared = responses_of(handler).get(int(status))
                if path == "/openapi.json":
                    assert declared is None  # the document itself: any object
                    continue
                assert declared is not None, (method, path, status)
                body_type, _description = declared
                assert issubclass(body_type, msgspec.Struct), (method, path)
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": f"#/components/schemas/{body_type.__name__}"}


# --- real responses against it ------------------------------------------------------


@pytest.fixture
async def keys(make_key: MakeKey) -> dict[str, dict[str, str]]:
    """Authorization headers of a key of each role."""
    return {
        role: {"Authorization": f"Bearer {await make_key(role)}"}
        for role in ("client", "operator", "admin")
    }


def text_limits() -> Iterator[tuple[str, str, str, int]]:
    """(method, path, field, maxLength) of every length-limited text field of a JSON body."""
    for path, method, operation in operations():
        for field, schema in body_schema(operation).get("properties", {}).items():
            for text in [schema, *schema.get("anyOf", ())]:  # a field that may be null
                if "maxLength" in text and "format" not in text:
                    yield method, path, field, text["maxLength"]


async def test_the_roles_the_spec_names_are_the_roles_enforced(
    client: AppClient, keys: dict[str, dict[str, str]]
) -> None:
    """Whoever the spec says may call an operation gets past the key check, and a key of a
    lower role gets 403 there: the handlers' marks are what both read."""
    names = {"{number}": NUMBER, "{appeal_id}": "1", "{import_id}": "1", "{review_id}": "1"}
    below = {"operator": "client", "admin": "operator", "admin or metrics": "operator"}
    for template, method, operation in operations():
        path = template
        for name, value in names.items():
            path = path.replace(name, value)
        role = operation.get("x-role")
        if role is None:
            response = await client.request(method, path)
            assert response.status not in (401, 403), (method, template)
            continue
        allowed = await client.request(method, path, headers=keys["admin"])
        assert allowed.status not in (401, 403), (method, template)
        if role in below:
            refused = await client.request(method, path, headers=keys[below[role]])
            assert refused.status == 403, (method, template, role)


@pytest.mark.parametrize(("method", "path", "field", "max_length"), list(text_limits()))
async def test_the_spec_has_the_handlers_text_limits(
    client: AppClient,
    make_key: MakeKey,
    method: str,
    path: str,
    field: str,
    max_length: int,
) -> None:
    # An attesting admin key: every operation, and an example's reporter_phone, is allowed.
    admin = {"Authorization": f"Bearer {await make_key('admin', 'attesting')}"}
    content = SPEC["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
    url = path.format(number=NUMBER, appeal_id=1, review_id=1)
    at_limit = {**content["example"], field: "x" * max_length}
    response = await client.request(method, url, json=at_limit, headers=admin)
    assert response.status != 400, await response.text()
    over_limit = {**content["example"], field: "x" * (max_length + 1)}
    response = await client.request(method, url, json=over_limit, headers=admin)
    problem = await conforms(response, path, 400)
    assert f"'{field}' is longer than {max_length}" in problem["detail"]


async def test_public_endpoints_match_the_spec(
    client: AppClient, metrics_auth: dict[str, str]
) -> None:
    assert (await conforms(await client.get("/healthz"), "/healthz", 200)) == {"status": "ok"}
    await conforms(await client.get("/readyz"), "/readyz", 200)
    assert "callguard_http_requests_total" in await conforms(
        await client.get("/metrics", headers=metrics_auth), "/metrics", 200
    )
    served = await client.get("/openapi.json")
    assert served.content_type == "application/json"
    assert await conforms(served, "/openapi.json", 200) == SPEC


async def test_the_docs_page_is_rendered_from_the_spec(client: AppClient) -> None:
    response = await client.get("/docs")
    page = await conforms(response, "/docs", 200)
    assert response.content_type == "text/html"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    for loads_something in ("<script", "<link", " src=", "@import", "url("):
        assert loads_something not in page  # the page must read the same without internet
    for path, method, _operation in operations():
        assert f"{method} {path}" in page
    for name in SPEC["components"]["schemas"]:
        assert f'id="schema-{name.lower()}"' in page


async def test_lookups_and_reports_match_the_spec(
    client: AppClient, keys: dict[str, dict[str, str]], attesting: dict[str, str]
) -> None:
    user = keys["client"]
    categories = await conforms(
        await client.get("/v1/categories", headers=user), "/v1/categories", 200
    )
    assert len(categories["categories"]) == 8
    await conforms(await client.get("/v1/categories"), "/v1/categories", 401)
    wrong = {"Authorization": "Bearer cg_nobody"}
    await conforms(await client.get("/v1/categories", headers=wrong), "/v1/categories", 401)

    number = "/v1/numbers/{number}"
    unknown = await conforms(await client.get(f"/v1/numbers/{NUMBER}", headers=user), number, 200)
    assert unknown["verdict"] == "unknown"
    problem = await conforms(await client.get("/v1/numbers/abc", headers=user), number, 400)
    assert problem["number"] == "abc"
    await conforms(await client.get("/v1/numbers/%7B%7D", headers=user), number, 404)

    reports = "/v1/reports"
    community = {"number": NUMBER, "category": "online_loan", "reporter": "r"}
    created = await conforms(await client.post(reports, json=community, headers=user), reports, 201)
    assert created["verdict"] == "suspicious"  # a community reporter
    for reporter, phone in zip(("r1", "r2", "r3"), VERIFIED_PHONES[:3], strict=True):
        report = {
            "number": NUMBER,
            "category": "online_loan",
            "reporter": reporter,
            "reporter_phone": phone,
        }
        if reporter == "r1":
            report |= {"description": "Vay tiền", "occurred_at": "2024-03-26T09:30:00+07:00"}
        created = await conforms(
            await client.post(reports, json=report, headers=attesting), reports, 201
        )
    assert created["verdict"] == "scam"  # three verified phones
    vouching = {
        "number": NUMBER,
        "category": "other",
        "reporter": "r",
        "reporter_phone": "0987000009",
    }
    problem = await conforms(await client.post(reports, json=vouching, headers=user), reports, 403)
    assert problem["type"] == "urn:callguard:problem:cannot-vouch"
    bad_reports: list[tuple[Any, int]] = [
        ({"number": NUMBER, "category": "nope", "reporter": "r"}, 422),
        ({"number": NUMBER, "category": "other", "reporter": "r", "x": 1}, 400),
        ({"number": NUMBER, "category": "other", "reporter": " "}, 400),
        (
            {
                "number": NUMBER,
                "category": "other",
                "reporter": "r",
                "occurred_at": "3000-01-01T00:00:00+00:00",
            },
            400,
        ),
        (
            {
                "number": NUMBER,
                "category": "other",
                "reporter": "r",
                "occurred_at": "0001-01-01T00:00:00+01:00",
            },
            400,
        ),
        ({"number": "12", "category": "other", "reporter": "r"}, 400),
        ({"number": NUMBER, "category": "other", "reporter": "r", "reporter_phone": "12"}, 400),
        ([], 400),
    ]
    for body, status in bad_reports:
        await conforms(await client.post(reports, json=body, headers=attesting), reports, status)
    await conforms(await client.post(reports, data="number=1", headers=user), reports, 415)
    gzipped = {**user, "Content-Type": "application/json", "Content-Encoding": "br"}
    await conforms(await client.post(reports, data=b"{}", headers=gzipped), reports, 415)
    huge = io.BytesIO(b'{"number": "' + b"0" * (2 << 20) + b'"}')
    await conforms(
        await client.post(reports, data=huge, headers={**user, "Content-Type": "application/json"}),
        reports,
        413,
    )

    english = {**user, "Accept-Language": "en"}
    scam = await conforms(await client.get(f"/v1/numbers/{NUMBER}", headers=english), number, 200)
    assert scam["verdict"] == "scam" and scam["advice"]
    assert scam["reasons"] == ["3 verified reporters over 1 day", "1 unverified reporter"]

    feedback = "/v1/feedback"
    answer = {"number": NUMBER, "reporter": "r4", "verdict": "not_scam", "note": "Shipper"}
    answered = await conforms(await client.post(feedback, json=answer, headers=user), feedback, 201)
    assert answered["verdict"] == "scam"  # a community answer cannot clear verified phones
    for body, status in [
        ({**answer, "verdict": "scam"}, 400),
        ({**answer, "category": "other"}, 400),
        ({**answer, "reporter_phone": "0987000009"}, 403),
    ]:
        await conforms(await client.post(feedback, json=body, headers=user), feedback, status)

    lookups = "/v1/lookups"
    batch = {"numbers": [NUMBER, "abc", "0987654321"]}
    results = await conforms(await client.post(lookups, json=batch, headers=user), lookups, 200)
    assert [result.get("error") for result in results["results"]][1] == "not a phone number"
    batch = {"numbers": [NUMBER, 42]}
    await conforms(await client.post(lookups, json=batch, headers=user), lookups, 400)
    too_many = {"numbers": [NUMBER] * 1001}
    problem = await conforms(await client.post(lookups, json=too_many, headers=user), lookups, 413)
    assert problem["limit"] == 1000
    await conforms(await client.post(lookups, json={"numbers": NUMBER}, headers=user), lookups, 400)


async def test_rate_limited_calls_match_the_spec(
    aiohttp_client: ClientFactory, config: Config, keys: dict[str, dict[str, str]]
) -> None:
    limited = replace(
        config,
        reports_per_reporter_per_day=1,
        lookups_per_key_per_second=1,
        lookup_burst_per_key=2,
        lookup_listed_cost=0,  # NUMBER is reported: two lookups of it fill the bucket
    )
    client = await aiohttp_client(create_app(limited))
    user = keys["client"]
    report = {"number": NUMBER, "category": "other", "reporter": "r"}
    await conforms(await client.post("/v1/reports", json=report, headers=user), "/v1/reports", 201)
    problem = await conforms(
        await client.post("/v1/reports", json=report, headers=user), "/v1/reports", 429
    )
    assert problem["retry_after"] >= 1
    batch = {"numbers": [NUMBER, NUMBER]}
    await conforms(await client.post("/v1/lookups", json=batch, headers=user), "/v1/lookups", 200)
    await conforms(await client.post("/v1/lookups", json=batch, headers=user), "/v1/lookups", 429)
    number = "/v1/numbers/{number}"
    await conforms(await client.get(f"/v1/numbers/{NUMBER}", headers=user), number, 429)


async def test_moderation_matches_the_spec(
    client: AppClient, keys: dict[str, dict[str, str]]
) -> None:
    admin, user = keys["admin"], keys["client"]
    number = "/v1/numbers/{number}"
    listing = {"category": "impersonation_authority", "note": "police notice"}
    url = f"/v1/numbers/{NUMBER}"
    await conforms(await client.put(url, json=listing, headers=user), number, 403)
    listed = await conforms(await client.put(url, json=listing, headers=admin), number, 200)
    assert listed["sources"] and listed["verdict"] == "scam"
    await conforms(await client.put(url, json={"category": "x"}, headers=admin), number, 422)
    await conforms(await client.put(url, json={"note": "n"}, headers=admin), number, 400)
    await conforms(await client.delete(url, json={}, headers=admin), number, 400)
    delisted = await conforms(
        await client.delete(url, json={"reason": "r"}, headers=admin), number, 200
    )
    assert delisted["verdict"] == "unknown"
    await conforms(await client.delete(url, json={"reason": "r"}, headers=admin), number, 404)

    entries, entry = "/v1/allowlist", "/v1/allowlist/{number}"
    hotline = "/v1/allowlist/02513685134"
    put = await conforms(
        await client.put(hotline, json={"owner": "Công an Đồng Nai"}, headers=admin), entry, 200
    )
    assert put["verdict"] == "verified" and put["note"] is None
    report = {"number": "02513685134", "category": "other", "reporter": "r", "description": "?"}
    await conforms(await client.post("/v1/reports", json=report, headers=user), "/v1/reports", 201)
    verified = await conforms(
        await client.get("/v1/numbers/02513685134", headers=user), number, 200
    )
    assert verified["owner"] == "Công an Đồng Nai"
    detail = await conforms(await client.get(hotline, headers=admin), entry, 200)
    assert len(detail["flagged_reports"]) == 1
    listing_all = await conforms(await client.get(entries, headers=admin), entries, 200)
    assert listing_all["entries"][0]["spoofing_reports"] == 1
    await conforms(await client.get(entries, headers=user), entries, 403)
    await conforms(await client.get(f"{hotline}?limit=0", headers=admin), entry, 400)
    await conforms(await client.get(f"/v1/allowlist/{NUMBER}", headers=admin), entry, 404)
    await conforms(await client.put(hotline, json={"owner": ""}, headers=admin), entry, 400)
    await conforms(await client.delete(hotline, headers=admin), entry, 204)
    await conforms(await client.delete(hotline, json={"reason": "r"}, headers=admin), entry, 404)

    appeals, resolve = "/v1/appeals", "/v1/appeals/{appeal_id}/resolve"
    appeal = {"number": NUMBER, "contact": "me@example.com", "message": "my shop"}
    filed = await conforms(await client.post(appeals, json=appeal, headers=user), appeals, 201)
    assert filed["status"] == "open" and filed["resolved_at"] is None
    await conforms(await client.post(appeals, json={"number": NUMBER}, headers=user), appeals, 400)
    listed_appeals = await conforms(
        await client.get(f"{appeals}?status=open", headers=admin), appeals, 200
    )
    assert [a["appeal_id"] for a in listed_appeals["appeals"]] == [filed["appeal_id"]]
    await conforms(await client.get(f"{appeals}?status=closed", headers=admin), appeals, 400)
    await conforms(await client.get(appeals, headers=user), appeals, 403)
    url = f"/v1/appeals/{filed['appeal_id']}/resolve"
    decision = {"decision": "reject", "note": "still reported"}
    await conforms(
        await client.post(url, json={"decision": "maybe", "note": "n"}, headers=admin), resolve, 400
    )
    decided = await conforms(await client.post(url, json=decision, headers=admin), resolve, 200)
    assert decided["status"] == "rejected"
    await conforms(await client.post(url, json=decision, headers=admin), resolve, 409)
    await conforms(
        await client.post("/v1/appeals/99/resolve", json=decision, headers=admin), resolve, 404
    )
    await conforms(
        await client.post("/v1/appeals/x/resolve", json=decision, headers=admin), resolve, 404
    )

    reviews, decide = "/v1/reviews", "/v1/reviews/{review_id}/decide"
    for reporter in range(10):  # ten first-time reporters within minutes: queued for review
        report = {"number": "0933333333", "category": "other", "reporter": f"new-{reporter}"}
        await conforms(
            await client.post("/v1/reports", json=report, headers=user), "/v1/reports", 201
        )
    queued = await conforms(await client.get(f"{reviews}?status=open", headers=admin), reviews, 200)
    [review] = queued["reviews"]
    assert (review["number"], review["sign"], review["status"]) == (
        "+84933333333",
        "newcomers",
        "open",
    )
    await conforms(await client.get(f"{reviews}?status=closed", headers=admin), reviews, 400)
    await conforms(await client.get(reviews, headers=user), reviews, 403)
    url = f"/v1/reviews/{review['review_id']}/decide"
    decision = {"decision": "genuine", "note": "a real campaign"}
    await conforms(
        await client.post(url, json={"decision": "maybe", "note": "n"}, headers=admin), decide, 400
    )
    await conforms(await client.post(url, json=decision, headers=user), decide, 403)
    decided = await conforms(await client.post(url, json=decision, headers=admin), decide, 200)
    assert (decided["status"], decided["note"]) == ("genuine", "a real campaign")
    assert decided["decided_at"] is not None
    await conforms(await client.post(url, json=decision, headers=admin), decide, 409)
    await conforms(
        await client.post("/v1/reviews/99/decide", json=decision, headers=admin), decide, 404
    )
    await conforms(
        await client.post("/v1/reviews/x/decide", json=decision, headers=admin), decide, 404
    )

    audit = await conforms(await client.get("/v1/audit", headers=admin), "/v1/audit", 200)
    assert {entry["action"] for entry in audit["entries"]} >= {
        "list",
        "delist",
        "allowlist_add",
        "review_genuine",
    }
    await conforms(await client.get("/v1/audit?limit=1001", headers=admin), "/v1/audit", 400)


async def test_imports_match_the_spec(client: AppClient, keys: dict[str, dict[str, str]]) -> None:
    operator = keys["operator"]
    imports = "/v1/imports"
    csv = b"number,category,note\n0912345678,online_loan,\nnot-a-number,other,\n0912345678,other,\n"
    headers = {**operator, "Content-Type": "text/csv", "Idempotency-Key": "k1"}
    created = await conforms(
        await client.post(f"{imports}?source=viettel", data=csv, headers=headers), imports, 201
    )
    assert (created["accepted"], created["duplicates"], created["rejected"]) == (1, 1, 1)
    ndjson = gzip.compress(b'{"number": 84987654321, "category": "investment"}\n')
    headers = {**operator, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    await conforms(
        await client.post(f"{imports}?source=police", data=ndjson, headers=headers), imports, 201
    )
    # Refused rows Postgres cannot store as sent, after a first line that shows it is NDJSON.
    unstorable = b'{"number": "0912345678"}\n\x00\n{"number": "\\ud800"}\n'
    headers = {**operator, "Content-Type": "application/x-ndjson"}
    response = await client.post(f"{imports}?source=x", data=unstorable, headers=headers)
    refused = await conforms(response, imports, 201)
    assert [error["value"] for error in refused["errors"]] == ["\\x00", "\\ud800"]
    csv_type = {**operator, "Content-Type": "text/csv"}
    await conforms(
        await client.post(f"{imports}?source=x", data=b"phone\n1\n", headers=csv_type), imports, 400
    )
    await conforms(await client.post(imports, data=csv, headers=csv_type), imports, 400)
    json_type = {**operator, "Content-Type": "application/json"}
    await conforms(
        await client.post(f"{imports}?source=x", data=b"{}", headers=json_type), imports, 415
    )
    client_csv = {**keys["client"], "Content-Type": "text/csv"}
    await conforms(
        await client.post(f"{imports}?source=x", data=csv, headers=client_csv), imports, 403
    )

    listed = await conforms(await client.get(imports, headers=operator), imports, 200)
    assert len(listed["imports"]) == 3
    await conforms(await client.get(f"{imports}?before=0", headers=operator), imports, 400)
    one = "/v1/imports/{import_id}"
    url = f"/v1/imports/{created['import_id']}"
    await conforms(await client.get(url, headers=operator), one, 200)
    await conforms(await client.get("/v1/imports/999", headers=operator), one, 404)
    await conforms(await client.get(url, headers=keys["client"]), one, 403)
    errors = "/v1/imports/{import_id}/errors"
    refused = await conforms(await client.get(f"{url}/errors", headers=operator), errors, 200)
    assert [error["line"] for error in refused["errors"]] == [3]
    await conforms(await client.get(f"{url}/errors?after=-1", headers=operator), errors, 400)
    other_operator = {"Authorization": f"Bearer {new_key()}"}
    await conforms(await client.get(url, headers=other_operator), one, 401)


@pytest.mark.slow  # a Postgres of its own
async def test_answers_while_postgres_is_gone_match_the_spec(
    aiohttp_client: ClientFactory, pg_data_dir: Path
) -> None:
    async with own_postgres(pg_data_dir) as (url, key):
        headers = {"Authorization": f"Bearer {key}"}
        client = await aiohttp_client(
            create_app(Config(database_url=url, filter_min_capacity=10_000))
        )
        listing = {"category": "online_loan"}
        await conforms(
            await client.put(f"/v1/numbers/{NUMBER}", json=listing, headers=headers),
            "/v1/numbers/{number}",
            200,
        )
        feed = client.app[FEED]
        await eventually(lambda: feed.live, what="the feed listening")
        await conforms(
            await client.get(f"/v1/numbers/{NUMBER}", headers=headers), "/v1/numbers/{number}", 200
        )
    await eventually(lambda: not feed.live, what="the feed aware Postgres is gone")
    feed.cache.invalidate(84912345678)
    degraded = await conforms(
        await client.get(f"/v1/numbers/{NUMBER}", headers=headers), "/v1/numbers/{number}", 200
    )
    assert degraded["degraded"] is True
    batch = await conforms(
        await client.post("/v1/lookups", json={"numbers": [NUMBER]}, headers=headers),
        "/v1/lookups",
        200,
    )
    assert batch["results"][0]["degraded"] is True
    report = {"number": NUMBER, "category": "other", "reporter": "r"}
    await conforms(
        await client.post("/v1/reports", json=report, headers=headers), "/v1/reports", 503
    )
    await conforms(await client.get("/readyz"), "/readyz", 503)


# --- schemathesis against the running service -------------------------------------


@dataclass(frozen=True)
class LiveApi:
    """Where the served app answers, and how to call it."""

    url: str
    headers: dict[str, str]
    session: requests.Session


class ServedApp:
    """The app served for real on 127.0.0.1, on an event loop in a thread of its own, so a
    synchronous client (schemathesis uses requests) can call it from the test."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)

    def start(self) -> LiveApi:
        self.thread.start()
        self.run(self._empty_database())
        app = create_app(self.config)
        runner = web.AppRunner(app)
        self.run(runner.setup())
        self.runner = runner
        self.run(web.TCPSite(runner, "127.0.0.1", 0).start())
        host, port = runner.addresses[0][:2]
        key = new_key()
        self.run(store.keys.create(app[POOL], "schemathesis", "admin", hash_key(key)))
        headers = {"Authorization": f"Bearer {key}"}
        return LiveApi(f"http://{host}:{port}", headers, requests.Session())

    async def _empty_database(self) -> None:
        """The same start for every run, so the run is the same."""
        assert self.config.database_url is not None
        conn = await asyncpg.connect(self.config.database_url)
        try:
            await store.database.apply_schema(conn)
            await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        finally:
            await conn.close()

    def stop(self) -> None:
        if self.runner is not None:
            self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=60)
        self.loop.close()


@pytest.fixture(scope="module")
def live_api(database_url: str) -> Iterator[LiveApi]:
    """The service on a free port, on the test database, with an admin key."""
    served = ServedApp(
        Config(database_url=database_url, filter_min_capacity=10_000, import_parsers=1)
    )
    try:
        live = served.start()
        with live.session:
            yield live
    finally:
        served.stop()


MAX_EXAMPLES = 100
"""Generated cases per operation, besides the spec's examples and schemathesis's coverage
cases (boundaries, missing and wrong parameters, other methods): about 2,600 requests, 20-30 s
for the whole run on 2 busy cores."""

PHONE_NUMBERS = st.one_of(
    st.sampled_from(
        [
            "0912345678",
            "+84 912 345 678",
            "(+84) 912.345.678",
            "0084912345678",
            "tel:+84-91-234-5678",
            "0162 123 4567",  # a pre-2018 mobile: +84321234567
            "02513.685.134",
            "+1 650 253 0000",
        ]
    ),
    st.from_regex(r"\A0(3[2-9]|5[689]|7[06-9]|8[1-9]|9[0-9])[0-9]{7}\Z"),
)
"""Numbers for the spec's phone-number format: so many cases name real numbers, which get
listed, reported, verified and delisted in turn, not only text that is no number (400)."""

schemathesis.openapi.format(PHONE_NUMBER, PHONE_NUMBERS)
# Not every query parameter's name is in the spec's hands (OpenAPI cannot forbid the others),
# and the service ignores the ones it does not know, as HTTP APIs do: negative cases change
# the parameters the spec names, and add none.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schema = schemathesis.openapi.from_dict(copy.deepcopy(SPEC))
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
    deterministic=True,
    allow_extra_parameters=False,
)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])
# A batch past its limit (maxItems) is refused as too large, 413, not 400.
refusals = schema.config.checks.negative_data_rejection
refusals.expected_statuses = [*refusals.expected_statuses, "413"]

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.negative_data_rejection,
]


@pytest.mark.slow  # generated requests against a live server
@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # Health checks time data generation, which depends on how busy the machine is; they
    # could fail a run that is otherwise the same every time.
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_schemathesis(case: schemathesis.Case, live_api: LiveApi) -> None:
    """No 5xx, and every status, media type, header and body as the spec says."""
    case.call_and_validate(
        base_url=live_api.url,
        session=live_api.session,
        headers=live_api.headers,
        checks=CHECKS,
        timeout=30,
    )
