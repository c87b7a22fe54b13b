"""The deadline watchdog in a worker forked after it started (gunicorn --preload)."""
from __future__ import annotations

import socket
import time

from engine.serving.transport import WATCHDOG
from tests.support.forking import in_forked_child


def test_a_forked_worker_has_a_watchdog_of_its_own():
    first, second = socket.socketpair()
    WATCHDOG.release(WATCHDOG.watch(first, time.monotonic() + 60))  # the parent's watchdog thread runs

    def read_past_a_deadline():
        mine, other = socket.socketpair()
        mine.settimeout(5)  # a watchdog that never fires leaves the read waiting until this
        WATCHDOG.watch(mine, time.monotonic() + 0.1)
        try:
            return "cut" if mine.recv(1) == b"" else "data"
        except OSError:
            return "never cut"

    assert in_forked_child(read_past_a_deadline) == "cut"
    first.close(), second.close()
