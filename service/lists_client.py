"""The reference client of the phone lists (issue 15): `callguard lists sync` keeps a local copy
of GET /v1/lists/{name}, and `callguard lists check` and LocalLists answer from it offline.

The local copy is one JSON file per list, DIR/scam.json and DIR/verified.json, always
replaced whole (a temp file in DIR, fsync, os.replace), so a reader sees the old file or the
new one, never half of one:

    {
      "format": 1,
      "list": "scam",
      "synced": true,               // false: no list received yet, only the backoff is kept
      "state": "...",               // the last answer's state, sent back as ?state=
      "etag": "\\"...\\"",            // its ETag, sent back as If-None-Match
      "sha256": "...",              // base64 checksum of the numbers held (list_coding.checksum)
      "entries": 1000000,
      "minimum_wait_seconds": 1800,
      "synced_at": 1796054400.0,    // Unix time of the last answer (200 or 304)
      "next_at": 1796056200.0,      // Unix time before which no request is made
      "failures": 0,                // failed attempts in a row
      "last_error": null,           // the last failure's one-line reason
      "groups": [                   // the numbers, by detail, sorted by detail
        {"detail": "online_loan", "numbers": <list_coding Coded JSON>}
      ]
    }

Coded as on the wire (base64 in JSON), 1 M scam numbers in 5 categories take 2.2 MB.
LocalLists keeps them in one dict, number -> verdict: a check is one lookup.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import random as random_module
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from itertools import groupby
from pathlib import Path
from typing import Literal, TypeVar

import aiohttp

from . import list_coding
from .e164 import InvalidNumber, normalize, to_e164
from .list_coding import Coded, MalformedList

LIST_NAMES = ("scam", "verified")
FORMAT = 1
FIRST_BACKOFF_SECONDS = 15 * 60
MAX_BACKOFF_SECONDS = 24 * 3600
"""Safe Browsing's backoff: 15 min x 2^(n-1) x (1 + random()) after n failures, at most 24 h."""
TIMEOUT = aiohttp.ClientTimeout(total=300, sock_connect=30)
MAX_STATE_LENGTH = 100

Verdict = tuple[str, str | None]
UNKNOWN: Verdict = ("unknown", None)
Status = Literal["updated", "current", "skipped", "failed"]
T = TypeVar("T")


class SyncError(Exception):
    """One attempt to sync a list failed; str(error) is the reason, in one line."""


class LocalCopyError(Exception):
    """The local copy is missing or unreadable; str(error) says which, in one line."""


@dataclass
class Held:
    """A list's local file: what the client holds, and when it may ask again."""

    name: str
    synced: bool = False
    state: str | None = None
    etag: str | None = None
    sha256: str = base64.b64encode(list_coding.checksum([])).decode("ascii")
    entries: int = 0
    minimum_wait_seconds: float = 0.0
    synced_at: float | None = None
    next_at: float = 0.0
    failures: int = 0
    last_error: str | None = None
    groups: list[tuple[str, Coded]] = field(default_factory=list)

    def details(self) -> dict[int, str]:
        """Each number held, with its detail."""
        return {
            number: detail for detail, coded in self.groups for number in list_coding.decode(coded)
        }

    def to_json(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "list": self.name,
            "synced": self.synced,
            "state": self.state,
            "etag": self.etag,
            "sha256": self.sha256,
            "entries": self.entries,
            "minimum_wait_seconds": self.minimum_wait_seconds,
            "synced_at": self.synced_at,
            "next_at": self.next_at,
            "failures": self.failures,
            "last_error": self.last_error,
            "groups": [
                {"detail": detail, "numbers": coded.to_json()} for detail, coded in self.groups
            ],
        }

    @classmethod
    def from_json(cls, obj: object, name: str) -> Held:
        """The inverse of to_json; raises ValueError (MalformedList for the numbers)."""
        if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("list") != name:
            raise ValueError(f"not a local copy of the {name} list")
        groups = obj.get("groups")
        if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
            raise ValueError("groups must be a list of objects")
        return cls(
            name=name,
            synced=_typed(obj, "synced", bool),
            state=_typed(obj, "state", str, optional=True),
            etag=_typed(obj, "etag", str, optional=True),
            sha256=_typed(obj, "sha256", str),
            entries=_typed(obj, "entries", int),
            minimum_wait_seconds=float(_typed(obj, "minimum_wait_seconds", (int, float))),
            synced_at=_typed(obj, "synced_at", (int, float), optional=True),
            next_at=float(_typed(obj, "next_at", (int, float))),
            failures=_typed(obj, "failures", int),
            last_error=_typed(obj, "last_error", str, optional=True),
            groups=[(_typed(g, "detail", str), Coded.from_json(g.get("numbers"))) for g in groups],
        )


def _typed(
    obj: Mapping[str, object],
    name: str,
    kind: type[T] | tuple[type[T], ...],
    optional: bool = False,
) -> T:
    value = obj.get(name)
    if value is None and optional:
        return value  # type: ignore[return-value]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise MalformedList(f"{name!r} is missing or of the wrong type")
    return value


def list_path(directory: Path, name: str) -> Path:
    return directory / f"{name}.json"


def read_held(directory: Path, name: str) -> Held | None:
    """The list's local file, or None if there is none; raises LocalCopyError if unreadable."""
    path = list_path(directory, name)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise LocalCopyError(f"cannot read {path}: {err.strerror or err}") from err
    try:
        return Held.from_json(json.loads(text), name)
    except ValueError as err:
        raise LocalCopyError(f"{path} is not a local copy of the {name} list: {err}") from err


def write_held(directory: Path, held: Held) -> None:
    """Replace the list's local file atomically: the old file stays whole if this fails."""
    directory.mkdir(parents=True, exist_ok=True)
    data = json.dumps(held.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
    descriptor, temp = tempfile.mkstemp(dir=directory, prefix=f".{held.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, list_path(directory, held.name))
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    # The rename itself is durable only once the directory is.
    directory_descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_descriptor)
    finally:
        os.close(directory_descriptor)


def backoff_seconds(failures: int, random: float) -> float:
    """Seconds to wait after `failures` failures in a row, random in [0, 1)."""
    exponent = min(failures - 1, 16)  # 2^16 x 15 min is far past the cap already
    return min(FIRST_BACKOFF_SECONDS * (1 << exponent) * (1 + random), MAX_BACKOFF_SECONDS)


@dataclass(frozen=True)
class Answer:
    """A 200 answer of GET /v1/lists/{name}, its fields checked."""

    state: str
    partial: bool
    removals: Coded
    additions: list[tuple[str, Coded]]
    entries: int
    sha256: bytes
    minimum_wait_seconds: float
    etag: str | None


def parse_answer(body: bytes, name: str, etag: str | None) -> Answer:
    """The answer's fields; raises MalformedList if any is missing or wrong."""
    try:
        obj = json.loads(body)
    except ValueError as err:
        raise MalformedList("the answer is not JSON") from err
    if not isinstance(obj, dict):
        raise MalformedList("the answer is not a JSON object")
    if obj.get("list") != name:
        raise MalformedList(f"the answer is for the list {obj.get('list')!r}, not {name!r}")
    state = _typed(obj, "state", str)
    if len(state) > MAX_STATE_LENGTH:
        raise MalformedList(f"state is longer than {MAX_STATE_LENGTH} characters")
    additions = _typed(obj, "additions", list)
    groups: list[tuple[str, Coded]] = []
    for group in additions:
        if not isinstance(group, dict):
            raise MalformedList("an addition is not a JSON object")
        groups.append((_typed(group, "detail", str), Coded.from_json(group.get("numbers"))))
    try:
        sha256 = base64.b64decode(_typed(obj, "sha256", str), validate=True)
    except (binascii.Error, ValueError) as err:
        raise MalformedList("sha256 is not valid base64") from err
    if len(sha256) != len(list_coding.checksum([])):
        raise MalformedList("sha256 is not 32 bytes")
    wait = _typed(obj, "minimum_wait_seconds", (int, float))
    entries = _typed(obj, "entries", int)
    if wait < 0 or entries < 0:
        raise MalformedList("minimum_wait_seconds and entries must not be negative")
    return Answer(
        state=state,
        partial=_typed(obj, "partial", bool),
        removals=Coded.from_json(obj.get("removals")),
        additions=groups,
        entries=entries,
        sha256=sha256,
        minimum_wait_seconds=float(wait),
        etag=etag,
    )


def applied(held: Held, answer: Answer) -> Held:
    """The list held after the answer (a new Held, state and checksum taken from the answer;
    its timing fields as held). Raises MalformedList if the update does not apply, or if the
    list after it does not match the answer's checksum or entries."""
    additions = {
        number: detail for detail, coded in answer.additions for number in list_coding.decode(coded)
    }
    indices = list_coding.decode_indices(answer.removals)
    if answer.partial:
        details = held.details()
        current = sorted(details)
    else:
        if indices:
            raise MalformedList("a full list that removes numbers")
        details, current = {}, []
    added = sorted(additions)
    if len(added) != sum(coded.count for _, coded in answer.additions):
        raise MalformedList("a number is added twice")
    numbers = list_coding.apply(current, added, indices)
    if len(numbers) != answer.entries:
        raise MalformedList(f"{len(numbers)} numbers after the update, not {answer.entries}")
    if list_coding.checksum(numbers) != answer.sha256:
        raise MalformedList("the list after the update does not match its sha256")
    for index in indices:
        del details[current[index]]
    details.update(additions)
    return replace(
        held,
        synced=True,
        state=answer.state,
        etag=answer.etag,
        sha256=base64.b64encode(answer.sha256).decode("ascii"),
        entries=len(numbers),
        minimum_wait_seconds=answer.minimum_wait_seconds,
        groups=_grouped(details),
    )


def _grouped(details: Mapping[int, str]) -> list[tuple[str, Coded]]:
    """The numbers, coded by detail, sorted by detail."""
    pairs = sorted((detail, number) for number, detail in details.items())
    return [
        (detail, list_coding.encode([number for _, number in group]))
        for detail, group in groupby(pairs, key=lambda pair: pair[0])
    ]


@dataclass(frozen=True)
class Outcome:
    """What syncing one list did, and the line that says so."""

    name: str
    status: Status
    message: str


async def request(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    name: str,
    state: str | None,
    etag: str | None,
) -> Answer | None:
    """Ask for the list once: its answer, or None for a 304. Raises SyncError if the service
    cannot be reached or answers an error, MalformedList if its answer is malformed or it
    refuses the state sent (both mean: ask again with no state)."""
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    if etag is not None:
        headers["If-None-Match"] = etag
    params = {"state": state} if state is not None else {}
    try:
        async with session.get(f"{url}/v1/lists/{name}", params=params, headers=headers) as got:
            body = await got.read()
            if got.status == HTTPStatus.NOT_MODIFIED:
                if etag is None:
                    raise SyncError("the service answered 304 to a request with no ETag")
                return None
            if got.status == HTTPStatus.BAD_REQUEST and state is not None:
                raise MalformedList(f"the service refused the state held ({_detail(body)})")
            if got.status != HTTPStatus.OK:
                raise SyncError(f"the service answered {got.status} ({_detail(body)})")
            return parse_answer(body, name, got.headers.get("ETag"))
    except (aiohttp.ClientError, TimeoutError) as err:
        raise SyncError(f"the service could not be reached ({err or type(err).__name__})") from err


def _detail(body: bytes) -> str:
    """What an error answer says: a problem's detail or title, else its first characters."""
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if isinstance(problem, dict) and (problem.get("detail") or problem.get("title")):
        text = str(problem.get("detail") or problem.get("title"))
    else:
        text = body.decode(errors="replace")
    return " ".join(text.split())[:200] or "no detail"  # one line, whatever was sent


async def sync_list(
    session: aiohttp.ClientSession,
    url: str,
    key: str,
    directory: Path,
    name: str,
    force: bool = False,
    now: Callable[[], float] = time.time,
    random: Callable[[], float] = random_module.random,
) -> Outcome:
    """Bring the list's local copy up to date, once its wait is over (or with force).

    A bad answer (malformed, or failing its checksum) is asked for again once, with no state
    (a full list). A failure keeps the list held and backs off; success resets the backoff.
    """
    try:
        held = read_held(directory, name) or Held(name)
    except LocalCopyError:
        held = Held(name)  # a damaged copy is replaced by a full list
    started = now()
    if not force and started < held.next_at:
        return Outcome(name, "skipped", _skipped(held, started))
    try:
        status, new = await _fetched(session, url, key, held)
    except SyncError as err:
        failures = held.failures + 1
        new = replace(
            held,
            failures=failures,
            last_error=str(err),
            next_at=started + backoff_seconds(failures, random()),
        )
        message = f"{name}: {err}; next attempt {_when(new.next_at, started)}"
        try:
            write_held(directory, new)
        except OSError as write_err:
            message += f"; cannot write {list_path(directory, name)}: {write_err}"
        return Outcome(name, "failed", message)
    finished = now()
    new = replace(
        new,
        synced_at=finished,
        next_at=finished + new.minimum_wait_seconds,
        failures=0,
        last_error=None,
    )
    try:
        write_held(directory, new)
    except OSError as err:
        return Outcome(name, "failed", f"{name}: cannot write {list_path(directory, name)}: {err}")
    numbers = f"{new.entries:,} number{'' if new.entries == 1 else 's'}"
    return Outcome(name, status, f"{name}: {status}, {numbers}")


async def _fetched(
    session: aiohttp.ClientSession, url: str, key: str, held: Held
) -> tuple[Status, Held]:
    """The answer to the held state, applied; a bad one asked for again as a full list."""
    state = held.state if held.synced else None
    etag = held.etag if held.synced else None
    try:
        answer = await request(session, url, key, held.name, state, etag)
        if answer is None:
            return "current", held
        return "updated", applied(held, answer)
    except MalformedList:
        pass
    try:
        answer = await request(session, url, key, held.name, None, None)
        if answer is None:
            raise SyncError("the service answered 304 to a request with no ETag")
        return "updated", applied(Held(held.name), answer)
    except MalformedList as err:
        raise SyncError(f"a bad answer, twice, the second a full list: {err}") from err


def _skipped(held: Held, now: float) -> str:
    why = (
        f"backing off after {held.failures} failure(s) (last: {held.last_error})"
        if held.failures
        else "its minimum wait is not over"
    )
    return (
        f"{held.name}: skipped, {why}; next sync {_when(held.next_at, now)} (--force to sync now)"
    )


def _when(at: float, now: float) -> str:
    moment = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"at {moment} (in {max(0.0, at - now) / 60:.0f} min)"


async def sync(
    url: str,
    key: str,
    directory: Path,
    names: Sequence[str] = LIST_NAMES,
    force: bool = False,
    now: Callable[[], float] = time.time,
    random: Callable[[], float] = random_module.random,
) -> list[Outcome]:
    """Sync each list in turn; one outcome per list."""
    # trust_env=False: a proxy from the environment must not see the key.
    async with aiohttp.ClientSession(trust_env=False, timeout=TIMEOUT) as session:
        return [
            await sync_list(session, url, key, directory, name, force, now, random)
            for name in dict.fromkeys(names)
        ]


def run_sync(url: str, key: str, directory: Path, names: Sequence[str], force: bool) -> int:
    """`callguard lists sync`: a line per list; 0 if each is current or skipped, else 1."""
    outcomes = asyncio.run(sync(url, key, directory, names, force))
    for outcome in outcomes:
        failed = outcome.status == "failed"
        print(outcome.message, file=sys.stderr if failed else sys.stdout)
    return 1 if any(outcome.status == "failed" for outcome in outcomes) else 0


class LocalLists:
    """The local copies of the lists, for checks with no network."""

    def __init__(self, verdicts: dict[int, Verdict], names: Iterable[str]) -> None:
        self._verdicts = verdicts
        self.names = tuple(names)
        """The lists held; a list never synced is not among them."""

    @classmethod
    def load(cls, directory: Path | str, names: Sequence[str] = LIST_NAMES) -> LocalLists:
        """Load the lists synced into directory; LocalCopyError if none is, or one is unreadable."""
        directory = Path(directory)
        verdicts: dict[int, Verdict] = {}
        loaded = []
        # Verified last, so it wins, as an allowlisted number's verdict does on the service.
        for name in sorted(names, key=lambda name: name == "verified"):
            held = read_held(directory, name)
            if held is None or not held.synced:
                continue
            try:
                groups = [(detail, list_coding.decode(coded)) for detail, coded in held.groups]
            except MalformedList as err:
                raise LocalCopyError(f"{list_path(directory, name)} is damaged: {err}") from err
            for detail, numbers in groups:
                verdicts.update(dict.fromkeys(numbers, (name, detail)))
            loaded.append(name)
        if not loaded:
            raise LocalCopyError(
                f"no local copy of the lists in {directory}: run `callguard lists sync` first"
            )
        return cls(verdicts, loaded)

    def check(self, number: int) -> Verdict:
        """("scam", category), ("verified", owner) or ("unknown", None) for an E.164 int."""
        return self._verdicts.get(number, UNKNOWN)

    def __len__(self) -> int:
        return len(self._verdicts)


def verdict_text(verdict: Verdict) -> str:
    """`scam (online_loan)`, `verified (Công an tỉnh Đồng Nai)` or `unknown`."""
    level, detail = verdict
    return level if detail is None else f"{level} ({detail})"


def run_check(text: str, directory: Path) -> int:
    """`callguard lists check`: print the number and its verdict; 2 for an invalid number,
    1 with no local copy."""
    try:
        number = normalize(text)
    except InvalidNumber as err:
        print(f"callguard lists check: {text!r}: {err}", file=sys.stderr)
        return 2
    try:
        lists = LocalLists.load(directory)
    except LocalCopyError as err:
        print(f"callguard lists check: {err}", file=sys.stderr)
        return 1
    print(f"{to_e164(number)}: {verdict_text(lists.check(number))}")
    return 0
