"""Zebra IoT Connector (FX7500 / FX9600 / ATR7000 / FXR90): tag data and management JSON.

A tag data event, one per MQTT message or many in a JSON array (HTTP POST / batching)::

    {"data": {"idHex": "e28011606000020528f904fa", "antenna": 1, "peakRssi": -52,
              "eventNum": 123, "format": "epc", "reads": 3, "channel": 921.25},
     "timestamp": "2026-11-29T14:21:45.123+0800", "type": "SIMPLE"}

``type`` names the operating mode (SIMPLE, INVENTORY, PORTAL, CONVEYOR, CUSTOM, ...); the
timestamp is ISO 8601 with milliseconds and a ``±HHMM`` offset in the reader's local zone.
Management events share the envelope; a ``"type": "heartbeat"`` one becomes
``ReaderEvent(kind="heartbeat")`` and other non-tag types become ``ReaderEvent`` with the type,
lower-cased, as ``kind``.

Mapping: ``tag_id`` = ``idHex`` (upper-cased), ``antenna`` = ``antenna``, ``rssi_dbm`` =
``peakRssi``, ``reader_seq`` = ``eventNum``, ``read_at`` = ``timestamp`` in UTC,
``reader_id`` = ``data.hostName`` when the reader is configured to send it, else ``None`` (the
MQTT topic names the reader).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import orjson

from reader_gateway.protocols._common import (
    canonical_tag_hex,
    decode_json_message,
    int_field,
    parse_rfc3339,
    require_aware_utc,
    tag_bytes,
)
from reader_gateway.protocols.base import DecodeResult, PayloadError, ReaderEvent, Reject, TagRead

NAME = "zebra-iotc"

# Operating-mode names under which the connector reports tag data; an event of one of these
# types without a valid idHex is a broken read (rejected), not some other kind of event.
TAG_DATA_TYPES = frozenset(
    {"SIMPLE", "INVENTORY", "PORTAL", "CONVEYOR", "CUSTOM", "DIRECTIONALITY", "ADVANCED"}
)
HEARTBEAT = "heartbeat"

# peakRssi is whole dBm; outside this range the value is corrupt, not a very loud tag.
_RSSI_DBM_MIN, _RSSI_DBM_MAX = -150, 30


def _decode_event(event: object, result: DecodeResult, raw: bytes) -> None:
    """Add one parsed event to ``result`` as a read, a reader event or a reject."""
    try:
        if not isinstance(event, dict):
            raise PayloadError(f"event is not a JSON object but {type(event).__name__}")
        kind, stamp, data = event.get("type"), event.get("timestamp"), event.get("data")
        if not isinstance(kind, str) or not kind:
            raise PayloadError("type missing or not a string")
        if not isinstance(stamp, str):
            raise PayloadError("timestamp missing or not a string")
        at = parse_rfc3339(stamp)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise PayloadError("data is not a JSON object")
        host = data.get("hostName")
        if host is not None and not isinstance(host, str):
            raise PayloadError("data.hostName is not a string")
        if kind.upper() in TAG_DATA_TYPES or "idHex" in data:
            result.reads.append(_tag_read(data, at, host or None))
        else:
            detail: dict[str, object] = {"type": kind, **data}
            result.events.append(
                ReaderEvent(kind=kind.lower(), at=at, reader_id=host or None, detail=detail)
            )
    except PayloadError as exc:
        result.rejects.append(Reject(error=exc, raw=raw))


def _tag_read(data: dict[str, Any], at: datetime, host: str | None) -> TagRead:
    id_hex = data.get("idHex")
    if not isinstance(id_hex, str):
        raise PayloadError("data.idHex missing or not a string")
    antenna = int_field(data, "antenna")
    if antenna < 1:
        raise PayloadError(f"antenna must be >= 1, got {antenna}")
    rssi = data.get("peakRssi")
    if isinstance(rssi, bool) or not isinstance(rssi, int | float) or not math.isfinite(rssi):
        raise PayloadError(f"peakRssi missing or not a number: {rssi!r}")
    if not _RSSI_DBM_MIN <= rssi <= _RSSI_DBM_MAX:
        raise PayloadError(f"peakRssi out of range: {rssi}")
    seq: int | None = None
    if "eventNum" in data:
        seq = int_field(data, "eventNum")
        if seq < 0:
            raise PayloadError(f"eventNum must be >= 0, got {seq}")
    return TagRead(
        tag_id=canonical_tag_hex(id_hex),
        antenna=antenna,
        rssi_dbm=float(rssi),
        read_at=at,
        reader_id=host,
        reader_seq=seq,
    )


def decode_payload(payload: bytes) -> DecodeResult:
    """Decode one complete MQTT message or HTTP POST body (an event or an array of events)."""
    return decode_json_message(payload, _decode_event)


class ZebraIotcDecoder:
    """Decoder for Zebra IoT Connector events; each :meth:`decode` call is one whole message.

    MQTT and HTTP POST both deliver whole JSON documents, so no partial state is kept.
    """

    name = NAME

    def decode(self, data: bytes, received_at: datetime) -> DecodeResult:
        """Decode one complete message; an empty message is a reject."""
        if not data.strip():
            return DecodeResult(rejects=[Reject(PayloadError("empty message"), data)])
        return decode_payload(data)

    def flush(self, received_at: datetime) -> DecodeResult:
        """Nothing is ever buffered between messages."""
        return DecodeResult()


def format_zebra_timestamp(value: datetime, utc_offset_minutes: int = 0) -> str:
    """Format like the connector: local time, milliseconds, ``±HHMM`` (``...45.123+0800``).

    Sub-millisecond digits are truncated, as the reader does.
    """
    if not -24 * 60 < utc_offset_minutes < 24 * 60:
        raise ValueError(f"UTC offset out of range: {utc_offset_minutes} min")
    local = require_aware_utc(value) + timedelta(minutes=utc_offset_minutes)
    sign = "-" if utc_offset_minutes < 0 else "+"
    hh, mm = divmod(abs(utc_offset_minutes), 60)
    return (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}T"
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}."
        f"{local.microsecond // 1000:03d}{sign}{hh:02d}{mm:02d}"
    )


def encode_tag_data_event(
    *,
    tag_id: str,
    antenna: int,
    rssi_dbm: float,
    read_at: datetime,
    event_num: int,
    mode_type: str = "SIMPLE",
    utc_offset_minutes: int = 0,
    hostname: str | None = None,
) -> bytes:
    """Build the compact JSON of one tag data event, as the IoT Connector publishes it.

    ``idHex`` is lower-case hex (what the connector sends); ``peakRssi`` is ``round(rssi_dbm)``;
    the timestamp is in the reader's local zone given by ``utc_offset_minutes``, to the
    millisecond. Raises ``ValueError`` for a bad tag id, antenna, event number or naive time.
    """
    raw = tag_bytes(tag_id)
    if antenna < 1:
        raise ValueError(f"antenna must be >= 1, got {antenna}")
    if event_num < 0:
        raise ValueError(f"event_num must be >= 0, got {event_num}")
    data: dict[str, object] = {
        "eventNum": event_num,
        "format": "epc",
        "idHex": raw.hex(),
        "antenna": antenna,
        "peakRssi": round(rssi_dbm),
    }
    if hostname is not None:
        data["hostName"] = hostname
    return orjson.dumps(
        {
            "data": data,
            "timestamp": format_zebra_timestamp(read_at, utc_offset_minutes),
            "type": mode_type,
        }
    )


def encode_heartbeat(
    *, at: datetime, utc_offset_minutes: int = 0, data: dict[str, object] | None = None
) -> bytes:
    """Build a management heartbeat event (``"type": "heartbeat"``)."""
    body: dict[str, object] = data if data is not None else {"radioConnection": "connected"}
    return orjson.dumps(
        {
            "data": body,
            "timestamp": format_zebra_timestamp(at, utc_offset_minutes),
            "type": HEARTBEAT,
        }
    )


def encode_batch(events: list[bytes]) -> bytes:
    """Join encoded events into one JSON array (an HTTP POST batch)."""
    return b"[" + b",".join(events) + b"]"


__all__ = [
    "NAME",
    "ZebraIotcDecoder",
    "decode_payload",
    "encode_batch",
    "encode_heartbeat",
    "encode_tag_data_event",
    "format_zebra_timestamp",
]
