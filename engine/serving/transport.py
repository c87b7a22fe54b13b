"""The HTTP transport under every vendor and JWKS call: a deadline for the whole exchange, and a
rule on which addresses may be reached.

A socket timeout bounds each read, not an exchange: a host dripping its status line and headers a
few bytes at a time restarts it with every byte. So while a connection is being set up (TCP and
TLS) or is reading the answer's head, a watchdog holds its socket and shuts it down at the call's
deadline; the blocked read then returns at once. (The body is read against the same deadline by
`vendor_http.read_body`.)

Before connecting, the host is resolved and the address checked (`addresses.py`); the connection
is then made to that very address, so a DNS answer cannot change between the check and the call.

What a call may do is set per thread, around the call, with `exchange(deadline, private_ok)`:
requests is synchronous, so the connection code runs in the calling thread.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

from engine.serving.addresses import FORBIDDEN, PRIVATE, address_kind


MAX_CONCURRENCY = 50  # a spec's `concurrency` at most: connections kept open to one host


class AddressRefused(NewConnectionError):
    """The vendor's host resolves to an address the relay does not reach."""


@dataclass(frozen=True)
class ExchangeRules:
    deadline: float | None = None  # time.monotonic() at which the exchange is given up
    private_ok: bool = False  # may reach loopback and private addresses (forbidden ones never)


_STRICT = ExchangeRules()
_current = threading.local()


def current_rules() -> ExchangeRules:
    return getattr(_current, "rules", _STRICT)


@contextmanager
def exchange(deadline: float | None, private_ok: bool = False):
    """The rules for the calls this thread makes inside the `with`."""
    previous = current_rules()
    _current.rules = ExchangeRules(deadline, private_ok)
    try:
        yield
    finally:
        _current.rules = previous


class _CutHeadsAreTimeouts(logging.Filter):
    """urllib3 warns, with a traceback, about a head that stops mid-line; when the watchdog cut it,
    the call is a timeout, reported as such, and the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        deadline = current_rules().deadline
        return not (deadline is not None and time.monotonic() >= deadline
                    and str(record.msg).startswith("Failed to parse headers"))


logging.getLogger("urllib3.connection").addFilter(_CutHeadsAreTimeouts())


class Watchdog:
    """One thread that shuts sockets down when their deadline passes."""

    def __init__(self):
        self.start_afresh()

    def start_afresh(self) -> None:
        """No socket watched, no thread yet: a new process, or a worker forked from one whose
        watchdog thread (and maybe the lock it held) did not come along."""
        self._heap: list = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    # An entry: [deadline, order, socket, still watched, shut down by the watchdog]
    def watch(self, sock: socket.socket, deadline: float) -> list:
        entry = [deadline, next(self._order), sock, True, False]
        with self._wake:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="relay-deadlines", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:  # else the watchdog wakes for an earlier deadline anyway
                self._wake.notify()
        return entry

    def release(self, entry: list) -> bool:
        """Stop watching; True when the deadline had already shut the socket down."""
        with self._wake:
            entry[3] = False
            entry[2] = None
            return entry[4]

    def _run(self) -> None:
        with self._wake:
            while True:
                while self._heap and not self._heap[0][3]:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                entry = heapq.heappop(self._heap)
                entry[4] = True
                try:
                    # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop its
                    # TLS state under the thread that is reading with it.
                    socket.socket.shutdown(entry[2], socket.SHUT_RDWR)
                except OSError:
                    pass


WATCHDOG = Watchdog()
os.register_at_fork(after_in_child=WATCHDOG.start_afresh)


@contextmanager
def _until_deadline(sock):
    deadline = current_rules().deadline
    if sock is None or deadline is None:
        yield
        return
    entry = WATCHDOG.watch(sock, deadline)
    try:
        yield
    finally:
        fired = WATCHDOG.release(entry)
    if fired:
        # A head cut short reads as a complete one to http.client (EOF ends the headers): the
        # answer is a timeout, whatever was parsed.
        raise TimeoutError("the exchange's deadline passed while the answer's head was read")


class _Guarded:
    """Mixed into urllib3's connections: checked addresses, and the deadline while a socket waits."""

    def _new_conn(self):
        rules = current_rules()
        # A connection to the operator's proxy may be private; the proxy resolves the vendor itself.
        self._dns_host = permitted_address(self._dns_host, self.port, rules.private_ok or bool(self.proxy), self)
        sock = super()._new_conn()
        if rules.deadline is not None:
            self._connect_watch = WATCHDOG.watch(sock, rules.deadline)  # the TLS handshake reads too
        return sock

    def connect(self):
        try:
            super().connect()
        finally:
            watch = getattr(self, "_connect_watch", None)
            if watch is not None:
                WATCHDOG.release(watch)
                self._connect_watch = None

    def getresponse(self, *args, **kwargs):
        with _until_deadline(self.sock):
            return super().getresponse(*args, **kwargs)


def permitted_address(host: str, port: int, private_ok: bool, connection) -> str:
    """The address to connect to for `host`, or AddressRefused."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return host  # let the connection fail the usual way (name resolution error)
    addresses = [info[4][0] for info in found]
    kinds = {address_kind(address.split("%")[0]) for address in addresses}
    if FORBIDDEN in kinds:
        raise AddressRefused(connection, f"{host} resolves to a link-local, metadata or reserved address, "
                                         "which the relay never connects to")
    if PRIVATE in kinds and not private_ok:
        raise AddressRefused(connection, f"{host} resolves to a private or loopback address; a vendor on a "
                                         "private network needs http.private_network in its spec and "
                                         "RELAY_PRIVATE_VENDORS from the operator")
    return addresses[0]


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


class GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


POOL_CLASSES = {"http": GuardedHTTPPool, "https": GuardedHTTPSPool}


class GuardedAdapter(HTTPAdapter):
    no_proxy: tuple = ()  # host suffixes reached directly, from NO_PROXY

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        if proxies and bypasses_proxy(urlsplit(request.url).hostname or "", self.no_proxy):
            proxies = {}
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOL_CLASSES

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = POOL_CLASSES
        return manager


def new_session(environ=None) -> requests.Session:
    """A session for vendor calls. Proxies (HTTPS_PROXY, NO_PROXY...) and a private CA bundle
    (REQUESTS_CA_BUNDLE) are read from `environ` once, here: requests would read the environment
    again on every call. `environ={}` (a stand-in on loopback) uses none of them."""
    environ = os.environ if environ is None else environ
    session = requests.Session()
    session.trust_env = False
    session.verify = environ.get("REQUESTS_CA_BUNDLE") or environ.get("CURL_CA_BUNDLE") or True  # never off
    adapter = GuardedAdapter(pool_connections=16, pool_maxsize=MAX_CONCURRENCY)  # keep-alive for every worker
    proxies = {name.lower(): value for name, value in environ.items() if name.lower().endswith("_proxy") and value}
    session.proxies = {scheme: proxies[f"{scheme}_proxy"] for scheme in ("http", "https") if f"{scheme}_proxy" in proxies}
    adapter.no_proxy = tuple(host.strip().lstrip("*").lstrip(".").lower()
                             for host in proxies.get("no_proxy", "").split(",") if host.strip())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def loopback_session() -> requests.Session:
    """For a stand-in vendor (or the relay) on 127.0.0.1: no proxy or CA bundle of the environment."""
    return new_session({})


def bypasses_proxy(host: str, no_proxy: tuple) -> bool:
    """NO_PROXY as curl reads it: `*` for every host, else host names and their subdomains."""
    host = host.lower().strip("[]")
    return any(entry == "" or host == entry or host.endswith("." + entry) for entry in no_proxy)


def cause_of(problem: BaseException, kind: type):
    """The first exception of `kind` in the chain of causes requests and urllib3 wrap around it."""
    seen, pending = set(), [problem]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        pending += [getattr(current, "reason", None), current.__cause__, current.__context__]
        pending += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
    return None
