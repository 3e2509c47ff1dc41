"""`callguard serve --workers N`: N processes serving one port (SO_REUSEPORT), each with its
own filter and caches kept current by the change feed, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from aiohttp import web

from . import logs
from .app import create_app, ready_message, run
from .config import Config
from .embedded import check_database, database_url

MAX_WORKERS = 64
CLEANUP_SECONDS = 10.0
"""How long a stopping worker may take beyond aiohttp's bound on requests in flight (twice
shutdown_timeout: they are waited for, then cancelled and waited for again) to close up."""

log = logging.getLogger(__name__)


def serve(config: Config, count: int, verbose: bool) -> int:
    """Serve from `count` processes on one port until SIGTERM or SIGINT (then return 0).

    A worker that stops by itself stops them all (return 1) rather than being restarted:
    the service's supervisor (systemd, Docker, Kubernetes) sees the failure and restarts
    the whole, instead of a pool that serves on at part strength.
    """
    wakeup, signalled = socket.socketpair()
    with wakeup, signalled:
        # The handlers stay until exit: a later signal must not cut short the embedded
        # Postgres's shutdown. The wakeup fd lets one wait() see a signal or a worker's end.
        signalled.setblocking(False)
        signal.set_wakeup_fd(signalled.fileno())
        signal.signal(signal.SIGTERM, _note_signal)
        signal.signal(signal.SIGINT, _note_signal)
        with database_url(config.database_url, config.data_dir) as url:
            asyncio.run(check_database(url, need_tables=False))
            context = multiprocessing.get_context("spawn")  # a clean process: no inherited threads
            worker_config = replace(config, database_url=url)
            listening, listening_w = context.Pipe(duplex=False)
            workers = [
                context.Process(
                    target=_worker, args=(worker_config, verbose, listening_w), name=f"worker-{n}"
                )
                for n in range(1, count + 1)
            ]
            try:
                with listening, listening_w:
                    for worker in workers:
                        worker.start()
                    listening_w.close()  # the workers have theirs
                    log.info(
                        "starting %d workers (pids %s)",
                        count,
                        ", ".join(str(worker.pid) for worker in workers),
                    )
                    served_on = f"http://{_host_in_url(config.host)}:{config.port}"
                    return _wait_for_stop(
                        workers,
                        wakeup,
                        listening,
                        lambda: log.info(ready_message(served_on, config)),
                    )
            finally:
                _stop_workers(workers, wakeup, 2 * config.shutdown_timeout + CLEANUP_SECONDS)


def check_port_free(host: str, port: int) -> None:
    """Raise OSError, naming host and port, if something listens on host:port already.

    Checked before the database is started, so a busy port fails at once. Workers bind
    with SO_REUSEPORT, which would let them share the port with any listener of the same
    user (an earlier callguard still running) instead of failing as one process does.
    """
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as err:
                raise OSError(f"cannot listen on {host} port {port}: {err.strerror}") from err


def _note_signal(signum: int, frame: FrameType | None) -> None:
    """Nothing to do: the signal's number reaches the wakeup fd."""


def _wait_for_stop(
    workers: Sequence[BaseProcess],
    wakeup: socket.socket,
    listening: Connection,
    all_listening: Callable[[], None],
) -> int:
    """Wait for a stop signal (return 0) or a worker's end (return 1); call all_listening
    once every worker has said (on `listening`) that it listens."""
    waiting_for = len(workers)
    while True:
        watched: list[Connection | socket.socket | int] = [wakeup]
        watched += [worker.sentinel for worker in workers]
        ready = wait([*watched, listening] if waiting_for else watched)
        if wakeup in ready:
            signum = wakeup.recv(1)[0]
            log.info("%s: stopping the workers", signal.Signals(signum).name)
            return 0
        if any(worker.sentinel in ready for worker in workers):
            break
        try:
            listening.recv()
        except EOFError:  # a worker ended before it listened: its sentinel says so next
            waiting_for = 0
            continue
        waiting_for -= 1
        if not waiting_for:
            all_listening()
    for worker in workers:
        if worker.sentinel in ready:
            worker.join()  # the sentinel can be ready a moment before the exit status
            log.error("worker %d exited with status %s", worker.pid, worker.exitcode)
    log.error("stopping the other workers")
    return 1


def _host_in_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _stop_workers(workers: Sequence[BaseProcess], wakeup: socket.socket, seconds: float) -> None:
    """SIGTERM each running worker and wait up to `seconds` for them to finish; kill those
    left then, or at once on another signal to the parent."""
    running = [worker for worker in workers if worker.is_alive()]
    for worker in running:
        worker.terminate()
    deadline = time.monotonic() + seconds
    while running:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or wakeup in wait([wakeup, *(w.sentinel for w in running)], remaining):
            break
        running = [worker for worker in running if worker.is_alive()]
    for worker in running:
        log.warning("worker %d has not stopped; killing it", worker.pid)
        worker.kill()
    for worker in workers:
        if worker.pid is not None:
            worker.join()


def _worker(config: Config, verbose: bool, listening: Connection) -> None:
    """One process of `serve --workers`: the app on the shared port until SIGTERM."""
    # Out of the terminal's process group, so a Ctrl-C reaches the parent alone, which
    # stops each worker once: a second signal would cut short a worker's cleanup.
    os.setpgid(0, 0)
    logs.configure(verbose=verbose)
    app = create_app(config)
    app.cleanup_ctx.append(_exit_with_parent)

    def served(served_on: str) -> None:
        listening.send(os.getpid())
        listening.close()

    run(app, config, reuse_port=True, on_ready=served)


async def _exit_with_parent(app: web.Application) -> AsyncIterator[None]:
    """Stop this worker if the parent dies without stopping it (SIGKILL, a crash)."""
    parent = multiprocessing.parent_process()
    assert parent is not None
    loop = asyncio.get_running_loop()

    def parent_gone() -> None:
        loop.remove_reader(parent.sentinel)
        log.error("the parent process is gone: stopping")
        raise web.GracefulExit

    loop.add_reader(parent.sentinel, parent_gone)
    yield
    loop.remove_reader(parent.sentinel)
