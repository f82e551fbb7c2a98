"""Which reads of a wire-valid batch the engine may store, and why the others may not.

The engine trusts no publisher, not even a gateway: a batch published straight on the broker
passes the wire contract's checks and can still carry reads the engine must not store —

- a read time outside the *accepted window* around the engine's own clock (older than
  ``max_age_s``, or more than ``max_ahead_s`` ahead). Storing it would create a partition for
  its day; one batch with reads dated 2000 and 2099 once made the engine create the 36,000
  days between them in one transaction ("out of shared memory", retried for ever). The window
  also bounds how many daily partitions any batch can need;
- a gateway or reader id that would be COPY syntax (control characters, a backslash), empty
  or too long.

Such reads are refused one by one: one reader with a clock in the next century must not keep
its neighbours' reads in the same batch out of the database. The caller quarantines the
message with the reason and counts the refused reads by :class:`Refusal`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from reader_gateway.wire import ReadBatch

# Whatever the window, reads from before 2000 or from 2100 on are a broken clock or forged.
READ_AT_MIN_US = 946_684_800_000_000
READ_AT_MAX_US = 4_102_444_800_000_000
# Ids go into COPY text: a control character, a tab or a backslash would be read as COPY syntax
# (or refused), so a reader id could be stored changed. Gateways never send such ids.
_UNSAFE_ID = re.compile(r"[\x00-\x1f\x7f\\]")
_MAX_ID_CHARS = 128


class Refusal(StrEnum):
    """Why a read was not stored (the ``reason`` label of the quarantine metric)."""

    TOO_OLD = "too_old"
    TOO_FAR_AHEAD = "too_far_ahead"
    BAD_READER_ID = "bad_reader_id"
    BAD_GATEWAY_ID = "bad_gateway_id"
    REFUSED_BY_DATABASE = "refused_by_database"  # passed these checks, refused on storing
    ENGINE_ERROR = "engine_error"  # the engine failed on the batch (a bug), logged with a trace


@dataclass(frozen=True, slots=True)
class ReadWindow:
    """Read times the engine accepts, relative to its own clock (None: no bound that side
    but the fixed 2000–2100)."""

    max_age_s: float | None = 30 * 86_400.0
    max_ahead_s: float | None = 300.0

    def bounds_us(self, now_us: int) -> tuple[int, int]:
        """``[lo, hi)`` of accepted read times (UTC µs) when the engine's clock says ``now_us``."""
        lo, hi = READ_AT_MIN_US, READ_AT_MAX_US
        if self.max_age_s is not None:
            lo = max(lo, now_us - round(self.max_age_s * 1e6))
        if self.max_ahead_s is not None:
            hi = min(hi, now_us + round(self.max_ahead_s * 1e6) + 1)
        return lo, hi


UNBOUNDED = ReadWindow(max_age_s=None, max_ahead_s=None)


@dataclass(frozen=True, slots=True)
class Screened:
    """A batch after screening: the storable reads (None: none), the reason the others were
    refused (None: none was) and how many reads were refused for each :class:`Refusal`."""

    batch: ReadBatch | None
    problem: str | None = None
    refused: dict[Refusal, int] = field(default_factory=dict)


def unsafe_id(name: str) -> bool:
    """True when ``name`` is empty, too long or holds a control character or backslash."""
    return not name or len(name) > _MAX_ID_CHARS or _UNSAFE_ID.search(name) is not None


def _all_safe_ids(names: tuple[str, ...]) -> bool:
    """True when no name is empty, too long or unsafe (one pass, no per-name regex)."""
    if not names or min(map(len, names)) == 0 or max(map(len, names)) > _MAX_ID_CHARS:
        return not names
    return _UNSAFE_ID.search("".join(names)) is None


def screen(batch: ReadBatch, *, window: ReadWindow, now_us: int) -> Screened:
    """Split a wire-valid batch into the reads that may be stored and the refused ones.

    A read gets one reason, the first that applies: too old, too far ahead, bad reader id.
    Vectorised: no per-read Python loop (a batch may hold a million reads).
    """
    n = len(batch)
    if unsafe_id(batch.gateway_id):
        reason = f"gateway id {batch.gateway_id[:40]!r} is empty, too long or unsafe"
        return Screened(None, f"{reason} ({n} of {n} reads not stored)",
                        {Refusal.BAD_GATEWAY_ID: n} if n else {})  # fmt: skip
    lo, hi = window.bounds_us(now_us)
    too_old = batch.read_at_us < lo
    ahead = batch.read_at_us >= hi
    if _all_safe_ids(batch.readers):  # the usual case, in one regex over all of them
        bad_readers = np.zeros(len(batch.readers), dtype=bool)
    else:
        bad_readers = np.array([unsafe_id(r) for r in batch.readers], dtype=bool)
    bad_reader = bad_readers[batch.reader] & ~too_old & ~ahead
    bad = too_old | ahead | bad_reader
    if not bad.any():
        return Screened(batch)
    counts = {
        Refusal.TOO_OLD: int(too_old.sum()),
        Refusal.TOO_FAR_AHEAD: int(ahead.sum()),
        Refusal.BAD_READER_ID: int(bad_reader.sum()),
    }
    refused = {why: count for why, count in counts.items() if count}
    reasons = []
    if too_old.any():
        reasons.append(f"{refused[Refusal.TOO_OLD]} reads older than {_utc(lo)}")
    if ahead.any():
        reasons.append(f"{refused[Refusal.TOO_FAR_AHEAD]} reads at or after {_utc(hi)}")
    if bad_reader.any():
        names = [r[:40] for r, b in zip(batch.readers, bad_readers, strict=True) if b]
        reasons.append(f"reader ids empty, too long or with control characters: {names!r}")
    reason = (
        "; ".join(reasons)
        + f" (engine clock {_utc(now_us)}; {int(bad.sum())} of {n} reads not stored)"
    )
    if bad.all():
        return Screened(None, reason, refused)
    keep = ~bad
    readers, reader = batch.readers, batch.reader[keep]
    if bad_readers.any():
        # The refused ids leave the batch's reader list too: the engine would otherwise learn
        # them as names, and one with a NUL in it made every later COPY fail (found by the
        # batch fuzzer: the worker stopped on CopyValueError).
        good = np.flatnonzero(~bad_readers)
        renumber = np.full(len(readers), -1, dtype=np.int32)
        renumber[good] = np.arange(len(good), dtype=np.int32)
        readers, reader = tuple(readers[i] for i in good.tolist()), renumber[reader]
    kept = replace(
        batch,
        readers=readers,
        reader=reader,
        antenna=batch.antenna[keep],
        tag=batch.tag[keep],
        rssi_dbm=batch.rssi_dbm[keep],
        read_at_us=batch.read_at_us[keep],
        seq=batch.seq[keep],
    )
    return Screened(kept, reason, refused)


def _utc(us: int) -> str:
    """A time for a human reading the quarantine reason (second resolution, UTC)."""
    return str(np.datetime64(us // 1_000_000, "s")) + "Z"
