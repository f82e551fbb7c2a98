"""TagTrail active-tag frame: the documented example, fixtures and property tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_testkit import comparable, fixture, fixture_names, reasons, run, split_at

from reader_gateway.protocols import make_decoder
from reader_gateway.protocols.base import TagRead
from reader_gateway.protocols.tagtrail_active import (
    FRAME_LEN,
    TagtrailActiveDecoder,
    crc16_ccitt_false,
    encode_frame,
    format_reader_id,
)

P = "tagtrail-active"
T = datetime(2026, 11, 29, 6, 21, 45, 123000, tzinfo=UTC)

# The worked example in docs/protocols/tagtrail-active.md, byte for byte.
DOC_EXAMPLE = bytes.fromhex(
    "A55A 011A 00010042 000003E9 000001A225F77923 00A1B2C3D4E5F601 BD 06 11BA"
)

# name -> (read count, reject reasons)
EXPECTED = {
    "one_read_ant2_low_battery.bin": (1, []),
    "tamper_and_low_battery_ant4.bin": (1, []),
    "burst_three_frames_two_readers.bin": (3, []),
    "bad_crc_then_good_frame.bin": (1, ["checksum"]),
    "truncated_frame_at_end.bin": (1, ["truncated"]),
    "garbage_between_frames.bin": (2, ["framing"]),
    "sync_header_inside_noise.bin": (1, ["checksum"]),
    "unknown_version_2.bin": (1, ["framing"]),
    "wrong_length_byte.bin": (1, ["framing"]),
    "reserved_flag_bits_set.bin": (0, ["payload"]),
    "reader_clock_unset_1970.bin": (0, ["payload"]),
    "rssi_impossible_plus_100.bin": (0, ["payload"]),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == fixture_names(P)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    n_reads, want_reasons = EXPECTED[name]
    result = run(TagtrailActiveDecoder, [fixture(P, name)])
    assert len(result.tag_reads()) == n_reads
    assert reasons(result) == want_reasons
    assert not result.events
    assert result.reply == b""


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_split_at_every_position(name: str) -> None:
    data = fixture(P, name)
    whole = comparable(run(TagtrailActiveDecoder, [data]))
    for cut in range(len(data) + 1):
        assert comparable(run(TagtrailActiveDecoder, [data[:cut], data[cut:]])) == whole, cut
    assert comparable(run(TagtrailActiveDecoder, [bytes([b]) for b in data])) == whole


def test_crc_is_ccitt_false() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_documented_example() -> None:
    assert len(DOC_EXAMPLE) == FRAME_LEN == 32
    assert fixture(P, "one_read_ant2_low_battery.bin") == DOC_EXAMPLE
    frame = encode_frame(
        reader_id=0x00010042,
        reader_seq=1001,
        read_at=T,
        tag_id="00A1B2C3D4E5F601",
        rssi_dbm=-67,
        antenna=2,
        low_battery=True,
    )
    assert frame == DOC_EXAMPLE
    assert run(TagtrailActiveDecoder, [frame]).tag_reads() == [
        TagRead(
            tag_id="00A1B2C3D4E5F601",
            antenna=2,
            rssi_dbm=-67.0,
            read_at=T,
            reader_id="AT-00010042",
            reader_seq=1001,
            low_battery=True,
        )
    ]


def test_flags_and_sequence_wrap_value() -> None:
    (read,) = run(
        TagtrailActiveDecoder, [fixture(P, "tamper_and_low_battery_ant4.bin")]
    ).tag_reads()
    assert (read.tamper, read.low_battery, read.antenna, read.reader_seq) == (
        True,
        True,
        4,
        0xFFFFFFFF,
    )


def test_sync_header_inside_noise_does_not_hide_the_frame_after_it() -> None:
    result = run(TagtrailActiveDecoder, [fixture(P, "sync_header_inside_noise.bin")])
    assert result.tag_reads()[0].reader_seq == 1001
    assert result.rejects[0].raw == bytes.fromhex("A55A011A0000")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tag_id": "00A1B2C3D4E5F6"},
        {"tag_id": "00A1B2C3D4E5F6G1"},
        {"antenna": 5},
        {"rssi_dbm": 21.0},
        {"rssi_dbm": -129.0},
        {"reader_id": 2**32},
        {"read_at": datetime(1999, 1, 1, tzinfo=UTC)},
        {"read_at": datetime(2026, 1, 1)},
    ],
)
def test_encoder_refuses_what_the_frame_cannot_carry(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {
        "reader_id": 1,
        "reader_seq": 1,
        "read_at": T,
        "tag_id": "00A1B2C3D4E5F601",
        "rssi_dbm": -60.0,
    }
    args.update(kwargs)
    with pytest.raises(ValueError):  # noqa: PT011 - the encoders' documented error
        encode_frame(**args)  # type: ignore[arg-type]


def test_registry() -> None:
    assert isinstance(make_decoder("tagtrail-active"), TagtrailActiveDecoder)


# ---- property tests ------------------------------------------------------------------------

reads = st.builds(
    TagRead,
    tag_id=st.binary(min_size=8, max_size=8).map(lambda b: b.hex().upper()),
    antenna=st.integers(1, 4),
    rssi_dbm=st.integers(-128, 20).map(float),
    read_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
    ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)),
    reader_id=st.integers(0, 2**32 - 1).map(format_reader_id),
    reader_seq=st.integers(0, 2**32 - 1),
    tamper=st.booleans(),
    low_battery=st.booleans(),
)


def encode(read: TagRead) -> bytes:
    assert read.reader_id is not None
    assert read.reader_seq is not None
    return encode_frame(
        reader_id=int(read.reader_id.removeprefix("AT-"), 16),
        reader_seq=read.reader_seq,
        read_at=read.read_at,
        tag_id=read.tag_id,
        rssi_dbm=read.rssi_dbm,
        antenna=read.antenna,
        tamper=read.tamper,
        low_battery=read.low_battery,
    )


@given(read=reads)
def test_round_trip(read: TagRead) -> None:
    assert run(TagtrailActiveDecoder, [encode(read)]).tag_reads() == [read]


@given(read=reads, position=st.integers(2, FRAME_LEN - 1), bit=st.integers(0, 7))
def test_any_single_bit_flip_after_sync_is_caught(read: TagRead, position: int, bit: int) -> None:
    frame = bytearray(encode(read))
    frame[position] ^= 1 << bit
    assert not run(TagtrailActiveDecoder, [bytes(frame)]).tag_reads()


streams = st.lists(st.one_of(reads.map(encode), st.binary(max_size=10)), max_size=8)


@settings(max_examples=60)
@given(items=streams, cuts=st.lists(st.integers(0, 400), max_size=10))
def test_same_result_however_chunked(items: list[bytes], cuts: list[int]) -> None:
    data = b"".join(items)
    assert comparable(run(TagtrailActiveDecoder, split_at(data, cuts))) == comparable(
        run(TagtrailActiveDecoder, [data])
    )


@settings(max_examples=60)
@given(good=st.lists(reads, min_size=1, max_size=5), noise=st.binary(max_size=12))
def test_good_frames_survive_noise_without_sync_byte(good: list[TagRead], noise: bytes) -> None:
    clean = noise.replace(b"\xa5", b"")
    data = b"".join(clean + encode(r) for r in good) + clean
    assert run(TagtrailActiveDecoder, [data]).tag_reads() == good


@given(data=st.binary(max_size=400))
def test_any_bytes_never_raise(data: bytes) -> None:
    run(TagtrailActiveDecoder, [data])
