"""The rules for reading what a client types: identifiers, categories, timestamps and JSON.

One module, used by the API (api/bodies.py, api/reports.py, api/imports.py ...) and by the
import parser's worker processes (imports.py) alike, so a field means the same wherever it
arrives. Each rule raises TextError with a sentence naming the field; the API answers it as
400, an import refuses the row with it.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from .categories import CATEGORY_IDS

EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
"""No report or listing is dated before this: older is a typing error, not a scam call."""
MAX_CLOCK_SKEW = timedelta(minutes=10)
"""How far past the service's clock a timestamp may be: a phone's or a server's clock ahead."""
MAX_JSON_INTEGER_DIGITS = 40
"""No field takes a longer integer (an int64 has 19 digits, a phone number 15); past Python's
4300-digit limit, int() would fail, and long ones cost quadratic time to convert."""

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?P<offset>[Zz]|[+-]\d{2}:\d{2})?)?",
    re.ASCII,
)


_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
"""Characters that show as nothing: Unicode's Default_Ignorable_Code_Point set
(DerivedCoreProperties.txt: joiners, variation selectors, Hangul fillers, tags) and the
blank braille pattern. unicodedata has no such property, hence the list."""


class TextError(ValueError):
    """A field that breaks its rule; str(error) says which and why, for the client."""


class UnknownCategory(TextError):
    """A category that is none of the known ones (the API answers 422 with the list)."""


def identifier(value: str, name: str, max_length: int) -> str:
    """An identifier as compared and stored: Unicode NFC, with characters that show as
    nothing dropped (format characters, category Cf: zero-width spaces, BOMs, bidi marks;
    and the rest of Unicode's default-ignorables, _INVISIBLE: variation selectors, Hangul
    fillers, the grapheme joiner) and surrounding white space stripped, so text that looks
    the same is the same identifier. Empty after that, too long, or holding a control
    character or a lone surrogate, it is refused."""
    text = unicodedata.normalize("NFC", value)
    if not text.isascii():
        text = _INVISIBLE.sub("", text)
        text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    text = text.strip()
    if not text:
        raise TextError(f"'{name}' must not be empty (invisible characters do not count).")
    if len(text) > max_length:
        raise TextError(f"'{name}' is longer than {max_length} characters.")
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise TextError(f"'{name}' contains a control character or an unpaired surrogate.")
    return text


def category(value: str) -> str:
    """A known category id, in any letter case and with surrounding white space."""
    if value in CATEGORY_IDS:  # as written: the common case, at once
        return value
    text = value.strip().lower()
    if text not in CATEGORY_IDS:
        raise UnknownCategory(f"Unknown category {value[:50]!r}.")
    return text


def timestamp(value: str, name: str, now: datetime, local: tzinfo | None = None) -> datetime:
    """An RFC 3339 date-time (`T` or a space between date and time, `Z` in either case, a
    fraction of up to nine digits, kept to microseconds) from EARLIEST_TIME to now plus
    MAX_CLOCK_SKEW. With `local`, the offset may be left out (the time is then local) and so
    may the time (midnight, local)."""
    text = value.strip()
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise TextError(f"'{name}' is not an RFC 3339 time such as 2024-03-26T09:30:00+07:00.")
    if local is None and match["offset"] is None:
        raise TextError(f"'{name}' needs a UTC offset, e.g. 2024-03-26T09:30:00+07:00.")
    try:
        # The shape is checked; fromisoformat reads it (fast, in C) once `t` and `z` are upper
        # case, and refuses what is no real time (February 30th, an offset of +24:00).
        moment = datetime.fromisoformat(text.upper())
    except ValueError as err:
        raise TextError(f"'{name}' is not a real date and time.") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local)
    # Compared, not converted: 0001-01-01T00:00:00+01:00 has no UTC time to convert to, and
    # within the range every time has one Postgres can store.
    if moment < EARLIEST_TIME:
        raise TextError(f"'{name}' is before {EARLIEST_TIME.date().isoformat()}.")
    if moment > now + MAX_CLOCK_SKEW:
        raise TextError(f"'{name}' is in the future.")
    return moment


def loads(text: str) -> Any:
    """JSON as RFC 8259 has it: NaN, Infinity and -Infinity are refused, and so are numbers
    out of a float's range (1e400) and integers longer than MAX_JSON_INTEGER_DIGITS.
    Raises json.JSONDecodeError, RecursionError or TextError."""
    return json.loads(text, parse_constant=_constant, parse_int=_integer, parse_float=_float)


def _constant(name: str) -> Any:
    raise TextError(f"{name} is not a JSON number.")


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_JSON_INTEGER_DIGITS:
        raise TextError(f"A number has more than {MAX_JSON_INTEGER_DIGITS} digits.")
    return int(digits)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise TextError(f"The number {text[:20]} is out of range.")
    return value
