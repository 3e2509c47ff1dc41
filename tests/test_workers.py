"""`callguard serve --workers N`: N processes on one port, run for real on the embedded Postgres."""

from __future__ import annotations

import http.client
import json
import signal
import socket
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from tests.processes import (
    FEED_TIMEOUT,
    NUMBER,
    STOP_TIMEOUT,
    Cli,
    Server,
    free_port,
)
from tests.waiting import eventually_sync

pytestmark = pytest.mark.slow  # serves real `callguard serve --workers` processes

WORKERS = 2
LISTEN_TIMEOUT = 60.0
"""Until every worker listens: each is a fresh interpreter that loads its own filter."""
SPREAD_TIMEOUT = 10.0
"""Until new connections have reached every worker."""

Answer = tuple[int, Any]
"""(status, JSON body) of one request."""


def is_running(process: psutil.Process) -> bool:
    """Whether the process runs: an orphan's zombie may wait long for init to reap it."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def listening_workers(server: Server) -> list[psutil.Process]:
    """The server's child processes that listen on its port, once WORKERS of them do."""
    port = server.port

    def listeners() -> list[psutil.Process]:
        assert server.process.poll() is None, f"serve exited:\n{server.log()}"
        found = []
        for child in psutil.Process(server.process.pid).children():
            try:
                connections = child.net_connections("tcp")
            except psutil.NoSuchProcess:
                continue
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections):
                found.append(child)
        return found if len(found) == WORKERS else []

    return eventually_sync(
        listeners, LISTEN_TIMEOUT, lambda: f"{WORKERS} workers listening:\n{server.log()}"
    )


def request_one(
    server: Server, workers: list[psutil.Process], path: str, key: str | None
) -> tuple[int, Answer]:
    """(pid of the worker that answered, answer) of a GET on a new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        answer = response.status, json.loads(response.read())
        # The connection stays open (keep-alive): the worker holding its other end answered.
        client_port = connection.sock.getsockname()[1]
        for worker in workers:
            for c in worker.net_connections("tcp"):
                if c.raddr and c.raddr.port == client_port and c.laddr.port == server.port:
                    return worker.pid, answer
        pytest.fail(f"no worker holds the connection from port {client_port}")
    finally:
        connection.close()


def ask_every_worker(
    server: Server,
    workers: list[psutil.Process],
    path: str,
    key: str | None,
    wanted: Callable[[Answer], bool],
    timeout: float,
) -> dict[int, Answer]:
    """Each worker's latest answer, once every worker's latest answer is wanted."""
    latest: dict[int, Answer] = {}

    def every_answer_wanted() -> bool:
        pid, answer = request_one(server, workers, path, key)
        latest[pid] = answer
        return len(latest) == len(workers) and all(map(wanted, latest.values()))

    eventually_sync(
        every_answer_wanted,
        SPREAD_TIMEOUT + timeout,
        lambda: f"every worker's answer wanted: {latest}\n{server.log()}",
    )
    return latest


def test_workers_share_the_port_and_stop_together_on_sigterm(cli: Cli) -> None:
    with cli.serve(free_port(), "--workers", str(WORKERS)) as server:
        workers = listening_workers(server)
        parent = psutil.Process(server.process.pid)
        assert not parent.net_connections("tcp"), "the parent itself should not listen"

        answers = ask_every_worker(
            server, workers, "/readyz", None, lambda answer: answer[0] == 200, 0
        )

        assert set(answers) == {worker.pid for worker in workers}
        assert server.terminate() == 0, server.log()
        assert not [worker for worker in workers if is_running(worker)], "a worker left"
    assert not (cli.data_dir / "postmaster.pid").exists(), "embedded Postgres left running"


def test_a_new_key_and_a_listing_reach_every_worker(callguard: Cli) -> None:
    def lookup_says(verdict: str) -> Callable[[Answer], bool]:
        return lambda answer: answer[0] == 200 and answer[1]["verdict"] == verdict

    with callguard.serve(free_port(), "--workers", str(WORKERS)) as server:
        workers = listening_workers(server)
        key = callguard.create_key("admin", "moderator")  # while the workers run
        path = f"/v1/numbers/{NUMBER}"

        ask_every_worker(server, workers, path, key, lookup_says("unknown"), FEED_TIMEOUT)
        status, body = server.request("PUT", path, key, {"category": "online_loan"})
        assert status == 200, body
        assert body["verdict"] == "scam"

        # Whichever worker took the PUT, the change feed carries the listing to the others.
        ask_every_worker(server, workers, path, key, lookup_says("scam"), FEED_TIMEOUT)
        assert server.terminate() == 0, server.log()


def test_a_worker_that_dies_stops_the_others_and_fails(callguard: Cli) -> None:
    with callguard.serve(free_port(), "--workers", str(WORKERS)) as server:
        killed, other = listening_workers(server)

        killed.send_signal(signal.SIGKILL)

        assert server.process.wait(STOP_TIMEOUT) == 1, server.log()
        assert f"worker {killed.pid} exited with status -9" in server.log()
        assert not is_running(other), "the other worker was left running"
    assert not (callguard.data_dir / "postmaster.pid").exists(), "embedded Postgres left running"


def test_workers_stop_when_the_parent_is_killed(callguard: Cli) -> None:
    with callguard.serve(free_port(), "--workers", str(WORKERS)) as server:
        workers = listening_workers(server)

        server.process.kill()
        server.process.wait()

        eventually_sync(
            lambda: not any(map(is_running, workers)),
            STOP_TIMEOUT,
            lambda: f"every worker stopped: {workers}\n{server.log()}",
        )
        assert "the parent process is gone" in server.log()
    # The killed parent left the embedded Postgres running: the fixture stops it.


@pytest.mark.parametrize("workers", ["0", "65", "two", "-1"])
def test_serve_rejects_a_bad_worker_count(first_run: Cli, workers: str) -> None:
    result = first_run.run("serve", "--port", str(free_port()), "--workers", workers)

    assert result.returncode == 2
    assert "--workers: must be a whole number from 1 to 64" in result.stderr
    assert not first_run.data_dir.exists()  # rejected before the database was started


def test_workers_need_a_fixed_port(first_run: Cli) -> None:
    result = first_run.run("serve", "--port", "0", "--workers", str(WORKERS))

    assert result.returncode == 2
    assert "--workers needs a fixed --port" in result.stderr
    assert not first_run.data_dir.exists()


def test_workers_do_not_join_a_port_already_in_use(first_run: Cli) -> None:
    # SO_REUSEPORT alone would let the workers share the port with this socket.
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = first_run.run("serve", "--port", str(port), "--workers", str(WORKERS))

    assert result.returncode == 1
    assert (
        result.stderr
        == f"callguard: cannot listen on 127.0.0.1 port {port}: Address already in use\n"
    )
    assert not first_run.data_dir.exists()
