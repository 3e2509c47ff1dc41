"""Reading operators' and police units' lists, row by row: CSV or NDJSON, maybe gzipped.

A stream of byte chunks becomes batches of valid rows, ready for COPY, and row errors with
their reasons. Nothing here holds more than a batch, so memory does not grow with the file.
A stream that cannot be read at all (no header, no number column, cut or corrupt gzip)
raises ImportFormatError: the caller imports nothing.
"""

from __future__ import annotations

import csv
import json
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from service.categories import CATEGORY_IDS
from service.numbers import InvalidNumber, parse

CSV = "text/csv"
NDJSON = "application/x-ndjson"
FORMATS = (CSV, NDJSON)
MAX_LINE_BYTES = 4096
MAX_NOTE_LENGTH = 1000
MAX_ERROR_VALUE = 200
"""Error entries quote at most this much of the offending value."""
FIELDS = ("number", "category", "reported_at", "note")
DEFAULT_CATEGORY = "other"
VIETNAM_TIME = timezone(timedelta(hours=7))
"""Timestamps without an offset in Vietnamese lists are local time."""
_DECOMPRESS_STEP = 1 << 20
_TOO_LONG = f"the line is longer than {MAX_LINE_BYTES} bytes"


class ImportFormatError(Exception):
    """The stream as a whole cannot be read; str(error) says why, for the client."""


@dataclass(frozen=True, slots=True)
class RowError:
    """A row refused, by line number (the header is line 1), with the value and why."""

    line: int
    value: str
    reason: str


@dataclass(slots=True)
class Batch:
    """Rows read from a stretch of the stream: (line, number, category, reported_at, note)
    tuples ready for COPY, the errors, and how many numbers were legacy ones mapped."""

    rows: list[tuple[int, int, str, datetime | None, str | None]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    mapped_legacy: int = 0

    def __len__(self) -> int:
        return len(self.rows) + len(self.errors)


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


async def read_batches(
    chunks: AsyncIterator[bytes], content_type: str, batch_rows: int
) -> AsyncIterator[Batch]:
    """Batches of about `batch_rows` rows read from a CSV or NDJSON byte stream."""
    lines = _Lines(chunks)
    batch = Batch()
    parser: _CsvParser | _NdjsonParser
    if content_type == CSV:
        parser, with_header = await _CsvParser.open(lines)
        parser.parse(with_header, batch)
    else:
        parser = _NdjsonParser()
    async for raw_lines in lines:
        parser.parse(raw_lines, batch)
        if len(batch) >= batch_rows:
            yield batch
            batch = Batch()
    parser.finish(batch)
    if len(batch):
        yield batch


# --- lines ----------------------------------------------------------------------


class _Lines:
    """Complete lines of a byte stream, a chunk at a time, without their line ends; None
    stands for a line longer than MAX_LINE_BYTES."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""
        self._too_long = False
        self._done = False

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> list[bytes | None]:
        while not self._done:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._done = True
                break
            lines = self._split(chunk)
            if lines:
                return lines
        if self._too_long:
            self._too_long = False
            return [None]
        if self._pending:
            last, self._pending = self._pending, b""
            return [_check(last)]
        raise StopAsyncIteration

    def _split(self, chunk: bytes) -> list[bytes | None]:
        parts = chunk.split(b"\n")
        out: list[bytes | None] = []
        if len(parts) > 1:
            if self._too_long:
                out.append(None)
                self._too_long = False
            else:
                out.append(_check(self._pending + parts[0]))
            out.extend(_check(part) for part in parts[1:-1])
            self._pending = b""
        tail = parts[-1] if len(parts) > 1 else self._pending + parts[-1]
        if self._too_long or len(tail) > MAX_LINE_BYTES:
            self._too_long, self._pending = True, b""
        else:
            self._pending = tail
        return out


def _check(line: bytes) -> bytes | None:
    line = line[:-1] if line.endswith(b"\r") else line
    return line if len(line) <= MAX_LINE_BYTES else None


def _decode(raw_lines: list[bytes | None], line: int, batch: Batch) -> list[tuple[int, str]]:
    """(line number, text) of the lines that are short enough and UTF-8; errors for the rest."""
    if None not in raw_lines:
        try:  # the common case: the whole chunk decodes at once, far faster than line by line
            text = b"\n".join(raw_lines).decode("utf-8")  # type: ignore[arg-type]
        except UnicodeDecodeError:
            pass
        else:
            return list(enumerate(text.split("\n"), start=line))
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
    """CSV rows after the header. A quoted field may hold line breaks, so a record stays
    open while its quotes are unbalanced; it is numbered by its first line."""

    def __init__(self, delimiter: str, names: list[str]) -> None:
        self.line = 2
        self._delimiter = delimiter
        # Where each field is in a record; a missing column reads from the padding, "".
        self._width = len(names) + 1
        self._indexes = [names.index(name) if name in names else len(names) for name in FIELDS]
        self._open: list[str] = []
        self._open_line = 0

    @classmethod
    async def open(cls, lines: _Lines) -> tuple[_CsvParser, list[bytes | None]]:
        """Read the header; return the parser and the lines after the header in its chunk."""
        try:
            first = await anext(lines)
        except StopAsyncIteration:
            raise ImportFormatError("the file is empty: a header row is needed") from None
        header_line, rest = first[0], first[1:]
        if header_line is None:
            raise ImportFormatError("the header row is too long")
        try:
            header = header_line.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise ImportFormatError("the header row is not UTF-8") from err
        delimiter = max(",;\t", key=header.count)  # Excel in Vietnamese locales writes ';'
        names = [name.strip().lower() for name in next(csv.reader([header], delimiter=delimiter))]
        if "number" not in names:
            raise ImportFormatError(f"no 'number' column in the header ({', '.join(names)})")
        return cls(delimiter, names), rest

    def parse(self, raw_lines: list[bytes | None], batch: Batch) -> None:
        """Parse a chunk's complete lines into the batch."""
        delimiter, width = self._delimiter, self._width
        number_at, category_at, reported_at, note_at = self._indexes
        quoted: list[tuple[int, str]] = []
        errors_before = len(batch.errors)
        for number, text in _decode(raw_lines, self.line, batch):
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
                    self._records([(self._open_line, "\n".join(self._open))], batch)
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
            # Quoted rows were read after the rest of the chunk; keep errors in line order.
            batch.errors[errors_before:] = sorted(
                batch.errors[errors_before:], key=lambda error: error.line
            )
        self.line += len(raw_lines)

    def finish(self, batch: Batch) -> None:
        """The stream ended: a record still open is refused."""
        if self._open:
            value = self._open[0][:MAX_ERROR_VALUE]
            batch.errors.append(RowError(self._open_line, value, "a quoted field is not closed"))
            self._open = []

    def _records(self, texts: list[tuple[int, str]], batch: Batch) -> None:
        """Records with quotes, each whole, read by the csv module: one reader for all of a
        chunk's (creating one costs more than reading a row), one per record if any fails."""
        try:
            records = list(csv.reader([text for _, text in texts], delimiter=self._delimiter))
        except csv.Error:
            records = []
        if len(records) != len(texts):
            for line, text in texts:
                try:
                    self._add(line, next(csv.reader([text], delimiter=self._delimiter)), batch)
                except (csv.Error, StopIteration):
                    batch.errors.append(RowError(line, text[:MAX_ERROR_VALUE], "not a CSV row"))
            return
        for (line, _), record in zip(texts, records, strict=True):
            self._add(line, record, batch)

    def _add(self, line: int, record: list[str], batch: Batch) -> None:
        record += [""] * max(0, self._width - len(record))
        _add_row(batch, line, *(record[index] for index in self._indexes))


# --- NDJSON ---------------------------------------------------------------------


class _NdjsonParser:
    """One JSON object a line."""

    def __init__(self) -> None:
        self.line = 1

    def parse(self, raw_lines: list[bytes | None], batch: Batch) -> None:
        """Parse a chunk's complete lines into the batch."""
        for number, text in _decode(raw_lines, self.line, batch):
            if text.strip():
                self._record(text, number, batch)
        self.line += len(raw_lines)

    def finish(self, batch: Batch) -> None:
        """Nothing spans lines in NDJSON."""

    def _record(self, text: str, line: int, batch: Batch) -> None:
        try:
            record = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            batch.errors.append(RowError(line, text[:MAX_ERROR_VALUE], "not valid JSON"))
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
    batch: Batch, line: int, number: str, category: str, reported_at: str, note: str
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
    if category not in CATEGORY_IDS:  # checked as written first: the common case
        category = category.strip().lower() or DEFAULT_CATEGORY
        if category not in CATEGORY_IDS:
            batch.errors.append(RowError(line, text, f"unknown category {category[:50]!r}"))
            return
    moment = None
    if reported_at:
        try:
            moment = datetime.fromisoformat(reported_at.strip())
        except ValueError:
            batch.errors.append(RowError(line, text, "reported_at is not an ISO 8601 time"))
            return
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=VIETNAM_TIME)
    remark = note.strip() or None if note else None
    if remark is not None and (len(remark) > MAX_NOTE_LENGTH or "\x00" in remark):
        reason = f"the note is longer than {MAX_NOTE_LENGTH} characters or has a NUL"
        batch.errors.append(RowError(line, text, reason))
        return
    batch.rows.append((line, parsed.number, category, moment, remark))
    if parsed.legacy:
        batch.mapped_legacy += 1
