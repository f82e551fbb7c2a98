"""Rules that live in one place stay there: tag ids, protocol names, the topic root, settings.

Each test fails if a second definition drifts from the first: the readers API against the
gateway's decoders, the registry's tag-id check against what a decoder emits, a hard-coded
topic root or environment read outside the module that owns it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from api.bikes.schemas import RetagIn
from api.readers.service import ReaderIn
from citymap.reader_files import PROTOCOLS as DEPLOYMENT_FILE_PROTOCOLS
from reader_gateway.config import GatewayConfig
from reader_gateway.protocols import DECODERS, make_decoder
from reader_gateway.protocols._common import canonical_tag_hex
from reader_gateway.protocols.base import PayloadError
from reader_gateway.protocols.impinj_iot import encode_tag_inventory_event
from reader_gateway.transport.mqtt import MqttGatewayConfig
from reader_gateway.wire import DEFAULT_SHARD_COUNT, READER_PROTOCOLS, TOPIC_ROOT
from simulators.readers import PROTOCOLS as SIMULATED_PROTOCOLS
from tagtrail.settings import Settings
from track_engine.consumer.config import EngineConfig

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("tagtrail", "reader_gateway", "track_engine", "api", "simulators")


def _reader(protocol: str) -> ReaderIn:
    return ReaderIn(reader_id="R-1", protocol=protocol, lon=120.0, lat=30.0)


def test_readers_api_accepts_every_protocol_the_gateway_decodes() -> None:
    assert set(DECODERS) == set(READER_PROTOCOLS)
    for protocol in DECODERS:
        assert _reader(protocol).protocol == protocol
    with pytest.raises(ValidationError):
        _reader("impinj")


def test_simulated_and_deployment_file_protocols_are_gateway_protocols() -> None:
    assert set(SIMULATED_PROTOCOLS) <= set(READER_PROTOCOLS)
    assert set(DEPLOYMENT_FILE_PROTOCOLS) <= set(READER_PROTOCOLS)


def _registry_accepts(tag: str) -> str | None:
    try:
        return RetagIn(tag_id=tag).tag_id
    except ValidationError:
        return None


def _decoder_accepts(tag: str) -> str | None:
    try:
        return canonical_tag_hex(tag)
    except PayloadError:
        return None


@given(st.text(alphabet="0123456789abcdefABCDEFxZ -", max_size=130))
def test_registry_and_decoders_agree_on_tag_ids(tag: str) -> None:
    assert _registry_accepts(tag) == _decoder_accepts(tag)


@given(st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=124))
def test_a_registered_tag_is_one_a_decoder_emits(tag: str) -> None:
    registered = _registry_accepts(tag)
    if registered is None:
        return
    event = encode_tag_inventory_event(
        hostname="r700",
        tag_id=registered,
        antenna=1,
        rssi_dbm=-60.0,
        read_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    result = make_decoder("impinj-iot").decode(event, datetime.now(UTC))
    emitted = [t for b in result.blocks for t in b.tag_id.tolist()]
    assert [*emitted, *(r.tag_id for r in result.reads)] == [registered]


def _production_sources() -> list[Path]:
    return [p for package in PRODUCTION for p in sorted((ROOT / package).rglob("*.py"))]


def test_topic_root_is_defaulted_only_in_the_wire_contract() -> None:
    literal = re.compile(r"""["']tagtrail/v1["']""")
    offenders = [
        str(p.relative_to(ROOT))
        for p in _production_sources()
        if p != ROOT / "reader_gateway" / "wire.py" and literal.search(p.read_text())
    ]
    assert offenders == []
    assert Settings.model_fields["topic_prefix"].default == TOPIC_ROOT


def test_configuration_is_read_only_through_settings() -> None:
    reads = re.compile(r"os\.getenv|os\.environ\[|os\.environ\.get|envvar=\"TAGTRAIL_(?!BENCH)")
    offenders = [
        str(p.relative_to(ROOT))
        for p in _production_sources()
        if p != ROOT / "tagtrail" / "settings.py" and reads.search(p.read_text())
    ]
    assert offenders == []


def test_settings_exported_to_children_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    # set first, so that monkeypatch records the variable's state before the test and restores it
    monkeypatch.setenv("TAGTRAIL_DATABASE_URL", "postgresql://before@db.invalid/x")
    url = "postgresql://tagtrail@db.invalid:5432/tagtrail"
    Settings(database_url=url).export_to_children("database_url")
    assert Settings().database_url == url


def test_gateways_and_engines_default_to_one_shard_count() -> None:
    assert Settings.model_fields["shard_count"].default == DEFAULT_SHARD_COUNT
    assert GatewayConfig.model_fields["shard_count"].default == DEFAULT_SHARD_COUNT
    assert MqttGatewayConfig("mqtt://x").shard_count == DEFAULT_SHARD_COUNT
    assert EngineConfig("postgresql://x", "mqtt://x").shards == tuple(range(DEFAULT_SHARD_COUNT))
