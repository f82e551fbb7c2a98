"""Gateway configuration: one TOML file per gateway, parsed and validated with pydantic.

The file says which readers the gateway serves (serial ports, LLRP readers and MQTT raw
subscriptions, each with a reader id and a protocol), where the broker is, how reads are
batched, de-duplicated and clock-corrected, where the disk spool lives and how much disk it
may use, and where metrics are served. docs/gateway.md is the reference; :func:`load_config`
reads a file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reader_gateway.brokers import mqtt_target
from reader_gateway.errors import ConfigError
from reader_gateway.protocols import DECODERS
from reader_gateway.wire import DEFAULT_SHARD_COUNT, TOPIC_ROOT, WireError

# Accepted read times around the gateway's clock (see ClockConfig): two days back covers a
# reader that buffered through a night-long outage; five minutes ahead covers a fast reader
# clock before its offset is estimated, not a date in another year.
DEFAULT_MAX_READ_AGE_S = 2 * 86_400.0
DEFAULT_MAX_READ_LEAD_S = 300.0

_ReaderId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class _Strict(BaseModel):
    # A misspelt key would otherwise be ignored and its default silently used.
    model_config = ConfigDict(extra="forbid", frozen=True)


# Protocols no reader speaks over a serial line.
TCP_ONLY_PROTOCOLS = frozenset({"llrp"})


def _known_protocol(name: str) -> str:
    if name not in DECODERS:
        raise ValueError(f"unknown protocol {name!r}; known: {', '.join(sorted(DECODERS))}")
    return name


class BrokerConfig(_Strict):
    """The MQTT broker batches go to (and raw reader messages come from).

    ``url`` may carry credentials and TLS settings (``mqtts://user:password@host:8883?ca=…``,
    see :func:`reader_gateway.brokers.mqtt_target`); errors never echo it, since it may hold a
    password.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str = "mqtt://127.0.0.1:1883"
    client_id: str | None = None  # default: tagtrail-<gateway_id>
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # Unacknowledged QoS 1 publishes plus (spool.keep_until = "stored") batches acknowledged
    # and not yet confirmed by an engine; paho's message ids are 16-bit, so this must stay far
    # below 65,535 (past it paho reuses ids of messages still in flight).
    max_inflight: int = Field(default=1000, ge=1, le=20_000)
    persistent_session: bool = True
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        try:
            mqtt_target(url)
        except WireError as exc:
            raise ValueError(str(exc)) from None
        return url


class SerialPortConfig(_Strict):
    """One serial reader (or a bus of them): device path (or a stable symlink such as
    /dev/serial/by-id/...). Its reads are filed under ``reader_id``; frames naming another
    reader are refused unless ``frame_readers`` admits that reader."""

    port: str = Field(min_length=1)
    reader_id: _ReaderId
    protocol: str
    baud: int = Field(default=115200, gt=0)
    antenna_map: dict[int, int] = Field(default_factory=dict)
    # A bus (RS-485 concentrator) carrying several readers' frames: the readers (shell
    # patterns, after reader_aliases) its frames may name besides reader_id. Empty: the port
    # is that one reader, and frames naming another are refused as reader_id_mismatch.
    frame_readers: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    reopen_min_s: float = Field(default=0.2, gt=0)
    reopen_max_s: float = Field(default=5.0, gt=0)

    @field_validator("protocol")
    @classmethod
    def _serial_protocol(cls, value: str) -> str:
        # LLRP exists only over TCP: configure it in the [[llrp]] section.
        if value in TCP_ONLY_PROTOCOLS:
            raise ValueError(f"protocol {value!r} runs over TCP, not a serial port")
        return _known_protocol(value)


class LlrpReaderConfig(_Strict):
    """One fixed UHF reader spoken to over LLRP (TCP, the gateway as client); see
    docs/protocols/llrp.md. Its reads are filed under ``reader_id``.

    ``antennas`` empty means every antenna; ``power_dbm`` is looked up in the reader's power
    table (the highest level not above it); ``session`` (Gen2 0-3) and ``search_mode``
    (Impinj InventorySearchMode: Impinj readers only) are left to the reader when unset.
    """

    host: str = Field(min_length=1)
    port: int = Field(default=5084, ge=1, le=65535)
    reader_id: _ReaderId
    antennas: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list)
    power_dbm: float | None = Field(default=None, ge=-10, le=40)
    session: int | None = Field(default=None, ge=0, le=3)
    tag_population: int = Field(default=32, ge=1, le=65535)
    search_mode: int | None = Field(default=None, ge=0, le=65535)
    rospec_id: int = Field(default=0x7467, ge=1, le=0xFFFF_FFFF)  # "tg": ours, not another's
    antenna_map: dict[int, int] = Field(default_factory=dict)
    # The reader sends a KEEPALIVE every keepalive_s; nothing heard for dead_after_s (at
    # least two keepalives) means the connection is dead and is reset.
    keepalive_s: float = Field(default=5.0, gt=0, le=3600)
    dead_after_s: float = Field(default=15.0, gt=0, le=36_000)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # How long each configuration step may wait for its response.
    response_timeout_s: float = Field(default=5.0, gt=0, le=120)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    max_message_bytes: int = Field(default=1 << 20, ge=1 << 10, le=1 << 28)

    @model_validator(mode="after")
    def _check(self) -> LlrpReaderConfig:
        if self.dead_after_s < 2 * self.keepalive_s:
            raise ValueError("dead_after_s must be at least two keepalive periods")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must not be below reconnect_min_s")
        return self


class MqttSubscriptionConfig(_Strict):
    """Raw reader messages on a topic filter; protocol and reader id from the topic by default.

    With ``protocol`` unset the second-to-last topic level names it (``.../raw/<protocol>/<id>``);
    with ``reader_id`` unset the last level is the reader id.
    """

    topic: str = Field(min_length=1)
    protocol: str | None = None
    reader_id: _ReaderId | None = None
    antenna_map: dict[int, int] = Field(default_factory=dict)

    @field_validator("protocol")
    @classmethod
    def _check_protocol(cls, value: str | None) -> str | None:
        return None if value is None else _known_protocol(value)


class BatchingConfig(_Strict):
    """How reads become wire batches."""

    max_reads: int = Field(default=500, ge=1, le=50_000)
    max_delay_s: float = Field(default=0.2, gt=0, le=60)
    dedupe_window_s: float = Field(default=0.0, ge=0, le=3600)


class ClockConfig(_Strict):
    """Reader clock correction: surveyed offsets, refined by estimation when enabled; and the
    read times accepted at all.

    An offset is reader clock minus true time (a clock 2 s fast has +2.0); it is subtracted.
    A read whose corrected time is more than ``max_read_age_s`` before or ``max_read_lead_s``
    after the gateway's receive time is refused as ``read_at_out_of_window`` (counted and
    logged): a reader flushing its buffer after an outage sends reads hours old, but a read
    dated 2099 or 2000 is a broken clock or a forgery, and stored it would poison the
    engine's time (partitions, watermark) for good.
    """

    offsets_s: dict[str, float] = Field(default_factory=dict)
    estimate: bool = True
    window: int = Field(default=64, ge=1, le=10_000)
    min_samples: int = Field(default=8, ge=1)
    # Up to ten years: wide windows are for replaying recorded or simulated days.
    max_read_age_s: float = Field(default=DEFAULT_MAX_READ_AGE_S, gt=0, le=3653 * 86_400)
    max_read_lead_s: float = Field(default=DEFAULT_MAX_READ_LEAD_S, gt=0, le=3653 * 86_400)


class SpoolConfig(_Strict):
    """The disk spool every accepted read is written to before it counts as accepted."""

    dir: Path
    max_bytes: int = Field(default=1 << 30, ge=1 << 16)
    segment_bytes: int = Field(default=4 << 20, ge=1 << 12)
    # Refused reader input kept as evidence (quarantine.ndjson in dir, one older file beside).
    quarantine_max_bytes: int = Field(default=16 << 20, ge=1 << 12)
    # When a batch leaves the spool: once an engine confirmed it committed it ("stored"), or
    # once the broker acknowledged it ("published": only for a consumer that sends no
    # confirmations; a broker crash then loses what the broker had acknowledged).
    keep_until: Literal["stored", "published"] = "stored"
    # A batch published and not confirmed this long is published again; the wait doubles
    # (up to 16 times) while no confirmation comes, so a long engine outage costs little.
    confirm_timeout_s: float = Field(default=60.0, gt=0, le=3600)


class HealthConfig(_Strict):
    """Reader status thresholds and the Prometheus endpoint."""

    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    silent_after_s: float = Field(default=30.0, gt=0)
    offline_after_s: float = Field(default=120.0, gt=0)
    status_interval_s: float = Field(default=10.0, gt=0)


class GatewayConfig(_Strict):
    """Everything one gateway process needs."""

    gateway_id: _ReaderId = "gw-0"
    topic_prefix: str = TOPIC_ROOT
    shard_count: int = Field(default=DEFAULT_SHARD_COUNT, ge=1, le=1024)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    batching: BatchingConfig = Field(default_factory=BatchingConfig)
    clock: ClockConfig = Field(default_factory=ClockConfig)
    spool: SpoolConfig
    health: HealthConfig = Field(default_factory=HealthConfig)
    serial: list[SerialPortConfig] = Field(default_factory=list)
    mqtt: list[MqttSubscriptionConfig] = Field(default_factory=list)
    llrp: list[LlrpReaderConfig] = Field(default_factory=list)
    # Reader ids that frames report themselves (active-tag ids, Impinj/Zebra host names)
    # mapped to the deployment's reader ids.
    reader_aliases: dict[str, _ReaderId] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        ports = [s.port for s in self.serial]
        if len(set(ports)) != len(ports):
            raise ValueError("a serial port is configured twice")
        ids = [s.reader_id for s in self.serial]
        if len(set(ids)) != len(ids):
            raise ValueError("two serial ports share a reader_id")
        llrp_ids = [r.reader_id for r in self.llrp]
        if len(set(llrp_ids)) != len(llrp_ids) or set(llrp_ids) & set(ids):
            raise ValueError("an LLRP reader's reader_id is used twice")
        endpoints = [(r.host, r.port) for r in self.llrp]
        if len(set(endpoints)) != len(endpoints):
            raise ValueError("an LLRP reader (host and port) is configured twice")
        if self.health.offline_after_s <= self.health.silent_after_s:
            raise ValueError("health.offline_after_s must be greater than silent_after_s")
        return self


def load_config(path: Path) -> GatewayConfig:
    """Read and validate a gateway TOML file; raise :class:`ConfigError` saying what is wrong.

    A relative ``spool.dir`` is taken relative to the file's folder.
    """
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read gateway config {path}: {exc}") from exc
    spool = doc.get("spool")
    if isinstance(spool, dict) and isinstance(spool.get("dir"), str):
        spool["dir"] = str(path.parent / spool["dir"])
    try:
        return GatewayConfig.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"invalid gateway config {path}:\n{exc}") from exc
