"""The engine's memory as numeric columns: reads of open passages, and reads of stored
passages held for late reads (:mod:`track_engine.late_reads`). Tags and readers are the
engine's integer codes (:mod:`track_engine.interning`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class OpenReads:
    """Reads of passages not yet closed, as numeric columns (tags and readers as codes)."""

    tag: NDArray[np.int64]
    reader: NDArray[np.int64]
    antenna: NDArray[np.int16]
    rssi_dbm: NDArray[np.float32]
    read_at_us: NDArray[np.int64]

    @staticmethod
    def empty() -> OpenReads:
        """No reads."""
        return OpenReads(
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int16),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return int(self.read_at_us.shape[0])

    @staticmethod
    def concat(parts: Sequence[OpenReads]) -> OpenReads:
        """All reads of ``parts``, in order."""
        if len(parts) == 1:
            return parts[0]
        return OpenReads(
            np.concatenate([p.tag for p in parts]),
            np.concatenate([p.reader for p in parts]),
            np.concatenate([p.antenna for p in parts]),
            np.concatenate([p.rssi_dbm for p in parts]),
            np.concatenate([p.read_at_us for p in parts]),
        )

    def take(self, which: NDArray[np.bool_] | NDArray[np.intp]) -> OpenReads:
        """The reads selected by a mask or an index array."""
        return OpenReads(
            self.tag[which],
            self.reader[which],
            self.antenna[which],
            self.rssi_dbm[which],
            self.read_at_us[which],
        )


@dataclass(frozen=True, slots=True)
class HeldReads:
    """Reads of passages stored recently, kept so that late reads can still join them
    (:mod:`track_engine.late_reads`): per read, its passage's first and last read time and
    read count. Each passage's reads are contiguous, the first of them marked ``head``, so
    that work per passage (matching late reads) costs the passages, not their reads."""

    reads: OpenReads
    first_at_us: NDArray[np.int64]
    last_at_us: NDArray[np.int64]
    read_count: NDArray[np.int64]
    head: NDArray[np.bool_]

    @staticmethod
    def empty() -> HeldReads:
        """No reads."""
        none = np.zeros(0, np.int64)
        return HeldReads(OpenReads.empty(), none, none, none, np.zeros(0, dtype=bool))

    @staticmethod
    def of_passages(
        reads: OpenReads,
        passage: NDArray[np.intp],
        first_at_us: NDArray[np.int64],
        last_at_us: NDArray[np.int64],
        read_count: NDArray[np.int64],
    ) -> HeldReads:
        """``reads`` held with their passages (``passage``: index into the per-passage
        arrays), grouped by passage."""
        order = np.argsort(passage, kind="stable")
        p = passage[order]
        head = np.ones(p.shape[0], dtype=bool)
        head[1:] = p[1:] != p[:-1]
        return HeldReads(reads.take(order), first_at_us[p], last_at_us[p], read_count[p], head)

    def __len__(self) -> int:
        return len(self.reads)

    def take(self, which: NDArray[np.bool_]) -> HeldReads:
        """The reads selected by a mask that takes whole passages."""
        return HeldReads(
            self.reads.take(which),
            self.first_at_us[which],
            self.last_at_us[which],
            self.read_count[which],
            self.head[which],
        )

    def passage_mask(self, passages: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """A mask of reads from a mask of passages (in order of their heads)."""
        heads = np.flatnonzero(self.head)
        return np.repeat(passages, np.diff(np.append(heads, len(self))))

    @staticmethod
    def concat(parts: Sequence[HeldReads]) -> HeldReads:
        """All reads of ``parts``, in order."""
        parts = [p for p in parts if len(p)]
        if len(parts) <= 1:
            return parts[0] if parts else HeldReads.empty()
        return HeldReads(
            OpenReads.concat([p.reads for p in parts]),
            np.concatenate([p.first_at_us for p in parts]),
            np.concatenate([p.last_at_us for p in parts]),
            np.concatenate([p.read_count for p in parts]),
            np.concatenate([p.head for p in parts]),
        )
