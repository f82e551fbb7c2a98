"""Normalization and batching: decoded reads in, wire batches per shard out.

Pure (no I/O, no clock): the transport passes times in. Steps, in order: assign the reader id,
correct the reader's clock offset, drop repeats of the same tag at the same antenna within the
de-duplication window, give each read its per-reader sequence number, and group by shard into
batches of at most ``max_batch_reads``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reader_gateway.protocols.base import Reject, TagRead
from reader_gateway.wire import ReadBatch, batch_from_columns, shard_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class _Columns:
    reader_ids: list[str] = field(default_factory=list)
    antenna: list[int] = field(default_factory=list)
    tag: list[str] = field(default_factory=list)
    rssi_dbm: list[float] = field(default_factory=list)
    read_at_us: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)


@dataclass
class GatewayCounters:
    """Per-reader counters for health and metrics."""

    reads: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    rejects: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reader, reason)
    last_heard_us: dict[str, int] = field(default_factory=dict)


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
    ) -> None:
        self.gateway_id = gateway_id
        self.shard_count = shard_count
        self.clock_offsets_us = {k: round(v * 1e6) for k, v in (clock_offsets_s or {}).items()}
        self.dedupe_window_us = round(dedupe_window_s * 1e6)
        self.max_batch_reads = max_batch_reads
        self.counters = GatewayCounters()
        self._open: dict[int, _Columns] = defaultdict(_Columns)
        self._seq: Counter[str] = Counter()
        self._last_seen: dict[tuple[str, int, str], int] = {}
        self._batch_seq = 0
        self._pending_reads = 0

    def add(self, reads: Iterable[TagRead], *, reader_id: str | None = None) -> None:
        """Normalize reads; ``reader_id`` is used when the read does not name its reader."""
        for read in reads:
            rid = read.reader_id or reader_id
            if rid is None:
                raise ValueError("a read without a reader id needs the transport's reader_id")
            at_us = _to_us(read) - self.clock_offsets_us.get(rid, 0)
            key = (rid, read.antenna, read.tag_id)
            previous = self._last_seen.get(key)
            if (
                previous is not None
                and self.dedupe_window_us
                and 0 <= at_us - previous < self.dedupe_window_us
            ):
                self.counters.duplicates[rid] += 1
                continue
            self._last_seen[key] = at_us
            self._seq[rid] += 1
            cols = self._open[shard_of(read.tag_id, self.shard_count)]
            cols.reader_ids.append(rid)
            cols.antenna.append(read.antenna)
            cols.tag.append(read.tag_id)
            cols.rssi_dbm.append(read.rssi_dbm)
            cols.read_at_us.append(at_us)
            cols.seq.append(read.reader_seq if read.reader_seq is not None else self._seq[rid])
            self.counters.reads[rid] += 1
            self.counters.last_heard_us[rid] = at_us
            self._pending_reads += 1

    def reject(self, rejects: Iterable[Reject], *, reader_id: str) -> None:
        """Count rejected input by reader and reason."""
        for rej in rejects:
            self.counters.rejects[(reader_id, rej.reason)] += 1

    @property
    def pending_reads(self) -> int:
        """Reads normalized but not yet taken as batches."""
        return self._pending_reads

    def take(self, *, now_us: int, force: bool = False) -> list[tuple[int, ReadBatch]]:
        """Batches ready to publish: full ones, or every non-empty one when ``force``."""
        out: list[tuple[int, ReadBatch]] = []
        for shard, cols in list(self._open.items()):
            if not cols.tag or (not force and len(cols.tag) < self.max_batch_reads):
                continue
            self._batch_seq += 1
            out.append(
                (
                    shard,
                    batch_from_columns(
                        gateway_id=self.gateway_id,
                        batch_seq=self._batch_seq,
                        sent_at_us=now_us,
                        reader_ids=cols.reader_ids,
                        antenna=cols.antenna,
                        tag=cols.tag,
                        rssi_dbm=cols.rssi_dbm,
                        read_at_us=cols.read_at_us,
                        seq=cols.seq,
                    ),
                )
            )
            self._pending_reads -= len(cols.tag)
            del self._open[shard]
        return out


def _to_us(read: TagRead) -> int:
    """Microseconds since the Unix epoch of an aware datetime, without float rounding."""
    delta = read.read_at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
