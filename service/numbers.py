"""Phone number normalisation: whatever a person types or a switch passes -> E.164 as an int.

Numbers are stored and compared as the digits of their E.164 form in a bigint
(+84912345678 -> 84912345678); Vietnam is the default region for national forms.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_REGION = "VN"
MAX_INPUT_LENGTH = 64
"""Longer than any phone number with its punctuation, a tel: prefix and an extension."""
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class InvalidNumber(ValueError):
    """The text is not a valid phone number; str(error) says why, for the client."""


def normalize(text: str) -> int:
    """Parse text as a phone number and return its E.164 digits as an int."""
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidNumber(f"longer than {MAX_INPUT_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(text):
        raise InvalidNumber("contains control characters")
    try:
        parsed = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException as err:
        raise InvalidNumber(_PARSE_ERRORS.get(err.error_type, "not a phone number")) from err
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber("not a valid phone number")
    return int(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:])


def to_e164(number: int) -> str:
    """The E.164 text of a normalised number: 84912345678 -> '+84912345678'."""
    return f"+{number}"


_PARSE_ERRORS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country calling code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the IDD prefix",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short to be a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "too long to be a phone number",
}
