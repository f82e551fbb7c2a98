"""The in-memory adapter of the engine's storage port: the same engine without a database.

It keeps what PostgreSQL would (reads, passages, alerts) with the same keys and the same
idempotence — a read stored twice counts once, a passage upserts on (tag, first read,
reader), an alert is stored once per (watch, reader, read time), a retired passage goes only
while one with more reads covers it — and undoes a failed transaction's writes. The accuracy
benchmark and the engine tests drive the real engine through it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from track_engine.core.port import ReadCopy, Recent
from track_engine.core.rows import ReadRows
from track_engine.core.state import AlertDraft
from track_engine.passages import PASSAGE_COLUMNS

_PassageKey = tuple[str, str, int]  # tag_id, reader_id, first_at_us


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What a transaction restores if it fails."""

    read_chunks: int
    passages: dict[_PassageKey, tuple[Any, ...]]
    alerts: int


class MemoryStorage:
    """Reads, passages and alerts in memory (see :class:`EngineStorage`)."""

    def __init__(
        self,
        *,
        watched: pd.DataFrame | None = None,
        antenna_headings: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.watched = (
            watched
            if watched is not None
            else pd.DataFrame(columns=["tag_id", "watch_id", "bike_id", "kind"])
        )
        self.headings = {k: list(v) for k, v in (antenna_headings or {}).items() if len(v) > 1}
        self._read_chunks: list[pd.DataFrame] = []
        self._read_keys: set[tuple[Any, ...]] = set()
        self._passages: dict[_PassageKey, tuple[Any, ...]] = {}
        self._alerts: list[tuple[int, AlertDraft]] = []
        self._alert_keys: set[tuple[int, str, int]] = set()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside the block are undone if it raises (nested blocks: savepoints)."""
        saved = _Snapshot(len(self._read_chunks), dict(self._passages), len(self._alerts))
        self._depth += 1
        try:
            yield
        except BaseException:
            self._undo(saved)
            raise
        finally:
            self._depth -= 1

    def _undo(self, saved: _Snapshot) -> None:
        for chunk in self._read_chunks[saved.read_chunks :]:
            self._read_keys.difference_update(_read_keys(chunk))
        del self._read_chunks[saved.read_chunks :]
        self._passages = saved.passages
        for _, draft in self._alerts[saved.alerts :]:
            self._alert_keys.discard(_alert_key(draft))
        del self._alerts[saved.alerts :]

    def in_transaction(self) -> bool:
        """Whether a transaction block is open."""
        return self._depth > 0

    def watched_tags(self) -> pd.DataFrame:
        """The watch list this storage was given."""
        return self.watched.copy()

    def antenna_headings(self) -> dict[str, list[float]]:
        """The antenna headings this storage was given (readers with two or more)."""
        return {k: list(v) for k, v in self.headings.items()}

    def recent(self, *, back_us: int, reach_us: int) -> Recent:
        """The reads and passages an engine restarting refolds (see the port)."""
        reads = self.reads()
        if reads.empty:
            return Recent(None)
        newest = int(reads["read_at_us"].max())
        since_us = newest - back_us
        stored = [
            (tag, reader, first, row[1], row[4])
            for (tag, reader, first), row in self._passages.items()
            if row[1] >= since_us and first >= since_us - reach_us
        ]
        if stored:
            since_us = min(since_us, min(int(p[2]) for p in stored))
        window = reads[reads["read_at_us"] >= since_us]
        columns = ["tag_id", "read_at_us", "reader_id", "antenna", "rssi_dbm"]
        return Recent(newest, stored, list(window[columns].itertuples(index=False, name=None)))

    def missing_partitions(self, times_us: NDArray[np.int64]) -> bool:
        """Memory needs no partitions."""
        return False

    def ensure_partitions(self, times_us: NDArray[np.int64]) -> int:
        """Memory needs no partitions."""
        return 0

    def forget_partitions(self) -> None:
        """Memory keeps no partition cache."""

    @contextmanager
    def copying_reads(self, rows: ReadRows) -> Iterator[ReadCopy]:
        """Store the reads that are new once the block has run."""
        result = ReadCopy()
        yield result
        if not len(rows):
            return
        names = np.asarray(rows.reader_names, dtype=object)
        frame = pd.DataFrame(
            {
                "tag_id": rows.tag_id,
                "read_at_us": rows.read_at_us,
                "reader_id": names[np.asarray(rows.reader_code)],
                "antenna": rows.antenna,
                "rssi_dbm": np.round(np.asarray(rows.rssi_dbm, dtype=np.float64), 2).astype(
                    np.float32
                ),
            }
        )
        keys = _read_keys(frame)
        new = [k not in self._read_keys for k in keys]
        frame = frame[new] if not all(new) else frame
        # A read repeated within the batch counts once, as the primary key would have it.
        frame = frame.drop_duplicates(["tag_id", "read_at_us", "reader_id", "antenna"])
        self._read_keys.update(_read_keys(frame))
        self._read_chunks.append(frame)
        result.stored = len(frame)

    def store_passages(self, passages: pd.DataFrame) -> int:
        """Upsert closed passages on (tag, first read, reader)."""
        for row in passages[PASSAGE_COLUMNS].itertuples(index=False, name=None):
            tag, reader, first = str(row[0]), str(row[1]), int(row[2])
            self._passages[(tag, reader, first)] = row[2:]
        return len(passages)

    def retire_passages(self, keys: pd.DataFrame) -> int:
        """Remove the keyed passages that a stored one of the same tag and reader with more
        reads covers (as ``tagtrail_retire_passages`` does)."""
        retired = 0
        for tag, reader, first in keys[["tag_id", "reader_id", "first_at_us"]].itertuples(
            index=False, name=None
        ):
            key = (str(tag), str(reader), int(first))
            row = self._passages.get(key)
            if row is not None and self._covered(key, row):
                del self._passages[key]
                retired += 1
        return retired

    def _covered(self, key: _PassageKey, row: tuple[Any, ...]) -> bool:
        tag, reader, first = key
        last, count = row[1], row[4]
        return any(
            t == tag and r == reader and f <= first and other[1] >= last and other[4] > count
            for (t, r, f), other in self._passages.items()
        )

    def insert_alerts(self, drafts: Sequence[AlertDraft]) -> list[int | None]:
        """Store alerts once per (watch, reader, read time); ids count from 1."""
        ids: list[int | None] = []
        for draft in drafts:
            key = _alert_key(draft)
            if key in self._alert_keys:
                ids.append(None)
                continue
            self._alert_keys.add(key)
            alert_id = len(self._alerts) + 1
            self._alerts.append((alert_id, draft))
            ids.append(alert_id)
        return ids

    def reads(self) -> pd.DataFrame:
        """Every stored read: tag_id, read_at_us, reader_id, antenna, rssi_dbm."""
        if not self._read_chunks:
            return pd.DataFrame(
                columns=["tag_id", "read_at_us", "reader_id", "antenna", "rssi_dbm"]
            )
        return pd.concat(self._read_chunks, ignore_index=True)

    def passages(self) -> pd.DataFrame:
        """Every stored passage (the passage columns) in the order of
        :func:`~track_engine.passages.fold_passages`: by tag, closest approach, reader."""
        rows = [(*key, *row[1:]) for key, row in self._passages.items()]
        frame = pd.DataFrame(rows, columns=PASSAGE_COLUMNS)
        return frame.sort_values(
            ["tag_id", "closest_at_us", "reader_id"], ignore_index=True, kind="stable"
        )

    def alerts(self) -> list[tuple[int, AlertDraft]]:
        """Every stored alert with its id."""
        return list(self._alerts)


def _read_keys(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The primary key of each read: (tag_id, read_at_us, reader_id, antenna)."""
    return list(
        zip(
            frame["tag_id"].tolist(),
            frame["read_at_us"].tolist(),
            frame["reader_id"].tolist(),
            frame["antenna"].tolist(),
            strict=True,
        )
    )


def _alert_key(draft: AlertDraft) -> tuple[int, str, int]:
    return (draft.watch_id, draft.reader_id, draft.read_at_us)
