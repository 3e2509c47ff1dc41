"""Logs as JSON lines: one per request on stdout (the access log), and the service's own
messages on stderr.

The access log is on every lookup's path, whose whole budget is tens of microseconds;
aiohttp's default access logger cost about 110 µs a request here (docs/benchmarks.md). So
a request's line is one f-string into a buffer, written out when 64 KiB are waiting or within
a second of its request, and at exit. It names the route template, never the path (which
holds the phone number), and the key's id, never the key; reporter ids are never logged.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import logging
import sys
import time
from typing import TextIO

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse
from aiohttp.web_urldispatcher import AbstractResource

from service.auth import API_KEY
from service.metrics import KNOWN_METHODS, resource_label

FLUSH_SECONDS = 1.0
BUFFER_BYTES = 1 << 16


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message, and the traceback."""

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


def configure(stream: TextIO | None = None) -> None:
    """Send the service's own log messages to `stream` (stderr) as JSON lines, at INFO."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").propagate = False  # JsonAccessLog writes those


class LineBuffer:
    """JSON lines waiting to be written: out when BUFFER_BYTES are waiting, within
    FLUSH_SECONDS of the first, and at exit."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lines: list[str] = []
        self._size = 0
        self._flush_scheduled = False
        atexit.register(self.flush)

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


class JsonAccessLog(AbstractAccessLogger):
    """aiohttp's access logger, replaced: one JSON line per request. aiohttp makes one per
    connection; they share the process's buffer."""

    buffer = LineBuffer(sys.stdout)
    """Where every connection's lines go; tests swap in their own."""

    @property
    def enabled(self) -> bool:
        return True

    def log(self, request: BaseRequest, response: StreamResponse, time_taken: float) -> None:
        """Buffer the request's line: time, method, route, status, milliseconds, key id."""
        key = request.get(API_KEY)
        method = request.method if request.method in KNOWN_METHODS else "other"
        resource = request.match_info.route.resource if isinstance(request, web.Request) else None
        route = _route_json(resource)
        self.buffer.add(
            f'{{"ts": {time.time():.3f}, "method": "{method}", "route": {route}, '
            f'"status": {response.status}, "ms": {time_taken * 1000:.3f}, '
            f'"key_id": {"null" if key is None else key.id}}}\n'
        )


@functools.lru_cache(maxsize=256)
def _route_json(resource: AbstractResource | None) -> str:
    """A route's template as a JSON string, worked out once per route."""
    return json.dumps(resource_label(resource))
