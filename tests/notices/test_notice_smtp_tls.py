"""E-mail through a relay that requires STARTTLS and a login, as real relays do: the relay's
certificate is checked against the configured CA, the login is sent only inside TLS, a wrong
password is retried (an operator can fix it) and a certificate from another CA is refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP as SmtpServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from notice_support import SmtpSink
from testsupport import free_port

from api.notifications.channels import DeliveryError, EmailChannel, SmtpConfig
from api.notifications.message import Message

MESSAGE = Message(subject="TagTrail: test", text="no place here", payload={})


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by itself (it is its own CA); (cert, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Accounts:
    """aiosmtpd authenticator: one account; remembers whether each login came inside TLS."""

    def __init__(self) -> None:
        self.logins: list[tuple[str, bool]] = []

    def __call__(
        self, server: SmtpServer, session: Session, envelope: Envelope, mechanism: str,
        auth_data: LoginPassword,
    ) -> AuthResult:  # fmt: skip
        del envelope, mechanism
        self.logins.append((auth_data.login.decode(), server._tls_protocol is not None))
        ok = (auth_data.login, auth_data.password) == (b"tagtrail", b"relay-pass-7")
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[SmtpSink, Accounts, Path]]:
    """A relay on loopback requiring STARTTLS (a self-signed certificate) and a login."""
    cert, key = _self_signed(tmp_path, "relay")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    accounts = Accounts()
    sink = SmtpSink(
        free_port(), tls_context=tls, require_starttls=True, authenticator=accounts,
        auth_require_tls=True,
    )  # fmt: skip
    sink.start()
    yield sink, accounts, cert
    sink.stop()


def _channel(sink: SmtpSink, ca: Path, password: str) -> EmailChannel:
    config = SmtpConfig(
        host="127.0.0.1", port=sink.port, security="starttls", username="tagtrail",
        password=password, ca_file=str(ca),
    )  # fmt: skip
    return EmailChannel(config, timeout_s=5.0)


def test_starttls_and_login(relay: tuple[SmtpSink, Accounts, Path]) -> None:
    sink, accounts, ca = relay
    _channel(sink, ca, "relay-pass-7").send(MESSAGE, address="desk@example.org", secret=None)
    assert [m["Subject"] for m in sink.messages] == ["TagTrail: test"]
    assert accounts.logins == [("tagtrail", True)]


def test_a_wrong_password_is_retried_not_given_up(relay: tuple[SmtpSink, Accounts, Path]) -> None:
    sink, _, ca = relay
    with pytest.raises(DeliveryError, match="login refused") as refused:
        _channel(sink, ca, "wrong").send(MESSAGE, address="desk@example.org", secret=None)
    assert refused.value.permanent is False
    assert sink.messages == []


def test_a_relay_certificate_from_another_ca_is_refused(
    relay: tuple[SmtpSink, Accounts, Path], tmp_path: Path
) -> None:
    sink, accounts, _ = relay
    other_ca, _ = _self_signed(tmp_path, "other")
    with pytest.raises(DeliveryError, match="SSLCertVerificationError"):
        _channel(sink, other_ca, "relay-pass-7").send(
            MESSAGE, address="desk@example.org", secret=None
        )
    assert accounts.logins == []  # the password never left
    assert sink.messages == []
