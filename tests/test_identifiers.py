"""Plates and frame numbers as people type them."""

from __future__ import annotations

import pytest

from track_engine.db.queries import mask_phone
from track_engine.identifiers import frame_number_key, normalize_plate


@pytest.mark.parametrize("typed", ["浙Ｂ·１２３４５", "浙b 12345", "浙B-12345", " 浙B.12345 "])
def test_plate_variants_share_one_key(typed: str) -> None:
    assert normalize_plate(typed) == "浙B12345"


def test_frame_number_look_alikes() -> None:
    assert frame_number_key("LO1-2345I") == frame_number_key("10I2345 1") == "1012345" + "1"


def test_phone_masked() -> None:
    assert mask_phone("13812345678") == "138******78"
    assert "1234" not in mask_phone("13812345678")
