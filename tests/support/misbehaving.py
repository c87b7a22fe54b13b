"""A loopback vendor that misbehaves on purpose, down to the byte: for fault tests and the load test.

    with MisbehavingVendor(lambda request: Answer(200, b'{"data": {}}')) as vendor:
        vendor.origin              # "http://127.0.0.1:<port>" (https with tls=...)
        vendor.requests            # every request read so far (method, path, query, headers)
        vendor.connections         # connections accepted so far (also those that never sent a request)

The behaviour is chosen per request by a function of the parsed request (so one observable of a
relay request can fail while another succeeds); `by_query("ipAddress", {...}, default=...)` builds
the usual one. Behaviours work on the raw socket, so they can do what no well-behaved HTTP server
does: drip bytes, hang, close or reset mid-answer, lie about Content-Length, stream without end,
speak garbage, or serve a certificate the relay must not trust.

Everything listens on 127.0.0.1 only; stop() (or leaving the `with`) closes every open connection,
so a behaviour that hangs never outlives its test.
"""
from __future__ import annotations

import datetime
import gzip
import ipaddress
import json
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

MAX_HEAD = 64 * 1024


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes = b""
    raw_query: str = ""  # the query string as it arrived, percent-encoding included

    def param(self, name: str, default=None):
        return self.query.get(name, default)


# ------------------------------------------------------------------------------------ behaviours


class Behaviour:
    """What the vendor does with one request, on the raw connection."""

    def run(self, connection: socket.socket, vendor: "MisbehavingVendor") -> None:
        raise NotImplementedError


def _head(status: int, headers: dict, reason: str = "") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Unknown')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 303: "See Other", 307: "Temporary Redirect",
            308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            403: "Forbidden", 418: "I'm a Teapot", 422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass
class Answer(Behaviour):
    """A well-formed answer (after `delay` seconds)."""

    status: int = 200
    body: bytes = b"{}"
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0
    reason: str = ""  # the status line's reason phrase (default: the standard one)

    def run(self, connection, vendor):
        if self.delay and vendor.stopping.wait(self.delay):
            return
        headers = {"Content-Type": self.content_type, "Content-Length": str(len(self.body)),
                   "Connection": "close", **self.headers}
        connection.sendall(_head(self.status, headers, self.reason) + self.body)


def json_answer(document, status: int = 200, **options) -> Answer:
    return Answer(status, json.dumps(document).encode(), **options)


@dataclass
class Drip(Behaviour):
    """Headers at once, then the body `size` bytes every `interval` seconds: each read is quick,
    the whole answer is not."""

    body: bytes
    interval: float = 0.05
    size: int = 1
    status: int = 200

    def run(self, connection, vendor):
        connection.sendall(_head(self.status, {"Content-Type": "application/json",
                                               "Content-Length": str(len(self.body)), "Connection": "close"}))
        for start in range(0, len(self.body), self.size):
            if vendor.stopping.wait(self.interval):
                return
            connection.sendall(self.body[start:start + self.size])


@dataclass
class DripHead(Behaviour):
    """The status line and headers `size` bytes every `interval` seconds, then the body: every read
    of the head returns quickly, so a socket timeout never fires, and the head takes `padding`
    header lines to arrive (about 30 s at the defaults)."""

    body: bytes = b"{}"
    interval: float = 0.25
    size: int = 4
    padding: int = 20

    def run(self, connection, vendor):
        headers = {"Content-Type": "application/json", "Content-Length": str(len(self.body)), "Connection": "close"}
        headers.update({f"X-Padding-{index}": "." for index in range(self.padding)})
        head = _head(200, headers)
        for start in range(0, len(head), self.size):
            connection.sendall(head[start:start + self.size])
            if vendor.stopping.wait(self.interval):
                return
        connection.sendall(self.body)


@dataclass
class Hang(Behaviour):
    """Read the request, answer nothing (after sending `prefix`, e.g. only the status line)."""

    prefix: bytes = b""

    def run(self, connection, vendor):
        if self.prefix:
            connection.sendall(self.prefix)
        vendor.stopping.wait()


@dataclass
class Close(Behaviour):
    """Close the connection: at once, or after `prefix` (e.g. headers and half a body)."""

    prefix: bytes = b""
    reset: bool = False  # a TCP RST instead of an orderly FIN

    def run(self, connection, vendor):
        if self.prefix:
            connection.sendall(self.prefix)
        if self.reset:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def truncated(body: bytes, declared: int, status: int = 200) -> Close:
    """Content-Length says `declared`, the connection closes after `body`."""
    head = _head(status, {"Content-Type": "application/json", "Content-Length": str(declared)})
    return Close(head + body)


@dataclass
class Raw(Behaviour):
    """Send these bytes verbatim, then close: e.g. something that is not HTTP at all."""

    data: bytes

    def run(self, connection, vendor):
        connection.sendall(self.data)


@dataclass
class Endless(Behaviour):
    """A chunked 200 whose body never ends (or ends after `total` bytes), sent as fast as read."""

    chunk: bytes = b"[" + b"0," * 8191 + b"0]"
    total: int | None = None

    def run(self, connection, vendor):
        connection.sendall(_head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked",
                                       "Connection": "close"}))
        sent = 0
        while not vendor.stopping.is_set() and (self.total is None or sent < self.total):
            connection.sendall(b"%x\r\n%s\r\n" % (len(self.chunk), self.chunk))
            sent += len(self.chunk)
        connection.sendall(b"0\r\n\r\n")


def gzip_bomb(expanded_bytes: int) -> Answer:
    """A small gzip body that expands to `expanded_bytes` of JSON-ish zeros."""
    payload = gzip.compress(b"0" * expanded_bytes, compresslevel=9)
    return Answer(200, payload, headers={"Content-Encoding": "gzip"})


@dataclass
class Later(Behaviour):
    """`then`, the first time after `delay` seconds: lets a quick fault land after the other
    observables started (only the first time, so a redirect loop is not slowed at every hop)."""

    then: Behaviour
    delay: float = 0.2
    waited: bool = False

    def run(self, connection, vendor):
        if not self.waited:
            self.waited = True
            if vendor.stopping.wait(self.delay):
                return
        self.then.run(connection, vendor)


def redirect(location: str, status: int = 302) -> Answer:
    return Answer(status, b"", headers={"Location": location})


def by_query(name: str, behaviours: dict, default: Behaviour):
    """A plan choosing the behaviour by one query parameter (e.g. AbuseIPDB's ipAddress)."""
    return lambda request: behaviours.get(request.param(name), default)


# ------------------------------------------------------------------------------------ TLS


def make_certificate(directory, *, names=("localhost", "127.0.0.1"), issuer=None, expired: bool = False,
                     label: str = "vendor") -> tuple[Path, Path]:
    """A TLS certificate as (cert.pem, key.pem) in `directory`: self-signed, or signed by
    `issuer` = (ca_key, ca_cert) (see tests/support/tls.make_ca); `names` go in the SAN."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    issuer_key, issuer_name = (key, subject) if issuer is None else (issuer[0], issuer[1].subject)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) if expired else \
        (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    alternative = []
    for name in names:
        try:
            alternative.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternative.append(x509.DNSName(name))
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
                   .sign(issuer_key, hashes.SHA256()))
    directory = Path(directory)
    cert_path, key_path = directory / f"{label}.pem", directory / f"{label}-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_context(cert_path, key_path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    return context


# ------------------------------------------------------------------------------------ the server


class MisbehavingVendor:
    def __init__(self, plan=None, *, tls: ssl.SSLContext | None = None, on_connect: bytes | None = None,
                 keep_requests: bool = True):
        if isinstance(plan, Behaviour):
            plan = (lambda behaviour: lambda request: behaviour)(plan)
        self.plan = plan or (lambda request: Answer())
        self.tls = tls
        self.on_connect = on_connect  # bytes sent as soon as a client connects, then close (a wrong protocol)
        self.keep_requests = keep_requests  # False for long runs (the load test): `requests` stays empty
        self.requests: list[Request] = []
        self.connections = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def origin(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> "MisbehavingVendor":
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.02)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            for connection in list(self._open):
                _close_quietly(connection)
        if self._thread:
            self._thread.join(timeout=5)
        if self._listener:
            self._listener.close()

    def __enter__(self) -> "MisbehavingVendor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self.connections += 1
                self._open.add(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(10)
            if self.on_connect is not None:
                connection.sendall(self.on_connect)
                return
            if self.tls is not None:
                wrapped = self._wrap(connection)
                if wrapped is None:
                    return
                connection = wrapped
            request = _read_request(connection)
            if request is None:
                return
            if self.keep_requests:
                with self._lock:
                    self.requests.append(request)
            self.plan(request).run(connection, self)
        except (OSError, ssl.SSLError):
            pass  # the relay hung up first: expected in half of these tests
        finally:
            with self._lock:
                self._open.discard(connection)
            _close_quietly(connection)

    def _wrap(self, connection):
        raw = connection
        try:
            wrapped = self.tls.wrap_socket(connection, server_side=True)
        except (OSError, ssl.SSLError):
            return None  # the relay refused the certificate: the point of the TLS tests
        with self._lock:
            self._open.discard(raw)
            self._open.add(wrapped)
        return wrapped


def _read_request(connection) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > MAX_HEAD:
            return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            break
        body += chunk
    parts = urlsplit(target)
    return Request(method, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)), headers, body,
                   parts.query)


def _close_quietly(connection) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        connection.close()
    except OSError:
        pass


EXAMPLES = Path(__file__).resolve().parents[2] / "vendors" / "examples" / "abuseipdb"


def abuseipdb_examples(request) -> Answer:
    """A well-behaved AbuseIPDB: the spec's example answers, by path."""
    if request.path == "/categories":
        return Answer(200, (EXAMPLES / "categories.html").read_bytes(), content_type="text/html")
    return Answer(200, (EXAMPLES / "check.json").read_bytes())


def closed_port() -> int:
    """A loopback port with nobody listening (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, timeout: float = 5.0) -> bool:
    """Poll `condition` until true or `timeout` (for "did it happen", never for "how fast")."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# ------------------------------------------------------------------------------------ the relay side

SECRET_KEY = "reliability-tests-secret-key-" + "5f3a9c" * 6
API_KEY = "k3y/With+special=chars&more-7a1e0c44b9d2"  # characters that URL encoding changes: found in any form
NOW = datetime.datetime(2026, 11, 28, 12, 0, 0, tzinfo=datetime.timezone.utc)


def loopback_session(verify=True):
    """The engine's own transport for loopback vendors: verification as given, and no environment
    (REQUESTS_CA_BUNDLE would override `verify`, and a proxy must not see loopback calls)."""
    from engine.serving.transport import new_session
    session = new_session()
    session.trust_env = False
    session.verify = verify
    return session


class RelayAgainst:
    """The real app (hs256 tokens, frozen clock) whose vendor calls go to `upstreams` {vendor: origin}."""

    def __init__(self, specs: dict, upstreams: dict | None = None, session=None, **config):
        from engine.serving.app import create_app
        from engine.serving.config import RelayConfig, upstream_variable
        from engine.serving.runtime import FrozenClock, Runtime
        config.setdefault("auth_mode", "hs256")
        config.setdefault("secret_key", SECRET_KEY)
        config["upstreams"] = {upstream_variable(name)[len("RELAY_UPSTREAM_"):]: origin
                               for name, origin in (upstreams or {}).items()}
        self.config = RelayConfig(**config)
        self.app = create_app(specs, self.config, Runtime(clock=FrozenClock(NOW),
                                                           session=session or loopback_session()))
        self.client = self.app.test_client()

    def token(self, vendor: str, **claims) -> str:
        """An HS256 token for `vendor`; a claim given as None is left out."""
        from engine.commands.tokens import mint_hs256
        claims = {"key": API_KEY, "aud": f"http://localhost/{vendor}", **claims}
        return mint_hs256({name: value for name, value in claims.items() if value is not None}, SECRET_KEY)

    def post(self, vendor: str, route: str, observables=None, *, raw=None, token: str | None = "mint",
             headers=None, **claims):
        headers = dict(headers or {})
        if token == "mint":
            token = self.token(vendor, **claims)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs = {"data": raw} if raw is not None else ({"json": observables} if observables is not None else {})
        return self.client.post(f"/{vendor}/{route}", headers=headers, base_url="http://localhost", **kwargs)

    def ask(self, vendor: str, route: str, observables=None, **options) -> dict:
        """The answer's JSON, after checking the one thing every answer must be: HTTP 200."""
        response = self.post(vendor, route, observables, **options)
        assert response.status_code == 200, (response.status_code, response.get_data()[:500])
        return response.get_json()
