"""Normalization and batching: decoded reads in, wire batches per shard out.

Pure (no I/O, no clock): the transport passes times in. Steps, in order: bind the read to the
reader the transport proves (a port's configured reader, the reader an MQTT topic belongs to:
a read whose frame names another reader, after ``reader_aliases``, is refused as
``reader_id_mismatch``), map the antenna port, estimate and correct the reader's clock offset,
refuse reads whose corrected time lies outside the accepted window around the gateway's
receive time (``read_at_out_of_window``), drop repeats of the same tag at the same antenna
within the de-duplication window, give each read its per-reader sequence number, and group by
shard into batches of at most ``max_batch_reads`` (:mod:`reader_gateway.pipeline.batches`).
Refused reads are counted per reader and reason and handed to the transport as
:class:`~reader_gateway.pipeline.refusals.Refusal` records (:meth:`Normalizer.take_refusals`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from reader_gateway.pipeline.batches import Columns, ShardBatches, objects
from reader_gateway.pipeline.clock import ClockEstimator
from reader_gateway.pipeline.refusals import (
    EPOCH,
    ReadWindow,
    Refusal,
    drop_block_outside_window,
    drop_foreign,
    drop_foreign_block,
    drop_outside_window,
    window_us,
)
from reader_gateway.protocols.base import ReadBlock, Reject, TagRead
from reader_gateway.wire import ReadBatch

# Past this many remembered (reader, antenna, tag) keys, drop the ones outside the window.
_PRUNE_AT = 50_000


@dataclass
class GatewayCounters:
    """Per-reader counts of what normalization dropped (reads kept are counted per batch)."""

    duplicates: Counter[str] = field(default_factory=Counter)
    rejects: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reader, reason)


class Normalizer:
    """Turns decoded reads from many readers into wire batches, one open batch per shard."""

    def __init__(
        self,
        gateway_id: str,
        *,
        shard_count: int,
        clock_offsets_s: Mapping[str, float] | None = None,
        dedupe_window_s: float = 0.0,
        max_batch_reads: int = 500,
        clock: ClockEstimator | None = None,
        reader_aliases: Mapping[str, str] | None = None,
        read_window: ReadWindow | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self.read_window = read_window
        self.shard_count = shard_count
        self.clock = clock or ClockEstimator(clock_offsets_s, enabled=False)
        self.reader_aliases = dict(reader_aliases or {})
        self.dedupe_window_us = round(dedupe_window_s * 1e6)
        self.max_batch_reads = max_batch_reads
        self.counters = GatewayCounters()
        self._batches = ShardBatches(
            gateway_id, shard_count=shard_count, max_batch_reads=max_batch_reads
        )
        self._seq: Counter[str] = Counter()
        self._last_seen: dict[tuple[str, int, str], int] = {}
        self._prune_at = _PRUNE_AT
        self._refusals: list[Refusal] = []

    def add(
        self,
        reads: Sequence[TagRead],
        *,
        reader_id: str | None = None,
        received_at: datetime | None = None,
        antenna_map: Mapping[int, int] | None = None,
        may_name: Sequence[str] = (),
    ) -> int:
        """Normalize reads; return how many were kept (not refused, not duplicates).

        ``reader_id`` is the reader the transport proves the reads came from (the port's
        configured reader, the reader whose topic the broker let publish them): a read that
        names another reader (after ``reader_aliases``) is refused, never stored under either
        name. Without it (offline tools) each read must name its reader. ``received_at`` (when
        the transport received these reads, the gateway's clock) feeds the clock estimator and
        is what the accepted read window is measured from. ``antenna_map`` renumbers antenna
        ports (e.g. a reader wired with its ports in another order). ``may_name`` lists the
        readers (shell patterns, after aliases) the transport's frames may name besides its
        own: a serial bus that carries several readers' frames; those reads keep their names.
        """
        if not reads:
            return 0
        bound = None if reader_id is None else self._reader(reader_id)
        rids = [bound if not read.reader_id else self._reader(read.reader_id) for read in reads]
        if bound is None and None in rids:
            raise ValueError("a read without a reader id needs the transport's reader_id")
        if bound is not None:
            reads, rids, refused = drop_foreign(reads, rids, bound, may_name)
            self._refuse(refused)
            if not reads:
                return 0
        names = [str(rid) for rid in rids]
        times_us = [_to_us(read.read_at) for read in reads]
        received_us = self._observe_clock(names, times_us, received_at)
        offsets = {rid: self.clock.offset_us(rid) for rid in set(names)}
        corrected = [raw_us - offsets[rid] for rid, raw_us in zip(names, times_us, strict=True)]
        window = window_us(self.read_window, received_us)
        reads, names, corrected, refused = drop_outside_window(reads, names, corrected, window)
        self._refuse(refused)
        if not reads:
            return 0
        return self._keep(reads, names, corrected, antenna_map)

    def _observe_clock(
        self, names: list[str], times_us: list[int], received_at: datetime | None
    ) -> int | None:
        """Feed each reader's newest read time to the clock estimator; the receive time (us)."""
        if received_at is None:
            return None
        received_us = _to_us(received_at)
        newest: dict[str, int] = {}
        for rid, at_us in zip(names, times_us, strict=True):
            newest[rid] = max(at_us, newest.get(rid, at_us))
        for rid, at_us in newest.items():
            self.clock.observe(rid, at_us - received_us)
        return received_us

    def _keep(
        self,
        reads: Sequence[TagRead],
        names: list[str],
        corrected: list[int],
        antenna_map: Mapping[int, int] | None,
    ) -> int:
        """Drop repeats, number the rest per reader and file them; how many were kept."""
        kept = Columns()
        k_rid, k_antenna, k_tag, k_rssi, k_at, k_seq = [], [], [], [], [], []
        # One pass per read: whether a read is a repeat depends on the last *kept* read of its
        # key, so each decision depends on the previous one and cannot be vectorized.
        for read, rid, at_us in zip(reads, names, corrected, strict=True):
            antenna = antenna_map.get(read.antenna, read.antenna) if antenna_map else read.antenna
            if self.dedupe_window_us:  # off (0): nothing to remember per key
                key = (rid, antenna, read.tag_id)
                previous = self._last_seen.get(key)
                if previous is not None and 0 <= at_us - previous < self.dedupe_window_us:
                    self.counters.duplicates[rid] += 1
                    continue
                self._last_seen[key] = at_us
            self._seq[rid] += 1
            k_rid.append(self._batches.code_of(rid))
            k_antenna.append(antenna)
            k_tag.append(read.tag_id)
            k_rssi.append(read.rssi_dbm)
            k_at.append(at_us)
            k_seq.append(read.reader_seq if read.reader_seq is not None else self._seq[rid])
        if len(self._last_seen) > self._prune_at:
            self._prune()
        if k_tag:
            kept.append(
                np.asarray(k_rid, dtype=np.int32),
                np.asarray(k_antenna, dtype=np.int16),
                objects(k_tag),
                np.asarray(k_rssi, dtype=np.float32),
                np.asarray(k_at, dtype=np.int64),
                np.asarray(k_seq, dtype=np.int64),
            )
            self._batches.file(kept)
        return kept.reads

    def add_block(
        self,
        block: ReadBlock,
        *,
        reader_id: str | None = None,
        received_at: datetime | None = None,
        antenna_map: Mapping[int, int] | None = None,
        may_name: Sequence[str] = (),
    ) -> int:
        """:meth:`add` for a decoder's :class:`ReadBlock`, with numpy instead of a loop.

        Gives exactly what :meth:`add` gives for ``block.tag_reads()``. With de-duplication on,
        each read's fate depends on the one before, so the block goes through :meth:`add`.
        """
        if not len(block):
            return 0
        if self.dedupe_window_us:
            return self.add(
                block.tag_reads(),
                reader_id=reader_id,
                received_at=received_at,
                antenna_map=antenna_map,
                may_name=may_name,
            )
        # Per reader of the block (a few hundred at most), not per read: its name after
        # aliases, its code, its newest time (for the clock) and its clock offset.
        bound = None if reader_id is None else self._reader(reader_id)
        names = [self._reader(r) if r else bound for r in block.readers]
        if bound is None and None in names:
            raise ValueError("a read without a reader id needs the transport's reader_id")
        if bound is not None:
            block, refused = drop_foreign_block(block, names, bound, may_name)
            self._refuse(refused)
            if not len(block):
                return 0
        resolved = [str(name) for name in names]
        received_us = self._observe_block_clock(block, resolved, received_at)
        offsets = np.array([self.clock.offset_us(name) for name in resolved], dtype=np.int64)
        corrected = block.read_at_us - offsets[block.reader]
        window = window_us(self.read_window, received_us)
        block, corrected, refused = drop_block_outside_window(block, corrected, resolved, window)
        self._refuse(refused)
        if not len(block):
            return 0
        present = np.bincount(block.reader, minlength=len(resolved)) > 0
        codes = np.array(
            [
                self._batches.code_of(name) if has else -1
                for name, has in zip(resolved, present, strict=True)
            ],
            dtype=np.int32,
        )
        # No per-reader sequence counting: a block's reads carry the reader's own numbers.
        kept = Columns()
        kept.append(
            codes[block.reader],
            _mapped_antennas(block.antenna, antenna_map),
            block.tag_id,
            block.rssi_dbm,
            corrected,
            block.reader_seq,
        )
        self._batches.file(kept)
        return len(block)

    def _observe_block_clock(
        self, block: ReadBlock, resolved: list[str], received_at: datetime | None
    ) -> int | None:
        """:meth:`_observe_clock` for a block, one newest time per reader by numpy."""
        if received_at is None:
            return None
        local = block.reader
        present = np.bincount(local, minlength=len(resolved)) > 0
        newest = np.full(len(resolved), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(newest, local, block.read_at_us)
        newest_of: dict[str, int] = {}
        for name, newest_us, has in zip(resolved, newest.tolist(), present, strict=True):
            if has:  # two of the block's readers can be aliases of one
                newest_of[name] = max(newest_us, newest_of.get(name, newest_us))
        received_us = _to_us(received_at)
        for name, newest_us in newest_of.items():
            self.clock.observe(name, newest_us - received_us)
        return received_us

    def _refuse(self, refusals: list[Refusal]) -> None:
        for refusal in refusals:
            self.counters.rejects[(refusal.reader_id, refusal.reason)] += refusal.reads
            self._refusals.append(refusal)

    def forget_repeats(self) -> None:
        """Forget the reads remembered for de-duplication (the transport is about to hand the
        same reads in again: they must not be dropped as repeats of themselves). What this
        lets through twice is a few extra reads, which the engine folds anyway."""
        self._last_seen.clear()
        self._prune_at = _PRUNE_AT

    def take_refusals(self) -> list[Refusal]:
        """What was refused since the last call (the transport counts and logs it)."""
        out, self._refusals = self._refusals, []
        return out

    def _reader(self, rid: str | None) -> str:
        if rid is None:
            raise ValueError("a read without a reader id needs the transport's reader_id")
        return self.reader_aliases.get(rid, rid)

    def _prune(self) -> None:
        """Forget tags not seen within the window, so memory follows the tags in range."""
        newest = max(self._last_seen.values())
        horizon = newest - max(self.dedupe_window_us, 1)
        self._last_seen = {k: v for k, v in self._last_seen.items() if v >= horizon}
        # Many tags genuinely in range: prune again only after the map has doubled.
        self._prune_at = max(_PRUNE_AT, 2 * len(self._last_seen))

    @property
    def pending_reads(self) -> int:
        """Reads normalized but not yet taken as batches."""
        return self._batches.pending_reads

    @property
    def fullest_batch(self) -> int:
        """Reads in the largest open batch (see :attr:`ShardBatches.fullest_batch`)."""
        return self._batches.fullest_batch

    def take(
        self, *, now_us: int, force: bool = False, first_batch_seq: int | None = None
    ) -> list[tuple[int, ReadBatch]]:
        """Batches ready to publish: full ones, or every non-empty one when ``force``
        (numbered from ``first_batch_seq``; see :meth:`ShardBatches.take`)."""
        return self._batches.take(now_us=now_us, force=force, first_batch_seq=first_batch_seq)

    def reject(self, rejects: Iterable[Reject], *, reader_id: str) -> None:
        """Count rejected input by reader and reason."""
        for rej in rejects:
            self.counters.rejects[(reader_id, rej.reason)] += 1


def _to_us(at: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, without float rounding."""
    delta = at - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _mapped_antennas(
    antenna: npt.NDArray[np.int16], antenna_map: Mapping[int, int] | None
) -> npt.NDArray[np.int16]:
    """Antenna ports renumbered by ``antenna_map`` (unchanged without one)."""
    if not antenna_map:
        return antenna
    lut = np.arange(max(int(antenna.max()), *antenna_map) + 1, dtype=np.int16)
    for port, to in antenna_map.items():
        lut[port] = to
    return lut[antenna]
