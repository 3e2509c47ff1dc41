"""The real `callguard` command as subprocesses on a data dir of their own: running its
commands, serving, and stopping; shared by the tests and the benchmarks that need real
processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
from callguard import store
from callguard.embedded import database_url

from tests.waiting import eventually_sync

COMMAND_TIMEOUT = 120.0
"""A `callguard keys` run; the first one on a data dir also runs initdb."""
READY_TIMEOUT = 60.0
"""From start to /readyz 200: a fresh interpreter, the embedded Postgres, the filter."""
STOP_TIMEOUT = 30.0
FEED_TIMEOUT = 30.0
"""Until a change made by a command reaches a running server through the change feed (it
takes milliseconds; the deadline only catches a change that never arrives)."""
NUMBER = "0912345678"
KEY_ROW = re.compile(
    r"^\s*(?P<id>\d+)\s+(?P<role>\S+)\s+(?P<trust>\S+)\s+(?P<created>\S+ \S+)\s+"
    r"(?P<revoked>-|\S+ \S+)\s+(?P<name>.*?)(?:  \[sources: (?P<sources>.*?)\])?"
    r"(?:  \[(?P<cap>\d+) reports a day\])?$"
)
TEST_SOURCES = (
    "viettel",
    "police",
    "police-hanoi",
    "telco",
    "telco-1",
    "another",
    "in-flight",
    "cut",
    "x",
    "big",
    "bomb",
    "gone",
    "killed",
    "stalled",
    "held",
    "refused",
    "after",
    "listed",
    "trickle",
    "bad",
    "list",  # `callguard import list.csv` with no --source
)
"""The sources the tests' operator keys may import under (as `keys create --source`)."""
ENTRY_POINTS = {
    "python -m callguard": [sys.executable, "-m", "callguard"],
    "callguard": [str(Path(sys.executable).with_name("callguard"))],
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class KeyRow:
    """One line of `callguard keys list`."""

    id: int
    role: str
    revoked: bool
    name: str
    sources: tuple[str, ...] = ()
    trust: str = "community"
    reports_per_day: int | None = None


@dataclass(frozen=True)
class Cli:
    """The callguard command on one data dir, with DATABASE_URL unset unless given."""

    argv: list[str]
    data_dir: Path
    log_dir: Path
    database_url: str | None = None
    """A Postgres of the caller's (a benchmark's --database-url) instead of the data dir's."""

    @property
    def env(self) -> dict[str, str]:
        """The environment without any other database setting, so the embedded Postgres (or
        database_url) is used."""
        unset = ("DATABASE_URL", "CALLGUARD_DATA_DIR", "CALLGUARD_FILTER_BACKEND")
        env = {name: value for name, value in os.environ.items() if name not in unset}
        if self.database_url is not None:
            env["DATABASE_URL"] = self.database_url
        return env

    @property
    def dir_args(self) -> list[str]:
        """The flag that puts the embedded Postgres in this data dir."""
        return ["--data-dir", str(self.data_dir)]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run one command to completion, with `env` added to the environment; the caller
        checks its exit status."""
        return subprocess.run(
            [*self.argv, *args, *self.dir_args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def ok(self, *args: str) -> str:
        """Run a command that must succeed; its stdout."""
        result = self.run(*args)
        assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def create_key(
        self, role: str = "client", name: str = "app1", sources: Sequence[str] = TEST_SOURCES
    ) -> str:
        """A new key, as printed on the last line of `keys create`; an operator key may
        import under `sources`."""
        options = [arg for source in sources for arg in ("--source", source)]
        extra = options if role == "operator" else []
        return self.ok("keys", "create", "--role", role, "--name", name, *extra).splitlines()[-1]

    def list_keys(self) -> list[KeyRow]:
        """The rows of `keys list`."""
        rows = []
        for line in self.ok("keys", "list").splitlines()[1:]:
            match = KEY_ROW.match(line)
            assert match, f"unexpected keys list line: {line!r}"
            rows.append(
                KeyRow(
                    id=int(match["id"]),
                    role=match["role"],
                    revoked=match["revoked"] != "-",
                    name=match["name"],
                    sources=tuple((match["sources"] or "").split(", ")) if match["sources"] else (),
                    trust=match["trust"],
                    reports_per_day=int(match["cap"]) if match["cap"] else None,
                )
            )
        return rows

    @contextlib.contextmanager
    def serve(self, port: int, *options: str, **env: str) -> Iterator[Server]:
        """`callguard serve` in the background, with `env` added to the environment;
        stopped (or killed) on the way out."""
        argv = [*self.argv, "serve", "--host", "127.0.0.1", "--port", str(port), *options]
        log_path = self.log_dir / f"serve-{port}-{time.monotonic_ns()}.log"
        with started([*argv, *self.dir_args], port, {**self.env, **env}, log_path) as server:
            yield server


@contextlib.contextmanager
def started(
    argv: Sequence[str], port: int, env: dict[str, str], log_path: Path
) -> Iterator[Server]:
    """A server process that answers on 127.0.0.1:port, once its /readyz answers 200; its
    output in log_path; stopped (or killed) on the way out. It runs in a session of its own,
    so a Ctrl-C reaches only the caller, which then stops it in order."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Server:
    """A running `callguard serve` process."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        """Return once /readyz answers 200, within READY_TIMEOUT."""

        def ready() -> bool:
            assert self.process.poll() is None, f"{self.log_path.name}: exited early\n{self.log()}"
            with (
                contextlib.suppress(OSError),  # refused, or an error status
                _NO_PROXY.open(self.url + "/readyz", timeout=5) as response,
            ):
                return bool(response.status == 200)
            return False

        eventually_sync(ready, READY_TIMEOUT, lambda: f"{self.url}/readyz 200:\n{self.log()}")

    def request(
        self, method: str, path: str, key: str | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """(status, JSON body) of one request to this server."""
        request = urllib.request.Request(self.url + path, method=method)
        if key is not None:
            request.add_header("Authorization", f"Bearer {key}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            request.add_header("Content-Type", "application/json")
        try:
            with _NO_PROXY.open(request, data, timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.loads(err.read() or b"null")

    def terminate(self) -> int:
        """Send SIGTERM and wait for the exit status, within STOP_TIMEOUT."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"serve did not exit within {STOP_TIMEOUT}s of SIGTERM:\n{self.log()}")

    def stop(self) -> None:
        """Make sure the process is gone: SIGTERM, then SIGKILL."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postmaster_pid(data_dir: Path) -> int | None:
    """The embedded Postgres's pid, from its pid file; None without one."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    return None


def stop_leftover_postgres(data_dir: Path) -> None:
    """Stop an embedded Postgres a killed callguard process left running."""
    pid = postmaster_pid(data_dir)
    if pid is None or pid <= 0:
        return
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        postgres = psutil.Process(pid)
        if str(data_dir) not in " ".join(postgres.cmdline()):
            return  # a stale pid file: that pid is not our Postgres
        postgres.send_signal(signal.SIGINT)  # fast shutdown
        try:
            postgres.wait(STOP_TIMEOUT)
        except psutil.TimeoutExpired:
            postgres.kill()


async def apply_schema(url: str) -> None:
    """The service's tables in the database at url, as `callguard serve` applies them."""
    conn = await asyncpg.connect(url)
    try:
        await store.database.apply_schema(conn)
    finally:
        await conn.close()


def make_database(data_dir: Path) -> None:
    """A database in data_dir as a first `callguard serve` leaves it: made, tables applied."""
    with database_url(None, data_dir) as url:
        asyncio.run(apply_schema(url))


@contextlib.contextmanager
def fresh_data_dir() -> Iterator[Path]:
    """A fresh data dir for the embedded Postgres; its server is stopped afterwards."""
    with postgres_dir() as data_dir:
        try:
            yield data_dir
        finally:
            stop_leftover_postgres(data_dir)


@contextlib.contextmanager
def postgres_dir() -> Iterator[Path]:
    """A directory for an embedded Postgres's data, removed afterwards.

    Not under pytest's tmp_path: as root, Postgres runs as the `pgserver` user, and every
    pytest session makes /tmp/pytest-of-root private again, locking out another session's
    Postgres mid-run.
    """
    parent = Path(tempfile.mkdtemp(prefix="callguard-test-"))
    try:
        yield parent / "data"
    finally:
        shutil.rmtree(parent, ignore_errors=True)
