"""Waiting in tests and benchmarks: one poll bounded by a deadline, never a bare loop; the
deadline guards correctness, it is not a speed target."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

POLL_SECONDS = 0.02
What = str | Callable[[], str]
"""What is awaited, for the failure; a function when it is read at the deadline (a log)."""


class _Deadline:
    """`within` seconds from now; check() fails once they have passed."""

    def __init__(self, within: float, what: What) -> None:
        self.at = time.monotonic() + within
        self.within = within
        self.what = what

    def check(self) -> None:
        if time.monotonic() >= self.at:
            what = self.what() if callable(self.what) else self.what
            raise AssertionError(f"not {what} within {self.within:g} s")


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    within: float = 10.0,
    what: What = "true",
    every: float = POLL_SECONDS,
) -> T:
    """The first true outcome of predicate() (awaited if it is a coroutine), tried every
    `every` seconds; fails after `within` seconds."""
    deadline = _Deadline(within, what)
    while True:
        outcome = predicate()
        if done := (await outcome if inspect.isawaitable(outcome) else outcome):
            return done
        deadline.check()
        await asyncio.sleep(every)


def eventually_sync(predicate: Callable[[], T], within: float = 10.0, what: What = "true") -> T:
    """eventually() outside an event loop: a subprocess's state, a server's answers."""
    deadline = _Deadline(within, what)
    while not (outcome := predicate()):
        deadline.check()
        time.sleep(POLL_SECONDS)
    return outcome
