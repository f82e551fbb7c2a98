"""Open batches per shard: kept reads filed by shard, cut into wire batches.

The normalizer files each chunk of kept reads here (:meth:`ShardBatches.file`); a shard's
reads stay in the order they were kept, and :meth:`ShardBatches.take` cuts them into wire
batches of at most ``max_batch_reads``. Reader ids are coded once (:meth:`ShardBatches.code_of`):
open batches hold codes, not strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from reader_gateway.wire import ReadBatch, batch_from_arrays, shard_of


@dataclass
class Columns:
    """One shard's open batch: per-read columns, as the chunks they were added in."""

    reader_code: list[npt.NDArray[np.int32]] = field(default_factory=list)  # ShardBatches codes
    antenna: list[npt.NDArray[np.int16]] = field(default_factory=list)
    tag: list[npt.NDArray[np.object_]] = field(default_factory=list)
    rssi_dbm: list[npt.NDArray[np.float32]] = field(default_factory=list)
    read_at_us: list[npt.NDArray[np.int64]] = field(default_factory=list)
    seq: list[npt.NDArray[np.int64]] = field(default_factory=list)
    reads: int = 0

    def append(
        self,
        reader_code: npt.NDArray[np.int32],
        antenna: npt.NDArray[np.int16],
        tag: npt.NDArray[np.object_],
        rssi_dbm: npt.NDArray[np.float32],
        read_at_us: npt.NDArray[np.int64],
        seq: npt.NDArray[np.int64],
    ) -> None:
        """Add a chunk of reads (equal-length columns)."""
        self.reader_code.append(reader_code)
        self.antenna.append(antenna)
        self.tag.append(tag)
        self.rssi_dbm.append(rssi_dbm)
        self.read_at_us.append(read_at_us)
        self.seq.append(seq)
        self.reads += len(tag)


class ShardBatches:
    """The open batch of every shard, and the reader codes their reads carry."""

    def __init__(self, gateway_id: str, *, shard_count: int, max_batch_reads: int) -> None:
        self.gateway_id = gateway_id
        self.shard_count = shard_count
        self.max_batch_reads = max_batch_reads
        self._open: dict[int, Columns] = defaultdict(Columns)
        # Every reader id seen gets a code: open batches hold codes, not strings.
        self._reader_code: dict[str, int] = {}
        self._reader_names: list[str] = []
        self._batch_seq = 0
        self._pending_reads = 0

    def code_of(self, name: str) -> int:
        """The code of a reader id (after aliases), given on first sight."""
        code = self._reader_code.get(name)
        if code is None:
            code = self._reader_code[name] = len(self._reader_names)
            self._reader_names.append(name)
        return code

    def file(self, kept: Columns) -> None:
        """Put kept reads (one chunk) into the open batch of each read's shard."""
        (tags,) = kept.tag
        self._pending_reads += kept.reads
        if self.shard_count == 1:
            self._open[0].append(*chunk(kept, slice(None)))
            return
        shards = np.fromiter(
            (shard_of(tag, self.shard_count) for tag in tags.tolist()),
            dtype=np.intp,
            count=len(tags),
        )
        counts = np.bincount(shards, minlength=self.shard_count)
        if np.count_nonzero(counts) == 1:
            self._open[int(shards[0])].append(*chunk(kept, slice(None)))
            return
        order = np.argsort(shards, kind="stable")  # each shard's reads, in their order
        ends = np.cumsum(counts).tolist()
        for shard, (lo, hi) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
            if hi > lo:
                self._open[shard].append(*chunk(kept, order[lo:hi]))

    @property
    def pending_reads(self) -> int:
        """Reads normalized but not yet taken as batches."""
        return self._pending_reads

    @property
    def fullest_batch(self) -> int:
        """Reads in the largest open batch: a cut is due when one shard's batch is full (not
        when all shards together hold a batch's worth, which would cut every shard's batch at
        a fraction of the size and multiply the messages)."""
        return max((cols.reads for cols in self._open.values()), default=0)

    def take(
        self, *, now_us: int, force: bool = False, first_batch_seq: int | None = None
    ) -> list[tuple[int, ReadBatch]]:
        """Batches ready to publish: full ones, or every non-empty one when ``force``.

        ``first_batch_seq`` numbers the batches from there (the spool's next record id, so
        that a batch keeps its number when it is replayed after a restart).
        """
        if first_batch_seq is not None:
            self._batch_seq = first_batch_seq - 1
        out: list[tuple[int, ReadBatch]] = []
        for shard, cols in list(self._open.items()):
            if not cols.reads or (not force and cols.reads < self.max_batch_reads):
                continue
            readers, antenna = np.concatenate(cols.reader_code), np.concatenate(cols.antenna)
            tag, rssi = np.concatenate(cols.tag), np.concatenate(cols.rssi_dbm)
            read_at, seq = np.concatenate(cols.read_at_us), np.concatenate(cols.seq)
            # A chunk can overfill a batch: never publish more than max_batch_reads in one.
            size = self.max_batch_reads
            for lo in range(0, cols.reads, size):
                self._batch_seq += 1
                batch = batch_from_arrays(
                    gateway_id=self.gateway_id,
                    batch_seq=self._batch_seq,
                    sent_at_us=now_us,
                    reader_code=readers[lo : lo + size],
                    reader_names=self._reader_names,
                    antenna=antenna[lo : lo + size],
                    tag=tag[lo : lo + size],
                    rssi_dbm=rssi[lo : lo + size],
                    read_at_us=read_at[lo : lo + size],
                    seq=seq[lo : lo + size],
                )
                out.append((shard, batch))
            self._pending_reads -= cols.reads
            del self._open[shard]
        return out


def objects(values: Sequence[str]) -> npt.NDArray[np.object_]:
    """A 1-d object array of strings (``np.asarray`` would make a fixed-width str array)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def chunk(
    cols: Columns, where: slice | npt.NDArray[np.intp]
) -> tuple[
    npt.NDArray[np.int32],
    npt.NDArray[np.int16],
    npt.NDArray[np.object_],
    npt.NDArray[np.float32],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]:
    """The rows ``where`` of a one-chunk :class:`Columns`."""
    return (
        cols.reader_code[0][where],
        cols.antenna[0][where],
        cols.tag[0][where],
        cols.rssi_dbm[0][where],
        cols.read_at_us[0][where],
        cols.seq[0][where],
    )
