"""The engine: its state (:class:`EngineState`), its code tables, and the steps that run a
micro-batch, over a storage port.

One micro-batch, in order:

1. turn wire batches into numeric columns: tags and readers become integer codes
   (:mod:`track_engine.interning`), no per-read Python loop (:meth:`Engine.prepare`);
2. store the raw reads (COPY, idempotent). While storage digests them on the other core, the
   engine does its own work for the micro-batch:
3. find reads of watched tags (:mod:`track_engine.core.alerts`; alerts do not wait for the
   passage to close);
4. fold the groups (tag, reader) in which a passage can now close, with the stored passages
   their late reads join (:mod:`track_engine.core.folding`). The other open reads are not
   touched (their passages cannot have closed), so a micro-batch costs what it closes, not
   what is open;
5. insert the alerts and the closed passages (and retire the stored ones a merge replaced).

Between micro-batches, :meth:`Engine.tick` runs the watermark on with the engine's clock, so
that passages close in a quiet city too.

Everything for one micro-batch happens in one storage transaction, except creating the daily
partitions it needs (:meth:`Engine.ensure_partitions`, a short transaction of its own, so
that no micro-batch holds partition DDL locks). When the transaction fails the engine keeps
the state object it had before (:meth:`Engine.micro_batch`), so that the caller can redo the
same messages: passages and alerts of a failed micro-batch are neither lost nor suppressed.

Open reads are kept as numeric columns (:class:`~track_engine.memory.OpenReads`, ~26 bytes a
read): a city's peak of 1–2 M open reads is a few tens of MB, and every step is array
arithmetic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from reader_gateway.wire import ReadBatch
from track_engine.core import alerts as alerting
from track_engine.core import folding
from track_engine.core.coding import Coding
from track_engine.core.port import EngineStorage
from track_engine.core.recovery import recovered_reads
from track_engine.core.rows import ReadRows
from track_engine.core.state import (
    Alert,
    Closing,
    EngineState,
    FoldRules,
    PreparedBatch,
    ProcessResult,
)
from track_engine.memory import OpenReads

log = logging.getLogger(__name__)

# With no reads arriving (Engine.tick) a fold costs next to nothing: fold every half second
# of the wall-time watermark, so that a quiet city's passages are stored within a second.
_TICK_FOLD_EVERY_US = 500_000
# A fold's temporaries are ~100 bytes a read; larger folds go in pieces of whole groups.
_MAX_FOLD_READS = 1_000_000


class Engine:
    """Stateful engine over one storage (one worker, one shard set)."""

    def __init__(
        self,
        storage: EngineStorage,
        *,
        gap_s: float = 10.0,
        max_passage_s: float = 300.0,
        max_future_s: float | None = None,
        wall_clock_us: Callable[[], int] | None = None,
        allowed_lateness_s: float = 120.0,
        idle_skew_s: float = 2.0,
    ) -> None:
        self.storage = storage
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
        self.coding = Coding()
        self.state = EngineState()
        self.refresh_watches()
        self.refresh_readers()
        self._recover_pending()

    @property
    def open_tags(self) -> int:
        """Tags with a passage still open (the engine's per-tag state)."""
        s = self.state
        return self.coding.tags.count_distinct(
            np.concatenate([s.open.tag, *(f.tag for f in s.fresh)])
        )

    @property
    def pending_reads(self) -> int:
        """Reads held in memory for open passages."""
        return self.state.pending_reads

    @property
    def held_reads(self) -> int:
        """Reads of stored passages held for late reads to join."""
        return self.state.held_reads

    @property
    def watermark_us(self) -> int:
        """Event time up to which the engine has seen everything (UTC µs): the newest read
        time, or later when :meth:`tick` ran it on with the wall clock."""
        return self.state.watermark_us

    @property
    def rules(self) -> FoldRules:
        """The settings a fold runs with."""
        return FoldRules(
            gap_us=self._gap_us,
            max_passage_us=round(self.max_passage_s * 1e6),
            allowed_lateness_us=self.allowed_lateness_us,
            max_fold_reads=self.max_fold_reads,
        )

    @contextmanager
    def micro_batch(self) -> Iterator[None]:
        """One storage transaction whose effects on the engine's state are undone if it fails.

        Nested uses become savepoints. On any exception the engine keeps the state object it
        had before, and the partition cache is forgotten (partitions created inside the failed
        transaction were rolled back with it). Codes handed out meanwhile stay valid.
        """
        saved = self.state
        try:
            with self.storage.transaction():
                yield
        except BaseException:
            self.state = saved
            self.storage.forget_partitions()
            raise

    def reconnect(self, storage: EngineStorage) -> None:
        """Continue on a new storage (the old connection was lost)."""
        self.storage = storage
        self.refresh_watches()  # changes notified while we were away were missed
        self.refresh_readers()

    def refresh_watches(self) -> None:
        """Reload the watch list (called at start and whenever a watch changes)."""
        self.coding.set_watches(self.storage.watched_tags())

    def refresh_readers(self) -> None:
        """Reload which way each antenna of a two-antenna reader faces (direction of travel)."""
        self.coding.set_antenna_headings(self.storage.antenna_headings())

    def _recover_pending(self) -> None:
        """Reload reads that may belong to passages still open when the last engine stopped,
        or to stored passages late reads may still join (:mod:`track_engine.core.recovery`).

        The window reaches back one gap plus the allowed lateness (and to the first read of
        any stored passage reaching into it): a batch redelivered after the restart then
        merges into its passage, and one whose reads are stored already changes nothing.
        """
        back_us = 2 * self._gap_us + self.allowed_lateness_us
        # Passages cannot be longer than that beyond max_passage_s (merges add at most the
        # lateness).
        reach_us = round(self.max_passage_s * 1e6) + back_us
        recent = self.storage.recent(back_us=back_us, reach_us=reach_us)
        if recent.newest_read_us is None:
            return
        still_open, held = recovered_reads(self.coding, recent.reads, recent.passages)
        newest = recent.newest_read_us
        if self.max_future_us is not None:
            newest = min(newest, self._wall_clock_us() + self.max_future_us)
        self.state = replace(
            self.state,
            open=still_open,
            held=(held,) if len(held) else (),
            watermark_us=newest,
            anchor_event_us=newest,
            anchor_wall_us=self._wall_clock_us(),
        )
        log.info(
            "recovered %d recent reads: %d into open passages, %d held with stored passages",
            len(still_open) + len(held),
            len(still_open),
            len(held),
        )

    def prepare(self, batches: Sequence[ReadBatch]) -> PreparedBatch:
        """Code a micro-batch's reads and build its COPY table (memory only, no storage).

        Call it outside any transaction: it may compact the tag codes, and a rollback must
        only ever restore open reads coded before it.
        """
        batches = [b for b in batches if len(b)]
        if not batches:
            return PreparedBatch(OpenReads.empty(), None)
        self.state = self.coding.compact(self.state)
        readers = self.coding.readers
        tags = np.concatenate([b.tag for b in batches])
        reader = np.concatenate(
            [self.coding.reader_codes(list(b.readers))[b.reader] for b in batches]
        )
        gateways, gateway_of_batch = np.unique([b.gateway_id for b in batches], return_inverse=True)
        reads = OpenReads(
            self.coding.tags.codes(tags),
            reader,
            np.concatenate([b.antenna for b in batches]).astype(np.int16, copy=False),
            np.concatenate([b.rssi_dbm for b in batches]).astype(np.float32, copy=False),
            np.concatenate([b.read_at_us for b in batches]).astype(np.int64, copy=False),
        )
        rows = ReadRows(
            tag_id=tags,
            read_at_us=reads.read_at_us,
            reader_code=reads.reader,
            reader_names=readers.names(np.arange(len(readers))).tolist(),
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
        them). Returns how many days were new to the cache.
        """
        if prepared.rows is None:
            return 0
        return self.storage.ensure_partitions(prepared.rows.read_at_us)

    def raise_alerts(self, prepared: PreparedBatch) -> list[Alert]:
        """Store the alerts for watched tags in ``prepared``, in a transaction of their own.

        The engine shell calls this before :meth:`process` so that an alert is committed (and
        pushed to the live clients) without waiting for the reads' COPY and the fold. If the
        micro-batch is then redone, the alerts are not raised twice (de-duplication, and the
        alert key in storage).
        """
        with self.micro_batch():
            return self._raise_alerts(alerting.watch_hits(prepared.reads, self.coding))

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
        if not self.storage.in_transaction():
            self.ensure_partitions(prepared)  # else the caller did (or it runs inside)
        with self.micro_batch():
            newest = self._event_time_us(reads.read_at_us)
            self.state = self.state.with_reads(reads, newest, self._wall_clock_us())
            with self.storage.copying_reads(rows) as copied:
                # Storage is taking the reads on the other core; meanwhile, in memory:
                hits = alerting.watch_hits(reads, self.coding) if alerts else pd.DataFrame()
                closing = folding.fold_due(self.state, self.coding, self.rules, self.watermark_us)
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
            return self._store_closing(folding.fold_due(self.state, self.coding, self.rules, None))

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
        s = self.state
        if not s.anchor_wall_us:
            return 0  # no read seen yet
        now = self._wall_clock_us()
        elapsed = s.anchor_event_us + (now - s.anchor_wall_us)
        watermark = max(s.watermark_us, min(elapsed, now) - self.idle_skew_us)
        every_us = _TICK_FOLD_EVERY_US if idle else folding.FOLD_EVERY_US
        if watermark - s.folded_at_us < every_us:
            self.state = replace(s, watermark_us=watermark)
            return 0
        with self.micro_batch():
            self.state = replace(s, watermark_us=watermark)
            closing = folding.fold_due(
                self.state, self.coding, self.rules, watermark, every_us=every_us
            )
            return self._store_closing(closing)

    def _store_closing(self, closing: Closing | None) -> int:
        """Store a fold's closed passages and keep what stays open (inside the transaction)."""
        if closing is None:
            return 0
        stored = self.storage.store_passages(closing.passages)
        # After the write: a passage retires only while the one it merged into is stored.
        self.storage.retire_passages(closing.retire)
        self.state = folding.after_closing(self.state, closing, gap_us=self._gap_us)
        return stored

    def _raise_alerts(self, hits: pd.DataFrame) -> list[Alert]:
        """Screen the hits for repeats and store the alerts that are news."""
        self.state, drafts = alerting.screen_alerts(
            self.state, hits, self.coding, gap_us=self._gap_us
        )
        ids = self.storage.insert_alerts(drafts)
        return [
            Alert(i, d.watch_id, d.bike_id, d.kind, d.tag_id, d.reader_id, d.read_at_us)
            for d, i in zip(drafts, ids, strict=True)
            if i is not None
        ]
