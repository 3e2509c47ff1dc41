"""Child processes that end with the process they work for, however it ends (kill -9 too)."""

from __future__ import annotations

import os
import select
import threading


def exit_with(pid: int) -> None:
    """End this process as soon as process `pid` ends; a pool's worker initializer.

    The import parsers are forked by multiprocessing's fork server, not by the service, so
    PR_SET_PDEATHSIG would fire with the fork server, which each worker keeps alive itself
    (it holds the server's "alive" pipe). A pidfd of the service itself becomes readable
    when the service ends; a daemon thread waits on it.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:  # it ended before this process got here
        os._exit(1)
    threading.Thread(
        target=_exit_when_readable, args=(pidfd,), name=f"exit-with-{pid}", daemon=True
    ).start()


def _exit_when_readable(fd: int) -> None:
    select.select([fd], [], [])
    # At once: whatever this process was doing is for a process that is gone.
    os._exit(1)
