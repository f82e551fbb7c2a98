"""Normalization and batching: decoded reads in, wire batches per shard out.

Pure (no I/O, no clock): the transport passes times in. Steps, in order: bind the read to the
reader the transport proves (a port's configured reader, the reader an MQTT topic belongs to:
a read whose frame names another reader, after ``reader_aliases``, is refused as
``reader_id_mismatch``), map the antenna port, estimate and correct the reader's clock offset,
refuse reads whose corrected time lies outside the accepted window around the gateway's
receive time (``read_at_out_of_window``), drop repeats of the same tag at the same antenna
within the de-duplication window, give each read its per-reader sequence number, and group by
shard into batches of at most ``max_batch_reads``. Refused reads are counted per reader and
reason and handed to the transport as :class:`Refusal` records (:meth:`Normalizer.take_refusals`).
"""

from __future__ import annotations

import fnmatch
import statistics
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from reader_gateway.protocols.base import ReadBlock, Reject, TagRead
from reader_gateway.wire import ReadBatch, batch_from_arrays, shard_of

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Past this many remembered (reader, antenna, tag) keys, drop the ones outside the window.
_PRUNE_AT = 50_000


@dataclass
class _Columns:
    """One shard's open batch: per-read columns, as the chunks they were added in."""

    reader_code: list[npt.NDArray[np.int32]] = field(default_factory=list)  # Normalizer codes
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


# Why a read was refused by normalization (the reject reasons it adds to the decoders' own).
REFUSED_FOREIGN_READER = "reader_id_mismatch"
REFUSED_OUT_OF_WINDOW = "read_at_out_of_window"


@dataclass(frozen=True, slots=True)
class ReadWindow:
    """Read times the gateway accepts: at most ``max_age_s`` before and ``max_lead_s`` after
    the time the gateway received the read (its own clock), after clock correction."""

    max_age_s: float
    max_lead_s: float


@dataclass(frozen=True, slots=True)
class Refusal:
    """Reads normalization refused, for the transport to count, log and keep as evidence.

    ``reader_id`` is the reader the transport proves the reads came from (or, with none, the
    reader the reads name); ``detail`` says what was wrong, e.g. which reader a frame named.
    """

    reader_id: str
    reason: str
    reads: int
    detail: str


@dataclass
class GatewayCounters:
    """Per-reader counts of what normalization dropped (reads kept are counted per batch)."""

    duplicates: Counter[str] = field(default_factory=Counter)
    rejects: Counter[tuple[str, str]] = field(default_factory=Counter)  # (reader, reason)


class ClockEstimator:
    """Per-reader clock offset: the median of recent (reader time - receive time) samples.

    One sample per reader per received message or chunk: the newest read time in it minus the
    time the gateway received it. The newest read is the one the reader sent last, so that
    sample carries the least buffering delay; what is left is transmission latency (ms), which
    the median does not remove but which is far below the offsets worth correcting (seconds).
    The median ignores the odd sample from a message that sat in a queue or a corrupt clock.
    Until ``min_samples`` are in, the surveyed offset (or 0) is used.
    """

    def __init__(
        self,
        surveyed_s: Mapping[str, float] | None = None,
        *,
        window: int = 64,
        min_samples: int = 8,
        enabled: bool = True,
    ) -> None:
        self.surveyed_us = {k: round(v * 1e6) for k, v in (surveyed_s or {}).items()}
        self.window = window
        self.min_samples = min_samples
        self.enabled = enabled
        self._samples: dict[str, deque[int]] = {}
        self._estimate_us: dict[str, int] = {}

    def observe(self, reader_id: str, sample_us: int) -> None:
        """Add one (reader time - receive time) sample in microseconds."""
        if not self.enabled:
            return
        samples = self._samples.get(reader_id)
        if samples is None:
            samples = self._samples[reader_id] = deque(maxlen=self.window)
        samples.append(sample_us)
        if len(samples) >= self.min_samples:
            self._estimate_us[reader_id] = round(statistics.median(samples))

    def offset_us(self, reader_id: str) -> int:
        """Current offset of the reader's clock (reader minus true time), microseconds."""
        estimate = self._estimate_us.get(reader_id)
        return estimate if estimate is not None else self.surveyed_us.get(reader_id, 0)

    def offsets_s(self) -> dict[str, float]:
        """Current offset of every reader known by survey or estimate, in seconds."""
        keys = set(self.surveyed_us) | set(self._estimate_us)
        return {k: self.offset_us(k) / 1e6 for k in sorted(keys)}


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
        self._open: dict[int, _Columns] = defaultdict(_Columns)
        # Every reader id seen gets a code: open batches hold codes, not strings.
        self._reader_code: dict[str, int] = {}
        self._reader_names: list[str] = []
        self._seq: Counter[str] = Counter()
        self._last_seen: dict[tuple[str, int, str], int] = {}
        self._prune_at = _PRUNE_AT
        self._batch_seq = 0
        self._pending_reads = 0
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
            reads, rids = self._drop_foreign(reads, rids, bound, may_name)
            if not reads:
                return 0
        names = [str(rid) for rid in rids]
        times_us = [_to_us(read.read_at) for read in reads]
        received_us = self._observe_clock(names, times_us, received_at)
        offsets = {rid: self.clock.offset_us(rid) for rid in set(names)}
        corrected = [raw_us - offsets[rid] for rid, raw_us in zip(names, times_us, strict=True)]
        reads, names, corrected = self._drop_outside_window(reads, names, corrected, received_us)
        if not reads:
            return 0
        return self._keep(reads, names, corrected, antenna_map)

    def _drop_foreign(
        self,
        reads: Sequence[TagRead],
        rids: list[str | None],
        bound: str,
        may_name: Sequence[str],
    ) -> tuple[Sequence[TagRead], list[str | None]]:
        """Refuse the reads naming a reader the transport may not speak for; the rest."""
        foreign = _foreign(set(map(str, rids)), bound, may_name)
        if not foreign:
            return reads, rids
        own = [rid not in foreign for rid in rids]
        named = sorted({str(r.reader_id) for r, ok in zip(reads, own, strict=True) if not ok})
        self._refuse(bound, REFUSED_FOREIGN_READER, own.count(False), _foreign_detail(named, bound))
        return (
            [read for read, ok in zip(reads, own, strict=True) if ok],
            [rid for rid, ok in zip(rids, own, strict=True) if ok],
        )

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

    def _drop_outside_window(
        self,
        reads: Sequence[TagRead],
        names: list[str],
        corrected: list[int],
        received_us: int | None,
    ) -> tuple[Sequence[TagRead], list[str], list[int]]:
        """Refuse the reads outside the accepted read window; the rest, columns aligned."""
        window = self._window_us(received_us)
        if window is None:
            return reads, names, corrected
        lo, hi = window
        inside = [lo <= at_us <= hi for at_us in corrected]
        if all(inside):
            return reads, names, corrected
        outside = Counter(rid for rid, ok in zip(names, inside, strict=True) if not ok)
        first = next(at for at, ok in zip(corrected, inside, strict=True) if not ok)
        for rid, count in outside.items():
            self._refuse(rid, REFUSED_OUT_OF_WINDOW, count, _window_detail(first, window))
        return (
            [r for r, ok in zip(reads, inside, strict=True) if ok],
            [n for n, ok in zip(names, inside, strict=True) if ok],
            [at for at, ok in zip(corrected, inside, strict=True) if ok],
        )

    def _keep(
        self,
        reads: Sequence[TagRead],
        names: list[str],
        corrected: list[int],
        antenna_map: Mapping[int, int] | None,
    ) -> int:
        """Drop repeats, number the rest per reader and file them; how many were kept."""
        kept = _Columns()
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
            k_rid.append(self._code_of(rid))
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
                _objects(k_tag),
                np.asarray(k_rssi, dtype=np.float32),
                np.asarray(k_at, dtype=np.int64),
                np.asarray(k_seq, dtype=np.int64),
            )
            self._file(kept)
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
            block = self._drop_foreign_block(block, names, bound, may_name)
            if not len(block):
                return 0
        resolved = [str(name) for name in names]
        received_us = self._observe_block_clock(block, resolved, received_at)
        offsets = np.array([self.clock.offset_us(name) for name in resolved], dtype=np.int64)
        corrected = block.read_at_us - offsets[block.reader]
        block, corrected = self._drop_block_outside_window(block, corrected, resolved, received_us)
        if not len(block):
            return 0
        present = np.bincount(block.reader, minlength=len(resolved)) > 0
        codes = np.array(
            [
                self._code_of(name) if has else -1
                for name, has in zip(resolved, present, strict=True)
            ],
            dtype=np.int32,
        )
        # No per-reader sequence counting: a block's reads carry the reader's own numbers.
        kept = _Columns()
        kept.append(
            codes[block.reader],
            _mapped_antennas(block.antenna, antenna_map),
            block.tag_id,
            block.rssi_dbm,
            corrected,
            block.reader_seq,
        )
        self._file(kept)
        return len(block)

    def _drop_foreign_block(
        self, block: ReadBlock, names: list[str | None], bound: str, may_name: Sequence[str]
    ) -> ReadBlock:
        """:meth:`_drop_foreign` for a block: the block without the refused rows."""
        not_own = _foreign(set(map(str, names)), bound, may_name)
        if not not_own:
            return block
        foreign = [k for k, name in enumerate(names) if name in not_own]
        own = ~np.isin(block.reader, foreign)
        named = sorted({block.readers[k] for k in foreign})
        refused = len(block) - int(np.count_nonzero(own))
        if not refused:
            return block
        self._refuse(bound, REFUSED_FOREIGN_READER, refused, _foreign_detail(named, bound))
        return _block_rows(block, own)

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

    def _drop_block_outside_window(
        self,
        block: ReadBlock,
        corrected: npt.NDArray[np.int64],
        resolved: list[str],
        received_us: int | None,
    ) -> tuple[ReadBlock, npt.NDArray[np.int64]]:
        """:meth:`_drop_outside_window` for a block and its corrected times."""
        window = self._window_us(received_us)
        if window is None:
            return block, corrected
        inside = (corrected >= window[0]) & (corrected <= window[1])
        if inside.all():
            return block, corrected
        first = int(corrected[~inside][0])
        outside = np.bincount(block.reader[~inside], minlength=len(resolved)).tolist()
        by_name: Counter[str] = Counter()
        for name, count in zip(resolved, outside, strict=True):
            by_name[name] += count
        for name, count in by_name.items():
            if count:
                self._refuse(name, REFUSED_OUT_OF_WINDOW, count, _window_detail(first, window))
        return _block_rows(block, inside), corrected[inside]

    def _code_of(self, name: str) -> int:
        code = self._reader_code.get(name)
        if code is None:
            code = self._reader_code[name] = len(self._reader_names)
            self._reader_names.append(name)
        return code

    def _file(self, kept: _Columns) -> None:
        """Put kept reads (one chunk) into the open batch of each read's shard."""
        (tags,) = kept.tag
        self._pending_reads += kept.reads
        if self.shard_count == 1:
            self._open[0].append(*_chunk(kept, slice(None)))
            return
        shards = np.fromiter(
            (shard_of(tag, self.shard_count) for tag in tags.tolist()),
            dtype=np.intp,
            count=len(tags),
        )
        counts = np.bincount(shards, minlength=self.shard_count)
        if np.count_nonzero(counts) == 1:
            self._open[int(shards[0])].append(*_chunk(kept, slice(None)))
            return
        order = np.argsort(shards, kind="stable")  # each shard's reads, in their order
        ends = np.cumsum(counts).tolist()
        for shard, (lo, hi) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
            if hi > lo:
                self._open[shard].append(*_chunk(kept, order[lo:hi]))

    def _window_us(self, received_us: int | None) -> tuple[int, int] | None:
        """The accepted corrected read times around a receive time, or None (no check)."""
        if self.read_window is None or received_us is None:
            return None
        return (
            received_us - round(self.read_window.max_age_s * 1e6),
            received_us + round(self.read_window.max_lead_s * 1e6),
        )

    def _refuse(self, reader_id: str, reason: str, reads: int, detail: str) -> None:
        self.counters.rejects[(reader_id, reason)] += reads
        self._refusals.append(Refusal(reader_id, reason, reads, detail))

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

    def reject(self, rejects: Iterable[Reject], *, reader_id: str) -> None:
        """Count rejected input by reader and reason."""
        for rej in rejects:
            self.counters.rejects[(reader_id, rej.reason)] += 1

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


def _foreign(names: set[str], bound: str, may_name: Sequence[str]) -> set[str]:
    """The names (after aliases) a transport bound to ``bound`` may not file reads under."""
    return {
        name
        for name in names
        if name != bound and not any(fnmatch.fnmatchcase(name, p) for p in may_name)
    }


def _foreign_detail(named: Sequence[str], bound: str) -> str:
    shown = ", ".join(repr(name) for name in named[:3]) + (" …" if len(named) > 3 else "")
    return f"the message names reader {shown}, but came from reader {bound!r}"


def _window_detail(read_at_us: int, window: tuple[int, int]) -> str:
    def iso(us: int) -> str:
        try:
            return (_EPOCH + timedelta(microseconds=us)).isoformat()
        except OverflowError:
            return f"{us} µs since 1970"

    return f"read at {iso(read_at_us)} (corrected), accepted {iso(window[0])} to {iso(window[1])}"


def _block_rows(block: ReadBlock, rows: npt.NDArray[np.bool_]) -> ReadBlock:
    """The block's reads where ``rows`` is true (reader names kept as they are)."""
    return replace(
        block,
        tag_id=block.tag_id[rows],
        antenna=block.antenna[rows],
        rssi_dbm=block.rssi_dbm[rows],
        read_at_us=block.read_at_us[rows],
        reader=block.reader[rows],
        reader_seq=block.reader_seq[rows],
        tamper=block.tamper[rows],
        low_battery=block.low_battery[rows],
    )


def _objects(values: Sequence[str]) -> npt.NDArray[np.object_]:
    """A 1-d object array of strings (``np.asarray`` would make a fixed-width str array)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _chunk(
    cols: _Columns, where: slice | npt.NDArray[np.intp]
) -> tuple[
    npt.NDArray[np.int32],
    npt.NDArray[np.int16],
    npt.NDArray[np.object_],
    npt.NDArray[np.float32],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
]:
    """The rows ``where`` of a one-chunk :class:`_Columns`."""
    return (
        cols.reader_code[0][where],
        cols.antenna[0][where],
        cols.tag[0][where],
        cols.rssi_dbm[0][where],
        cols.read_at_us[0][where],
        cols.seq[0][where],
    )


def _to_us(at: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, without float rounding."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
