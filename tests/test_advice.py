"""Advice for the person being called: every category covered, Accept-Language picks vi or en."""

from __future__ import annotations

import pytest
from callguard.advice import ADVICE, LANGUAGES, WHERE_TO_REPORT, advice_for, pick_language
from callguard.categories import CATEGORIES, CATEGORY_IDS
from hypothesis import given
from hypothesis import strategies as st


def test_every_category_has_advice_and_nothing_else_does() -> None:
    assert set(ADVICE) == CATEGORY_IDS


@pytest.mark.parametrize("category", sorted(CATEGORY_IDS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_category_has_text_in_every_language(category: str, language: str) -> None:
    text = ADVICE[category].in_language(language)
    assert text.strip()
    assert text == text.strip()


def test_vietnamese_and_english_texts_differ() -> None:
    for advice in (*ADVICE.values(), WHERE_TO_REPORT):
        assert advice.vi != advice.en


def test_vietnamese_texts_have_diacritics() -> None:
    for advice in (*ADVICE.values(), WHERE_TO_REPORT):
        assert any(not char.isascii() for char in advice.vi), advice.vi


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "vi"),
        ("", "vi"),
        ("   ", "vi"),
        ("en", "en"),
        ("vi", "vi"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("EN", "en"),
        ("En-gB", "en"),
        ("vi-VN,en;q=0.5", "vi"),
        ("en;q=0.5,vi;q=0.9", "vi"),
        ("en-US,en;q=0.9,vi;q=0.8", "en"),
        ("vi;q=0.8, en-US , en;q=0.9", "en"),
        ("fr", "vi"),
        ("fr, en;q=0.1", "en"),
        ("fr-FR,fr;q=0.9,de;q=0.8", "vi"),
        ("*", "vi"),
        ("fr, *;q=0.5", "vi"),
        ("vi;q=0, *", "en"),
        ("en;q=0", "vi"),
        ("en;q=0, vi;q=0", "vi"),
        ("en;q=0.000", "vi"),
        ("en;q=0.001", "en"),
        ("vi;q=0.5, en;q=0.5", "vi"),
        ("en;q=0.5, vi;q=0.5", "en"),
        ("en;Q=0.5, vi;q=0.4", "en"),
        ("en ; q=0.5 , vi ; q=0.4", "en"),
        ("en;", "en"),
        # One English variant acceptable is enough, whatever another says.
        ("en;q=0, en-GB, vi;q=0.5", "en"),
        (";;;q=abc,,", "vi"),
        ("en;q=abc, vi;q=0.5", "vi"),
        ("en;q=1.5, vi;q=0.5", "vi"),
        ("en;q=-1, vi;q=0.5", "vi"),
        ("en;q=0.12345, vi;q=0.5", "vi"),
        ("en;level=1, vi;q=0.5", "vi"),
        ("en_US, vi;q=0.5", "vi"),
        ("english-language, vi;q=0.5", "vi"),
        ("en-, vi;q=0.5", "vi"),
        ("ên, vi;q=0.5", "vi"),
        (",,,en,,,", "en"),
        ("q=0.9", "vi"),
        ("\x00en", "vi"),
    ],
)
def test_pick_language(header: str | None, expected: str) -> None:
    assert pick_language(header) == expected


def test_pick_language_very_long_headers() -> None:
    assert pick_language("fr;q=0.9, " * 10_000 + "en;q=0.1") == "en"
    assert pick_language("en;q=0.5, " * 10_000 + "vi") == "vi"
    assert pick_language("en-" + "a" * 100_000) == "vi"
    assert pick_language(";" * 100_000 + "," * 100_000) == "vi"
    assert pick_language("en;q=0." + "0" * 100_000 + "1") == "vi"


@given(st.text())
def test_pick_language_always_answers(header: str) -> None:
    assert pick_language(header) in LANGUAGES


@given(
    st.lists(
        st.sampled_from(["en", "EN-us", "vi", "vi-VN", "fr", "*", "", ";", "q=", "0.5", "1", ","]),
    ).map("".join)
)
def test_pick_language_always_answers_for_header_like_text(header: str) -> None:
    assert pick_language(header) in LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_advice_for_keeps_order_and_ends_with_where_to_report(language: str) -> None:
    texts = advice_for(["investment", "account_takeover"], language)
    assert texts == [
        ADVICE["investment"].in_language(language),
        ADVICE["account_takeover"].in_language(language),
        WHERE_TO_REPORT.in_language(language),
    ]


def test_advice_for_gives_each_category_once() -> None:
    texts = advice_for(["online_loan", "other", "online_loan", "other"], "en")
    assert texts == [ADVICE["online_loan"].en, ADVICE["other"].en, WHERE_TO_REPORT.en]


def test_advice_for_skips_unknown_categories() -> None:
    texts = advice_for(["no_such_category", "gift_romance", ""], "vi")
    assert texts == [ADVICE["gift_romance"].vi, WHERE_TO_REPORT.vi]


@pytest.mark.parametrize("language", LANGUAGES)
def test_advice_for_no_categories_still_says_where_to_report(language: str) -> None:
    assert advice_for([], language) == [WHERE_TO_REPORT.in_language(language)]
    assert advice_for(["unknown"], language) == [WHERE_TO_REPORT.in_language(language)]


def test_advice_for_every_category_in_catalogue_order() -> None:
    ids = [category.id for category in CATEGORIES]
    texts = advice_for(ids, "vi")
    assert texts == [*(ADVICE[category_id].vi for category_id in ids), WHERE_TO_REPORT.vi]
    assert len(set(texts)) == len(texts)


def test_advice_for_unsupported_language_falls_back_to_vietnamese() -> None:
    assert advice_for(["investment"], "fr") == advice_for(["investment"], "vi")


def test_advice_for_rejects_a_bare_category_id() -> None:
    with pytest.raises(TypeError):
        advice_for("investment", "vi")


def test_police_advice_says_they_summon_in_writing() -> None:
    text = advice_for(["impersonation_authority"], "vi")[0].lower()
    assert "giấy mời" in text or "giấy triệu tập" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_where_to_report_names_police_and_dong_nai_hotline(language: str) -> None:
    text = advice_for([], language)[-1]
    assert "02513.685.134" in text
    assert "Đồng Nai" in text
    assert "công an nơi gần nhất" in text.lower()
