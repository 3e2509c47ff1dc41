"""Number normalisation: every way a Vietnamese number is written gives one E.164 int."""

from __future__ import annotations

import random
from collections.abc import Callable

import phonenumbers
import pytest
from callguard.e164 import (
    _VALID_NINE,
    InvalidNumber,
    Parsed,
    check_shape,
    normalize,
    nsn_nine_is_valid,
    parse,
    parse_fast,
    parse_slow,
    to_e164,
)
from hypothesis import given, settings
from hypothesis import strategies as st

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
    if parse(text).legacy:  # phonenumbers knows only today's numbers
        assert phonenumbers.national_significant_number(parsed)[:3] in LEGACY
        return
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
        ("0912345678" + " " * 55, "longer than 64"),
    ],
)
def test_invalid_input_says_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidNumber, match=reason):
        normalize(text)


# The fast path against phonenumbers: parse() must give what parse_slow() gives, always.

LEGACY = {"162": "32", "163": "33", "164": "34", "165": "35", "166": "36", "167": "37",
          "168": "38", "169": "39", "120": "70", "121": "79", "122": "77", "126": "76",
          "128": "78", "123": "83", "124": "84", "125": "85", "127": "81", "129": "82",
          "186": "56", "188": "58", "199": "59"}  # fmt: skip
"""The 2018 renumbering, written out here apart from the service's own table."""

# Leading NSN digits that reach every kind of VN number and the edges of its patterns:
# mobiles, landlines, toll-free, premium, VoIP, UAN, short codes, legacy mobiles, country
# codes and trunk zeros where an NSN should start.
NSN_PREFIXES = [*MOBILE_PREFIXES, *LEGACY, "2", "20", "203", "24", "28", "251", "299", "1800",
                "1900", "120", "1201", "1203", "1228", "1210", "1213", "1214", "140", "160",
                "672", "69", "199", "799", "89", "896", "99", "992", "52", "528", "559", "7",
                "1", "0", "00", "84", "840", "8484", "1650", "44"]  # fmt: skip
IN_FRONT = ["+84", "84", "0", "0084", "+", "", "+840", "840", "00", "000", "0840", "(+84)",
            "8", "+8", "+0"]  # fmt: skip
IN_FRONT_ABROAD = [
    prefix + str(code)
    for code in [*phonenumbers.COUNTRY_CODE_TO_REGION_CODE, 80, 85, 999]  # and unassigned ones
    for prefix in ("+", "00")
]
SEPARATORS = [" ", ".", "-", "(", ")", "  ", ". ", ") ", "+", "/", "x", "#", "\u00a0", "\uff0d"]


def result(parser: Callable[[str], Parsed], text: str) -> Parsed | str:
    """A Parsed, or the reason the text was refused."""
    try:
        return parser(text)
    except InvalidNumber as err:
        return f"invalid: {err}"


def assert_same(text: str) -> None:
    assert result(parse, text) == result(parse_slow, text), text


def digits(length: int) -> st.SearchStrategy[str]:
    """Random digits: Hypothesis' text leans to repeats, integers spread over the range."""
    spread = st.integers(0, 10**length - 1).map(lambda number: f"{number:0{length}d}")
    return st.text("0123456789", min_size=length, max_size=length) | spread


@st.composite
def realistic(draw: st.DrawFn) -> str:
    """Digits as people and switches write them: a prefix, an NSN, separators here and there."""
    # Half the lengths are those of today's mobiles and landlines and of legacy mobiles.
    length = draw(st.integers(7, 14) | st.sampled_from([9, 10]))
    head = draw(st.sampled_from(NSN_PREFIXES))[:length]
    number = head + draw(digits(length - len(head)))
    # Mostly the forms the fast path takes, then odd ones, then other countries' prefixes.
    kind = draw(st.integers(0, 5))
    in_front = [IN_FRONT[:6]] * 4 + [IN_FRONT, IN_FRONT_ABROAD]
    text = draw(st.sampled_from(in_front[kind])) + number
    if draw(st.booleans()):
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(text)))
            separator = draw(st.sampled_from(SEPARATORS[:5]) | st.sampled_from(SEPARATORS))
            text = text[:at] + separator + text[at:]
    return text


@pytest.mark.slow  # 3,000 examples
@settings(max_examples=3000)
@given(realistic())
def test_parse_equals_phonenumbers_on_realistic_input(text: str) -> None:
    assert_same(text)


@settings(max_examples=1000)
@given(st.text("0123456789+ .-()", max_size=20))
def test_parse_equals_phonenumbers_on_the_fast_path_alphabet(text: str) -> None:
    assert_same(text)


@settings(max_examples=500)
@given(st.text(max_size=40))
def test_parse_equals_phonenumbers_on_any_text(text: str) -> None:
    assert_same(text)


@pytest.mark.parametrize("lead", ["+84", "0"])
def test_normalize_of_every_nine_digit_shape_equals_phonenumbers(lead: str) -> None:
    # normalize's own branch for +84 or a trunk 0 and 9 digits, against phonenumbers, for
    # every 3-digit prefix.
    rng = random.Random(9)
    for prefix in range(1000):
        for _ in range(3):
            text = f"{lead}{prefix:03d}" + "".join(rng.choices("0123456789", k=6))
            try:
                expected: int | InvalidNumber = parse_slow(text).number
            except InvalidNumber as err:
                expected = err
            try:
                assert normalize(text) == expected, text
            except InvalidNumber:
                assert isinstance(expected, InvalidNumber), text


@given(st.from_regex(r"[1-9][0-9]{8}", fullmatch=True))
def test_the_nine_digit_prefix_table_equals_the_regex(nsn: str) -> None:
    assert nsn_nine_is_valid(nsn) == (_VALID_NINE.fullmatch(nsn) is not None)


def test_the_nine_digit_prefix_table_equals_the_regex_for_every_prefix() -> None:
    rng = random.Random(4)
    for head in range(1000, 10_000):
        for _ in range(20):
            nsn = f"{head}{rng.randrange(100_000):05d}"
            assert nsn_nine_is_valid(nsn) == (_VALID_NINE.fullmatch(nsn) is not None), nsn


def test_parse_equals_phonenumbers_for_every_three_digit_prefix() -> None:
    rng = random.Random(84)
    for prefix in range(100, 1000):
        for length in (7, 8, 9, 10, 11):
            nsn = str(prefix) + "".join(rng.choices("0123456789", k=length - 3))
            for in_front in ("+84", "84", "0", "0084", ""):
                assert_same(in_front + nsn)


@pytest.mark.parametrize(("old", "new"), sorted(LEGACY.items()))
def test_every_legacy_prefix_maps_in_every_form(old: str, new: str) -> None:
    expected = Parsed(int("84" + new + "1234567"), legacy=True)
    national = "0" + old + "1234567"
    forms = [
        national,
        f"0{old} 123 4567",
        f"0{old}.123.4567",
        "+84" + old + "1234567",
        f"+84 {old} 123 4567",
        f"(+84) {old}-123-4567",
        "84" + old + "1234567",
        "0084" + old + "1234567",
        f"tel:+84-{old}-123-4567",
        national.translate(str.maketrans("0123456789", "０１２３４５６７８９")),  # noqa: RUF001
    ]
    for form in forms:
        assert parse(form) == expected, form
        assert parse_slow(form) == expected, form
        assert normalize(form) == expected.number, form


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0162 123 4567", 84321234567),
        ("+84 1201234567", 84701234567),
        ("841991234567", 84591234567),
        ("01881234567", 84581234567),
        ("0129-123-4567", 84821234567),
    ],
)
def test_legacy_examples(text: str, number: int) -> None:
    assert parse(text) == Parsed(number, legacy=True)


@pytest.mark.parametrize(
    "text", ["0321234567", "+84321234567", "0912345678", "02513685134", "+16502530000"]
)
def test_todays_numbers_are_not_legacy(text: str) -> None:
    assert parse(text).legacy is False


@pytest.mark.parametrize("text", ["01301234567", "+84 130 123 4567", "01001234567", "01801234567"])
def test_eleven_digits_without_a_legacy_prefix_are_invalid(text: str) -> None:
    with pytest.raises(InvalidNumber, match="not a valid phone number"):
        parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "+84912345678",
        "84912345678",
        "0912345678",
        "0084912345678",
        "+84 912 345 678",
        "(+84) 912.345.678",
        "091-234-5678",
        "(091) 234 5678",
        "024 3825 1234",
        "01621234567",
        "+84 162 123 4567",
    ],
)
def test_the_common_shapes_take_the_fast_path(text: str) -> None:
    fast = parse_fast(text)
    assert fast is not None
    assert fast == parse_slow(text)


@pytest.mark.parametrize("text", ["+1 650 253 0000", "tel:+84912345678", "+840912345678"])
def test_other_shapes_fall_back(text: str) -> None:
    assert parse_fast(text) is None
    assert parse(text) == parse_slow(text)


FULL_WIDTH = str.maketrans("0123456789-", "０１２３４５６７８９－")  # noqa: RUF001


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # The crafted mixes, and their kin: phonenumbers took hundreds of µs on each.
        ("pplgv519k4Zn33Yokd8reil0edgpjupvCtg1tstxrXdCnYrab AtzmXx1d7n2Zs4", "letters"),
        ("(0912) 345-678 / 0987\u00a0654 321 / 0933 333 333", "digits"),
        ("0912 345 678 \u2603", "characters no phone number"),
        ("+84 912 345 678 <script>", "characters no phone number"),
    ],
)
def test_what_cannot_be_a_number_is_refused_before_phonenumbers(text: str, reason: str) -> None:
    for form in (text, text.translate(FULL_WIDTH)):
        with pytest.raises(InvalidNumber, match=reason):
            check_shape(form)
        with pytest.raises(InvalidNumber, match=reason):
            normalize(form)
