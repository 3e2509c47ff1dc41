"""What a handler's OpenAPI operation says beyond its docstring, role, errors and bodies:
its tag, its parameters and the responses no declaration gives (`documented`), and the
pieces handlers share; openapi.py reads them back with `operation_of`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web

from ..config import Config
from ..problems import ProblemBody
from .bodies import NOT_BLANK, query_int

Schema = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])

DEFAULTS = Config()
"""The limits the document states are the defaults (a deployment may set others)."""
ID_MAX = 10**18 - 1
"""Path ids are at most 18 digits; longer ones name nothing (404)."""
QUERY_ID_MAX = 2**62
NO_ROUTE = "a path parameter holding `{`, `}` or an unencoded `/` (aiohttp's routing)."
JSON = "application/json"
PROBLEM = "application/problem+json"
_OPERATION = "__callguard_operation__"


@dataclass(frozen=True)
class Operation:
    """A handler's operation as `documented` declares it."""

    tag: str
    operation_id: str | None = None
    parameters: tuple[Schema, ...] = ()
    responses: Mapping[str, Schema] = field(default_factory=dict)
    body: Schema | None = None


def documented(
    tag: str,
    *,
    operation_id: str | None = None,
    parameters: tuple[Schema | QueryInt, ...] = (),
    responses: Mapping[int, Schema] | None = None,
    body: Schema | None = None,
) -> Callable[[F], F]:
    """Mark a handler with its operation's tag, parameters (path ones go on the path), the
    responses its other marks do not give, and `body` when it takes one that is no JSON.
    The operationId is the handler's name in camelCase unless given. A mark only."""
    operation = Operation(
        tag,
        operation_id,
        tuple(p.parameter if isinstance(p, QueryInt) else p for p in parameters),
        {str(int(status)): response for status, response in (responses or {}).items()},
        body,
    )

    def mark(handler: F) -> F:
        setattr(handler, _OPERATION, operation)
        return handler

    return mark


def operation_of(handler: object) -> Operation:
    """What a handler is marked with (`documented`); every routed handler has a mark."""
    operation = getattr(handler, _OPERATION, None)
    name = getattr(handler, "__qualname__", handler)
    assert isinstance(operation, Operation), f"{name} is not marked with documented(...)"
    return operation


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def use(name: str) -> Schema:
    """A response described once in components.responses (openapi.py)."""
    return {"$ref": f"#/components/responses/{name}"}


def text(max_length: int, description: str) -> Schema:
    """A text parameter read by the rule of a body's text fields (bodies.NOT_BLANK)."""
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": NOT_BLANK,
        "description": description,
    }


def integer(minimum: int, maximum: int | None = None, description: str = "") -> Schema:
    schema: Schema = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    if description:
        schema["description"] = description
    return schema


def header(description: str, schema: Schema | None = None) -> Schema:
    """A response header that is always sent."""
    return {"description": description, "required": True, "schema": schema or {"type": "string"}}


RETRY_AFTER = header("Whole seconds to wait before trying again.", {"pattern": "^[0-9]+$"})


def problem(status: HTTPStatus, description: str, headers: Schema | None = None) -> Schema:
    """A problem+json response of this status."""
    response: Schema = {
        "description": description,
        "content": {
            PROBLEM: {
                "schema": {
                    "allOf": [
                        ref(ProblemBody.__name__),
                        {"properties": {"status": {"const": int(status)}}},
                    ]
                }
            }
        },
    }
    if headers:
        response["headers"] = headers
    return response


def bad(description: str) -> Schema:
    return problem(HTTPStatus.BAD_REQUEST, description)


def missing(description: str) -> Schema:
    return problem(
        HTTPStatus.NOT_FOUND,
        f"{description} Also when the path names no route: {NO_ROUTE}",
    )


NO_ROUTE_FOUND = problem(HTTPStatus.NOT_FOUND, f"The path names no route: {NO_ROUTE}")
"""The 404 of a path with a parameter that declares no other (openapi.py adds it)."""
BAD_NUMBER = bad("The number is not a valid phone number, or the body is malformed.")
BAD_BODY = bad("The body is not a JSON object of the known fields, or a field is invalid.")
BAD_QUERY = bad("A query parameter is out of range.")


def json_response(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def text_response(description: str, *media_types: str) -> Schema:
    return {
        "description": description,
        "content": {media_type: {"schema": {"type": "string"}} for media_type in media_types},
    }


def path(name: str, schema: Schema, description: str, example: Any) -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
        "example": example,
    }


def query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


@dataclass(frozen=True)
class QueryInt:
    """A whole-number query parameter, declared once: the handler reads it (`read`, 400 out
    of range) and its `documented` mark lists it."""

    name: str
    default: int
    low: int
    high: int
    description: str

    def read(self, request: web.Request) -> int:
        """The value sent, or the default."""
        return query_int(request, self.name, self.default, self.low, self.high)

    @property
    def parameter(self) -> Schema:
        """The OpenAPI parameter."""
        schema = {**integer(self.low, self.high), "default": self.default}
        return query(self.name, schema, self.description)


def limit(default: int, maximum: int) -> QueryInt:
    """The page size of a list."""
    return QueryInt("limit", default, 1, maximum, "The most items in the answer.")


def after(description: str) -> QueryInt:
    """Paging forwards: only items past the id (or line) given."""
    return QueryInt("after", 0, 0, QUERY_ID_MAX, description)


BEFORE = QueryInt("before", QUERY_ID_MAX, 1, QUERY_ID_MAX, "Only entries with a lower id.")
"""Paging backwards, newest first."""
