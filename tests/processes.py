"""The real `callguard` command as subprocesses on a data dir of their own: running its
commands, serving, and stopping; shared by the tests that need real processes."""

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from callguard import store
from callguard.embedded import database_url

COMMAND_TIMEOUT = 120.0
"""A `callguard keys` run; the first one on a data dir also runs initdb."""
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
REVOKE_TIMEOUT = 2.0
POLL_SECONDS = 0.05
NUMBER = "0912345678"
KEY_ROW = re.compile(
    r"^\s*(?P<id>\d+)\s+(?P<role>\S+)\s+(?P<created>\S+ \S+)\s+"
    r"(?P<revoked>-|\S+ \S+)\s+(?P<name>.*?)(?:  \[sources: (?P<sources>.*)\])?$"
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


@dataclass(frozen=True)
class Cli:
    """The callguard command on one data dir, with DATABASE_URL unset."""

    argv: list[str]
    data_dir: Path
    log_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment without any database setting, so the embedded Postgres is used."""
        unset = ("DATABASE_URL", "CALLGUARD_DATA_DIR", "CALLGUARD_FILTER_BACKEND")
        return {name: value for name, value in os.environ.items() if name not in unset}

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

    def create_key(self, role: str = "client", name: str = "app1") -> str:
        """A new key, as printed on the last line of `keys create`; an operator key may
        import under TEST_SOURCES."""
        sources = [arg for source in TEST_SOURCES for arg in ("--source", source)]
        extra = sources if role == "operator" else []
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
                )
            )
        return rows

    @contextlib.contextmanager
    def serve(self, port: int, *options: str, **env: str) -> Iterator[Server]:
        """`callguard serve` in the background, with `env` added to the environment;
        stopped (or killed) on the way out."""
        log_path = self.log_dir / f"serve-{port}-{time.monotonic_ns()}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    *self.argv,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    *options,
                    *self.dir_args,
                ],
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
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
        """Poll /readyz until it answers 200, within READY_TIMEOUT."""
        deadline = time.monotonic() + READY_TIMEOUT
        status = None
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"serve exited early:\n{self.log()}"
            with contextlib.suppress(OSError):
                status, _ = self.request("GET", "/readyz")
                if status == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"/readyz not 200 within {READY_TIMEOUT}s (last {status}):\n{self.log()}")

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


def _stop_leftover_postgres(data_dir: Path) -> None:
    """Stop an embedded Postgres a killed callguard process left running."""
    pid_file = data_dir / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pid_file.read_text().splitlines()[0])
        if pid <= 0 or str(data_dir).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return  # a stale pid file: that pid is not our Postgres
        os.kill(pid, signal.SIGINT)  # fast shutdown
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


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
            _stop_leftover_postgres(data_dir)


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
