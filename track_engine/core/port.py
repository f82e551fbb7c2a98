"""The storage port: everything the engine core asks of its storage, and nothing more.

The core (:mod:`track_engine.core`) depends on this protocol only; an adapter implements it
(:class:`~track_engine.storage.postgres.PostgresStorage`,
:class:`~track_engine.storage.memory.MemoryStorage`). Times are UTC microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.core.rows import ReadRows
from track_engine.core.state import AlertDraft


@dataclass(slots=True)
class ReadCopy:
    """How a :meth:`EngineStorage.copying_reads` block ended: how many reads were new."""

    stored: int = 0


@dataclass(frozen=True, slots=True)
class Recent:
    """What an engine restarting needs back (:meth:`EngineStorage.recent`).

    ``newest_read_us``: the newest stored read (None: no read stored). ``passages``: stored
    passages late reads may still join, as (tag_id, reader_id, first_at_us, last_at_us,
    read_count). ``reads``: the stored reads of that window, as (tag_id, read_at_us,
    reader_id, antenna, rssi_dbm).
    """

    newest_read_us: int | None
    passages: list[tuple[Any, ...]] = field(default_factory=list)
    reads: list[tuple[Any, ...]] = field(default_factory=list)


class EngineStorage(Protocol):
    """What the engine core stores and loads. Writes happen inside :meth:`transaction`."""

    def transaction(self) -> AbstractContextManager[Any]:
        """All or nothing: a block whose writes are undone if it raises (nested: savepoint)."""
        ...

    def in_transaction(self) -> bool:
        """Whether a transaction is open (then partitions are the caller's business)."""
        ...

    def watched_tags(self) -> pd.DataFrame:
        """Tags under an open watch: tag_id, watch_id, bike_id, kind."""
        ...

    def antenna_headings(self) -> dict[str, list[float]]:
        """Degrees each antenna faces, per reader with more than one antenna."""
        ...

    def recent(self, *, back_us: int, reach_us: int) -> Recent:
        """The reads of the last ``back_us`` before the newest read, and the stored passages
        ending in that window (starting at most ``reach_us`` before it); the window reaches
        back to the first read of any such passage, so none comes back with half its reads."""
        ...

    def missing_partitions(self, times_us: NDArray[np.int64]) -> bool:
        """Whether reads or passages at ``times_us`` need partitions not known to exist."""
        ...

    def ensure_partitions(self, times_us: NDArray[np.int64]) -> int:
        """Create the partitions reads and passages at ``times_us`` need, in a transaction of
        their own; returns how many days were new."""
        ...

    def forget_partitions(self) -> None:
        """Forget which partitions exist (a failed transaction may have rolled some back)."""
        ...

    def copying_reads(self, rows: ReadRows) -> AbstractContextManager[ReadCopy]:
        """Store reads, idempotently; the block runs while storage takes them (it may not use
        storage itself). ``stored`` counts the reads that were new."""
        ...

    def store_passages(self, passages: pd.DataFrame) -> int:
        """Upsert closed passages (a refolded passage replaces the stored one)."""
        ...

    def retire_passages(self, keys: pd.DataFrame) -> int:
        """Remove stored passages (tag_id, reader_id, first_at_us) that a stored passage with
        more reads now covers; returns how many."""
        ...

    def insert_alerts(self, drafts: Sequence[AlertDraft]) -> list[int | None]:
        """Store alerts; each one's id, or None when the same alert is stored already."""
        ...
