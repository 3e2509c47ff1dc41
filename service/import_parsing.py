"""Reading operators' and police units' lists, row by row: CSV or NDJSON, maybe gzipped.

Parsing is about 5 µs a row of pure Python, too slow for the event loop (a million-row list
would stall every lookup on the replica for seconds) and the part that bounds an import's
speed. So the work is split:

- on the event loop, `parse_stream` decompresses the upload, reads the CSV header and cuts
  the stream into blocks of whole lines (`_Blocks`), which only searches for line ends;
- parser processes (`Parsers`) parse several blocks at once (`parse_block`) and return each
  as a `Parsed`: the valid rows already encoded for COPY,
  and the refused rows with their reasons.

A quoted CSV field may hold line breaks, so a record can run past a block's end. A block is
parsed as if none did; when its predecessor turns out to have ended inside a record, it is
parsed again with that record carried in. Nothing holds more than a few blocks, so memory
does not grow with the file. A stream that cannot be read at all (no header, no number
column, cut or corrupt gzip) raises ImportFormatError: the caller imports nothing.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import multiprocessing
import os
import zlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from . import store
from .clock import VIETNAM
from .e164 import InvalidNumber, parse
from .lifetime import exit_with
from .text import TextError, category, loads, timestamp

CSV = "text/csv"
NDJSON = "application/x-ndjson"
FORMATS = (CSV, NDJSON)
MAX_LINE_BYTES = 4096
MAX_NOTE_LENGTH = 1000
MAX_ERROR_VALUE = 200
"""Error entries quote at most this much of the offending value."""
FIELDS = ("number", "category", "reported_at", "note")
DEFAULT_CATEGORY = "other"
"""Timestamps without an offset in Vietnamese lists are local time."""
_DECOMPRESS_STEP = 1 << 20
_KEPT_LINE_BYTES = MAX_LINE_BYTES + 1
"""A line crossing chunks is kept to this many bytes: enough to be refused as too long."""
_TOO_LONG = f"the line is longer than {MAX_LINE_BYTES} bytes"
_GZIP_MAGIC = b"\x1f\x8b"


class ImportFormatError(Exception):
    """The stream as a whole cannot be read; str(error) says why, for the client."""


class UploadStalled(Exception):
    """The client stopped sending mid-upload, or sends too slowly; str(error) says which, for
    the client."""


class ImportTooLarge(Exception):
    """The list is larger than one import may be; str(error) names the limit, for the client."""


class ServiceStopping(Exception):
    """The service began to stop while the upload was still arriving: send it again."""


class ParserLost(Exception):
    """A parser process died mid-import (killed, out of memory): retry the import."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A row refused, by line number (the header is line 1), with the value and why. The
    value is kept as Postgres can store it (storable)."""

    line: int
    value: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", storable(self.value))


def storable(text: str) -> str:
    """Text as Postgres can store it: a NUL, or a lone surrogate from an NDJSON escape, is
    kept as its escape sequence; anything else is returned as it is."""
    if text.isascii() and "\x00" not in text:  # the common case, at once
        return text
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class Layout:
    """How to read a stream's records: NDJSON, or CSV with the header's delimiter and the
    position of each of FIELDS in a record (a missing column reads from padding, "")."""

    csv: bool
    delimiter: str = ","
    indexes: tuple[int, ...] = ()
    width: int = 0

    @classmethod
    def from_header(cls, raw: bytes) -> Layout:
        """The layout a CSV header row names."""
        header = _first_line(raw, "the header row").removeprefix("\ufeff")
        if header.count('"') % 2:
            raise ImportFormatError("the header row has a quote that is not closed")
        delimiter = max(",;\t", key=header.count)  # Excel in Vietnamese locales writes ';'
        names = [name.strip().lower() for name in next(csv.reader([header], delimiter=delimiter))]
        if "number" not in names:
            raise ImportFormatError(f"no 'number' column in the header ({', '.join(names)})")
        indexes = tuple(names.index(name) if name in names else len(names) for name in FIELDS)
        return cls(csv=True, delimiter=delimiter, indexes=indexes, width=len(names) + 1)


def _first_line(raw: bytes, name: str) -> str:
    """The first line of a list as text, or ImportFormatError if it shows the body is not a
    text list at all: gzip sent without its Content-Encoding, a binary or UTF-16 file (NUL
    bytes), not UTF-8, or too long to be a header or a record."""
    if raw.startswith(_GZIP_MAGIC):
        raise ImportFormatError("the body is gzip: send it with Content-Encoding: gzip")
    if b"\x00" in raw:
        raise ImportFormatError(f"{name} has NUL bytes: send a UTF-8 text file")
    if len(raw) > MAX_LINE_BYTES:
        raise ImportFormatError(f"{name} is too long (over {MAX_LINE_BYTES} bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ImportFormatError(f"{name} is not UTF-8") from err


def _check_ndjson_start(raw: bytes) -> None:
    """Raise ImportFormatError unless the first line that is not blank is a JSON object: a
    body that does not start with one is not NDJSON, and would only have every row refused."""
    text = _first_line(raw, "the first line")
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise ImportFormatError("the first line is not JSON: this is not NDJSON") from err
    if not isinstance(record, dict):
        raise ImportFormatError("the first line is not a JSON object: this is not NDJSON")


@dataclass(frozen=True, slots=True)
class OpenRecord:
    """A quoted CSV record still open at a block's end: its first line number and text."""

    line: int
    texts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of the stream for a parser process, each ending in a line feed."""

    layout: Layout
    first_line: int
    data: bytes
    now: datetime
    """The service's time when the import began: the parser has no clock of the service's, and
    a reported_at past it (and the allowed skew) is refused."""
    open_record: OpenRecord | None = None
    """The record the block before ended in, if it did."""


@dataclass(slots=True)
class Parsed:
    """A block's outcome: valid rows encoded for import_staging (store.imports.staging_copy_data),
    the refused rows, legacy numbers mapped, and any record left open."""

    rows: int
    copy_data: bytes
    errors: list[RowError]
    mapped_legacy: int
    open_record: OpenRecord | None


@dataclass(slots=True)
class Batch:
    """Rows read in a parser process: (line, number, category, reported_at, note) tuples, the
    errors, and how many numbers were legacy ones mapped; `now` as in Block."""

    now: datetime
    rows: list[tuple[int, int, str, datetime | None, str | None]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    mapped_legacy: int = 0


# --- the event loop's side --------------------------------------------------------


async def gunzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Decompress a gzip stream (one or more members); a cut or corrupt one raises."""
    decompressor = zlib.decompressobj(wbits=31)
    received = False
    async for chunk in chunks:
        received = received or bool(chunk)
        data = chunk
        while data:
            try:
                # Bounded steps, so a small chunk cannot inflate into gigabytes at once.
                out = decompressor.decompress(data, _DECOMPRESS_STEP)
            except zlib.error as err:
                raise ImportFormatError(f"the gzip stream is corrupt: {err}") from err
            if out:
                yield out
            if decompressor.eof:
                data = decompressor.unused_data  # another gzip member may follow
                if data:
                    decompressor = zlib.decompressobj(wbits=31)
            else:
                data = decompressor.unconsumed_tail
    if received and not decompressor.eof:
        raise ImportFormatError("the gzip stream is cut short")


async def digested(chunks: AsyncIterator[bytes], digest: hashlib._Hash) -> AsyncIterator[bytes]:
    """The chunks, each added to `digest` as it passes."""
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk


async def size_bounded(chunks: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    """The chunks, raising ImportTooLarge once they add up to more than `max_bytes`."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise ImportTooLarge(f"the list holds more than {max_bytes:,} bytes")
        yield chunk


async def drain(chunks: AsyncIterator[bytes]) -> None:
    """Read a stream to its end without parsing it (a replayed import's list, for its digest)."""
    async for _chunk in chunks:
        pass


async def pace_bounded(
    chunks: AsyncIterator[bytes], idle_seconds: float, min_rate: float, grace_seconds: float
) -> AsyncIterator[bytes]:
    """The chunks, raising UploadStalled if none comes for `idle_seconds`, or if, once
    `grace_seconds` were spent waiting for them, they average less than `min_rate` bytes a
    second of that waiting. Only the time spent waiting for the client counts: while the
    service is busy with what came, the client is held back by TCP, not slow.

    So a client that sends a byte every few seconds, dodging the idle timeout, holds its
    import slot for little longer than the grace period."""
    received = 0
    waited = 0.0
    clock = asyncio.get_running_loop().time
    while True:
        # The latest the next chunk may come: the idle timeout, or the moment the average
        # over the waiting so far would fall below the minimum.
        allowed = max(grace_seconds, received / min_rate) - waited
        timeout = min(idle_seconds, max(0.0, allowed))
        started = clock()
        try:
            async with asyncio.timeout(timeout):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError as err:
            if timeout < idle_seconds:
                raise UploadStalled(
                    f"the upload averaged less than {min_rate / 1024:g} KiB/s "
                    f"after {grace_seconds:g} s"
                ) from err
            raise UploadStalled(f"the upload sent nothing for {idle_seconds:g} s") from err
        waited += clock() - started
        received += len(chunk)
        yield chunk


class Body(Protocol):
    """A request body as it arrives (aiohttp's StreamReader)."""

    def is_eof(self) -> bool: ...
    def set_exception(self, exc: BaseException) -> None: ...


class Uploads:
    """The import uploads still arriving. When the service stops, its server reads no more
    of them, so each would hang until its idle timeout: `stop` ends them at once instead,
    with ServiceStopping at their next read (before anything is committed). Uploads that
    have arrived whole go on to finish."""

    def __init__(self) -> None:
        self._bodies: set[Body] = set()
        self._stopping = False

    @contextmanager
    def arriving(self, body: Body) -> Iterator[None]:
        """Track `body` for the block's length; ServiceStopping if the service is stopping."""
        if self._stopping:
            raise ServiceStopping
        self._bodies.add(body)
        try:
            yield
        finally:
            self._bodies.discard(body)

    def stop(self) -> None:
        """End every upload still arriving, and any that starts from now on."""
        self._stopping = True
        for body in self._bodies:
            if not body.is_eof():
                body.set_exception(ServiceStopping())


class Parsers:
    """The parser processes that parse blocks, started on first use. If one dies during an
    import, the import fails with ParserLost and the pool is replaced; if one dies between
    imports, the pool is replaced before the next import uses it."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None

    def parse(self, block: Block) -> asyncio.Future[Parsed]:
        """Parse a block in a parser process."""
        if self._executor is None:
            # forkserver: parsers fork from a small server that has imported this module
            # once, not from the service with its threads and sockets.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            # Each parser ends with this process: after a kill -9 they would otherwise wait
            # for work forever, and keep the fork server alive with them.
            self._executor = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=exit_with, initargs=(os.getpid(),)
            )
        return asyncio.get_running_loop().run_in_executor(self._executor, parse_block, block)

    def replace_if_broken(self) -> None:
        """Start afresh if a parser has died since the last import (killed, out of memory):
        the pool breaks when one does, and would fail the next import, however unrelated."""
        if not all(process.is_alive() for process in self._processes().values()):
            self.lost()

    def pids(self) -> list[int]:
        """The parser processes' ids, once started."""
        return list(self._processes())

    def _processes(self) -> dict[int, multiprocessing.process.BaseProcess]:
        processes = getattr(self._executor, "_processes", None) or {}
        return dict(processes)

    def lost(self) -> None:
        """A parser died: kill the pool's other parsers and start a new pool on next use.

        The kill is needed on Python 3.11: a parser started by a block submitted just as the
        pool broke can miss the pool's own terminate, read that block, and wait forever to
        send back its result; the pool's threads then wait for it, and the process cannot
        exit (seen in CI)."""
        if self._executor is not None:
            processes = self._processes()
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            for process in processes.values():
                process.kill()

    def close(self) -> None:
        """Stop the parsers (after the block each is parsing)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


async def parse_stream(
    chunks: AsyncIterator[bytes],
    content_type: str,
    parsers: Parsers,
    block_bytes: int,
    max_lines: int,
    now: datetime,
) -> AsyncGenerator[Parsed, None]:
    """Each block of about `block_bytes` of a CSV or NDJSON byte stream, parsed, in order;
    ImportTooLarge before any block past line `max_lines`; `now` is the service's time, the
    bound for reported_at."""
    parsers.replace_if_broken()
    blocks = _blocks(chunks, block_bytes, max_lines)
    layout = Layout(csv=False)
    if content_type == CSV:
        layout, blocks = await _read_header(blocks)
    else:
        blocks = _first_record_checked(blocks)
    # A window of blocks in the parsers: all of them busy, and one more waiting its turn.
    window: deque[tuple[Block, asyncio.Future[Parsed]]] = deque()
    open_record = None
    try:
        async for first_line, data in blocks:
            block = Block(layout, first_line, data, now)
            window.append((block, parsers.parse(block)))
            if len(window) > parsers.processes:
                parsed = await _settled(parsers, *window.popleft(), open_record)
                open_record = parsed.open_record
                yield parsed
        while window:
            parsed = await _settled(parsers, *window.popleft(), open_record)
            open_record = parsed.open_record
            yield parsed
    except BrokenProcessPool as err:
        parsers.lost()
        raise ParserLost("a parser process died") from err
    finally:
        for _block, future in window:
            future.cancel()
    if open_record is not None:
        value = open_record.texts[0][:MAX_ERROR_VALUE]
        error = RowError(open_record.line, value, "a quoted field is not closed")
        yield Parsed(0, store.imports.staging_copy_data([]), [error], 0, None)


async def _settled(
    parsers: Parsers, block: Block, future: asyncio.Future[Parsed], open_record: OpenRecord | None
) -> Parsed:
    """A block's outcome, parsed again with the record its predecessor left open, if any."""
    parsed = await future
    if open_record is not None:
        parsed = await parsers.parse(replace(block, open_record=open_record))
    return parsed


async def _read_header(
    blocks: AsyncIterator[tuple[int, bytes]],
) -> tuple[Layout, AsyncIterator[tuple[int, bytes]]]:
    """The CSV header's layout, and the blocks after the header row."""
    try:
        _line, first = await anext(blocks)
    except StopAsyncIteration:
        raise ImportFormatError("the file is empty: a header row is needed") from None
    end = first.index(b"\n")
    layout = Layout.from_header(first[:end])

    async def after_header() -> AsyncIterator[tuple[int, bytes]]:
        if len(first) > end + 1:
            yield 2, first[end + 1 :]
        async for block in blocks:
            yield block

    return layout, after_header()


async def _first_record_checked(
    blocks: AsyncIterator[tuple[int, bytes]],
) -> AsyncIterator[tuple[int, bytes]]:
    """NDJSON blocks, once the first line that is not blank is seen to be a JSON object;
    ImportFormatError at the end if no line is (an empty list is refused, as an empty CSV
    is)."""
    checked = False
    async for first_line, data in blocks:
        if not checked and (text := data.lstrip()):
            _check_ndjson_start(text[: text.index(b"\n")])
            checked = True
        yield first_line, data
    if not checked:
        raise ImportFormatError("the file is empty: no JSON object in it")


async def _blocks(
    chunks: AsyncIterator[bytes], size: int, max_lines: int
) -> AsyncIterator[tuple[int, bytes]]:
    """Blocks of whole lines (first line number, bytes) from a stream of chunks, no line
    past `max_lines` (blank ones count: they cost parsing too)."""
    cutter = _Blocks(size)
    async for chunk in chunks:
        block = cutter.feed(chunk)
        if block is not None:
            yield _within(block, max_lines)
    block = cutter.finish()
    if block is not None:
        yield _within(block, max_lines)


def _within(block: tuple[int, bytes], max_lines: int) -> tuple[int, bytes]:
    first, data = block
    if first - 1 + data.count(b"\n") > max_lines:
        raise ImportTooLarge(f"the list holds more than {max_lines:,} lines")
    return block


class _Blocks:
    """Cuts a byte stream into blocks of whole lines of about `size` bytes, each numbered by
    its first line and ending in a line feed. A line that runs on across chunks is kept to
    _KEPT_LINE_BYTES: enough for its parser to refuse it as too long, while the event loop
    never holds more than a block and a line.

    LF, CR LF and a bare CR (Excel's "CSV (Macintosh)") all end a line, and are passed on
    as LF, so the parsers and the line numbers know only LF; a CR LF split across two
    chunks is one line end."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._parts: list[bytes] = []
        self._buffered = 0
        self._line = 1
        self._tail = b""
        """The start of a line whose end has not come yet."""
        self._cut = False
        """The tail was cut short: drop the rest of its line."""
        self._after_cr = False
        """The last chunk ended in a CR: a LF starting the next one belongs to it."""

    def feed(self, chunk: bytes) -> tuple[int, bytes] | None:
        """Take a chunk; return a block once there is a full one."""
        if self._after_cr and chunk[:1] == b"\n":
            chunk, self._after_cr = chunk[1:], False
        if not chunk:
            return None
        if b"\r" in chunk:
            self._after_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            self._after_cr = False
        end = chunk.find(b"\n")
        if end < 0:
            self._keep(chunk)
            return None
        self._add(self._tail + (b"\n" if self._cut else chunk[: end + 1]))
        self._tail, self._cut = b"", False
        last = chunk.rfind(b"\n")
        if last > end:
            self._add(chunk[end + 1 : last + 1])
        self._keep(chunk[last + 1 :])
        return self._take() if self._buffered >= self._size else None

    def finish(self) -> tuple[int, bytes] | None:
        """The stream ended: the last block, with a line feed after a last line without one."""
        if self._tail:
            self._add(self._tail + b"\n")
            self._tail = b""
        return self._take() if self._parts else None

    def _keep(self, data: bytes) -> None:
        if not self._cut:
            self._tail += data
            if len(self._tail) > _KEPT_LINE_BYTES:
                self._tail, self._cut = self._tail[:_KEPT_LINE_BYTES], True

    def _add(self, data: bytes) -> None:
        self._parts.append(data)
        self._buffered += len(data)

    def _take(self) -> tuple[int, bytes]:
        data = b"".join(self._parts)
        first, self._line = self._line, self._line + data.count(b"\n")
        self._parts, self._buffered = [], 0
        return first, data


# --- the parsers' side --------------------------------------------------------------


def parse_block(block: Block) -> Parsed:
    """Parse a block (in a parser process): its rows, encoded for COPY, and its errors."""
    lines: list[bytes | None] = list(block.data.split(b"\n"))
    lines.pop()  # after the last line feed
    if lines and max(map(len, lines)) > MAX_LINE_BYTES:  # type: ignore[arg-type]
        lines = [None if len(line) > MAX_LINE_BYTES else line for line in lines]  # type: ignore[arg-type]
    batch = Batch(block.now)
    open_record = None
    if block.layout.csv:
        parser = _CsvParser(block.layout, block.first_line, block.open_record)
        parser.parse(lines, batch)
        open_record = parser.open_record()
    else:
        _parse_ndjson(lines, block.first_line, batch)
    return Parsed(
        rows=len(batch.rows),
        copy_data=store.imports.staging_copy_data(batch.rows),
        errors=batch.errors,
        mapped_legacy=batch.mapped_legacy,
        open_record=open_record,
    )


def _decode(raw_lines: list[bytes | None], line: int, batch: Batch) -> list[tuple[int, str]]:
    """(line number, text) of the lines that are short enough and UTF-8; errors for the rest."""
    if None not in raw_lines:
        try:  # the common case: the whole block decodes at once, far faster than line by line
            text = b"\n".join(raw_lines).decode("utf-8")  # type: ignore[arg-type]
        except UnicodeDecodeError:
            pass
        else:
            return list(enumerate(text.split("\n"), start=line)) if raw_lines else []
    decoded = []
    for offset, raw in enumerate(raw_lines):
        if raw is None:
            batch.errors.append(RowError(line + offset, "", _TOO_LONG))
            continue
        try:
            decoded.append((line + offset, raw.decode("utf-8")))
        except UnicodeDecodeError:
            value = raw[:MAX_ERROR_VALUE].decode("utf-8", "replace")
            batch.errors.append(RowError(line + offset, value, "the line is not valid UTF-8"))
    return decoded


# --- CSV ------------------------------------------------------------------------


class _CsvParser:
    """A block's CSV records. A quoted field may hold line breaks, so a record stays open
    while its quotes are unbalanced, maybe past the block's end; it is numbered by its first
    line."""

    def __init__(self, layout: Layout, line: int, open_record: OpenRecord | None) -> None:
        self._layout = layout
        self._line = line
        self._open = [] if open_record is None else list(open_record.texts)
        self._open_line = 0 if open_record is None else open_record.line

    def parse(self, raw_lines: list[bytes | None], batch: Batch) -> None:
        """Parse the block's lines into the batch."""
        delimiter, width = self._layout.delimiter, self._layout.width
        number_at, category_at, reported_at, note_at = self._layout.indexes
        quoted: list[tuple[int, str]] = []
        for number, text in _decode(raw_lines, self._line, batch):
            quotes = text.count('"')
            if not quotes and not self._open:  # the common case, inlined for speed
                record = text.split(delimiter)
                if len(record) < width:
                    if not text or text.isspace():
                        continue  # a blank line
                    record += [""] * (width - len(record))
                _add_row(
                    batch,
                    number,
                    record[number_at],
                    record[category_at],
                    record[reported_at],
                    record[note_at],
                )
            elif self._open:
                self._open.append(text)
                if quotes % 2:
                    quoted.append((self._open_line, "\n".join(self._open)))
                    self._open = []
                elif sum(map(len, self._open)) > MAX_LINE_BYTES:
                    batch.errors.append(RowError(self._open_line, "", _TOO_LONG))
                    self._open = []
            elif quotes % 2:
                self._open, self._open_line = [text], number
            else:
                quoted.append((number, text))
        if quoted:
            self._records(quoted, batch)
            # Quoted rows were read after the rest of the block; keep errors in line order.
            batch.errors.sort(key=lambda error: error.line)

    def open_record(self) -> OpenRecord | None:
        """The record the block ended in, if it did."""
        return OpenRecord(self._open_line, tuple(self._open)) if self._open else None

    def _records(self, texts: list[tuple[int, str]], batch: Batch) -> None:
        """Records with quotes, each whole, read by the csv module: one reader for all of a
        block's (creating one costs more than reading a row), one per record if any fails."""
        delimiter = self._layout.delimiter
        try:
            records = list(csv.reader([text for _, text in texts], delimiter=delimiter))
        except csv.Error:
            records = []
        if len(records) != len(texts):
            for line, text in texts:
                try:
                    self._add(line, next(csv.reader([text], delimiter=delimiter)), batch)
                except (csv.Error, StopIteration):
                    batch.errors.append(RowError(line, text[:MAX_ERROR_VALUE], "not a CSV row"))
            return
        for (line, _), record in zip(texts, records, strict=True):
            self._add(line, record, batch)

    def _add(self, line: int, record: list[str], batch: Batch) -> None:
        record += [""] * max(0, self._layout.width - len(record))
        number_at, category_at, reported_at, note_at = self._layout.indexes
        number, category = record[number_at], record[category_at]
        _add_row(batch, line, number, category, record[reported_at], record[note_at])


# --- NDJSON ---------------------------------------------------------------------


def _parse_ndjson(raw_lines: list[bytes | None], line: int, batch: Batch) -> None:
    """A block of NDJSON, one object a line, into the batch."""
    for number, text in _decode(raw_lines, line, batch):
        if text.strip():
            _ndjson_record(text, number, batch)


def _ndjson_record(text: str, line: int, batch: Batch) -> None:
    try:
        record = loads(text)
    except (json.JSONDecodeError, RecursionError):
        batch.errors.append(RowError(line, text[:MAX_ERROR_VALUE], "not valid JSON"))
        return
    except TextError as err:
        batch.errors.append(RowError(line, text[:MAX_ERROR_VALUE], f"not valid JSON: {err}"))
        return
    if not isinstance(record, dict):
        batch.errors.append(RowError(line, text[:MAX_ERROR_VALUE], "not a JSON object"))
        return
    fields = []
    for name in FIELDS:
        value = record.get(name)
        if name == "number" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is not None and not isinstance(value, str):
            reason = f"'{name}' is not a string"
            batch.errors.append(RowError(line, text[:MAX_ERROR_VALUE], reason))
            return
        fields.append(value or "")
    _add_row(batch, line, *fields)


# --- rows -----------------------------------------------------------------------


def _add_row(
    batch: Batch, line: int, number: str, category_text: str, reported_at: str, note: str
) -> None:
    """Validate one row's fields; add it to the batch's rows or its errors."""
    text = number.strip()
    if not text:
        batch.errors.append(RowError(line, "", "the number is missing"))
        return
    try:
        parsed = parse(text)
    except InvalidNumber as err:
        batch.errors.append(RowError(line, text[:MAX_ERROR_VALUE], f"not a valid number: {err}"))
        return
    try:
        blank = not category_text or category_text.isspace()
        kind = DEFAULT_CATEGORY if blank else category(category_text)
        moment = None
        if reported_at and not reported_at.isspace():
            moment = timestamp(reported_at, "reported_at", batch.now, local=VIETNAM)
    except TextError as err:
        batch.errors.append(RowError(line, text, str(err)))
        return
    remark = note.strip() or None if note else None
    if remark is not None and (len(remark) > MAX_NOTE_LENGTH or storable(remark) != remark):
        reason = (
            f"the note is longer than {MAX_NOTE_LENGTH} characters, "
            "or has a NUL or an unpaired surrogate"
        )
        batch.errors.append(RowError(line, text, reason))
        return
    batch.rows.append((line, parsed.number, kind, moment, remark))
    if parsed.legacy:
        batch.mapped_legacy += 1
