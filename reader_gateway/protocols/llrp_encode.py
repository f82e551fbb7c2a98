"""LLRP encoders: the messages the gateway sends a reader, and reader messages for tests.

The gateway's side of a session (LLRP 1.0.1 section 9 order): GET_READER_CAPABILITIES,
DELETE_ROSPEC (all), ADD_ROSPEC, ENABLE_ROSPEC, START_ROSPEC (unless the ROSpec starts
immediately), KEEPALIVE_ACK for each KEEPALIVE, and STOP_ROSPEC / CLOSE_CONNECTION at the end.
The reader's side (RO_ACCESS_REPORT, KEEPALIVE, responses with an LLRPStatus) is encoded here
too, so the tests and the future reader simulator send the same bytes a reader does.

Encoders raise ``ValueError`` for values the wire cannot carry; they never clip.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reader_gateway.protocols import llrp_spec as s
from reader_gateway.protocols._common import require_aware_utc, tag_bytes

_U32 = 0xFFFF_FFFF
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode_message(
    message_type: int, body: bytes = b"", *, message_id: int, version: int = 1
) -> bytes:
    """One message: the 10-byte header (reserved bits zero) followed by ``body``."""
    if not 0 <= message_type < 1 << 10:
        raise ValueError(f"message type must fit 10 bits, got {message_type}")
    if not 0 <= version < 1 << 3:
        raise ValueError(f"version must fit 3 bits, got {version}")
    if not 0 <= message_id <= _U32:
        raise ValueError(f"message id must fit 32 bits, got {message_id}")
    length = s.HEADER_LEN + len(body)
    if length > _U32:
        raise ValueError("message longer than 2**32 - 1 bytes")
    return struct.pack(">HII", (version << 10) | message_type, length, message_id) + body


def tlv(param_type: int, value: bytes = b"") -> bytes:
    """One TLV parameter: type (10 bits), length including the 4-byte header, value."""
    if not 0 <= param_type < 1 << 10:
        raise ValueError(f"TLV type must fit 10 bits, got {param_type}")
    length = s.TLV_HEADER_LEN + len(value)
    if length > 0xFFFF:
        raise ValueError(f"TLV parameter {param_type} longer than 65535 bytes")
    return struct.pack(">HH", param_type, length) + value


def tv(param_type: int, value: bytes) -> bytes:
    """One TV parameter: a byte with the top bit set and the 7-bit type, then the value."""
    if s.TV_LENGTHS.get(param_type) != len(value):
        raise ValueError(f"TV parameter {param_type} cannot hold {len(value)} bytes")
    return bytes([0x80 | param_type]) + value


# ---- what the gateway sends ------------------------------------------------------------------


def encode_get_reader_capabilities(*, message_id: int, requested_data: int = 0) -> bytes:
    """GET_READER_CAPABILITIES; ``requested_data`` 0 asks for all capabilities."""
    return encode_message(s.GET_READER_CAPABILITIES, bytes([requested_data]), message_id=message_id)


def _rospec_id_message(message_type: int, rospec_id: int, message_id: int) -> bytes:
    if not 0 <= rospec_id <= _U32:
        raise ValueError(f"ROSpec id must fit 32 bits, got {rospec_id}")
    return encode_message(message_type, struct.pack(">I", rospec_id), message_id=message_id)


def encode_delete_rospec(*, message_id: int, rospec_id: int = 0) -> bytes:
    """DELETE_ROSPEC; ``rospec_id`` 0 deletes every ROSpec on the reader."""
    return _rospec_id_message(s.DELETE_ROSPEC, rospec_id, message_id)


def encode_enable_rospec(*, message_id: int, rospec_id: int) -> bytes:
    """ENABLE_ROSPEC for one ROSpec."""
    return _rospec_id_message(s.ENABLE_ROSPEC, rospec_id, message_id)


def encode_start_rospec(*, message_id: int, rospec_id: int) -> bytes:
    """START_ROSPEC for one ROSpec (needed when its start trigger is null)."""
    return _rospec_id_message(s.START_ROSPEC, rospec_id, message_id)


def encode_stop_rospec(*, message_id: int, rospec_id: int) -> bytes:
    """STOP_ROSPEC for one ROSpec."""
    return _rospec_id_message(s.STOP_ROSPEC, rospec_id, message_id)


def encode_keepalive_ack(*, message_id: int) -> bytes:
    """KEEPALIVE_ACK, echoing the message id of the KEEPALIVE it answers."""
    return encode_message(s.KEEPALIVE_ACK, message_id=message_id)


def encode_close_connection(*, message_id: int) -> bytes:
    """CLOSE_CONNECTION: the reader answers CLOSE_CONNECTION_RESPONSE, then closes."""
    return encode_message(s.CLOSE_CONNECTION, message_id=message_id)


def encode_set_keepalive(*, message_id: int, period_ms: int) -> bytes:
    """SET_READER_CONFIG with only a periodic KeepaliveSpec (220): a KEEPALIVE every
    ``period_ms``, whose absence tells the gateway the connection is dead."""
    if not 0 < period_ms <= _U32:
        raise ValueError(f"keepalive period must be 1..2**32-1 ms, got {period_ms}")
    spec = tlv(s.P_KEEPALIVE_SPEC, struct.pack(">BI", 1, period_ms))  # 1 = Periodic
    return encode_message(s.SET_READER_CONFIG, b"\x00" + spec, message_id=message_id)


def encode_impinj_enable_extensions(*, message_id: int) -> bytes:
    """IMPINJ_ENABLE_EXTENSIONS (CUSTOM_MESSAGE, Impinj subtype 21): lets an Impinj reader
    accept its vendor parameters (the inventory search mode)."""
    body = struct.pack(">IBI", s.IMPINJ_VENDOR_ID, s.IMPINJ_ENABLE_EXTENSIONS, 0)
    return encode_message(s.CUSTOM_MESSAGE, body, message_id=message_id)


# What the gateway needs in every TagReportData: the decoder refuses reports without antenna
# or peak RSSI, and uses the first-seen UTC time as the read time.
DEFAULT_REPORT_CONTENT = (
    s.SELECT_ANTENNA_ID
    | s.SELECT_CHANNEL_INDEX
    | s.SELECT_PEAK_RSSI
    | s.SELECT_FIRST_SEEN
    | s.SELECT_LAST_SEEN
    | s.SELECT_TAG_SEEN_COUNT
)


def encode_tag_report_content_selector(flags: int = DEFAULT_REPORT_CONTENT) -> bytes:
    """TagReportContentSelector (238): which fields each TagReportData carries."""
    if flags & 0x3F or not 0 <= flags <= 0xFFFF:
        raise ValueError(f"content selector flags must use the top 10 of 16 bits: {flags:#x}")
    return tlv(s.P_TAG_REPORT_CONTENT_SELECTOR, struct.pack(">H", flags))


def encode_custom(vendor_id: int, subtype: int, value: bytes = b"") -> bytes:
    """A vendor Custom parameter (1023): vendor PEN, 32-bit subtype, vendor-defined bytes."""
    return tlv(s.P_CUSTOM, struct.pack(">II", vendor_id, subtype) + value)


def encode_antenna_configuration(
    *,
    antenna_id: int = 0,
    power_index: int | None = None,
    session: int | None = None,
    tag_population: int = 32,
    search_mode: int | None = None,
) -> bytes:
    """AntennaConfiguration (222) for ``antenna_id`` (0 = every antenna of the AISpec).

    ``power_index`` is an index into the reader's TransmitPowerLevelTable (from its
    capabilities), sent in an RFTransmitter (hop table 1, channel 1: a hopping reader ignores
    the channel, a fixed-frequency one the hop table). ``session`` (0-3) goes in a
    C1G2SingulationControl; ``search_mode`` is Impinj's InventorySearchMode (a vendor Custom
    parameter that only Impinj readers accept). Fields left ``None`` keep the reader's own.
    """
    if not 0 <= antenna_id <= 0xFFFF:
        raise ValueError(f"antenna id must be 0..65535, got {antenna_id}")
    body = struct.pack(">H", antenna_id)
    if power_index is not None:
        if not 1 <= power_index <= 0xFFFF:
            raise ValueError(f"power index must be 1..65535, got {power_index}")
        body += tlv(s.P_RF_TRANSMITTER, struct.pack(">HHH", 1, 1, power_index))
    if session is not None or search_mode is not None:
        command = b"\x00"  # TagInventoryStateAware = 0
        if session is not None:
            if not 0 <= session <= 3:
                raise ValueError(f"Gen2 session must be 0..3, got {session}")
            if not 0 <= tag_population <= 0xFFFF:
                raise ValueError(f"tag population must fit 16 bits, got {tag_population}")
            control = struct.pack(">BHI", session << 6, tag_population, 0)
            command += tlv(s.P_C1G2_SINGULATION_CONTROL, control)
        if search_mode is not None:
            if not 0 <= search_mode <= 0xFFFF:
                raise ValueError(f"search mode must fit 16 bits, got {search_mode}")
            command += encode_custom(
                s.IMPINJ_VENDOR_ID, s.IMPINJ_INVENTORY_SEARCH_MODE, struct.pack(">H", search_mode)
            )
        body += tlv(s.P_C1G2_INVENTORY_COMMAND, command)
    return tlv(s.P_ANTENNA_CONFIGURATION, body)


def encode_rospec(
    *,
    rospec_id: int,
    antennas: Sequence[int] = (0,),
    start_immediately: bool = False,
    report_every_n_tags: int = 1,
    content: int = DEFAULT_REPORT_CONTENT,
    antenna_configurations: Sequence[bytes] = (),
) -> bytes:
    """A simple ROSpec (177): inventory Gen2 tags on ``antennas`` (0 = all) until stopped.

    The ROSpec starts disabled with a null start trigger (START_ROSPEC starts it) unless
    ``start_immediately``; it never stops by itself, and it reports every
    ``report_every_n_tags`` tags or at the end of the ROSpec. ``antenna_configurations``
    (from :func:`encode_antenna_configuration`) go into its InventoryParameterSpec.
    """
    if not 0 < rospec_id <= _U32:
        raise ValueError(f"ROSpec id must be 1..2**32-1, got {rospec_id}")
    if not antennas or any(not 0 <= a <= 0xFFFF for a in antennas):
        raise ValueError(f"antenna ids must be 0..65535 (0 = all): {antennas!r}")
    if not 0 <= report_every_n_tags <= 0xFFFF:
        raise ValueError(f"N must fit 16 bits, got {report_every_n_tags}")
    start = tlv(s.P_ROSPEC_START_TRIGGER, bytes([1 if start_immediately else 0]))
    stop = tlv(s.P_ROSPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0))  # null: runs until stopped
    boundary = tlv(s.P_RO_BOUNDARY_SPEC, start + stop)
    ai_stop = tlv(s.P_AISPEC_STOP_TRIGGER, struct.pack(">BI", 0, 0))
    inventory = tlv(  # id 1, protocol 1 = EPC C1G2
        s.P_INVENTORY_PARAMETER_SPEC, struct.pack(">HB", 1, 1) + b"".join(antenna_configurations)
    )
    ai_spec = tlv(
        s.P_AISPEC,
        struct.pack(f">H{len(antennas)}H", len(antennas), *antennas) + ai_stop + inventory,
    )
    report = tlv(
        s.P_RO_REPORT_SPEC,
        struct.pack(">BH", 2, report_every_n_tags)  # 2 = Upon_N_Tags_Or_End_Of_ROSpec
        + encode_tag_report_content_selector(content),
    )
    head = struct.pack(">IBB", rospec_id, 0, 0)  # priority 0, current state Disabled
    return tlv(s.P_ROSPEC, head + boundary + ai_spec + report)


def encode_add_rospec(*, message_id: int, rospec: bytes) -> bytes:
    """ADD_ROSPEC carrying one encoded ROSpec (see :func:`encode_rospec`)."""
    return encode_message(s.ADD_ROSPEC, rospec, message_id=message_id)


# ---- what a reader sends (for tests and the simulator) ---------------------------------------


@dataclass(frozen=True, slots=True)
class TagReport:
    """One TagReportData to encode; ``None`` fields are left out of the message."""

    tag_id: str
    antenna: int | None
    rssi_dbm: int | None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    channel: int | None = None
    seen_count: int | None = None


def _utc_micros(value: datetime) -> bytes:
    utc = require_aware_utc(value)
    micros = (utc - _EPOCH) // timedelta(microseconds=1)
    if micros < 0:
        raise ValueError(f"LLRP timestamps cannot precede 1970: {value!r}")
    return struct.pack(">Q", micros)


def encode_tag_report_data(report: TagReport) -> bytes:
    """TagReportData (240): EPC-96 as TV for 96-bit EPCs, EPCData otherwise, then the fields."""
    epc = tag_bytes(report.tag_id)
    if len(epc) == 12:
        out = tv(s.TV_EPC_96, epc)
    else:
        out = tlv(s.P_EPC_DATA, struct.pack(">H", len(epc) * 8) + epc)
    if report.antenna is not None:
        out += tv(s.TV_ANTENNA_ID, struct.pack(">H", report.antenna))
    if report.rssi_dbm is not None:
        out += tv(s.TV_PEAK_RSSI, struct.pack(">b", report.rssi_dbm))
    if report.channel is not None:
        out += tv(s.TV_CHANNEL_INDEX, struct.pack(">H", report.channel))
    if report.first_seen is not None:
        out += tv(s.TV_FIRST_SEEN_UTC, _utc_micros(report.first_seen))
    if report.last_seen is not None:
        out += tv(s.TV_LAST_SEEN_UTC, _utc_micros(report.last_seen))
    if report.seen_count is not None:
        out += tv(s.TV_TAG_SEEN_COUNT, struct.pack(">H", report.seen_count))
    return tlv(s.P_TAG_REPORT_DATA, out)


def encode_ro_access_report(reports: Iterable[TagReport], *, message_id: int) -> bytes:
    """RO_ACCESS_REPORT with one TagReportData per report, in order.

    Raises ``ValueError`` (``struct.error`` is one) for fields out of their wire range.
    """
    try:
        body = b"".join(encode_tag_report_data(r) for r in reports)
    except struct.error as exc:
        raise ValueError(str(exc)) from exc
    return encode_message(s.RO_ACCESS_REPORT, body, message_id=message_id)


def encode_keepalive(*, message_id: int) -> bytes:
    """KEEPALIVE, as a reader sends it every KeepaliveSpec period."""
    return encode_message(s.KEEPALIVE, message_id=message_id)


def encode_connection_attempt(*, at: datetime, status: int = 0, message_id: int = 0) -> bytes:
    """READER_EVENT_NOTIFICATION with a ConnectionAttemptEvent (0 = Success): what a reader
    sends first on every new connection."""
    event = tlv(s.P_CONNECTION_ATTEMPT_EVENT, struct.pack(">H", status))
    data = tlv(s.P_READER_EVENT_NOTIFICATION_DATA, tlv(s.P_UTC_TIMESTAMP, _utc_micros(at)) + event)
    return encode_message(s.READER_EVENT_NOTIFICATION, data, message_id=message_id)


def encode_capabilities_response(
    *,
    message_id: int,
    max_antennas: int,
    power_table_cdbm: Sequence[int],
    firmware: str = "",
    manufacturer: int = 0,
    model: int = 0,
) -> bytes:
    """GET_READER_CAPABILITIES_RESPONSE with the parts the gateway reads: the
    GeneralDeviceCapabilities (antenna count, firmware; one Gen2 protocol per antenna) and a
    RegulatoryCapabilities whose transmit power table has ``power_table_cdbm`` (centi-dBm) at
    indices 1, 2, ..."""
    text = firmware.encode()
    per_antenna = b"".join(
        tlv(s.P_PER_ANTENNA_AIR_PROTOCOL, struct.pack(">HHB", a, 1, 1))
        for a in range(1, max_antennas + 1)
    )
    general = tlv(
        s.P_GENERAL_DEVICE_CAPABILITIES,
        struct.pack(">HHII", max_antennas, 0x4000, manufacturer, model)  # has a UTC clock
        + struct.pack(">H", len(text))
        + text
        + tlv(s.P_RECEIVE_SENSITIVITY_TABLE_ENTRY, struct.pack(">Hh", 1, 0))
        + tlv(s.P_GPIO_CAPABILITIES, struct.pack(">HH", 0, 0))
        + per_antenna,
    )
    powers = b"".join(
        tlv(s.P_TRANSMIT_POWER_LEVEL_TABLE_ENTRY, struct.pack(">Hh", i, cdbm))
        for i, cdbm in enumerate(power_table_cdbm, start=1)
    )
    # One fixed frequency (920.625 MHz) and one Gen2 mode (FM0, 640 kHz): the parameters a
    # UHFBandCapabilities must hold besides the power table.
    frequency = tlv(
        s.P_FREQUENCY_INFORMATION,
        b"\x00" + tlv(s.P_FIXED_FREQUENCY_TABLE, struct.pack(">HI", 1, 920_625)),
    )
    mode = tlv(
        s.P_C1G2_UHF_RF_MODE_TABLE_ENTRY,
        struct.pack(">IBBBBIIIII", 0, 0x80, 0, 0, 2, 640_000, 1500, 6250, 25000, 0),
    )
    band = tlv(
        s.P_UHF_BAND_CAPABILITIES, powers + frequency + tlv(s.P_C1G2_UHF_RF_MODE_TABLE, mode)
    )
    regulatory = tlv(s.P_REGULATORY_CAPABILITIES, struct.pack(">HH", 0, 0) + band)
    return encode_message(
        s.GET_READER_CAPABILITIES_RESPONSE,
        encode_llrp_status() + general + regulatory,
        message_id=message_id,
    )


def encode_llrp_status(status_code: int = 0, description: str = "") -> bytes:
    """LLRPStatus (287): status code and a UTF-8 error description."""
    text = description.encode()
    return tlv(s.P_LLRP_STATUS, struct.pack(">HH", status_code, len(text)) + text)


def encode_response(
    message_type: int, *, message_id: int, status_code: int = 0, description: str = ""
) -> bytes:
    """A reader's *_RESPONSE (or ERROR_MESSAGE) carrying only its LLRPStatus."""
    if message_type not in s.RESPONSES:
        raise ValueError(f"message type {message_type} is not a response")
    return encode_message(
        message_type, encode_llrp_status(status_code, description), message_id=message_id
    )


__all__ = [
    "DEFAULT_REPORT_CONTENT",
    "TagReport",
    "encode_add_rospec",
    "encode_antenna_configuration",
    "encode_capabilities_response",
    "encode_close_connection",
    "encode_connection_attempt",
    "encode_custom",
    "encode_delete_rospec",
    "encode_enable_rospec",
    "encode_get_reader_capabilities",
    "encode_impinj_enable_extensions",
    "encode_keepalive",
    "encode_keepalive_ack",
    "encode_llrp_status",
    "encode_message",
    "encode_response",
    "encode_ro_access_report",
    "encode_rospec",
    "encode_set_keepalive",
    "encode_start_rospec",
    "encode_stop_rospec",
    "encode_tag_report_content_selector",
    "encode_tag_report_data",
    "tlv",
    "tv",
]
