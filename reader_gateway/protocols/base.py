"""Types shared by every protocol decoder.

A decoder is pure: bytes (and the time they were received) in, reads and typed rejects out.
It never opens a port, never reads the clock and never writes; if the protocol needs an answer
(an acknowledgement, a re-sent inventory command) the decoder returns those bytes in
``DecodeResult.reply`` and the transport writes them.

Stream decoders keep a partial frame across ``decode`` calls, because serial ports and TCP hand
over bytes in arbitrary chunks: the same stream must give the same reads however it is split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ProtocolError(ValueError):
    """Base of every decoding error. ``reason`` is a short stable slug used in metrics."""

    reason = "protocol_error"


class FramingError(ProtocolError):
    """Bytes that are not a frame: bad sync/header, bad length, garbage between frames."""

    reason = "framing"


class ChecksumError(ProtocolError):
    """A frame whose checksum or CRC does not match its bytes."""

    reason = "checksum"


class TruncatedError(ProtocolError):
    """A frame that ends before its declared length (only raised on flush or for datagrams)."""

    reason = "truncated"


class PayloadError(ProtocolError):
    """A well-framed message whose content is invalid (bad field, bad JSON, unknown command)."""

    reason = "payload"


@dataclass(frozen=True, slots=True)
class TagRead:
    """One read of one tag, as the reader reported it (before clock correction).

    ``read_at`` is the reader's own timestamp when the protocol carries one (aware UTC); when it
    does not, the decoder uses the ``received_at`` the transport passed in.
    ``reader_id`` is set when the message itself names the reader (networked readers, active
    frames); otherwise the transport's configuration says which reader a port belongs to.
    """

    tag_id: str  # canonical upper-case hex
    antenna: int  # 1-based antenna port
    rssi_dbm: float
    read_at: datetime
    reader_id: str | None = None
    reader_seq: int | None = None
    tamper: bool = False
    low_battery: bool = False
    # The RF channel the tag answered on (LLRP ChannelIndex, 1-based into the reader's
    # frequency table), when the protocol reports one; not carried in wire batches.
    channel: int | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """Bytes that were refused, with the typed error saying why (kept for the quarantine)."""

    error: ProtocolError
    raw: bytes

    @property
    def reason(self) -> str:
        """Stable slug of the rejection reason, for metrics and quarantine listings."""
        return self.error.reason


@dataclass(frozen=True, slots=True)
class ReaderEvent:
    """A non-read message: heartbeat, round summary, reader error report."""

    kind: str  # "heartbeat" | "round_end" | "reader_error" | ...
    at: datetime
    reader_id: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """Many reads as columns: what a decoder that decodes a run of frames at once returns.

    The same reads as a list of :class:`TagRead` (see :meth:`tag_reads`), without a Python
    object per read: the gateway normalizes a block with numpy. Every column has one value per
    read; ``read_at_us`` is the reader's own clock in microseconds since the Unix epoch.
    Reader ids are dictionary-encoded (a block holds a few readers' many reads): read ``i``
    was heard by ``readers[reader[i]]``. Every read carries the reader's sequence number.
    """

    tag_id: npt.NDArray[np.object_]  # canonical upper-case hex str
    antenna: npt.NDArray[np.int16]  # 1-based
    rssi_dbm: npt.NDArray[np.float32]
    read_at_us: npt.NDArray[np.int64]
    readers: tuple[str, ...]
    reader: npt.NDArray[np.intp]  # index into readers
    reader_seq: npt.NDArray[np.int64]
    tamper: npt.NDArray[np.bool_]
    low_battery: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.read_at_us.shape[0])

    def reader_ids(self) -> list[str]:
        """The reader id of each read."""
        return [self.readers[i] for i in self.reader.tolist()]

    def tag_reads(self) -> list[TagRead]:
        """The block as one :class:`TagRead` per read, in order."""
        return [
            TagRead(
                tag_id=tag,
                antenna=antenna,
                rssi_dbm=rssi,
                read_at=_EPOCH + timedelta(microseconds=at_us),
                reader_id=reader,
                reader_seq=seq,
                tamper=tamper,
                low_battery=low_battery,
            )
            for tag, antenna, rssi, at_us, reader, seq, tamper, low_battery in zip(
                self.tag_id.tolist(),
                self.antenna.tolist(),
                self.rssi_dbm.tolist(),
                self.read_at_us.tolist(),
                self.reader_ids(),
                self.reader_seq.tolist(),
                self.tamper.tolist(),
                self.low_battery.tolist(),
                strict=True,
            )
        ]


@dataclass(slots=True)
class DecodeResult:
    """What one ``decode`` call produced.

    Reads come as ``blocks`` (columns, from a decoder's fast path) and ``reads`` (one object
    each); in stream order, every block's reads come before the listed ``reads``.
    """

    reads: list[TagRead] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    events: list[ReaderEvent] = field(default_factory=list)
    reply: bytes = b""
    blocks: list[ReadBlock] = field(default_factory=list)

    @property
    def read_count(self) -> int:
        """How many reads, in blocks and listed."""
        return len(self.reads) + sum(len(b) for b in self.blocks)

    def tag_reads(self) -> list[TagRead]:
        """Every read as a :class:`TagRead`, in stream order (blocks first)."""
        out: list[TagRead] = []
        for block in self.blocks:
            out += block.tag_reads()
        return out + self.reads

    def extend(self, other: DecodeResult) -> None:
        """Append another result's reads, rejects, events and reply bytes to this one."""
        if self.reads:  # blocks must stay ahead of listed reads: list the other's reads
            self.reads.extend(other.tag_reads())
        else:
            self.blocks.extend(other.blocks)
            self.reads.extend(other.reads)
        self.rejects.extend(other.rejects)
        self.events.extend(other.events)
        self.reply += other.reply


class Decoder(Protocol):
    """A protocol decoder for one reader connection (it may keep a partial frame)."""

    name: str

    def decode(self, data: bytes, received_at: datetime) -> DecodeResult:
        """Decode the next chunk of bytes received at ``received_at`` (aware UTC)."""
        ...

    def flush(self, received_at: datetime) -> DecodeResult:
        """End of stream: report whatever partial frame is left as a reject."""
        ...
