"""Zebra IoT Connector: fixtures, edge cases and property tests."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from protocol_testkit import RECEIVED_AT, fixture, fixture_names, reasons, run

from reader_gateway.protocols import make_decoder
from reader_gateway.protocols.base import TagRead
from reader_gateway.protocols.zebra_iotc import (
    ZebraIotcDecoder,
    encode_batch,
    encode_heartbeat,
    encode_tag_data_event,
    format_zebra_timestamp,
)

P = "zebra-iotc"

# name -> (read count, reject reasons, event kinds)
EXPECTED = {
    "mqtt_simple_tag_event_plus0800.json": (1, [], []),
    "mqtt_simple_tag_event_minus0530.json": (1, [], []),
    "mqtt_custom_tag_event_minimal_fields.json": (1, [], []),
    "http_post_batch_three_reads.json": (3, [], []),
    "mgmt_heartbeat.json": (0, [], ["heartbeat"]),
    "missing_idhex.json": (0, ["payload"], []),
    "missing_timestamp.json": (0, ["payload"], []),
    "timestamp_without_offset.json": (0, ["payload"], []),
    "antenna_zero.json": (0, ["payload"], []),
    "odd_length_idhex.json": (0, ["payload"], []),
    "batch_one_good_one_string_rssi.json": (1, ["payload"], []),
    "bad_json_cut_off.json": (0, ["payload"], []),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == fixture_names(P)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    n_reads, want_reasons, kinds = EXPECTED[name]
    result = run(ZebraIotcDecoder, [fixture(P, name)])
    assert len(result.reads) == n_reads
    assert reasons(result) == want_reasons
    assert [e.kind for e in result.events] == kinds


def test_offset_is_converted_to_utc() -> None:
    (read,) = run(ZebraIotcDecoder, [fixture(P, "mqtt_simple_tag_event_plus0800.json")]).reads
    assert read == TagRead(
        tag_id="E28011606000020528F904FA",
        antenna=1,
        rssi_dbm=-52.0,
        read_at=datetime(2026, 11, 29, 6, 21, 45, 123000, tzinfo=UTC),
        reader_seq=123,
    )
    (west,) = run(ZebraIotcDecoder, [fixture(P, "mqtt_simple_tag_event_minus0530.json")]).reads
    assert west.read_at == datetime(2026, 11, 29, 19, 51, 45, 123000, tzinfo=UTC)


def test_batch_keeps_order_and_hostname() -> None:
    reads = run(ZebraIotcDecoder, [fixture(P, "http_post_batch_three_reads.json")]).reads
    assert [r.reader_seq for r in reads] == [200, 201, 202]
    assert [r.reader_id for r in reads] == [None, None, "FX9600F05EC9"]


def test_heartbeat_detail() -> None:
    (event,) = run(ZebraIotcDecoder, [fixture(P, "mgmt_heartbeat.json")]).events
    assert event.at == datetime(2026, 11, 29, 6, 25, 0, 4000, tzinfo=UTC)
    assert event.detail["radioConnection"] == "connected"


def test_unknown_management_type_is_an_event_not_a_reject() -> None:
    data = b'{"type":"WARNING","timestamp":"2026-11-29T06:00:00.000+0000","data":{"x":1}}'
    (event,) = run(ZebraIotcDecoder, [data]).events
    assert event.kind == "warning"


@pytest.mark.parametrize("payload", [b"", b" ", b"1", b"null", b"[]", b"[null]", b"{}"])
def test_odd_payloads(payload: bytes) -> None:
    result = run(ZebraIotcDecoder, [payload])
    assert not result.reads
    assert len(result.rejects) == (0 if payload == b"[]" else 1)


def test_encoder_shape() -> None:
    data = encode_tag_data_event(
        tag_id="E28011606000020528F904FA",
        antenna=1,
        rssi_dbm=-52.4,
        read_at=datetime(2026, 11, 29, 6, 21, 45, 123456, tzinfo=UTC),
        event_num=123,
        utc_offset_minutes=480,
    )
    assert data == (
        b'{"data":{"eventNum":123,"format":"epc","idHex":"e28011606000020528f904fa",'
        b'"antenna":1,"peakRssi":-52},"timestamp":"2026-11-29T14:21:45.123+0800","type":"SIMPLE"}'
    )


def test_format_timestamp_negative_offset() -> None:
    at = datetime(2026, 11, 29, 6, 21, 45, 9999, tzinfo=UTC)
    assert format_zebra_timestamp(at, -330) == "2026-11-29T00:51:45.009-0530"
    with pytest.raises(ValueError, match="offset"):
        format_zebra_timestamp(at, 24 * 60)


def test_encoder_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        encode_tag_data_event(
            tag_id="AB", antenna=1, rssi_dbm=-50, read_at=datetime(2026, 1, 1), event_num=0
        )


def test_registry() -> None:
    assert isinstance(make_decoder("zebra-iotc"), ZebraIotcDecoder)


# ---- property tests ------------------------------------------------------------------------

ms_times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2199, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
reads = st.builds(
    TagRead,
    tag_id=st.binary(min_size=1, max_size=62).map(lambda b: b.hex().upper()),
    antenna=st.integers(1, 64),
    rssi_dbm=st.integers(-120, 0).map(float),
    read_at=ms_times,
    reader_seq=st.integers(0, 2**53),
)
offsets = st.integers(-12 * 60, 14 * 60)


def encode(read: TagRead, offset: int) -> bytes:
    assert read.reader_seq is not None
    return encode_tag_data_event(
        tag_id=read.tag_id,
        antenna=read.antenna,
        rssi_dbm=read.rssi_dbm,
        read_at=read.read_at,
        event_num=read.reader_seq,
        utc_offset_minutes=offset,
    )


@given(read=reads, offset=offsets)
def test_round_trip(read: TagRead, offset: int) -> None:
    assert run(ZebraIotcDecoder, [encode(read, offset)]).reads == [read]


@given(batch=st.lists(reads, max_size=5), offset=offsets, beat=ms_times)
def test_round_trip_batch_with_heartbeat(batch: list[TagRead], offset: int, beat: datetime) -> None:
    events = [encode(r, offset) for r in batch] + [encode_heartbeat(at=beat)]
    result = run(ZebraIotcDecoder, [encode_batch(events)])
    assert result.reads == batch
    assert [(e.kind, e.at) for e in result.events] == [("heartbeat", beat)]


@given(data=st.binary(max_size=300))
def test_any_bytes_never_raise(data: bytes) -> None:
    run(ZebraIotcDecoder, [data])


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
        "timestamp": st.sampled_from(["2026-11-29T14:21:45.123+0800", "x"]) | json_values,
        "type": st.sampled_from(["SIMPLE", "heartbeat", "ERROR"]) | json_values,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "idHex": st.sampled_from(["e2", "e28", ""]) | json_values,
                "antenna": json_values,
                "peakRssi": json_values,
                "eventNum": json_values,
                "hostName": json_values,
            },
        )
        | json_values,
    },
)


@given(event=st.one_of(event_like, st.lists(event_like, max_size=3)))
def test_any_json_never_raises(event: object) -> None:
    payload = orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS)
    result = run(ZebraIotcDecoder, [payload], RECEIVED_AT)
    outcomes = len(result.reads) + len(result.rejects) + len(result.events)
    assert outcomes == (len(event) if isinstance(event, list) else 1)
