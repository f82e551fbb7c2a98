"""Normalization of the identifiers people type: plates and frame numbers.

Officers copy plates from theft reports typed on phones in every input method, so the same
plate arrives as ``浙Ｂ·１２３４５``, ``zb 12345`` or ``ZB-12345``; all must find the same bike.
A thief (or a sloppy form) may also hide a zero-width space in a frame number, or type the
Cyrillic ``М123Х`` for the Latin ``M123X``: the search key is the same for all of them.

This module is the one place where plates and frame numbers become search keys; the
registration, the stolen-frame check, every lookup and migration 0065 (which re-keys what was
stored before) all call it. The steps, in order:

1. Unicode NFKC (full-width to half-width, compatibility forms such as ``𝐌`` to ``M``);
2. invisible characters removed (format characters such as U+200B ZERO WIDTH SPACE, U+2060
   WORD JOINER, U+FEFF, U+00AD SOFT HYPHEN, bidi controls; controls; the other
   default-ignorable code points: variation selectors, the Hangul fillers, U+034F);
3. separators removed (spaces of any width, ``·``, ``-``, ``.`` ...), upper case;
4. a non-ASCII letter that looks like one Latin letter or digit becomes it (Cyrillic ``М``
   to ``M``, Greek ``Χ`` to ``X``, Cyrillic ``З`` to ``3``), from the Unicode confusables
   data (UTS #39 ``confusables.txt``) as shipped by the ``confusable-homoglyphs`` package.
   ASCII characters and Chinese characters (``浙``) are left as they are.

Frame numbers then also fold the look-alikes of stamped metal (``O`` to ``0``, ``I`` to ``1``).
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Spaces of any width (and the braille blank, which looks like one), dots, dashes, slashes.
_SEPARATORS = re.compile(r"[\s\u2800·・.\-_/\\|,，。]+")
# Characters that people and OCR confuse on stamped frame numbers.
_LOOK_ALIKES = str.maketrans(
    {"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8"}
)
# Default_Ignorable_Code_Point characters that are not of category Cf (those are removed by
# category): combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian
# variation selectors, variation selectors (and their supplement).
_IGNORABLE = (
    frozenset(
        (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164, 0xFFA0)
    )
    | frozenset(range(0xFE00, 0xFE10))
    | frozenset(range(0xE0100, 0xE01F0))
)
_LATIN_OR_DIGIT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _invisible(char: str) -> bool:
    return unicodedata.category(char) in ("Cf", "Cc") or ord(char) in _IGNORABLE


def remove_invisible(text: str) -> str:
    """``text`` without format, control and other default-ignorable characters (zero-width
    spaces and joiners, soft hyphens, bidi marks, variation selectors)."""
    return "".join(ch for ch in text if not _invisible(ch))


@functools.cache
def _confusable_table() -> dict[int, str]:
    """Each non-ASCII character that looks like exactly one ASCII letter or digit, mapped to
    it in upper case (``str.translate`` table), built once on first use."""
    # Imported here: the package loads its 0.9 MB data file when imported.
    from confusable_homoglyphs import confusables

    table: dict[int, str] = {}
    for char, homoglyphs in confusables.confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        targets = {
            # In UTS #39 the prototype of I (and 1, |) is the small l: as a capital it is I.
            "I" if glyph["c"] == "l" else glyph["c"].upper()
            for glyph in homoglyphs
            if len(glyph["c"]) == 1 and glyph["c"].isascii()
        } & _LATIN_OR_DIGIT
        if len(targets) == 1:
            table[ord(char)] = targets.pop()
    return table


def confusable_characters() -> frozenset[int]:
    """Code points that :func:`normalize_plate` maps to a Latin letter or digit."""
    return frozenset(_confusable_table())


def normalize_plate(plate: str) -> str:
    """Search key of a plate: NFKC (full-width to half-width), invisible characters and
    separators removed, upper case, look-alike letters of other scripts as Latin."""
    key = _SEPARATORS.sub("", remove_invisible(unicodedata.normalize("NFKC", plate))).upper()
    return key if key.isascii() else key.translate(_confusable_table())


def frame_number_key(frame_number: str) -> str:
    """Search key of a frame or motor number: normalized like a plate, look-alikes folded."""
    return normalize_plate(frame_number).translate(_LOOK_ALIKES)
