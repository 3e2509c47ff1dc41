"""service/import_parsing.py below HTTP: cutting a stream into blocks, and parsing them in worker
processes, several at once, with the same outcome as one block at a time."""

from __future__ import annotations

import asyncio
import csv
import io
import struct
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from callguard.import_parsing import (
    _KEPT_LINE_BYTES,
    CSV,
    MAX_LINE_BYTES,
    NDJSON,
    ImportFormatError,
    Parsed,
    Parsers,
    RowError,
    _Blocks,
    parse_stream,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
StagedRow = tuple[int, int, bytes, int | None, str | None]
MAX_LINES = 10**9

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
"""The service's time handed to the parser: the bound for reported_at."""


@pytest.fixture(scope="module")
def parsers() -> Iterator[Parsers]:
    workers = Parsers(2)
    yield workers
    workers.close()


def cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """data in chunks of the given sizes, round and round."""
    chunks, start, turn = [], 0, 0
    while start < len(data):
        size = sizes[turn % len(sizes)]
        chunks.append(data[start : start + size])
        start, turn = start + size, turn + 1
    return chunks


def blocks_of(data: bytes, block_bytes: int, chunk_sizes: list[int]) -> list[tuple[int, bytes]]:
    cutter = _Blocks(block_bytes)
    blocks = [block for chunk in cut(data, chunk_sizes) if (block := cutter.feed(chunk))]
    last = cutter.finish()
    return blocks + ([last] if last else [])


async def stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def parse_all(
    parsers: Parsers, data: bytes, content_type: str, block_bytes: int, chunk_sizes: list[int]
) -> list[Parsed]:
    chunks = stream(cut(data, chunk_sizes))
    parse = parse_stream(chunks, content_type, parsers, block_bytes, MAX_LINES, NOW)
    return [parsed async for parsed in parse]


def copy_rows(data: bytes) -> list[StagedRow]:
    """Read a binary COPY of import_staging back: (line, number, category, reported_at in
    microseconds since 2000, note) per row, as PostgreSQL's docs define the format."""
    assert data.startswith(COPY_SIGNATURE) and data.endswith(b"\xff\xff")
    (extension,) = struct.unpack_from(">i", data, len(COPY_SIGNATURE) + 4)
    at = len(COPY_SIGNATURE) + 8 + extension
    rows: list[StagedRow] = []
    while True:
        (fields,) = struct.unpack_from(">h", data, at)
        at += 2
        if fields == -1:
            assert at == len(data)
            return rows
        values: list[bytes | None] = []
        for _ in range(fields):
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            values.append(None if length == -1 else data[at : at + length])
            at += max(length, 0)
        line, number, category, reported_at, note = values
        assert line is not None and number is not None and category is not None
        rows.append(
            (
                int.from_bytes(line, "big", signed=True),
                int.from_bytes(number, "big", signed=True),
                category,
                None if reported_at is None else int.from_bytes(reported_at, "big", signed=True),
                None if note is None else note.decode(),
            )
        )


def outcome(results: list[Parsed]) -> tuple[list[StagedRow], list[int], list[RowError], int, int]:
    """What an import would stage, whatever the blocks: the rows in line order, their
    numbers in order, the errors, and the counts."""
    rows = sorted(row for parsed in results for row in copy_rows(parsed.copy_data))
    numbers = sorted(row[1] for row in rows)
    errors = [error for parsed in results for error in parsed.errors]
    counts = sum(p.rows for p in results), sum(p.mapped_legacy for p in results)
    assert counts[0] == len(rows)
    return rows, numbers, errors, *counts


def test_blocks_hold_whole_lines_numbered_by_their_first() -> None:
    data = b"".join(b"line %d\n" % n for n in range(1, 200))
    for chunk_sizes in ([1], [7, 3], [64], [10_000]):
        blocks = blocks_of(data, 100, chunk_sizes)
        assert b"".join(block for _, block in blocks) == data
        for first, block in blocks:
            assert block.endswith(b"\n")
            assert block.startswith(b"line %d\n" % first)


def test_cr_lf_and_a_bare_cr_each_end_one_line_whatever_the_chunks() -> None:
    ends = [b"\n", b"\r", b"\r\n"]
    data = b"".join(b"line %d" % n + ends[n % 3] for n in range(1, 200))
    as_lf = b"".join(b"line %d\n" % n for n in range(1, 200))
    for chunk_sizes in ([1], [2], [3], [7, 3], [64], [10_000]):
        blocks = blocks_of(data, 100, chunk_sizes)
        assert b"".join(block for _, block in blocks) == as_lf
        for first, block in blocks:
            assert block.startswith(b"line %d\n" % first)
    assert blocks_of(b"a\r", 1 << 20, [1]) == [(1, b"a\n")]
    assert blocks_of(b"a\r\r\nb", 1 << 20, [2]) == [(1, b"a\n\nb\n")]


def test_a_last_line_without_a_line_feed_gets_one() -> None:
    assert blocks_of(b"a\nb", 1 << 20, [1]) == [(1, b"a\nb\n")]
    assert blocks_of(b"", 1 << 20, [1]) == []


def test_a_line_running_across_chunks_is_kept_only_as_far_as_needed_to_refuse_it() -> None:
    long_line = b"x" * (MAX_LINE_BYTES * 10)
    data = b"first\n" + long_line + b"\nlast\n"
    for chunk_sizes in ([1000], [1, 4095]):
        block = b"".join(block for _, block in blocks_of(data, 1 << 20, chunk_sizes))
        lines = block.split(b"\n")
        assert lines[0] == b"first" and lines[2:] == [b"last", b""]
        assert MAX_LINE_BYTES < len(lines[1]) <= _KEPT_LINE_BYTES


async def test_rows_errors_and_line_numbers_come_back_in_order(parsers: Parsers) -> None:
    data = (
        b"number,category,note\n"
        + b"".join(b"+8491%07d,other,row %d\n" % (n, n) for n in range(3000))
        + b"not-a-number,other,\n"
    )
    results = await parse_all(parsers, data, CSV, 4096, [1000])
    assert len(results) > 10
    rows, _, errors, _, _ = outcome(results)
    assert rows == [(n + 2, 84910000000 + n, b"other", None, f"row {n}") for n in range(3000)]
    assert [(error.line, error.value) for error in errors] == [(3002, "not-a-number")]


async def test_a_stream_without_a_header_is_refused(parsers: Parsers) -> None:
    with pytest.raises(ImportFormatError, match="empty"):
        await parse_all(parsers, b"", CSV, 4096, [10])
    with pytest.raises(ImportFormatError, match="too long"):
        await parse_all(parsers, b"number," + b"x" * 10_000 + b"\n1\n", CSV, 4096, [100])


async def test_ndjson_in_blocks(parsers: Parsers) -> None:
    data = b"".join(b'{"number": "+8491%07d"}\n' % n for n in range(500)) + b"[1]\n"
    results = await parse_all(parsers, data, NDJSON, 1000, [333])
    _, numbers, errors, _, _ = outcome(results)
    assert numbers == [84910000000 + n for n in range(500)]
    assert [(error.line, error.reason) for error in errors] == [(501, "not a JSON object")]


# Rows as (number, note), with notes that make the csv module quote a field and hold line
# breaks; and raw lines among them: a quote never closed, a blank line.
notes = st.text(alphabet='ab ,"\n\r;', max_size=12)
numbers = st.integers(0, 10**7 - 1).map(lambda n: f"+8491{n:07d}")
UNCLOSED = 'unclosed "quote,\n'
file_lines = st.lists(
    st.one_of(st.tuples(numbers, notes), st.sampled_from([UNCLOSED, "\n"])), max_size=40
)


def csv_record(fields: tuple[str, str] | list[str]) -> str:
    """One CSV record without its line end. The csv module's default line end, CR LF, makes
    it quote any field holding a CR or a LF: unquoted, each would end a line."""
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue().removesuffix("\r\n")


def write_csv(lines: list[tuple[str, str] | str], line_end: str) -> bytes:
    parts = [csv_record(["number", "note"]) + line_end]
    for line in lines:
        if isinstance(line, tuple):
            parts.append(csv_record(line) + line_end)
        else:
            parts.append(line.replace("\n", line_end))
    return "".join(parts).encode()


@pytest.mark.slow  # hundreds of examples
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=file_lines,
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
    block_bytes=st.integers(1, 200),
    chunk_sizes=st.lists(st.integers(1, 50), min_size=1, max_size=4),
)
def test_any_blocks_give_what_one_block_gives(
    parsers: Parsers,
    lines: list[tuple[str, str] | str],
    line_end: str,
    block_bytes: int,
    chunk_sizes: list[int],
) -> None:
    data = write_csv(lines, line_end)
    whole = asyncio.run(parse_all(parsers, data, CSV, 1 << 30, [len(data) or 1]))
    pieces = asyncio.run(parse_all(parsers, data, CSV, block_bytes, chunk_sizes))
    assert outcome(pieces) == outcome(whole)
    if UNCLOSED not in lines:  # then the csv module's quoting is read as written ...
        # ... but for a CR LF or a CR inside a quoted field: read as a line end, it comes
        # back as LF.
        expected = [
            (int(line[0][1:]), line[1].replace("\r\n", "\n").replace("\r", "\n").strip() or None)
            for line in lines
            if isinstance(line, tuple)
        ]
        assert [(row[1], row[4]) for row in outcome(whole)[0]] == expected
