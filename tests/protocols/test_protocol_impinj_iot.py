"""Impinj IoT device interface: fixtures, edge cases and property tests."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_testkit import (
    RECEIVED_AT,
    comparable,
    fixture,
    fixture_names,
    reasons,
    run,
    split_at,
)

from reader_gateway.protocols import DECODERS, UnknownProtocolError, make_decoder
from reader_gateway.protocols.base import TagRead
from reader_gateway.protocols.impinj_iot import (
    ImpinjIotDecoder,
    encode_batch,
    encode_reader_event,
    encode_stream,
    encode_tag_inventory_event,
)

P = "impinj-iot"


def message() -> ImpinjIotDecoder:
    return ImpinjIotDecoder(mode="message")


def stream() -> ImpinjIotDecoder:
    return ImpinjIotDecoder(mode="stream")


# name -> (mode, read count, reject reasons, event kinds)
EXPECTED = {
    "mqtt_tag_inventory_epc_base64_full.json": ("message", 1, [], []),
    "mqtt_tag_inventory_epc_hex.json": ("message", 1, [], []),
    "mqtt_tag_inventory_urlsafe_base64_no_hostname.json": ("message", 1, [], []),
    "mqtt_inventory_status_running.json": ("message", 0, [], ["inventory_status"]),
    "mqtt_antenna_disconnected.json": ("message", 0, [], ["antenna_disconnected"]),
    "webhook_batch_two_reads_one_antenna_event.json": ("message", 2, [], ["antenna_connected"]),
    "stream_two_reads_keepalives_crlf_status.ndjson": ("stream", 2, [], ["inventory_status"]),
    "bad_json_cut_off_message.json": ("message", 0, ["payload"], []),
    "missing_antenna_port.json": ("message", 0, ["payload"], []),
    "missing_timestamp.json": ("message", 0, ["payload"], []),
    "bad_epc_base64.json": ("message", 0, ["payload"], []),
    "epc_and_epchex_disagree.json": ("message", 0, ["payload"], []),
    "timestamp_without_offset.json": ("message", 0, ["payload"], []),
    "webhook_batch_one_good_one_odd_length_epchex.json": ("message", 1, ["payload"], []),
    "stream_cut_mid_line.ndjson": ("stream", 1, ["truncated"], []),
    "not_utf8.bin": ("message", 0, ["payload"], []),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == fixture_names(P)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    mode, n_reads, want_reasons, kinds = EXPECTED[name]
    result = run(message if mode == "message" else stream, [fixture(P, name)])
    assert len(result.reads) == n_reads
    assert reasons(result) == want_reasons
    assert [e.kind for e in result.events] == kinds
    assert result.reply == b""


def test_full_event_maps_every_field() -> None:
    (read,) = run(message, [fixture(P, "mqtt_tag_inventory_epc_base64_full.json")]).reads
    assert read == TagRead(
        tag_id="E2C451A3A5011FA00F354693",
        antenna=2,
        rssi_dbm=-57.5,
        # nanoseconds .123456789 are truncated to microseconds, never rounded up
        read_at=datetime(2026, 11, 29, 6, 21, 45, 123456, tzinfo=UTC),
        reader_id="impinj-14-2f-f4",
    )


def test_urlsafe_base64_and_missing_hostname() -> None:
    (read,) = run(message, [fixture(P, "mqtt_tag_inventory_urlsafe_base64_no_hostname.json")]).reads
    assert read.tag_id == "E2801191A5030065F26CCBFF"
    assert read.reader_id is None
    assert read.read_at == datetime(2026, 11, 29, 6, 21, 47, 944189, tzinfo=UTC)


def test_reader_event_detail_keeps_body() -> None:
    (event,) = run(message, [fixture(P, "mqtt_antenna_disconnected.json")]).events
    assert event.reader_id == "r700-pole-0042"
    assert event.detail == {"event_type": "antennaDisconnected", "antennaPort": 3}
    assert event.at == datetime(2026, 11, 29, 6, 22, 10, 500000, tzinfo=UTC)


def test_reject_keeps_raw_bytes() -> None:
    raw = fixture(P, "bad_epc_base64.json")
    (reject,) = run(message, [raw]).rejects
    assert reject.raw == raw


def test_batch_reject_raw_is_the_bad_element() -> None:
    result = run(message, [fixture(P, "webhook_batch_one_good_one_odd_length_epchex.json")])
    assert orjson.loads(result.rejects[0].raw)["tagInventoryEvent"]["epcHex"].endswith("04F")


def test_stream_keeps_partial_line_split_inside_crlf() -> None:
    # The worst place to split: between the CR and the LF that end a line.
    data = fixture(P, "stream_two_reads_keepalives_crlf_status.ndjson")
    cut = data.index(b"\r\n") + 1
    assert comparable(run(stream, [data[:cut], data[cut:]])) == comparable(run(stream, [data]))


def test_stream_last_line_without_newline_is_decoded_on_flush() -> None:
    event = encode_tag_inventory_event(
        hostname="h", tag_id="AB", antenna=1, rssi_dbm=-60, read_at=RECEIVED_AT
    )
    assert len(run(stream, [event]).reads) == 1


def test_stream_overlong_line_is_rejected_once_and_skipped() -> None:
    good = encode_tag_inventory_event(
        hostname="h", tag_id="AB", antenna=1, rssi_dbm=-60, read_at=RECEIVED_AT
    )
    junk = b"x" * (70 * 1024)
    result = run(stream, [junk[:40000], junk[40000:], b"\n" + good + b"\n"])
    assert reasons(result) == ["payload"]
    assert len(result.reads) == 1


@pytest.mark.parametrize("payload", [b"", b"  \n", b"42", b"null", b'"x"', b"[]", b"[1]"])
def test_message_odd_payloads(payload: bytes) -> None:
    result = run(message, [payload])
    assert not result.reads
    assert len(result.rejects) == (0 if payload == b"[]" else 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("antennaPort", 0),
        ("antennaPort", True),
        ("antennaPort", "1"),
        ("peakRssiCdbm", None),
        ("peakRssiCdbm", 99999),
        ("peakRssiCdbm", False),
        ("epcHex", ""),
        ("epcHex", 12),
        ("epcHex", "Ｅ2"),  # full-width digit: not ASCII hex
        ("epc", ""),
        ("epc", "===="),
    ],
)
def test_bad_field_values_are_rejected(field: str, value: object) -> None:
    body: dict[str, object] = {"epcHex": "E2", "antennaPort": 1, "peakRssiCdbm": -5000}
    body[field] = value
    event = {
        "timestamp": "2026-11-29T06:21:45Z",
        "hostname": "h",
        "eventType": "tagInventory",
        "tagInventoryEvent": body,
    }
    assert reasons(run(message, [orjson.dumps(event)])) == ["payload"]


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-11-29T06:21:45Z", datetime(2026, 11, 29, 6, 21, 45, tzinfo=UTC)),
        ("2026-11-29T14:21:45.5+08:00", datetime(2026, 11, 29, 6, 21, 45, 500000, tzinfo=UTC)),
        ("2026-11-29t06:21:45.999999999z", datetime(2026, 11, 29, 6, 21, 45, 999999, tzinfo=UTC)),
        ("2026-02-30T06:21:45Z", None),
        ("2026-11-29T06:21:60Z", None),
        ("2026-11-29T06:21:45.1234567890Z", None),
        ("2026-11-29T06:21:45+24:00", None),
    ],
)
def test_timestamps(stamp: str, expected: datetime | None) -> None:
    event = {
        "timestamp": stamp,
        "eventType": "tagInventory",
        "tagInventoryEvent": {"epcHex": "E2", "antennaPort": 1, "peakRssiCdbm": -5000},
    }
    result = run(message, [orjson.dumps(event)])
    if expected is None:
        assert reasons(result) == ["payload"]
    else:
        assert result.reads[0].read_at == expected


def test_encoder_shape() -> None:
    data = encode_tag_inventory_event(
        hostname="r700-pole-0042",
        tag_id="e28011606000020528f904fa",
        antenna=2,
        rssi_dbm=-56.5,
        read_at=datetime(2026, 11, 29, 6, 21, 45, 123456, tzinfo=UTC),
    )
    assert data == (
        b'{"timestamp":"2026-11-29T06:21:45.123456000Z","hostname":"r700-pole-0042",'
        b'"eventType":"tagInventory","tagInventoryEvent":{"epc":"4oARYGAAAgUo+QT6",'
        b'"antennaPort":2,"antennaName":"Antenna 2","peakRssiCdbm":-5650}}'
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tag_id": "ABC"},
        {"tag_id": ""},
        {"antenna": 0},
        {"read_at": datetime(2026, 11, 29, 6, 21, 45)},
    ],
)
def test_encoder_refuses_bad_input(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "hostname": "h",
        "tag_id": "AB",
        "antenna": 1,
        "rssi_dbm": -50.0,
        "read_at": RECEIVED_AT,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):  # noqa: PT011 - the encoders' documented error
        encode_tag_inventory_event(**args)  # type: ignore[arg-type]


def test_registry() -> None:
    assert isinstance(make_decoder("impinj-iot"), ImpinjIotDecoder)
    assert make_decoder("impinj-iot-stream").mode == "stream"  # type: ignore[attr-defined]
    assert DECODERS["impinj-iot"]() is not DECODERS["impinj-iot"]()
    with pytest.raises(UnknownProtocolError, match="impinj-iot"):
        make_decoder("impinj")


# ---- property tests ------------------------------------------------------------------------

aware_utc = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
reads = st.builds(
    TagRead,
    tag_id=st.binary(min_size=1, max_size=62).map(lambda b: b.hex().upper()),
    antenna=st.integers(1, 64),
    rssi_dbm=st.integers(-12000, 0).map(lambda c: c / 100),
    read_at=aware_utc,
    reader_id=st.text(min_size=1, max_size=30),
)


def encode(read: TagRead, epc_hex: bool) -> bytes:
    assert read.reader_id is not None
    return encode_tag_inventory_event(
        hostname=read.reader_id,
        tag_id=read.tag_id,
        antenna=read.antenna,
        rssi_dbm=read.rssi_dbm,
        read_at=read.read_at,
        epc_hex=epc_hex,
    )


@given(read=reads, epc_hex=st.booleans())
def test_round_trip_message(read: TagRead, epc_hex: bool) -> None:
    assert run(message, [encode(read, epc_hex)]).reads == [read]


@given(batch=st.lists(reads, max_size=5))
def test_round_trip_webhook_batch(batch: list[TagRead]) -> None:
    assert run(message, [encode_batch([encode(r, False) for r in batch])]).reads == batch


@given(at=aware_utc, status=st.sampled_from(["running", "idle", "armed"]))
def test_round_trip_reader_event(at: datetime, status: str) -> None:
    data = encode_reader_event(
        hostname="h", event_type="inventoryStatus", at=at, body={"status": status}
    )
    (event,) = run(message, [data]).events
    assert (event.kind, event.at, event.detail["status"]) == ("inventory_status", at, status)


@given(data=st.binary(max_size=300))
def test_any_bytes_never_raise(data: bytes) -> None:
    run(message, [data])
    run(stream, [data])


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.sampled_from(["2026-11-29T06:21:45Z", "x"]) | json_values,
        "hostname": st.text(max_size=5) | json_values,
        "eventType": st.sampled_from(["tagInventory", "inventoryStatus"]) | json_values,
        "tagInventoryEvent": st.fixed_dictionaries(
            {},
            optional={
                "epc": st.sampled_from(["4oAR", "4oARYA==", "-_-_"]) | json_values,
                "epcHex": st.sampled_from(["E2", "E28", ""]) | json_values,
                "antennaPort": json_values,
                "peakRssiCdbm": json_values,
            },
        )
        | json_values,
    },
)


@given(event=st.one_of(event_like, st.lists(event_like, max_size=3)))
def test_any_json_never_raises(event: object) -> None:
    result = run(message, [orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)])
    assert len(result.reads) + len(result.rejects) + len(result.events) >= (
        1 if not isinstance(event, list) else len(event)
    )


stream_items = st.lists(
    st.one_of(
        reads.map(lambda r: encode(r, False) + b"\n"),
        st.sampled_from([b"\n", b"\r\n", b"{bad json}\n", b'{"eventType":1}\n']),
    ),
    max_size=6,
)


@settings(max_examples=50)
@given(items=stream_items, cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_stream_same_result_however_chunked(items: list[bytes], cuts: list[int]) -> None:
    data = b"".join(items)
    assert comparable(run(stream, split_at(data, cuts))) == comparable(run(stream, [data]))


def test_stream_split_at_every_position() -> None:
    data = fixture(P, "stream_two_reads_keepalives_crlf_status.ndjson") + fixture(
        P, "stream_cut_mid_line.ndjson"
    )
    whole = comparable(run(stream, [data]))
    for cut in range(len(data) + 1):
        assert comparable(run(stream, [data[:cut], data[cut:]])) == whole, cut
    assert comparable(run(stream, [bytes([b]) for b in data])) == whole


def test_encode_stream_keepalives() -> None:
    events = [b"{}", b"{}", b"{}"]
    assert encode_stream(events, keepalive_every=2) == b"{}\n{}\n\n{}\n"
