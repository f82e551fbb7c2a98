"""R2000 serial protocol: fixtures, splitter edge cases and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_testkit import RECEIVED_AT, comparable, fixture, fixture_names, reasons, run, split_at

from reader_gateway.protocols import make_decoder
from reader_gateway.protocols._stream import MAX_GARBAGE_RUN
from reader_gateway.protocols.base import TagRead
from reader_gateway.protocols.r2000 import (
    R2000Decoder,
    checksum,
    encode_error,
    encode_frame,
    encode_realtime_inventory,
    encode_round_end,
    encode_session_inventory,
    encode_tag_frame,
)

P = "r2000"

# name -> (read count, reject reasons, event kinds)
EXPECTED = {
    "rt_inventory_one_tag_ant1.bin": (1, [], []),
    "rt_inventory_round_three_tags_8port_then_summary.bin": (3, [], ["round_end"]),
    "fast_switch_tag_then_summary.bin": (1, [], ["round_end"]),
    "session_inventory_tag_then_summary.bin": (1, [], ["round_end"]),
    "error_antenna_missing.bin": (0, [], ["reader_error"]),
    "response_firmware_version.bin": (0, [], ["response"]),
    "long_epc_496_bits.bin": (1, [], []),
    "bad_checksum_tag_frame.bin": (1, ["checksum"], []),
    "truncated_tag_frame_at_end.bin": (1, ["truncated"], []),
    "garbage_between_frames.bin": (2, ["framing"], []),
    "false_sync_a0_in_noise.bin": (1, ["checksum"], []),
    "length_byte_too_small.bin": (1, ["framing"], []),
    "pc_length_disagrees_with_frame.bin": (0, ["payload"], []),
    "pc_says_no_epc.bin": (0, ["payload"], []),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == fixture_names(P)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    n_reads, want_reasons, kinds = EXPECTED[name]
    result = run(R2000Decoder, [fixture(P, name)])
    assert len(result.reads) == n_reads
    assert reasons(result) == want_reasons
    assert [e.kind for e in result.events] == kinds


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_split_at_every_position(name: str) -> None:
    data = fixture(P, name)
    whole = comparable(run(R2000Decoder, [data]))
    for cut in range(len(data) + 1):
        assert comparable(run(R2000Decoder, [data[:cut], data[cut:]])) == whole, cut
    assert comparable(run(R2000Decoder, [bytes([b]) for b in data])) == whole


def test_known_command_bytes() -> None:
    # The real-time inventory example of the R2000 reference protocol: address 1, repeat 1.
    assert encode_realtime_inventory(address=1, repeat=1) == bytes.fromhex("A0040189 01D1")
    assert checksum(bytes.fromhex("A004018901")) == 0xD1


def test_round_decodes_fields_and_asks_for_next_round() -> None:
    result = run(R2000Decoder, [fixture(P, "rt_inventory_round_three_tags_8port_then_summary.bin")])
    assert result.reads == [
        TagRead("E28011606000020528F904FA", 1, -58.0, RECEIVED_AT),
        TagRead("3034F8B20001000000000001", 2, -63.0, RECEIVED_AT),
        TagRead("E2003411B802011533ABCD12", 6, -71.0, RECEIVED_AT),
    ]
    (summary,) = result.events
    assert summary.detail == {
        "address": 1,
        "cmd": 0x89,
        "antenna": 1,
        "read_rate": 37,
        "total_read": 3,
    }
    assert result.reply == encode_realtime_inventory(address=1, repeat=1)


def test_fast_switch_summary_variant_and_no_guessed_reply() -> None:
    result = run(R2000Decoder, [fixture(P, "fast_switch_tag_then_summary.bin")])
    assert result.events[0].detail["duration_ms"] == 412
    assert result.events[0].detail["total_read"] == 1
    assert result.reply == b""


def test_configured_inventory_command_is_resent() -> None:
    command = encode_frame(0xFF, 0x8A, bytes([0, 1, 1, 1, 0xFF, 1, 0xFF, 1, 0, 1]))
    decoder = R2000Decoder(inventory_command=command)
    out = decoder.decode(fixture(P, "fast_switch_tag_then_summary.bin"), RECEIVED_AT)
    assert out.reply == command


def test_session_summary_resends_session_inventory() -> None:
    result = run(R2000Decoder, [fixture(P, "session_inventory_tag_then_summary.bin")])
    assert result.reply == encode_session_inventory(address=0xFF)


def test_error_frame_detail() -> None:
    (event,) = run(R2000Decoder, [fixture(P, "error_antenna_missing.bin")]).events
    assert event.detail == {"address": 1, "cmd": 0x89, "code": 0x22, "error": "antenna_missing"}
    assert event.at == RECEIVED_AT


def test_garbage_reject_carries_exact_bytes() -> None:
    (reject,) = run(R2000Decoder, [fixture(P, "garbage_between_frames.bin")]).rejects
    assert reject.raw == b"\x00\x13\x37noise\xff"


def test_pure_noise_is_reported_in_bounded_runs() -> None:
    noise = bytes(range(0x10, 0x90)) * 100  # no 0xA0, 12800 bytes
    result = run(R2000Decoder, [noise])
    assert [len(r.raw) for r in result.rejects] == [MAX_GARBAGE_RUN] * 3 + [512]


def test_frame_straddling_reads_gets_time_of_completing_chunk() -> None:
    data = fixture(P, "rt_inventory_one_tag_ant1.bin")
    decoder = R2000Decoder()
    assert not decoder.decode(data[:5], RECEIVED_AT.replace(second=1)).reads
    (read,) = decoder.decode(data[5:], RECEIVED_AT.replace(second=2)).reads
    assert read.read_at == RECEIVED_AT.replace(second=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tag_id": "AB"},  # half a word
        {"tag_id": "ABCD" * 32},  # 32 words: PC cannot say it
        {"antenna": 9},
        {"rssi_dbm": -1.0},
        {"rssi_dbm": -130.0},
        {"channel": 64},
    ],
)
def test_encoder_refuses_what_the_frame_cannot_carry(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"tag_id": "ABCD", "antenna": 1, "rssi_dbm": -60.0}
    args.update(kwargs)
    with pytest.raises(ValueError):  # noqa: PT011 - the encoders' documented error
        encode_tag_frame(**args)  # type: ignore[arg-type]


def test_registry() -> None:
    assert isinstance(make_decoder("r2000"), R2000Decoder)


# ---- property tests ------------------------------------------------------------------------

reads = st.builds(
    TagRead,
    tag_id=st.integers(1, 31)
    .flatmap(lambda w: st.binary(min_size=2 * w, max_size=2 * w))
    .map(lambda b: b.hex().upper()),
    antenna=st.integers(1, 8),
    rssi_dbm=st.integers(-129, -2).map(float),
    read_at=st.just(RECEIVED_AT),
)
commands = st.sampled_from([0x89, 0x8A, 0x8B])


def encode(read: TagRead, cmd: int) -> bytes:
    return encode_tag_frame(
        tag_id=read.tag_id, antenna=read.antenna, rssi_dbm=read.rssi_dbm, cmd=cmd, address=1
    )


@given(read=reads, cmd=commands)
def test_round_trip(read: TagRead, cmd: int) -> None:
    assert run(R2000Decoder, [encode(read, cmd)]).reads == [read]


frames = st.one_of(
    st.tuples(reads, commands).map(lambda rc: encode(*rc)),
    st.builds(
        encode_round_end,
        cmd=commands,
        antenna=st.integers(1, 4),
        read_rate=st.integers(0, 0xFFFF),
        total_read=st.integers(0, 0xFFFFFF),
        duration_ms=st.integers(0, 2**32 - 1),
    ),
    st.builds(encode_error, code=st.integers(0, 255)),
    st.binary(max_size=12),  # noise, possibly with 0xA0 in it
)


@settings(max_examples=60)
@given(items=st.lists(frames, max_size=8), cuts=st.lists(st.integers(0, 600), max_size=10))
def test_same_result_however_chunked(items: list[bytes], cuts: list[int]) -> None:
    data = b"".join(items)
    assert comparable(run(R2000Decoder, split_at(data, cuts))) == comparable(
        run(R2000Decoder, [data])
    )


@settings(max_examples=60)
@given(good=st.lists(reads, min_size=1, max_size=5), noise=st.lists(st.binary(max_size=8)))
def test_good_frames_survive_noise_without_a0(good: list[TagRead], noise: list[bytes]) -> None:
    clean = [n.replace(b"\xa0", b"") for n in noise]
    data = b"".join(
        n + encode(r, 0x89) for n, r in zip(clean + [b""] * len(good), good, strict=False)
    )
    assert run(R2000Decoder, [data]).reads == good


@given(data=st.binary(max_size=400))
def test_any_bytes_never_raise_and_every_byte_is_accounted_for(data: bytes) -> None:
    result = run(R2000Decoder, [data])
    rejected = sum(len(r.raw) for r in result.rejects if r.reason != "payload")
    assert rejected <= len(data)
