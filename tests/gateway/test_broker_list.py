"""A list of brokers in one MQTT URL (issue #19): parsed into targets, and failed over."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reader_gateway.brokers import BrokerFailover, mqtt_target, mqtt_targets
from reader_gateway.config import BrokerConfig
from reader_gateway.wire import WireError


def test_a_list_of_brokers_shares_credentials_and_tls() -> None:
    targets = mqtt_targets("mqtts://svc:s3cret@a:8884,b,c:9000?ca=/etc/ca.pem")
    assert [(t.host, t.port) for t in targets] == [("a", 8884), ("b", 8883), ("c", 9000)]
    assert {(t.username, t.password, t.tls, t.ca_file) for t in targets} == {
        ("svc", "s3cret", True, "/etc/ca.pem")
    }
    assert mqtt_target("mqtt://a:1,b:2").host == "a"  # one target: the first


def test_one_broker_and_commas_in_a_password_stay_one_target() -> None:
    assert mqtt_targets("mqtt://u:p,q@h:5") == [mqtt_target("mqtt://u:p,q@h:5")]
    assert mqtt_targets("mqtt://u:p,q@h:5")[0].password == "p,q"


@pytest.mark.parametrize("url", ["mqtt://a:1,,b:2", "mqtt://a:1,b:x", "http://a,b"])
def test_a_bad_list_is_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(WireError):
        mqtt_targets(url)
    with pytest.raises(ValueError, match="MQTT URL"):
        BrokerConfig(url=url)


@dataclass
class _Client:
    host: str = ""
    port: int = 0
    keepalive: int = 0

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60) -> None:
        self.host, self.port, self.keepalive = host, port, keepalive


@dataclass
class _Reason:
    is_failure: bool


def test_failover_goes_round_the_brokers() -> None:
    failover = BrokerFailover(mqtt_targets("mqtt://a:1,b:2,c:3"), keepalive=30)
    client = _Client()
    seen = [failover.current.host] + [failover.next(client).host for _ in range(4)]
    assert seen == ["a", "b", "c", "a", "b"]
    assert (client.host, client.port, client.keepalive) == ("b", 2, 30)
    # A requested, clean disconnect is left alone: the stopping client stays stopped.
    assert failover.next(client, _Reason(is_failure=False)).host == "b"
    assert failover.next(client, _Reason(is_failure=True)).host == "c"
    single = BrokerFailover(mqtt_targets("mqtt://a:1"))
    assert single.next(client).host == "a"
    assert client.host == "c"  # one broker: the client is left alone
