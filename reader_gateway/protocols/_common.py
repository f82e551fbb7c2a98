"""Small helpers shared by several decoders: tag ids, RFC 3339 timestamps, aware-UTC checks.

Private to :mod:`reader_gateway.protocols`; every failure is a :class:`PayloadError` so that a
decoder can turn it into a :class:`Reject` without knowing which helper refused the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import orjson

from reader_gateway.protocols.base import DecodeResult, PayloadError, Reject
from reader_gateway.wire import tag_id_problem

# RFC 3339 date-time. Impinj sends nanosecond fractions and "Z"; Zebra sends milliseconds and a
# "+0800" offset without the colon (ISO 8601 basic form), so the colon is optional here.
_RFC3339_RE = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt ]"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:\.(?P<frac>[0-9]{1,9}))?"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:?[0-9]{2})",
    re.ASCII,
)


def canonical_tag_hex(value: str) -> str:
    """Return ``value`` as a canonical tag id (upper-case hex), or raise :class:`PayloadError`.

    The rule is :func:`reader_gateway.wire.tag_id_problem`, the one the registry validates with.
    """
    problem = tag_id_problem(value)
    if problem is not None:
        raise PayloadError(problem)
    return value.upper()


def tag_bytes(tag_id: str) -> bytes:
    """Bytes of a tag id given as hex (for encoders); raises ``ValueError`` on bad input."""
    try:
        return bytes.fromhex(canonical_tag_hex(tag_id))
    except PayloadError as exc:
        raise ValueError(str(exc)) from exc


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime.

    Fractions finer than a microsecond (Impinj sends nanoseconds) are *truncated*, not rounded:
    rounding could carry into the next second and would make two reads 400 ns apart swap order.
    Leap seconds (``:60``) are refused; Python's datetime cannot hold them.
    """
    m = _RFC3339_RE.fullmatch(value)
    if m is None:
        raise PayloadError(f"not an RFC 3339 timestamp: {value[:60]!r}")
    frac = m["frac"] or ""
    micros = int((frac + "000000")[:6])
    tz_text = m["tz"]
    try:
        if tz_text in ("Z", "z"):
            tz: timezone = UTC
        else:
            sign = -1 if tz_text[0] == "-" else 1
            digits = tz_text[1:].replace(":", "")
            hours, minutes = int(digits[:2]), int(digits[2:])
            if hours > 23 or minutes > 59:
                raise PayloadError(f"bad UTC offset in timestamp: {value[:60]!r}")
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        local = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"]),
            int(m["mi"]),
            int(m["s"]),
            micros,
            tzinfo=tz,
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise PayloadError(f"impossible timestamp {value[:60]!r}: {exc}") from exc


def require_aware_utc(value: datetime, what: str = "timestamp") -> datetime:
    """Return ``value`` in UTC; raise ``ValueError`` for a naive datetime (encoders use this)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


def format_rfc3339_nanos(value: datetime) -> str:
    """Format an aware datetime as RFC 3339 UTC with nine fraction digits and ``Z``.

    Python keeps microseconds, so the last three digits are always ``000``; real readers send
    the same shape with sub-microsecond digits, which :func:`parse_rfc3339` truncates.
    """
    utc = require_aware_utc(value)
    # Formatted by hand: strftime("%Y") does not zero-pad years before 1000 on glibc.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T"
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}000Z"
    )


EventHandler = Callable[[object, DecodeResult, bytes], None]


def decode_json_message(payload: bytes, handle_event: EventHandler) -> DecodeResult:
    """Decode one complete JSON payload: a single event object or an array (batch) of events.

    ``handle_event(event, result, raw)`` adds one parsed event to ``result``. A payload that is
    not JSON gives one :class:`PayloadError` reject carrying the whole payload. In an array each
    element is handled on its own, with ``raw`` = that element re-serialized (the array itself
    parsed, so the element's own bytes are the useful thing to quarantine).
    """
    result = DecodeResult()
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        result.rejects.append(Reject(error=PayloadError(f"bad JSON: {exc}"), raw=payload))
        return result
    decode_json_value(parsed, payload, handle_event, result)
    return result


def decode_json_value(
    parsed: object, raw: bytes, handle_event: EventHandler, result: DecodeResult
) -> None:
    """Hand an already parsed event, or each element of a parsed array, to ``handle_event``."""
    if isinstance(parsed, list):
        for element in parsed:
            handle_event(element, result, orjson.dumps(element))
    else:
        handle_event(parsed, result, raw)


def int_field(body: dict[str, object], key: str) -> int:
    """``body[key]`` as a JSON integer, or raise :class:`PayloadError` (``true`` is no integer)."""
    value = body.get(key)
    # bool is an int subclass in Python; JSON true is not a port number.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(f"{key} missing or not an integer: {value!r}")
    return value
