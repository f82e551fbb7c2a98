"""What normalization refuses, and why: reads naming a reader the transport may not speak for
(``reader_id_mismatch``) and reads outside the accepted read window (``read_at_out_of_window``).

The checks are pure: each takes reads (a list of :class:`TagRead` or a :class:`ReadBlock`) and
returns the reads it lets through plus a :class:`Refusal` for the rest, which
:class:`~reader_gateway.pipeline.normalize.Normalizer` counts and hands to the transport.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from reader_gateway.protocols.base import ReadBlock, TagRead

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Why a read was refused by normalization (the reject reasons it adds to the decoders' own).
REFUSED_FOREIGN_READER = "reader_id_mismatch"
REFUSED_OUT_OF_WINDOW = "read_at_out_of_window"


@dataclass(frozen=True, slots=True)
class ReadWindow:
    """Read times the gateway accepts: at most ``max_age_s`` before and ``max_lead_s`` after
    the time the gateway received the read (its own clock), after clock correction."""

    max_age_s: float
    max_lead_s: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Reads normalization refused, for the transport to count, log and keep as evidence.

    ``reader_id`` is the reader the transport proves the reads came from (or, with none, the
    reader the reads name); ``detail`` says what was wrong, e.g. which reader a frame named.
    """

    reader_id: str
    reason: str
    reads: int
    detail: str


def drop_foreign(
    reads: Sequence[TagRead], rids: list[str | None], bound: str, may_name: Sequence[str]
) -> tuple[Sequence[TagRead], list[str | None], list[Refusal]]:
    """Refuse the reads naming a reader the transport may not speak for: (the other reads,
    their reader ids, the refusal). ``rids`` are the reads' reader ids after aliases."""
    foreign = _foreign(set(map(str, rids)), bound, may_name)
    if not foreign:
        return reads, rids, []
    own = [rid not in foreign for rid in rids]
    named = sorted({str(r.reader_id) for r, ok in zip(reads, own, strict=True) if not ok})
    refusal = Refusal(
        bound, REFUSED_FOREIGN_READER, own.count(False), _foreign_detail(named, bound)
    )
    return (
        [read for read, ok in zip(reads, own, strict=True) if ok],
        [rid for rid, ok in zip(rids, own, strict=True) if ok],
        [refusal],
    )


def drop_foreign_block(
    block: ReadBlock, names: list[str | None], bound: str, may_name: Sequence[str]
) -> tuple[ReadBlock, list[Refusal]]:
    """:func:`drop_foreign` for a block (``names``: its readers after aliases): the block
    without the refused rows, and the refusal."""
    not_own = _foreign(set(map(str, names)), bound, may_name)
    if not not_own:
        return block, []
    foreign = [k for k, name in enumerate(names) if name in not_own]
    own = ~np.isin(block.reader, foreign)
    named = sorted({block.readers[k] for k in foreign})
    refused = len(block) - int(np.count_nonzero(own))
    if not refused:
        return block, []
    refusal = Refusal(bound, REFUSED_FOREIGN_READER, refused, _foreign_detail(named, bound))
    return _block_rows(block, own), [refusal]


def drop_outside_window(
    reads: Sequence[TagRead],
    names: list[str],
    corrected: list[int],
    window: tuple[int, int] | None,
) -> tuple[Sequence[TagRead], list[str], list[int], list[Refusal]]:
    """Refuse the reads whose corrected time is outside ``window`` (:func:`window_us`): the
    rest, columns aligned, and one refusal per reader."""
    if window is None:
        return reads, names, corrected, []
    lo, hi = window
    inside = [lo <= at_us <= hi for at_us in corrected]
    if all(inside):
        return reads, names, corrected, []
    outside = Counter(rid for rid, ok in zip(names, inside, strict=True) if not ok)
    first = next(at for at, ok in zip(corrected, inside, strict=True) if not ok)
    detail = _window_detail(first, window)
    return (
        [r for r, ok in zip(reads, inside, strict=True) if ok],
        [n for n, ok in zip(names, inside, strict=True) if ok],
        [at for at, ok in zip(corrected, inside, strict=True) if ok],
        [Refusal(rid, REFUSED_OUT_OF_WINDOW, count, detail) for rid, count in outside.items()],
    )


def drop_block_outside_window(
    block: ReadBlock,
    corrected: npt.NDArray[np.int64],
    resolved: list[str],
    window: tuple[int, int] | None,
) -> tuple[ReadBlock, npt.NDArray[np.int64], list[Refusal]]:
    """:func:`drop_outside_window` for a block, its corrected times and its readers' names."""
    if window is None:
        return block, corrected, []
    inside = (corrected >= window[0]) & (corrected <= window[1])
    if inside.all():
        return block, corrected, []
    first = int(corrected[~inside][0])
    outside = np.bincount(block.reader[~inside], minlength=len(resolved)).tolist()
    by_name: Counter[str] = Counter()
    for name, count in zip(resolved, outside, strict=True):
        by_name[name] += count
    detail = _window_detail(first, window)
    refusals = [
        Refusal(name, REFUSED_OUT_OF_WINDOW, count, detail)
        for name, count in by_name.items()
        if count
    ]
    return _block_rows(block, inside), corrected[inside], refusals


def window_us(read_window: ReadWindow | None, received_us: int | None) -> tuple[int, int] | None:
    """The accepted corrected read times around a receive time, or None (no check)."""
    if read_window is None or received_us is None:
        return None
    return (
        received_us - round(read_window.max_age_s * 1e6),
        received_us + round(read_window.max_lead_s * 1e6),
    )


def _foreign(names: set[str], bound: str, may_name: Sequence[str]) -> set[str]:
    """The names (after aliases) a transport bound to ``bound`` may not file reads under."""
    return {
        name
        for name in names
        if name != bound and not any(fnmatch.fnmatchcase(name, p) for p in may_name)
    }


def _foreign_detail(named: Sequence[str], bound: str) -> str:
    shown = ", ".join(repr(name) for name in named[:3]) + (" …" if len(named) > 3 else "")
    return f"the message names reader {shown}, but came from reader {bound!r}"


def _window_detail(read_at_us: int, window: tuple[int, int]) -> str:
    def iso(us: int) -> str:
        try:
            return (EPOCH + timedelta(microseconds=us)).isoformat()
        except OverflowError:
            return f"{us} µs since 1970"

    return f"read at {iso(read_at_us)} (corrected), accepted {iso(window[0])} to {iso(window[1])}"


def _block_rows(block: ReadBlock, rows: npt.NDArray[np.bool_]) -> ReadBlock:
    """The block's reads where ``rows`` is true (reader names kept as they are)."""
    return replace(
        block,
        tag_id=block.tag_id[rows],
        antenna=block.antenna[rows],
        rssi_dbm=block.rssi_dbm[rows],
        read_at_us=block.read_at_us[rows],
        reader=block.reader[rows],
        reader_seq=block.reader_seq[rows],
        tamper=block.tamper[rows],
        low_battery=block.low_battery[rows],
    )
