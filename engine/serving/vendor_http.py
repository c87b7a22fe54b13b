"""The one way the engine talks to vendors: a requests.Session with timeouts, TLS checks and limits.

`VendorClient.send` never raises for network trouble: it returns a `VendorAnswer` (any HTTP status)
or a `VendorFault` (ssl, connection, timeout, oversized, redirect, path, address), and
`outcomes.decide` turns either into a relay outcome. Redirects are followed only within the same
origin, and `RELAY_UPSTREAM_<NAME>` can send every call of a vendor to another origin (path and
query kept).

The call's timeout is a deadline for the whole exchange, from connecting to the last body byte
(transport.py holds it while the head is read, `read_body` while the body is), and fault messages
never carry the request URL (its query may hold an API key), so they are safe to show and to log.
"""
from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from engine.serving.transport import AddressRefused, cause_of, exchange
from engine.serving.access_tokens import TokenCache

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
READ_SIZE = 65536


@dataclass(frozen=True)
class VendorRequest:
    method: str
    url: str
    # Left out of repr(): these carry credentials, and a repr ends up in tracebacks and debuggers.
    params: tuple = field(default=(), repr=False)  # ((name, value), ...) in the order sent
    headers: dict = field(default_factory=dict, repr=False)
    json: object = field(default=None, repr=False)
    form: tuple | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)  # the access token it carries (not sent as such)


@dataclass(frozen=True)
class VendorAnswer:
    status: int
    reason: str
    headers: dict
    content: bytes
    url: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        try:
            return json.loads(self.content.decode("utf-8-sig"))
        except RecursionError:  # absurdly deep nesting is not JSON the relay will read
            raise ValueError("JSON nested too deeply") from None

    def body_for_errors(self):
        """The body as error rules see it: JSON when it parses, else the text."""
        try:
            return self.json()
        except ValueError:
            return self.text


@dataclass(frozen=True)
class VendorFault:
    kind: str  # ssl, connection, timeout, oversized, redirect, path, address
    message: str


class VendorClient:
    """Calls one vendor. `private_ok`: the vendor may be on a private network (the spec says so and
    the operator allows it); an upstream override is the operator's own choice of address."""

    def __init__(self, session: requests.Session, upstream: str | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES, private_ok: bool = False, rate_limit=None, answers=None):
        self.session = session
        self.upstream = upstream.rstrip("/") if upstream else None
        self.max_body_bytes = max_body_bytes
        self.private_ok = private_ok or self.upstream is not None
        self.rate_limit = rate_limit  # ratelimit.RateLimit, shared by the requests this process serves
        self.answers = answers  # answercache.AnswerCache, when a step of the spec keeps answers
        self.tokens = TokenCache()  # access tokens the vendor issued, per credentials (http.auth.token)

    def send(self, request: VendorRequest, timeout: float) -> VendorAnswer | VendorFault:
        deadline = time.monotonic() + timeout
        if _has_dot_segment(request.url):
            # HTTP clients remove `.`/`..` path segments, so a value like `..` would climb out of
            # the path the spec wrote (/ip/../admin is sent as /admin): refuse rather than send.
            return VendorFault("path", "the request path would contain a '.' or '..' segment "
                                       "(from an observable value?), which the relay does not send")
        url = self.redirected(request.url)
        method, body = request.method, body_kwargs(request)
        for _ in range(MAX_REDIRECTS + 1):
            with exchange(deadline, self.private_ok):
                fault_or_answer = self._send_once(method, url, request, body, deadline, timeout)
            if isinstance(fault_or_answer, VendorFault) or fault_or_answer.status not in (301, 302, 303, 307, 308):
                return fault_or_answer
            location = fault_or_answer.headers.get("Location")
            if not location:
                return fault_or_answer
            target = urljoin(url, location)
            if _origin(target) != _origin(url):
                return VendorFault("redirect", f"the vendor redirected to another host ({_origin(target)}), "
                                               "which the relay does not follow")
            if fault_or_answer.status == 303:
                method, body = "GET", {}
            url = target
            request = VendorRequest(method, url, (), request.headers)  # the query is in the Location
        return VendorFault("redirect", "too many redirects")

    def redirected(self, url: str) -> str:
        """Apply RELAY_UPSTREAM_<NAME>: same path and query, another origin."""
        if not self.upstream:
            return url
        target, parts = urlsplit(self.upstream), urlsplit(url)
        return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))

    def _send_once(self, method, url, request, body, deadline, timeout):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return VendorFault("timeout", f"no answer within {timeout:g} s")
        try:
            response = self._transmit(method, url, request, body, timeout=(min(remaining, 5.0), remaining))
        except requests.exceptions.SSLError as problem:
            if time.monotonic() >= deadline:  # the watchdog cut a handshake that was still dripping
                return VendorFault("timeout", f"no answer within {timeout:g} s")
            return VendorFault("ssl", verify_message(problem))
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, UnicodeError) as problem:
            # Their texts quote the URL or the header value (an API key, maybe): name the kind only.
            return VendorFault("connection", f"the request cannot be sent ({type(problem).__name__}: "
                                             "a URL or header value HTTP cannot carry)")
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as problem:
            refused = cause_of(problem, AddressRefused)
            if refused is not None:
                return VendorFault("address", without_query(str(refused).split(": ", 1)[-1]))
            if isinstance(problem, requests.exceptions.Timeout) or time.monotonic() >= deadline:
                return VendorFault("timeout", f"no answer within {timeout:g} s")
            return VendorFault("connection", fault_message(problem))
        try:
            content = self._read_body(response, deadline, timeout)
        finally:
            response.close()
        if isinstance(content, VendorFault):
            return content
        return VendorAnswer(response.status_code, response.reason or "", dict(response.headers), content,
                            response.url or url)

    def _transmit(self, method, url, request, body, timeout) -> requests.Response:
        """One exchange, straight through the session's transport (redirects are `send`'s job).

        Not `session.request`: that stores the cookies a vendor sets and sends them with later
        calls, and the session serves every tenant, so one customer's vendor session would travel
        with another's calls; it also re-merges settings the session fixed once (new_session)."""
        headers = CaseInsensitiveDict(self.session.headers)
        headers.update(request.headers)
        prepared = requests.PreparedRequest()
        prepared.prepare(method=method, url=url, headers=headers, params=list(request.params) or None, **body)
        return self.session.get_adapter(url).send(prepared, stream=True, timeout=timeout, verify=self.session.verify,
                                                  cert=self.session.cert, proxies=self.session.proxies)

    def _read_body(self, response, deadline: float, timeout: float):
        return read_body(response, deadline, timeout, self.max_body_bytes)


def read_body(response, deadline: float, timeout: float, max_bytes: int) -> bytes | VendorFault:
    """A streamed response's body, read while the deadline lasts (a vendor dripping bytes slowly
    is a timeout) and up to `max_bytes` (decompressed).

    A socket read timeout alone restarts with every byte received, and a 64 KiB read waits for
    64 KiB, so each read is a single `read1` (whatever has arrived) and the socket may wait only
    until the deadline.
    """
    chunks, size = [], 0
    read = _reader(response)
    try:
        while True:
            _wait_at_most(response, deadline - time.monotonic())
            chunk = read()
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                return VendorFault("oversized", f"the answer exceeds {max_bytes} bytes")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                return VendorFault("timeout", f"no complete answer within {timeout:g} s")
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as problem:
        if isinstance(problem, (urllib3.exceptions.ReadTimeoutError, requests.exceptions.Timeout,
                                socket.timeout)) or "timed out" in str(problem).lower():
            return VendorFault("timeout", f"no complete answer within {timeout:g} s")
        return VendorFault("connection", fault_message(problem))
    return b"".join(chunks)


def _reader(response):
    """A function returning the next piece of the decoded body (b"" at its end)."""
    raw = response.raw
    if isinstance(raw, urllib3.response.BaseHTTPResponse) and hasattr(raw, "read1"):
        # read1 returns what has arrived (one socket read) and bounds decompression to READ_SIZE
        return lambda: raw.read1(READ_SIZE, decode_content=True)
    pieces = response.iter_content(chunk_size=8192)  # other transports (replayed answers, urllib3 1.x)
    return lambda: next(pieces, b"")


def _wait_at_most(response, seconds: float) -> None:
    """Let the next socket read wait no longer than the call's deadline (best effort)."""
    sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(seconds, 0.001))
        except OSError:
            pass


def body_kwargs(request: VendorRequest) -> dict:
    if request.json is not None:
        return {"json": request.json}
    if request.form is not None:
        return {"data": list(request.form)}
    return {}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _has_dot_segment(url: str) -> bool:
    return any(unquote(segment) in (".", "..") for segment in urlsplit(url).path.split("/"))


def _first_line(problem: BaseException) -> str:
    return (str(problem).splitlines() or [type(problem).__name__])[0][:300]


_WITH_URL = re.compile(r"\s*with url: \S*")
_QUERY = re.compile(r"\?[^\s'\"()]*")


def without_query(text: str) -> str:
    """Text about a request with every URL query string cut out (it may hold an API key)."""
    return _QUERY.sub("?...", _WITH_URL.sub("", text))


def fault_message(problem: BaseException) -> str:
    """Why a call failed, from the innermost cause (e.g. "[Errno 111] Connection refused"); never a URL.

    requests and urllib3 wrap the cause in errors whose text quotes the request URL, query and all.
    """
    message, seen, current = "", set(), problem
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = _first_line(current) if str(current) else ""
        message = text or message
        nested = [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
        current = getattr(current, "reason", None) if isinstance(getattr(current, "reason", None), BaseException) \
            else (nested[-1] if nested else current.__cause__ or current.__context__)
    return without_query(message or type(problem).__name__)


def verify_message(problem: BaseException) -> str:
    """The certificate error's `verify_message`, wherever requests and urllib3 wrapped it."""
    certificate = cause_of(problem, ssl.SSLCertVerificationError)
    if certificate is not None and getattr(certificate, "verify_message", None):
        return certificate.verify_message
    return fault_message(problem)  # not a certificate problem (e.g. the port does not speak TLS)


class _TargetHiding(logging.Filter):
    """urllib3's debug lines quote each request's target, whose path or query may hold an API key
    (some vendors take it in the path): log them without it; method, host and status stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple("<target>" if isinstance(arg, str) and (arg.startswith("/") or "://" in arg)
                                else arg for arg in record.args)
        elif isinstance(record.msg, str):
            record.msg = without_query(record.msg)
        return True


for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.connection", "urllib3.response"):
    logging.getLogger(_name).addFilter(_TargetHiding())
