"""A Mosquitto of the test's own with the production security shape: a password file, the ACL
from tagtrail.broker_acl, a plain loopback listener and a TLS listener (a test CA made here).

Not pytest's tmp_path: its parent is 0700 and mosquitto started as root drops to its own user
before reading the password, ACL and certificate files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from testsupport import free_port

from tagtrail.broker_acl import BrokerRoster, render_acl

PREFIX = "tagtrail/v1"
ACCOUNTS = {
    "R0001": "reader-secret-1",
    "R0002": "reader-secret-2",
    "gw-1": "gateway-secret",
    "engine-0": "engine-secret",
    "api": "api-secret",
    "observer": "observer-secret",
    "gw-site1": "site-gateway-secret",  # the accounts of deploy/mosquitto/tagtrail.acl.example
    "engine-1": "engine-secret-1",
}


@dataclass(frozen=True)
class SecuredBroker:
    """Where the secured broker listens, and the CA its TLS listener's certificate chains to."""

    port: int
    tls_port: int
    ca_file: Path

    def url(self, user: str, *, password: str | None = None, tls: bool = False) -> str:
        """An MQTT URL with ``user``'s credentials (its real password unless given)."""
        secret = ACCOUNTS[user] if password is None else password
        if tls:
            return f"mqtts://{user}:{secret}@127.0.0.1:{self.tls_port}?ca={self.ca_file}"
        return f"mqtt://{user}:{secret}@127.0.0.1:{self.port}"


def _write_test_ca(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) files."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "TagTrail test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    files = workdir / "ca.pem", workdir / "server.pem", workdir / "server.key"
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def secured_mosquitto(*, acl_text: str | None = None) -> Iterator[SecuredBroker]:
    """Start the secured broker; stop it and remove its files afterwards.

    ``acl_text`` replaces the generated ACL (and its observer account), e.g. with the file
    the project ships.
    """
    if shutil.which("mosquitto") is None or shutil.which("mosquitto_passwd") is None:
        raise RuntimeError("mosquitto and mosquitto_passwd must be installed (package mosquitto)")
    with tempfile.TemporaryDirectory(prefix="tagtrail-mosquitto-") as tmp:
        workdir = Path(tmp)
        passwd = workdir / "passwd"
        for user, password in ACCOUNTS.items():
            flags = ["-b"] if passwd.exists() else ["-c", "-b"]
            subprocess.run(["mosquitto_passwd", *flags, str(passwd), user, password], check=True)
        acl = workdir / "acl"
        roster = BrokerRoster(prefix=PREFIX, gateways=["gw-1"], engines=["engine-0"], apis=["api"])
        # The observer exists only in the tests: it sees everything, to prove what was dropped.
        acl.write_text(
            acl_text
            if acl_text is not None
            else render_acl(roster) + f"\nuser observer\ntopic read {PREFIX}/#\n"
        )
        ca, cert, key = _write_test_ca(workdir)
        port, tls_port = free_port(), free_port()
        config = workdir / "mosquitto.conf"
        config.write_text(
            "per_listener_settings false\nallow_anonymous false\n"
            f"password_file {passwd}\nacl_file {acl}\npersistence false\n"
            f"listener {port} 127.0.0.1\n"
            f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
            "tls_version tlsv1.2\n"
        )
        for path in (passwd, acl, config, ca, cert, key):
            path.chmod(0o644)  # mosquitto may drop privileges to its own user
        workdir.chmod(0o755)
        proc = subprocess.Popen(
            ["mosquitto", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while not (_port_open(port) and _port_open(tls_port)):
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)  # polling a port: mosquitto has no readiness signal
        try:
            yield SecuredBroker(port, tls_port, ca)
        finally:
            proc.terminate()
            proc.wait(10)
