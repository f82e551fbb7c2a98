"""Impinj IoT device interface (R700 and later): event JSON over MQTT, webhook and HTTP stream.

Every event is a JSON object with a common envelope and one body named after its type::

    {"timestamp": "2026-11-29T06:21:45.123456789Z", "hostname": "impinj-14-2f-f4",
     "eventType": "tagInventory",
     "tagInventoryEvent": {"epc": "MDT4sgABAAAAAAAB", "antennaPort": 1,
                           "antennaName": "Antenna 1", "peakRssiCdbm": -5650, ...}}

Transports hand us three shapes: one event per MQTT message, a JSON array of events (webhook
POST body), and newline-delimited JSON from ``GET /api/v1/data/stream`` with empty keep-alive
lines. ``ImpinjIotDecoder(mode="message")`` takes the first two, ``mode="stream"`` the third.

Mapping: ``read_at`` = envelope ``timestamp``; ``reader_id`` = ``hostname`` (``None`` if the
reader was configured to leave it out); ``antenna`` = ``antennaPort``; ``rssi_dbm`` =
``peakRssiCdbm / 100``; ``tag_id`` = EPC (``epcHex``, or ``epc`` in base64) in upper-case hex.
Other event types (``antennaConnected``, ``inventoryStatus``, ...) become :class:`ReaderEvent`
with ``kind`` in snake_case (``antenna_connected``) and the body in ``detail``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import datetime
from typing import Any, Literal

import orjson

from reader_gateway.protocols._common import (
    canonical_tag_hex,
    decode_json_message,
    decode_json_value,
    format_rfc3339_nanos,
    int_field,
    parse_rfc3339,
    tag_bytes,
)
from reader_gateway.protocols.base import (
    DecodeResult,
    PayloadError,
    ReaderEvent,
    Reject,
    TagRead,
    TruncatedError,
)

NAME = "impinj-iot"
TAG_INVENTORY = "tagInventory"

# An HTTP stream line longer than this cannot be one event (a tag inventory event with TID and
# user memory is < 2 kB); keeping it would let a broken peer grow our buffer without bound.
MAX_LINE_BYTES = 64 * 1024

# Plausible peak RSSI in centi-dBm: readers report roughly -100 dBm .. -10 dBm; anything past
# these bounds is a corrupt value, not a very loud tag.
_RSSI_CDBM_MIN, _RSSI_CDBM_MAX = -15000, 3000

_B64_RE = re.compile(r"[A-Za-z0-9+/\-_]+={0,2}", re.ASCII)
_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")


def _b64_epc(value: str) -> str:
    """Decode a base64 EPC (standard or URL-safe alphabet, padding optional) to hex."""
    # Readers in the field send both alphabets ("4oARkaUDAGXybMv_" has a URL-safe "_").
    if _B64_RE.fullmatch(value) is None:
        raise PayloadError(f"epc is not base64: {value[:40]!r}")
    std = value.rstrip("=").replace("-", "+").replace("_", "/")
    std += "=" * (-len(std) % 4)
    try:
        raw = base64.b64decode(std, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(f"epc is not base64: {value[:40]!r}") from exc
    if not raw:
        raise PayloadError("epc is empty")
    return canonical_tag_hex(raw.hex())


def _tag_id(body: dict[str, Any]) -> str:
    """The EPC from ``epcHex`` and/or ``epc``; when both are sent they must agree."""
    epc_hex, epc_b64 = body.get("epcHex"), body.get("epc")
    tags: list[str] = []
    if epc_hex is not None:
        if not isinstance(epc_hex, str):
            raise PayloadError("epcHex is not a string")
        tags.append(canonical_tag_hex(epc_hex))
    if epc_b64 is not None:
        if not isinstance(epc_b64, str):
            raise PayloadError("epc is not a string")
        tags.append(_b64_epc(epc_b64))
    if not tags:
        raise PayloadError("tagInventoryEvent has neither epc nor epcHex")
    if len(set(tags)) > 1:
        raise PayloadError("epc and epcHex disagree")
    return tags[0]


def _envelope(event: object) -> tuple[dict[str, Any], str, datetime, str | None]:
    if not isinstance(event, dict):
        raise PayloadError(f"event is not a JSON object but {type(event).__name__}")
    event_type, stamp, host = event.get("eventType"), event.get("timestamp"), event.get("hostname")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError("eventType missing or not a string")
    if not isinstance(stamp, str):
        raise PayloadError("timestamp missing or not a string")
    if host is not None and not isinstance(host, str):
        raise PayloadError("hostname is not a string")
    return event, event_type, parse_rfc3339(stamp), host or None


def _decode_event(event: object, result: DecodeResult, raw: bytes) -> None:
    """Add one parsed event to ``result`` as a read, a reader event or a reject."""
    try:
        env, event_type, at, host = _envelope(event)
        body = env.get(f"{event_type}Event", {})
        if not isinstance(body, dict):
            raise PayloadError(f"{event_type}Event is not a JSON object")
        if event_type != TAG_INVENTORY:
            kind = _CAMEL_RE.sub("_", event_type).lower()
            detail: dict[str, object] = {"event_type": event_type, **body}
            result.events.append(ReaderEvent(kind=kind, at=at, reader_id=host, detail=detail))
            return
        if not body:
            raise PayloadError("tagInventory event without tagInventoryEvent")
        antenna = int_field(body, "antennaPort")
        if antenna < 1:
            raise PayloadError(f"antennaPort must be >= 1, got {antenna}")
        rssi = body.get("peakRssiCdbm")
        if isinstance(rssi, bool) or not isinstance(rssi, int | float) or not math.isfinite(rssi):
            raise PayloadError(f"peakRssiCdbm missing or not a number: {rssi!r}")
        if not _RSSI_CDBM_MIN <= rssi <= _RSSI_CDBM_MAX:
            raise PayloadError(f"peakRssiCdbm out of range: {rssi}")
        read = TagRead(
            tag_id=_tag_id(body), antenna=antenna, rssi_dbm=rssi / 100, read_at=at, reader_id=host
        )
        result.reads.append(read)
    except PayloadError as exc:
        result.rejects.append(Reject(error=exc, raw=raw))


def decode_payload(payload: bytes) -> DecodeResult:
    """Decode one complete payload: a single event object or a JSON array of events.

    A payload that is not JSON gives one reject carrying the whole payload. In an array, each
    bad element is rejected on its own (its ``raw`` is that element re-serialized) and the good
    elements still give reads.
    """
    return decode_json_message(payload, _decode_event)


class ImpinjIotDecoder:
    """Decoder for Impinj IoT device interface events.

    ``mode="message"``: each :meth:`decode` call is one complete MQTT message or webhook body.
    ``mode="stream"``: bytes of the NDJSON HTTP stream, in whatever chunks TCP delivers.
    """

    name = NAME

    def __init__(self, mode: Literal["message", "stream"] = "message") -> None:
        if mode not in ("message", "stream"):
            raise ValueError(f"mode must be 'message' or 'stream', not {mode!r}")
        self.mode = mode
        # The HTTP stream arrives in TCP-sized chunks that do not respect line ends, so the
        # bytes after the last b"\n" are the start of an event whose rest is still in flight:
        # keep them for the next call instead of rejecting half an event.
        self._partial = b""
        # After an over-long line was rejected, drop bytes up to the next newline so that its
        # tail is not decoded (and rejected again) as if it were a line of its own.
        self._skipping = False

    def decode(self, data: bytes, received_at: datetime) -> DecodeResult:
        """Decode one message (message mode) or the next chunk of the stream (stream mode)."""
        if self.mode == "message":
            if not data.strip():
                return DecodeResult(rejects=[Reject(PayloadError("empty message"), data)])
            return decode_payload(data)
        result = DecodeResult()
        buffer = self._partial + data
        *lines, self._partial = buffer.split(b"\n")
        for line in lines:
            if self._skipping:
                self._skipping = False
            elif line.strip():  # empty (or CR-only) lines are the stream's keep-alives
                result.extend(decode_payload(line))
        if self._skipping:
            self._partial = b""
        elif len(self._partial) > MAX_LINE_BYTES:
            error = PayloadError(f"stream line longer than {MAX_LINE_BYTES} bytes")
            result.rejects.append(Reject(error, self._partial))
            self._partial, self._skipping = b"", True
        return result

    def flush(self, received_at: datetime) -> DecodeResult:
        """End of the stream: decode a last line that had no newline, or reject it as cut off."""
        result = DecodeResult()
        rest, self._partial, self._skipping = self._partial, b"", False
        if self.mode != "stream" or not rest.strip():
            return result
        try:
            parsed = orjson.loads(rest)
        except orjson.JSONDecodeError:
            # No proper prefix of a JSON object parses, so unparseable trailing bytes are an
            # event the connection cut short, while a whole object merely lacked its newline.
            error = TruncatedError("stream ended in the middle of a line")
            result.rejects.append(Reject(error, rest))
            return result
        decode_json_value(parsed, rest, _decode_event, result)
        return result


def encode_tag_inventory_event(
    *,
    hostname: str,
    tag_id: str,
    antenna: int,
    rssi_dbm: float,
    read_at: datetime,
    epc_hex: bool = False,
) -> bytes:
    """Build the compact JSON of one ``tagInventory`` event, as an R700 publishes it.

    The EPC goes in ``epc`` as standard base64 (the reader default) or, with ``epc_hex=True``,
    in ``epcHex``. ``peakRssiCdbm`` is ``round(rssi_dbm * 100)``. The timestamp has nine
    fraction digits and ``Z``. Raises ``ValueError`` for a bad tag id, antenna or naive time.
    """
    raw = tag_bytes(tag_id)
    if antenna < 1:
        raise ValueError(f"antenna must be >= 1, got {antenna}")
    epc: dict[str, str] = (
        {"epcHex": raw.hex().upper()} if epc_hex else {"epc": base64.b64encode(raw).decode()}
    )
    body: dict[str, object] = {
        **epc,
        "antennaPort": antenna,
        "antennaName": f"Antenna {antenna}",
        "peakRssiCdbm": round(rssi_dbm * 100),
    }
    return orjson.dumps(
        {
            "timestamp": format_rfc3339_nanos(read_at),
            "hostname": hostname,
            "eventType": TAG_INVENTORY,
            "tagInventoryEvent": body,
        }
    )


def encode_reader_event(
    *, hostname: str, event_type: str, at: datetime, body: dict[str, object]
) -> bytes:
    """Build the compact JSON of a non-inventory event, e.g. ``inventoryStatus``."""
    return orjson.dumps(
        {
            "timestamp": format_rfc3339_nanos(at),
            "hostname": hostname,
            "eventType": event_type,
            f"{event_type}Event": body,
        }
    )


def encode_batch(events: list[bytes]) -> bytes:
    """Join encoded events into one JSON array (a webhook POST body)."""
    return b"[" + b",".join(events) + b"]"


def encode_stream(events: list[bytes], *, keepalive_every: int = 0) -> bytes:
    """Join encoded events as NDJSON; with ``keepalive_every=n`` an empty line after every n."""
    out = bytearray()
    for i, event in enumerate(events, 1):
        out += event + b"\n"
        if keepalive_every and i % keepalive_every == 0:
            out += b"\n"
    return bytes(out)


__all__ = [
    "NAME",
    "ImpinjIotDecoder",
    "decode_payload",
    "encode_batch",
    "encode_reader_event",
    "encode_stream",
    "encode_tag_inventory_event",
]
