"""LLRP (EPCglobal Low Level Reader Protocol 1.0.1/1.1) stream decoder, TCP port 5084.

Framing (header layout in :mod:`reader_gateway.protocols.llrp_spec`): a message is complete
when ``Message Length`` bytes are in, so the decoder keeps a partial message across calls —
TCP hands over arbitrary chunks and one report may straddle many of them.

LLRP has no sync marker and no checksum: once a header is impossible (a version other than
1 or 2, a length below the 10-byte header, a length over ``max_message_bytes``) nothing in the
stream says where the next message starts. The decoder then rejects that header, reports a
``framing_lost`` event (the transport must close the connection and reconnect) and rejects
every later byte in bounded runs. A message that is framed correctly but not understood (an
unknown type, a client-only message, a bad parameter) is rejected alone and decoding goes on.

Messages handled:

- RO_ACCESS_REPORT: each TagReportData becomes a read — EPC from EPC-96 or EPCData,
  AntennaID, PeakRSSI (dBm), read time from FirstSeenTimestampUTC (else LastSeenTimestampUTC,
  else the receive time), ChannelIndex when present; TagSeenCount and unknown TLV parameters
  are skipped.
  A TagReportData without an EPC, antenna or peak RSSI is rejected on its own (the ROSpec the
  gateway sends asks for all three).
- KEEPALIVE: a ``keepalive`` event, and KEEPALIVE_ACK in ``reply``.
- READER_EVENT_NOTIFICATION: a ``reader_event`` event at the reader's UTC timestamp.
- Every *_RESPONSE and ERROR_MESSAGE: a ``response`` event with its LLRPStatus (and, for a
  successful GET_READER_CAPABILITIES_RESPONSE, the parsed ``capabilities``).
- CUSTOM_MESSAGE: a ``custom_message`` event (vendor id and subtype).
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols._common import canonical_tag_hex
from reader_gateway.protocols._stream import MAX_GARBAGE_RUN
from reader_gateway.protocols.base import (
    DecodeResult,
    FramingError,
    PayloadError,
    ReaderEvent,
    Reject,
    TagRead,
    TruncatedError,
)
from reader_gateway.protocols.llrp_caps import parse_capabilities
from reader_gateway.protocols.llrp_encode import encode_keepalive_ack
from reader_gateway.protocols.llrp_params import Param, parse_params

NAME = "llrp"
# Large enough for a report of ~30,000 TagReportData; a reader buffering more than that should
# be told to report more often (ROReportSpec N), not be trusted with unbounded memory.
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
# PeakRSSI is a signed byte; above +30 dBm no tag reply can be (readers transmit at most ~33
# dBm), so such a value is a broken report, bounded as the other decoders bound theirs.
_RSSI_DBM_MAX = 30
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnsupportedVersionError(FramingError):
    """A header whose version field is neither 1 (LLRP 1.0.1) nor 2 (LLRP 1.1)."""

    reason = "version"


class OversizedMessageError(FramingError):
    """A header declaring more bytes than the decoder's configured bound."""

    reason = "oversized"


class UnknownMessageError(PayloadError):
    """A well-framed message of a type no reader sends (unknown, or client-only)."""

    reason = "unknown_message"


class LlrpDecoder:
    """Stream decoder for one LLRP connection (the gateway is the client, the reader the peer)."""

    name = NAME

    def __init__(self, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        if max_message_bytes < s.HEADER_LEN:
            raise ValueError(f"max_message_bytes must be at least {s.HEADER_LEN}")
        self.max_message_bytes = max_message_bytes
        self._buffer = bytearray()
        self._lost = False
        self._garbage = bytearray()

    @property
    def framing_lost(self) -> bool:
        """Whether the stream lost framing; only a new connection can recover it."""
        return self._lost

    def decode(self, data: bytes, received_at: datetime) -> DecodeResult:
        """Decode the next chunk of the TCP stream received at ``received_at``."""
        result = DecodeResult()
        self._buffer += data
        self._drain(result, received_at)
        return result

    def flush(self, received_at: datetime) -> DecodeResult:
        """End of stream: a partial message is rejected as truncated, lost bytes as framing."""
        result = DecodeResult()
        if self._buffer and not self._lost:
            raw = bytes(self._buffer)
            need = _declared_length(raw)
            what = f"of {need} declared" if need is not None else "of a 10-byte header"
            result.rejects.append(
                Reject(TruncatedError(f"stream ended after {len(raw)} bytes {what}"), raw)
            )
            self._buffer.clear()
        self._end_garbage(result)
        return result

    def _drain(self, result: DecodeResult, received_at: datetime) -> None:
        buf = self._buffer
        while buf:
            if self._lost:
                self._add_garbage(bytes(buf), result)
                buf.clear()
                return
            if len(buf) < s.HEADER_LEN:
                return
            first, length, _ = struct.unpack_from(">HII", buf)
            version, mtype = (first >> 10) & 0x07, first & 0x3FF
            if version not in s.SUPPORTED_VERSIONS:
                self._lose(
                    UnsupportedVersionError(f"LLRP version {version} (type {mtype})"),
                    result,
                    received_at,
                )
            elif length < s.HEADER_LEN:
                self._lose(
                    FramingError(f"message length {length} below the 10-byte header"),
                    result,
                    received_at,
                )
            elif length > self.max_message_bytes:
                error = OversizedMessageError(
                    f"message type {mtype} declares {length} bytes, "
                    f"over the {self.max_message_bytes}-byte bound"
                )
                self._lose(error, result, received_at)
            elif len(buf) < length:
                return  # wait for the rest of the message
            else:
                message = bytes(buf[:length])
                del buf[:length]
                try:
                    self._message(message, result, received_at)
                except PayloadError as exc:
                    result.rejects.append(Reject(exc, message))

    def _lose(self, error: FramingError, result: DecodeResult, received_at: datetime) -> None:
        header = bytes(self._buffer[: s.HEADER_LEN])
        del self._buffer[: s.HEADER_LEN]
        result.rejects.append(Reject(error, header))
        detail: dict[str, object] = {"reason": error.reason, "error": str(error)}
        result.events.append(ReaderEvent("framing_lost", received_at, detail=detail))
        self._lost = True

    def _add_garbage(self, data: bytes, result: DecodeResult) -> None:
        # Reported in fixed-size runs so that a peer sending noise cannot grow our memory and
        # so that the runs are the same however the stream was chunked.
        while data:
            room = MAX_GARBAGE_RUN - len(self._garbage)
            self._garbage += data[:room]
            data = data[room:]
            if len(self._garbage) >= MAX_GARBAGE_RUN:
                self._end_garbage(result)

    def _end_garbage(self, result: DecodeResult) -> None:
        if self._garbage:
            raw = bytes(self._garbage)
            error = FramingError(f"{len(raw)} bytes after LLRP framing was lost")
            result.rejects.append(Reject(error, raw))
            self._garbage.clear()

    def _message(self, message: bytes, result: DecodeResult, received_at: datetime) -> None:
        first, _, message_id = struct.unpack_from(">HII", message)
        mtype, body = first & 0x3FF, message[s.HEADER_LEN :]
        if mtype == s.RO_ACCESS_REPORT:
            _report(body, result, received_at)
        elif mtype == s.KEEPALIVE:
            detail: dict[str, object] = {"message_id": message_id}
            result.events.append(ReaderEvent("keepalive", received_at, detail=detail))
            result.reply += encode_keepalive_ack(message_id=message_id)
        elif mtype == s.READER_EVENT_NOTIFICATION:
            result.events.append(_reader_event(body, message_id, received_at))
        elif mtype in s.RESPONSES:
            result.events.append(_response(mtype, body, message_id, received_at))
        elif mtype == s.CUSTOM_MESSAGE:
            if len(body) < 5:
                raise PayloadError(f"CUSTOM_MESSAGE body of {len(body)} bytes, below 5")
            vendor, subtype = struct.unpack_from(">IB", body)
            detail = {"message_id": message_id, "vendor_id": vendor, "subtype": subtype}
            result.events.append(ReaderEvent("custom_message", received_at, detail=detail))
        elif mtype in s.CLIENT_MESSAGES:
            raise UnknownMessageError(f"message type {mtype} is sent by clients, not readers")
        else:
            raise UnknownMessageError(f"unknown LLRP message type {mtype}")


def _declared_length(raw: bytes) -> int | None:
    return int.from_bytes(raw[2:6], "big") if len(raw) >= s.HEADER_LEN else None


def _report(body: bytes, result: DecodeResult, received_at: datetime) -> None:
    params = parse_params(body)  # a broken parameter list rejects the whole message
    for param in params:
        if param.tv or param.type != s.P_TAG_REPORT_DATA:
            continue  # RFSurveyReportData, vendor Custom: nothing the gateway uses
        try:
            result.reads.append(_tag_read(param.value, received_at))
        except PayloadError as exc:
            result.rejects.append(Reject(exc, param.raw))


def _micros_to_utc(micros: int) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=micros)
    except OverflowError as exc:
        raise PayloadError(f"timestamp {micros} us is past year 9999") from exc


# TV fields of a TagReportData the gateway reads, by type: (name, signed).
_TAG_FIELDS: dict[int, tuple[str, bool]] = {
    s.TV_ANTENNA_ID: ("antenna", False),
    s.TV_PEAK_RSSI: ("rssi", True),
    s.TV_FIRST_SEEN_UTC: ("first_seen", False),
    s.TV_LAST_SEEN_UTC: ("last_seen", False),
    s.TV_CHANNEL_INDEX: ("channel", False),
}


def _tag_fields(data: bytes) -> tuple[bytes | None, dict[str, int]]:
    """The EPC and the numeric fields of one TagReportData's parameters."""
    epc: bytes | None = None
    fields: dict[str, int] = {}
    for p in parse_params(data):
        if p.tv and p.type in _TAG_FIELDS:
            name, signed = _TAG_FIELDS[p.type]
            fields[name] = int.from_bytes(p.value, "big", signed=signed)
            continue
        if p.tv and p.type == s.TV_EPC_96:
            value = p.value
        elif not p.tv and p.type == s.P_EPC_DATA:
            value = _epc_data(p.value)
        else:
            continue  # other TV fields; TLVs such as OpSpecResults, vendor Custom
        if epc is not None:
            raise PayloadError("TagReportData with two EPCs")
        epc = value
    return epc, fields


def _tag_read(data: bytes, received_at: datetime) -> TagRead:
    epc, fields = _tag_fields(data)
    antenna, rssi = fields.get("antenna"), fields.get("rssi")
    if epc is None:
        raise PayloadError("TagReportData without EPC-96 or EPCData")
    if antenna is None or antenna == 0:
        raise PayloadError("TagReportData without an AntennaID (enable it in the ROSpec)")
    if rssi is None:
        raise PayloadError("TagReportData without a PeakRSSI (enable it in the ROSpec)")
    if rssi > _RSSI_DBM_MAX:
        raise PayloadError(f"PeakRSSI {rssi} dBm is above {_RSSI_DBM_MAX} dBm")
    micros = fields.get("first_seen", fields.get("last_seen"))
    read_at = received_at if micros is None else _micros_to_utc(micros)
    return TagRead(
        tag_id=canonical_tag_hex(epc.hex()),
        antenna=antenna,
        rssi_dbm=float(rssi),
        read_at=read_at,
        channel=fields.get("channel"),
    )


def _epc_data(value: bytes) -> bytes:
    if len(value) < 2:
        raise PayloadError("EPCData without its bit count")
    bits = int.from_bytes(value[:2], "big")
    size = (bits + 7) // 8
    if bits == 0:
        raise PayloadError("EPCData with an empty EPC")
    if len(value) - 2 < size:
        raise PayloadError(f"EPCData says {bits} bits but holds {len(value) - 2} bytes")
    return value[2 : 2 + size]


def _reader_event(body: bytes, message_id: int, received_at: datetime) -> ReaderEvent:
    data = next(
        (
            p
            for p in parse_params(body)
            if not p.tv and p.type == s.P_READER_EVENT_NOTIFICATION_DATA
        ),
        None,
    )
    if data is None:
        raise PayloadError("READER_EVENT_NOTIFICATION without ReaderEventNotificationData")
    at = received_at
    names: list[str] = []
    antennas: list[dict[str, object]] = []
    detail: dict[str, object] = {"message_id": message_id, "events": names}
    for p in parse_params(data.value):
        if p.tv:
            continue
        if p.type == s.P_UTC_TIMESTAMP and len(p.value) == 8:
            at = _micros_to_utc(int.from_bytes(p.value, "big"))
        elif p.type in s.READER_EVENTS:
            names.append(s.READER_EVENTS[p.type])
            if p.type == s.P_CONNECTION_ATTEMPT_EVENT and len(p.value) >= 2:
                code = int.from_bytes(p.value[:2], "big")
                detail["connection_attempt"] = s.CONNECTION_ATTEMPT_STATUS.get(code, str(code))
            elif p.type == s.P_ANTENNA_EVENT and len(p.value) >= 3:
                kind, antenna = struct.unpack_from(">BH", p.value)
                state = "connected" if kind else "disconnected"
                antennas.append({"antenna": antenna, "state": state})
    if antennas:
        detail["antennas"] = antennas
    return ReaderEvent("reader_event", at, detail=detail)


def _response(mtype: int, body: bytes, message_id: int, received_at: datetime) -> ReaderEvent:
    status = next((p for p in parse_params(body) if not p.tv and p.type == s.P_LLRP_STATUS), None)
    if status is None or len(status.value) < 4:
        raise PayloadError(f"{s.RESPONSES[mtype]} without an LLRPStatus")
    code, text_len = struct.unpack_from(">HH", status.value)
    if 4 + text_len > len(status.value):
        raise PayloadError(f"LLRPStatus description of {text_len} bytes overruns its parameter")
    detail: dict[str, object] = {
        "message": s.RESPONSES[mtype],
        "message_id": message_id,
        "ok": code == 0,
        "status_code": code,
        "status": s.STATUS_CODES.get(code, str(code)),
        "error_description": status.value[4 : 4 + text_len].decode("utf-8", "replace"),
    }
    if mtype == s.GET_READER_CAPABILITIES_RESPONSE and code == 0:
        # The transport checks antennas and looks transmit powers up in it.
        detail["capabilities"] = parse_capabilities(body)
    return ReaderEvent("response", received_at, detail=detail)


__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "NAME",
    "LlrpDecoder",
    "OversizedMessageError",
    "Param",
    "UnknownMessageError",
    "UnsupportedVersionError",
    "parse_params",
]
