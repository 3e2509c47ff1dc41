"""The rules for client text (service/text.py), tested alone: identifiers."""

from __future__ import annotations

import pytest
from callguard.text import TextError, identifier

SHOWS_AS_NOTHING = [
    "\u034f",  # combining grapheme joiner
    "\ufe0f",  # variation selector 16
    "\u115f",  # Hangul choseong filler
    "\u1160",  # Hangul jungseong filler
    "\u3164",  # Hangul filler
    "\uffa0",  # halfwidth Hangul filler
    "\u2800",  # braille pattern blank
    "\u17b4",  # Khmer vowel inherent aq
    "\u200b",  # zero-width space (a format character)
    "\U000e0001",  # language tag
]


@pytest.mark.parametrize("invisible", SHOWS_AS_NOTHING)
def test_what_shows_as_nothing_is_no_part_of_an_identifier(invisible: str) -> None:
    assert identifier(f"bob{invisible}", "reporter", 100) == "bob"
    assert identifier(f"b{invisible}ob", "reporter", 100) == "bob"
    with pytest.raises(TextError, match="must not be empty"):
        identifier(invisible * 3, "reporter", 100)


def test_visible_text_is_kept_as_written_but_composed() -> None:
    assert identifier(" Nguy\u0065\u0302\u0303n ", "owner", 100) == "Nguy\u1ec5n"
    assert identifier("Công an tỉnh Đồng Nai", "owner", 100) == "Công an tỉnh Đồng Nai"
    with pytest.raises(TextError, match="control character"):
        identifier("a\x07b", "owner", 100)
