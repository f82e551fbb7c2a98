"""The engine's processing steps, in order, for one micro-batch of normalized reads.

1. turn wire batches into one columnar frame (no per-read Python loop);
2. store the raw reads (COPY, idempotent);
3. raise alerts for watched tags, without waiting for the passage to close;
4. fold the groups (tag, reader) in which a passage can now close, and store the closed
   passages; the other pending reads are not touched (their passages cannot have closed), so
   a micro-batch costs what it closes, not what is pending.

Everything for one micro-batch happens in one transaction; the caller acknowledges the MQTT
messages only after :meth:`Engine.process` returns, so a crash redelivers instead of losing.
When the transaction fails (the database went away, or refused a value) the engine's memory
is put back as it was before the micro-batch (:meth:`Engine.micro_batch`), so that the caller
can redo the same messages: passages and alerts of a failed micro-batch are neither lost nor
suppressed as repeats.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg

from reader_gateway.wire import ReadBatch
from track_engine.db import queries
from track_engine.db.writer import PartitionKeeper, store_passages, store_reads
from track_engine.passages import due_groups, fold_passages, group_keys, split_closed

log = logging.getLogger(__name__)

READ_FRAME_COLUMNS = ["tag_id", "read_at_us", "reader_id", "antenna", "rssi_dbm", "reader_seq"]
_READ_KEY = ["tag_id", "read_at_us", "reader_id", "antenna"]
# Folding runs when event time has moved on at least this much since the last fold, so a
# stream of small micro-batches does not pay for a fold each: a passage is stored at most this
# much event time after it closed.
_FOLD_EVERY_US = 2_000_000


def batches_to_frame(batches: Sequence[ReadBatch]) -> pd.DataFrame:
    """Concatenate wire batches into one frame with READ_FRAME_COLUMNS."""
    if not batches:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in READ_FRAME_COLUMNS})
    return pd.DataFrame(
        {
            "tag_id": np.concatenate([b.tag for b in batches]),
            "read_at_us": np.concatenate([b.read_at_us for b in batches]),
            "reader_id": np.concatenate([b.reader_ids() for b in batches]),
            "antenna": np.concatenate([b.antenna for b in batches]),
            "rssi_dbm": np.concatenate([b.rssi_dbm for b in batches]),
            "reader_seq": np.concatenate([b.seq for b in batches]),
        }
    )


def _keyed(reads: pd.DataFrame) -> pd.DataFrame:
    """Reads with their (tag, reader) group key, which selects the groups to fold."""
    if not len(reads):
        return reads.assign(group_key=np.zeros(0, dtype=np.uint64))
    return reads.assign(group_key=group_keys(reads["tag_id"], reads["reader_id"]))


@dataclass(frozen=True, slots=True)
class Alert:
    """A read of a watched tag."""

    alert_id: int
    watch_id: int
    bike_id: int
    kind: str
    tag_id: str
    reader_id: str
    read_at_us: int


@dataclass(slots=True)
class ProcessResult:
    """What one micro-batch did."""

    reads_received: int = 0
    reads_stored: int = 0
    passages_stored: int = 0
    alerts: list[Alert] = field(default_factory=list)


class Engine:
    """Stateful engine core around one database connection (one worker, one shard set)."""

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        gap_s: float = 10.0,
        max_passage_s: float = 300.0,
        max_future_s: float | None = None,
        wall_clock_us: Callable[[], int] | None = None,
    ) -> None:
        self.conn = conn
        self.gap_s = gap_s
        # A reader whose clock jumps ahead sends reads from the future until the gateway's
        # clock estimate catches up. Event time must not follow them: a watermark minutes
        # ahead would close every open passage at once and split every later visit. With
        # ``max_future_s`` the watermark never passes wall clock + that much (the reads are
        # still stored as they came). None: no cap (replays of past or simulated time).
        self.max_future_us = None if max_future_s is None else round(max_future_s * 1e6)
        self._wall_clock_us = wall_clock_us or (lambda: time.time_ns() // 1000)
        self.future_reads = 0
        # A bike parked beside a reader is heard without a break for hours; its passage is
        # closed after this long so that the reads kept in memory stay bounded.
        self.max_passage_s = max_passage_s
        self.partitions = PartitionKeeper()
        self._pending = _keyed(batches_to_frame([]))
        # Reads of micro-batches since the last fold, joined to ``_pending`` when it runs: one
        # concatenation per fold instead of one per micro-batch.
        self._fresh: list[pd.DataFrame] = []
        self._folded_at_us = 0  # watermark of the last fold
        self._watermark_us = 0
        self._last_alert_us: dict[tuple[int, str], int] = {}
        self._watch = pd.DataFrame(columns=["tag_id", "watch_id", "bike_id", "kind"])
        self.refresh_watches()
        self._recover_pending()

    @property
    def open_tags(self) -> int:
        """Tags with a passage still open (the engine's per-tag state)."""
        tags = [self._pending["tag_id"], *(f["tag_id"] for f in self._fresh)]
        return int(pd.concat(tags, ignore_index=True).nunique())

    @property
    def pending_reads(self) -> int:
        """Reads held in memory for open passages."""
        return len(self._pending) + sum(len(f) for f in self._fresh)

    @property
    def watermark_us(self) -> int:
        """Newest read time seen (event time, UTC µs)."""
        return self._watermark_us

    @contextmanager
    def micro_batch(self) -> Iterator[None]:
        """One transaction whose effects on the engine's memory are undone if it fails.

        Nested uses become savepoints. On any exception the pending reads, the watermark and
        the alert de-duplication entries are restored, and the partition cache is forgotten
        (partitions created inside the failed transaction were rolled back with it).
        """
        saved = (
            self._pending,
            self._fresh,
            self._folded_at_us,
            self._watermark_us,
            dict(self._last_alert_us),
        )
        try:
            with self.conn.transaction():
                yield
        except BaseException:
            (
                self._pending,
                self._fresh,
                self._folded_at_us,
                self._watermark_us,
                self._last_alert_us,
            ) = saved
            self.partitions = PartitionKeeper()
            raise

    def reconnect(self, conn: psycopg.Connection) -> None:
        """Continue on a new database connection (the old one was lost)."""
        self.conn = conn
        self.partitions = PartitionKeeper()
        self.refresh_watches()  # changes notified while we were away were missed

    def refresh_watches(self) -> None:
        """Reload the watch list (called at start and whenever a watch changes)."""
        self._watch = queries.watched_tags(self.conn)
        self.conn.commit()

    def _recover_pending(self) -> None:
        """Reload reads that may belong to passages still open when the last engine stopped.

        Reads are committed before passages are, so after a crash the most recent reads are in
        the database but their passages are not; refolding the last window restores them.
        """
        row = self.conn.execute(
            "SELECT (extract(epoch from max(read_at)) * 1000000)::bigint FROM reads"
        ).fetchone()
        self.conn.commit()
        if row is None or row[0] is None:
            return
        since_us = int(row[0]) - int(4 * self.gap_s * 1e6)
        rows = self.conn.execute(
            """SELECT tag_id, (extract(epoch from read_at) * 1000000)::bigint, reader_id, antenna,
                      rssi_dbm, reader_seq
               FROM reads WHERE read_at >= timestamptz 'epoch' + %s * interval '1 microsecond'""",
            (since_us,),
        ).fetchall()
        self.conn.commit()
        self._pending = _keyed(pd.DataFrame(rows, columns=READ_FRAME_COLUMNS))
        newest = int(row[0])
        if self.max_future_us is not None:
            newest = min(newest, self._wall_clock_us() + self.max_future_us)
        self._watermark_us = newest
        log.info("recovered %d recent reads into open passages", len(self._pending))

    def process(self, batches: Sequence[ReadBatch]) -> ProcessResult:
        """Store, alert and fold one micro-batch in one transaction."""
        reads = batches_to_frame(batches)
        result = ProcessResult(reads_received=len(reads))
        if reads.empty:
            return result
        with self.micro_batch():
            gateway_id = batches[0].gateway_id if len(batches) == 1 else "mixed"
            result.reads_stored = store_reads(
                self.conn, reads, gateway_id=gateway_id, partitions=self.partitions
            )
            result.alerts = self._raise_alerts(reads)
            # Repeats (a redelivered batch) are dropped when their group is folded, not here:
            # de-duplicating every pending read on every micro-batch cost more than the fold.
            self._fresh = [*self._fresh, _keyed(reads)]  # a new list: rollback keeps the old
            self._watermark_us = max(self._watermark_us, self._event_time_us(reads))
            result.passages_stored = self._close_passages(self._watermark_us)
        return result

    def _event_time_us(self, reads: pd.DataFrame) -> int:
        """Newest read time of a micro-batch, capped at wall clock + ``max_future_s``."""
        newest = int(reads["read_at_us"].max())
        if self.max_future_us is None:
            return newest
        cap = self._wall_clock_us() + self.max_future_us
        if newest <= cap:
            return newest
        future = int((reads["read_at_us"] > cap).sum())
        self.future_reads += future
        log.warning(
            "%d reads more than %.0f s in the future (reader clock?); watermark held at the cap",
            future,
            self.max_future_us / 1e6,
        )
        return cap

    def flush(self) -> int:
        """Close every open passage (end of a finite run); returns passages stored."""
        with self.micro_batch():
            return self._close_passages(None)

    def _close_passages(self, watermark_us: int | None) -> int:
        if watermark_us is not None and watermark_us - self._folded_at_us < _FOLD_EVERY_US:
            return 0  # event time moved on less than that since the last fold: nothing is due
        if self._fresh:
            self._pending = pd.concat([self._pending, *self._fresh], ignore_index=True)
            self._fresh = []
        if watermark_us is not None:
            self._folded_at_us = watermark_us
        if self._pending.empty:
            return 0
        pending = self._pending
        if watermark_us is None:
            due = np.ones(len(pending), dtype=bool)
        else:
            due = due_groups(
                pending["group_key"].to_numpy(dtype=np.uint64),
                pending["read_at_us"].to_numpy(dtype=np.int64),
                before_us=watermark_us - round(self.gap_s * 1e6),
            )
            if not due.any():
                self._forget_alerts(watermark_us)
                return 0
        folding = pending[due].drop_duplicates(subset=_READ_KEY)
        rest = pending[~due]
        folded = fold_passages(
            folding[["tag_id", "reader_id", "antenna", "rssi_dbm", "read_at_us"]],
            gap_s=self.gap_s,
        )
        if watermark_us is None:
            closed, still_open = folded, folded.iloc[0:0]
        else:
            closed, still_open = split_closed(folded, watermark_us=watermark_us, gap_s=self.gap_s)
            # Evict what has been open too long: it is stored as it stands, and its reads leave
            # memory; later reads of the same visit start a new passage.
            span_us = still_open["last_at_us"] - still_open["first_at_us"]
            too_long = (span_us > round(self.max_passage_s * 1e6)).to_numpy()
            if too_long.any():
                closed = pd.concat([closed, still_open[too_long]], ignore_index=True)
                still_open = still_open[~too_long].reset_index(drop=True)
        stored = store_passages(self.conn, closed, partitions=self.partitions)
        # Of the folded groups, keep only the reads of passages that are still open.
        keep = folding.merge(
            still_open[["tag_id", "reader_id", "first_at_us"]], on=["tag_id", "reader_id"]
        )
        keep = keep[keep["read_at_us"] >= keep["first_at_us"]].drop(columns="first_at_us")
        self._pending = pd.concat([rest, keep], ignore_index=True)
        if watermark_us is not None:
            self._forget_alerts(watermark_us)
        return stored

    def _forget_alerts(self, watermark_us: int) -> None:
        """Drop alert de-duplication entries older than one passage gap: they cannot match."""
        horizon = watermark_us - int(2 * self.gap_s * 1e6)
        stale = [k for k, t in self._last_alert_us.items() if t < horizon]
        for key in stale:
            del self._last_alert_us[key]

    def _raise_alerts(self, reads: pd.DataFrame) -> list[Alert]:
        if self._watch.empty:
            return []
        hits = reads.merge(self._watch, on="tag_id")
        if hits.empty:
            return []
        # The first read of a watched tag at a reader is the news; later reads of the same visit
        # (within the passage gap) would only repeat it.
        first = hits.sort_values("read_at_us").drop_duplicates(["watch_id", "reader_id"])
        gap_us = int(self.gap_s * 1e6)
        alerts: list[Alert] = []
        with self.conn.cursor() as cur:
            for hit in first.to_dict("records"):
                key = (int(hit["watch_id"]), str(hit["reader_id"]))
                read_at_us = int(hit["read_at_us"])
                previous = self._last_alert_us.get(key)
                self._last_alert_us[key] = read_at_us
                if previous is not None and 0 <= read_at_us - previous <= gap_us:
                    continue
                cur.execute(
                    """INSERT INTO alerts (watch_id, tag_id, reader_id, read_at)
                       VALUES (%s, %s, %s, timestamptz 'epoch' + %s * interval '1 microsecond')
                       ON CONFLICT DO NOTHING RETURNING alert_id""",
                    (key[0], hit["tag_id"], key[1], read_at_us),
                )
                row = cur.fetchone()
                if row is not None:
                    alerts.append(
                        Alert(
                            alert_id=int(row[0]),
                            watch_id=key[0],
                            bike_id=int(hit["bike_id"]),
                            kind=str(hit["kind"]),
                            tag_id=str(hit["tag_id"]),
                            reader_id=key[1],
                            read_at_us=read_at_us,
                        )
                    )
        return alerts
