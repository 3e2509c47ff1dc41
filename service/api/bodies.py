"""Reading JSON request bodies strictly, and writing JSON responses."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ..problems import Problem, bad_request, encode_body
from ..state import CONFIG
from ..text import TextError, identifier, loads, timestamp

_JSON_TYPES = ("application/json", "application/problem+json")
MAX_JSON_CONTAINERS = 16
"""Arrays and objects one body may hold: every request is an object of plain fields or one
list of strings, and a megabyte of [[],[],...] would cost the event loop 100+ ms to decode."""
EXTRA_JSON_VALUES = 100
"""Values a body may hold beyond the batch limit (one a number): room for the fields."""


def iso(moment: datetime | None) -> str | None:
    """A time as ISO 8601 for JSON, or null."""
    return None if moment is None else moment.isoformat()


F = TypeVar("F", bound=Callable[..., Any])

_RESPONSES = "__callguard_responses__"


def responds(status: int, body_type: type, description: str = "") -> Callable[[F], F]:
    """Mark a handler as answering `status` with a JSON `body_type` (a Struct the OpenAPI
    document takes the schema from); stack one per status. A mark only: no wrapper."""

    def mark(handler: F) -> F:
        marks: dict[int, tuple[type, str]] = dict(getattr(handler, _RESPONSES, {}))
        marks[int(status)] = (body_type, description)
        setattr(handler, _RESPONSES, marks)
        return handler

    return mark


def responses_of(handler: object) -> dict[int, tuple[type, str]]:
    """The JSON bodies a handler is marked (`responds`) to answer, by status."""
    return dict(getattr(handler, _RESPONSES, {}))


def json_answer(value: msgspec.Struct | list[Any], status: int = HTTPStatus.OK) -> web.Response:
    """A declared body (see `responds`) as a JSON response, encoded by problems.encode_body
    (one module-level msgspec encoder for every body, problems' too)."""
    return web.Response(
        body=encode_body(value), status=status, content_type="application/json", charset="utf-8"
    )


async def read_object(
    request: web.Request, fields: Collection[str], *, optional: bool = False
) -> dict[str, Any]:
    """The body as a JSON object whose keys are all among `fields`; with `optional`, an
    empty body reads as {}."""
    content_type = request.headers.get("Content-Type")
    if content_type is not None and request.content_type not in _JSON_TYPES:
        raise Problem(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"Send the body as application/json, not {request.content_type}.",
            kind="unsupported-media-type",
        )
    seconds = request.app[CONFIG].body_timeout
    try:
        async with asyncio.timeout(seconds):
            body = await request.read()  # raises 413 past the size limit
    except TimeoutError as err:
        raise Problem(
            HTTPStatus.REQUEST_TIMEOUT,
            f"The body did not arrive within {seconds:g} s.",
            kind="request-timeout",
        ) from err
    except (ConnectionError, HttpProcessingError) as err:
        # The client's connection, not the database's: never counted as an outage.
        raise bad_request("The body was cut short: the connection closed before its end.") from err
    raw = _decompressed(request, body)
    if optional and not raw.strip():
        return {}
    _check_size(raw, request.app[CONFIG].batch_limit + EXTRA_JSON_VALUES)
    try:
        data = loads(raw.decode("utf-8"))
    except TextError as err:
        raise bad_request(f"The body is not valid JSON: {err}") from err
    except UnicodeDecodeError as err:
        raise bad_request(f"The body is not UTF-8: {err.reason} at byte {err.start}.") from err
    except json.JSONDecodeError as err:
        raise bad_request(f"The body is not valid JSON: {err.msg} at character {err.pos}.") from err
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise bad_request(
            f"Unknown field(s): {', '.join(unknown)}. Known fields: {', '.join(sorted(fields))}."
        )
    return data


def _check_size(raw: bytes, max_values: int) -> None:
    """Refuse JSON with more arrays and objects, or more values, than any request holds,
    before decoding it. Counting bytes takes well under a millisecond a megabyte; only when
    the quick counts are over (brackets and commas may be inside strings) are the strings
    cut out, with bytes methods alone (a few milliseconds a megabyte), and counted again."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_CONTAINERS and raw.count(b",") < max_values:
        return
    # With escaped backslashes and then escaped quotes gone, every quote left opens or
    # closes a string, so every other piece between quotes is outside the strings.
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    containers = outside.count(b"[") + outside.count(b"{")
    if containers > MAX_JSON_CONTAINERS:
        raise bad_request(
            f"The body holds {containers} JSON arrays and objects; a request needs at most "
            f"{MAX_JSON_CONTAINERS}."
        )
    if outside.count(b",") >= max_values:
        raise bad_request(f"The body holds more than {max_values} JSON values.")


def content_encoding(request: web.Request) -> str:
    """The body's Content-Encoding: identity or gzip; anything else is refused."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise Problem(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Encoding {encoding!r} is not supported; send identity or gzip.",
            kind="unsupported-encoding",
        )
    return encoding


def _decompressed(request: web.Request, raw: bytes) -> bytes:
    """The body, gunzipped if it came gzipped, no larger than the body limit either way."""
    if content_encoding(request) == "identity":
        return raw
    limit = request.app[CONFIG].max_body_bytes
    decompressor = zlib.decompressobj(wbits=31)
    try:
        data = decompressor.decompress(raw, limit + 1)
    except zlib.error as err:
        raise bad_request(f"The gzip body is corrupt: {err}.") from err
    if len(data) > limit:
        raise Problem(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"The body is larger than {limit} bytes once decompressed.",
            kind="body-too-large",
        )
    if not decompressor.eof:
        raise bad_request("The gzip body is cut short.")
    return data


def check_text(value: str, name: str, max_length: int) -> str:
    """A string Postgres can store, of bounded length."""
    if not value.strip():
        raise bad_request(f"'{name}' must not be empty.")
    if len(value) > max_length:
        raise bad_request(f"'{name}' is longer than {max_length} characters.")
    if "\x00" in value:
        raise bad_request(f"'{name}' contains a NUL character.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise bad_request(f"'{name}' contains an unpaired surrogate.") from err
    return value


def _required_string(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        raise bad_request(f"'{name}' is required.")
    if not isinstance(value, str):
        raise bad_request(f"'{name}' must be a string.")
    return value


def text_field(data: Mapping[str, Any], name: str, max_length: int) -> str:
    """A required string field."""
    return check_text(_required_string(data, name), name, max_length)


def identifier_text(value: str, name: str, max_length: int) -> str:
    """An identifier from a body, a header or the query, by service/text.py's one rule (its
    TextError is answered 400, problems.DOMAIN_ERRORS)."""
    return identifier(value, name, max_length)


def identifier_field(data: Mapping[str, Any], name: str, max_length: int) -> str:
    """A required identifier field (a reporter, an owner): see identifier_text."""
    return identifier_text(_required_string(data, name), name, max_length)


def optional_text_field(data: Mapping[str, Any], name: str, max_length: int) -> str | None:
    """A string field that may be absent or null."""
    return None if data.get(name) is None else text_field(data, name, max_length)


def timestamp_field(data: Mapping[str, Any], name: str, now: datetime) -> datetime | None:
    """An optional RFC 3339 time with an offset, in the range service/text.py allows."""
    text = optional_text_field(data, name, 64)
    return None if text is None else timestamp(text, name, now)


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    text = request.query.get(name)
    if text is None:
        return default
    value = digits(text, len(str(high)))
    if value is None or not low <= value <= high:
        raise bad_request(f"'{name}' must be a whole number from {low} to {high}.")
    return value


def digits(text: str, max_digits: int) -> int | None:
    """The whole number `text` spells in at most max_digits ASCII digits, else None: a
    longer one is no value any field takes, and past 4300 digits int() itself fails."""
    if not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        return None
    return int(text)
