"""TLS is always verified and mTLS loads the client pair; checked against a real local HTTPS server."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from onec.config import AuthMethod, Settings
from onec.http import OneCSession, OneCUnavailable


def _write_pair(
    folder: Path, name: str, *, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, ca: bool
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert, key


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"version": "1.4.2"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ca = _write_pair(tmp_path, "ca", issuer=None, ca=True)
    _write_pair(tmp_path, "server", issuer=ca, ca=False)
    _write_pair(tmp_path, "client", issuer=ca, ca=False)
    _write_pair(tmp_path, "other-ca", issuer=None, ca=True)
    return tmp_path


@pytest.fixture
def mtls_server(pki: Path) -> Iterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    context.verify_mode = ssl.CERT_REQUIRED
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}/trade/hs/exchange"
    server.shutdown()
    server.server_close()


def _settings(base_url: str, pki: Path, ca: str) -> Settings:
    return Settings(
        base_url=base_url,
        auth=AuthMethod.MTLS,
        client_cert=pki / "client.pem",
        client_key=pki / "client.key",
        ca_bundle=pki / ca,
        max_retries=0,
        timeout_s=5,
    )


def test_mtls_with_the_right_ca_and_client_pair(mtls_server: str, pki: Path) -> None:
    with OneCSession(_settings(mtls_server, pki, "ca.pem")) as session:
        assert session.get_json("api/version") == {"version": "1.4.2"}


def test_a_server_outside_the_ca_bundle_is_refused_without_retries(mtls_server: str, pki: Path) -> None:
    with OneCSession(_settings(mtls_server, pki, "other-ca.pem")) as session:
        with pytest.raises(OneCUnavailable, match="TLS verification of 1C's certificate failed"):
            session.get_json("api/version")
        assert session.stats.snapshot()["requests"] == 1
