"""The embedded PostgreSQL (the pgserver package) used when no DATABASE_URL is given."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
    warnings.simplefilter("ignore")
    from pgserver.postgres_server import PostgresServer, get_server

HANDLES_FILE = ".handle_pids.json"
"""pgserver's list of the processes using a data dir's server; the last to leave stops it."""
_CLOCK_SLACK = 1.0
"""Seconds between a process's recorded start and its write to the handles file that still
count as before it (process start times are kept to a clock tick)."""


@contextmanager
def database_url(database_url: str | None, data_dir: Path) -> Iterator[str]:
    """Yield database_url, or start the embedded Postgres in data_dir and yield its URL.

    pgserver shares one server among the processes using a data dir and stops it when
    the last of them lets go, so `callguard keys` can run beside `callguard serve`.
    """
    if database_url:
        yield database_url
        return
    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with PostgresServer._lock:
            forget_dead_handles(data_dir)
        server = get_server(data_dir, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def forget_dead_handles(data_dir: Path) -> None:
    """Drop the processes that are gone from the data dir's handles file.

    A process killed with SIGKILL never takes itself off, and while its pid is listed no
    clean stop of another process is the last one's, so each leaves Postgres running.
    Call with pgserver's lock held.
    """
    path = data_dir / HANDLES_FILE
    try:
        written = path.stat().st_mtime
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # no handles file yet, or one pgserver will rewrite
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _holds_handle(pid, written)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def _holds_handle(pid: int, written: float) -> bool:
    """Whether `pid` may still be the process that listed itself: it runs, and it started
    before the file's last write (a process that reused a dead holder's pid started after)."""
    if pid == os.getpid():
        return True
    with suppress(psutil.Error):
        process = psutil.Process(pid)
        return (
            process.status() != psutil.STATUS_ZOMBIE
            and process.create_time() <= written + _CLOCK_SLACK
        )
    return False
