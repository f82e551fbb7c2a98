"""The engine's processing steps, in order, for one micro-batch of normalized reads.

1. turn wire batches into numeric columns: tags and readers become integer codes
   (:mod:`track_engine.interning`), no per-read Python loop;
2. store the raw reads (COPY, idempotent). While PostgreSQL digests the COPY on the other
   core, the engine does its own work for the micro-batch:
3. find reads of watched tags (alerts do not wait for the passage to close);
4. fold the groups (tag, reader) in which a passage can now close, with the stored passages
   their late reads join (:mod:`track_engine.late_reads`). The other open reads are not
   touched (their passages cannot have closed), so a micro-batch costs what it closes, not
   what is open;
5. insert the alerts and the closed passages (and retire the stored ones a merge replaced).

Between micro-batches, :meth:`Engine.tick` runs the watermark on with the engine's clock, so
that passages close in a quiet city too.

Everything for one micro-batch happens in one transaction — except creating the daily
partitions it needs, done just before in a short transaction of its own
(:meth:`Engine.ensure_partitions`), so that no micro-batch holds partition DDL locks. The
caller acknowledges the MQTT messages only after :meth:`Engine.process` returns, so a crash
redelivers instead of losing.
When the transaction fails (the database went away, or refused a value) the engine's memory
is put back as it was before the micro-batch (:meth:`Engine.micro_batch`), so that the caller
can redo the same messages: passages and alerts of a failed micro-batch are neither lost nor
suppressed as repeats.

Open reads are kept as numeric columns (:class:`OpenReads`, ~26 bytes a read): a city's
peak of 1–2 M open reads is a few tens of MB, and every step above is array arithmetic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from numpy.typing import NDArray
from psycopg.pq import TransactionStatus

from reader_gateway.wire import ReadBatch
from track_engine import late_reads
from track_engine.db import watchlist
from track_engine.db.writer import (
    PartitionKeeper,
    ReadRows,
    copying_reads,
    retire_passages,
    store_passages,
)
from track_engine.interning import Interner
from track_engine.memory import HeldReads, OpenReads
from track_engine.passages import (
    Fold,
    antenna_headings,
    empty_passages,
    fold_coded,
    heading_of_reads,
)

log = logging.getLogger(__name__)

# Folding runs when event time has moved on at least this much since the last fold, so a
# stream of small micro-batches does not pay for a fold each: a passage is stored at most this
# much event time after it closed.
_FOLD_EVERY_US = 2_000_000
# With no reads arriving (Engine.tick) a fold costs next to nothing: fold every half second
# of the wall-time watermark, so that a quiet city's passages are stored within a second.
_TICK_FOLD_EVERY_US = 500_000
# Busy groups (heard within the last gap) are swept for earlier, closed passages this often.
_SWEEP_EVERY_US = 30_000_000
# A fold's temporaries are ~100 bytes a read; larger folds go in pieces of whole groups.
_MAX_FOLD_READS = 1_000_000
# The tag table is compacted (codes of tags with no open read forgotten) when it holds this
# many more tags than are open: bounded memory without rebuilding it on every fold.
_COMPACT_SLACK = 500_000
_AT_US = "timestamptz 'epoch' + %s * interval '1 microsecond'"


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A micro-batch's reads as codes, and the rows its COPY sends (None: no reads)."""

    reads: OpenReads
    rows: ReadRows | None


@dataclass(frozen=True, slots=True)
class _Closing:
    """What a fold decided, before it is written: the passages to store (and the stored ones
    they replace), what stays open, and what stays held for late reads."""

    passages: pd.DataFrame
    retire: pd.DataFrame
    still_open: OpenReads
    held: list[HeldReads]
    folded_at_us: int
    swept_at_us: int


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
        allowed_lateness_s: float = 120.0,
        idle_skew_s: float = 2.0,
    ) -> None:
        self.conn = conn
        self.gap_s = gap_s
        self._gap_us = round(gap_s * 1e6)
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
        # A stored passage takes late reads for this much event time after it closed (a batch
        # the broker redelivers after its ack wait); their reads are held in memory meanwhile.
        self.allowed_lateness_us = round(allowed_lateness_s * 1e6)
        # With no reads, event time runs on with the engine's clock, this much behind it
        # (:meth:`tick`): batches in flight from the gateways are not cut off.
        self.idle_skew_us = round(idle_skew_s * 1e6)
        # At most this many reads are folded in one piece (bounds a fold's temporaries).
        self.max_fold_reads = _MAX_FOLD_READS
        self.partitions = PartitionKeeper()
        self._tags = Interner()
        self._readers = Interner()
        self._open = OpenReads.empty()
        # Reads of micro-batches since the last fold, joined to ``_open`` when it runs: one
        # concatenation per fold instead of one per micro-batch.
        self._fresh: list[OpenReads] = []
        self._folded_at_us = 0  # watermark of the last fold
        self._swept_at_us = 0  # watermark of the last fold that also swept busy groups
        self._watermark_us = 0
        # Newest read time seen, and the wall clock when it was seen: :meth:`tick` runs event
        # time on from there.
        self._anchor_event_us = 0
        self._anchor_wall_us = 0
        # Held reads in chunks, one per fold that stored passages: a fold copies only the chunks
        # its late reads touch, and a chunk is dropped whole once past the allowed lateness.
        self._held: list[HeldReads] = []
        self._last_alert_us: dict[tuple[int, int], int] = {}
        # Watched tags by tag code: watch_id, bike_id, kind per row.
        self._watch = pd.DataFrame(columns=["tag_id", "watch_id", "bike_id", "kind"])
        self._watch_codes = np.zeros(0, np.int64)
        # Direction of travel at two-antenna readers: heading index per (reader code, port).
        self._antenna_direction: dict[str, dict[int, str]] = {}
        self._heading_table = np.full((1, 33), -1, dtype=np.int64)
        self._heading_labels: list[str] = []
        self.refresh_watches()
        self.refresh_readers()
        self._recover_pending()

    @property
    def open_tags(self) -> int:
        """Tags with a passage still open (the engine's per-tag state)."""
        return self._tags.count_distinct(
            np.concatenate([self._open.tag, *(f.tag for f in self._fresh)])
        )

    @property
    def pending_reads(self) -> int:
        """Reads held in memory for open passages."""
        return len(self._open) + sum(len(f) for f in self._fresh)

    @property
    def held_reads(self) -> int:
        """Reads of stored passages held for late reads to join."""
        return sum(len(h) for h in self._held)

    @property
    def watermark_us(self) -> int:
        """Event time up to which the engine has seen everything (UTC µs): the newest read
        time, or later when :meth:`tick` ran it on with the wall clock."""
        return self._watermark_us

    @contextmanager
    def micro_batch(self) -> Iterator[None]:
        """One transaction whose effects on the engine's memory are undone if it fails.

        Nested uses become savepoints. On any exception the open reads, the watermark and
        the alert de-duplication entries are restored, and the partition cache is forgotten
        (partitions created inside the failed transaction were rolled back with it). Codes
        handed out meanwhile stay valid (the interners only grow between compactions).
        """
        saved = (
            self._open,
            self._fresh,
            self._held,
            self._folded_at_us,
            self._swept_at_us,
            self._watermark_us,
            self._anchor_event_us,
            self._anchor_wall_us,
            dict(self._last_alert_us),
        )
        try:
            with self.conn.transaction():
                yield
        except BaseException:
            (
                self._open,
                self._fresh,
                self._held,
                self._folded_at_us,
                self._swept_at_us,
                self._watermark_us,
                self._anchor_event_us,
                self._anchor_wall_us,
                self._last_alert_us,
            ) = saved
            self.partitions = PartitionKeeper()
            raise

    def reconnect(self, conn: psycopg.Connection) -> None:
        """Continue on a new database connection (the old one was lost)."""
        self.conn = conn
        self.partitions = PartitionKeeper()
        self.refresh_watches()  # changes notified while we were away were missed
        self.refresh_readers()

    def refresh_watches(self) -> None:
        """Reload the watch list (called at start and whenever a watch changes)."""
        watch = watchlist.watched_tags(self.conn)
        self.conn.commit()
        self._watch = watch.assign(
            tag_code=self._tags.codes(watch["tag_id"].to_numpy(dtype=object))
            if len(watch)
            else np.zeros(0, np.int64)
        )
        self._watch_codes = np.unique(self._watch["tag_code"].to_numpy(dtype=np.int64))

    def refresh_readers(self) -> None:
        """Reload which way each antenna of a two-antenna reader faces (direction of travel)."""
        rows = self.conn.execute(
            "SELECT reader_id, antenna_headings FROM readers"
            " WHERE cardinality(antenna_headings) > 1"
        ).fetchall()
        self.conn.commit()
        self._antenna_direction = {
            str(reader_id): {port + 1: f"{h:g}" for port, h in enumerate(headings)}
            for reader_id, headings in rows
        }
        self._update_heading_table()

    def _update_heading_table(self) -> None:
        names = self._readers.names(np.arange(len(self._readers)))
        self._heading_table, self._heading_labels = antenna_headings(names, self._antenna_direction)

    def _recover_pending(self) -> None:
        """Reload reads that may belong to passages still open when the last engine stopped,
        or to stored passages late reads may still join.

        Reads are committed before passages are, so after a crash the most recent reads are in
        the database but their passages are not; refolding the last window restores them. The
        window reaches back one gap plus the allowed lateness (and to the first read of any
        stored passage reaching into it, so that none is refolded from half its reads): a
        batch redelivered after the restart then merges into its passage, and one whose reads
        are stored already changes nothing.
        """
        row = self.conn.execute(
            "SELECT (extract(epoch from max(read_at)) * 1000000)::bigint FROM reads"
        ).fetchone()
        self.conn.commit()
        if row is None or row[0] is None:
            return
        since_us = int(row[0]) - 2 * self._gap_us - self.allowed_lateness_us
        # Passages cannot be longer than that beyond max_passage_s (merges add at most the
        # lateness): the bound lets PostgreSQL skip older partitions.
        reach_us = round(self.max_passage_s * 1e6) + self.allowed_lateness_us + 2 * self._gap_us
        stored = self.conn.execute(
            f"""SELECT tag_id, reader_id, (extract(epoch from first_at) * 1000000)::bigint,
                       (extract(epoch from last_at) * 1000000)::bigint, read_count
                FROM passages WHERE last_at >= {_AT_US} AND first_at >= {_AT_US}""",
            (since_us, since_us - reach_us),
        ).fetchall()
        if stored:
            since_us = min(since_us, min(int(r[2]) for r in stored))
        rows = self.conn.execute(
            f"""SELECT tag_id, (extract(epoch from read_at) * 1000000)::bigint, reader_id,
                       antenna, rssi_dbm
                FROM reads WHERE read_at >= {_AT_US}""",
            (since_us,),
        ).fetchall()
        self.conn.commit()
        if rows:
            tag, t_us, reader, antenna, rssi = zip(*rows, strict=True)
            reads = OpenReads(
                self._tags.codes(np.asarray(tag, dtype=object)),
                self._reader_codes(np.asarray(reader, dtype=object)),
                np.asarray(antenna, dtype=np.int16),
                np.asarray(rssi, dtype=np.float32),
                np.asarray(t_us, dtype=np.int64),
            )
            self._open, held = self._split_recovered(reads, stored)
            self._held = [held] if len(held) else []
        newest = int(row[0])
        if self.max_future_us is not None:
            newest = min(newest, self._wall_clock_us() + self.max_future_us)
        self._watermark_us = newest
        self._anchor_event_us, self._anchor_wall_us = newest, self._wall_clock_us()
        log.info(
            "recovered %d recent reads: %d into open passages, %d held with stored passages",
            len(self._open) + self.held_reads,
            len(self._open),
            self.held_reads,
        )

    def _split_recovered(
        self, reads: OpenReads, stored: list[tuple[Any, ...]]
    ) -> tuple[OpenReads, HeldReads]:
        """Recovered reads: those of no stored passage (open at the crash), and those of
        stored passages, held for late reads as if the engine had just stored them (a refold
        with late reads must retire the stored rows it replaces, so it must know them)."""
        if not stored:
            return reads, HeldReads.empty()
        tag, reader, first_us, last_us, count = zip(*stored, strict=True)
        ps = OpenReads(
            self._tags.codes(np.asarray(tag, dtype=object)),
            self._reader_codes(np.asarray(reader, dtype=object)),
            np.zeros(len(stored), np.int16),
            np.zeros(len(stored), np.float32),
            np.asarray(first_us, dtype=np.int64),
        )
        last = np.asarray(last_us, dtype=np.int64)
        of = late_reads.passage_of(
            self._keys(reads), reads.read_at_us, self._keys(ps), ps.read_at_us, last
        )
        held = of >= 0
        return reads.take(~held), HeldReads.of_passages(
            reads.take(held), of[held], ps.read_at_us, last, np.asarray(count, dtype=np.int64)
        )

    def _reader_codes(self, names: NDArray[np.object_] | list[str]) -> NDArray[np.int64]:
        """Codes of reader ids; a wire batch's ``readers`` are distinct, so no factorize."""
        known = len(self._readers)
        if isinstance(names, list):
            codes = self._readers.codes_of_distinct(names)
        else:
            codes = self._readers.codes(names)
        if len(self._readers) != known:  # a reader heard for the first time
            self._update_heading_table()
        return codes

    def prepare(self, batches: Sequence[ReadBatch]) -> PreparedBatch:
        """Code a micro-batch's reads and build its COPY table (memory only, no database).

        Call it outside any transaction: it may compact the tag codes, and a rollback must
        only ever restore open reads coded before it.
        """
        batches = [b for b in batches if len(b)]
        if not batches:
            return PreparedBatch(OpenReads.empty(), None)
        self._compact_tags()
        tags = np.concatenate([b.tag for b in batches])
        reader = np.concatenate([self._reader_codes(list(b.readers))[b.reader] for b in batches])
        gateways, gateway_of_batch = np.unique([b.gateway_id for b in batches], return_inverse=True)
        reads = OpenReads(
            self._tags.codes(tags),
            reader,
            np.concatenate([b.antenna for b in batches]).astype(np.int16, copy=False),
            np.concatenate([b.rssi_dbm for b in batches]).astype(np.float32, copy=False),
            np.concatenate([b.read_at_us for b in batches]).astype(np.int64, copy=False),
        )
        rows = ReadRows(
            tag_id=tags,
            read_at_us=reads.read_at_us,
            reader_code=reads.reader,
            reader_names=self._readers.names(np.arange(len(self._readers))).tolist(),
            antenna=reads.antenna,
            rssi_dbm=reads.rssi_dbm,
            reader_seq=np.concatenate([b.seq for b in batches]),
            gateway_code=np.repeat(gateway_of_batch, [len(b) for b in batches]),
            gateway_names=[str(g) for g in gateways],
        )
        return PreparedBatch(reads, rows)

    def ensure_partitions(self, prepared: PreparedBatch) -> int:
        """Create the daily partitions ``prepared`` needs, in a transaction of their own.

        Call it between transactions, before the micro-batch's: partition DDL locks the
        partitioned table, and inside the micro-batch those locks would be held for as long as
        its COPY and fold take (inside a failed one, lost with it). Only the days that hold a
        read are created, of ``reads`` and of ``passages`` (a passage's first read is one of
        them), so a batch needs at most as many as its read times span days — bounded by the
        read window the consumer screens with. Returns how many days were new to the cache.
        """
        if prepared.rows is None:
            return 0
        times = prepared.rows.read_at_us
        if not (
            self.partitions.missing_days("reads", times)
            or self.partitions.missing_days("passages", times)
        ):
            return 0
        with self.conn.transaction():
            created = self.partitions.ensure(self.conn, "reads", times)
            self.partitions.ensure(self.conn, "passages", times)
        return created

    def raise_alerts(self, prepared: PreparedBatch) -> list[Alert]:
        """Store the alerts for watched tags in ``prepared``, in a transaction of their own.

        The engine shell calls this before :meth:`process` so that an alert is committed (and
        pushed to the live clients) without waiting for the reads' COPY and the fold. If the
        micro-batch is then redone, the alerts are not raised twice (de-duplication, and the
        alert key in the database).
        """
        with self.micro_batch():
            return self._raise_alerts(self._watch_hits(prepared.reads))

    def process(
        self, batches: Sequence[ReadBatch] | PreparedBatch, *, alerts: bool = True
    ) -> ProcessResult:
        """Store, alert (unless ``alerts`` is false: raised already) and fold one micro-batch,
        in one transaction."""
        prepared = batches if isinstance(batches, PreparedBatch) else self.prepare(batches)
        reads, rows = prepared.reads, prepared.rows
        result = ProcessResult(reads_received=len(reads))
        if rows is None:
            return result
        if self.conn.info.transaction_status == TransactionStatus.IDLE:
            self.ensure_partitions(prepared)  # else the caller did (or it runs inside)
        with self.micro_batch():
            self._fresh = [*self._fresh, reads]  # a new list: rollback keeps the old
            newest = self._event_time_us(reads.read_at_us)
            if newest > self._anchor_event_us:
                self._anchor_event_us, self._anchor_wall_us = newest, self._wall_clock_us()
            self._watermark_us = max(self._watermark_us, newest)
            with copying_reads(self.conn, rows, partitions=self.partitions) as copied:
                # PostgreSQL is taking the COPY on the other core; meanwhile, in memory:
                hits = self._watch_hits(reads) if alerts else pd.DataFrame()
                closing = self._fold_due(self._watermark_us)
            result.reads_stored = copied.stored
            result.alerts = self._raise_alerts(hits)
            result.passages_stored = self._store_closing(closing)
        return result

    def _event_time_us(self, read_at_us: NDArray[np.int64]) -> int:
        """Newest read time of a micro-batch, capped at wall clock + ``max_future_s``."""
        newest = int(read_at_us.max())
        if self.max_future_us is None:
            return newest
        cap = self._wall_clock_us() + self.max_future_us
        if newest <= cap:
            return newest
        future = int((read_at_us > cap).sum())
        self.future_reads += future
        log.warning(
            "%d reads more than %.0f s in the future (reader clock?); watermark held at the cap",
            future,
            self.max_future_us / 1e6,
        )
        return cap

    def flush(self) -> int:
        """Close every open passage (end of a finite run, clean stop); returns passages stored."""
        with self.micro_batch():
            return self._store_closing(self._fold_due(None))

    def tick(self, *, idle: bool = True) -> int:
        """Run event time on with the engine's clock while no read moves it, and store the
        passages that closed; returns how many. The engine shell calls it when idle.

        A passage closes only once the watermark is one gap past its last read; with the
        watermark at the newest read time, the last passages of a quiet city would wait for
        the next read, minutes at night. So the watermark also follows the wall clock from the
        newest read: at most the wall time elapsed since that read arrived, never past the
        wall clock itself, less ``idle_skew_s`` for batches still in flight. Elapsed time,
        not the clock alone, so that a replay of past reads is not closed all at once by a
        pause; the clock as a ceiling, so that a reader whose clock runs ahead does not carry
        the watermark further. A read that arrives after its passage closed is merged into it
        (:mod:`track_engine.late_reads`). An ``idle`` engine folds every half second of that
        watermark (a fold then costs next to nothing); a busy one keeps to its usual 2 s.
        """
        if not self._anchor_wall_us:
            return 0  # no read seen yet
        now = self._wall_clock_us()
        elapsed = self._anchor_event_us + (now - self._anchor_wall_us)
        watermark = max(self._watermark_us, min(elapsed, now) - self.idle_skew_us)
        every_us = _TICK_FOLD_EVERY_US if idle else _FOLD_EVERY_US
        if watermark - self._folded_at_us < every_us:
            self._watermark_us = watermark
            return 0
        with self.micro_batch():
            self._watermark_us = watermark
            return self._store_closing(self._fold_due(watermark, every_us=every_us))

    def _keys(self, reads: OpenReads) -> NDArray[np.int64]:
        """One integer per (tag, reader) group, valid while no reader is added."""
        key: NDArray[np.int64] = reads.tag * (len(self._readers) + 1) + reads.reader
        return key

    def _fold_due(
        self, watermark_us: int | None, *, every_us: int = _FOLD_EVERY_US
    ) -> _Closing | None:
        """Fold the groups in which a passage can close at ``watermark_us`` (None: all), with
        the stored passages their reads may join (late reads).

        Pure computation on the engine's memory, no database: it runs while the COPY is under
        way. Returns None when no fold is due yet.
        """
        if watermark_us is not None and watermark_us - self._folded_at_us < every_us:
            return None  # event time moved on less than that since the last fold
        pending = OpenReads.concat([self._open, *self._fresh])
        folded_at = self._folded_at_us if watermark_us is None else watermark_us
        # Stored passages stay joinable for (at least) the allowed lateness after they closed.
        horizon = folded_at - self._gap_us - self.allowed_lateness_us
        held = [h for h in self._held if int(h.last_at_us.max()) >= horizon]
        none = pd.DataFrame(columns=late_reads.PASSAGE_KEY)
        if not len(pending):
            return _Closing(empty_passages(), none, pending, held, folded_at, self._swept_at_us)
        key = self._keys(pending)
        sweep_at = self._swept_at_us
        if watermark_us is None:
            due = np.ones(len(pending), dtype=bool)
        else:
            due, swept = self._due_reads(key, pending.read_at_us, watermark_us)
            if swept:
                sweep_at = watermark_us
            if not due.any():
                return _Closing(empty_passages(), none, pending, held, folded_at, sweep_at)
        folding = pending.take(due)
        reopened = none
        if held:
            held, back = self._take_touched(held, key[due], folding.read_at_us)
            if len(back):
                folding = OpenReads.concat([folding, back.reads])
                reopened = self._passages_of(back)
        # Groups fold independently: a large fold (every parked tag evicted at once) goes in
        # parts by tag, so that its temporaries stay bounded.
        parts = -(-len(folding) // self.max_fold_reads)
        pieces = (
            [folding]
            if parts <= 1
            else [folding.take(folding.tag % parts == i) for i in range(parts)]
        )
        frames, kept, holding = [], [pending.take(~due)], []
        for piece in pieces:
            frame, still, closed = self._fold_piece(piece, watermark_us)
            frames.append(frame)
            kept.append(still)
            holding.append(closed)
        passages = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        write, retire = late_reads.replacements(passages, reopened)
        closed = HeldReads.concat(holding)
        if len(closed):
            held = [*held, closed]
        return _Closing(write, retire, OpenReads.concat(kept), held, folded_at, sweep_at)

    def _take_touched(
        self, held: list[HeldReads], due_key: NDArray[np.int64], due_at_us: NDArray[np.int64]
    ) -> tuple[list[HeldReads], HeldReads]:
        """Split the held chunks into what stays held and the passages due reads may join."""
        spans = late_reads.spans(due_key, due_at_us)
        stay, back = [], []
        readers = len(self._readers) + 1
        for chunk in held:
            heads = chunk.head
            touched = late_reads.touched(
                spans,
                chunk.reads.tag[heads] * readers + chunk.reads.reader[heads],
                chunk.first_at_us[heads],
                chunk.last_at_us[heads],
                gap_us=self._gap_us,
            )
            if not touched.any():
                stay.append(chunk)
                continue
            touch = chunk.passage_mask(touched)
            back.append(chunk.take(touch))
            if not touch.all():
                stay.append(chunk.take(~touch))
        return stay, HeldReads.concat(back)

    def _passages_of(self, held: HeldReads) -> pd.DataFrame:
        """The stored passages ``held`` reads belong to: key and read count, one row each."""
        heads = held.head
        return pd.DataFrame(
            {
                "tag_id": self._tags.names(held.reads.tag[heads]),
                "reader_id": self._readers.names(held.reads.reader[heads]),
                "first_at_us": held.first_at_us[heads],
                "read_count": held.read_count[heads],
            }
        )

    def _fold_piece(
        self, folding: OpenReads, watermark_us: int | None
    ) -> tuple[pd.DataFrame, OpenReads, HeldReads]:
        """Fold whole groups; returns the closed passages, the reads still open and the reads
        of closed passages to hold for late reads."""
        fold = fold_coded(
            folding.tag,
            folding.reader,
            folding.antenna,
            folding.rssi_dbm,
            folding.read_at_us,
            gap_us=self._gap_us,
            heading=self._headings_of(folding),
            heading_labels=self._heading_labels,
            drop_repeats=True,
        )
        # Evict what has been open too long: it is stored as it stands, and its reads
        # leave memory (not held for late reads); later reads of the visit start a new passage.
        too_long = (fold.last_at_us - fold.first_at_us) > round(self.max_passage_s * 1e6)
        if watermark_us is None:
            closed = np.ones(len(fold), dtype=bool)
        else:
            closed = ((watermark_us - fold.last_at_us) > self._gap_us) | too_long
        # Of the folded groups, keep the reads of passages still open (repeats: -1) and hold
        # those of passages closed by the gap.
        passage = fold.read_passage
        counted = passage >= 0
        of = np.maximum(passage, 0)
        keep = counted & ~closed[of]
        hold = counted & closed[of] & ~too_long[of]
        held = HeldReads.of_passages(
            folding.take(hold), passage[hold], fold.first_at_us, fold.last_at_us, fold.read_count
        )
        return self._passage_frame(fold, closed), folding.take(keep), held

    def _due_reads(
        self, key: NDArray[np.int64], read_at_us: NDArray[np.int64], watermark_us: int
    ) -> tuple[NDArray[np.bool_], bool]:
        """Which open reads to fold now, and whether this fold sweeps the busy groups too.

        A (tag, reader) group is folded when it is *quiet* (its newest read is older than one
        gap: every passage in it can close) or *too long* (its oldest read is older than
        ``max_passage_s``: evicted). A *busy* group — heard within the last gap, its first read
        older than that — may still hold an earlier passage that closed (the tag left and came
        back); those are folded only every ``_SWEEP_EVERY_US`` of event time. Bikes parked by a
        reader are busy groups: folding them on every fold made each fold cost every parked
        tag's reads (found by the soak: 20k parked tags stopped the engine at 20k reads/s).
        """
        cutoff = watermark_us - self._gap_us
        early = read_at_us < cutoff
        if not early.any():
            return early, False
        # One hash pass gives each read its group's index; spans by ufunc.at on those indices
        # and the answer per read by indexing. A groupby, then np.isin over every pending read,
        # took 2.4x as long (this function was a fifth of the worker's time at full load).
        group, keys = pd.factorize(key, sort=False)
        oldest = np.full(len(keys), np.iinfo(np.int64).max, dtype=np.int64)
        newest = np.full(len(keys), np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(oldest, group, read_at_us)
        np.maximum.at(newest, group, read_at_us)
        quiet = newest < cutoff
        too_long = oldest < watermark_us - round(self.max_passage_s * 1e6)
        due_group = quiet | too_long
        sweep = watermark_us - self._swept_at_us >= _SWEEP_EVERY_US
        if sweep:
            due_group |= oldest < cutoff
        return due_group[group], sweep

    def _headings_of(self, reads: OpenReads) -> NDArray[np.int64] | None:
        if not self._heading_labels:
            return None
        return heading_of_reads(self._heading_table, reads.reader, reads.antenna)

    def _passage_frame(self, fold: Fold, which: NDArray[np.bool_]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "tag_id": self._tags.names(fold.tag[which]),
                "reader_id": self._readers.names(fold.reader[which]),
                "first_at_us": fold.first_at_us[which],
                "last_at_us": fold.last_at_us[which],
                "closest_at_us": fold.closest_at_us[which],
                "peak_rssi_dbm": fold.peak_rssi_dbm[which],
                "read_count": fold.read_count[which],
                "direction": fold.direction[which],
            }
        )

    def _store_closing(self, closing: _Closing | None) -> int:
        """Store a fold's closed passages and keep what stays open (inside the transaction)."""
        if closing is None:
            return 0
        stored = store_passages(self.conn, closing.passages, partitions=self.partitions)
        # After the write: a passage retires only while the one it merged into is stored.
        retire_passages(self.conn, closing.retire)
        self._open = closing.still_open
        self._held = closing.held
        self._fresh = []
        self._folded_at_us = closing.folded_at_us
        self._swept_at_us = closing.swept_at_us
        self._forget_alerts(closing.folded_at_us)
        return stored

    def _compact_tags(self) -> None:
        """Forget the codes of tags with nothing open (bounded memory as tags come and go)."""
        held = self.held_reads + len(self._open) + sum(len(f) for f in self._fresh)
        if len(self._tags) < len(self._watch_codes) + held + _COMPACT_SLACK:
            return
        # The reads of micro-batches not folded yet are in use too: forgotten here, their
        # codes pointed at other tags or past the table (a 1,000,000-read batch, not folded
        # before the next one came, stopped the engine with an IndexError in names()).
        self._open, self._fresh = OpenReads.concat([self._open, *self._fresh]), []
        in_use = np.concatenate(
            [self._open.tag, *(h.reads.tag for h in self._held), self._watch_codes]
        )
        if len(self._tags) - np.unique(in_use).shape[0] < _COMPACT_SLACK:
            return
        remap = self._tags.compact(in_use)
        o = self._open
        self._open = OpenReads(remap[o.tag], o.reader, o.antenna, o.rssi_dbm, o.read_at_us)
        self._held = [
            replace(h, reads=replace(h.reads, tag=remap[h.reads.tag])) for h in self._held
        ]
        self._watch = self._watch.assign(tag_code=remap[self._watch["tag_code"].to_numpy()])
        self._watch_codes = remap[self._watch_codes]
        # Alert de-duplication keys hold watch ids, not tag codes: nothing to remap there.

    def _forget_alerts(self, watermark_us: int) -> None:
        """Drop alert de-duplication entries older than one passage gap: they cannot match."""
        horizon = watermark_us - 2 * self._gap_us
        stale = [k for k, t in self._last_alert_us.items() if t < horizon]
        for key in stale:
            del self._last_alert_us[key]

    def _watch_hits(self, reads: OpenReads) -> pd.DataFrame:
        """Reads of watched tags: the first per (watch, reader) in this micro-batch."""
        if not len(self._watch_codes):
            return pd.DataFrame()
        hit = np.isin(reads.tag, self._watch_codes)
        if not hit.any():
            return pd.DataFrame()
        frame = pd.DataFrame(
            {
                "tag_code": reads.tag[hit],
                "reader_code": reads.reader[hit],
                "read_at_us": reads.read_at_us[hit],
            }
        ).merge(self._watch, on="tag_code")
        # The first read of a watched tag at a reader is the news; later reads of the same
        # visit (within the passage gap) would only repeat it.
        return frame.sort_values("read_at_us", kind="stable").drop_duplicates(
            ["watch_id", "reader_code"]
        )

    def _raise_alerts(self, hits: pd.DataFrame) -> list[Alert]:
        if hits.empty:
            return []
        alerts: list[Alert] = []
        with self.conn.cursor() as cur:
            for hit in hits.to_dict("records"):
                watch_id, reader_code = int(hit["watch_id"]), int(hit["reader_code"])
                reader_id = self._readers.name(reader_code)
                read_at_us = int(hit["read_at_us"])
                key = (watch_id, reader_code)
                previous = self._last_alert_us.get(key)
                self._last_alert_us[key] = read_at_us
                if previous is not None and 0 <= read_at_us - previous <= self._gap_us:
                    continue
                cur.execute(
                    """INSERT INTO alerts (watch_id, tag_id, reader_id, read_at)
                       VALUES (%s, %s, %s, timestamptz 'epoch' + %s * interval '1 microsecond')
                       ON CONFLICT DO NOTHING RETURNING alert_id""",
                    (watch_id, hit["tag_id"], reader_id, read_at_us),
                )
                row = cur.fetchone()
                if row is not None:
                    alerts.append(
                        Alert(
                            alert_id=int(row[0]),
                            watch_id=watch_id,
                            bike_id=int(hit["bike_id"]),
                            kind=str(hit["kind"]),
                            tag_id=str(hit["tag_id"]),
                            reader_id=reader_id,
                            read_at_us=read_at_us,
                        )
                    )
        return alerts
