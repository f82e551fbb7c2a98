"""Plates and frame numbers as people type them."""

from __future__ import annotations

import pytest

from api.registry.bike_search import mask_phone
from track_engine.identifiers import frame_number_key, normalize_plate


@pytest.mark.parametrize("typed", ["浙Ｂ·１２３４５", "浙b 12345", "浙B-12345", " 浙B.12345 "])
def test_plate_variants_share_one_key(typed: str) -> None:
    assert normalize_plate(typed) == "浙B12345"


@pytest.mark.parametrize(
    "typed",
    [
        "\u041c123\u0425",  # Cyrillic М, Х
        "\u039c123\u03a7",  # Greek Μ, Χ
        "M1\u200b23\u2060X",  # zero-width space, word joiner
        "\ufeffM\u00ad123X\u200e",  # BOM, soft hyphen, left-to-right mark
        "\U0001d40c123\U0001d417",  # mathematical bold M, X
        "M\u2800123\ufe0fX",  # braille blank, variation selector
        "\u043c123\u0445",  # Cyrillic small м, х
    ],
)
def test_look_alikes_and_invisible_characters_share_the_latin_key(typed: str) -> None:
    assert normalize_plate(typed) == "M123X"
    assert frame_number_key(typed) == frame_number_key("M123X")


def test_chinese_characters_are_left_alone() -> None:
    assert normalize_plate("浙\u200bВ·12345") == "浙B12345"  # Cyrillic В


def test_frame_number_look_alikes() -> None:
    assert frame_number_key("LO1-2345I") == frame_number_key("10I2345 1") == "1012345" + "1"


def test_phone_masked() -> None:
    assert mask_phone("13812345678") == "138******78"
    assert "1234" not in mask_phone("13812345678")
