"""Logs as JSON lines: one per request on stdout (the request log), and the service's own
messages on stderr.

The request log is on every lookup's path, whose whole budget is tens of microseconds;
aiohttp's default access logger cost about 110 µs a request here (docs/benchmarks.md). So
the front middleware (app.py) writes a request's line itself, one f-string into a buffer,
written out when 64 KiB are waiting, within a second of its request, and at shutdown. It names
the route template, never the path (which holds the phone number), and the key's id, never the
key; reporter ids are never logged.

The libraries' loggers are another matter: aiohttp's server logs a request it cannot parse with
the parser's message, which quotes the raw request line or header (an API key, the number asked
about). So every record of theirs passes `LibraryRecords` first, which keeps only the message's
template and the exception's class (`withhold_library_details`, called by create_app).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
import traceback
from typing import Any, TextIO

from .metrics import Outcome, resource_label

FLUSH_SECONDS = 1.0
BUFFER_BYTES = 1 << 16


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message, and the traceback without
    the exceptions' messages, which may quote what a client sent (an int() of its text, a
    key in a header): where it failed and with what class is enough to find the fault."""

    def formatException(self, ei: Any) -> str:
        error = ei[1]
        chain = []
        while error is not None:
            frames = "".join(traceback.format_tb(error.__traceback__))
            kind = f"{type(error).__module__}.{type(error).__qualname__}"
            chain.append(f"Traceback (most recent call last):\n{frames}{kind} (message withheld)")
            error = error.__cause__ or error.__context__
        return "\n\nwhich was raised while handling:\n".join(chain)

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


LIBRARY_LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
    "asyncio",
)
"""Every logger aiohttp has (aiohttp/log.py), and asyncio's, which logs a protocol's failures."""


class LibraryRecords(logging.Filter):
    """Keeps a library's record to its fixed text: the message template without its
    arguments, and the exception's class without its message or traceback, since either may
    quote request bytes (headers, the path, the body)."""

    def filter(self, record: logging.LogRecord) -> bool:
        template = record.msg if isinstance(record.msg, str) and record.args else None
        error = record.exc_info[1] if record.exc_info else None
        text = template or "a message withheld, as it may quote a request"
        if error is not None:
            text = f"{text} ({type(error).__module__}.{type(error).__qualname__})"
        record.msg, record.args = text, ()
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def withhold_library_details() -> None:
    """Put LibraryRecords on the libraries' loggers, once however often this is called (a
    logger-level filter, so it holds whichever handler prints the record)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, LibraryRecords) for f in logger.filters):
            logger.addFilter(LibraryRecords())


def configure(stream: TextIO | None = None, *, verbose: bool = False) -> None:
    """Send log messages to `stream` (stderr) as JSON lines: callguard's own at INFO, the
    libraries' (pgserver and initdb, aiohttp, asyncpg) only from WARNING unless `verbose`.

    pgserver's failures are left out too unless `verbose`: callguard reports them in one
    line naming the embedded Postgres's log, where pgserver would repeat the whole log.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger(__package__).setLevel(logging.INFO)
    logging.getLogger("pgserver").setLevel(logging.NOTSET if verbose else logging.CRITICAL)


class LineBuffer:
    """JSON lines waiting to be written: out when BUFFER_BYTES are waiting, within
    FLUSH_SECONDS of the first, and when flush() is called (at shutdown)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lines: list[str] = []
        self._size = 0
        self._flush_scheduled = False

    def add(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line)
        if self._size >= BUFFER_BYTES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the waiting lines out."""
        self._flush_scheduled = False
        if self._lines:
            lines, self._lines, self._size = self._lines, [], 0
            self.stream.write("".join(lines))
            self.stream.flush()


class RequestLog:
    """The request log: a JSON line per request with its time, method, route template,
    status, milliseconds and key id."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.buffer = LineBuffer(stream or sys.stdout)
        self._fields: dict[Outcome, str] = {}

    def add(self, outcome: Outcome, seconds: float, key_id: int | None) -> None:
        """Buffer one answered request's line."""
        fields = self._fields.get(outcome)
        if fields is None:  # worked out once per route, method and status
            resource, method, status = outcome
            fields = self._fields[outcome] = (
                f'"method": "{method}", "route": {json.dumps(resource_label(resource))}, '
                f'"status": {status}'
            )
        self.buffer.add(
            f'{{"ts": {time.time():.3f}, {fields}, "ms": {seconds * 1000:.3f}, '
            f'"key_id": {"null" if key_id is None else key_id}}}\n'
        )
