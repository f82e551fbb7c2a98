"""Where the broker is: MQTT URLs (credentials, TLS) and failover between a cluster's nodes.

Gateways, engines, simulators and tools all reach the broker through :func:`mqtt_target` or
:func:`mqtt_targets`, so a URL means the same to every part. Like the wire contract it builds on
(it raises :class:`~reader_gateway.wire.WireError`), this module imports no MQTT client: the
paho methods it calls are described by protocols below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from reader_gateway.wire import WireError


def mqtt_endpoint(url: str) -> tuple[str, int]:
    """Host and port of an MQTT URL (see :func:`mqtt_target` for credentials and TLS)."""
    target = mqtt_target(url)
    return target.host, target.port


class _MqttClientLike(Protocol):
    """The two paho client methods :meth:`MqttTarget.configure` calls (no paho import here)."""

    def username_pw_set(self, username: str | None, password: str | None = None) -> None: ...

    def tls_set(
        self,
        ca_certs: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class MqttTarget:
    """Where and how to connect to the broker, parsed from an MQTT URL by :func:`mqtt_target`.

    ``mqtt://[user[:password]@]host[:port]`` (port 1883) or ``mqtts://…`` (TLS, port 8883).
    TLS settings are query parameters: ``ca=`` (CA bundle; default: the system's), ``cert=``
    and ``key=`` (a client certificate). User name and password are percent-decoded. The
    password is kept out of ``repr`` so that a logged target never shows it.
    """

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def configure(self, client: _MqttClientLike) -> None:
        """Set credentials and TLS on a paho client before it connects."""
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)

    def redacted_url(self) -> str:
        """The URL without the password, for logs."""
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


_TLS_PARAMS = {"ca": "ca_file", "cert": "cert_file", "key": "key_file"}


def mqtt_targets(url: str) -> list[MqttTarget]:
    """Every broker of an MQTT URL that may list several, for failover between the nodes of a
    cluster: ``mqtt://[user:password@]a:1883,b:1883,c:1883[?…]``. Credentials, scheme and TLS
    parameters apply to every node. A URL with one host gives one target."""
    scheme, sep, rest = url.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    userinfo, at, hosts = rest[:end].rpartition("@")
    if not sep or "," not in hosts:
        return [_single_target(url)]
    nodes = [h.strip() for h in hosts.split(",")]
    if not all(nodes):
        raise WireError("MQTT URL lists an empty broker address (mqtt://a:1883,b:1883,…)")
    return [_single_target(f"{scheme}://{userinfo}{at}{node}{rest[end:]}") for node in nodes]


class _ReconnectingClient(Protocol):
    """The paho client method :class:`BrokerFailover` calls between connection attempts."""

    def connect_async(self, host: str, port: int = 1883, keepalive: int = 60) -> None: ...


@dataclass(slots=True)
class BrokerFailover:
    """Round-robin over a cluster's brokers: after a lost connection or a failed attempt the
    client's next (automatic) reconnect goes to the next node.

    paho reconnects to the host it last used, and refuses to change ``host`` while it is
    reconnecting; ``connect_async`` from its ``on_connect_fail`` and (for an unexpected loss)
    ``on_disconnect`` callbacks sets the next node for the network thread's next attempt. With
    one broker it does nothing. A persistent session lives in the cluster (NATS keeps MQTT
    sessions in JetStream, EMQX replicates them), so it is found on any node.
    """

    targets: list[MqttTarget]
    keepalive: int = 60
    index: int = 0

    @property
    def current(self) -> MqttTarget:
        """The broker the client connects to now."""
        return self.targets[self.index]

    def next(self, client: _ReconnectingClient, reason: object = None) -> MqttTarget:
        """Point ``client`` at the next broker (for its next reconnect) and return it.

        ``reason``: the disconnect's reason code, if any; a clean, requested disconnect
        (not a failure) is left alone, so that a stopping client stays stopped."""
        if len(self.targets) > 1 and getattr(reason, "is_failure", True):
            self.index = (self.index + 1) % len(self.targets)
            client.connect_async(self.current.host, self.current.port, self.keepalive)
        return self.current


def mqtt_target(url: str) -> MqttTarget:
    """Parse an MQTT URL with optional credentials and TLS settings (see :class:`MqttTarget`);
    of a list of brokers (:func:`mqtt_targets`), the first."""
    return mqtt_targets(url)[0]


def _single_target(url: str) -> MqttTarget:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WireError("MQTT URL has a bad port or address") from exc
    if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
        raise WireError("MQTT URL must look like mqtt://[user:password@]host:port or mqtts://…")
    tls = parts.scheme in ("mqtts", "ssl")
    options: dict[str, str] = {}
    for name, values in parse_qs(parts.query, strict_parsing=False).items():
        if name not in _TLS_PARAMS:
            raise WireError(f"unknown MQTT URL parameter {name!r} (known: ca, cert, key)")
        if not tls:
            raise WireError(f"MQTT URL parameter {name!r} needs an mqtts:// URL")
        options[_TLS_PARAMS[name]] = values[-1]
    return MqttTarget(
        host=parts.hostname,
        port=port if port is not None else (8883 if tls else 1883),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=tls,
        **options,
    )
