"""A vendor's documented rate limit, kept by the relay: `http.rate_limit: {calls: N, seconds: S}`.

No more than N calls to the vendor start within any S seconds, across the requests one relay
process serves at once (each of several processes keeps its own count: Lambda runs one request
per process, gunicorn as many as it has workers). A call that would break the limit waits for a
slot, within its request's budget; a wait the budget cannot afford is the request running out of
time, answered like any other.
"""
from __future__ import annotations

import threading
from collections import deque


class RateLimit:
    def __init__(self, calls: int, seconds: float):
        self.calls, self.seconds = calls, seconds
        self._started: deque = deque()  # monotonic times of the calls started in the last window
        self._lock = threading.Lock()

    def wait_for_a_slot(self, clock, budget) -> bool:
        """Wait (by `clock`) until a call may start, and count it; False when the budget cannot
        wait that long (nothing is counted then)."""
        while True:
            with self._lock:
                now = clock.monotonic()
                while self._started and self._started[0] <= now - self.seconds:
                    self._started.popleft()
                if len(self._started) < self.calls:
                    self._started.append(now)
                    return True
                wait = self._started[0] + self.seconds - now
            if budget is not None and wait >= budget.remaining():
                return False
            clock.sleep(wait)
