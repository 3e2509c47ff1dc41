"""The OpenAPI 3.1 description of the whole HTTP API, built from the handlers' own limits.

Served at GET /openapi.json and rendered as the page at GET /docs (service/api/docs.py);
tests/test_openapi.py checks real responses against it and runs schemathesis on it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

import msgspec
from aiohttp import web

from . import e164 as number_parsing
from . import import_parsing as import_formats
from .api import appeals, imports
from .api.answers import BATCH_RESULT_TYPES
from .api.bodies import NOT_BLANK, accepted_body, responses_of
from .api.numbers import PHONE_NUMBER
from .auth import Role, role_needed
from .categories import CATEGORIES
from .config import Config
from .problems import DOMAIN_ERRORS, ProblemBody, answered_by

Schema = dict[str, Any]

_DEFAULTS = Config()
ID_MAX = 10**18 - 1
"""Path ids are at most 18 digits; longer ones name nothing (404)."""
QUERY_ID_MAX = 2**62
NO_ROUTE = "a path parameter holding `{`, `}` or an unencoded `/` (aiohttp's routing)."
JSON = "application/json"
PROBLEM = "application/problem+json"
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]
PUBLIC: list[dict[str, list[str]]] = []


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _text(max_length: int, description: str) -> Schema:
    """A text parameter read by the rule of a body's text fields (bodies.NOT_BLANK)."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": NOT_BLANK,
        "description": description,
    }


def _int(minimum: int, maximum: int | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    if description:
        schema["description"] = description
    return schema


def _time(description: str, *, nullable: bool = False) -> Schema:
    return {
        "type": ["string", "null"] if nullable else "string",
        "format": "date-time",
        "description": description,
    }


def _obj(properties: Schema, required: list[str] | None = None, description: str = "") -> Schema:
    """An object that allows no other fields; every field is required unless said otherwise."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _schemas() -> Schema:
    return {
        "CategoryId": {
            "type": "string",
            "enum": [category.id for category in CATEGORIES],
            "description": "A scam category; GET /v1/categories lists them with labels. Read in "
            "any letter case.",
        },
        "AppealStatus": {"type": "string", "enum": list(appeals.STATUSES)},
    }


def _header(description: str, schema: Schema | None = None) -> Schema:
    """A response header that is always sent."""
    return {"description": description, "required": True, "schema": schema or {"type": "string"}}


_RETRY_AFTER = _header("Whole seconds to wait before trying again.", {"pattern": "^[0-9]+$"})


def _problem(status: HTTPStatus, description: str, headers: Schema | None = None) -> Schema:
    """A problem+json response of this status."""
    response: Schema = {
        "description": description,
        "content": {
            PROBLEM: {
                "schema": {
                    "allOf": [
                        _ref(ProblemBody.__name__),
                        {"properties": {"status": {"const": int(status)}}},
                    ]
                }
            }
        },
    }
    if headers:
        response["headers"] = headers
    return response


def _responses() -> Schema:
    return {
        "Unauthorized": _problem(
            HTTPStatus.UNAUTHORIZED,
            "No `Authorization: Bearer <key>`, or the key is unknown or revoked.",
            {"WWW-Authenticate": _header('Bearer realm="callguard"')},
        ),
        "Forbidden": _problem(HTTPStatus.FORBIDDEN, "The key's role is too low for this call."),
        "TooManyRefusals": _problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            "Too many requests with a missing or unknown key from this address (each would be "
            "401).",
            {"Retry-After": _RETRY_AFTER},
        ),
        "BodyTooLarge": _problem(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The JSON body is larger than {_DEFAULTS.max_body_bytes} bytes (after gunzip).",
        ),
        "UnsupportedMediaType": _problem(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "The body is not application/json, or its Content-Encoding is not identity or gzip.",
        ),
        "BodyTimeout": _problem(
            HTTPStatus.REQUEST_TIMEOUT,
            "The body did not arrive in time: a slow client does not hold a connection long.",
        ),
        "TooManyReports": _problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            f"Too many reports: over {_DEFAULTS.reports_per_key_per_second:g} a second for the "
            f"key, or {_DEFAULTS.reports_per_reporter_per_day} in 24 hours for the reporter.",
            {"Retry-After": _RETRY_AFTER},
        ),
        "TooManyLookups": _problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            "Too many numbers looked up a second with this key (a batch counts each number; one "
            "left to phonenumbers, and a listed one, count more), or too many of its batches "
            "in progress.",
            {"Retry-After": _RETRY_AFTER},
        ),
        "Unavailable": _problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "Postgres is unreachable or no connection to it came free in time (or, for an "
            "import, a parser process stopped); try again after Retry-After.",
            {"Retry-After": _RETRY_AFTER},
        ),
    }


def _use(name: str) -> Schema:
    return {"$ref": f"#/components/responses/{name}"}


def _json(schema: Schema, description: str, headers: Schema | None = None) -> Schema:
    response: Schema = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


_LOOKUP_HEADERS = {
    "Content-Language": _header("The language of the advice: vi or en.", {"enum": ["vi", "en"]}),
    "Vary": _header("Accept-Language: the advice depends on it.", {"const": "Accept-Language"}),
}


def _bad(description: str) -> Schema:
    return _problem(HTTPStatus.BAD_REQUEST, description)


def _not_found(description: str) -> Schema:
    return _problem(
        HTTPStatus.NOT_FOUND,
        f"{description} Also when the path names no route: {NO_ROUTE}",
    )


def _operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: Schema,
    *,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
) -> Schema:
    """An operation. Who may call it, the domain errors it may end in, and its JSON body are
    added from its handler (_from_handler); `body` is for one that is no JSON (an import)."""
    operation: Schema = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = responses
    return operation


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
        "content": {JSON: {"schema": _ref(body_type.__name__), "example": example}},
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
            "408": _use("BodyTimeout"),
            "413": _use("BodyTooLarge"),
            "415": _use("UnsupportedMediaType"),
            **responses,
        }
    for status, (answer_type, description) in responses_of(handler).items():
        # The body from its declaration; the headers, which no body declares, from _paths.
        responses[str(status)] = {
            **responses.get(str(status), {}),
            "description": description,
            "content": {JSON: {"schema": _ref(answer_type.__name__)}},
        }
    for error in answered_by(handler):
        answer = DOMAIN_ERRORS[error]
        assert answer.description, f"{error.__name__} has no description in DOMAIN_ERRORS"
        responses[str(int(answer.status))] = _problem(answer.status, answer.description)
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
            "401": _use("Unauthorized"),
            "429": _use("TooManyRefusals"),
            "503": _use("Unavailable"),
            **responses,
        }
        if needed is not Role.CLIENT:
            responses["403"] = _use("Forbidden")
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
    """The paths of the routes table (routes.ROUTES), each operation with what its handler
    is marked with, and the schemas of the bodies they declare; a route with no operation
    described here is a mistake, and fails at once."""
    from .routes import ROUTES  # here: the routes name api/docs.py, which serves this module

    routes = [route for route in ROUTES if isinstance(route, web.RouteDef)]
    assert len(routes) == len(ROUTES)
    bodies = {body for route in routes if (body := accepted_body(route.handler)) is not None}
    requests = sorted(bodies, key=lambda body: body.__name__)
    schemas = _components([*requests, *_response_types()])
    described = _paths()
    paths: Schema = {}
    for route in routes:
        item = described[route.path]
        operation = item[route.method.lower()]
        paths.setdefault(route.path, {k: v for k, v in item.items() if k not in _METHODS})
        paths[route.path][route.method.lower()] = _from_handler(operation, route.handler, schemas)
    return paths, schemas


_METHODS = ("get", "put", "post", "delete", "patch")


def _path(name: str, schema: Schema, description: str, example: Any) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
        "example": example,
    }


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


NUMBER_PARAMETER = _path(
    "number",
    {
        "type": "string",
        "format": PHONE_NUMBER,
        "minLength": 1,
        "maxLength": number_parsing.MAX_INPUT_LENGTH,
    },
    "The number, in any form a person types (URL-encoded); invalid text gets 400.",
    "0912345678",
)
ACCEPT_LANGUAGE = {
    "name": "Accept-Language",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "Advice is in Vietnamese unless this prefers English.",
    "example": "en",
}


def _limit(default: int, maximum: int) -> Schema:
    return _query(
        "limit", {**_int(1, maximum), "default": default}, "The most items in the answer."
    )


def _paths() -> Schema:
    bad_number = "The number is not a valid phone number, or the body is malformed."
    bad_body = "The body is not a JSON object of the known fields, or a field is invalid."
    import_id = _path(
        "import_id", _int(1, ID_MAX), "The import's id; ids of other keys' imports get 404.", 1
    )
    paging_before = _query("before", _int(1, QUERY_ID_MAX), "Only entries with a lower id.")
    return {
        "/healthz": {
            "get": _operation(
                "healthz",
                "operations",
                "Liveness",
                "200 while the process is alive.",
                {},
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "operations",
                "Readiness",
                "200 once the Bloom filter is loaded and Postgres answers, else 503.",
                {
                    "503": _problem(
                        HTTPStatus.SERVICE_UNAVAILABLE,
                        "The filter is still loading, or Postgres does not answer.",
                    ),
                },
            )
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "operations",
                "Prometheus metrics",
                "The app's registry in the Prometheus text format (or OpenMetrics, if Accept "
                "asks for it).",
                {
                    "200": {
                        "description": "The metrics.",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    }
                },
            )
        },
        "/openapi.json": {
            "get": _operation(
                "openapi",
                "docs",
                "This description",
                "The OpenAPI 3.1 description of the API.",
                {"200": _json({"type": "object"}, "The OpenAPI document.")},
            )
        },
        "/docs": {
            "get": _operation(
                "docs",
                "docs",
                "The API's documentation page",
                "This description as a self-contained HTML page.",
                {
                    "200": {
                        "description": "An HTML page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
        "/v1/categories": {
            "get": _operation(
                "listCategories",
                "lookups",
                "The scam categories",
                "Every category a report may name, with Vietnamese and English labels.",
                {},
            )
        },
        "/v1/numbers/{number}": {
            "parameters": [NUMBER_PARAMETER],
            "get": _operation(
                "getNumber",
                "lookups",
                "The verdict on one number",
                "The number is normalised to E.164 and judged afresh, as of now.",
                {
                    "200": {"headers": _LOOKUP_HEADERS},
                    "400": _bad("The text is not a valid phone number."),
                    "404": _problem(HTTPStatus.NOT_FOUND, f"The path names no route: {NO_ROUTE}"),
                    "429": _use("TooManyLookups"),
                },
                parameters=[ACCEPT_LANGUAGE],
            ),
            "put": _operation(
                "listNumber",
                "moderation",
                "List a number as a scam",
                "Lists the number on the admin's word until it is delisted; answers the "
                "verdict now. Clients see its source as `moderator`; the audit log names the key.",
                {
                    "200": {"headers": _LOOKUP_HEADERS},
                    "400": _bad(bad_number),
                    "404": _problem(HTTPStatus.NOT_FOUND, f"The path names no route: {NO_ROUTE}"),
                },
                parameters=[ACCEPT_LANGUAGE],
            ),
            "delete": _operation(
                "delistNumber",
                "moderation",
                "Delist a number",
                "Ends every trusted listing now; reports from before now stop counting. Answers "
                "the verdict after.",
                {
                    "200": {"headers": _LOOKUP_HEADERS},
                    "400": _bad(bad_number),
                    "404": _not_found("The number is not listed."),
                },
                parameters=[ACCEPT_LANGUAGE],
            ),
        },
        "/v1/lookups": {
            "post": _operation(
                "lookupBatch",
                "lookups",
                "Verdicts on many numbers",
                "Answers each number in input order; an invalid item gets an `error` and does "
                "not fail the batch.",
                {
                    "200": {"headers": _LOOKUP_HEADERS},
                    "400": _bad('The body is not {"numbers": [...]} of strings.'),
                    "413": _problem(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"More than {_DEFAULTS.batch_limit} numbers, or the body is larger "
                        f"than {_DEFAULTS.max_body_bytes} bytes.",
                    ),
                    "429": _use("TooManyLookups"),
                },
                parameters=[ACCEPT_LANGUAGE],
            )
        },
        "/v1/reports": {
            "post": _operation(
                "createReport",
                "reports",
                "Report a number",
                "A person reports the number that called them. Only an HMAC of `reporter` is "
                "stored. Each reporter counts once per number.",
                {
                    "400": _bad(bad_body),
                    "429": _use("TooManyReports"),
                },
            )
        },
        "/v1/allowlist": {
            "get": _operation(
                "listAllowlist",
                "moderation",
                "Verified numbers",
                "Every verified number, with how many reports against it look like spoofing.",
                {},
            )
        },
        "/v1/allowlist/{number}": {
            "parameters": [NUMBER_PARAMETER],
            "get": _operation(
                "getAllowlistEntry",
                "moderation",
                "One verified number",
                "The entry and its newest reports flagged as possible spoofing.",
                {
                    "400": _bad("The number is not valid, or `limit` is out of range."),
                    "404": _not_found("The number is not on the allowlist."),
                },
                parameters=[_limit(50, 1000)],
            ),
            "put": _operation(
                "putAllowlistEntry",
                "moderation",
                "Verify a number",
                "Its lookups say `verified` with its owner, whatever the reports.",
                {
                    "400": _bad(bad_number),
                    "404": _problem(HTTPStatus.NOT_FOUND, f"The path names no route: {NO_ROUTE}"),
                },
            ),
            "delete": _operation(
                "deleteAllowlistEntry",
                "moderation",
                "Un-verify a number",
                "Its reports count again from now on. The body is optional.",
                {
                    "204": {"description": "Taken off the allowlist."},
                    "400": _bad(bad_number),
                    "404": _not_found("The number is not on the allowlist."),
                },
            ),
        },
        "/v1/appeals": {
            "post": _operation(
                "createAppeal",
                "appeals",
                "Appeal a listing",
                "A number's owner asks for a delisting; an admin decides. A key has one open "
                "appeal per number.",
                {
                    "400": _bad(bad_body),
                    "429": _problem(
                        HTTPStatus.TOO_MANY_REQUESTS,
                        f"Too many appeals: over {_DEFAULTS.appeals_per_key_per_second:g} a "
                        "second for the key.",
                        {"Retry-After": _RETRY_AFTER},
                    ),
                },
            ),
            "get": _operation(
                "listAppeals",
                "appeals",
                "Appeals",
                "Appeals oldest first; page with `after` = the last `appeal_id` seen.",
                {
                    "400": _bad("A query parameter is out of range."),
                },
                parameters=[
                    _query("status", _ref("AppealStatus"), "Only appeals of this status."),
                    _query("after", _int(0, QUERY_ID_MAX), "Only appeals with a higher id."),
                    _limit(100, 1000),
                ],
            ),
        },
        "/v1/appeals/{appeal_id}/resolve": {
            "post": _operation(
                "resolveAppeal",
                "appeals",
                "Decide an appeal",
                "`delist` delists the number at once; `reject` leaves it listed.",
                {
                    "400": _bad(bad_body),
                    "404": _not_found("There is no such appeal."),
                },
                parameters=[_path("appeal_id", _int(1, ID_MAX), "The appeal's id.", 1)],
            )
        },
        "/v1/audit": {
            "get": _operation(
                "listAudit",
                "moderation",
                "The audit log",
                "Every moderation action, newest first; page with `before` = the last `id`.",
                {
                    "400": _bad("A query parameter is out of range."),
                },
                parameters=[paging_before, _limit(100, 1000)],
            )
        },
        "/v1/imports": {
            "post": _operation(
                "createImport",
                "imports",
                "Import a list",
                "Streams a CSV (a header row with a `number` column; `category`, `reported_at` "
                "and `note` optional; `,`, `;` or tab) or NDJSON list into trusted listings. "
                "Every accepted row lands, or none does. Refused rows are counted and listed "
                f"with their reasons (lines over {import_formats.MAX_LINE_BYTES} bytes, invalid "
                "numbers, unknown categories, bad times).",
                {
                    "400": _bad(
                        "Nothing imported: `source` is missing, the body is empty, not CSV or "
                        "NDJSON, has no `number` column, or its gzip stream is cut or corrupt."
                    ),
                    "429": _problem(
                        HTTPStatus.TOO_MANY_REQUESTS,
                        "Nothing read or imported: as many imports as allowed are running for "
                        "the key or on the replica.",
                        {"Retry-After": _RETRY_AFTER},
                    ),
                    "415": _problem(
                        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                        "The body is not text/csv or application/x-ndjson, or its "
                        "Content-Encoding is not identity or gzip.",
                    ),
                    "422": _problem(
                        HTTPStatus.UNPROCESSABLE_ENTITY,
                        "Nothing imported: the Idempotency-Key was used for another list "
                        "or source.",
                    ),
                },
                parameters=[
                    _query(
                        "source",
                        _text(imports.MAX_SOURCE_LENGTH, "Who the list comes from."),
                        "Who the list comes from, e.g. viettel; named in lookups' `sources`.",
                    )
                    | {"required": True, "example": "viettel"},
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": _text(imports.MAX_IDEMPOTENCY_KEY_LENGTH, "Any text."),
                        "description": "The same key from the same API key with the same list "
                        "(compared after gzip decompression) and source returns the first "
                        "import and imports nothing twice; with another list, 422.",
                    },
                    {
                        "name": "Content-Encoding",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "enum": ["identity", "gzip"]},
                        "description": "gzip bodies are decompressed as they stream in.",
                    },
                ],
                body={
                    "required": True,
                    "description": "The list, streamed; at most CALLGUARD_IMPORT_MAX_BYTES after "
                    "decompression and CALLGUARD_IMPORT_MAX_LINES lines.",
                    "content": {
                        import_formats.CSV: {
                            "schema": {"type": "string"},
                            "example": "number,category,reported_at,note\n"
                            "0912345678,online_loan,2024-03-26 09:30,\n",
                        },
                        import_formats.NDJSON: {
                            "schema": {"type": "string"},
                            "example": '{"number": "0912345678", "category": "investment"}\n',
                        },
                    },
                },
            ),
            "get": _operation(
                "listImports",
                "imports",
                "Imports",
                "Imports newest first: an operator's own, or everyone's for an admin.",
                {
                    "400": _bad("A query parameter is out of range."),
                },
                parameters=[paging_before, _limit(100, 1000)],
            ),
        },
        "/v1/imports/{import_id}": {
            "get": _operation(
                "getImport",
                "imports",
                "One import",
                "One import's counts.",
                {
                    "404": _not_found("No such import of the caller's."),
                },
                parameters=[import_id],
            )
        },
        "/v1/imports/{import_id}/errors": {
            "get": _operation(
                "getImportErrors",
                "imports",
                "One import's refused rows",
                "All its refused rows in line order; page with `after` = the last `line`.",
                {
                    "400": _bad("A query parameter is out of range."),
                    "404": _not_found("No such import of the caller's."),
                },
                parameters=[
                    import_id,
                    _query("after", _int(0, QUERY_ID_MAX), "Only rows after this line."),
                    _limit(imports.MAX_ERRORS_PAGE, imports.MAX_ERRORS_PAGE),
                ],
            )
        },
    }


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
