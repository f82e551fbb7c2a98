"""Read times far from the gateway's clock are refused, counted and logged, never published.

A reader with a broken clock (or a forger) sends reads dated 2099 or 2000: stored, one such
read moved the engine's watermark and partitions for good. The gateway accepts a read only
if its time, after clock correction, lies within ``clock.max_read_age_s`` before and
``clock.max_read_lead_s`` after the moment the gateway received it; reads buffered for hours
by a reader that was cut off are still taken.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gw_helpers import RunningGateway, raw_gateway_config, wait_until

from reader_gateway.config import GatewayConfig
from reader_gateway.pipeline.clock import ClockEstimator
from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.pipeline.refusals import ReadWindow
from reader_gateway.protocols.base import TagRead
from reader_gateway.protocols.impinj_iot import encode_tag_inventory_event


@pytest.fixture
def running(tmp_path: Path, mqtt_url: str, topic_prefix: str) -> Iterator[RunningGateway]:
    run = RunningGateway(raw_gateway_config(tmp_path, mqtt_url, topic_prefix), mqtt_url)
    yield run
    run.close()


def test_reads_dated_2099_or_2000_are_quarantined_buffered_hours_old_ones_published(
    running: RunningGateway, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    now = datetime.now(UTC)
    dated = {
        "E20000000000000000000001": datetime(2099, 1, 1, tzinfo=UTC),  # refused
        "E20000000000000000000002": datetime(2000, 1, 1, tzinfo=UTC),  # refused
        "E20000000000000000000003": now + timedelta(hours=1),  # refused: past the 5 min lead
        "E20000000000000000000004": now - timedelta(days=3),  # refused: past the 2 day age
        "E20000000000000000000005": now - timedelta(hours=6),  # buffered in an outage: taken
        "E20000000000000000000006": now - timedelta(seconds=2),  # taken
        "E20000000000000000000007": now + timedelta(seconds=30),  # a fast clock: taken
    }
    running.publish(
        f"{topic_prefix}/raw/impinj-iot/R0001",
        [
            encode_tag_inventory_event(
                hostname="R0001", tag_id=tag, antenna=1, rssi_dbm=-60, read_at=at
            )
            for tag, at in dated.items()
        ],
    )
    gateway = running.gateway
    wait_until(lambda: len(running.collector.natural_keys()) >= 3, 10, "the reads in the window")
    assert gateway.wait_until(gateway.idle, 10)  # every message handled and acknowledged
    keys = running.collector.natural_keys()
    assert sorted(k[1] for k in keys) == [
        "E20000000000000000000005",
        "E20000000000000000000006",
        "E20000000000000000000007",
    ]
    assert gateway.readers["R0001"].rejects["read_at_out_of_window"] == 4
    assert running.rejects("R0001", "read_at_out_of_window") == 4
    assert "read at 2099-01-01T00:00:00+00:00 (corrected)" in caplog.text
    quarantined = [
        e for e in gateway.quarantine.entries() if e["reason"] == "read_at_out_of_window"
    ]
    assert sum(int(str(e["reads"])) for e in quarantined) == 4
    assert any("2000-01-01T00:00:00+00:00" in str(e["detail"]) for e in quarantined)


def test_the_window_is_measured_after_clock_correction() -> None:
    """A reader whose clock fell back a year (a flat battery) is taken once its surveyed or
    estimated offset corrects it; the same reads uncorrected would all be refused."""
    received = datetime.now(UTC)
    year = timedelta(days=365)
    reads = [
        TagRead(tag_id=f"{i:016X}", antenna=1, rssi_dbm=-60, read_at=received - year)
        for i in range(4)
    ]
    window = ReadWindow(max_age_s=600, max_lead_s=60)
    corrected = Normalizer(
        "gw",
        shard_count=1,
        clock=ClockEstimator({"R1": -year.total_seconds()}, enabled=False),
        read_window=window,
    )
    assert corrected.add(reads, reader_id="R1", received_at=received) == 4
    uncorrected = Normalizer("gw", shard_count=1, read_window=window)
    assert uncorrected.add(reads, reader_id="R1", received_at=received) == 0
    [refusal] = uncorrected.take_refusals()
    assert (refusal.reader_id, refusal.reason, refusal.reads) == ("R1", "read_at_out_of_window", 4)


def test_the_window_is_one_setting_with_sane_defaults() -> None:
    clock = GatewayConfig.model_validate({"spool": {"dir": "/tmp/x"}}).clock
    assert (clock.max_read_age_s, clock.max_read_lead_s) == (2 * 86_400, 300)
    narrow = GatewayConfig.model_validate(
        {"spool": {"dir": "/tmp/x"}, "clock": {"max_read_age_s": 3600, "max_read_lead_s": 10}}
    )
    assert (narrow.clock.max_read_age_s, narrow.clock.max_read_lead_s) == (3600, 10)
