"""A throwaway test PKI and a loopback HTTPS server that serves a JWKS document.

    pki = TestPki.create(directory)            # CA + server cert for localhost / 127.0.0.1, as files
    session = trusting_session(pki.ca_path)    # a requests.Session that trusts only the test CA
    with JwksServer(pki, {"keys": [...]}) as server:
        server.host                            # "localhost:<port>", a jwks_host value
        server.answer(status=500)              # or body=b"garbage", delay=0.2, document={...}
        server.fetches                         # GETs of /.well-known/jwks served so far

Everything listens on 127.0.0.1 only. Sessions made here ignore the environment (`trust_env=False`):
requests lets REQUESTS_CA_BUNDLE override a session's `verify`, and proxies must not see loopback calls.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

JWKS_PATH = "/.well-known/jwks"


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))


def make_ca(common_name: str = "relay tests throwaway CA") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """An RSA key and a self-signed CA certificate (BasicConstraints ca=True, may sign certificates)."""
    key = new_rsa_key()
    builder = (x509.CertificateBuilder()
               .subject_name(_name(common_name)).issuer_name(_name(common_name))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                            crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    return key, _validity(builder).sign(key, hashes.SHA256())


def make_server_certificate(ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate,
                            dns_names=("localhost",), ip_addresses=("127.0.0.1",)
                            ) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A server key and certificate signed by the CA, valid for the given DNS names and IPs (SAN)."""
    key = new_rsa_key()
    names = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    builder = (x509.CertificateBuilder()
               .subject_name(_name(dns_names[0] if dns_names else ip_addresses[0])).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.SubjectAlternativeName(names), critical=False)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    return key, _validity(builder).sign(ca_key, hashes.SHA256())


@dataclass(frozen=True)
class TestPki:
    """The test CA and one server certificate, written as PEM files in `directory`."""

    __test__ = False  # not a pytest test class

    ca_path: Path
    server_cert_path: Path
    server_key_path: Path

    @classmethod
    def create(cls, directory) -> "TestPki":
        directory = Path(directory)
        ca_key, ca_cert = make_ca()
        server_key, server_cert = make_server_certificate(ca_key, ca_cert)
        paths = cls(directory / "test-ca.pem", directory / "server.pem", directory / "server-key.pem")
        paths.ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        paths.server_cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        paths.server_key_path.write_bytes(_pem_key(server_key))
        return paths

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.server_cert_path), str(self.server_key_path))
        return context


def trusting_session(ca_path) -> requests.Session:
    """The engine's transport, verifying TLS against the test CA only (environment ignored, see the
    module doc)."""
    from engine.serving.transport import new_session
    session = new_session()
    session.trust_env = False
    session.verify = str(ca_path)
    return session


def untrusting_session() -> requests.Session:
    """A session with verification on and the usual public roots: the test CA is not among them."""
    from engine.serving.transport import new_session
    session = new_session()
    session.trust_env = False
    session.verify = True
    return session


class _TlsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # failed handshakes are expected in some tests
        self.owner.errors += 1


class JwksServer:
    """HTTPS on 127.0.0.1:<free port>, answering GET /.well-known/jwks with a settable answer."""

    def __init__(self, pki: TestPki, document: dict | None = None):
        self.pki = pki
        self.errors = 0  # connections that failed (e.g. a TLS handshake the client refused)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._fetches = 0
        self._server = None
        self._thread = None
        self.answer(document if document is not None else {"keys": []})

    def answer(self, document: dict | None = None, *, status: int = 200, body: bytes | None = None,
               delay: float = 0.0, headers: tuple = ()) -> None:
        """What the next fetches get: `document` as JSON, or `body` verbatim; after `delay` seconds."""
        raw = body if body is not None else json.dumps(document if document is not None else {"keys": []}).encode()
        with self._lock:
            self._answer = (status, raw, delay, tuple(headers))

    @property
    def fetches(self) -> int:
        with self._lock:
            return self._fetches

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        return f"localhost:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}{JWKS_PATH}"

    def start(self) -> "JwksServer":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != JWKS_PATH:
                    self._send(404, b'{"error": "not found"}', ())
                    return
                with owner._lock:
                    owner._fetches += 1
                    status, raw, delay, headers = owner._answer
                if delay:
                    owner._stopping.wait(delay)  # cut short when the server stops
                self._send(status, raw, headers)

            def _send(self, status, raw, headers):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        server = _TlsHttpServer(("127.0.0.1", 0), Handler)
        server.owner = self
        # The handshake is deferred to the first read, i.e. to the connection's own thread: a client
        # that never completes it cannot block the accept loop.
        server.socket = self.pki.server_context().wrap_socket(server.socket, server_side=True,
                                                                do_handshake_on_connect=False)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "JwksServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
