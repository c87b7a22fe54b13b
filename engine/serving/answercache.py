"""Vendor answers kept for a while, when a spec asks: `cache: PT10M` on a step.

A vendor's API quota is often the scarcest thing an integration has; the same IP looked up by ten
analysts in an hour need not cost ten calls, and a page of categories that changes once a year
need not be read on every request. What is kept, and how:

- only answers the step accepted (never an error, a fault, or an answer its rules refused);
- under a key made of everything that shapes the call: the method, the URL and its query, every
  header (the credentials included: one customer never sees an answer given to another's key)
  and the body, hashed (the key holds no credential in clear);
- for the step's time to live, by the relay's clock, in memory only, in each process;
- within a bound (RELAY_ANSWER_CACHE_MB, 32 by default): the least recently used go first;
- with what each step read from it (a page of HTML made into rows once, not on every hit). What a
  reader makes is never changed in place by expressions or mappings, so requests share it.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

DEFAULT_MAX_BYTES = 32 * 1024 * 1024


def cache_for(spec, clock, max_bytes: int = DEFAULT_MAX_BYTES) -> "AnswerCache | None":
    """A cache for the vendor's answers, when a step of its spec keeps them."""
    if not any(step.cache_seconds for step in spec.steps.values()):
        return None
    return AnswerCache(clock, max_bytes)


def answer_key(request) -> str:
    """A digest of everything that shapes a vendor call (vendor_http.VendorRequest)."""
    shape = [request.method, request.url, sorted(map(list, request.params)), sorted(request.headers.items()),
             request.json, sorted(map(list, request.form)) if request.form is not None else None]
    return hashlib.sha256(json.dumps(shape, default=str, separators=(",", ":")).encode()).hexdigest()


class AnswerCache:
    def __init__(self, clock, max_bytes: int = DEFAULT_MAX_BYTES):
        self.clock, self.max_bytes = clock, max_bytes
        self._entries: OrderedDict = OrderedDict()  # key -> (expires, size, answer), oldest use first
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> "Kept | None":
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] <= self.clock.monotonic():
                self._drop(key)
                return None
            self._entries.move_to_end(key)
            return found[2]

    def put(self, key: str, answer, seconds: float, step: str, read) -> None:
        """Keep an accepted answer, and what `step` read from it."""
        size = 2 * len(answer.content) + 512  # the body, what was read from it, and the rest
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = (self.clock.monotonic() + seconds, size, Kept(answer, {step: read}))
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        _, size, _ = self._entries.pop(key)
        self._bytes -= size

    def __len__(self) -> int:
        return len(self._entries)


class Kept:
    """A kept answer, and what the steps that met it read from it, by step name."""

    def __init__(self, answer, reads: dict):
        self.answer, self.reads = answer, reads

    def read_by(self, step: str, read):
        """What `step` reads from the answer: worked out once (`read()`), then shared."""
        if step not in self.reads:
            self.reads[step] = read()
        return self.reads[step]
