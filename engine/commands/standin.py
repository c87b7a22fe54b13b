"""A stand-in vendor on loopback: real HTTP, canned answers.

`relay demo` and the integration tests point a vendor's calls at it (RELAY_UPSTREAM_<NAME>), so
the engine's whole path runs — URL building, headers, TLS-free loopback HTTP, error table,
mappings — without an account or a network. Answers are matched by method and request path: each
route is a path (exact), a path prefix, or (made from a spec's step) the step's URL with each
template standing for a segment, as `/search/jobs/*/messages`; the longest match wins.
"""
from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from engine.spec.model import Spec
from engine.language.expressions import Template


@dataclass(frozen=True)
class CannedAnswer:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple = ()
    delay: float = 0.0  # seconds before answering, for timeout tests


@dataclass(frozen=True)
class Route:
    path: str
    answer: CannedAnswer
    prefix: bool = False
    query: tuple = ()  # ((name, value), ...) the request's query must contain
    example: bool = False  # made from a spec's examples: a route written by hand for the same path wins
    method: str | None = None  # None: any method
    pattern: re.Pattern | None = None  # the whole path, when `path` is only its literal start

    def matches(self, method: str, path: str, query: list) -> bool:
        if self.method not in (None, method):
            return False
        if self.pattern is not None:
            if not self.pattern.fullmatch(path):
                return False
        elif not (path.startswith(self.path) if self.prefix else path == self.path):
            return False
        return all(pair in query for pair in self.query)


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: dict
    body: bytes


@dataclass
class StandInVendor:
    routes: list
    host: str = "127.0.0.1"
    port: int = 0
    received: list = field(default_factory=list)

    def __post_init__(self):
        self._server = None
        self._thread = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    def answer_for(self, path: str, query: str = "", method: str = "GET") -> CannedAnswer | None:
        pairs = parse_qsl(query, keep_blank_values=True)
        candidates = [route for route in self.routes if route.matches(method, path, pairs)]
        if not candidates:
            return None
        return max(candidates, key=lambda route: (len(route.path), not route.prefix, not route.example,
                                                  route.pattern is not None and len(route.pattern.pattern),
                                                  route.method is not None, len(route.query))).answer

    def start(self) -> "StandInVendor":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The head and the body leave in one write, on a socket without Nagle's delay: written in
            # two, a kept-alive connection waited ~40 ms for the client's delayed ACK on every answer.
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                stand_in.received.append(Received(self.command, parts.path, parts.query, dict(self.headers), body))
                answer = stand_in.answer_for(parts.path, parts.query, self.command) or CannedAnswer(
                    404, b'{"error": "the stand-in has no answer for this path"}')
                if answer.delay:
                    threading.Event().wait(answer.delay)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any

            def log_message(self, *args):  # quiet: the relay logs what matters
                pass

        self._server = _QuietServer((self.host, self.port), Handler)
        # A short poll: stop() waits for it, once per spec in `relay lint` (50 ms was most of lint's time).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.005},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that hangs up early (a timeout test, a relay giving up) is no error of the stand-in."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def routes_from_examples(spec: Spec) -> list:
    """One route per step that has an example answer, at the path the step calls. Steps that call
    one path with different parameters (`?get=links`) are told apart by the query parameters they
    send as constants."""
    if spec.examples is None:
        return []
    places = {name: step_path(spec, spec.call_named(name)) for name in spec.examples.answers}
    shared = {place for place in places.values() if list(places.values()).count(place) > 1}
    routes = []
    for name, example in spec.examples.answers.items():
        step = spec.call_named(name)
        path, pattern = places[name]
        constants = tuple((key, as_query_text(value)) for key, value in step.query
                          if value is not None and not isinstance(value, Template)) if places[name] in shared else ()
        routes.append(Route(path, CannedAnswer(example.status, example.content(), example.content_type),
                            pattern is not None, constants, example=True, method=step.method,
                            pattern=None if pattern is None else re.compile(pattern)))
    return routes


def as_query_text(value) -> str:
    """A constant query value as it is sent (YAML `true` goes as `true`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def step_path(spec: Spec, step) -> tuple[str, str | None]:
    """The literal start of the path a step calls, and when templates follow, a pattern of the
    whole path: each template a segment (`[^/]+`), or what is left (`.*`) when it ends the path."""
    url = step.url.source if isinstance(step.url, Template) else step.url
    url = url.split("?", 1)[0]
    pieces = re.split(r"\{\{.*?\}\}", url)
    literal = pieces[0]
    if literal.startswith("/"):
        literal = "https://stand-in" + spec.http.base_path + literal
    path = urlsplit(literal).path or "/"
    if len(pieces) == 1:
        return path, None
    segment = ".*" if "/" in step.url_safe else "[^/]*"  # a value may hold slashes only when the step lets it
    after = pieces[1:]
    tail = "".join((".*" if index == len(after) - 1 and not piece else segment) + re.escape(piece)
                   for index, piece in enumerate(after))
    return path, re.escape(path) + tail
