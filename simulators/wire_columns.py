"""Whole-column encoders: many reads to their wire bytes at once, without a Python loop per read.

The gateway's encoders (:mod:`reader_gateway.protocols`) build one message per call, about
4 µs each — 450 s of one core for a day of 100,000 bikes. These build the *same bytes* for
whole columns (``tests/simulators/test_wire_columns.py`` checks them byte for byte against the
gateway's encoders, which stay the definition of each format):

- a message is assembled column by column into a ``(rows, width)`` byte matrix with a mask of
  the bytes that are really there (numbers and names have varying widths); the masked matrix,
  read row by row, is the messages one after the other (:class:`ByteRows`);
- numbers become ASCII digits arithmetically, dates by the civil-from-days algorithm
  (H. Hinnant), R2000 checksums by summing byte columns, CRC-16/CCITT-FALSE with a table over
  the frame's 28 byte columns.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols import r2000, tagtrail_active

U8 = np.uint8
Table = tuple[NDArray[np.uint8], NDArray[np.int64]]  # left-aligned rows and their lengths


class ByteRows:
    """``n`` byte strings built part by part; parts are constant, fixed-width or ragged."""

    def __init__(self, n: int) -> None:
        """Start ``n`` empty rows."""
        self.n = n
        self._parts: list[tuple[NDArray[np.uint8], NDArray[np.int64] | None, bool]] = []

    def prepend(self, mat: NDArray[np.uint8], length: NDArray[np.int64]) -> None:
        """The first ``length`` bytes of each row of ``mat`` before everything else."""
        self._parts.insert(0, (mat, np.asarray(length, np.int64), False))

    def const(self, data: bytes) -> None:
        """The same bytes in every row."""
        self._parts.append((np.frombuffer(data, U8)[None, :], None, True))

    def fixed(self, mat: NDArray[np.uint8]) -> None:
        """One row of ``mat`` per row, all of it."""
        self._parts.append((mat, None, True))

    def ragged(self, mat: NDArray[np.uint8], length: NDArray[np.int64], *, right: bool) -> None:
        """The first (``right=False``) or last (``right=True``) ``length`` bytes of each row."""
        self._parts.append((mat, np.asarray(length, np.int64), right))

    def build(self) -> Table:
        """All rows concatenated, and each row's length."""
        width = sum(m.shape[1] for m, _, _ in self._parts)
        out = np.empty((self.n, width), U8)
        mask = np.ones((self.n, width), bool)
        col = 0
        for mat, length, right in self._parts:
            w = mat.shape[1]
            out[:, col : col + w] = mat
            if length is not None:
                pos = np.arange(w)[None, :]
                keep = pos >= (w - length)[:, None] if right else pos < length[:, None]
                mask[:, col : col + w] = keep
            col += w
        return out[mask], mask.sum(1).astype(np.int64)


def digits(values: NDArray[np.int64], width: int) -> NDArray[np.uint8]:
    """Zero-padded decimal digits of non-negative ``values``, ``width`` columns."""
    v = np.asarray(values, np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((v[:, None] // powers[None, :]) % 10 + 48).astype(U8)


_TABLE_MAX = 1 << 20  # value ranges up to this long are formatted once and looked up


def _lookup(
    values: NDArray[np.int64], make: Callable[[NDArray[np.int64]], tuple[NDArray[Any], ...]]
) -> tuple[NDArray[Any], ...]:
    """``make(values)``, computed over the range of ``values`` and gathered when it is short.

    Reads share few distinct days, seconds of the day, antennas or RSSI levels, so formatting
    each distinct value once and indexing beats integer division on every row.
    """
    v = np.asarray(values, np.int64)
    if len(v) == 0:
        return make(v)
    lo, hi = int(v.min()), int(v.max())
    if hi - lo >= _TABLE_MAX:
        return make(v)
    table = make(np.arange(lo, hi + 1, dtype=np.int64))
    at = v - lo
    return tuple(t[at] for t in table)


def _int_text_direct(values: NDArray[np.int64], width: int) -> Table:
    v = np.asarray(values, np.int64)
    mag = np.abs(v)
    n_digits = np.ones(len(v), np.int64)
    for k in range(1, 19):
        n_digits += mag >= 10**k
    neg = v < 0
    length = n_digits + neg
    if np.any(length > width):
        raise ValueError(f"a number does not fit in {width} characters")
    mat = digits(mag, width)
    if neg.any():
        mat[neg, width - length[neg]] = ord("-")
    return mat, length


def int_text(values: NDArray[np.int64], width: int = 20) -> Table:
    """Decimal text of integers (``-`` for negatives), right-aligned in ``width`` columns."""
    mat, length = _lookup(values, lambda v: _int_text_direct(v, width))
    return mat, length


def civil(
    days: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Year, month, day of days since 1970-01-01 (proleptic Gregorian)."""
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    return yoe + era * 400 + (month <= 2), month, day


def _date_text(days: NDArray[np.int64]) -> tuple[NDArray[np.uint8]]:
    y, m, d = civil(days)
    dash = np.full((len(days), 1), ord("-"), U8)
    return (np.concatenate([digits(y, 4), dash, digits(m, 2), dash, digits(d, 2)], 1),)


def _clock_text(second_of_day: NDArray[np.int64]) -> tuple[NDArray[np.uint8]]:
    s = second_of_day
    colon = np.full((len(s), 1), ord(":"), U8)
    return (np.concatenate([digits(s // 3600, 2), colon, digits(s // 60 % 60, 2), colon,
                            digits(s % 60, 2)], 1),)  # fmt: skip


def _three_digits(v: NDArray[np.int64]) -> tuple[NDArray[np.uint8]]:
    return (digits(v, 3),)


def timestamp_text(at_us: NDArray[np.int64], frac_digits: int) -> NDArray[np.uint8]:
    """``YYYY-MM-DDTHH:MM:SS.f…`` of µs since the epoch, fraction truncated to 3 or 6 digits."""
    if frac_digits not in (3, 6):
        raise ValueError("3 or 6 fraction digits")
    sec, micro = np.divmod(np.asarray(at_us, np.int64), 1_000_000)
    days, sod = np.divmod(sec, 86_400)
    parts = [_lookup(days, _date_text)[0], np.full((len(sec), 1), ord("T"), U8),
             _lookup(sod, _clock_text)[0], np.full((len(sec), 1), ord("."), U8),
             _lookup(micro // 1000, _three_digits)[0]]  # fmt: skip
    if frac_digits == 6:
        parts.append(_lookup(micro % 1000, _three_digits)[0])
    return np.concatenate(parts, 1)


def text_table(texts: list[bytes]) -> Table:
    """A list of byte strings as a left-aligned ``(len, widest)`` matrix and lengths."""
    width = max((len(t) for t in texts), default=0)
    mat = np.zeros((len(texts), width), U8)
    for k, t in enumerate(texts):
        mat[k, : len(t)] = np.frombuffer(t, U8)
    return mat, np.array([len(t) for t in texts], np.int64)


def json_strings(texts: list[str]) -> Table:
    """JSON string literals (quoted and escaped by orjson, as the gateway's encoders do)."""
    return text_table([orjson.dumps(t) for t in texts])


def impinj_events(
    *, host: Table, epc_b64: Table,
    antenna: NDArray[np.int64], rssi_dbm: NDArray[np.float64], read_at_us: NDArray[np.int64],
) -> ByteRows:  # fmt: skip
    """``tagInventory`` events; ``host`` and ``epc_b64`` are per-row JSON/base64 text."""
    if np.any(antenna < 1):
        raise ValueError("antenna must be >= 1")
    rows = ByteRows(len(antenna))
    rows.const(b'{"timestamp":"')
    rows.fixed(timestamp_text(read_at_us, 6))
    rows.const(b'000Z","hostname":')
    rows.ragged(*host, right=False)
    rows.const(b',"eventType":"tagInventory","tagInventoryEvent":{"epc":"')
    rows.ragged(*epc_b64, right=False)
    rows.const(b'","antennaPort":')
    rows.ragged(*int_text(antenna, 4), right=True)
    rows.const(b',"antennaName":"Antenna ')
    rows.ragged(*int_text(antenna, 4), right=True)
    rows.const(b'","peakRssiCdbm":')
    rows.ragged(*int_text(np.round(rssi_dbm * 100).astype(np.int64), 8), right=True)
    rows.const(b"}}")
    return rows


def _zebra_time(
    at_us: NDArray[np.int64], utc_offset_minutes: int
) -> tuple[NDArray[np.uint8], bytes]:
    local = np.asarray(at_us, np.int64) + utc_offset_minutes * 60_000_000
    hh, mm = divmod(abs(utc_offset_minutes), 60)
    return timestamp_text(
        local, 3
    ), f"{'-' if utc_offset_minutes < 0 else '+'}{hh:02d}{mm:02d}".encode()


def zebra_events(
    *, id_hex: Table, event_num: NDArray[np.int64],
    antenna: NDArray[np.int64], rssi_dbm: NDArray[np.float64], read_at_us: NDArray[np.int64],
    utc_offset_minutes: int,
) -> ByteRows:  # fmt: skip
    """Zebra IoT Connector tag data events (``SIMPLE`` mode, no host name)."""
    if np.any(antenna < 1) or np.any(event_num < 0):
        raise ValueError("antenna must be >= 1 and event_num >= 0")
    stamp, zone = _zebra_time(read_at_us, utc_offset_minutes)
    rows = ByteRows(len(antenna))
    rows.const(b'{"data":{"eventNum":')
    rows.ragged(*int_text(event_num, 19), right=True)
    rows.const(b',"format":"epc","idHex":"')
    rows.ragged(*id_hex, right=False)
    rows.const(b'","antenna":')
    rows.ragged(*int_text(antenna, 4), right=True)
    rows.const(b',"peakRssi":')
    rows.ragged(*int_text(np.round(rssi_dbm).astype(np.int64), 6), right=True)
    rows.const(b'},"timestamp":"')
    rows.fixed(stamp)
    rows.const(zone + b'","type":"SIMPLE"}')
    return rows


def zebra_heartbeats(at_us: NDArray[np.int64], utc_offset_minutes: int) -> ByteRows:
    """Zebra management heartbeats (radio connected) at reader times ``at_us``."""
    stamp, zone = _zebra_time(at_us, utc_offset_minutes)
    rows = ByteRows(len(stamp))
    rows.const(b'{"data":{"radioConnection":"connected"},"timestamp":"')
    rows.fixed(stamp)
    rows.const(zone + b'","type":"heartbeat"}')
    return rows


def epc_table(tag_ids: list[str]) -> Table:
    """Tag ids as bytes (odd or non-hex ids raise ValueError, as the encoders do)."""
    return text_table([bytes.fromhex(t) for t in tag_ids])


def b64_table(tag_ids: list[str]) -> Table:
    """Tag ids as standard base64 of their bytes (Impinj's ``epc``)."""
    return text_table([base64.b64encode(bytes.fromhex(t)) for t in tag_ids])


def hex_table(tag_ids: list[str]) -> Table:
    """Tag ids as lower-case hex (Zebra's ``idHex``)."""
    return text_table([bytes.fromhex(t).hex().encode() for t in tag_ids])


def r2000_frames(
    *, epc: Table, antenna: NDArray[np.int64],
    rssi_dbm: NDArray[np.float64], round_total: NDArray[np.int64],
) -> ByteRows:  # fmt: skip
    """R2000 tag frames (0x89, address 0xFF, channel 0), each followed by a round summary
    where ``round_total > 0`` (the number of tags read in the round it ends)."""
    mat, length = epc
    if np.any(length % 2) or np.any(length > 62) or np.any((antenna < 1) | (antenna > 8)):
        raise ValueError("EPC must be 1-31 whole words and antenna 1-8")
    raw = np.round(rssi_dbm).astype(np.int64) + 129
    if np.any((raw < 0) | (raw > 0x7F)):
        raise ValueError("RSSI out of the R2000 range -129..-2 dBm")
    n = len(antenna)
    pc = (length // 2) << 11
    head = np.stack([np.full(n, r2000.HEAD), length + 7, np.full(n, 0xFF),
                     np.full(n, r2000.CMD_REALTIME_INVENTORY), (antenna - 1) & 0x03,
                     pc >> 8, pc & 0xFF], 1)  # fmt: skip
    rssi_byte = raw | np.where(antenna > 4, 0x80, 0)
    check = -(head.sum(1) + mat.sum(1, dtype=np.int64) + rssi_byte) & 0xFF
    summary = np.stack([np.full(n, r2000.HEAD), np.full(n, 10), np.full(n, 0xFF),
                        np.full(n, r2000.CMD_REALTIME_INVENTORY), antenna - 1,
                        np.zeros(n, np.int64), np.zeros(n, np.int64), (round_total >> 24) & 0xFF,
                        (round_total >> 16) & 0xFF, (round_total >> 8) & 0xFF,
                        round_total & 0xFF], 1)  # fmt: skip
    rows = ByteRows(n)
    rows.fixed(head.astype(U8))
    rows.ragged(mat, length, right=False)
    rows.fixed(np.stack([rssi_byte, check], 1).astype(U8))
    sum_check = -summary.sum(1) & 0xFF
    rows.ragged(np.concatenate([summary, sum_check[:, None]], 1).astype(U8),
                np.where(round_total > 0, 12, 0), right=False)  # fmt: skip
    return rows


def _crc_table() -> NDArray[np.int64]:
    table = np.zeros(256, np.int64)
    for b in range(256):
        crc = b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        table[b] = crc
    return table


_CRC = _crc_table()


def active_frames(
    *, device_id: NDArray[np.int64], seq: NDArray[np.int64], read_at_us: NDArray[np.int64],
    tag: Table, rssi_dbm: NDArray[np.float64],
    antenna: NDArray[np.int64],
) -> ByteRows:  # fmt: skip
    """TagTrail active frames, version 1 (no tamper or battery flags)."""
    mat, length = tag
    rssi = np.round(rssi_dbm).astype(np.int64)
    if np.any(length != tagtrail_active.TAG_ID_BYTES) or np.any((antenna < 1) | (antenna > 4)):
        raise ValueError("active tag ids are 8 bytes and antennas 1-4")
    if np.any((rssi < -128) | (rssi >= 20)):
        raise ValueError("rssi_dbm out of range")
    mat = mat[:, : tagtrail_active.TAG_ID_BYTES]  # the table is as wide as the longest EPC
    millis = np.floor_divide(read_at_us, 1000)
    n = len(seq)

    def be(v: NDArray[np.int64], size: int) -> NDArray[np.int64]:
        return np.stack([(v >> (8 * (size - 1 - k))) & 0xFF for k in range(size)], 1)

    body = np.concatenate([
        np.full((n, 1), tagtrail_active.VERSION), np.full((n, 1), tagtrail_active.BODY_LEN),
        be(device_id, 4), be(seq & 0xFFFF_FFFF, 4), be(millis, 8), mat.astype(np.int64),
        (rssi & 0xFF)[:, None], ((antenna - 1) << 2)[:, None],
    ], 1)  # fmt: skip
    crc = np.full(n, 0xFFFF, np.int64)
    for k in range(body.shape[1]):
        crc = ((crc << 8) & 0xFFFF) ^ _CRC[((crc >> 8) ^ body[:, k]) & 0xFF]
    rows = ByteRows(n)
    rows.const(tagtrail_active.SYNC)
    rows.fixed(np.concatenate([body, be(crc, 2)], 1).astype(U8))
    return rows


def llrp_reports(
    *, message_id: NDArray[np.int64], epc: Table, antenna: NDArray[np.int64],
    rssi_dbm: NDArray[np.float64], read_at_us: NDArray[np.int64],
) -> ByteRows:  # fmt: skip
    """LLRP RO_ACCESS_REPORTs with one TagReportData each: EPC-96 (TV) for 12-byte EPCs,
    EPCData (TLV 241) otherwise, then AntennaID, PeakRSSI (whole dBm) and
    FirstSeenTimestampUTC — what :func:`llrp_encode.encode_ro_access_report` builds."""
    mat, length = epc
    rssi = np.rint(rssi_dbm).astype(np.int64)
    if np.any((rssi < -128) | (rssi > 127)) or np.any((antenna < 1) | (antenna > 0xFFFF)):
        raise ValueError("PeakRSSI must fit a signed byte and antenna ids 1..65535")
    if np.any(read_at_us < 0) or np.any(length == 0):
        raise ValueError("LLRP timestamps cannot precede 1970 and EPCs cannot be empty")
    n = len(length)
    epc96 = length == 12
    epc_part = np.where(epc96, 13, 6 + length)  # TV type + 12 bytes, or TLV head + bit count
    trd_len = 4 + epc_part + 3 + 2 + 9
    msg_len = s.HEADER_LEN + trd_len

    def be(v: NDArray[np.int64], size: int) -> NDArray[np.int64]:
        return np.stack([(v >> (8 * (size - 1 - k))) & 0xFF for k in range(size)], 1)

    head = np.concatenate([
        np.full((n, 1), (1 << 2) | (s.RO_ACCESS_REPORT >> 8)),
        np.full((n, 1), s.RO_ACCESS_REPORT & 0xFF), be(msg_len, 4),
        be(message_id & 0xFFFF_FFFF, 4), be(np.full(n, s.P_TAG_REPORT_DATA), 2), be(trd_len, 2),
    ], 1)  # fmt: skip
    epc_head = np.concatenate([
        np.where(epc96, 0x80 | s.TV_EPC_96, 0)[:, None],
        np.where(epc96, 0, s.P_EPC_DATA)[:, None], be(6 + length, 2), be(8 * length, 2),
    ], 1)  # fmt: skip
    tail = np.concatenate([
        np.full((n, 1), 0x80 | s.TV_ANTENNA_ID), be(antenna, 2),
        np.full((n, 1), 0x80 | s.TV_PEAK_RSSI), (rssi & 0xFF)[:, None],
        np.full((n, 1), 0x80 | s.TV_FIRST_SEEN_UTC), be(read_at_us, 8),
    ], 1)  # fmt: skip
    rows = ByteRows(n)
    rows.fixed(head.astype(U8))
    rows.ragged(epc_head.astype(U8), np.where(epc96, 1, 6), right=False)
    rows.ragged(mat, length, right=False)
    rows.fixed(tail.astype(U8))
    return rows
