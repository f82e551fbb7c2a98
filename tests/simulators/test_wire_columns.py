"""The whole-column encoders give the gateway's encoders' bytes, message for message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_helpers import START

from reader_gateway.protocols import r2000, tagtrail_active
from reader_gateway.protocols.impinj_iot import encode_tag_inventory_event
from reader_gateway.protocols.zebra_iotc import encode_heartbeat, encode_tag_data_event
from simulators import emit_files
from simulators import wire_columns as wc
from simulators.emit import READER_UTC_OFFSET_MINUTES, reader_messages
from simulators.emit_files import EmitTables, order_reads, write_streams
from simulators.readers import SERIAL_PROTOCOLS
from simulators.scenario import SimOptions, run

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# 1900-03-01 .. 2199-12-31: leap and non-leap centuries, every month end.
times_us = st.integers(-2_203_891_200_000_000, 7_258_118_399_999_999)
rssi = st.floats(-128.4, -2.6, allow_nan=False).map(lambda r: float(np.float32(r)))


def _split(rows: wc.ByteRows) -> list[bytes]:
    flat, lens = rows.build()
    ends = np.cumsum(lens)
    return [flat[e - n : e].tobytes() for e, n in zip(ends, lens, strict=True)]


def _at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(times_us, rssi, st.integers(1, 4), st.integers(0, 2**40)), min_size=1))
def test_json_encoders_match_the_gateway(rows: list[tuple[int, float, int, int]]) -> None:
    at = np.array([r[0] for r in rows], np.int64)
    level = np.array([r[1] for r in rows])
    ant = np.array([r[2] for r in rows], np.int64)
    num = np.array([r[3] for r in rows], np.int64)
    tags = [f"E28011{n:018X}" for n in num]
    b64, hexes = wc.b64_table(tags), wc.hex_table(tags)
    host = wc.json_strings([f'R"{n % 7}' for n in num])  # a name JSON has to escape
    impinj = _split(wc.impinj_events(host=host, epc_b64=b64, antenna=ant, rssi_dbm=level,
                                     read_at_us=at))  # fmt: skip
    zebra = _split(wc.zebra_events(id_hex=hexes, event_num=num, antenna=ant, rssi_dbm=level,
                                   read_at_us=at, utc_offset_minutes=-330))  # fmt: skip
    beats = _split(wc.zebra_heartbeats(at, READER_UTC_OFFSET_MINUTES))
    for k, (t, r, a, n) in enumerate(rows):
        assert impinj[k] == encode_tag_inventory_event(
            hostname=f'R"{n % 7}', tag_id=tags[k], antenna=a, rssi_dbm=r, read_at=_at(t)
        )
        assert zebra[k] == encode_tag_data_event(
            tag_id=tags[k], antenna=a, rssi_dbm=r, read_at=_at(t), event_num=n,
            utc_offset_minutes=-330)  # fmt: skip
        assert beats[k] == encode_heartbeat(at=_at(t), utc_offset_minutes=480)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(946_684_800_000_000, 7_258_118_399_999_999), rssi,
                          st.integers(1, 8), st.integers(0, 2**32 - 1), st.integers(0, 9)),
                min_size=1))  # fmt: skip
def test_binary_encoders_match_the_gateway(rows: list[tuple[int, float, int, int, int]]) -> None:
    at = np.array([r[0] for r in rows], np.int64)
    level = np.array([r[1] for r in rows])
    ant = np.array([r[2] for r in rows], np.int64)
    seq = np.array([r[3] for r in rows], np.int64)
    total = np.array([r[4] for r in rows], np.int64)
    uhf = [f"E2{s:040X}"[-4 * (1 + s % 6) :] for s in seq]  # 1-6 words
    active = [f"A7{s:014X}" for s in seq]
    frames = _split(wc.r2000_frames(epc=wc.epc_table(uhf), antenna=ant, rssi_dbm=level,
                                    round_total=total))  # fmt: skip
    act_ant = (ant - 1) % 4 + 1
    act = _split(wc.active_frames(device_id=seq // 3, seq=seq, read_at_us=at,
                                  tag=wc.epc_table(active), rssi_dbm=level,
                                  antenna=act_ant))  # fmt: skip
    for k, (t, r, a, s, n) in enumerate(rows):
        want = r2000.encode_tag_frame(tag_id=uhf[k], antenna=a, rssi_dbm=r)
        if n:
            want += r2000.encode_round_end(antenna=a, total_read=n)
        assert frames[k] == want
        assert act[k] == tagtrail_active.encode_frame(
            reader_id=s // 3, reader_seq=s, read_at=_at(t), tag_id=active[k], rssi_dbm=r,
            antenna=int(act_ant[k]))  # fmt: skip


def test_out_of_range_values_are_refused_like_the_gateway() -> None:
    one = np.array([1])
    with pytest.raises(ValueError, match="RSSI"):
        wc.r2000_frames(epc=wc.epc_table(["E280"]), antenna=one, rssi_dbm=np.array([-1.0]),
                        round_total=one)  # fmt: skip
    with pytest.raises(ValueError, match="8 bytes"):
        wc.active_frames(device_id=one, seq=one, read_at_us=np.array([1_700_000_000_000_000]),
                         tag=wc.epc_table(["A700"]), rssi_dbm=np.array([-50.0]),
                         antenna=one)  # fmt: skip


@pytest.fixture(scope="module")
def sim() -> object:
    return run(SimOptions(seed=4, bikes=150, hours=0.75, size_m=2000, coverage=0.5, start=START))


@pytest.mark.parametrize("batch_rows", [400_000, 37])
def test_reader_files_are_the_gateway_encoders_streams(
    sim: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    monkeypatch.setattr(emit_files, "BATCH_ROWS", batch_rows)  # readers encoded in batches
    monkeypatch.setattr(emit_files, "_GATHER_BYTES", batch_rows * 3)  # heartbeats merged in parts
    protocols = {r.reader_id: r.protocol for r in sim.readers}
    reads = sim.reads
    tags = list(reads["tag_id"].cat.categories)
    coded = pd.DataFrame({
        "reader": reads["reader_id"].cat.codes.to_numpy(np.int16),
        "antenna": reads["antenna"].to_numpy(), "tag": reads["tag_id"].cat.codes.to_numpy(),
        "rssi_dbm": reads["rssi_dbm"].to_numpy(), "read_at_us": reads["read_at_us"].to_numpy(),
        "true_at_us": reads["true_at_us"].to_numpy(),
    })  # fmt: skip
    assert list(reads["reader_id"].cat.categories) == sorted(protocols)
    tables = EmitTables.build(sim.readers, tags, seed=3, garbage_prob=0.05)
    # Shuffled first: the order reads arrive in must not matter.
    shuffled = coded.sample(frac=1.0, random_state=1)
    counts = write_streams(tmp_path, tables, order_reads(shuffled))
    expected: dict[str, bytearray] = {}
    per_protocol: dict[str, int] = {}
    for m in reader_messages(reads, protocols, seed=3, garbage_prob=0.05):
        serial = m.protocol in SERIAL_PROTOCOLS
        name = f"{m.protocol}/{m.reader_id}.{'bin' if serial else 'jsonl'}"
        expected.setdefault(name, bytearray()).extend(m.payload if serial else m.payload + b"\n")
        per_protocol[m.protocol] = per_protocol.get(m.protocol, 0) + 1
    got = {str(p.relative_to(tmp_path / "emitted")): p.read_bytes()
           for p in (tmp_path / "emitted").rglob("*.*")}  # fmt: skip
    assert set(got) == set(expected)
    assert [k for k in sorted(got) if got[k] != bytes(expected[k])] == []
    assert dict(counts) == per_protocol
    assert set(per_protocol) == {"impinj-iot", "zebra-iotc", "r2000", "tagtrail-active"}
