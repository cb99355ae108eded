"""https deliveries: pinned to the approved address, the certificate verified against the name."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scimflow.pipeline.events.transport import WebhookTransport

NAME = "hooks.example.test"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def self_signed(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path, Path]:
    cert_pem, key_pem = self_signed(NAME)
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(key_pem)
    return cert_pem, folder / "cert.pem", folder / "key.pem"


@pytest.fixture
def https_port(certificate: tuple[bytes, Path, Path]) -> Iterator[int]:
    _, cert_file, key_file = certificate
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def to_loopback(host: str, port: int, *, allow_private: bool) -> list[str]:
    return ["127.0.0.1"]


def trusting(cert_pem: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(cadata=cert_pem.decode())
    return context


def test_https_verifies_the_certificate_against_the_name(
    https_port: int, certificate: tuple[bytes, Path, Path]
) -> None:
    sender = WebhookTransport(timeout=2.0, allow_private=True, resolve=to_loopback,
                              tls_context=trusting(certificate[0]))
    try:
        results = [sender.post(f"https://{NAME}:{https_port}/hook", b"{}", {})
                   for _ in range(2)]
    finally:
        sender.close()

    assert [result.status for result in results] == [204, 204]


def test_a_certificate_for_another_name_is_refused(
    https_port: int, certificate: tuple[bytes, Path, Path]
) -> None:
    sender = WebhookTransport(timeout=2.0, allow_private=True, resolve=to_loopback,
                              tls_context=trusting(certificate[0]))

    result = sender.post(f"https://other.example.test:{https_port}/hook", b"{}", {})

    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("TLS certificate verification failed")
    assert "not valid for 'other.example.test'" in result.error


def test_an_untrusted_certificate_is_refused_by_default(https_port: int) -> None:
    sender = WebhookTransport(timeout=2.0, allow_private=True, resolve=to_loopback)

    result = sender.post(f"https://{NAME}:{https_port}/hook", b"{}", {})

    assert result.status is None
    assert result.error is not None
    assert result.error.startswith("TLS certificate verification failed")
