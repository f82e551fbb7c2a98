"""Settings from the environment (``TAGTRAIL_*``), with embedded defaults when nothing is set."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reader_gateway.wire import DEFAULT_SHARD_COUNT, TOPIC_ROOT

# SMS and chat services reached through apprise (https://github.com/caronc/apprise/wiki).
DEFAULT_APPRISE_SCHEMES = (
    "twilio", "vonage", "nexmo", "sns", "tgram", "slack", "msteams", "matrix", "matrixs",
    "ntfys", "signal", "signals", "discord", "mmost", "mmosts", "rocket", "rockets", "zulip",
)  # fmt: skip
_PLACEHOLDERS = {"changeme", "change-me", "secret", "please-change-this-secret-key-now!"}


def default_data_dir() -> Path:
    """Per-user data directory (``~/.local/share/tagtrail`` on Linux)."""
    return Path(platformdirs.user_data_dir("tagtrail", appauthor=False))


class Settings(BaseSettings):
    """Everything TagTrail needs to know about its surroundings.

    With neither ``database_url`` nor ``mqtt_url`` set, TagTrail starts its embedded PostgreSQL
    and MQTT broker (see :mod:`tagtrail.embedded`), keeping data under ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="TAGTRAIL_", env_file=None, extra="ignore")

    database_url: str | None = Field(
        default=None, description="PostgreSQL/TimescaleDB URL; unset = embedded PostgreSQL"
    )
    mqtt_url: str | None = Field(
        default=None, description="mqtt://host:port of Mosquitto/EMQX; unset = embedded broker"
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    topic_prefix: str = Field(
        default=TOPIC_ROOT, description="root of every MQTT topic TagTrail uses"
    )
    shard_count: int = Field(default=DEFAULT_SHARD_COUNT, ge=1, le=1024)
    embedded_mqtt_port: int = Field(default=18830, ge=1024, le=65535)
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses or networks of reverse proxies whose X-Forwarded-For the API "
        "believes, as JSON ('[\"10.0.0.5\"]'); empty (the default): none, the client address "
        "is the TCP peer's",
    )
    api_max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1024,
        description="request bodies above this are refused with 413 as they stream in",
    )
    desk_shift_hours: int = Field(
        default=8, ge=1, le=24, description="the duty desk's shifts: this many hours each"
    )
    desk_shift_first_hour_utc: int = Field(
        default=6, ge=0, le=23, description="the first shift of the day starts at this UTC hour"
    )
    tile_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="optional map tile server, e.g. http://tiles.local/{z}/{x}/{y}.png; "
        "the console's base map is TagTrail's own road network and works without it",
    )
    retention_days: int = Field(default=30, ge=1)
    # The engine's accepted read times, around its own clock (it trusts no gateway's): reads
    # outside are quarantined with the reason and counted, never stored. The window also bounds
    # the daily partitions one batch can make the engine create.
    read_max_age_days: float | None = Field(
        default=None,
        gt=0,
        le=3660,
        description="reads older than this many days are quarantined by the engine; "
        "unset = retention_days",
    )
    read_max_ahead_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="reads more than this many seconds ahead of the engine's clock are "
        "quarantined by the engine",
    )
    passage_gap_s: float = Field(default=10.0, gt=0)
    # Reads arriving up to this long after their passage closed are merged into it.
    passage_lateness_s: float = Field(default=120.0, ge=0)
    partition_ahead_days: int = Field(default=3, ge=1)
    miss_rate_interval_h: float = Field(
        default=6.0,
        ge=0,
        description="hours between the engine's runs of the reader miss-rate learning job "
        "(`tagtrail readers learn-miss-rates`); 0: never",
    )
    pg15_ext: Path | None = Field(
        default=None,
        description="TimescaleDB/Citus installer for PostgreSQL 15 (a folder holding `install`, "
        "or the script) the real-engine clusters of tests and benchmarks run as root when the "
        "extensions are missing; default: ../shared/pg15-ext beside the checkout",
    )
    engine_metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="the engine's Prometheus exporter port; 0: none"
    )
    engine_metrics_addr: str = Field(
        default="127.0.0.1", description="address the engine's Prometheus exporter listens on"
    )
    id_hash_key: SecretStr | None = Field(
        default=None,
        description="key of the keyed hash of national ID numbers; unset = a key file in data_dir",
    )
    id_enc_key: SecretStr | None = Field(
        default=None,
        description="AES-GCM key of national ID numbers; unset = a key file in data_dir",
    )
    jwt_secret: SecretStr | None = Field(
        default=None, description="signing key of API bearer tokens; unset = a key file in data_dir"
    )

    # Notices (api/notifications/; docs/operations.md, "Notices"): the sender runs inside
    # `tagtrail api` and `tagtrail demo`, or alone as `tagtrail notify`.
    notify_enabled: bool = Field(
        default=True, description="run the notice sender inside `tagtrail api` and the demo"
    )
    console_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="the console's address as recipients reach it, for the link in notices; "
        "unset = http://api_host:api_port",
    )
    smtp_host: str | None = Field(default=None, description="SMTP relay; unset = no e-mail")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls: upgrade after EHLO (port 587); tls: implicit TLS (port 465); "
        "none: plain (a relay on loopback only)",
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(default="TagTrail <tagtrail@localhost>", min_length=3)
    smtp_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that alone are trusted for the relay's certificate "
        "(a relay with a private CA); unset = the system's CAs",
    )
    notify_max_attempts: int = Field(
        default=8, ge=1, le=50, description="a notice is failed after this many attempts"
    )
    notify_backoff_s: float = Field(
        default=30.0, gt=0, description="wait before the 2nd attempt; doubles after each"
    )
    notify_backoff_max_s: float = Field(default=3600.0, gt=0)
    notify_timeout_s: float = Field(default=10.0, gt=0, le=120)
    notify_poll_s: float = Field(
        default=5.0, gt=0, description="the sender looks for due notices at least this often"
    )
    notify_allow_private_targets: bool = Field(
        default=False,
        description="let webhooks reach loopback/private addresses (tests, an in-house "
        "receiver); off, a user cannot make the server call internal services",
    )
    notify_apprise_schemes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_APPRISE_SCHEMES),
        description="apprise URL schemes users may subscribe with, as JSON; generic http "
        "schemes (json, form, xml) are left out so a URL cannot reach internal services",
    )

    @field_validator("id_hash_key", "id_enc_key", "jwt_secret")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and (
            len(value.get_secret_value()) < 32 or value.get_secret_value().lower() in _PLACEHOLDERS
        ):
            raise ValueError("TagTrail keys must be random secrets of 32+ characters")
        return value

    def resolve_id_hash_key(self) -> bytes:
        """The ID-number hash key: from the environment, or a random key kept in data_dir."""
        return self._resolve_key(self.id_hash_key, "id_hash.key")

    def resolve_id_enc_key(self) -> bytes:
        """The ID-number encryption key: from the environment, or a key file in data_dir."""
        return self._resolve_key(self.id_enc_key, "id_enc.key")

    def resolve_jwt_secret(self) -> bytes:
        """The bearer-token signing key: from the environment, or a key file in data_dir."""
        return self._resolve_key(self.jwt_secret, "jwt_secret.key")

    def _resolve_key(self, value: SecretStr | None, filename: str) -> bytes:
        if value is not None:
            return value.get_secret_value().encode()
        path = self.data_dir / filename
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
        return path.read_text().strip().encode()

    @property
    def console_url_resolved(self) -> str:
        """The console's base address for links in notices (no trailing slash)."""
        return (self.console_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def read_max_age_days_resolved(self) -> float:
        """The engine's oldest accepted read age in days (``read_max_age_days`` or retention)."""
        return self.read_max_age_days or float(self.retention_days)

    def export_to_children(self, *names: str) -> None:
        """Put these settings into the environment, for child processes' ``Settings()``.

        The one place TagTrail writes its environment: processes it cannot hand arguments to
        (uvicorn's worker processes, which import the app factory by name) read them back.
        """
        prefix = self.model_config.get("env_prefix", "")
        for name in names:
            value = getattr(self, name)
            if value is None:
                os.environ.pop(f"{prefix}{name}".upper(), None)
            else:
                os.environ[f"{prefix}{name}".upper()] = str(value)

    @property
    def embedded(self) -> bool:
        """True when at least one service has to be started in-process."""
        return self.database_url is None or self.mqtt_url is None

    @property
    def pgdata_dir(self) -> Path:
        """Data directory of the embedded PostgreSQL."""
        return self.data_dir / "pgdata"
