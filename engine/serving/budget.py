"""The time one relay request may spend, and whether anyone is still waiting for its answer.

API Gateway gives up on a request after 29 s, whatever the relay is doing; a deadline per vendor
call does not bound a request that makes many calls. A `Budget` starts with the request: every
vendor call's deadline is cut to what is left of it, and no call starts once it is spent or once
the client has hung up (its answer would reach no one, and the call would spend the customer's
vendor quota for nothing).

The budget reads the runtime's clock, so tests and conformance runs (whose clocks move only when
the engine sleeps) drive it without waiting.
"""
from __future__ import annotations

import socket
from typing import Callable

DEFAULT_REQUEST_BUDGET = 20.0  # seconds: API Gateway's 29 s, less a cold start and the mapping
MAX_REQUEST_BUDGET = 28.0


class Budget:
    def __init__(self, seconds: float, clock, client_gone: Callable[[], bool] = lambda: False):
        self.seconds = seconds
        self._clock = clock
        self._ends = clock.monotonic() + seconds
        self._client_gone = client_gone
        self.gone = False  # set once the client is seen gone: it does not come back

    def remaining(self) -> float:
        return self._ends - self._clock.monotonic()

    def spent(self) -> bool:
        return self.remaining() <= 0

    def client_gone(self) -> bool:
        if not self.gone and self._client_gone():
            self.gone = True
        return self.gone

    def allows_a_call(self) -> bool:
        """May a vendor call start now?"""
        return not self.spent() and not self.client_gone()

    def call_timeout(self, timeout: float) -> float:
        """A call's timeout, cut to what is left of the request's budget."""
        return max(min(timeout, self.remaining()), 0.0)


def unlimited(clock) -> Budget:
    """For tools that run one observable by hand (relay try, lint's dry run): no client to lose."""
    return Budget(float("inf"), clock)


def client_socket_watch(environ: dict) -> Callable[[], bool]:
    """A test of whether the client of a WSGI request has closed its connection.

    gunicorn and Werkzeug's server expose the client's socket; a peek that finds the end of the
    stream (b"") means the client hung up. On Lambda there is no socket: API Gateway holds the
    client, and the budget alone bounds the request.
    """
    sock = environ.get("gunicorn.socket") or environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return lambda: False

    def gone() -> bool:
        try:
            # The plain socket's recv, also under TLS: a peek at the raw stream consumes nothing.
            return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False  # nothing to read: the client is waiting for its answer
        except OSError:
            return True  # reset or closed
    return gone
