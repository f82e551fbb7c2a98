"""``tagtrail decode``: one JSON line per read and per rejected frame."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from typer.testing import CliRunner

from reader_gateway.protocols import r2000, zebra_iotc
from tagtrail.cli import app

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)  # offline decoding: any fixed time
FIXTURES = Path(__file__).parent.parent / "protocols" / "fixtures"


def _lines(output: str) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in output.splitlines() if line.strip()]


def test_hex_text_with_garbage_gives_reads_and_a_reject() -> None:
    frames = r2000.encode_tag_frame(tag_id="E28011606000020528F904FA", antenna=2, rssi_dbm=-61)
    hex_text = f"# capture\n{frames.hex(' ')}\nde ad\n{frames.hex(':')}\n"
    result = CliRunner().invoke(
        app,
        ["decode", "--format", "r2000", "--hex", "-", "--received-at", T0.isoformat()],
        input=hex_text,
    )
    assert result.exit_code == 1, result.output  # something was rejected
    lines = _lines(result.stdout)
    reads = [line for line in lines if "tag_id" in line]
    expected = {
        "tag_id": "E28011606000020528F904FA",
        "antenna": 2,
        "rssi_dbm": -61.0,
        "read_at": "2026-11-29T06:00:00Z",
    }
    assert reads == [expected, expected]
    assert [line["rejected"] for line in lines if "rejected" in line] == ["framing"]


def test_zebra_file_with_offset_timestamps_is_printed_in_utc(tmp_path: Path) -> None:
    event = zebra_iotc.encode_tag_data_event(
        tag_id="3034F8B2",
        antenna=1,
        rssi_dbm=-55,
        read_at=T0 + timedelta(milliseconds=250),
        event_num=9,
        utc_offset_minutes=480,
    )
    path = tmp_path / "capture.json"
    path.write_bytes(zebra_iotc.encode_batch([event, event]))
    result = CliRunner().invoke(app, ["decode", "--format", "zebra-iotc", str(path)])
    assert result.exit_code == 0, result.output
    assert _lines(result.stdout)[0] == {
        "tag_id": "3034F8B2",
        "antenna": 1,
        "rssi_dbm": -55.0,
        "read_at": "2026-11-29T06:00:00.250000Z",
        "reader_seq": 9,
    }


def test_binary_fixture_and_unknown_format() -> None:
    path = FIXTURES / "tagtrail-active" / "bad_crc_then_good_frame.bin"
    result = CliRunner().invoke(app, ["decode", "--format", "tagtrail-active", str(path)])
    lines = _lines(result.stdout)
    assert any("tag_id" in line for line in lines)
    assert any(line.get("rejected") == "checksum" for line in lines)
    bad = CliRunner().invoke(app, ["decode", "--format", "no-such-protocol", str(path)])
    assert bad.exit_code == 2


def test_llrp_capture_file_gives_its_45_reads_in_utc() -> None:
    # Real Impinj RO_ACCESS_REPORTs published in sllurp's tests (see test_protocol_llrp.py).
    path = FIXTURES / "llrp" / "sllurp_ro_access_reports_45_tags.bin"
    result = CliRunner().invoke(app, ["decode", "--format", "llrp", str(path)])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert len(lines) == 45
    assert lines[0] == {
        "tag_id": "3005FB63AC1F3841EC880467",
        "antenna": 1,
        "rssi_dbm": -50.0,
        "read_at": "2013-11-27T20:44:01.558537Z",  # the reader's FirstSeenTimestampUTC
    }


def test_llrp_hex_keepalive_and_bad_version_with_events() -> None:
    hex_text = (
        "# KEEPALIVE id 7\n04 3e 00 00 00 0a 00 00 00 07\n"
        "# version 7 header\n1c 3d 00 00 00 0a 00 00 00 01\n"
    )
    result = CliRunner().invoke(
        app,
        ["decode", "--format", "llrp", "--hex", "--events", "-", "--received-at", T0.isoformat()],
        input=hex_text,
    )
    assert result.exit_code == 1, result.output
    lines = _lines(result.stdout)
    assert [line.get("rejected") for line in lines if "rejected" in line] == ["version"]
    assert [line["event"] for line in lines if "event" in line] == ["keepalive", "framing_lost"]
