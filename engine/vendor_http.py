"""The one way the engine talks to vendors: a requests.Session with timeouts, TLS checks and limits.

`VendorClient.send` never raises for network trouble: it returns a `VendorAnswer` (any HTTP status)
or a `VendorFault` (ssl, connection, timeout, oversized, redirect), and `outcomes.decide` turns
either into a relay outcome. Redirects are followed only within the same origin, and
`RELAY_UPSTREAM_<NAME>` can send every call of a vendor to another origin (path and query kept).
"""
from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class VendorRequest:
    method: str
    url: str
    params: tuple = ()  # ((name, value), ...) in the order sent
    headers: dict = field(default_factory=dict)
    json: object = None
    form: tuple | None = None


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
    kind: str  # ssl, connection, timeout, oversized, redirect
    message: str


class VendorClient:
    def __init__(self, session: requests.Session, upstream: str | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES):
        self.session = session
        self.upstream = upstream.rstrip("/") if upstream else None
        self.max_body_bytes = max_body_bytes

    def send(self, request: VendorRequest, timeout: float) -> VendorAnswer | VendorFault:
        deadline = time.monotonic() + timeout
        url = self.redirected(request.url)
        method, body_kwargs = request.method, _body(request)
        for _ in range(MAX_REDIRECTS + 1):
            fault_or_answer = self._send_once(method, url, request, body_kwargs, deadline, timeout)
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
                method, body_kwargs = "GET", {}
            url = target
            request = VendorRequest(method, url, (), request.headers)  # the query is in the Location
        return VendorFault("redirect", "too many redirects")

    def redirected(self, url: str) -> str:
        """Apply RELAY_UPSTREAM_<NAME>: same path and query, another origin."""
        if not self.upstream:
            return url
        target, parts = urlsplit(self.upstream), urlsplit(url)
        return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))

    def _send_once(self, method, url, request, body_kwargs, deadline, timeout):
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            response = self.session.request(
                method, url, params=list(request.params) or None, headers=request.headers,
                timeout=(min(remaining, 5.0), remaining), allow_redirects=False, stream=True, **body_kwargs)
        except requests.exceptions.SSLError as problem:
            return VendorFault("ssl", verify_message(problem))
        except (requests.exceptions.Timeout,) as problem:
            return VendorFault("timeout", f"no answer within {timeout:g} s")
        except (requests.exceptions.ConnectionError, requests.exceptions.InvalidURL) as problem:
            return VendorFault("connection", _first_line(problem))
        except requests.exceptions.RequestException as problem:
            return VendorFault("connection", _first_line(problem))
        try:
            content = self._read_body(response, deadline, timeout)
        finally:
            response.close()
        if isinstance(content, VendorFault):
            return content
        return VendorAnswer(response.status_code, response.reason or "", dict(response.headers), content,
                            response.url or url)

    def _read_body(self, response, deadline: float, timeout: float):
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(chunk_size=65536):
                size += len(chunk)
                if size > self.max_body_bytes:
                    return VendorFault("oversized", f"the answer exceeds {self.max_body_bytes} bytes")
                if time.monotonic() > deadline:  # a slow drip must not outlive the call's deadline
                    return VendorFault("timeout", f"no complete answer within {timeout:g} s")
                chunks.append(chunk)
        except requests.exceptions.RequestException as problem:
            kind = "timeout" if "timed out" in str(problem).lower() else "connection"
            return VendorFault(kind, _first_line(problem))
        return b"".join(chunks)


def _body(request: VendorRequest) -> dict:
    if request.json is not None:
        return {"json": request.json}
    if request.form is not None:
        return {"data": list(request.form)}
    return {}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _first_line(problem: Exception) -> str:
    return (str(problem).splitlines() or [type(problem).__name__])[0][:300]


def verify_message(problem: BaseException) -> str:
    """The certificate error's `verify_message`, wherever requests and urllib3 wrapped it."""
    seen, pending = set(), [problem]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError) and getattr(current, "verify_message", None):
            return current.verify_message
        pending += [getattr(current, "reason", None), current.__cause__, current.__context__]
        pending += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
    return _first_line(problem)
