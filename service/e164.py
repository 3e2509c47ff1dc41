"""Phone number normalisation: whatever a person types or a switch passes -> E.164 as an int.

Numbers are stored and compared as the digits of their E.164 form in a bigint
(+84912345678 -> 84912345678); Vietnam is the default region for national forms.

`parse` tries a fast path for the shapes switches and imports send (+84..., 84..., 0...,
0084..., with spaces, dots, dashes and parentheses) and falls back to `parse_slow`
(phonenumbers, ~20 µs) for anything it is not sure of. The fast path replays the steps
phonenumbers.parse takes for these shapes and validates with one regex built from the same
VN metadata, so both reach the same answer; tests/test_numbers.py checks that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

DEFAULT_REGION = "VN"
MAX_INPUT_LENGTH = 64
"""Longer than any phone number with its punctuation, a tel: prefix and an extension."""
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_DIGITS = 24
"""An E.164 number has at most 15 digits; an international prefix and an extension add
some. More is no number, and phonenumbers' time grows with the digits it has to try."""
MAX_LETTERS = 12
"""Enough for tel:, ;ext= or "ext." and a vanity word such as FLOWERS."""
_NUMBER_CHARACTERS = re.compile(
    r"[\d+\uff0b;=:#*,a-zA-Z"  # digits in any script, plus signs, tel: URIs, extensions
    r" \u00a0\u00ad\u200b\u2060\u3000"  # spaces: phonenumbers ignores these
    r"\-.()\[\]/~\u2010-\u2015\u2212\u30fc\uff0d-\uff0f\uff3b\uff3d\uff5e\uff08\uff09\u2053\u223c]*"
)
"""The characters phonenumbers reads a number from (its VALID_PUNCTUATION, digits, the plus
signs, letters); anything else makes text no number before the parser is asked."""
_TOO_MANY_DIGITS = re.compile(rf"(?:\D*\d){{{MAX_DIGITS + 1}}}")
_TOO_MANY_LETTERS = re.compile(rf"(?:[^a-zA-Z]*[a-zA-Z]){{{MAX_LETTERS + 1}}}")
"""Counting by matching stops at the first one too many and makes no list: 1 µs, not 5-10."""

LEGACY_PREFIXES = {
    "162": "32", "163": "33", "164": "34", "165": "35", "166": "36", "167": "37", "168": "38",
    "169": "39", "120": "70", "121": "79", "122": "77", "126": "76", "128": "78", "123": "83",
    "124": "84", "125": "85", "127": "81", "129": "82", "186": "56", "188": "58", "199": "59",
}  # fmt: skip
"""Pre-2018 mobile prefixes (of the 10-digit NSN, trunk 0 dropped) -> today's 9-digit NSN's."""
_LEGACY_NSN_LENGTH = 10


class InvalidNumber(ValueError):
    """The text is not a valid phone number; str(error) says why, for the client."""


@dataclass(frozen=True, slots=True)
class Parsed:
    """A valid number, and whether it was renumbered from a pre-2018 11-digit mobile."""

    number: int
    """The E.164 digits as an int, e.g. 84912345678."""
    legacy: bool
    """True if an 11-digit pre-2018 mobile was mapped to today's number."""


def normalize(text: str) -> int:
    """Parse text as a phone number and return its E.164 digits as an int."""
    number = normalize_fast(text)
    return parse_slow(text).number if number is None else number


def normalize_fast(text: str) -> int | None:
    """normalize() where the fast path is sure, in a microsecond or so; None leaves the text
    to parse_slow (which also says why text is invalid). Lookups decide an item's cost by it."""
    # What switches and apps send most: +84 or a trunk 0 and a 9-digit NSN (a mobile), checked
    # as the fast path below would, without its other cases.
    if len(text) == _E164_MOBILE_LENGTH and text.startswith("+84"):
        nsn = text[3:]
    elif len(text) == _NATIONAL_MOBILE_LENGTH and text.startswith("0"):
        nsn = text[1:]
    else:
        nsn = ""
    if nsn and nsn.isascii() and nsn.isdigit() and nsn_nine_is_valid(nsn):
        return _VN_NINE + int(nsn)
    if len(text) > MAX_INPUT_LENGTH:
        return None
    fast = _parse_fast(text)  # not via parse(): batch lookups skip building a Parsed
    return None if fast is None else fast[0]


def parse(text: str) -> Parsed:
    """Parse text as a phone number; raises InvalidNumber with the reason."""
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidNumber(f"longer than {MAX_INPUT_LENGTH} characters")
    fast = _parse_fast(text)
    return parse_slow(text) if fast is None else Parsed(fast[0], fast[1])


def parse_slow(text: str) -> Parsed:
    """parse() by phonenumbers alone, plus the legacy mapping: the reference for parse()."""
    check_shape(text)
    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException as err:
        raise InvalidNumber(_PARSE_ERRORS.get(err.error_type, "not a phone number")) from err
    legacy = False
    if parsed.country_code == _COUNTRY_CODE:
        nsn = phonenumbers.national_significant_number(parsed)
        if len(nsn) == _LEGACY_NSN_LENGTH and nsn[:3] in LEGACY_PREFIXES:
            nsn = LEGACY_PREFIXES[nsn[:3]] + nsn[3:]
            parsed = phonenumbers.PhoneNumber(country_code=_COUNTRY_CODE, national_number=int(nsn))
            legacy = True
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid phone number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return Parsed(int(e164[1:]), legacy)


def check_shape(text: str) -> None:
    """Refuse, in a few microseconds, text that cannot be a phone number, before phonenumbers
    (tens of microseconds, and hundreds on long crafted mixes of digits, letters and
    separators) sees it: too long, control characters, characters no number is written
    with, too many digits or letters. Raises InvalidNumber with the reason."""
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidNumber(f"longer than {MAX_INPUT_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(text):
        raise InvalidNumber("contains control characters")
    if _NUMBER_CHARACTERS.fullmatch(text) is None:
        raise InvalidNumber(
            "contains characters no phone number is written with (digits, +, spaces, "
            ".-/()[]~ and letters for tel:, an extension or a vanity number)"
        )
    if _TOO_MANY_DIGITS.match(text):
        raise InvalidNumber(f"more than {MAX_DIGITS} digits")
    if _TOO_MANY_LETTERS.match(text):
        raise InvalidNumber(f"more than {MAX_LETTERS} letters")


def parse_fast(text: str) -> Parsed | None:
    """parse() for the common Vietnamese shapes when it is sure of a valid number, else None."""
    if len(text) > MAX_INPUT_LENGTH:
        return None
    fast = _parse_fast(text)
    return None if fast is None else Parsed(fast[0], fast[1])


def _parse_fast(text: str) -> tuple[int, bool] | None:
    """parse_fast() as (number, legacy).

    Only ASCII digits, the separators " .-()" and one leading "+84" get past the first lines.
    In those, phonenumbers finds no extension or RFC 3966 part and keeps just the digits, so
    the national significant number (NSN) follows from the digits as below; each step names
    the phonenumbers behaviour it replays.
    """
    if not text.isascii():
        return None
    if not text.isdigit() and not (text.startswith("+84") and text[3:].isdigit()):
        # Separators anywhere are dropped; before the "+" there may only be separators, as a
        # "+" after a digit makes the text "not a phone number".
        text = (
            text.replace(" ", "")
            .replace(".", "")
            .replace("-", "")
            .replace("(", "")
            .replace(")", "")
        )
        if not text.isdigit() and not (text.startswith("+84") and text[3:].isdigit()):
            return None  # another country, letters, other punctuation: phonenumbers decides
    if text[0] == "+":
        nsn = text[3:]  # country code 84: no country code is "8"
    elif text.startswith("0084"):
        nsn = text[4:]  # the IDD 00, then as "+84"
    elif text[0] == "0":
        # Trunk 0: stripped when the NSN left matches the general pattern (checked below for
        # every NSN accepted) and has a possible length (_maybe_strip_national_prefix_carrier_code
        # and parse).
        nsn = text[1:]
        if len(nsn) not in _TRUNK_STRIPPED_LENGTHS:
            return None
    elif text.startswith("84"):
        # Country code without "+": taken as one only if the digits are too long for an NSN,
        # or are no NSN while the rest is (_maybe_extract_country_code).
        if text[2:3] == "0":
            return None  # a trunk 0 after it changes that test
        if len(text) > _MAX_NSN_LENGTH or (
            not _GENERAL.fullmatch(text) and _GENERAL.fullmatch(text[2:])
        ):
            nsn = text[2:]
        else:
            nsn = text
    else:
        nsn = text  # national without the trunk 0: the digits are the NSN
    if nsn.startswith("0"):
        return None  # after "+84" or a trunk 0, a 0 is stripped again or kept as Italian zero
    length = len(nsn)
    legacy = length == _LEGACY_NSN_LENGTH and nsn[:3] in LEGACY_PREFIXES
    if legacy:
        if not _GENERAL.fullmatch(nsn):
            return None  # a trunk 0 before it would not have been stripped
        nsn = LEGACY_PREFIXES[nsn[:3]] + nsn[3:]
        length = len(nsn)
    valid = _VALID_BY_LENGTH.get(length)
    if valid is None or valid.fullmatch(nsn) is None:
        return None  # let phonenumbers say why
    return int(nsn) + _COUNTRY_PREFIX[length], legacy


def nsn_nine_is_valid(nsn: str) -> bool:
    """Whether a 9-digit NSN (ASCII digits) is a valid VN number, as _VALID_NINE says: by
    its first four digits where those decide (a set lookup), else by the regex."""
    prefix = nsn[:4]
    if prefix in _NINE_VALID_PREFIXES:
        return True
    return prefix in _NINE_UNDECIDED_PREFIXES and _VALID_NINE.fullmatch(nsn) is not None


def _nine_digit_prefixes() -> tuple[frozenset[str], frozenset[str]]:
    """The 4-digit prefixes whose 9-digit NSNs are all valid, and those the probes could not
    settle. Today's metadata decides 9-digit validity by at most four digits; a prefix
    whose probe suffixes disagree (a future pattern looking further) is left to the regex."""
    valid, undecided = set(), set()
    for head in range(1000, 10_000):
        prefix = str(head)
        outcomes = {_VALID_NINE.fullmatch(prefix + tail) is not None for tail in _NINE_PROBES}
        if len(outcomes) > 1:
            undecided.add(prefix)
        elif outcomes == {True}:
            valid.add(prefix)
    return frozenset(valid), frozenset(undecided)


def to_e164(number: int) -> str:
    """The E.164 text of a normalised number: 84912345678 -> '+84912345678'."""
    return f"+{number}"


def _valid_nsn_patterns(metadata: phonenumbers.PhoneMetadata) -> dict[int, re.Pattern[str]]:
    """is_valid_number_for_region as one regex per NSN length: the NSN matches the general
    pattern and the pattern of some number type that has this length (_number_type_helper).
    """
    descs = [
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    ]
    assert metadata.general_desc is not None
    general = metadata.general_desc.national_number_pattern
    patterns = {}
    # phonenumbers.parse refuses NSNs shorter than 2 or longer than 17 digits.
    for length in range(2, 18):
        types = [
            f"(?:{desc.national_number_pattern})"
            for desc in descs
            if desc is not None
            and desc.national_number_pattern
            and (not desc.possible_length or length in desc.possible_length)
        ]
        if types:
            # re.ASCII: these NSNs are ASCII digits, for which \d means the same either way.
            patterns[length] = re.compile(f"(?=(?:{general})\\Z)(?:{'|'.join(types)})", re.ASCII)
    return patterns


_METADATA = phonenumbers.PhoneMetadata.metadata_for_region(DEFAULT_REGION)
# What parse_fast assumes of the metadata beyond the patterns it reads from it.
assert _METADATA is not None and _METADATA.country_code == 84
assert _METADATA.national_prefix_for_parsing == "0" and not _METADATA.national_prefix_transform_rule
assert _METADATA.international_prefix == "00"
_GENERAL_DESC = _METADATA.general_desc
assert _GENERAL_DESC is not None and _GENERAL_DESC.national_number_pattern is not None
assert not _GENERAL_DESC.possible_length_local_only
_COUNTRY_CODE: int = _METADATA.country_code
_GENERAL = re.compile(_GENERAL_DESC.national_number_pattern, re.ASCII)
_VALID_BY_LENGTH = _valid_nsn_patterns(_METADATA)
_MAX_NSN_LENGTH = max(_GENERAL_DESC.possible_length)
_TRUNK_STRIPPED_LENGTHS = frozenset(_GENERAL_DESC.possible_length) | frozenset(
    range(_MAX_NSN_LENGTH + 1, MAX_INPUT_LENGTH + 1)
)
"""NSN lengths for which phonenumbers keeps a trunk 0 stripped: possible, or too long."""
_COUNTRY_PREFIX = [_COUNTRY_CODE * 10**length for length in range(18)]
_VALID_NINE = _VALID_BY_LENGTH[9]
_E164_MOBILE_LENGTH = len("+84") + 9
_NATIONAL_MOBILE_LENGTH = len("0") + 9
_VN_NINE: int = _COUNTRY_PREFIX[9]
"""84 followed by nine zeros: 84xxxxxxxxx as an int is this plus the 9-digit NSN."""
_NINE_PROBES = ("00000", "99999", "01234", "56789", "13579", "24680", "90909", "55555")
_NINE_VALID_PREFIXES, _NINE_UNDECIDED_PREFIXES = _nine_digit_prefixes()

_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the IDD prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short to be a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "too long to be a phone number",
}
