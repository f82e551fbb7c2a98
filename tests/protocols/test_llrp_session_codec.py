"""The LLRP messages the gateway's transport sends and the capabilities it reads, checked
against an independent codec (llrpkit's, MIT) in both directions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from llrpkit.emulator import LLRPEmulator
from llrpkit.protocol import decode_message, impinj, messages, params
from typer.testing import CliRunner

from reader_gateway.protocols import llrp_encode as enc
from reader_gateway.protocols.base import PayloadError
from reader_gateway.protocols.llrp import LlrpDecoder
from reader_gateway.protocols.llrp_caps import ReaderCapabilities, parse_capabilities
from tagtrail.cli import app

AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_add_rospec_with_power_session_and_search_mode_decodes_in_llrpkit() -> None:
    config = enc.encode_antenna_configuration(
        power_index=11, session=2, tag_population=64, search_mode=2
    )
    rospec = enc.encode_rospec(rospec_id=29799, antennas=[1, 3], antenna_configurations=[config])
    msg = decode_message(enc.encode_add_rospec(message_id=5, rospec=rospec))
    assert isinstance(msg, messages.ADD_ROSPEC)
    assert msg.message_id == 5
    spec = msg.ro_spec
    assert spec.ro_spec_id == 29799
    (ai,) = spec.spec_parameters
    assert isinstance(ai, params.AISpec)
    assert list(ai.antenna_ids) == [1, 3]
    (inventory,) = ai.inventory_parameter_specs
    (antenna,) = inventory.antenna_configurations
    assert antenna.antenna_id == 0
    assert antenna.rf_transmitter is not None
    assert antenna.rf_transmitter.transmit_power == 11
    (command,) = antenna.air_protocol_inventory_command_settings
    assert command.c1_g2_singulation_control is not None
    assert command.c1_g2_singulation_control.session == 2
    assert command.c1_g2_singulation_control.tag_population == 64
    (custom,) = command.custom
    assert isinstance(custom, impinj.ImpinjInventorySearchMode)
    assert custom.inventory_search_mode == 2
    assert spec.ro_report_spec is not None


def test_keepalive_config_and_impinj_extensions_decode_in_llrpkit() -> None:
    msg = decode_message(enc.encode_set_keepalive(message_id=2, period_ms=5000))
    assert isinstance(msg, messages.SET_READER_CONFIG)
    assert msg.keepalive_spec is not None
    assert (
        msg.keepalive_spec.keepalive_trigger_type,
        msg.keepalive_spec.periodic_trigger_value,
    ) == (1, 5000)
    assert isinstance(
        decode_message(enc.encode_impinj_enable_extensions(message_id=3)),
        impinj.IMPINJ_ENABLE_EXTENSIONS,
    )
    event = decode_message(enc.encode_connection_attempt(at=AT, status=0))
    assert isinstance(event, messages.READER_EVENT_NOTIFICATION)


def test_llrpkit_capabilities_read_by_ours() -> None:
    """The emulator's GET_READER_CAPABILITIES_RESPONSE (a power table of 10-30 dBm in 1 dB
    steps, four antennas) through our decoder and capability parser."""
    response = LLRPEmulator(antenna_count=4)._capabilities_response().to_bytes(message_id=9)
    result = LlrpDecoder().decode(response, AT)
    assert not result.rejects
    (event,) = result.events
    caps = event.detail["capabilities"]
    assert isinstance(caps, ReaderCapabilities)
    assert caps.max_antennas == 4
    assert caps.firmware == "llrpkit-emu 0.1"
    assert caps.power_table_dbm[0] == (1, 10.0)
    assert caps.power_table_dbm[-1] == (21, 30.0)
    assert caps.power_index(25.5) == 16
    assert caps.power_index(3.0) == 1  # below every level: the lowest


def test_our_capabilities_response_reads_back_and_in_llrpkit() -> None:
    raw = enc.encode_capabilities_response(
        message_id=4, max_antennas=2, power_table_cdbm=[1500, 2000, 2550], firmware="sim 1"
    )
    msg = decode_message(raw)
    assert isinstance(msg, messages.GET_READER_CAPABILITIES_RESPONSE)
    assert msg.general_device_capabilities.max_number_of_antenna_supported == 2
    assert msg.regulatory_capabilities is not None
    band = msg.regulatory_capabilities.uhf_band_capabilities
    assert band is not None
    assert [(e.index, e.transmit_power_value) for e in band.transmit_power_level_table_entrys] == [
        (1, 1500), (2, 2000), (3, 2550)
    ]  # fmt: skip
    caps = parse_capabilities(raw[10:])
    assert caps == ReaderCapabilities(2, "sim 1", 0, 0, ((1, 15.0), (2, 20.0), (3, 25.5)))


def test_capabilities_without_general_device_capabilities_refused() -> None:
    with pytest.raises(PayloadError, match="GeneralDeviceCapabilities"):
        parse_capabilities(enc.encode_llrp_status())
    with pytest.raises(ValueError, match="no transmit power"):
        ReaderCapabilities(4).power_index(20.0)


def test_decode_cli_shows_the_channel_and_the_capabilities(tmp_path: Path) -> None:
    capture = tmp_path / "session.bin"
    capture.write_bytes(
        enc.encode_capabilities_response(
            message_id=1, max_antennas=2, power_table_cdbm=[1000, 2000]
        )
        + enc.encode_ro_access_report(
            [enc.TagReport("E2801160600002AAAAAAAAAA", 1, -50, first_seen=AT, channel=4)],
            message_id=2,
        )
    )
    result = CliRunner().invoke(app, ["decode", "--format", "llrp", "--events", str(capture)])
    assert result.exit_code == 0, result.output
    read, event = (orjson.loads(line) for line in result.stdout.splitlines())
    assert read == {
        "tag_id": "E2801160600002AAAAAAAAAA",
        "antenna": 1,
        "rssi_dbm": -50.0,
        "read_at": "2026-12-07T08:00:00Z",
        "channel": 4,
    }
    assert event["detail"]["capabilities"] == {
        "max_antennas": 2,
        "firmware": "",
        "manufacturer": 0,
        "model": 0,
        "power_table_dbm": [[1, 10.0], [2, 20.0]],
    }
