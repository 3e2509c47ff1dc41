"""The client side of bulk imports: stream a CSV or NDJSON file, gzipped, to POST /v1/imports.

The file is read in chunks and compressed on the fly, so a file of millions of rows never
sits in memory; `callguard import` and loadtest/import_bench.py both use `upload`.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

CSV = "text/csv"
NDJSON = "application/x-ndjson"
CONTENT_TYPES = {".csv": CSV, ".ndjson": NDJSON, ".jsonl": NDJSON}
_SNIFF_BYTES = 4096
_GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 256 * 1024
GZIP_LEVEL = 1
"""On the benchmark's 84 MB CSV, level 1 gives 20 MB in 0.5 s and the default 6 gives 15.5 MB
in 1.7 s: the bytes saved are not worth the CPU that the service shares on one machine."""
TIMEOUT = aiohttp.ClientTimeout(total=3600, sock_connect=30)
"""Millions of rows take the service seconds to minutes, after the last byte is sent."""
PROGRESS_INTERVAL = 0.2
SHOWN_ERRORS = 10
_INFLATE_PIECE = 1 << 20
"""Counting rows in a .gz file inflates at most this much at a time: a tiny chunk can
inflate to gigabytes."""

ImportResult = dict[str, Any]
"""The service's 201 body: import_id, source, rows, accepted, duplicates, rejected,
mapped_legacy, errors (the first 1000, each {line, value, reason}), created_at."""


class ImportRefused(Exception):
    """The service answered with an error; str(error) is its detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass
class Progress:
    """How far an upload has got, reported after every chunk."""

    total_bytes: int
    """The file's size, compressed or not as it is on disk."""
    read_bytes: int = 0
    """Bytes of the file read and handed to the connection."""
    rows: int = 0
    """Newlines in the uncompressed data so far (the header line of a CSV included)."""
    started: float = field(default_factory=time.monotonic)
    sent: bool = False
    """The whole file is sent; the service is still working on it."""


def content_type(path: Path) -> str:
    """The Content-Type for a file: from its extension (once a .gz is taken off) if it is one
    of CONTENT_TYPES, else from its first character, as a list of any other name is still a
    list: `{` is NDJSON, anything else CSV (the service says if it is neither)."""
    name = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    known = CONTENT_TYPES.get(name.suffix.lower())
    if known is not None:
        return known
    with path.open("rb") as file:
        start = file.read(_SNIFF_BYTES)
    if _is_gzip(start):
        try:
            start = zlib.decompressobj(wbits=31).decompress(start, _SNIFF_BYTES)
        except zlib.error:
            return CSV  # the service says what is wrong with the stream
    return NDJSON if start.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else CSV


def _is_gzip(data: bytes) -> bool:
    return data.startswith(_GZIP_MAGIC)


def service_url(text: str) -> str:
    """The service's base URL from what was typed: `host:port` is read as http://host:port;
    a scheme other than http or https, or no host, raises ValueError."""
    url = text.strip() if "://" in text else f"http://{text.strip()}"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{text!r}: the URL must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{text!r}: the URL names no host")
    return url.rstrip("/")


def default_source(path: Path) -> str:
    """The source named by a file: `bank-x.csv.gz` -> `bank-x`."""
    name = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    return name.stem


@dataclass(frozen=True)
class Retries:
    """How `upload` retries an import the service answered 503 (busy, stopping, or a parser
    lost) or 429, or lost on the way once the service was reached (a restart: the
    connection dropped or refused): after the answer's Retry-After, and at least
    `first_wait` seconds doubled at each retry; at most `attempts` sends in all, and none
    that would start more than `seconds` after the first. A service never reached (a wrong
    URL, nothing listening) is not retried."""

    attempts: int = 5
    seconds: float = 300.0
    first_wait: float = 1.0


RETRIES = Retries()
RETRIED = (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS)


async def upload(
    path: Path,
    url: str,
    key: str,
    source: str,
    idempotency_key: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    retries: Retries = RETRIES,
    retrying: Callable[[Exception, float], None] | None = None,
) -> ImportResult:
    """Import the file into the service at url (e.g. http://127.0.0.1:8080) as `source`.

    A 503 or 429, or a connection lost once the service was reached, is retried as
    `retries` says (`retrying` is told each time, with the seconds it waits), re-sending
    the whole file under one Idempotency-Key (a new one if none is given), so an import the
    service did take is never taken twice. Returns the service's result; raises
    ImportRefused on an error response, and OSError or aiohttp.ClientError when the file or
    the service cannot be reached.
    """
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": content_type(path),
        "Content-Encoding": "gzip",
        "Idempotency-Key": idempotency_key or f"callguard-import-{uuid.uuid4()}",
    }
    endpoint = url.rstrip("/") + "/v1/imports"
    started = time.monotonic()
    backoff = retries.first_wait
    attempt = 0
    reached = False
    # trust_env=False: a proxy from the environment must not see the key or the rows.
    async with aiohttp.ClientSession(trust_env=False, timeout=TIMEOUT) as session:
        while True:
            attempt += 1
            state = Progress(total_bytes=path.stat().st_size)
            body = _gzip_body(path, state, progress or (lambda _: None))
            failure: Exception
            try:
                async with session.post(
                    endpoint, params={"source": source}, data=body, headers=headers
                ) as response:
                    reached = True
                    if response.status == HTTPStatus.CREATED:
                        result = await response.json()
                        if not isinstance(result, dict):
                            raise ImportRefused(
                                response.status, f"unexpected response: {result!r:.200}"
                            )
                        return result
                    failure = ImportRefused(response.status, await _detail(response))
                    retriable = response.status in RETRIED
                    wait = max(backoff, _retry_after(response.headers.get("Retry-After")))
            except aiohttp.ClientConnectionError as err:
                # Refused or dropped: a restart, if the service was reached before (or the
                # connection was made and lost); otherwise there is nothing to wait for.
                reached = reached or not isinstance(err, aiohttp.ClientConnectorError)
                failure, retriable, wait = err, reached, backoff
            late = time.monotonic() + wait - started > retries.seconds
            if not retriable or attempt >= retries.attempts or late:
                raise failure
            if retrying is not None:
                retrying(failure, wait)
            await asyncio.sleep(wait)
            backoff *= 2


def _retry_after(value: str | None) -> float:
    """Seconds a Retry-After header asks for (seconds or an HTTP date); 0 if none or bad."""
    if value is None:
        return 0.0
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


async def _gzip_body(
    path: Path, state: Progress, progress: Callable[[Progress], None]
) -> AsyncIterator[bytes]:
    """The file as gzip, chunk by chunk: compressed here, or as it is if it is gzip already
    (whatever its name)."""
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    with path.open("rb") as file:
        rows = _GzipRows() if _is_gzip(file.read(len(_GZIP_MAGIC))) else None
        file.seek(0)
        while chunk := file.read(CHUNK_BYTES):
            state.read_bytes += len(chunk)
            if rows is not None:
                state.rows += rows.count(chunk)
                yield chunk
            else:
                state.rows += chunk.count(b"\n")
                # A small chunk may compress to nothing yet; sending b"" would end the body.
                if compressed := deflate.compress(chunk):
                    yield compressed
            progress(state)
    if rows is None:
        yield deflate.flush()
    state.sent = True
    progress(state)


class _GzipRows:
    """Counts the newlines in gzip data as it streams by, member after member."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(wbits=31)
        self._corrupt = False

    def count(self, data: bytes) -> int:
        """Newlines in what this compressed chunk inflates to."""
        lines = 0
        while data and not self._corrupt:
            try:
                lines += self._inflate.decompress(data, _INFLATE_PIECE).count(b"\n")
            except zlib.error:
                # The service will say what is wrong with the file; only the count stops.
                self._corrupt = True
                break
            if self._inflate.eof:
                data = self._inflate.unused_data
                self._inflate = zlib.decompressobj(wbits=31)
            else:
                data = self._inflate.unconsumed_tail
        return lines


async def _detail(response: aiohttp.ClientResponse) -> str:
    """What an error response says: a problem's detail (or title), else its text."""
    text = await response.text(errors="replace")
    if response.content_type in ("application/problem+json", "application/json"):
        try:
            problem = await response.json(content_type=None)
        except ValueError:
            problem = None
        if isinstance(problem, dict):
            detail = problem.get("detail") or problem.get("title")
            if detail:
                return str(detail)
    return text.strip()[:500] or (response.reason or "")


class ProgressLine:
    """A progress line on a stream, redrawn at most every PROGRESS_INTERVAL seconds."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        # On a terminal the line is redrawn in place; in a log each update is a line.
        self._end = "\r" if stream.isatty() else "\n"
        self._drawn = 0.0
        self._shown = False

    def __call__(self, state: Progress) -> None:
        now = time.monotonic()
        if now - self._drawn < PROGRESS_INTERVAL and not state.sent:
            return
        self._drawn = now
        elapsed = max(now - state.started, 1e-9)
        rate = f"{state.rows / elapsed:,.0f} rows/s"
        if state.sent:
            text = (
                f"sent {_mb(state.read_bytes)}, {state.rows:,} rows, {rate}; waiting for the reply"
            )
        else:
            share = state.read_bytes / state.total_bytes if state.total_bytes else 1.0
            left = elapsed * (1 - share) / share if share else 0.0
            text = (
                f"sent {_mb(state.read_bytes)} of {_mb(state.total_bytes)} ({share:.0%}), "
                f"{rate}, ETA {left:.0f} s"
            )
        # \x1b[K clears what a longer earlier line left on the right.
        print(text + ("\x1b[K" if self._end == "\r" else ""), end=self._end, file=self._stream)
        self._stream.flush()
        self._shown = True

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # End the line, so what is printed next starts on its own.
        if self._shown and self._end == "\r":
            print(file=self._stream)


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def summary(result: ImportResult) -> str:
    """The result in human form: the counts, then the first few errors."""
    lines = [f"import {result.get('import_id')} from source {result.get('source')!r}:"]
    counts = ("rows", "accepted", "duplicates", "rejected", "mapped_legacy")
    width = max(len(name) for name in counts)
    for name in counts:
        lines.append(f"  {name.replace('_', ' '):<{width}}  {result.get(name, 0):>12,}")
    errors = result.get("errors") or []
    if errors:
        shown = errors[:SHOWN_ERRORS]
        lines.append(
            f"first {len(shown)} of {result.get('rejected', len(errors)):,} rejected rows:"
        )
        for error in shown:
            lines.append(
                f"  line {error.get('line')}: {error.get('value')!r}: {error.get('reason')}"
            )
    return "\n".join(lines)


def run_import(
    path: Path,
    url: str,
    key: str,
    source: str | None,
    idempotency_key: str | None,
    show_progress: bool,
) -> int:
    """`callguard import`: upload, print the summary; the exit status."""

    def retrying(failure: Exception, seconds: float) -> None:
        if isinstance(failure, ImportRefused):
            what = f"the service answered {failure.status} ({failure.detail})"
        else:
            what = f"the service could not be reached ({failure or type(failure).__name__})"
        print(f"{what}; sending again in {seconds:g} s", file=sys.stderr)

    try:
        with ProgressLine(sys.stderr) if show_progress else nullcontext() as line:
            result = asyncio.run(
                upload(
                    path,
                    url,
                    key,
                    source or default_source(path),
                    idempotency_key,
                    line,
                    retrying=retrying,
                )
            )
    except ImportRefused as err:
        print(f"import refused ({err.status}): {err.detail}", file=sys.stderr)
        return 1
    except (OSError, aiohttp.ClientError) as err:
        print(f"cannot import {path}: {err or type(err).__name__}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0
