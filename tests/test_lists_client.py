"""callguard.lists_client and `callguard lists` against a fake lists service that speaks the
contract of GET /v1/lists/{name}; no database, no sleeping (the clock is a parameter)."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from callguard import list_coding
from callguard.cli import main
from callguard.lists_client import (
    FIRST_BACKOFF_SECONDS,
    MAX_BACKOFF_SECONDS,
    LocalLists,
    backoff_seconds,
    list_path,
    read_held,
    sync,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ServerFactory = Callable[..., Awaitable[TestServer]]

KEY = "cg_test_client_key"
MIN_WAIT = 1800
START = 1_800_000_000.0
POLICE = "Công an tỉnh Đồng Nai"

LOAN, INVEST, OTHER = 84912345678, 84987654321, 84323456789
HOTLINE, NEW_SCAM, STRANGER = 842513822391, 84355555555, 84911111111


def coded_groups(numbers: dict[int, str]) -> list[dict[str, object]]:
    """The contract's additions: one coded list per detail, sorted by detail."""
    pairs = sorted((detail, number) for number, detail in numbers.items())
    return [
        {"detail": detail, "numbers": list_coding.encode([n for _, n in group]).to_json()}
        for detail, group in groupby(pairs, key=lambda pair: pair[0])
    ]


@dataclass
class FakeLists:
    """The lists service as the contract describes it. Each list has versions; state "vN"
    names version N; states before `oldest` are too old and get a full list. Faults to
    inject: `fail_next` statuses to answer first, `corrupt_next` answers with a wrong
    sha256, `garbage_next` answers that are not JSON."""

    versions: dict[str, list[dict[int, str]]] = field(
        default_factory=lambda: {"scam": [{}], "verified": [{}]}
    )
    oldest: int = 0
    fail_next: list[int] = field(default_factory=list)
    corrupt_next: int = 0
    garbage_next: int = 0
    seen: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    """(list, state, If-None-Match) of each request."""
    answered: list[str] = field(default_factory=list)
    """"full", "partial", "304" or the error status of each request."""

    def publish(self, name: str, numbers: dict[int, str]) -> None:
        self.versions[name].append(dict(numbers))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/lists/{name}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        state = request.query.get("state")
        self.seen.append((name, state, request.headers.get("If-None-Match")))
        if request.headers.get("Authorization") != f"Bearer {KEY}" or name not in self.versions:
            self.answered.append("401/404")
            raise web.HTTPNotFound()
        if self.fail_next:
            status = self.fail_next.pop(0)
            self.answered.append(str(status))
            return web.json_response(
                {"title": "busy", "status": status, "detail": "try later"},
                status=status,
                content_type="application/problem+json",
            )
        versions = self.versions[name]
        current = len(versions) - 1
        etag = f'"{name}-v{current}"'
        if request.headers.get("If-None-Match") == etag:
            self.answered.append("304")
            return web.Response(status=304, headers={"ETag": etag})
        held: dict[int, str] = {}
        partial = False
        if state is not None:
            if not state.startswith("v") or not state[1:].isdigit():
                self.answered.append("400")
                raise web.HTTPBadRequest()
            version = int(state[1:])
            if self.oldest <= version <= current:
                held, partial = versions[version], True
        new = versions[current]
        old_sorted = sorted(held)
        removals = [i for i, number in enumerate(old_sorted) if new.get(number) != held[number]]
        additions = {number: detail for number, detail in new.items() if held.get(number) != detail}
        checksum = list_coding.checksum(sorted(new))
        if self.corrupt_next:
            self.corrupt_next -= 1
            checksum = list_coding.checksum([*new, 99])
        body: object = {
            "list": name,
            "state": f"v{current}",
            "partial": partial,
            "removals": list_coding.encode_indices(removals).to_json(),
            "additions": coded_groups(additions),
            "entries": len(new),
            "sha256": base64.b64encode(checksum).decode("ascii"),
            "minimum_wait_seconds": MIN_WAIT,
        }
        headers = {"ETag": etag, "Cache-Control": f"private, max-age={MIN_WAIT}"}
        if self.garbage_next:
            self.garbage_next -= 1
            self.answered.append("garbage")
            return web.Response(text="<html>proxy error</html>", headers=headers)
        self.answered.append("partial" if partial else "full")
        return web.json_response(body, headers=headers)


class Clock:
    """The wall clock the client reads, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeLists:
    lists = FakeLists()
    lists.publish("scam", {LOAN: "online_loan", INVEST: "investment", OTHER: "other"})
    lists.publish("verified", {HOTLINE: POLICE})
    return lists


@pytest.fixture
async def url(aiohttp_server: ServerFactory, fake: FakeLists) -> str:
    server = await aiohttp_server(fake.app(), host="127.0.0.1")
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def synced(
    url: str,
    directory: Path,
    clock: Clock,
    random: float = 0.5,
    names: Sequence[str] = ("scam", "verified"),
    force: bool = False,
) -> dict[str, str]:
    """Each list's outcome status after one sync."""
    outcomes = await sync(url, KEY, directory, names, force, now=clock, random=lambda: random)
    return {outcome.name: outcome.status for outcome in outcomes}


def holding(directory: Path) -> dict[int, tuple[str, str | None]]:
    lists = LocalLists.load(directory)
    numbers = (LOAN, INVEST, OTHER, HOTLINE, NEW_SCAM, STRANGER)
    return {
        number: lists.check(number) for number in numbers if lists.check(number)[0] != "unknown"
    }


async def test_a_first_sync_fetches_both_full_lists_and_checks_answer_from_them(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path
) -> None:
    assert await synced(url, tmp_path, clock) == {"scam": "updated", "verified": "updated"}

    assert fake.seen == [("scam", None, None), ("verified", None, None)]
    lists = LocalLists.load(tmp_path)
    assert lists.check(LOAN) == ("scam", "online_loan")
    assert lists.check(INVEST) == ("scam", "investment")
    assert lists.check(HOTLINE) == ("verified", POLICE)
    assert lists.check(STRANGER) == ("unknown", None)
    assert len(lists) == 4


async def test_a_partial_update_removes_adds_and_changes_a_detail(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path
) -> None:
    await synced(url, tmp_path, clock)
    fake.publish("scam", {INVEST: "online_loan", OTHER: "other", NEW_SCAM: "investment"})
    clock.now += MIN_WAIT

    assert await synced(url, tmp_path, clock) == {"scam": "updated", "verified": "current"}

    assert fake.seen[2][:2] == ("scam", "v1")
    assert fake.answered[2:] == ["partial", "304"]
    assert holding(tmp_path) == {
        INVEST: ("scam", "online_loan"),
        OTHER: ("scam", "other"),
        NEW_SCAM: ("scam", "investment"),
        HOTLINE: ("verified", POLICE),
    }


async def test_an_unchanged_list_answers_304_to_the_etag_held(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path
) -> None:
    await synced(url, tmp_path, clock)
    clock.now += MIN_WAIT + 1

    assert await synced(url, tmp_path, clock, names=["scam"]) == {"scam": "current"}

    assert fake.seen[-1] == ("scam", "v1", '"scam-v1"')
    assert fake.answered[-1] == "304"
    held = read_held(tmp_path, "scam")
    assert held is not None
    assert held.next_at == clock.now + MIN_WAIT
    assert LocalLists.load(tmp_path).check(LOAN) == ("scam", "online_loan")


async def test_the_minimum_wait_is_honoured_unless_forced(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path
) -> None:
    await synced(url, tmp_path, clock)
    clock.now += MIN_WAIT - 1

    assert await synced(url, tmp_path, clock) == {"scam": "skipped", "verified": "skipped"}
    assert len(fake.seen) == 2

    assert await synced(url, tmp_path, clock, force=True) == {
        "scam": "current",
        "verified": "current",
    }
    assert len(fake.seen) == 4


async def test_a_wrong_checksum_is_asked_again_as_a_full_list(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path
) -> None:
    await synced(url, tmp_path, clock)
    fake.publish("scam", {LOAN: "online_loan", NEW_SCAM: "other"})
    fake.corrupt_next = 1
    clock.now += MIN_WAIT

    assert await synced(url, tmp_path, clock, names=["scam"]) == {"scam": "updated"}

    assert [(state, etag) for _, state, etag in fake.seen[2:]] == [
        ("v1", '"scam-v1"'),
        (None, None),
    ]
    assert fake.answered[2:] == ["partial", "full"]
    assert holding(tmp_path) == {
        LOAN: ("scam", "online_loan"),
        NEW_SCAM: ("scam", "other"),
        HOTLINE: ("verified", POLICE),
    }


@pytest.mark.parametrize("fault", ["corrupt_next", "garbage_next"])
async def test_a_bad_answer_twice_fails_and_keeps_the_old_list(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path, fault: str
) -> None:
    await synced(url, tmp_path, clock)
    fake.publish("scam", {NEW_SCAM: "other"})
    setattr(fake, fault, 2)
    clock.now += MIN_WAIT

    assert await synced(url, tmp_path, clock, names=["scam"]) == {"scam": "failed"}

    assert [state for _, state, _ in fake.seen[2:]] == ["v1", None]
    assert LocalLists.load(tmp_path).check(LOAN) == ("scam", "online_loan")
    held = read_held(tmp_path, "scam")
    assert held is not None
    assert held.failures == 1
    assert held.last_error is not None
    assert "a bad answer, twice" in held.last_error


async def test_a_state_too_old_gets_a_full_list(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path
) -> None:
    await synced(url, tmp_path, clock)
    fake.publish("scam", {LOAN: "other"})
    fake.publish("scam", {NEW_SCAM: "investment"})
    fake.oldest = 2
    clock.now += MIN_WAIT

    assert await synced(url, tmp_path, clock, names=["scam"]) == {"scam": "updated"}

    assert fake.answered[-1] == "full"
    assert holding(tmp_path) == {NEW_SCAM: ("scam", "investment"), HOTLINE: ("verified", POLICE)}


@pytest.mark.parametrize("status", [503, 429, 500])
async def test_an_error_backs_off_growing_to_a_day_and_success_resets_it(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path, status: int
) -> None:
    await synced(url, tmp_path, clock)
    low, high = FIRST_BACKOFF_SECONDS, 2 * FIRST_BACKOFF_SECONDS
    waits = []
    for failures in range(1, 10):
        fake.publish("scam", {OTHER: "other"})
        fake.fail_next = [status]
        clock.now += 3 * MAX_BACKOFF_SECONDS  # past any wait
        random = failures / 10

        outcome = await synced(url, tmp_path, clock, random=random, names=["scam"])

        assert outcome == {"scam": "failed"}
        held = read_held(tmp_path, "scam")
        assert held is not None
        assert held.failures == failures
        wait = held.next_at - clock.now
        assert min(low, MAX_BACKOFF_SECONDS) <= wait <= min(high, MAX_BACKOFF_SECONDS)
        assert wait == pytest.approx(min(low * (1 + random), MAX_BACKOFF_SECONDS))
        waits.append(wait)
        low, high = 2 * low, 2 * high
        # The old list is held all the while.
        assert LocalLists.load(tmp_path).check(LOAN) == ("scam", "online_loan")
    assert waits == sorted(waits)
    assert waits[-1] == MAX_BACKOFF_SECONDS

    clock.now += MAX_BACKOFF_SECONDS
    assert await synced(url, tmp_path, clock, names=["scam"]) == {"scam": "updated"}
    held = read_held(tmp_path, "scam")
    assert held is not None
    assert (held.failures, held.last_error, held.next_at) == (0, None, clock.now + MIN_WAIT)
    assert holding(tmp_path) == {OTHER: ("scam", "other"), HOTLINE: ("verified", POLICE)}


async def test_a_sync_run_every_minute_asks_only_when_the_backoff_is_over(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path
) -> None:
    fake.fail_next = [503]
    assert await synced(url, tmp_path, clock, random=0.0, names=["scam"]) == {"scam": "failed"}
    # No list received yet, but the failure is kept.
    held = read_held(tmp_path, "scam")
    assert held is not None
    assert (held.synced, held.failures) == (False, 1)

    for _ in range(FIRST_BACKOFF_SECONDS // 60 - 1):
        clock.now += 60
        assert await synced(url, tmp_path, clock, names=["scam"]) == {"scam": "skipped"}
    assert len(fake.seen) == 1
    clock.now += 60
    assert await synced(url, tmp_path, clock, names=["scam"]) == {"scam": "updated"}
    assert len(fake.seen) == 2


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_service_out_of_reach_is_a_failure_backed_off(clock: Clock, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}"

    outcomes = await sync(url, KEY, tmp_path, now=clock, random=lambda: 0.0)

    assert [outcome.status for outcome in outcomes] == ["failed", "failed"]
    assert "could not be reached" in outcomes[0].message
    held = read_held(tmp_path, "scam")
    assert held is not None
    assert held.next_at == clock.now + FIRST_BACKOFF_SECONDS


async def test_a_write_that_fails_leaves_the_old_file_whole(
    url: str, fake: FakeLists, clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await synced(url, tmp_path, clock)
    before = list_path(tmp_path, "scam").read_bytes()
    fake.publish("scam", {NEW_SCAM: "other"})
    clock.now += MIN_WAIT

    def fsync(descriptor: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fsync)
    assert await synced(url, tmp_path, clock, names=["scam"]) == {"scam": "failed"}
    monkeypatch.undo()

    assert list_path(tmp_path, "scam").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scam.json", "verified.json"]
    assert LocalLists.load(tmp_path).check(LOAN) == ("scam", "online_loan")


def test_backoff_doubles_from_15_minutes_and_stops_at_a_day() -> None:
    assert backoff_seconds(1, 0.0) == 15 * 60
    assert backoff_seconds(1, 0.999) < 30 * 60
    assert backoff_seconds(2, 0.0) == 30 * 60
    assert backoff_seconds(7, 0.0) == 15 * 60 * 64
    assert backoff_seconds(8, 0.0) == 24 * 3600
    assert backoff_seconds(1000, 0.9) == 24 * 3600


def test_loading_with_no_local_copy_says_so(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no local copy"):
        LocalLists.load(tmp_path)


# The command line.


async def test_callguard_lists_sync_then_check(
    url: str, fake: FakeLists, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["lists", "sync", "--url", url, "--key", KEY, "--dir", str(tmp_path / "lists")]

    assert await asyncio.to_thread(main, argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "scam: updated, 3 numbers",
        "verified: updated, 1 number",
    ]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in out] == ["scam: skipped", "verified: skipped"]

    for typed, said in [
        ("0912 345 678", "+84912345678: scam (online_loan)"),
        ("+84 251 3822 391", f"+842513822391: verified ({POLICE})"),
        ("091.111.1111", "+84911111111: unknown"),
    ]:
        assert main(["lists", "check", typed, "--dir", str(tmp_path / "lists")]) == 0
        assert capsys.readouterr().out == said + "\n"


async def test_callguard_lists_sync_fails_with_a_line_per_list(
    url: str, fake: FakeLists, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.fail_next = [503, 503]
    argv = ["lists", "sync", "--url", url, "--key", KEY, "--dir", str(tmp_path), "--force"]

    assert await asyncio.to_thread(main, [*argv, "--list", "scam"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1
    assert err[0].startswith("scam: the service answered 503 (try later); next attempt at ")

    assert await asyncio.to_thread(main, argv) == 1
    assert [line.split(":")[0] for line in capsys.readouterr().err.splitlines()] == ["scam"]
    assert read_held(tmp_path, "verified") is not None


def test_callguard_lists_sync_needs_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CALLGUARD_KEY", raising=False)

    status = main(["lists", "sync", "--url", "http://127.0.0.1:9", "--dir", str(tmp_path)])

    assert status == 2
    assert "set CALLGUARD_KEY" in capsys.readouterr().err


def test_callguard_lists_check_refuses_an_invalid_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lists", "check", "0123", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("callguard lists check: '0123': ")
    assert err.count("\n") == 1


def test_callguard_lists_check_says_when_there_is_no_local_copy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lists", "check", "0912345678", "--dir", str(tmp_path)]) == 1
    assert "run `callguard lists sync` first" in capsys.readouterr().err


# Any sequence of lists, synced through partial updates, leaves the client with the last.

NUMBERS = st.integers(84_900_000_000, 84_900_000_040)
DETAILS = st.sampled_from(["online_loan", "investment", POLICE])
LISTS = st.dictionaries(NUMBERS, DETAILS, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(st.tuples(LISTS, st.booleans()), min_size=1, max_size=8),
    oldest_kept=st.integers(0, 8),
)
def test_synced_partial_updates_hold_exactly_the_services_list(
    steps: list[tuple[dict[int, str], bool]], oldest_kept: int
) -> None:
    """Each step publishes a list; the client syncs after it or not (so an update may span
    several versions); the service keeps the changes of only the last few versions."""
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(sync_through(steps, oldest_kept, tmp))


async def sync_through(
    steps: list[tuple[dict[int, str], bool]], oldest_kept: int, tmp: str
) -> None:
    fake = FakeLists()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    try:
        url = f"http://127.0.0.1:{server.port}"
        clock = Clock()
        for published, sync_now in [*steps, (steps[-1][0], True)]:
            if published != fake.versions["scam"][-1]:
                fake.publish("scam", published)
            fake.oldest = max(0, len(fake.versions["scam"]) - 1 - oldest_kept)
            if not sync_now:
                continue
            clock.now += MIN_WAIT
            outcomes = await sync(url, KEY, Path(tmp), ["scam"], now=clock)
            assert [outcome.status for outcome in outcomes] != ["failed"], outcomes
            lists = LocalLists.load(Path(tmp), ["scam"])
            assert len(lists) == len(published)
            for number, detail in published.items():
                assert lists.check(number) == ("scam", detail)
    finally:
        await server.close()
