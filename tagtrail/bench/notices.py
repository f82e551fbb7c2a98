"""``tagtrail bench notices``: what the notice outbox costs and how fast it drains.

On a fresh database: one stolen bike and ``subscribers`` duty-desk accounts, each with a signed
webhook to a receiver on loopback. Three figures:

1. the engine's alert INSERT + commit (as ``tagtrail_engine``), first with nobody subscribed,
   then with every subscriber: the cost of migration 0095's fan-out trigger in the engine's
   transaction;
2. one sender draining the queued notices to the receiver: notices per second;
3. with the sender running (its real loop, woken by NOTIFY), alert commit → webhook received:
   p50/p99/max.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from api.notifications.channels import ChannelConfig, build_channels
from api.notifications.sender import NoticeSender, RetryPolicy, start_sender
from api.registry import loaders as registry
from api.security import hash_password
from api.users import store as accounts
from tagtrail.bench.common import fresh_database, machine, percentiles_ms

TAG = "E28011A1BE0C0000000000AA"


@dataclass(frozen=True)
class NoticeBenchOptions:
    """How many alerts, subscribers and latency samples; where PostgreSQL is."""

    alerts: int = 100
    subscribers: int = 5
    latency_samples: int = 30
    admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"


class _Receiver:
    """A webhook receiver on loopback that notes when each request arrived."""

    def __init__(self) -> None:
        self.arrived: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.arrived.append(time.perf_counter())
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _world(url: str, subscribers: int) -> int:
    """A stolen bike and the subscribers' accounts; returns the theft's watch id (the
    subscriptions are added later, by :func:`_subscribe`)."""
    with psycopg.connect(url) as conn:
        ids = registry.register_bikes(
            conn,
            [
                registry.Registration(
                    owner_name="Bench", owner_phone="13800000000",
                    owner_id_number="110101199003074258", brand="Yadea", colour="red",
                    frame_number="FRAMEBENCH1", plate="ZBBENCH1", tag_id=TAG,
                )
            ],
            registered_at=datetime.now(UTC) - timedelta(days=30),
            id_hash_key=b"k" * 32,
        )  # fmt: skip
        theft_id, _ = registry.open_theft(
            conn, bike_id=ids["ZBBENCH1"], stolen_at=datetime.now(UTC) - timedelta(hours=1),
            reported_at=datetime.now(UTC) - timedelta(minutes=50), place="", description="",
            case_number="BENCH-1",
        )  # fmt: skip
        password = hash_password("bench-only-password")
        for i in range(subscribers):
            accounts.create_user(conn, username=f"desk{i}", password_hash=password, role="officer")
        row = conn.execute("SELECT watch_id FROM watches WHERE theft_id = %s", (theft_id,))
        watch = row.fetchone()
    if watch is None:
        raise RuntimeError("the theft opened no watch")
    return int(watch[0])


def _subscribe(url: str, hook_url: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            """INSERT INTO notice_subscriptions (user_id, channel, address, kinds, webhook_secret)
               SELECT user_id, 'webhook', %s, ARRAY['stolen_seen'], 'bench-secret-' || user_id
               FROM users WHERE role = 'officer'""",
            (hook_url,),
        )


def _insert_alerts(url: str, watch_id: int, n: int, first: int) -> list[float]:
    """Seconds of each alert's INSERT + commit, one transaction each, as the engine's role."""
    took = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET ROLE tagtrail_engine")
        for i in range(n):
            start = time.perf_counter()
            with conn.transaction():
                conn.execute(
                    "INSERT INTO alerts (watch_id, tag_id, reader_id, read_at) "
                    "VALUES (%s, %s, %s, now())",
                    (watch_id, TAG, f"R{first + i}"),
                )
            took.append(time.perf_counter() - start)
    return took


def _sender(url: str) -> NoticeSender:
    channels = build_channels(ChannelConfig(timeout_s=5.0, allow_private_targets=True))
    return NoticeSender(
        database_url=url, channels=channels, policy=RetryPolicy(), console_url="http://bench",
        poll_s=1.0,
    )  # fmt: skip


def run_notices(options: NoticeBenchOptions) -> dict[str, Any]:
    """Run the three measurements; one document of figures."""
    receiver = _Receiver()
    try:
        with fresh_database(options.admin_url) as url:
            watch_id = _world(url, options.subscribers)
            bare = _insert_alerts(url, watch_id, options.alerts, 0)
            _subscribe(url, receiver.url)
            fanned = _insert_alerts(url, watch_id, options.alerts, options.alerts)
            queued = options.alerts * options.subscribers

            sender = _sender(url)
            start = time.perf_counter()
            with psycopg.connect(url, autocommit=True) as conn:
                sent = 0
                while sent < queued:
                    outcomes = sender.drain(conn, limit=queued)
                    if not outcomes:
                        break
                    sent += sum(o.outcome == "sent" for o in outcomes)
            drain_s = time.perf_counter() - start

            latencies = _latencies(url, watch_id, receiver, options)
            doc = {"machine": machine(url)}
    finally:
        receiver.close()
    return {
        "benchmark": "notices",
        "alerts": options.alerts,
        "subscribers": options.subscribers,
        "alert_commit_no_subscribers_ms": percentiles_ms(bare),
        "alert_commit_fan_out_ms": percentiles_ms(fanned),
        "notices_queued": queued,
        "notices_sent": sent,
        "drain_s": round(drain_s, 3),
        "notices_per_s": round(sent / drain_s, 1) if drain_s > 0 else None,
        "alert_to_webhook_ms": percentiles_ms(latencies),
        "latency_samples": len(latencies),
        **doc,
    }


def _latencies(
    url: str, watch_id: int, receiver: _Receiver, options: NoticeBenchOptions
) -> list[float]:
    """Alert commit → first webhook request of it, with one sender in its real loop."""
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE notice_subscriptions SET enabled = (user_id = (SELECT min(user_id) "
                     "FROM users WHERE role = 'officer'))")  # fmt: skip
    thread, stop = start_sender(_sender(url))
    out: list[float] = []
    try:
        time.sleep(1.0)  # the sender's LISTEN is up
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET ROLE tagtrail_engine")
            for i in range(options.latency_samples):
                seen = len(receiver.arrived)
                conn.execute(
                    "INSERT INTO alerts (watch_id, tag_id, reader_id, read_at) "
                    "VALUES (%s, %s, %s, now())",
                    (watch_id, TAG, f"L{i}"),
                )
                committed = time.perf_counter()
                deadline = committed + 10.0
                while len(receiver.arrived) == seen and time.perf_counter() < deadline:
                    time.sleep(0.001)
                if len(receiver.arrived) > seen:
                    out.append(receiver.arrived[seen] - committed)
    finally:
        stop.set()
        thread.join(10)
    return out


def report_rows(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """The table rows of a notices benchmark document."""
    bare, fanned = doc["alert_commit_no_subscribers_ms"], doc["alert_commit_fan_out_ms"]
    lat = doc["alert_to_webhook_ms"]
    return [
        ("alerts × subscribers", f"{doc['alerts']} × {doc['subscribers']}"),
        ("alert commit, nobody subscribed p50/p99", f"{bare['p50_ms']} / {bare['p99_ms']} ms"),
        ("alert commit, fan-out p50/p99", f"{fanned['p50_ms']} / {fanned['p99_ms']} ms"),
        ("notices sent / queued", f"{doc['notices_sent']} / {doc['notices_queued']}"),
        ("one sender, notices/s", str(doc["notices_per_s"])),
        ("alert → webhook p50/p99/max", f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']} ms"),
        ("load average", str(doc["machine"]["load_avg"])),
    ]
