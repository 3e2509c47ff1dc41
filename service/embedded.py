"""Finding the database: DATABASE_URL, or the embedded PostgreSQL (the pgserver package) in
the data dir; and saying in one line why it cannot be used.

pgserver makes a server that trusts every local connection. Ours asks for a password
(scram-sha-256) kept in the data dir, mode 0600, and listens only on a socket in a directory
its owner alone may enter; a data dir made before is moved to this at its next start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import pwd
import secrets
import signal
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg
import psutil

from . import store

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
    warnings.simplefilter("ignore")
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import PostgresServer

HANDLES_FILE = ".handle_pids.json"
"""pgserver's list of the processes using a data dir's server; the last to leave stops it."""
CONNECT_TIMEOUT = 10.0
"""Seconds a command waits for the database to answer before it gives up."""
_CLOCK_SLACK = 1.0
"""Seconds between a process's recorded start and its write to the handles file that still
count as before it (process start times are kept to a clock tick)."""


PASSWORD_FILE = "postgres.password"
"""The password of the embedded Postgres's superuser, in the data dir (0600)."""
SUPERUSER = "postgres"
SOCKET_ROOT = Path(tempfile.gettempdir()) / f"callguard-sockets-{os.geteuid()}"
"""Where the socket goes when the data dir's path is too long for one: a directory of the
server's user alone (mode 0700), as is the one in it that holds the socket."""
PG_HBA = """\
# Written by callguard: local (socket) connections only, each with the password in
# postgres.password (scram-sha-256). callguard rewrites this file if it differs.
local all all scram-sha-256
local replication all scram-sha-256
"""
SOCKET_PERMISSIONS = "unix_socket_permissions = 0700  # callguard: the server's user alone\n"
_SCRAM_ITERATIONS = 4096
_PGSERVER_USER = "pgserver"
"""The user pgserver runs Postgres as when started by root."""


class _Server(PostgresServer):
    """pgserver's server, its socket under SOCKET_ROOT when the data dir's path is too long
    (pgserver's own choice is a directory others may enter)."""

    runtime_path = SOCKET_ROOT


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
                _private_dir(SOCKET_ROOT, _owner_of(data_dir))
                if (data_dir / "PG_VERSION").is_file():
                    _limit_socket_permissions(data_dir)
            data_dir.mkdir(exist_ok=True)
            server = PostgresServer._instances.get(data_dir) or _Server(data_dir)
        try:
            with PostgresServer._lock:
                url = _secure(data_dir, server)
        except BaseException:
            server.cleanup()  # let go of it: the last to leave stops it
            raise
    except DatabaseUnavailable:
        raise
    except Exception as err:
        # pgserver fails with whatever initdb, pg_ctl or the file system raised.
        raise DatabaseUnavailable(
            f"the embedded Postgres in {data_dir} did not start ({err}); its log: "
            f"{data_dir / 'log'}"
        ) from err
    try:
        yield url
    finally:
        server.cleanup()


def _secure(data_dir: Path, server: PostgresServer) -> str:
    """Make the running server ask for the password and keep its socket private; return
    the URL to reach it. A data dir made before (trust, no password) is moved over: the
    password is written, then set, then required, so a stop at any point is picked up by
    the next start. Call with pgserver's lock held."""
    socket_dir = server.get_postmaster_info().socket_dir
    assert socket_dir is not None
    owner = _owner_of(data_dir)
    _private_dir(SOCKET_ROOT, owner)  # pgserver opens it and the socket's up as root
    if socket_dir.parent == SOCKET_ROOT:
        _private_dir(socket_dir, owner)
    socket_dir.chmod(0o700)  # the data dir itself, if the socket is there
    password = _password(data_dir / PASSWORD_FILE)
    hba = data_dir / "pg_hba.conf"
    if hba.read_text() != PG_HBA:
        # Still trusted: the socket's directory, just made private, lets no one else in.
        loaded = _psql(
            socket_dir,
            password,
            f"ALTER ROLE {SUPERUSER} PASSWORD '{_scram_verifier(password)}';\n"
            "SELECT pg_conf_load_time();\n",
        )
        _replace_file(hba, PG_HBA)
        _limit_socket_permissions(data_dir)  # from the next start: unix_socket_permissions
        pid = server.get_pid()
        assert pid is not None
        os.kill(pid, signal.SIGHUP)  # reload, as pg_ctl does (which will not run as root)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while _psql(socket_dir, password, f"SELECT pg_conf_load_time() > '{loaded}';\n") != "t":
            if time.monotonic() > deadline:
                raise DatabaseUnavailable(
                    f"the embedded Postgres in {data_dir} did not reload pg_hba.conf in "
                    f"{CONNECT_TIMEOUT:g} s; its log: {data_dir / 'log'}"
                )
            time.sleep(0.05)
    query = urlencode({"host": str(socket_dir)})
    return f"postgresql://{SUPERUSER}:{quote(password, safe='')}@/{SUPERUSER}?{query}"


def _password(path: Path) -> str:
    """The superuser's password, made (0600) on first use."""
    with suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
    path.chmod(0o600)
    return path.read_text().strip()


def _scram_verifier(password: str) -> str:
    """What Postgres stores for a scram-sha-256 password (RFC 5803), made here so the
    password itself never reaches the server or its log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${_SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _psql(socket_dir: Path, password: str, sql: str) -> str:
    """Run SQL as the superuser over the socket; return what it printed, unaligned."""
    result = subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "psql"),
            *("-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"),
            *("-h", str(socket_dir), "-U", SUPERUSER, "-d", SUPERUSER),
        ],
        input=sql,
        text=True,
        check=True,
        capture_output=True,
        timeout=CONNECT_TIMEOUT,
        env={"PGPASSWORD": password},  # the child's alone: never an argument, never in ps
    )
    return result.stdout.strip()


def _limit_socket_permissions(data_dir: Path) -> None:
    """Have the server make its socket its user's alone, from its next start: a second
    lock on the door, in case its directory is ever opened (pgserver does so as root)."""
    conf = data_dir / "postgresql.conf"
    text = conf.read_text()
    if SOCKET_PERMISSIONS not in text:
        _replace_file(conf, text + SOCKET_PERMISSIONS)


def _replace_file(path: Path, text: str) -> None:
    """Rewrite a server's file whole or not at all, keeping its owner and mode."""
    before = path.stat()
    draft = path.with_name(f".{path.name}.callguard")
    draft.write_text(text)
    os.chmod(draft, stat.S_IMODE(before.st_mode))
    if os.geteuid() == 0:
        os.chown(draft, before.st_uid, before.st_gid)
    os.replace(draft, path)


def _owner_of(data_dir: Path) -> int:
    """The user the server runs as: the data dir's owner; for one not made yet, pgserver's
    own user when run as root (once it exists), else this process's."""
    with suppress(FileNotFoundError):
        return data_dir.stat().st_uid
    if os.geteuid() == 0:
        with suppress(KeyError):
            return pwd.getpwnam(_PGSERVER_USER).pw_uid
    return os.geteuid()


def _private_dir(path: Path, owner: int) -> None:
    """Make `path` a directory that only `owner` may enter, or refuse one someone else
    made (a directory in /tmp may be anyone's)."""
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (owner, os.geteuid()):
        raise DatabaseUnavailable(
            f"{path} is not a directory of this user's: remove it, then start again"
        )
    if info.st_uid != owner:
        os.chown(path, owner, -1)
    path.chmod(0o700)


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
            applied = await store.database.schema_applied(conn)
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
