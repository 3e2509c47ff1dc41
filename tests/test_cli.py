"""The real `callguard` command, run as subprocesses on the embedded Postgres."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import postgres_dir

COMMAND_TIMEOUT = 120.0
"""A `callguard keys` run; the first one on a data dir also runs initdb."""
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
REVOKE_TIMEOUT = 2.0
POLL_SECONDS = 0.05
NUMBER = "0912345678"
KEY_ROW = re.compile(
    r"^\s*(?P<id>\d+)\s+(?P<role>\S+)\s+(?P<created>\S+ \S+)\s+"
    r"(?P<revoked>-|\S+ \S+)\s+(?P<name>.*)$"
)
ENTRY_POINTS = {
    "python -m service": [sys.executable, "-m", "service"],
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

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one command to completion; the caller checks its exit status."""
        return subprocess.run(
            [*self.argv, *args, *self.dir_args],
            env=self.env,
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
        """A new key, as printed on the last line of `keys create`."""
        return self.ok("keys", "create", "--role", role, "--name", name).splitlines()[-1]

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
                )
            )
        return rows

    @contextlib.contextmanager
    def serve(self, port: int, *options: str) -> Iterator[Server]:
        """`callguard serve` in the background; stopped (or killed) on the way out."""
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
                env=self.env,
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


@contextlib.contextmanager
def fresh_data_dir() -> Iterator[Path]:
    """A fresh data dir for the embedded Postgres; its server is stopped afterwards."""
    with postgres_dir() as data_dir:
        try:
            yield data_dir
        finally:
            _stop_leftover_postgres(data_dir)


@pytest.fixture(params=list(ENTRY_POINTS))
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """The command, through each entry point, on a fresh data dir."""
    with fresh_data_dir() as data_dir:
        yield Cli(ENTRY_POINTS[request.param], data_dir, tmp_path)


@pytest.fixture
def callguard(tmp_path: Path) -> Iterator[Cli]:
    """The `callguard` script on a fresh data dir."""
    with fresh_data_dir() as data_dir:
        yield Cli(ENTRY_POINTS["callguard"], data_dir, tmp_path)


def test_python_m_service_is_the_callguard_command() -> None:
    helps = [
        subprocess.run(
            [*argv, "keys", "create", "--help"],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=True,
        ).stdout
        for argv in ENTRY_POINTS.values()
    ]

    assert helps[0] == helps[1]
    assert helps[0].startswith("usage: callguard keys create")


def test_keys_create_prints_the_key_alone_on_the_last_line(cli: Cli) -> None:
    stdout = cli.ok("keys", "create", "--role", "client", "--name", "app1")

    key = stdout.splitlines()[-1]
    assert key.startswith("cg_")
    assert key == key.strip() and " " not in key
    assert stdout.endswith(key + "\n")


def test_keys_list_shows_id_role_and_name_but_never_the_key(cli: Cli) -> None:
    client_key = cli.create_key("client", "app1")
    operator_key = cli.create_key("operator", "telco")

    listing = cli.ok("keys", "list")

    assert client_key not in listing
    assert operator_key not in listing
    assert "cg_" not in listing
    assert cli.list_keys() == [
        KeyRow(id=1, role="client", revoked=False, name="app1"),
        KeyRow(id=2, role="operator", revoked=False, name="telco"),
    ]


def test_keys_revoke_by_id_and_by_key_text(cli: Cli) -> None:
    cli.create_key("client", "by-id")
    by_text = cli.create_key("client", "by-text")
    cli.create_key("client", "kept")
    ids = {row.name: row.id for row in cli.list_keys()}

    cli.ok("keys", "revoke", str(ids["by-id"]))
    cli.ok("keys", "revoke", by_text)

    revoked = {row.name: row.revoked for row in cli.list_keys()}
    assert revoked == {"by-id": True, "by-text": True, "kept": False}


def test_keys_revoke_fails_for_an_unknown_or_already_revoked_key(cli: Cli) -> None:
    key = cli.create_key()

    unknown = [
        cli.run("keys", "revoke", text)
        for text in ("999", "99999999999999999999", "²", "cg_no-such-key")
    ]
    cli.ok("keys", "revoke", key)
    again = cli.run("keys", "revoke", key)

    for result in [*unknown, again]:
        assert result.returncode != 0
        assert "no active key" in result.stderr
    assert [row.revoked for row in cli.list_keys()] == [True]


@pytest.mark.parametrize(
    ("role", "name", "words"),
    [("superuser", "app1", "invalid choice: 'superuser'"), ("client", " ", "must not be empty")],
)
def test_keys_create_rejects_an_unknown_role_or_empty_name(
    cli: Cli, role: str, name: str, words: str
) -> None:
    result = cli.run("keys", "create", "--role", role, "--name", name)

    assert result.returncode == 2
    assert words in result.stderr
    assert "cg_" not in result.stdout
    assert not cli.data_dir.exists()  # rejected before the database was started


def test_report_and_key_survive_a_restart(callguard: Cli) -> None:
    key = callguard.create_key("client", "app1")
    report = {"number": NUMBER, "category": "online_loan", "reporter": "r1"}

    with callguard.serve(free_port()) as server:
        status, body = server.request("POST", "/v1/reports", key, report)
        assert status == 201, body
        assert body["verdict"] == "suspicious"
        assert server.terminate() == 0, server.log()
    assert not (callguard.data_dir / "postmaster.pid").exists(), "embedded Postgres left running"

    with callguard.serve(free_port()) as server:
        status, body = server.request("GET", f"/v1/numbers/{NUMBER}", key)
        assert status == 200, body
        assert body["verdict"] == "suspicious"
        assert body["report_count"] == 1
        assert body["categories"] == ["online_loan"]
        assert server.terminate() == 0, server.log()


def test_revoking_a_key_locks_it_out_of_the_running_server(callguard: Cli) -> None:
    key = callguard.create_key("client", "app1")
    (key_id,) = (row.id for row in callguard.list_keys())

    with callguard.serve(free_port()) as server:
        for _ in range(2):  # the second answer may come from the server's key cache
            status, body = server.request("GET", f"/v1/numbers/{NUMBER}", key)
            assert status == 200, body

        callguard.ok("keys", "revoke", str(key_id))

        deadline = time.monotonic() + REVOKE_TIMEOUT
        while (status := server.request("GET", f"/v1/numbers/{NUMBER}", key)[0]) != 401:
            assert status == 200
            assert time.monotonic() < deadline, f"revoked key still accepted:\n{server.log()}"
            time.sleep(POLL_SECONDS)
        assert server.process.poll() is None  # `keys revoke` left the shared Postgres running
        assert server.request("GET", "/readyz")[0] == 200


def test_allowlist_load_verifies_numbers_on_a_running_server(
    callguard: Cli, repo_root: Path
) -> None:
    key = callguard.create_key("admin", "moderator")
    hotline = "/v1/numbers/02513685134"
    with callguard.serve(free_port()) as server:
        assert server.request("GET", hotline, key)[1]["verdict"] == "unknown"

        out = callguard.ok("allowlist", "load", str(repo_root / "data" / "official_numbers.csv"))
        assert "verified 1 number(s)" in out

        # The running server learns of the number through the change feed, not a restart.
        deadline = time.monotonic() + REVOKE_TIMEOUT
        while (body := server.request("GET", hotline, key)[1])["verdict"] != "verified":
            assert time.monotonic() < deadline, f"not verified:\n{server.log()}"
            time.sleep(POLL_SECONDS)
        assert body["number"] == "+842513685134"
        assert "Công an tỉnh Đồng Nai" in body["owner"]
        status, audit = server.request("GET", "/v1/audit", key)
        assert status == 200
        assert [(e["action"], e["actor"], e["number"]) for e in audit["entries"]] == [
            ("allowlist_add", "cli", "+842513685134")
        ]


def test_allowlist_load_loads_nothing_from_a_file_with_a_bad_row(
    callguard: Cli, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("number,owner\n0912345678,Ngân hàng A\nnot-a-number,B\n0987654321,\n")
    result = callguard.run("allowlist", "load", str(bad))
    assert result.returncode == 1
    assert "line 3: 'not-a-number'" in result.stderr
    assert "line 4: the owner is empty" in result.stderr
    assert "nothing loaded" in result.stderr

    missing = tmp_path / "missing.csv"
    missing.write_text("phone,name\n0912345678,A\n")
    result = callguard.run("allowlist", "load", str(missing))
    assert result.returncode == 1
    assert "missing column(s) number, owner" in result.stderr

    key = callguard.create_key("client", "app")
    with callguard.serve(free_port()) as server:
        body = server.request("GET", "/v1/numbers/0912345678", key)[1]
        assert body["verdict"] == "unknown"  # the good row of the bad file was not loaded
