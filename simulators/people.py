"""Registry-like identities for simulated bikes: tags, plates, frame numbers, owners.

Everything is drawn from a seeded generator; tag ids are canonical (upper-case hex, see
:func:`reader_gateway.wire.canonical_tag_id`) 24-digit EPCs, unique unless a clone is asked for.
"""

from __future__ import annotations

import numpy as np

from reader_gateway.wire import canonical_tag_id

SURNAMES = (
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "徐",
    "孙",
    "马",
    "朱",
    "胡",
    "郭",
)
GIVEN = (
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
)
BRANDS = ("Yadea", "Aima", "Tailg", "Niu", "Sunra", "Luyuan", "Xinri", "Emma")
COLOURS = ("black", "white", "red", "blue", "grey", "silver", "green", "pink", "yellow")
_FRAME_ALPHABET = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"))
_PLATE_FIRST = np.array(list("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"))
EPC_PREFIX = "E28011"  # Impinj-style class-1 gen-2 TID/EPC prefix, as fitted at tagging events


def tag_ids(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct canonical 24-hex-digit EPCs."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        hi = rng.integers(0, 2**36, size=count - len(out))
        lo = rng.integers(0, 2**36, size=count - len(out))
        for h, low in zip(hi, lo, strict=True):
            tag = canonical_tag_id(f"{EPC_PREFIX}{int(h):09X}{int(low):09X}")
            if tag not in seen:
                seen.add(tag)
                out.append(tag)
    return out


ACTIVE_PREFIX = "A7"  # our active tags' 64-bit ids (docs/protocols/tagtrail-active.md)


def active_tag_ids(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` distinct 16-hex-digit ids of active 2.4 GHz tags (``A7`` + 14 digits)."""
    codes = rng.choice(2**56, size=count, replace=False) if count <= 2**20 else None
    if codes is None:  # choice without replacement over 2**56 is fine up to this size
        raise ValueError("at most 1,048,576 active tags per draw")
    return [f"{ACTIVE_PREFIX}{int(c):014X}" for c in codes]


def plates(rng: np.random.Generator, count: int) -> tuple[list[str], list[str]]:
    """Distinct plates: ASCII form (``ZB3A123``-like) and display form (``浙B·3A123``)."""
    space = len(_PLATE_FIRST) * 10_000
    if count > space:
        raise ValueError(f"at most {space} distinct plates")
    codes = rng.choice(space, size=count, replace=False)
    rest = [f"{_PLATE_FIRST[c // 10_000]}{c % 10_000:04d}" for c in codes]
    return [f"ZB{r}" for r in rest], [f"浙B·{r}" for r in rest]


def frame_numbers(rng: np.random.Generator, count: int) -> list[str]:
    """15-character frame (VIN-like) numbers; unique with overwhelming probability."""
    chars = _FRAME_ALPHABET[rng.integers(0, len(_FRAME_ALPHABET), size=(count, 15))]
    return ["".join(row) for row in chars]


def owners(rng: np.random.Generator, count: int) -> tuple[list[str], list[str]]:
    """Owner names and mobile phone numbers."""
    s = rng.integers(0, len(SURNAMES), size=count)
    g = rng.integers(0, len(GIVEN), size=(count, 2))
    two = rng.random(count) < 0.6
    names = [
        SURNAMES[s[k]] + GIVEN[g[k, 0]] + (GIVEN[g[k, 1]] if two[k] else "") for k in range(count)
    ]
    second = rng.choice(np.array([3, 5, 7, 8, 9]), size=count)
    tail = rng.integers(0, 10**9, size=count)
    phones = [f"1{second[k]}{tail[k]:09d}" for k in range(count)]
    return names, phones


def pick(rng: np.random.Generator, options: tuple[str, ...], count: int) -> list[str]:
    """``count`` uniform draws from ``options``."""
    return [options[k] for k in rng.integers(0, len(options), size=count)]
