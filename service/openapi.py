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
from . import store
from .api import appeals, imports
from .api.bodies import NOT_BLANK, accepted_body
from .api.numbers import PHONE_NUMBER
from .auth import Role, role_needed
from .categories import CATEGORIES
from .config import Config
from .problems import DOMAIN_ERRORS, answered_by
from .reputation import Verdict

Schema = dict[str, Any]

_DEFAULTS = Config()
ID_MAX = 10**18 - 1
"""Path ids are at most 18 digits; longer ones name nothing (404)."""
QUERY_ID_MAX = 2**62
E164 = r"^\+[1-9][0-9]{1,14}$"
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


def _report_day(description: str) -> Schema:
    return {
        "type": ["string", "null"],
        "format": "date",
        "description": f"{description} The day only, in Vietnam time (UTC+7): an exact time "
        "would tell the number's owner when, and so who, reported it.",
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


def _list_of(name: str, field: str, description: str) -> Schema:
    return _obj({field: {"type": "array", "items": _ref(name)}}, description=description)


def _verdict_properties() -> Schema:
    """The fields of a lookup answer (service/api/numbers.py, answer_body)."""
    return {
        "number": _ref("E164"),
        "verdict": _ref("Verdict"),
        "score": _int(0, 100, "0-100: trusted (70 if a trusted source lists it) + community."),
        "report_count": _int(0, description="Reports since the number's last delisting."),
        "reporter_count": _int(0, description="Distinct reporters counting now."),
        "categories": {"type": "array", "items": _ref("CategoryId")},
        "first_reported_at": _report_day("The day of the first report since the last delisting."),
        "last_reported_at": _report_day("The day of the latest report since the last delisting."),
        "owner": {"type": "string", "description": "Only for a `verified` number: who owns it."},
        "sources": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Only for a `scam` number a trusted source lists: the sources.",
        },
        "advice": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Only for `suspicious` and `scam`: advice per category, in the "
            "language Content-Language names.",
        },
        "degraded": {
            "type": "boolean",
            "description": "Present (true) when Postgres was unreachable and the answer came "
            "from the Bloom filter and the cache alone.",
        },
    }


_VERDICT_REQUIRED = [
    "number",
    "verdict",
    "score",
    "report_count",
    "reporter_count",
    "categories",
    "first_reported_at",
    "last_reported_at",
]


def _schemas() -> Schema:
    summary = {
        "import_id": _int(1),
        "source": {"type": "string"},
        "created_at": _time("When the import started."),
        "rows": _int(0, description="Data rows read: accepted + duplicates + rejected."),
        "accepted": _int(0),
        "duplicates": _int(0, description="Valid rows whose number came earlier in the file."),
        "rejected": _int(0),
        "mapped_legacy": _int(0, description="Pre-2018 11-digit mobiles mapped to today's."),
        "errors_stored": _int(
            0,
            description="Refused rows whose details are kept for the errors call: all, up "
            f"to the first {store.imports.STORED_ERRORS} of an import.",
        ),
    }
    appeal = {
        "appeal_id": _int(1),
        "number": _ref("E164"),
        "contact": {"type": "string"},
        "message": {"type": "string"},
        "status": _ref("AppealStatus"),
        "created_at": _time("When it was filed."),
        "resolved_at": _time("When an admin decided it.", nullable=True),
        "resolution_note": {"type": ["string", "null"]},
    }
    entry = {
        "number": _ref("E164"),
        "owner": {"type": "string"},
        "note": {"type": ["string", "null"]},
        "added_at": _time("When it was verified."),
        "spoofing_reports": _int(0, description="Reports against it flagged as spoofing."),
    }
    return {
        "E164": {
            "type": "string",
            "pattern": E164,
            "description": "A number in E.164 form.",
            "examples": ["+84912345678"],
        },
        "Verdict": {"type": "string", "enum": [verdict.value for verdict in Verdict]},
        "CategoryId": {
            "type": "string",
            "enum": [category.id for category in CATEGORIES],
            "description": "A scam category; GET /v1/categories lists them with labels. Read in "
            "any letter case.",
        },
        "AppealStatus": {"type": "string", "enum": list(appeals.STATUSES)},
        "Problem": {
            "type": "object",
            "description": "An RFC 9457 problem: every error is one.",
            "properties": {
                "type": {
                    "type": "string",
                    "pattern": r"^(about:blank|urn:callguard:problem:[a-z-]+)$",
                    "description": "urn:callguard:problem:<kind>, or about:blank.",
                },
                "title": {"type": "string", "description": "The status's reason phrase."},
                "status": _int(400, 599),
                "detail": {"type": "string", "description": "What went wrong, for people."},
                "number": {"type": "string", "description": "400: the text that is no number."},
                "categories": {
                    "type": "array",
                    "items": _ref("CategoryId"),
                    "description": "422 unknown-category: the known categories.",
                },
                "retry_after": _int(1, description="429: seconds to wait, as in Retry-After."),
                "limit": _int(1, description="413 batch-too-large: the most numbers a call."),
                "appeal_id": _int(1, description="409 appeal-open: the appeal still open."),
                "source": {
                    "type": "string",
                    "description": "403 source-forbidden: the source the key may not use.",
                },
            },
            "required": ["type", "title", "status", "detail"],
            "additionalProperties": False,
        },
        "NumberVerdict": {
            **_obj(_verdict_properties(), _VERDICT_REQUIRED),
            "description": "The verdict on one number, judged afresh at every lookup.",
        },
        "LookupAnswer": _obj(
            {"input": {"type": "string", "description": "The item as sent."}}
            | _verdict_properties(),
            ["input", *_VERDICT_REQUIRED],
            "A valid item of a batch: its input and its verdict.",
        ),
        "LookupError": _obj(
            {
                "input": {"type": "string", "description": "The item as sent."},
                "error": {"type": "string", "description": "Why it is not a number."},
            },
            description="An invalid item of a batch; it does not fail the batch.",
        ),
        "LookupResults": _obj(
            {
                "results": {
                    "type": "array",
                    "items": {"oneOf": [_ref("LookupAnswer"), _ref("LookupError")]},
                    "description": "One per number sent, in input order.",
                }
            }
        ),
        "ReportCreated": _obj(
            {"report_id": _int(1), "number": _ref("E164"), "verdict": _ref("Verdict")}
        ),
        "Categories": _obj(
            {
                "categories": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": _ref("CategoryId"),
                            "label_vi": {"type": "string"},
                            "label_en": {"type": "string"},
                        }
                    ),
                }
            }
        ),
        "AllowlistEntry": _obj(entry, description="A verified number."),
        "AllowlistEntryDetail": _obj(
            entry
            | {
                "flagged_reports": {
                    "type": "array",
                    "description": "The newest reports against it flagged as possible spoofing.",
                    "items": _obj(
                        {
                            "report_id": _int(1),
                            "category": _ref("CategoryId"),
                            "description": {"type": ["string", "null"]},
                            "occurred_at": _time(
                                "When the caller says it happened.", nullable=True
                            ),
                            "received_at": _time("When the report came in."),
                        }
                    ),
                }
            }
        ),
        "AllowlistEntries": _list_of("AllowlistEntry", "entries", "Verified numbers, by number."),
        "AllowlistPut": _obj(
            {
                "number": _ref("E164"),
                "owner": {"type": "string"},
                "note": {"type": ["string", "null"]},
                "verdict": _ref("Verdict"),
            }
        ),
        "Appeal": _obj(appeal),
        "Appeals": _list_of("Appeal", "appeals", "Appeals, oldest first."),
        "AuditEntries": _obj(
            {
                "entries": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": _int(1),
                            "at": _time("When it was done."),
                            "api_key_id": {
                                "type": ["integer", "null"],
                                "description": "The key that did it; null for the command line.",
                            },
                            "actor": {"type": "string", "examples": ["key:3:moderator", "cli"]},
                            "action": {
                                "type": "string",
                                "description": "allowlist_add, allowlist_remove, list, delist, "
                                "appeal_delisted, appeal_rejected or key_revoke.",
                            },
                            "number": {"oneOf": [_ref("E164"), {"type": "null"}]},
                            "reason": {"type": ["string", "null"]},
                            "detail": {"type": "object", "description": "The action's details."},
                        }
                    ),
                }
            },
            description="Moderation actions, newest first.",
        ),
        "ImportSummary": _obj(summary, description="What an import did."),
        "ImportError": _obj(
            {
                "line": _int(1, description="The refused row's line; a CSV header is line 1."),
                "value": {"type": "string", "description": "The offending value, shortened."},
                "reason": {"type": "string"},
            }
        ),
        "ImportCreated": _obj(
            summary
            | {
                "errors": {
                    "type": "array",
                    "items": _ref("ImportError"),
                    "maxItems": imports.INLINE_ERRORS,
                    "description": f"The first {imports.INLINE_ERRORS} refused rows.",
                }
            }
        ),
        "Imports": _list_of("ImportSummary", "imports", "Imports, newest first."),
        "ImportErrors": _obj(
            {"import_id": _int(1), "errors": {"type": "array", "items": _ref("ImportError")}}
        ),
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
                    "allOf": [_ref("Problem"), {"properties": {"status": {"const": int(status)}}}]
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


def _lookup(description: str) -> Schema:
    return _json(_ref("NumberVerdict"), description, _LOOKUP_HEADERS)


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


def _routed_paths() -> tuple[Schema, Schema]:
    """The paths of the routes table (routes.ROUTES), each operation with what its handler
    is marked with, and the schemas of the bodies they declare; a route with no operation
    described here is a mistake, and fails at once."""
    from .routes import ROUTES  # here: the routes name api/docs.py, which serves this module

    routes = [route for route in ROUTES if isinstance(route, web.RouteDef)]
    assert len(routes) == len(ROUTES)
    bodies = {body for route in routes if (body := accepted_body(route.handler)) is not None}
    schemas = _components(sorted(bodies, key=lambda body: body.__name__))
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
                {"200": _json(_obj({"status": {"const": "ok"}}), "The event loop answers.")},
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "operations",
                "Readiness",
                "200 once the Bloom filter is loaded and Postgres answers, else 503.",
                {
                    "200": _json(
                        _obj({"status": {"const": "ready"}, "filter_entries": _int(0)}),
                        "Ready to answer lookups.",
                    ),
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
                {"200": _json(_ref("Categories"), "The categories.")},
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
                    "200": _lookup("The verdict."),
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
                    "200": _lookup("The verdict now."),
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
                    "200": _lookup("The verdict after delisting."),
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
                    "200": _json(_ref("LookupResults"), "One result per number.", _LOOKUP_HEADERS),
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
                    "201": _json(_ref("ReportCreated"), "Stored; the number's verdict now."),
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
                {"200": _json(_ref("AllowlistEntries"), "The allowlist.")},
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
                    "200": _json(_ref("AllowlistEntryDetail"), "The entry."),
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
                    "200": _json(_ref("AllowlistPut"), "Verified."),
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
                    "201": _json(_ref("Appeal"), "Filed, open."),
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
                    "200": _json(_ref("Appeals"), "The appeals."),
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
                    "200": _json(_ref("Appeal"), "Decided."),
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
                    "200": _json(_ref("AuditEntries"), "The entries."),
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
                    "201": _json(
                        _ref("ImportCreated"), "Imported (or replayed by Idempotency-Key)."
                    ),
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
                    "200": _json(_ref("Imports"), "The imports."),
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
                    "200": _json(_ref("ImportSummary"), "The import."),
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
                    "200": _json(_ref("ImportErrors"), "The refused rows."),
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
