"""Disk spool: every accepted batch is fsync'd here before it counts as accepted.

Layout: a directory of segment files ``<first record id, 20 digits>.seg``. A segment is a run of
records, each ``length u32 | crc32 u32 | record id u64 | payload`` (big-endian); the CRC covers
the id and the payload. Appends go to the newest segment and are fsync'd once per
:meth:`Spool.append` call (group commit), so one fsync covers every batch cut in one step.

Guarantees:
- a record that :meth:`Spool.append` returned an id for survives SIGKILL and power loss;
- records are handed out for publishing in id order, and again from the start of the spool
  after a restart (what was published but not acknowledged is published again: at-least-once);
- a segment is deleted only when every record in it is acknowledged;
- a torn tail (the record being written when the process died) is cut off on open; any other
  bad record marks its segment corrupt: the segment is renamed ``.corrupt`` and kept for
  inspection, and the count is in :attr:`Spool.corrupt_segments`;
- past ``max_bytes`` an append is refused with :class:`SpoolFullError` instead of writing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reader_gateway.errors import GatewayError

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">IIQ")  # length of payload, crc32(id + payload), record id
_ID = struct.Struct(">Q")
_SUFFIX = ".seg"
MAX_RECORD_BYTES = 64 << 20  # a length past this is a corrupt header, not a record


class SpoolError(GatewayError):
    """The spool cannot do what was asked."""


class SpoolFullError(SpoolError):
    """The spool's disk budget is used up: the batch was refused, nothing was written."""


@dataclass(slots=True)
class _Segment:
    first_id: int
    path: Path
    size: int = 0
    records: int = 0
    acked: int = 0


@dataclass(frozen=True, slots=True)
class Record:
    """One spooled record handed out for publishing."""

    record_id: int
    payload: bytes


def _crc(record_id: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_ID.pack(record_id)))


class Spool:
    """An append-only, fsync'd log of batches with acknowledgement-driven deletion."""

    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.corrupt_segments = 0
        self.torn_tails = 0
        directory.mkdir(parents=True, exist_ok=True)
        self._segments: dict[int, _Segment] = {}
        # record id -> (segment first id, offset of the payload, payload length)
        self._where: dict[int, tuple[int, int, int]] = {}
        self._unsent: deque[int] = deque()
        self._next_id = 1
        self._recover()
        self._active = self._open_segment(self._next_id) if not self._segments else None
        if self._active is None:
            self._active = self._segments[max(self._segments)]
        self._fd = os.open(self._active.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    # -- state -------------------------------------------------------------------------------

    @property
    def bytes_used(self) -> int:
        """Bytes of every segment file on disk."""
        return sum(s.size for s in self._segments.values())

    @property
    def unacked(self) -> int:
        """Records written and not yet acknowledged (sent or not)."""
        return len(self._where)

    @property
    def unsent(self) -> int:
        """Records waiting to be handed out for publishing."""
        return len(self._unsent)

    @property
    def next_id(self) -> int:
        """The id the next appended record gets."""
        return self._next_id

    # -- writing -----------------------------------------------------------------------------

    def append(self, payloads: Sequence[bytes]) -> list[int]:
        """Write payloads in order with one fsync; return their record ids.

        Raises :class:`SpoolFullError` (writing nothing) when they do not fit the disk budget,
        and :class:`SpoolError` (having cut off whatever was half written) when the disk fails.
        """
        if not payloads:
            return []
        need = sum(_HEADER.size + len(p) for p in payloads)
        if self.bytes_used + need > self.max_bytes:
            raise SpoolFullError(
                f"spool {self.directory} is full: {self.bytes_used} of {self.max_bytes} bytes "
                f"used, {need} more needed"
            )
        too_big = [len(p) for p in payloads if len(p) > MAX_RECORD_BYTES]
        if too_big:
            raise SpoolError(f"record of {too_big[0]} bytes is too large to spool")
        active = self._roll_if_full()
        first_id, start = self._next_id, active.size
        ids = list(range(first_id, first_id + len(payloads)))
        chunks: list[bytes] = []
        where: list[tuple[int, int, int]] = []
        offset = start
        for record_id, payload in zip(ids, payloads, strict=True):
            chunks.append(_HEADER.pack(len(payload), _crc(record_id, payload), record_id))
            chunks.append(payload)
            offset += _HEADER.size
            where.append((active.first_id, offset, len(payload)))
            offset += len(payload)
        data = b"".join(chunks)
        try:
            written = 0
            while written < len(data):  # os.write may write less than asked
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as exc:
            # Cut the half-written append off again: left in place, it would end the segment
            # for the reader at restart and hide every record appended after it.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise SpoolError(f"cannot write the spool {self.directory}: {exc}") from exc
        self._next_id += len(ids)
        self._where.update(zip(ids, where, strict=True))
        active.size = offset
        active.records += len(ids)
        self._unsent.extend(ids)
        return ids

    def _roll_if_full(self) -> _Segment:
        if self._active is None:
            raise RuntimeError("_roll_if_full: the spool has no open segment")
        if self._active.size < self.segment_bytes:
            return self._active
        os.close(self._fd)
        old = self._active
        self._active = self._open_segment(self._next_id)
        self._fd = os.open(self._active.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._delete_if_done(old)
        return self._active

    def _open_segment(self, first_id: int) -> _Segment:
        path = self.directory / f"{first_id:020d}{_SUFFIX}"
        path.touch()
        _fsync_dir(self.directory)  # the new file's name must survive a crash too
        segment = _Segment(first_id, path)
        self._segments[first_id] = segment
        return segment

    # -- reading and acknowledging -----------------------------------------------------------

    def take_unsent(self, limit: int) -> list[Record]:
        """Hand out up to ``limit`` unsent records in id order (marking them sent)."""
        out: list[Record] = []
        while self._unsent and len(out) < limit:
            record_id = self._unsent.popleft()
            if record_id in self._where:  # not acknowledged while it waited to go again
                out.append(Record(record_id, self.read(record_id)))
        return out

    def requeue(self, record_id: int) -> None:
        """Put a handed-out record back at the front (its publish did not go out)."""
        if record_id in self._where:
            self._unsent.appendleft(record_id)

    def requeue_many(self, record_ids: Sequence[int]) -> None:
        """Put handed-out records back at the front, in id order (to be published again)."""
        self._unsent.extendleft(sorted((r for r in record_ids if r in self._where), reverse=True))

    def holds(self, record_id: int) -> bool:
        """Whether the record is in the spool (written and not yet acknowledged)."""
        return record_id in self._where

    def read(self, record_id: int) -> bytes:
        """Payload of an unacknowledged record (read back from disk)."""
        first_id, offset, length = self._where[record_id]
        with self._segments[first_id].path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def ack(self, record_id: int) -> None:
        """The record is safely downstream; delete its segment once all of it is."""
        where = self._where.pop(record_id, None)
        if where is None:
            return  # acknowledged twice (a re-sent duplicate): nothing left to do
        segment = self._segments[where[0]]
        segment.acked += 1
        if segment is self._active and segment.acked == segment.records:
            # Everything written so far is downstream: start a fresh segment so that this one
            # can go (the newest segment's name is what keeps record ids rising on restart).
            self._active = self._roll_now()
        self._delete_if_done(segment)

    def _roll_now(self) -> _Segment:
        os.close(self._fd)
        segment = self._open_segment(self._next_id)
        self._fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return segment

    def _delete_if_done(self, segment: _Segment) -> None:
        if segment is self._active or segment.acked < segment.records:
            return
        if segment.path.suffix == _SUFFIX:  # a .corrupt file stays for inspection
            segment.path.unlink(missing_ok=True)
        del self._segments[segment.first_id]

    def close(self) -> None:
        """Close the active segment's file descriptor."""
        os.close(self._fd)

    # -- recovery ----------------------------------------------------------------------------

    def _recover(self) -> None:
        paths = sorted(self.directory.glob(f"*{_SUFFIX}"))
        for index, path in enumerate(paths):
            try:
                first_id = int(path.stem)
            except ValueError:
                log.error("spool: ignoring foreign file %s", path)
                continue
            self._next_id = max(self._next_id, first_id)
            segment = _Segment(first_id, path)
            self._segments[first_id] = segment
            good_end, clean = self._scan(segment)
            if clean:
                continue
            if index == len(paths) - 1:
                # Only the newest segment is written to, so a bad record at its end is the
                # append that a crash interrupted: it was never acknowledged as accepted.
                log.warning("spool: cutting a torn tail of %s at byte %d", path, good_end)
                os.truncate(path, good_end)
                segment.size = good_end
                self.torn_tails += 1
            else:
                self.corrupt_segments += 1
                kept = path.with_suffix(".corrupt")
                log.error(
                    "spool: segment %s is corrupt after byte %d; replaying the records before "
                    "it, keeping the file as %s for inspection",
                    path,
                    good_end,
                    kept,
                )
                path.rename(kept)
                segment.path = kept
                segment.size = good_end

    def _scan(self, segment: _Segment) -> tuple[int, bool]:
        data = segment.path.read_bytes()
        offset = 0
        while offset < len(data):
            if len(data) - offset < _HEADER.size:
                return offset, False
            length, crc, record_id = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            payload = data[start : start + length]
            if length > MAX_RECORD_BYTES or len(payload) < length:
                return offset, False
            if _crc(record_id, payload) != crc or record_id < segment.first_id:
                return offset, False
            self._where[record_id] = (segment.first_id, start, length)
            self._unsent.append(record_id)
            segment.records += 1
            self._next_id = max(self._next_id, record_id + 1)
            offset = start + length
        segment.size = offset
        return offset, True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
