"""Reading JSON request bodies strictly, and writing JSON responses."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import zlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from msgspec import Meta

from ..problems import Problem, bad_request, domain_answer, encode_body, not_found
from ..state import CONFIG
from ..text import TextError, loads

S = TypeVar("S", bound=msgspec.Struct)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ACCEPTS_ATTRIBUTE = "__callguard_accepts__"

_JSON_TYPES = ("application/json", "application/problem+json")
MAX_JSON_CONTAINERS = 16
"""Arrays and objects one body may hold: every request is an object of plain fields or one
list of strings, and a megabyte of [[],[],...] would cost the event loop 100+ ms to decode."""
EXTRA_JSON_VALUES = 100
"""Values a body may hold beyond the batch limit (one a number): room for the fields."""
NOT_BLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
"""Free text: not only white space, and no NUL (Postgres cannot store it); with a Struct
field's `Meta(pattern=NOT_BLANK)`, a refusal names which of the two it broke."""
FreeText = Annotated[str, Meta(min_length=1, pattern=NOT_BLANK)]
"""Text a client sends in a body: not empty, not only white space, no NUL. Each field adds
its own limit, description and examples in a Meta of its own (msgspec merges them)."""


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


def accepts(
    body_type: type[S],
    *,
    within: Callable[[web.Request], AbstractContextManager[object]] | None = None,
) -> Callable[[Callable[[web.Request, S], Awaitable[web.StreamResponse]]], Handler]:
    """Mark a handler as taking a JSON body of `body_type`: it is called as
    handler(request, body) with the body decoded and validated by the declaration (a body
    whose fields all have defaults may be left out). With `within`, the body is read and
    the handler runs inside that context, entered before the first byte is read (a batch
    counts as in progress; a report takes its rate token, and past the rate is refused
    unread). The OpenAPI document reads the type back with accepted_body."""
    decoder = msgspec.json.Decoder(body_type)
    optional = not any(field.required for field in msgspec.structs.fields(body_type))

    def mark(handler: Callable[[web.Request, S], Awaitable[web.StreamResponse]]) -> Handler:
        async def read_then_handle(request: web.Request) -> web.StreamResponse:
            raw = await _read(request)
            if optional and not raw.strip():
                return await handler(request, body_type())
            _check_size(raw, request.app[CONFIG].batch_limit + EXTRA_JSON_VALUES)
            return await handler(request, _decode(raw, decoder, body_type))

        @functools.wraps(handler)
        async def with_body(request: web.Request) -> web.StreamResponse:
            if within is None:
                return await read_then_handle(request)
            with within(request):
                return await read_then_handle(request)

        setattr(with_body, _ACCEPTS_ATTRIBUTE, body_type)
        return with_body

    return mark


def accepted_body(handler: object) -> type[msgspec.Struct] | None:
    """The body type a handler is marked with (accepts), or None if it takes no JSON body."""
    body_type: type[msgspec.Struct] | None = getattr(handler, _ACCEPTS_ATTRIBUTE, None)
    return body_type


async def _read(request: web.Request) -> bytes:
    """The raw body, gunzipped, bounded in size and in time."""
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
    return _decompressed(request, body)


def _decode(raw: bytes, decoder: msgspec.json.Decoder[S], body_type: type[S]) -> S:
    """The body as `body_type`, or the problem that says which field is wrong and how."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as err:
        _check_utf8(raw)  # msgspec skips an unknown field's value unread
        raise _refusal(err, body_type, lambda: msgspec.json.decode(raw)) from err
    except msgspec.DecodeError:
        pass
    # msgspec refuses some JSON that RFC 8259 allows, such as a lone \ud800 escape (a batch
    # answers it as an invalid item), and says less about what is wrong; the standard
    # library reads it strictly (text.loads) and the declaration then checks it.
    data = _strict_loads(raw)
    if not isinstance(data, dict):
        raise bad_request("The body must be a JSON object.")
    for name, value in data.items():
        if isinstance(value, str) and _SURROGATE.search(value):
            raise bad_request(f"'{name}' contains an unpaired surrogate.")
    try:
        return msgspec.convert(data, body_type)
    except msgspec.ValidationError as err:
        raise _refusal(err, body_type, lambda: data) from err


def _check_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise bad_request(f"The body is not UTF-8: {err.reason} at byte {err.start}.") from err


def _strict_loads(raw: bytes) -> Any:
    try:
        return loads(_check_utf8(raw))
    except TextError as err:
        raise bad_request(f"The body is not valid JSON: {err}") from err
    except json.JSONDecodeError as err:
        raise bad_request(f"The body is not valid JSON: {err.msg} at character {err.pos}.") from err


def _refusal(
    err: msgspec.ValidationError, body_type: type[msgspec.Struct], data: Callable[[], Any]
) -> Exception:
    """msgspec's ValidationError ("Expected `str` of length <= 200 - at `$.reporter`") as
    the problem a client reads: the field named, what is wrong, the limit. A domain error
    raised in a Struct's __post_init__ (text.py's TextError, UnknownCategory) is answered as
    problems.DOMAIN_ERRORS says."""
    cause = err.__cause__
    if isinstance(cause, Exception) and domain_answer(cause) is not None:
        return cause
    message = str(err)
    match = _AT.fullmatch(message)
    what, path = (match["what"], match["path"] or "") if match else (message, "")
    field, item = _field_and_item(path)
    if what == "Number out of range":
        return bad_request(f"The body is not valid JSON: a number in '{field}' is out of range.")
    if found := re.fullmatch(r"Object missing required field `(.+)`", what):
        return bad_request(f"'{found[1]}' is required.")
    if found := re.fullmatch(r"Object contains unknown field `(.+)`", what):
        known = ", ".join(field.encode_name for field in msgspec.structs.fields(body_type))
        return bad_request(f"Unknown field: {found[1]}. Known fields: {known}.")
    if found := re.fullmatch(r"Expected `(.+?)`, got `(.+)`", what):
        expected, got = _kind(found[1]), found[2]
        if not field:
            return bad_request(f"The body must be {expected}, not {got}.")
        if item is not None:
            return bad_request(
                f"'{field}' must be a list of strings; item {item} is not {expected}, it is {got}."
            )
        if got == "null":
            return bad_request(f"'{field}' must be {expected}, not null: '{field}' is required.")
        return bad_request(f"'{field}' must be {expected}, not {got}.")
    if found := re.fullmatch(r"Expected `str` of length <= (\d+)", what):
        return bad_request(f"'{field}' is longer than {found[1]} characters.")
    if re.fullmatch(r"Expected `str` of length >= 1", what):
        return bad_request(f"'{field}' must not be empty.")
    if what.startswith("Expected `str` matching regex") and what.endswith(f"{NOT_BLANK!r}"):
        try:
            value = data().get(field)
        except (msgspec.MsgspecError, AttributeError):
            value = None
        if isinstance(value, str) and "\x00" in value:
            return bad_request(f"'{field}' contains a NUL character.")
        return bad_request(f"'{field}' must not be empty.")
    if what.startswith("Invalid enum value"):
        allowed = _allowed(body_type).get(field, ())
        return bad_request(f"'{field}' must be one of: {', '.join(map(str, allowed))}.")
    return bad_request(f"'{field}': {what}." if field else f"{what}.")


_AT = re.compile(r"(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_KINDS = {
    "str": "a string",
    "str | null": "a string or null",
    "array": "a list",
    "object": "a JSON object",
}


def _kind(name: str) -> str:
    return _KINDS.get(name, name)


def _field_and_item(path: str) -> tuple[str, int | None]:
    """`.numbers[3]` as ("numbers", 3), `.reporter` as ("reporter", None)."""
    found = re.fullmatch(r"\.([^.\[]+)(?:\[(\d+)\])?.*", path, re.DOTALL)
    if found is None:
        return "", None
    return found[1], None if found[2] is None else int(found[2])


@functools.cache
def _allowed(body_type: type[msgspec.Struct]) -> dict[str, tuple[object, ...]]:
    """The values each Literal field of a body type allows."""
    info = msgspec.inspect.type_info(body_type)
    assert isinstance(info, msgspec.inspect.StructType)
    allowed: dict[str, tuple[object, ...]] = {}
    for field in info.fields:
        kind = field.type
        if isinstance(kind, msgspec.inspect.Metadata):  # Annotated[Literal[...], Meta(...)]
            kind = kind.type
        if isinstance(kind, msgspec.inspect.LiteralType):
            allowed[field.encode_name] = kind.values
    return allowed


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


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    text = request.query.get(name)
    if text is None:
        return default
    value = digits(text, len(str(high)))
    if value is None or not low <= value <= high:
        raise bad_request(f"'{name}' must be a whole number from {low} to {high}.")
    return value


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    """A query parameter that must be one of `choices`, if given (400 otherwise)."""
    value = request.query.get(name)
    if value is not None and value not in choices:
        raise bad_request(f"'{name}' must be one of {', '.join(choices)}.")
    return value


def path_id(request: web.Request, name: str, what: str) -> int:
    """The id a path parameter spells (at most 18 digits), or the 404 for no such `what`."""
    text = request.match_info[name]
    value = digits(text, 18)
    if value is None:
        raise not_found(f"There is no {what} {text!r}.")
    return value


def digits(text: str, max_digits: int) -> int | None:
    """The whole number `text` spells in at most max_digits ASCII digits, else None: a
    longer one is no value any field takes, and past 4300 digits int() itself fails."""
    if not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        return None
    return int(text)
