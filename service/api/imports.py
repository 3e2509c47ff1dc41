"""/v1/imports: operators and police units bulk-import lists of numbers (operator keys)."""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from http import HTTPStatus
from typing import Annotated, Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from msgspec import Meta

from .. import store
from ..auth import API_KEY, Role, check_import_source, requires
from ..feed import FEED
from ..import_parsing import (
    CSV,
    FORMATS,
    MAX_LINE_BYTES,
    NDJSON,
    ImportTooLarge,
    UploadStalled,
    digested,
    drain,
    gunzip,
    pace_bounded,
    parse_stream,
    size_bounded,
)
from ..problems import Problem, answers, bad_request, not_found
from ..standing import STANDING
from ..state import CLOCK, CONFIG, IMPORT_POOL, IMPORT_SLOTS, PARSERS, POOL, UPLOADS
from ..text import identifier
from .answers import Body, Count, Id, Time
from .bodies import content_encoding, json_answer, responds
from .documented import (
    BAD_QUERY,
    BEFORE,
    ID_MAX,
    RETRY_AFTER,
    after,
    bad,
    documented,
    integer,
    limit,
    missing,
    path,
    problem,
    query,
    text,
)

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16
INLINE_ERRORS = 1000
MAX_SOURCE_LENGTH = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 200
MAX_ERRORS_PAGE = 5000
"""Refused rows in one page of an import's refused rows (400 past it): about 1.5 MB."""
IMPORT_ID = path(
    "import_id", integer(1, ID_MAX), "The import's id; ids of other keys' imports get 404.", 1
)
NOT_YOURS = missing("No such import of the caller's.")


class ImportSummary(Body, kw_only=True):
    """What an import did."""

    import_id: Id
    source: str
    created_at: Annotated[Time, Meta(description="When the import started.")]
    rows: Annotated[Count, Meta(description="Data rows read: accepted + duplicates + rejected.")]
    accepted: Count
    duplicates: Annotated[
        Count, Meta(description="Valid rows whose number came earlier in the file.")
    ]
    rejected: Count
    mapped_legacy: Annotated[
        Count, Meta(description="Pre-2018 11-digit mobiles mapped to today's.")
    ]
    errors_stored: Annotated[
        Count,
        Meta(
            description="Refused rows whose details are kept for the errors call: all, up to "
            f"the first {store.imports.STORED_ERRORS} of an import."
        ),
    ]


class RefusedRow(Body):
    """A row an import refused, and why."""

    line: Annotated[int, Meta(ge=1, description="The refused row's line; a CSV header is line 1.")]
    value: Annotated[str, Meta(description="The offending value, shortened.")]
    reason: str


class ImportCreated(ImportSummary, kw_only=True):
    """What an import did, with its first refused rows."""

    errors: Annotated[
        list[RefusedRow],
        Meta(max_length=INLINE_ERRORS, description=f"The first {INLINE_ERRORS} refused rows."),
    ]


class Imports(Body):
    """Imports, newest first."""

    imports: list[ImportSummary]


class ImportErrors(Body):
    """One import's refused rows, in line order."""

    import_id: Id
    errors: list[RefusedRow]


def _summary_fields(summary: store.imports.ImportSummary) -> dict[str, Any]:
    return {
        "import_id": summary.id,
        "source": summary.source,
        "created_at": summary.created_at.isoformat(),
        "rows": summary.rows,
        "accepted": summary.accepted,
        "duplicates": summary.duplicates,
        "rejected": summary.rejected,
        "mapped_legacy": summary.mapped_legacy,
        "errors_stored": summary.errors_stored,
    }


def errors_body(errors: list[tuple[int, str, str]]) -> list[RefusedRow]:
    """Refused rows as declared bodies."""
    return [RefusedRow(line, value, reason) for line, value, reason in errors]


@requires(Role.OPERATOR)
@answers(UploadStalled, ImportTooLarge)
@documented(
    "imports",
    parameters=(
        query(
            "source",
            text(MAX_SOURCE_LENGTH, "Who the list comes from."),
            "Who the list comes from, e.g. viettel; named in lookups' `sources`.",
        )
        | {"required": True, "example": "viettel"},
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": text(MAX_IDEMPOTENCY_KEY_LENGTH, "Any text."),
            "description": "The same key from the same API key with the same list (compared "
            "after gzip decompression) and source returns the first import and imports nothing "
            "twice; with another list, 422.",
        },
        {
            "name": "Content-Encoding",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "enum": ["identity", "gzip"]},
            "description": "gzip bodies are decompressed as they stream in.",
        },
    ),
    responses={
        400: bad(
            "Nothing imported: `source` is missing, the body is empty, not CSV or NDJSON, has "
            "no `number` column, or its gzip stream is cut or corrupt."
        ),
        429: problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            "Nothing read or imported: as many imports as allowed are running for the key or "
            "on the replica.",
            {"Retry-After": RETRY_AFTER},
        ),
        415: problem(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "The body is not text/csv or application/x-ndjson, or its Content-Encoding is not "
            "identity or gzip.",
        ),
        422: problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "Nothing imported: the Idempotency-Key was used for another list or source.",
        ),
    },
    body={
        "required": True,
        "description": "The list, streamed; at most CALLGUARD_IMPORT_MAX_BYTES after "
        "decompression and CALLGUARD_IMPORT_MAX_LINES lines, each line at most "
        f"{MAX_LINE_BYTES} bytes.",
        "content": {
            CSV: {
                "schema": {"type": "string"},
                "example": "number,category,reported_at,note\n0912345678,online_loan,"
                "2024-03-26 09:30,\n",
            },
            NDJSON: {
                "schema": {"type": "string"},
                "example": '{"number": "0912345678", "category": "investment"}\n',
            },
        },
    },
)
@responds(201, ImportCreated, "Imported (or replayed by Idempotency-Key).")
async def create_import(request: web.Request) -> web.Response:
    """Import a list

    Streams a CSV (a header row with a `number` column; `category`, `reported_at` and `note`
    optional; `,`, `;` or tab) or NDJSON list into trusted listings. Every accepted row lands,
    or none does. Refused rows are counted and listed with their reasons (overlong lines,
    invalid numbers, unknown categories, bad times).
    """
    source = identifier(request.query.get("source", ""), "source", MAX_SOURCE_LENGTH)
    check_import_source(request[API_KEY], source)
    if request.content_type not in FORMATS:
        raise Problem(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"Send the list as text/csv or application/x-ndjson, not {request.content_type}.",
            kind="unsupported-media-type",
        )
    idempotency_key = request.headers.get("Idempotency-Key")
    if idempotency_key is not None:
        idempotency_key = identifier(idempotency_key, "Idempotency-Key", MAX_IDEMPOTENCY_KEY_LENGTH)
    config = request.app[CONFIG]
    chunks = pace_bounded(
        request.content.iter_chunked(CHUNK_BYTES),
        config.upload_idle_timeout,
        config.import_min_bytes_per_second,
        config.import_grace_seconds,
    )
    if content_encoding(request) == "gzip":
        chunks = gunzip(chunks)
    chunks = size_bounded(chunks, config.import_max_bytes)
    try:
        with (
            request.app[IMPORT_SLOTS].claim(request[API_KEY].id),
            request.app[UPLOADS].arriving(request.content),
        ):
            summary, errors = await _import(request, source, idempotency_key, chunks)
    except (HttpProcessingError, ConnectionError) as err:
        # The client's connection, not the database's: never counted as an outage.
        raise bad_request(f"Nothing was imported: the upload was cut short ({err}).") from err
    # Only now that it has committed do the import's numbers go into this process's filter,
    # read back from Postgres as every replica reads them: an import that fails or is cut
    # leaves the filter as it was. The client hears "accepted" once they answer here.
    await request.app[FEED].catch_up()
    await request.app[STANDING].listed_by_import(summary.id, request.app[CLOCK]())
    return json_answer(
        ImportCreated(**_summary_fields(summary), errors=errors_body(errors)),
        status=HTTPStatus.CREATED,
    )


async def _import(
    request: web.Request, source: str, idempotency_key: str | None, chunks: AsyncIterator[bytes]
) -> tuple[store.imports.ImportSummary, list[tuple[int, str, str]]]:
    """Import the list, or replay the import made before with the same idempotency key if
    the list is the same: its summary and its first errors."""
    config, clock, pool = request.app[CONFIG], request.app[CLOCK], request.app[IMPORT_POOL]
    digest = hashlib.sha256()
    chunks = digested(chunks, digest)
    errors: list[tuple[int, str, str]] = []
    started = time.perf_counter()
    try:
        async with store.imports.begin(
            pool, source, request[API_KEY].id, idempotency_key, clock()
        ) as writer:
            parse = parse_stream(
                chunks,
                request.content_type,
                request.app[PARSERS],
                config.import_block_bytes,
                config.import_max_lines,
                clock(),
            )
            async with aclosing(parse) as blocks:  # a failed import stops its blocks at once
                async for parsed in blocks:
                    _check_connected(request)
                    refused = [(error.line, error.value, error.reason) for error in parsed.errors]
                    errors.extend(refused[: INLINE_ERRORS - len(errors)])
                    await writer.stage(parsed.copy_data, parsed.rows, refused, parsed.mapped_legacy)
            _check_connected(request)
            streamed = time.perf_counter()
            summary = await writer.merge(digest.digest())
    except store.imports.ImportReplayed as replay:
        # The list is read to its end for its digest: a different list under the same key
        # is refused, never answered with the first import's counts.
        await drain(chunks)
        if replay.body_sha256 != digest.digest() or replay.summary.source != source:
            raise Problem(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"Nothing was imported: import {replay.summary.id} was made with this "
                "Idempotency-Key from another list or source. Use a new key for a new list.",
                kind="idempotency-key-reused",
            ) from replay
        errors = await store.imports.errors(pool, replay.summary.id, 0, INLINE_ERRORS)
        return replay.summary, errors
    log.info(
        "import %d from %s: %d rows read and staged in %.2f s, merged in %.2f s",
        summary.id,
        summary.source,
        summary.rows,
        streamed - started,
        time.perf_counter() - streamed,
    )
    return summary, errors


_TCP_ESTABLISHED = 1
"""tcpi_state in Linux's struct tcp_info: the connection is open both ways."""


def _check_connected(request: web.Request) -> None:
    """Raise ConnectionResetError if the client has closed or reset its connection, so an
    import nobody waits for stops and rolls back. The kernel's TCP state tells at once;
    aiohttp would notice only after reading the rest of the upload, which for a gzipped list
    can mean minutes of parsing. A client that half-closes before its answer counts as gone."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client closed the connection")
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]
    except OSError:
        return
    if state != _TCP_ESTABLISHED:
        raise ConnectionResetError("the client closed the connection")


async def _summary(request: web.Request) -> store.imports.ImportSummary:
    """The import named in the path, if the caller may see it."""
    text = request.match_info["import_id"]
    summary = None
    if text.isascii() and text.isdigit() and len(text) <= 18:
        summary = await store.imports.get(request.app[POOL], int(text))
    api_key = request[API_KEY]
    sees_all = Role.named(api_key.role) >= Role.ADMIN
    if summary is None or (not sees_all and summary.api_key_id != api_key.id):
        raise not_found(f"There is no import {text!r} of yours.")
    return summary


@requires(Role.OPERATOR)
@documented("imports", parameters=(IMPORT_ID,), responses={404: NOT_YOURS})
@responds(200, ImportSummary, "The import.")
async def get_import(request: web.Request) -> web.Response:
    """One import

    One import's counts.
    """
    return json_answer(ImportSummary(**_summary_fields(await _summary(request))))


ERRORS_AFTER = after("Only rows after this line.")
ERRORS_LIMIT = limit(MAX_ERRORS_PAGE, MAX_ERRORS_PAGE)
IMPORTS_LIMIT = limit(100, 1000)


@requires(Role.OPERATOR)
@documented(
    "imports",
    parameters=(
        IMPORT_ID,
        ERRORS_AFTER,
        ERRORS_LIMIT,
    ),
    responses={400: BAD_QUERY, 404: NOT_YOURS},
)
@responds(200, ImportErrors, "The refused rows.")
async def get_import_errors(request: web.Request) -> web.Response:
    """One import's refused rows

    All its refused rows in line order; page with `after` = the last `line`.
    """
    # The details of the first store.imports.STORED_ERRORS are kept.
    summary = await _summary(request)
    after = ERRORS_AFTER.read(request)
    limit = ERRORS_LIMIT.read(request)
    errors = await store.imports.errors(request.app[POOL], summary.id, after, limit)
    return json_answer(ImportErrors(summary.id, errors_body(errors)))


@requires(Role.OPERATOR)
@documented("imports", parameters=(BEFORE, IMPORTS_LIMIT), responses={400: BAD_QUERY})
@responds(200, Imports, "The imports.")
async def list_imports(request: web.Request) -> web.Response:
    """Imports

    Imports newest first: an operator's own, or everyone's for an admin.
    """
    api_key = request[API_KEY]
    before = BEFORE.read(request)
    limit = IMPORTS_LIMIT.read(request)
    imports = await store.imports.list_imports(
        request.app[POOL],
        None if Role.named(api_key.role) >= Role.ADMIN else api_key.id,
        before,
        limit,
    )
    return json_answer(Imports([ImportSummary(**_summary_fields(summary)) for summary in imports]))
