"""Smoke tests of the pipeline benchmarks: a tiny run of each, checked for correctness only.

No timing is asserted (the machine is shared); what must hold is that every read fed is
stored, every watched-tag read reaches the SSE client as an alert, every query answers, and
the engine ends up holding exactly the open passages it was given. Each runs the real
command (``--json``) against the machine's PostgreSQL and Mosquitto, with the gateway,
engine and API as their own processes.
"""

from __future__ import annotations

from typing import Any

import orjson
from testsupport import ADMIN_URL, MQTT_URL
from typer.testing import CliRunner

from tagtrail.cli import app

_SERVICES = ["--admin-url", ADMIN_URL]


def _bench(*args: str, mqtt: bool = True) -> dict[str, Any]:
    extra = [*_SERVICES, *(["--mqtt-url", MQTT_URL] if mqtt else [])]
    result = CliRunner().invoke(app, ["bench", *args, *extra, "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = orjson.loads(result.stdout)
    return doc


# 0.1 minutes at 5,000 reads/s: 30,000 reads through the whole pipeline.
_TINY_INGEST = (
    "--minutes", "0.1", "--feed-rate", "5000", "--copy-rows", "2000", "--warmup-s", "1",
    "--tags", "1000",
)  # fmt: skip


def test_ingest_stores_every_read_fed() -> None:
    doc = _bench("ingest", *_TINY_INGEST)
    phase = doc["phases"][0]
    assert phase["reads_fed"] == phase["generated"] == 30_000
    assert phase["reads_stored"] == phase["reads_fed"]
    assert doc["reads_per_s"] > 0
    assert doc["copy_reads_per_s"] > 0
    assert doc["ratio"] == phase["ratio"] > 0


def test_ingest_by_engine_count_stores_every_read_fed_with_each() -> None:
    doc = _bench("ingest", "--engines", "1,2", *_TINY_INGEST)
    assert [r["engines"] for r in doc["runs"]] == [1, 2]
    for run in doc["runs"]:
        assert run["reads_fed"] == run["reads_stored"] == 30_000, run
        assert run["reads_per_s"] > 0
        assert doc["reads_per_s"][str(run["engines"])] == run["reads_per_s"]
    assert doc["runs"][0]["speedup"] == 1.0
    assert doc["machine"]["cpus"] >= 1


def test_latency_every_watched_read_raises_a_live_alert() -> None:
    doc = _bench(
        "latency", "--load", "2000", "--probes", "3", "--interval-s", "0.3", "--warmup-s", "1"
    )
    assert doc["alerts_sent"] == doc["alerts_received"] == 3
    assert 0 < doc["p50_ms"] <= doc["p99_ms"] <= doc["max_ms"]


def test_query_every_endpoint_answers() -> None:
    doc = _bench(
        "query",
        "--stored-rows",
        "10000",
        "--seconds",
        "2",
        "--clients",
        "2",
        "--hours",
        "0.25",
        "--warmup-s",
        "1",
        mqtt=False,
    )
    for name in ("route", "last_seen", "next_readers"):
        assert doc[name]["requests"] > 0, name
        assert 0 < doc[name]["after_warmup"]["requests"] < doc[name]["requests"], name


def test_memory_engine_holds_exactly_the_open_passages() -> None:
    doc = _bench("memory", "--registered", "2000", "--active", "200", "--watched", "5")
    assert doc["reads_stored"] == doc["reads_sent"] == 200 * 15
    # … plus up to two probe reads per shard (a day back: their passages stay open too)
    assert 200 <= doc["open_tags"] <= 200 + 8
    assert 3000 <= doc["pending_reads"] <= 3000 + 8
    assert doc["rss_active_mib"] > 0
