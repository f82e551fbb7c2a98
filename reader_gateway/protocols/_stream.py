"""Frame splitter shared by the binary stream decoders: find sync, wait, check, resync.

Serial ports hand over whatever bytes they have, so a frame can straddle any number of
``decode`` calls. The splitter keeps undecided bytes, and it decides only when it has every
byte the decision needs; that is what makes the output the same however the stream is chunked
(the property tests split at every position).

Bytes that belong to no valid frame are collected into a *run* and reported as one
:class:`Reject` when the run ends (at the next good frame, at ``MAX_GARBAGE_RUN`` bytes, or at
flush), under its worst finding: a failed checksum, then a truncated frame, then plain framing.
"""

from __future__ import annotations

from datetime import datetime

from reader_gateway.protocols.base import (
    ChecksumError,
    DecodeResult,
    FramingError,
    ProtocolError,
    Reject,
    TruncatedError,
)

# A run this long is reported without waiting for a good frame, so that a peer sending noise
# cannot grow our buffer without bound.
MAX_GARBAGE_RUN = 4096
NEED_MORE = -1  # frame_size(): the header is not complete yet
NOT_A_FRAME = 0  # frame_size(): the bytes at the sync cannot start a frame

_RANK: dict[type[ProtocolError], int] = {FramingError: 0, TruncatedError: 1, ChecksumError: 2}


class FrameSplitter:
    """Base of a resyncing stream decoder; subclasses describe their frames.

    Subclasses set ``sync`` and implement :meth:`frame_size`, :meth:`check` and :meth:`frame`.
    """

    sync: bytes = b""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._garbage = bytearray()
        self._garbage_error: type[ProtocolError] = FramingError

    # -- what a subclass provides --------------------------------------------------------------

    def frame_size(self, buf: bytearray) -> int:
        """Total frame length for a buffer that starts with ``sync``, or NEED_MORE/NOT_A_FRAME."""
        raise NotImplementedError

    def check(self, frame: bytes) -> bool:
        """Whether the frame's checksum or CRC matches."""
        raise NotImplementedError

    def frame(self, frame: bytes, result: DecodeResult, received_at: datetime) -> None:
        """Turn one checked frame into reads, events, rejects or reply bytes."""
        raise NotImplementedError

    # -- the splitter --------------------------------------------------------------------------

    def decode(self, data: bytes, received_at: datetime) -> DecodeResult:
        """Decode the next chunk of bytes."""
        self._buffer += data
        result = DecodeResult()
        self._drain(result, received_at, final=False)
        return result

    def flush(self, received_at: datetime) -> DecodeResult:
        """End of stream: resync through what is left, then report the remaining bytes."""
        result = DecodeResult()
        self._drain(result, received_at, final=True)
        self._end_garbage(result)
        return result

    def _drain(self, result: DecodeResult, received_at: datetime, *, final: bool) -> None:
        buf, sync = self._buffer, self.sync
        while buf:
            if buf[0] != sync[0]:
                start = buf.find(sync[0])
                cut = len(buf) if start < 0 else start
                self._skip(buf[:cut], FramingError, result)
                del buf[:cut]
                continue
            size = self.frame_size(buf) if buf[: len(sync)] == sync[: len(buf)] else NOT_A_FRAME
            if size == NOT_A_FRAME:
                self._skip(buf[:1], FramingError, result)
            elif size == NEED_MORE or len(buf) < size:
                if not final:
                    return  # wait for the rest of the header or frame
                # The stream ended inside this candidate; resync after its first byte, since a
                # whole frame may still follow inside the bytes it claimed.
                self._skip(buf[:1], TruncatedError, result)
            elif not self.check(bytes(buf[:size])):
                # A corrupted frame or a sync pattern inside noise: skip one byte and resync,
                # so that a real frame starting inside this false one is still found.
                self._skip(buf[:1], ChecksumError, result)
            else:
                frame = bytes(buf[:size])
                del buf[:size]
                self._end_garbage(result)
                self.frame(frame, result, received_at)
                continue
            del buf[:1]

    def _skip(
        self, data: bytes | bytearray, error: type[ProtocolError], result: DecodeResult
    ) -> None:
        if _RANK[error] > _RANK[self._garbage_error]:
            self._garbage_error = error
        view = bytes(data)
        while view:
            room = MAX_GARBAGE_RUN - len(self._garbage)
            self._garbage += view[:room]
            view = view[room:]
            if len(self._garbage) >= MAX_GARBAGE_RUN:
                self._end_garbage(result)

    def _end_garbage(self, result: DecodeResult) -> None:
        if self._garbage:
            raw = bytes(self._garbage)
            error = self._garbage_error(f"{len(raw)} bytes outside any valid frame")
            result.rejects.append(Reject(error, raw))
        self._garbage.clear()
        self._garbage_error = FramingError
