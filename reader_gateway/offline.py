"""Offline decoding of captured reader bytes, for people debugging a reader (``tagtrail decode``).

A capture is what a reader sent: raw serial bytes, bytes written as hex text (``--hex``), an
NDJSON stream, or JSON messages. Stream protocols get the whole capture as one stream. Message
protocols (one JSON document per MQTT message) get the file as one message when it parses as
one JSON document, else one message per non-empty line (how ``mosquitto_sub`` prints them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import orjson

from reader_gateway.protocols import make_decoder
from reader_gateway.protocols.base import DecodeResult

# Protocols whose decoder takes one whole message per call rather than a byte stream.
MESSAGE_PROTOCOLS = frozenset({"impinj-iot", "zebra-iotc"})
_HEX_NOISE = re.compile(rb"0x|[\s:,-]", re.IGNORECASE)


class CaptureError(ValueError):
    """A capture that cannot even be read as the asked-for input (e.g. bad hex text)."""


def parse_hex_text(text: bytes) -> bytes:
    """Bytes from hex text; whitespace, ``:,-`` separators, ``0x`` and ``#`` comments are ok."""
    lines = [line.split(b"#", 1)[0] for line in text.splitlines()]
    digits = _HEX_NOISE.sub(b"", b"".join(lines))
    try:
        return bytes.fromhex(digits.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CaptureError(f"not hex text: {exc}") from exc


def _messages(data: bytes) -> list[bytes]:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return [line for line in data.splitlines() if line.strip()]
    return [data]


def decode_capture(protocol: str, data: bytes, *, received_at: datetime) -> DecodeResult:
    """Decode a whole capture with a fresh decoder of ``protocol`` (received at ``received_at``).

    Raises :class:`~reader_gateway.protocols.UnknownProtocolError` for an unknown protocol.
    """
    decoder = make_decoder(protocol)
    result = DecodeResult()
    chunks = _messages(data) if protocol in MESSAGE_PROTOCOLS else [data]
    for chunk in chunks:
        result.extend(decoder.decode(chunk, received_at))
    result.extend(decoder.flush(received_at))
    return result


def result_lines(result: DecodeResult, *, events: bool = False) -> Iterator[dict[str, object]]:
    """One JSON-ready dict per read, per rejected frame, and (with ``events``) per event."""
    for read in result.tag_reads():
        line: dict[str, object] = {
            "tag_id": read.tag_id,
            "antenna": read.antenna,
            "rssi_dbm": read.rssi_dbm,
            "read_at": read.read_at.isoformat().replace("+00:00", "Z"),
        }
        if read.reader_id is not None:
            line["reader_id"] = read.reader_id
        if read.reader_seq is not None:
            line["reader_seq"] = read.reader_seq
        if read.channel is not None:
            line["channel"] = read.channel
        if read.tamper or read.low_battery:
            line["tamper"], line["low_battery"] = read.tamper, read.low_battery
        yield line
    for reject in result.rejects:
        yield {
            "rejected": reject.reason,
            "error": str(reject.error),
            "bytes": len(reject.raw),
            "raw_hex": reject.raw[:64].hex().upper(),
        }
    if events:
        for event in result.events:
            yield {
                "event": event.kind,
                "at": event.at.isoformat().replace("+00:00", "Z"),
                "reader_id": event.reader_id,
                "detail": event.detail,
            }
