"""TagTrail active-tag frame (2.4 GHz readers): our own strict binary format, version 1.

No public spec exists for these readers, so this module *is* the spec; it is documented byte
by byte, with a worked example, in ``docs/protocols/tagtrail-active.md``. All integers are
big-endian. One frame is 32 bytes::

    off size field
     0   2   sync            A5 5A
     2   1   version         0x01
     3   1   length          0x1A = 26, bytes from reader_id through flags
     4   4   reader_id       u32
     8   4   reader_seq      u32, +1 per frame, wraps
    12   8   reader_time_ms  u64, ms since the Unix epoch on the reader's clock (UTC)
    20   8   tag_id          8 bytes -> 16 upper-case hex digits
    28   1   rssi_dbm        i8
    29   1   flags           bit0 tamper, bit1 low battery, bits2-3 antenna-1, bits4-7 zero
    30   2   crc             CRC-16/CCITT-FALSE over bytes 2..29 (version .. flags)

A frame is accepted only if sync, version, length and CRC all match; anything else is skipped
one byte at a time until the next frame (see :mod:`reader_gateway.protocols._stream`).
"""

from __future__ import annotations

import binascii
import struct
from datetime import UTC, datetime, timedelta

import numpy as np

from reader_gateway.protocols._common import require_aware_utc
from reader_gateway.protocols._stream import NEED_MORE, NOT_A_FRAME, FrameSplitter
from reader_gateway.protocols.base import (
    DecodeResult,
    PayloadError,
    ReadBlock,
    Reject,
    TagRead,
)

NAME = "tagtrail-active"
SYNC = b"\xa5\x5a"
VERSION = 1
BODY_LEN = 26
FRAME_LEN = len(SYNC) + 2 + BODY_LEN + 2  # 32
TAG_ID_BYTES = 8

FLAG_TAMPER = 0x01
FLAG_LOW_BATTERY = 0x02
_ANTENNA_SHIFT, _ANTENNA_MASK = 2, 0x0C
_RESERVED_MASK = 0xF0

# Plausible RSSI for a 2.4 GHz tag heard by a pole reader; +20 dBm or more is a corrupt byte.
_RSSI_MAX_DBM = 20
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Reader clocks before 2000 or after 2200 are unset or broken, not a time to store a read at.
_TIME_MIN_MS, _TIME_MAX_MS = 946_684_800_000, 7_258_118_400_000

_BODY = struct.Struct(">BBII Q 8s bB")  # version, length, reader_id, seq, time, tag, rssi, flags
if _BODY.size != 2 + BODY_LEN:
    raise RuntimeError(f"frame body struct is {_BODY.size} bytes, not {2 + BODY_LEN}")


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor).

    ``binascii.crc_hqx`` is this CRC when seeded with 0xFFFF; check value 0x29B1 for
    ``b"123456789"``.
    """
    return binascii.crc_hqx(data, 0xFFFF)


def format_reader_id(reader_id: int) -> str:
    """The ``TagRead.reader_id`` string for a u32 reader id: ``AT-`` + 8 upper-case hex digits."""
    return f"AT-{reader_id:08X}"


def encode_frame(
    *,
    reader_id: int,
    reader_seq: int,
    read_at: datetime,
    tag_id: str,
    rssi_dbm: float,
    antenna: int = 1,
    tamper: bool = False,
    low_battery: bool = False,
) -> bytes:
    """Build one version-1 frame; raises ``ValueError`` for values the frame cannot carry.

    ``read_at`` (aware) is truncated to the millisecond; ``rssi_dbm`` is rounded to whole dBm;
    ``tag_id`` is 16 hex digits; ``antenna`` is 1-4.
    """
    tag = bytes.fromhex(tag_id) if len(tag_id) == 2 * TAG_ID_BYTES else b""
    if len(tag) != TAG_ID_BYTES:
        raise ValueError(f"tag_id must be {2 * TAG_ID_BYTES} hex digits, got {tag_id!r}")
    if not 0 <= reader_id <= 0xFFFF_FFFF or not 0 <= reader_seq <= 0xFFFF_FFFF:
        raise ValueError("reader_id and reader_seq must be u32")
    if not 1 <= antenna <= 4:
        raise ValueError(f"antenna must be 1-4, got {antenna}")
    rssi = round(rssi_dbm)
    if not -128 <= rssi <= _RSSI_MAX_DBM:
        raise ValueError(f"rssi_dbm out of range: {rssi_dbm}")
    millis = (require_aware_utc(read_at) - _EPOCH) // timedelta(milliseconds=1)
    if not _TIME_MIN_MS <= millis <= _TIME_MAX_MS:
        raise ValueError(f"read_at out of range: {read_at}")
    flags = (FLAG_TAMPER if tamper else 0) | (FLAG_LOW_BATTERY if low_battery else 0)
    flags |= (antenna - 1) << _ANTENNA_SHIFT
    body = _BODY.pack(VERSION, BODY_LEN, reader_id, reader_seq, millis, tag, rssi, flags)
    return SYNC + body + struct.pack(">H", crc16_ccitt_false(body))


def parse_frame(frame: bytes) -> TagRead:
    """Decode one complete, CRC-checked frame; raises :class:`PayloadError` for bad fields."""
    version, _, reader_id, seq, millis, tag, rssi, flags = _BODY.unpack(frame[2:-2])
    if version != VERSION:
        raise PayloadError(f"unsupported frame version {version}")
    if flags & _RESERVED_MASK:
        raise PayloadError(f"reserved flag bits set: 0x{flags:02X}")
    if rssi > _RSSI_MAX_DBM:
        raise PayloadError(f"rssi out of range: {rssi} dBm")
    if not _TIME_MIN_MS <= millis <= _TIME_MAX_MS:
        raise PayloadError(f"reader time out of range: {millis} ms")
    return TagRead(
        tag_id=tag.hex().upper(),
        antenna=((flags & _ANTENNA_MASK) >> _ANTENNA_SHIFT) + 1,
        rssi_dbm=float(rssi),
        read_at=_EPOCH + timedelta(milliseconds=millis),
        reader_id=format_reader_id(reader_id),
        reader_seq=seq,
        tamper=bool(flags & FLAG_TAMPER),
        low_battery=bool(flags & FLAG_LOW_BATTERY),
    )


_FRAME_HEAD = SYNC + bytes([VERSION, BODY_LEN])
_HEAD_U32 = int.from_bytes(_FRAME_HEAD, "big")
_ANTENNA_OF_FLAGS = tuple(((f & _ANTENNA_MASK) >> _ANTENNA_SHIFT) + 1 for f in range(256))
_ANTENNA_LUT = np.array(_ANTENNA_OF_FLAGS, dtype=np.int16)
# One frame as a numpy record (big-endian fields): the block path's view of a run of frames.
_FRAME = np.dtype(
    [
        ("head", ">u4"),  # sync, version, length
        ("reader", ">u4"),
        ("seq", ">u4"),
        ("millis", ">u8"),
        ("tag", "V8"),
        ("rssi", "i1"),
        ("flags", "u1"),
        ("crc", ">u2"),
    ]
)
if _FRAME.itemsize != FRAME_LEN:
    raise RuntimeError(f"frame dtype is {_FRAME.itemsize} bytes, not {FRAME_LEN}")
# Below this many whole frames in the buffer, one object per frame is cheaper than numpy's
# set-up (a real serial port at 115200 baud hands over a few frames at a time).
_BLOCK_MIN_FRAMES = 32


class TagtrailActiveDecoder(FrameSplitter):
    """Stream decoder for the active-tag reader's serial (or TCP) byte stream.

    A busy port delivers long runs of back-to-back good frames, so :meth:`decode` first walks
    the run at the front of the buffer with a plain index (no per-frame buffer copies or
    splitter calls) and hands whatever is not a good frame to the resyncing splitter of
    :class:`FrameSplitter`, which handles noise exactly as before.
    """

    name = NAME
    sync = SYNC

    def __init__(self) -> None:
        """A decoder for one connection."""
        super().__init__()
        self._reader_names: dict[int, str] = {}

    def decode(self, data: bytes, received_at: datetime) -> DecodeResult:
        """Decode the next chunk of bytes: the run of good frames first, then the rest."""
        self._buffer += data
        result = DecodeResult()
        if not self._garbage:  # in the middle of noise the splitter must see every byte
            self._fast_run(result)
        self._drain(result, received_at, final=False)
        return result

    def _fast_run(self, result: DecodeResult) -> None:
        buf = self._buffer
        whole = bytes(buf[: len(buf) - len(buf) % FRAME_LEN])
        if len(whole) >= _BLOCK_MIN_FRAMES * FRAME_LEN:
            taken = self._block_run(whole, result)
        else:
            taken = self._frame_run(whole, result)
        del buf[:taken]

    def _frame_run(self, whole: bytes, result: DecodeResult) -> int:
        """The good frames at the front of ``whole``, one :class:`TagRead` each (few frames:
        cheaper than the numpy set-up of :meth:`_block_run`); returns the bytes taken."""
        names = self._reader_names
        reads = result.reads
        for pos in range(0, len(whole), FRAME_LEN):
            if whole[pos : pos + 4] != _FRAME_HEAD:
                return pos
            body = whole[pos + 2 : pos + FRAME_LEN - 2]
            if binascii.crc_hqx(body, 0xFFFF) != int.from_bytes(
                whole[pos + FRAME_LEN - 2 : pos + FRAME_LEN], "big"
            ):
                return pos
            _, _, reader_id, seq, millis, tag, rssi, flags = _BODY.unpack(body)
            if flags & _RESERVED_MASK or rssi > _RSSI_MAX_DBM:
                return pos  # the splitter rejects it with its reason
            if not _TIME_MIN_MS <= millis <= _TIME_MAX_MS:
                return pos
            name = names.get(reader_id)
            if name is None:
                name = names[reader_id] = format_reader_id(reader_id)
            reads.append(
                TagRead(
                    tag_id=tag.hex().upper(),
                    antenna=_ANTENNA_OF_FLAGS[flags],
                    rssi_dbm=float(rssi),
                    read_at=_EPOCH + timedelta(milliseconds=millis),
                    reader_id=name,
                    reader_seq=seq,
                    tamper=bool(flags & FLAG_TAMPER),
                    low_battery=bool(flags & FLAG_LOW_BATTERY),
                )
            )
        return len(whole)

    def _block_run(self, whole: bytes, result: DecodeResult) -> int:
        """The good frames at the front of ``whole`` as one :class:`ReadBlock`, checked and
        unpacked with numpy (a busy port hands over kilobytes at a time); returns the bytes
        taken. Stops at the first frame that is not good, as :meth:`_frame_run` does."""
        view = memoryview(whole)
        frames = np.frombuffer(whole, dtype=_FRAME)
        crc = np.fromiter(
            (
                binascii.crc_hqx(view[p + 2 : p + FRAME_LEN - 2], 0xFFFF)
                for p in range(0, len(whole), FRAME_LEN)
            ),
            dtype=np.uint16,
            count=len(frames),
        )
        flags = frames["flags"]
        millis = frames["millis"]
        good = (
            (frames["head"] == _HEAD_U32)
            & (crc == frames["crc"])
            & ((flags & _RESERVED_MASK) == 0)
            & (frames["rssi"] <= _RSSI_MAX_DBM)
            & (millis >= _TIME_MIN_MS)
            & (millis <= _TIME_MAX_MS)
        )
        n = len(frames) if good.all() else int(np.argmin(good))
        if n == 0:
            return 0
        frames, flags = frames[:n], flags[:n]
        tag_hex = np.frombuffer(whole, dtype=np.uint8).reshape(-1, FRAME_LEN)[:n, 20:28]
        hex_digits = tag_hex.tobytes().hex().upper()
        tags = np.empty(n, dtype=object)
        tags[:] = [
            hex_digits[i : i + 2 * TAG_ID_BYTES]
            for i in range(0, len(hex_digits), 2 * TAG_ID_BYTES)
        ]
        reader_codes, reader_index = np.unique(frames["reader"], return_inverse=True)
        names = tuple(self._reader_name(code) for code in reader_codes.tolist())
        result.blocks.append(
            ReadBlock(
                tag_id=tags,
                antenna=_ANTENNA_LUT[flags],
                rssi_dbm=frames["rssi"].astype(np.float32),
                read_at_us=frames["millis"].astype(np.int64) * 1000,
                readers=names,
                reader=reader_index.reshape(-1),
                reader_seq=frames["seq"].astype(np.int64),
                tamper=(flags & FLAG_TAMPER).astype(bool),
                low_battery=(flags & FLAG_LOW_BATTERY).astype(bool),
            )
        )
        return n * FRAME_LEN

    def _reader_name(self, reader_id: int) -> str:
        name = self._reader_names.get(reader_id)
        if name is None:
            name = self._reader_names[reader_id] = format_reader_id(reader_id)
        return name

    def frame_size(self, buf: bytearray) -> int:
        """32 once version and length are in and say version 1 / 26 bytes; else not a frame."""
        if len(buf) < 4:
            return NEED_MORE
        # Only version 1 frames are frames: trusting an unknown version's length byte would let
        # one corrupted byte swallow up to 261 bytes of good frames while we wait for it.
        return FRAME_LEN if buf[2] == VERSION and buf[3] == BODY_LEN else NOT_A_FRAME

    def check(self, frame: bytes) -> bool:
        """CRC-16/CCITT-FALSE over version .. flags equals the big-endian CRC field."""
        return crc16_ccitt_false(frame[2:-2]) == int.from_bytes(frame[-2:], "big")

    def frame(self, frame: bytes, result: DecodeResult, received_at: datetime) -> None:
        """One checked frame is one read (or a payload reject)."""
        try:
            result.reads.append(parse_frame(frame))
        except PayloadError as exc:
            result.rejects.append(Reject(exc, frame))


__all__ = [
    "FRAME_LEN",
    "NAME",
    "SYNC",
    "TagtrailActiveDecoder",
    "crc16_ccitt_false",
    "encode_frame",
    "format_reader_id",
    "parse_frame",
]
