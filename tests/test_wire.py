"""The wire contract: round trip, validation, shard stability."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reader_gateway.brokers import mqtt_endpoint
from reader_gateway.wire import (
    WireError,
    batch_from_columns,
    canonical_tag_id,
    decode_batch,
    encode_batch,
    shard_of,
)

hex_tags = st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=32)
reads = st.lists(
    st.tuples(
        st.sampled_from(["R0001", "R0002", "AT-0000002A"]),
        st.integers(1, 8),
        hex_tags,
        st.floats(-100, 0, allow_nan=False).map(lambda x: round(x, 2)),
        st.integers(0, 2**62),
        st.integers(0, 2**62),
    ),
    max_size=50,
)


@given(reads)
def test_encode_decode_round_trip(rows: list[tuple[str, int, str, float, int, int]]) -> None:
    batch = batch_from_columns(
        gateway_id="gw-1",
        batch_seq=3,
        sent_at_us=1_764_400_000_000_000,
        reader_ids=[r[0] for r in rows],
        antenna=[r[1] for r in rows],
        tag=[r[2] for r in rows],
        rssi_dbm=[r[3] for r in rows],
        read_at_us=[r[4] for r in rows],
        seq=[r[5] for r in rows],
    )
    back = decode_batch(encode_batch(batch))
    assert back.gateway_id == "gw-1"
    assert back.batch_seq == 3
    assert back.reader_ids().tolist() == [r[0] for r in rows]
    assert back.tag.tolist() == [r[2] for r in rows]
    assert back.read_at_us.tolist() == [r[4] for r in rows]
    assert back.seq.tolist() == [r[5] for r in rows]
    np.testing.assert_allclose(back.rssi_dbm, [r[3] for r in rows], atol=0.01)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_wire_error(payload: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_batch(payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (b'{"v": 2}', "unsupported wire version"),
        (b'{"v": 1, "gateway_id": "g"}', "missing field"),
        (
            b'{"v":1,"gateway_id":"g","batch_seq":1,"sent_at_us":1,"readers":["R1"],"reader":[0,1],'
            b'"antenna":[1],"tag":["AB"],"rssi_dbm":[-50],"read_at_us":[1],"seq":[1]}',
            "values",
        ),
        (
            b'{"v":1,"gateway_id":"g","batch_seq":1,"sent_at_us":1,"readers":["R1"],"reader":[0],'
            b'"antenna":[1],"tag":["ab"],"rssi_dbm":[-50],"read_at_us":[1],"seq":[1]}',
            "canonical",
        ),
        (
            b'{"v":1,"gateway_id":"g","batch_seq":1,"sent_at_us":1,"readers":["R1"],"reader":[3],'
            b'"antenna":[1],"tag":["AB"],"rssi_dbm":[-50],"read_at_us":[1],"seq":[1]}',
            "out of range",
        ),
    ],
)
def test_bad_batches_name_the_rule_they_break(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        decode_batch(payload)


def test_shard_is_stable_and_in_range() -> None:
    # CRC-32 of the tag id: the same in every process and Python version.
    assert shard_of("E28011A114F8C8D84FEEC592", 4) == shard_of("E28011A114F8C8D84FEEC592", 4)
    assert {shard_of(f"{i:024X}", 8) for i in range(200)} == set(range(8))


def test_canonical_tag_id() -> None:
    assert canonical_tag_id("e280-11a1 14:f8") == "E28011A114F8"
    with pytest.raises(WireError):
        canonical_tag_id("not hex")


def test_mqtt_endpoint() -> None:
    assert mqtt_endpoint("mqtt://127.0.0.1:1883") == ("127.0.0.1", 1883)
    assert mqtt_endpoint("mqtt://broker") == ("broker", 1883)
    with pytest.raises(WireError):
        mqtt_endpoint("http://x")
