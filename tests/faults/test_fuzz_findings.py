"""Inputs the long fuzzing run (tools/fuzz.py) found, kept as regressions, bytes as fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from reader_gateway.wire import WireError, decode_batch

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.faults


def test_batch_seq_beyond_int64_is_a_wire_error_not_an_unencodable_batch() -> None:
    # A 100-digit batch_seq: orjson reads it as a float, int() made it a huge int, the batch
    # passed validation and then could not be encoded again (TypeError from orjson).
    payload = (FIXTURES / "wire_batch_seq_beyond_int64.json").read_bytes()
    with pytest.raises(WireError, match="batch_seq"):
        decode_batch(payload)


def test_a_scalar_column_is_a_wire_error_not_an_index_error() -> None:
    # "read_at_us": 1 made a 0-d array; len(batch) raised IndexError, which the engine did
    # not catch: the message would have stopped the worker and been redelivered forever.
    payload = (FIXTURES / "wire_scalar_read_at_us.json").read_bytes()
    with pytest.raises(WireError, match="read_at_us"):
        decode_batch(payload)


def test_an_rssi_that_overflows_when_rounded_is_a_wire_error() -> None:
    # -8.9e37 dBm is a finite float32, but encode_batch rounds to 0.01 dB (x100): inf, which
    # orjson writes as null, so the batch could not be decoded again.
    payload = (FIXTURES / "wire_rssi_overflows_on_rounding.json").read_bytes()
    with pytest.raises(WireError, match="rssi_dbm"):
        decode_batch(payload)


@pytest.mark.parametrize("value", ["9223372036854775808", "-9223372036854775809", "1.5", "true"])
def test_batch_seq_and_sent_at_must_be_int64(value: str) -> None:
    for field in ("batch_seq", "sent_at_us"):
        doc = (
            '{"v":1,"gateway_id":"g","batch_seq":1,"sent_at_us":1,"readers":["R"],"reader":[0],'
            '"antenna":[1],"tag":["AB"],"rssi_dbm":[-50],"read_at_us":[1],"seq":[1]}'
        ).replace(f'"{field}":1', f'"{field}":{value}')
        with pytest.raises(WireError):
            decode_batch(doc.encode())
