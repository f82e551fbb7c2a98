"""Normalization of the identifiers people type: plates and frame numbers.

Officers copy plates from theft reports typed on phones in every input method, so the same
plate arrives as ``浙Ｂ·１２３４５``, ``zb 12345`` or ``ZB-12345``; all must find the same bike.
"""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s·・.\-_/\\|,，。]+")
# Characters that people and OCR confuse on stamped frame numbers.
_LOOK_ALIKES = str.maketrans(
    {"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8"}
)


def normalize_plate(plate: str) -> str:
    """Search key of a plate: NFKC (full-width to half-width), upper case, no separators."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", plate)).upper()


def frame_number_key(frame_number: str) -> str:
    """Search key of a frame or motor number: normalized like a plate, look-alikes folded."""
    return normalize_plate(frame_number).translate(_LOOK_ALIKES)
