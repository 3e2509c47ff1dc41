"""Finding the database: DATABASE_URL, or the embedded PostgreSQL (the pgserver package) in
the data dir; and saying in one line why it cannot be used."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import psutil

from service import store

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
    warnings.simplefilter("ignore")
    from pgserver.postgres_server import PostgresServer, get_server

HANDLES_FILE = ".handle_pids.json"
"""pgserver's list of the processes using a data dir's server; the last to leave stops it."""
CONNECT_TIMEOUT = 10.0
"""Seconds a command waits for the database to answer before it gives up."""
_CLOCK_SLACK = 1.0
"""Seconds between a process's recorded start and its write to the handles file that still
count as before it (process start times are kept to a clock tick)."""


class DatabaseUnavailable(Exception):
    """The database cannot be used; str(error) says why, in one line for the operator."""


@contextmanager
def database_url(database_url: str | None, data_dir: Path, *, create: bool = True) -> Iterator[str]:
    """Yield database_url, or start the embedded Postgres in data_dir and yield its URL.

    A database is made in a new or empty data_dir only with `create`: the commands other
    than `serve` pass False, as one run in the wrong folder would make a database nothing
    serves from. pgserver
    shares one server among the processes using a data dir and stops it when the last of
    them lets go, so `callguard keys` can run beside `callguard serve`.
    """
    if database_url:
        yield database_url
        return
    data_dir = data_dir.expanduser().resolve()
    _check_data_dir(data_dir, create)
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PostgresServer._lock:
                forget_dead_handles(data_dir)
            server = get_server(data_dir, cleanup_mode="stop")
    except Exception as err:
        # pgserver fails with whatever initdb, pg_ctl or the file system raised.
        raise DatabaseUnavailable(
            f"the embedded Postgres in {data_dir} did not start ({err}); its log: "
            f"{data_dir / 'log'}"
        ) from err
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def _check_data_dir(data_dir: Path, create: bool) -> None:
    """Raise DatabaseUnavailable unless data_dir holds a database, or may be given one."""
    if (data_dir / "PG_VERSION").is_file():
        return
    if not create:
        raise DatabaseUnavailable(
            f"no database in {data_dir}: `callguard serve --data-dir {data_dir}` makes one "
            "(or set DATABASE_URL)"
        )
    if data_dir.exists() and not data_dir.is_dir():
        raise DatabaseUnavailable(f"the data dir {data_dir} is not a directory")
    if data_dir.is_dir() and any(data_dir.iterdir()):
        raise DatabaseUnavailable(
            f"the data dir {data_dir} is not empty and holds no database: name a new or "
            "empty directory with --data-dir"
        )


def shown_url(url: str) -> str:
    """A database URL fit to print: a password, in the address or as a parameter, is ***."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = [
        (name, "***" if name == "password" else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*/")))


async def check_database(url: str, *, need_tables: bool) -> None:
    """Raise DatabaseUnavailable, naming the database, if it cannot be reached (or, with
    need_tables, holds no callguard tables: only `serve` makes them)."""
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
        try:
            applied = await store.schema_applied(conn)
        finally:
            await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        reason = str(err) or type(err).__name__
        raise DatabaseUnavailable(
            f"cannot reach the database at {shown_url(url)}: {reason}"
        ) from err
    if need_tables and not applied:
        raise DatabaseUnavailable(
            f"no callguard tables in the database at {shown_url(url)}: `callguard serve` makes them"
        )


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
