"""Broker security for production: Mosquitto with a password file and TagTrail's ACL.

Starts a Mosquitto instance of the test's own (never the machine's shared one) with the config
shape of deploy/mosquitto/mosquitto.conf and an ACL from tagtrail.broker_acl, then checks that
readers can publish only their own raw topic, engines and gateways only what their role needs,
and that nobody gets in without a password.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from broker_helpers import ACCOUNTS, PREFIX, secured_mosquitto
from paho.mqtt.enums import CallbackAPIVersion

from tagtrail.broker_acl import BrokerRoster, render_acl


@pytest.fixture(scope="module")
def secured_broker() -> Iterator[int]:
    with secured_mosquitto() as broker:
        yield broker.port


class _Client:
    """A paho client that records connect result and received topics."""

    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.reason: int | None = None
        self.received: list[str] = []
        self._got = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}")
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK"

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        self.reason = int(getattr(rc, "value", rc))  # type: ignore[call-overload]
        self.connected.set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self._got:
            self.received.append(msg.topic)
            self._got.notify_all()

    def subscribe(self, topic: str) -> None:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5)

    def publish(self, topic: str) -> None:
        self.client.publish(topic, b"x", qos=1).wait_for_publish(5)

    def wait_for(self, topic: str) -> None:
        with self._got:
            assert self._got.wait_for(lambda: topic in self.received, 5), self.received

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def observer(secured_broker: int) -> Iterator[_Client]:
    client = _Client(secured_broker, "observer", ACCOUNTS["observer"])
    client.subscribe(f"{PREFIX}/#")
    yield client
    client.close()


def _as(port: int, user: str) -> _Client:
    client = _Client(port, user, ACCOUNTS[user])
    assert client.reason == 0, f"{user} was refused: {client.reason}"
    return client


def test_no_anonymous_and_no_wrong_password(secured_broker: int) -> None:
    anonymous = _Client(secured_broker, None, None)
    wrong = _Client(secured_broker, "R0001", "not-the-password")
    assert anonymous.reason != 0
    assert wrong.reason != 0
    anonymous.close()
    wrong.close()


@pytest.mark.parametrize(
    ("user", "denied", "allowed"),
    [
        # A reader may not impersonate another reader, nor inject batches or alerts.
        ("R0001", f"{PREFIX}/raw/impinj-iot/R0002", f"{PREFIX}/raw/impinj-iot/R0001"),
        ("R0001", f"{PREFIX}/reads/0", f"{PREFIX}/raw/impinj-iot/R0001"),
        ("R0001", f"{PREFIX}/alerts/1", f"{PREFIX}/raw/impinj-iot/R0001"),
        # An engine only raises alerts; it cannot forge reads.
        ("engine-0", f"{PREFIX}/reads/0", f"{PREFIX}/alerts/1"),
        # A gateway publishes batches and status, never alerts.
        ("gw-1", f"{PREFIX}/alerts/1", f"{PREFIX}/reads/0"),
        # Only an engine confirms stored batches (a confirmation makes a gateway delete them
        # from its spool): a reader or another gateway cannot forge one.
        ("R0001", f"{PREFIX}/stored/gw-1", f"{PREFIX}/raw/impinj-iot/R0001"),
        ("gw-1", f"{PREFIX}/stored/gw-2", f"{PREFIX}/reads/0"),
        ("api", f"{PREFIX}/stored/gw-1", None),
        ("engine-0", f"{PREFIX}/reads/0", f"{PREFIX}/stored/gw-1"),
        # The API only listens.
        ("api", f"{PREFIX}/reads/0", None),
    ],
)
def test_each_account_publishes_only_where_its_role_allows(
    secured_broker: int, observer: _Client, user: str, denied: str, allowed: str | None
) -> None:
    client = _as(secured_broker, user)
    sentinel_client = client if allowed else _as(secured_broker, "gw-1")
    sentinel = allowed or f"{PREFIX}/status/gateways/gw-1"
    try:
        client.publish(denied)
        # Mosquitto handles one connection's messages in order: once the later, allowed
        # message has reached the observer, the denied one would have too.
        sentinel_client.publish(sentinel)
        observer.wait_for(sentinel)
        assert denied not in observer.received
    finally:
        client.close()
        if sentinel_client is not client:
            sentinel_client.close()


def test_readers_cannot_listen_to_batches_or_alerts(secured_broker: int) -> None:
    reader = _as(secured_broker, "R0001")
    api = _as(secured_broker, "api")
    gateway = _as(secured_broker, "gw-1")
    engine = _as(secured_broker, "engine-0")
    try:
        reader.subscribe(f"{PREFIX}/#")
        api.subscribe(f"{PREFIX}/alerts/#")
        gateway.publish(f"{PREFIX}/reads/0")
        engine.publish(f"{PREFIX}/alerts/9")
        api.wait_for(f"{PREFIX}/alerts/9")
        time.sleep(0.2)  # the reader's copy, if any, would be routed in the same pass
        assert reader.received == []
    finally:
        for c in (reader, api, gateway, engine):
            c.close()


def test_example_acl_matches_generator() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "tagtrail.acl.example"
    roster = BrokerRoster(gateways=["gw-site1"], engines=["engine-0", "engine-1"], apis=["api"])
    assert example.read_text().strip() == render_acl(roster).strip()
