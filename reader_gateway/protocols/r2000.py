"""R2000-family UHF reader serial protocol (Impinj R2000 modules and their many clones).

Every frame, both directions::

    A0 | Len | Addr | Cmd | Data ... | Check
    Len   = number of bytes after Len (Addr .. Check) = len(Data) + 3
    Check = two's complement of the sum of all preceding bytes (A0 .. last Data byte), mod 256

Real-time inventory (cmd 0x89, fast antenna switch 0x8A, session/target 0x8B) answers with:

- a tag frame per read: ``FreqAnt | PC(2) | EPC(n) | RSSI``; antenna = (FreqAnt & 3) + 1
  (+4 when the RSSI byte's top bit is set, on 8-port readers), channel = FreqAnt >> 2, EPC
  length = (PC >> 11) words, RSSI dBm = (raw & 0x7F) - 129;
- a round summary when the round ends (Len 0x0A, 7 data bytes): for 0x89/0x8B
  ``Ant | ReadRate(2) | TotalRead(4)``, for 0x8A ``TotalRead(3) | Duration ms(4)``;
- an error frame (Len 0x04): one error code byte.

The reader stops after each round, so the decoder answers a round summary with a fresh
inventory command in ``DecodeResult.reply``. Serial frames carry no timestamp: ``read_at`` is
the ``received_at`` of the chunk that completed the frame.
"""

from __future__ import annotations

import struct
from datetime import datetime

from reader_gateway.protocols._common import canonical_tag_hex, tag_bytes
from reader_gateway.protocols._stream import NEED_MORE, NOT_A_FRAME, FrameSplitter
from reader_gateway.protocols.base import DecodeResult, PayloadError, ReaderEvent, Reject, TagRead

NAME = "r2000"
HEAD = 0xA0
CMD_REALTIME_INVENTORY = 0x89
CMD_FAST_SWITCH_INVENTORY = 0x8A
CMD_SESSION_INVENTORY = 0x8B
INVENTORY_COMMANDS = frozenset({0x89, 0x8A, 0x8B})
_SUMMARY_DATA_LEN = 7
_RSSI_OFFSET = 129

# Error codes of the R2000 reference protocol that a reader sends in inventory error frames.
ERROR_NAMES = {
    0x11: "fail",
    0x20: "mcu_reset_error",
    0x21: "cw_on_error",
    0x22: "antenna_missing",
    0x31: "tag_inventory_error",
    0x36: "no_tag",
    0x52: "pll_lock_fail",
    0x53: "rf_chip_no_response",
    0x54: "output_power_not_reached",
    0x56: "spectrum_regulation_error",
    0x57: "output_power_too_low",
}


def checksum(data: bytes) -> int:
    """Two's complement of the byte sum of ``data`` (A0 .. last data byte), mod 256."""
    return -sum(data) & 0xFF


def encode_frame(address: int, cmd: int, data: bytes = b"") -> bytes:
    """Build one frame ``A0 Len Addr Cmd Data Check``; raises ``ValueError`` if it cannot fit."""
    if not (0 <= address <= 0xFF and 0 <= cmd <= 0xFF):
        raise ValueError("address and cmd must be bytes")
    if len(data) > 0xFF - 3:
        raise ValueError(f"data too long for one frame: {len(data)} bytes")
    body = bytes([HEAD, len(data) + 3, address, cmd]) + data
    return body + bytes([checksum(body)])


def encode_realtime_inventory(*, address: int = 0xFF, repeat: int = 1) -> bytes:
    """Host command 0x89: run ``repeat`` real-time inventory rounds."""
    return encode_frame(address, CMD_REALTIME_INVENTORY, bytes([repeat]))


def encode_session_inventory(
    *, address: int = 0xFF, session: int = 1, target: int = 0, repeat: int = 1
) -> bytes:
    """Host command 0x8B: real-time inventory with Gen2 session (S0-S3) and target (A=0/B=1)."""
    return encode_frame(address, CMD_SESSION_INVENTORY, bytes([session, target, repeat]))


def encode_tag_frame(
    *,
    tag_id: str,
    antenna: int,
    rssi_dbm: float,
    address: int = 0xFF,
    cmd: int = CMD_REALTIME_INVENTORY,
    channel: int = 0,
) -> bytes:
    """Build the tag frame a reader sends for one read.

    ``tag_id`` must be whole 16-bit words (1-31); ``antenna`` 1-8 (5-8 set the RSSI top bit);
    ``round(rssi_dbm)`` must be in -129..-2 dBm; ``channel`` 0-63. Raises ``ValueError``.
    """
    epc = tag_bytes(tag_id)
    if len(epc) % 2 or len(epc) > 62:
        raise ValueError("EPC must be 1-31 whole 16-bit words")
    if not 1 <= antenna <= 8:
        raise ValueError(f"antenna must be 1-8, got {antenna}")
    if not 0 <= channel <= 63:
        raise ValueError(f"channel must be 0-63, got {channel}")
    raw_rssi = round(rssi_dbm) + _RSSI_OFFSET
    if not 0 <= raw_rssi <= 0x7F:
        raise ValueError(f"RSSI {rssi_dbm} dBm cannot be encoded (range -129..-2 dBm)")
    freq_ant = (channel << 2) | ((antenna - 1) & 0x03)
    rssi_byte = raw_rssi | (0x80 if antenna > 4 else 0)
    pc = (len(epc) // 2) << 11
    return encode_frame(
        address, cmd, bytes([freq_ant]) + struct.pack(">H", pc) + epc + bytes([rssi_byte])
    )


def encode_round_end(
    *,
    address: int = 0xFF,
    cmd: int = CMD_REALTIME_INVENTORY,
    antenna: int = 1,
    read_rate: int = 0,
    total_read: int = 0,
    duration_ms: int = 0,
) -> bytes:
    """Build the round summary a reader sends when an inventory round ends.

    0x89/0x8B: ``Ant(1) ReadRate(2) TotalRead(4)``; 0x8A: ``TotalRead(3) Duration(4)``.
    """
    if cmd == CMD_FAST_SWITCH_INVENTORY:
        data = total_read.to_bytes(3, "big") + duration_ms.to_bytes(4, "big")
    else:
        data = struct.pack(">BHI", antenna - 1, read_rate, total_read)
    return encode_frame(address, cmd, data)


def encode_error(*, address: int = 0xFF, cmd: int = CMD_REALTIME_INVENTORY, code: int) -> bytes:
    """Build an error frame: one error code byte (e.g. 0x22 antenna missing)."""
    return encode_frame(address, cmd, bytes([code]))


class R2000Decoder(FrameSplitter):
    """Stream decoder for one R2000 serial connection.

    ``inventory_command``: the exact command to re-send when a round ends. By default the
    decoder re-sends 0x89 (``repeat`` rounds) or 0x8B (session 1, target A) to the address the
    summary came from; for 0x8A it re-sends only a configured command, because the antenna
    sequence it needs is deployment configuration the frame does not carry.
    """

    name = NAME
    sync = bytes([HEAD])

    def __init__(self, *, inventory_command: bytes | None = None, repeat: int = 1) -> None:
        super().__init__()
        self.inventory_command = inventory_command
        self.repeat = repeat

    def frame_size(self, buf: bytearray) -> int:
        """``Len + 2`` once the length byte is in; Len < 3 cannot hold Addr, Cmd and Check."""
        if len(buf) < 2:
            return NEED_MORE
        return buf[1] + 2 if buf[1] >= 3 else NOT_A_FRAME

    def check(self, frame: bytes) -> bool:
        """Two's-complement checksum over everything before the last byte."""
        return checksum(frame[:-1]) == frame[-1]

    def frame(self, frame: bytes, result: DecodeResult, received_at: datetime) -> None:
        """Dispatch one checked frame: tag read, round summary, error or other response."""
        address, cmd, data = frame[2], frame[3], frame[4:-1]
        if cmd not in INVENTORY_COMMANDS:
            detail: dict[str, object] = {"address": address, "cmd": cmd, "data": data.hex().upper()}
            result.events.append(ReaderEvent("response", received_at, detail=detail))
            return
        if len(data) == 1:
            code = data[0]
            detail = {"address": address, "cmd": cmd, "code": code}
            detail["error"] = ERROR_NAMES.get(code, f"0x{code:02X}")
            result.events.append(ReaderEvent("reader_error", received_at, detail=detail))
        elif len(data) == _SUMMARY_DATA_LEN:
            result.events.append(
                ReaderEvent("round_end", received_at, detail=_summary(address, cmd, data))
            )
            result.reply += self._resend(address, cmd)
        else:
            try:
                result.reads.append(_tag_read(data, received_at))
            except PayloadError as exc:
                result.rejects.append(Reject(exc, frame))

    def _resend(self, address: int, cmd: int) -> bytes:
        if self.inventory_command is not None:
            return self.inventory_command
        if cmd == CMD_REALTIME_INVENTORY:
            return encode_realtime_inventory(address=address, repeat=self.repeat)
        if cmd == CMD_SESSION_INVENTORY:
            return encode_session_inventory(address=address, repeat=self.repeat)
        return b""


def _summary(address: int, cmd: int, data: bytes) -> dict[str, object]:
    if cmd == CMD_FAST_SWITCH_INVENTORY:
        return {
            "address": address,
            "cmd": cmd,
            "total_read": int.from_bytes(data[:3], "big"),
            "duration_ms": int.from_bytes(data[3:], "big"),
        }
    ant, rate, total = struct.unpack(">BHI", data)
    return {
        "address": address,
        "cmd": cmd,
        "antenna": ant + 1,
        "read_rate": rate,
        "total_read": total,
    }


def _tag_read(data: bytes, received_at: datetime) -> TagRead:
    if len(data) < 4:
        raise PayloadError(f"tag frame data too short: {len(data)} bytes")
    freq_ant, (pc,), epc, rssi_byte = data[0], struct.unpack(">H", data[1:3]), data[3:-1], data[-1]
    words = pc >> 11
    if words == 0:
        raise PayloadError("PC says the tag has no EPC")
    if len(epc) != words * 2:
        raise PayloadError(f"PC says {words} EPC words but the frame holds {len(epc)} bytes")
    antenna = (freq_ant & 0x03) + 1 + (4 if rssi_byte & 0x80 else 0)
    return TagRead(
        tag_id=canonical_tag_hex(epc.hex()),
        antenna=antenna,
        rssi_dbm=float((rssi_byte & 0x7F) - _RSSI_OFFSET),
        read_at=received_at,
    )


__all__ = [
    "NAME",
    "R2000Decoder",
    "checksum",
    "encode_error",
    "encode_frame",
    "encode_realtime_inventory",
    "encode_round_end",
    "encode_session_inventory",
    "encode_tag_frame",
]
