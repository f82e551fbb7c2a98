"""The pipeline under test: ptys → gateway process(es) → Mosquitto → engine process(es) → DB.

:class:`PipelineUnderTest` starts the engines first and proves each shard's engine is
subscribed (a one-read probe batch per shard, a day before the workload, must be stored), then
the gateways with one TOML file each (their ptys as ``tagtrail-active`` serial readers, clock
estimation off because the readers' times are the workload's), and waits until every port is
open (pyserial flushes a port's input when it opens it, so earlier bytes would be lost).
Progress is read from the engines' Prometheus counters (reads stored, after each commit).
"""

from __future__ import annotations

import re
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from reader_gateway.brokers import mqtt_target
from reader_gateway.wire import batch_from_columns, encode_batch, reads_topic
from tagtrail.bench.common import (
    Service,
    clear_mqtt_sessions,
    engine_args,
    service_env,
    wait_for,
)
from tagtrail.bench.ptys import PtyFeeder
from tagtrail.ports import free_port

SHARDS = 4
_PROBE_TAG = "0000000000B0BE0{}"
_DAY_US = 86_400_000_000


def _gateway_toml(
    *, gateway_id: str, prefix: str, mqtt_url: str, spool: Path, ports: list[str], metrics: int
) -> str:
    serial = "".join(
        f'\n[[serial]]\nport = "{p}"\nreader_id = "{gateway_id}-pty{i}"\n'
        f'protocol = "tagtrail-active"\nbaud = 115200\n'
        # Each pty is a bus carrying many active readers' frames (the workload's AT-… ids).
        'frame_readers = ["AT-*"]\n'
        for i, p in enumerate(ports)
    )
    return (
        f'gateway_id = "{gateway_id}"\ntopic_prefix = "{prefix}"\nshard_count = {SHARDS}\n'
        f'[broker]\nurl = "{mqtt_url}"\nmax_inflight = 1000\npersistent_session = false\n'
        f"[batching]\nmax_reads = 2000\nmax_delay_s = 0.1\ndedupe_window_s = 0\n"
        f"[clock]\nestimate = false\n"
        f'[spool]\ndir = "{spool}"\n'
        f'[health]\nmetrics_port = {metrics}\nmetrics_host = "127.0.0.1"\n' + serial
    )


class PipelineUnderTest:
    """Gateways and engines as processes for one run; a context manager that stops them."""

    def __init__(
        self,
        *,
        database_url: str,
        mqtt_url: str,
        prefix: str,
        gateways: int = 1,
        engines: int = 1,
        ptys_per_gateway: int = 4,
        probe_day_us: int,
        extra_ports: tuple[str, ...] = (),
    ) -> None:
        """Describe the run; :meth:`start` starts it."""
        self.database_url = database_url
        self.mqtt_url = mqtt_url
        self.prefix = prefix
        self.gateway_count = gateways
        self.engine_count = engines
        self.ptys_per_gateway = ptys_per_gateway
        self.probe_day_us = probe_day_us
        self.extra_ports = extra_ports  # more serial readers for gateway 0 (not fed here)
        self.engine_metrics_ports = [free_port() for _ in range(engines)]
        self._tmp = tempfile.TemporaryDirectory(prefix="tagtrail-bench-")
        self.dir = Path(self._tmp.name)
        self.feeder = PtyFeeder(gateways * ptys_per_gateway, frame_bytes=32)
        self.engines: list[Service] = []
        self.gateways: list[Service] = []
        self._metrics_ports: list[int] = []
        self._client_ids: list[str] = []
        self._nudges = 0
        self.conn = psycopg.connect(database_url, autocommit=True)

    def __enter__(self) -> PipelineUnderTest:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def services(self) -> list[Service]:
        """Every child process of the run."""
        return [*self.engines, *self.gateways]

    def start(self, timeout_s: float = 60.0) -> None:
        """Start engines, prove their subscriptions, start gateways, wait for open ports."""
        env = service_env(self.database_url, self.mqtt_url, self.prefix, self.dir / "data")
        owned = np.array_split(np.arange(SHARDS), self.engine_count)
        run_id = self.prefix.rsplit("/", 1)[-1]
        for i, shards in enumerate(owned):
            worker_id = f"bench-{run_id}-{i}"
            self._client_ids.append(f"tagtrail-engine-{worker_id}")
            args = engine_args(worker_id, shards.tolist(), self.engine_metrics_ports[i])
            self.engines.append(Service(f"engine-{i}", args, env=env, log_dir=self.dir))
        self._probe_engines(timeout_s)
        for g in range(self.gateway_count):
            ports = self.feeder.paths[g * self.ptys_per_gateway : (g + 1) * self.ptys_per_gateway]
            if g == 0:
                ports = [*ports, *self.extra_ports]
            metrics = free_port()
            self._metrics_ports.append(metrics)
            config = self.dir / f"gw-{g}.toml"
            config.write_text(
                _gateway_toml(
                    gateway_id=f"bench-gw-{g}",
                    prefix=self.prefix,
                    mqtt_url=self.mqtt_url,
                    spool=self.dir / f"spool-{g}",
                    ports=ports,
                    metrics=metrics,
                )
            )
            self.gateways.append(
                Service(
                    f"gateway-{g}", ["gateway", "--config", str(config)], env=env, log_dir=self.dir
                )
            )
        wait_for(
            self._ports_open, timeout_s=timeout_s, what="gateway ports", services=self.services
        )

    def _probe_engines(self, timeout_s: float) -> None:
        """Publish one read per shard until each is stored: every shard has a subscriber."""
        with self._probe_client() as client:
            deadline = time.monotonic() + timeout_s
            stored: set[int] = set()
            next_publish = 0.0
            while len(stored) < SHARDS:
                for engine in self.engines:
                    engine.check()
                now = time.monotonic()
                if now > deadline:
                    raise TimeoutError("engines did not store the probe reads")
                if now >= next_publish:  # again every 2 s: one sent before SUBACK is dropped
                    next_publish = now + 2.0
                    for shard in set(range(SHARDS)) - stored:
                        self._publish_probe(client, shard)
                time.sleep(0.2)
                rows = self.conn.execute(
                    "SELECT DISTINCT tag_id FROM reads WHERE reader_id = 'PROBE'"
                ).fetchall()
                stored = {s for s in range(SHARDS) if (self._probe_tag(s),) in rows}

    def nudge(self) -> None:
        """One more probe read per shard (new keys), so every engine runs one more
        micro-batch and refreshes its gauges; waits until they are stored."""
        before = self.reads_stored()
        self._nudges += 1
        with self._probe_client() as client:
            for shard in range(SHARDS):
                self._publish_probe(client, shard, offset_us=self._nudges)
            wait_for(
                lambda: self.reads_stored() >= before + SHARDS,
                timeout_s=30,
                what="the nudge reads",
                services=self.engines,
            )

    @contextmanager
    def _probe_client(self) -> Iterator[mqtt.Client]:
        """A connected broker client for probe reads, its network loop running."""
        target = mqtt_target(self.mqtt_url)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
        target.configure(client)
        client.connect(target.host, target.port, keepalive=30)
        client.loop_start()
        try:
            yield client
        finally:
            client.loop_stop()
            client.disconnect()

    def _publish_probe(self, client: mqtt.Client, shard: int, offset_us: int = 0) -> None:
        batch = batch_from_columns(
            gateway_id="bench-probe",
            batch_seq=shard,
            sent_at_us=0,
            reader_ids=["PROBE"],
            antenna=[1],
            tag=[self._probe_tag(shard)],
            rssi_dbm=[-60.0],
            read_at_us=[self.probe_day_us + offset_us],
            seq=[0],
        )
        client.publish(reads_topic(shard, f"{self.prefix}/reads"), encode_batch(batch), qos=1)

    @staticmethod
    def _probe_tag(shard: int) -> str:
        """A tag id that the gateways' shard function sends to ``shard``."""
        from reader_gateway.wire import shard_of

        for n in range(10_000):
            tag = f"B0BE{n:012X}"
            if shard_of(tag, SHARDS) == shard:
                return tag
        raise AssertionError("no probe tag found")  # the CRC spreads 10,000 ids over 4 shards

    def engine_metric(self, name: str) -> float:
        """Sum over the engines of one of their Prometheus samples (a gauge, a counter)."""
        total = 0.0
        for port in self.engine_metrics_ports:
            match = re.search(rf"^{name} (\S+)$", self._scrape(port), re.M)
            total += float(match.group(1)) if match else 0.0
        return total

    def gateway_reads_acked(self) -> int:
        """Reads in batches the broker has acknowledged to the gateways (PUBACK)."""
        total = 0.0
        for port in self._metrics_ports:
            match = re.search(
                r"^tagtrail_gateway_reads_acked_total (\S+)$", self._scrape(port), re.M
            )
            total += float(match.group(1)) if match else 0.0
        return int(total)

    def _scrape(self, port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text: str = resp.read().decode()
        return text

    def _ports_open(self) -> bool:
        try:
            texts = [self._scrape(p) for p in self._metrics_ports]
        except OSError:
            return False
        opened = sum(
            len(re.findall(r"^tagtrail_gateway_serial_port_open\{[^}]*\} 1\.0$", t, re.M))
            for t in texts
        )
        return opened == len(self.feeder.paths) + len(self.extra_ports)

    def reads_stored(self) -> int:
        """Reads the engines have stored and committed so far (the probes included).

        From the engines' own counters, which move right after each commit; PostgreSQL's
        table statistics would lag by up to the idle flush interval (10 s).
        """
        return int(self.engine_metric("tagtrail_engine_reads_stored_total"))

    def engine_rss_bytes(self) -> list[int]:
        """Resident set size of each engine process now."""
        return [e.rss_bytes() for e in self.engines]

    def stop(self) -> None:
        """Stop feeding, then gateways and engines; close the ptys and remove the files."""
        self.feeder.stop.set()
        for service in (*self.gateways, *self.engines):
            service.stop()
        clear_mqtt_sessions(self.mqtt_url, self._client_ids)
        self.feeder.close()
        self.conn.close()
        self._tmp.cleanup()
