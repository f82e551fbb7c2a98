"""Delivery channels: e-mail (SMTP), signed webhooks (httpx), SMS and chat (apprise).

Each channel's ``send`` delivers one message to one address or raises :class:`DeliveryError`,
saying whether trying again later may help (``permanent=False``) or not.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol
from urllib.parse import urlsplit

import apprise
import httpx
import orjson

from api.notifications.message import Message
from api.notifications.signing import SIGNATURE_HEADER, sign

# HTTP answers worth retrying: timeouts, rate limits, and the server's own failures.
_RETRYABLE_STATUS = frozenset({408, 425, 429})


class DeliveryError(Exception):
    """A delivery did not happen; ``permanent``: retrying the same request cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class TargetRefusedError(ValueError):
    """An address a user may not subscribe with (bad form, internal host, unknown scheme)."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """The SMTP relay notices are sent through."""

    host: str
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password: str | None = None
    sender: str = "TagTrail <tagtrail@localhost>"
    ca_file: str | None = None  # PEM bundle that alone is trusted for the relay's certificate


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """What the channels need: the relay, timeouts, and which targets are allowed."""

    smtp: SmtpConfig | None = None
    timeout_s: float = 10.0
    allow_private_targets: bool = False
    apprise_schemes: tuple[str, ...] = field(default_factory=tuple)


class Channel(Protocol):
    """Delivers one message to one address."""

    def send(self, message: Message, *, address: str, secret: str | None) -> None:
        """Deliver or raise DeliveryError."""


def _is_private(host: str) -> bool:
    """True if any address the host resolves to is loopback, private, link-local or reserved."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False  # unresolvable: the request fails on its own
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global:
            return True
    return False


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL that is not http(s), has credentials, or (unless allowed) reaches
    a loopback or private address — a user must not make the server call internal services."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefusedError("a webhook URL is https://host/path")
    if parts.username or parts.password:
        raise TargetRefusedError("a webhook URL carries no credentials; it is signed instead")
    if not allow_private and (parts.scheme != "https" or _is_private(parts.hostname)):
        raise TargetRefusedError("a webhook URL must be https and reach a public address")


def check_apprise_url(url: str, *, schemes: tuple[str, ...]) -> None:
    """Refuse an apprise URL whose scheme is not in the allowed list, or that apprise cannot
    parse."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in schemes:
        raise TargetRefusedError(
            f"apprise scheme {scheme!r} is not enabled here; allowed: {', '.join(schemes)}"
        )
    if apprise.Apprise.instantiate(url) is None:
        raise TargetRefusedError("apprise cannot use this URL (see its wiki for the format)")


class EmailChannel:
    """E-mail over SMTP (STARTTLS, implicit TLS, or plain to a relay on loopback)."""

    def __init__(self, config: SmtpConfig, *, timeout_s: float) -> None:
        self._config = config
        self._timeout_s = timeout_s

    def _connect(self) -> smtplib.SMTP:
        c = self._config
        # The relay's certificate is verified (host name included) against the system's CAs,
        # or only against ca_file for a relay with a private CA.
        tls = ssl.create_default_context(cafile=c.ca_file)
        if c.security == "tls":
            return smtplib.SMTP_SSL(c.host, c.port, timeout=self._timeout_s, context=tls)
        smtp = smtplib.SMTP(c.host, c.port, timeout=self._timeout_s)
        if c.security == "starttls":
            smtp.starttls(context=tls)
        return smtp

    def send(self, message: Message, *, address: str, secret: str | None) -> None:
        """Send the message as a plain-text e-mail to ``address``."""
        del secret
        mail = EmailMessage()
        mail["From"] = self._config.sender
        mail["To"] = address
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain="tagtrail")
        mail.set_content(message.text)
        try:
            with self._connect() as smtp:
                if self._config.username:
                    smtp.login(self._config.username, self._config.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            # "No such user" (5xx) will not change by retrying; a full mailbox (4xx) may.
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(
                f"recipient refused: {codes}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # The relay's account, not this notice: retried, so a fixed password still sends.
            raise DeliveryError(
                f"SMTP login refused ({exc.smtp_code}): check TAGTRAIL_SMTP_USERNAME/PASSWORD"
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            # Anything else (connection, TLS, the relay's own refusals) may heal: retried.
            raise DeliveryError(f"SMTP: {type(exc).__name__}: {exc}") from exc


class WebhookChannel:
    """An HTTP POST of the JSON payload, signed (:mod:`api.notifications.signing`)."""

    def __init__(self, *, timeout_s: float, allow_private: bool) -> None:
        self._allow_private = allow_private
        # One client for the sender's life: building one loads the CA bundle (tens of ms),
        # and it keeps connections to a receiver alive between notices.
        self._client = httpx.Client(timeout=timeout_s, follow_redirects=False)

    def send(self, message: Message, *, address: str, secret: str | None) -> None:
        """POST the payload to ``address`` with a ``TagTrail-Signature`` header."""
        if secret is None:
            raise DeliveryError("webhook subscription has no secret", permanent=True)
        try:
            # Checked again at delivery: the name may resolve elsewhere than when subscribed.
            check_webhook_url(address, allow_private=self._allow_private)
        except TargetRefusedError as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        body = orjson.dumps(message.payload)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, secret=secret, timestamp=int(time.time())),
            "TagTrail-Notice-Id": str(message.payload["id"]),  # receivers deduplicate by it
            "User-Agent": "TagTrail-Notices/1",
        }
        try:
            response = self._client.post(address, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            return
        code = response.status_code
        permanent = 400 <= code < 500 and code not in _RETRYABLE_STATUS
        raise DeliveryError(f"webhook answered HTTP {code}", permanent=permanent)


class AppriseChannel:
    """SMS and chat services by apprise URL (``twilio://``, ``tgram://``, ``slack://``...)."""

    def __init__(self, *, schemes: tuple[str, ...]) -> None:
        self._schemes = schemes

    def send(self, message: Message, *, address: str, secret: str | None) -> None:
        """Notify the apprise URL ``address`` with the message's subject and text."""
        del secret
        try:
            check_apprise_url(address, schemes=self._schemes)
        except TargetRefusedError as exc:
            raise DeliveryError(str(exc), permanent=True) from exc
        sender = apprise.Apprise()
        sender.add(address)
        # apprise answers only True/False; its log says why, so the attempt records that.
        with apprise.LogCapture(level=apprise.logging.WARNING) as log:  # type: ignore[no-untyped-call]
            delivered = sender.notify(title=message.subject, body=message.text)
            reason = log.getvalue().strip().splitlines()
        if not delivered:
            raise DeliveryError("apprise: " + (reason[-1] if reason else "not delivered"))


def build_channels(config: ChannelConfig) -> dict[str, Channel]:
    """The channels this deployment can deliver on (no ``email`` without an SMTP relay)."""
    channels: dict[str, Channel] = {
        "webhook": WebhookChannel(
            timeout_s=config.timeout_s, allow_private=config.allow_private_targets
        ),
        "apprise": AppriseChannel(schemes=config.apprise_schemes),
    }
    if config.smtp is not None:
        channels["email"] = EmailChannel(config.smtp, timeout_s=config.timeout_s)
    return channels
