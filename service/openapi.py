"""The OpenAPI 3.1 description of the whole HTTP API, built by walking the routes table: each
operation from its handler's docstring and marks (role, domain errors, bodies, `documented`).

Served as JSON and rendered as a page by service/api/docs.py; tests/test_openapi.py checks
real responses against it and runs schemathesis on it.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import msgspec
from aiohttp import web

from .api import appeals, reviews
from .api.answers import BATCH_RESULT_TYPES
from .api.bodies import accepted_body, responses_of
from .api.documented import (
    DEFAULTS,
    JSON,
    NO_ROUTE_FOUND,
    RETRY_AFTER,
    Schema,
    header,
    operation_of,
    problem,
    ref,
    use,
)
from .auth import Role, role_needed
from .categories import CATEGORIES
from .problems import DOMAIN_ERRORS, ProblemBody, answered_by

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
PUBLIC: list[dict[str, list[str]]] = []


def _schemas() -> Schema:
    return {
        "CategoryId": {
            "type": "string",
            "enum": [category.id for category in CATEGORIES],
            "description": "A scam category; GET /v1/categories lists them with labels. Read in "
            "any letter case.",
        },
        "AppealStatus": {"type": "string", "enum": list(appeals.STATUSES)},
        "ReviewStatus": {"type": "string", "enum": list(reviews.STATUSES)},
    }


def _responses() -> Schema:
    return {
        "Unauthorized": problem(
            HTTPStatus.UNAUTHORIZED,
            "No `Authorization: Bearer <key>`, or the key is unknown or revoked.",
            {"WWW-Authenticate": header('Bearer realm="callguard"')},
        ),
        "Forbidden": problem(HTTPStatus.FORBIDDEN, "The key's role is too low for this call."),
        "TooManyRefusals": problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            "Too many requests with a missing or unknown key from this address (each would be "
            "401).",
            {"Retry-After": RETRY_AFTER},
        ),
        "BodyTooLarge": problem(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The JSON body is larger than {DEFAULTS.max_body_bytes} bytes (after gunzip).",
        ),
        "UnsupportedMediaType": problem(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "The body is not application/json, or its Content-Encoding is not identity or gzip.",
        ),
        "BodyTimeout": problem(
            HTTPStatus.REQUEST_TIMEOUT,
            "The body did not arrive in time: a slow client does not hold a connection long.",
        ),
        "CannotVouch": problem(
            HTTPStatus.FORBIDDEN,
            "cannot-vouch: this key is a community key and may not send `reporter_phone`; "
            "only an attesting key (its app verifies its users' phones) may.",
        ),
        "TooManyReports": problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            f"Too many reports: over {DEFAULTS.reports_per_key_per_second:g} a second for the "
            f"key, {DEFAULTS.reports_per_reporter_per_day} reports and answers in 24 hours for "
            f"the reporter (a verified phone, across apps), or the key's daily cap "
            f"({DEFAULTS.reports_per_key_per_day} by default) today (UTC).",
            {"Retry-After": RETRY_AFTER},
        ),
        "TooManyLookups": problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            "Too many numbers looked up a second with this key (a batch counts each number; one "
            "left to phonenumbers, and a listed one, count more), or too many of its batches "
            "in progress.",
            {"Retry-After": RETRY_AFTER},
        ),
        "Unavailable": problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "Postgres is unreachable or no connection to it came free in time (or, for an "
            "import, a parser process stopped); try again after Retry-After.",
            {"Retry-After": RETRY_AFTER},
        ),
    }


def _components(types: Iterable[type]) -> Schema:
    """The JSON Schemas (2020-12, as OpenAPI 3.1 takes them) of the declared body types and
    of the types they name, to merge into components.schemas."""
    _, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    return components


def _request_body(body_type: type, schemas: Schema) -> Schema:
    """The requestBody of a handler marked with bodies.accepts: the declared Struct, with
    an example made of its fields' first examples; optional when every field is."""
    schema = schemas[body_type.__name__]
    example = {
        name: examples[0]
        for name, field in schema["properties"].items()
        if (examples := _examples(field))
    }
    return {
        "required": bool(schema.get("required")),
        "content": {JSON: {"schema": ref(body_type.__name__), "example": example}},
    }


def _examples(field: Schema) -> list[Any]:
    """A field's examples, also when it may be null (msgspec puts them in the anyOf)."""
    for branch in [field, *field.get("anyOf", ())]:
        if "examples" in branch:
            examples: list[Any] = branch["examples"]
            return examples
    return []


def _from_handler(operation: Schema, handler: object, schemas: Schema) -> Schema:
    """The operation with what its handler is marked with: its JSON body (bodies.accepts;
    such an operation also answers 408, 413 and 415, which `responses` may describe better),
    the domain errors it may end in (problems.answers, answered as problems.DOMAIN_ERRORS
    say), and who may call it (auth.role_needed): a keyed one also answers 401, 429 (too
    many refused keys) and 503, and 403 above client."""
    responses = dict(operation["responses"])
    body_type = accepted_body(handler)
    if body_type is not None:
        operation = {**operation, "requestBody": _request_body(body_type, schemas)}
        responses = {
            "408": use("BodyTimeout"),
            "413": use("BodyTooLarge"),
            "415": use("UnsupportedMediaType"),
            **responses,
        }
    for status, (answer_type, description) in responses_of(handler).items():
        # The body from its declaration; the headers, which no body declares, from `documented`.
        responses[str(status)] = {
            **responses.get(str(status), {}),
            "description": description,
            "content": {JSON: {"schema": ref(answer_type.__name__)}},
        }
    for error in answered_by(handler):
        answer = DOMAIN_ERRORS[error]
        assert answer.description, f"{error.__name__} has no description in DOMAIN_ERRORS"
        responses[str(int(answer.status))] = problem(answer.status, answer.description)
    needed = role_needed(handler)
    if needed is None:
        operation = {**operation, "security": PUBLIC}
    else:
        if isinstance(needed, frozenset):
            names = sorted(role.name.lower() for role in needed)
            role, needs = " or ".join(names), " or ".join(f"`{name}`" for name in names)
        else:
            role = needed.name.lower()
            needs = f"`{role}` or above"
        operation = {
            **operation,
            "x-role": role,
            "description": f"{operation['description']}\n\nNeeds a key of role {needs}.",
        }
        responses = {
            "401": use("Unauthorized"),
            "429": use("TooManyRefusals"),
            "503": use("Unavailable"),
            **responses,
        }
        if needed is not Role.CLIENT:
            responses["403"] = use("Forbidden")
    return {**operation, "responses": dict(sorted(responses.items()))}


def _response_types() -> list[type]:
    """Every body a handler of the routes table is marked to answer (bodies.responds), the
    batch results LookupResults names by reference, and the problem every error is."""
    from .routes import ROUTES

    types: dict[type, None] = {}
    for route in ROUTES:
        assert isinstance(route, web.RouteDef)
        for body_type, _ in responses_of(route.handler).values():
            types[body_type] = None
    return [*types, *BATCH_RESULT_TYPES, ProblemBody]


def _routed_paths() -> tuple[Schema, Schema]:
    """The paths of the routes table (routes.ROUTES), each operation read from its handler,
    and the schemas of the bodies they declare. A path's parameters, declared by each of its
    handlers, are stated once on the path."""
    from .routes import ROUTES  # here: the routes name api/docs.py, which serves this module

    routes = [route for route in ROUTES if isinstance(route, web.RouteDef)]
    assert len(routes) == len(ROUTES)
    bodies = {body for route in routes if (body := accepted_body(route.handler)) is not None}
    requests = sorted(bodies, key=lambda body: body.__name__)
    schemas = _components([*requests, *_response_types()])
    paths: Schema = {}
    for route in routes:
        in_path, operation = _operation(route, schemas)
        item = paths.setdefault(route.path, {"parameters": in_path} if in_path else {})
        assert item.get("parameters", []) == in_path, f"{route.path}: path parameters differ"
        item[route.method.lower()] = operation
    return paths, schemas


def _operation(route: web.RouteDef, schemas: Schema) -> tuple[list[Schema], Schema]:
    """The path parameters a route's handler declares, and its operation: summary and
    description from its docstring, the rest from its marks (_from_handler)."""
    handler = route.handler
    declared = operation_of(handler)
    in_path = [parameter for parameter in declared.parameters if parameter["in"] == "path"]
    named = re.findall(r"\{(\w+)\}", route.path)
    assert [parameter["name"] for parameter in in_path] == named, (
        f"{route.method} {route.path}: declare the path parameters {named}"
    )
    summary, description = _prose(handler)
    operation: Schema = {
        "operationId": declared.operation_id or _camel_case(handler.__name__),
        "tags": [declared.tag],
        "summary": summary,
        "description": description,
    }
    if parameters := [parameter for parameter in declared.parameters if parameter["in"] != "path"]:
        operation["parameters"] = parameters
    if declared.body is not None:
        operation["requestBody"] = declared.body
    responses = dict(declared.responses)
    if named and "404" not in responses:
        responses["404"] = NO_ROUTE_FOUND
    operation["responses"] = responses
    return in_path, _from_handler(operation, handler, schemas)


def _prose(handler: object) -> tuple[str, str]:
    """A handler's docstring as its operation's summary (the first paragraph) and
    description (the rest), each paragraph's lines joined into one."""
    doc = inspect.getdoc(handler)
    assert doc, f"{handler!r} has no docstring"
    paragraphs = [" ".join(part.split("\n")) for part in doc.split("\n\n")]
    return paragraphs[0], "\n\n".join(paragraphs[1:])


def _camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


DESCRIPTION = """\
Is the number calling me a reported scam number? callguard answers that for phone apps and
telecom operators' switches in Vietnam.

Every `/v1` call needs `Authorization: Bearer <key>`. Roles nest: `client` (lookups, reports,
appeals) < `operator` (+ bulk imports) < `admin` (+ moderation). A `metrics` key reads
`/metrics` (as an admin key may) and nothing else. A missing, unknown or revoked key gets
401 (429 once an address has had too many); a key whose role is too low, 403.

JSON in and out; JSON bodies may be sent gzipped (`Content-Encoding: gzip`) and are limited
to 1 MiB once decompressed. Every error is an RFC 9457 `application/problem+json` with `type`,
`title`, `status` and `detail`. A method a path does not offer gets 405 with `Allow`.
"""


@functools.cache
def spec() -> Schema:
    """The whole OpenAPI document. Built once; callers must not change it."""
    paths, bodies = _routed_paths()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callguard",
            "version": "1",
            "summary": "Caller-ID scam-number lookups for Vietnam.",
            "description": DESCRIPTION,
        },
        "tags": [
            {"name": "lookups", "description": "Is this number a scam? Any key."},
            {"name": "reports", "description": "People report the numbers that called them."},
            {"name": "appeals", "description": "Owners ask for delistings; admins decide."},
            {"name": "moderation", "description": "Admin keys only."},
            {"name": "imports", "description": "Operators and police units push whole lists."},
            {
                "name": "operations",
                "description": "Health (no key) and metrics (a metrics or admin key).",
            },
            {"name": "docs", "description": "This description; no key."},
        ],
        "security": BEARER,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key made by `callguard keys create`.",
                }
            },
            "schemas": _schemas() | bodies,
            "responses": _responses(),
        },
    }
