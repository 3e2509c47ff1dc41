"""Number normalisation: every way a Vietnamese number is written gives one E.164 int."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.numbers import InvalidNumber, normalize, to_e164

E164 = phonenumbers.PhoneNumberFormat.E164

# Vietnamese mobile prefixes in use since the 2018 renumbering.
MOBILE_PREFIXES = ["32", "33", "34", "35", "36", "37", "38", "39", "56", "58", "59", "70", "76",
                   "77", "78", "79", "81", "82", "83", "84", "85", "86", "88", "89", "90", "91",
                   "92", "93", "94", "96", "97", "98", "99"]  # fmt: skip

national = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(MOBILE_PREFIXES),
    st.text("0123456789", min_size=7, max_size=7),
)


def outcome(text: str) -> int | str:
    try:
        return normalize(text)
    except InvalidNumber:
        return "invalid"


def spaced(digits: str, separator: str) -> str:
    return separator.join(digits[i : i + 3] for i in range(0, len(digits), 3))


@given(national, st.sampled_from([" ", ".", "-", ""]))
def test_every_written_form_gives_the_same_answer(digits: str, separator: str) -> None:
    expected = outcome("0" + digits)
    assert expected in (int("84" + digits), "invalid")
    forms = [
        "0" + digits,
        "+84" + digits,
        "0084" + digits,
        "84" + digits,
        "+84 " + spaced(digits, separator),
        "(+84) " + spaced(digits, separator),
        "0" + spaced(digits, separator),
        "tel:+84" + digits,
        ("0" + digits).translate(str.maketrans("0123456789", "０１２３４５６７８９")),  # noqa: RUF001
    ]
    for form in forms:
        assert outcome(form) == expected, form


@given(st.text(max_size=30))
def test_normalize_agrees_with_phonenumbers_or_refuses(text: str) -> None:
    try:
        number = normalize(text)
    except InvalidNumber:
        return
    parsed = phonenumbers.parse(text, "VN")
    assert phonenumbers.is_valid_number(parsed)
    assert to_e164(number) == phonenumbers.format_number(
        parsed, phonenumbers.PhoneNumberFormat.E164
    )


@pytest.mark.parametrize(
    ("text", "e164"),
    [
        ("+1 650 253 0000", "+16502530000"),
        ("+44 20 7946 0958", "+442079460958"),
        ("02513.685.134", "+842513685134"),  # Đồng Nai police hotline, from the seed notice
        ("+39 06 6982 1234", "+390669821234"),  # Italian leading zero kept
    ],
)
def test_landlines_and_foreign_numbers(text: str, e164: str) -> None:
    assert to_e164(normalize(text)) == e164


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not a phone number"),
        ("hello", "not a phone number"),
        ("113", "not a valid phone number"),
        ("0912", "not a valid phone number"),
        ("+999 123456789", "unknown country calling code"),
        ("0912345678\x00", "control characters"),
        ("0" * 65, "longer than 64"),
    ],
)
def test_invalid_input_says_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason):
        normalize(text)
