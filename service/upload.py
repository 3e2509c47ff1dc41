"""The client side of bulk imports: stream a CSV or NDJSON file, gzipped, to POST /v1/imports.

The file is read in chunks and compressed on the fly, so a file of millions of rows never
sits in memory; `callguard import` and loadtest/import_bench.py both use `upload`.
"""

from __future__ import annotations

import asyncio
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TextIO

import aiohttp

CONTENT_TYPES = {
    ".csv": "text/csv",
    ".ndjson": "application/x-ndjson",
    ".jsonl": "application/x-ndjson",
}
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
    """The Content-Type for a file, from its extension once a .gz is taken off."""
    name = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    try:
        return CONTENT_TYPES[name.suffix.lower()]
    except KeyError:
        kinds = ", ".join(CONTENT_TYPES)
        raise ValueError(f"{path.name}: the name must end in {kinds} (optionally .gz)") from None


def default_source(path: Path) -> str:
    """The source named by a file: `bank-x.csv.gz` -> `bank-x`."""
    name = path.with_suffix("") if path.suffix.lower() == ".gz" else path
    return name.stem


async def upload(
    path: Path,
    url: str,
    key: str,
    source: str,
    idempotency_key: str | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> ImportResult:
    """Import the file into the service at url (e.g. http://127.0.0.1:8080) as `source`.

    Returns the service's result; raises ImportRefused on an error response, and OSError
    or aiohttp.ClientError when the file or the service cannot be reached.
    """
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": content_type(path),
        "Content-Encoding": "gzip",
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    state = Progress(total_bytes=path.stat().st_size)
    body = _gzip_body(path, state, progress or (lambda _: None))
    endpoint = url.rstrip("/") + "/v1/imports"
    # trust_env=False: a proxy from the environment must not see the key or the rows.
    async with (
        aiohttp.ClientSession(trust_env=False, timeout=TIMEOUT) as session,
        session.post(endpoint, params={"source": source}, data=body, headers=headers) as response,
    ):
        if response.status == HTTPStatus.CREATED:
            result = await response.json()
            if not isinstance(result, dict):
                raise ImportRefused(response.status, f"unexpected response: {result!r:.200}")
            return result
        raise ImportRefused(response.status, await _detail(response))


async def _gzip_body(
    path: Path, state: Progress, progress: Callable[[Progress], None]
) -> AsyncIterator[bytes]:
    """The file as gzip, chunk by chunk: compressed here, or as it is if it is a .gz."""
    already_gzipped = path.suffix.lower() == ".gz"
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    rows = _GzipRows() if already_gzipped else None
    with path.open("rb") as file:
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
    try:
        with ProgressLine(sys.stderr) if show_progress else nullcontext() as line:
            result = asyncio.run(
                upload(path, url, key, source or default_source(path), idempotency_key, line)
            )
    except ImportRefused as err:
        print(f"import refused ({err.status}): {err.detail}", file=sys.stderr)
        return 1
    except (OSError, aiohttp.ClientError) as err:
        print(f"cannot import {path}: {err or type(err).__name__}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0
