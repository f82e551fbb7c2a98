"""The gateway TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from reader_gateway.config import load_config
from reader_gateway.errors import ConfigError

EXAMPLE = """
gateway_id = "gw-north"
shard_count = 8
reader_aliases = { "AT-0000002A" = "R0102" }

[broker]
url = "mqtt://127.0.0.1:1883"
max_inflight = 500

[batching]
max_reads = 200
max_delay_s = 0.5
dedupe_window_s = 1.0

[clock]
offsets_s = { R0101 = 2.5 }
estimate = true

[spool]
dir = "spool"
max_bytes = 104857600

[health]
metrics_port = 9108
silent_after_s = 30
offline_after_s = 120

[[serial]]
port = "/dev/serial/by-id/usb-reader-1"
reader_id = "R0101"
protocol = "r2000"
baud = 115200
antenna_map = { 1 = 2, 2 = 1 }

[[mqtt]]
topic = "tagtrail/v1/raw/impinj-iot/+"

[[llrp]]
host = "10.20.0.31"
reader_id = "R0103"
antennas = [1, 2]
power_dbm = 27.0
session = 1
search_mode = 2
keepalive_s = 5
dead_after_s = 15
"""


def test_the_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(EXAMPLE)
    cfg = load_config(path)
    assert cfg.gateway_id == "gw-north"
    assert cfg.spool.dir == tmp_path / "spool"  # relative to the file
    assert cfg.serial[0].antenna_map == {1: 2, 2: 1}
    assert cfg.clock.offsets_s == {"R0101": 2.5}
    assert cfg.mqtt[0].protocol is None
    assert cfg.reader_aliases == {"AT-0000002A": "R0102"}
    llrp = cfg.llrp[0]
    assert (llrp.host, llrp.port, llrp.antennas, llrp.session) == ("10.20.0.31", 5084, [1, 2], 1)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (('protocol = "r2000"', 'protocol = "r2001"'), "unknown protocol"),
        (('protocol = "r2000"', 'protocol = "llrp"'), "runs over TCP, not a serial port"),
        (("max_inflight = 500", "max_inflight = 70000"), "max_inflight"),
        (("[batching]", "[batching]\nmax_raeds = 3"), "max_raeds"),
        (('dir = "spool"', ""), "dir"),
        (("offline_after_s = 120", "offline_after_s = 10"), "offline_after_s"),
        (("gateway_id", "gateway_id = "), "cannot read"),
        (("dead_after_s = 15", "dead_after_s = 6"), "two keepalive periods"),
        (('reader_id = "R0103"', 'reader_id = "R0101"'), "reader_id is used twice"),
        (("session = 1", "session = 4"), "session"),
        (("antennas = [1, 2]", "antennas = [0]"), "antennas"),
    ],
)
def test_mistakes_are_refused_with_the_reason(
    tmp_path: Path, change: tuple[str, str], complaint: str
) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(EXAMPLE.replace(*change, 1))
    with pytest.raises(ConfigError, match=complaint):
        load_config(path)
