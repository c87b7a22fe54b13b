"""Everything outside the engine that it needs, injected: the clock, the id and nonce sources, the
HTTP sessions.

Production uses the real ones; tests and `relay conformance` pass a `FrozenClock` (whose sleep
advances time instead of waiting), fixed ids, or a session whose transport answers from a case.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import requests

from engine.serving.transport import new_session


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0))

    def monotonic(self) -> float:
        return time.monotonic()


class FrozenClock:
    """A clock that stands still until someone sleeps; sleeping moves it forward at once."""

    def __init__(self, start: datetime):
        self._now = start.astimezone(timezone.utc)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=max(seconds, 0))

    def monotonic(self) -> float:
        return self.now().timestamp()


class PinnedClock(FrozenClock):
    """Time stands at the start of a run and moves only by what is slept, which really waits.

    `relay try` uses it against live vendors: every now() of one run agrees, so a recorded run
    replays exactly, while polling still waits for real.
    """

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0))
        super().sleep(seconds)


class _Entropy(threading.local):
    """Random bytes from the OS, drawn 4 KiB at a time per thread: one system call per UUID lets
    every other thread take the interpreter lock in between, and a mapping makes many UUIDs."""

    def __init__(self):
        self.buffer, self.offset = b"", 0

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.buffer):
            self.buffer, self.offset = os.urandom(4096), 0
        self.offset += size
        return self.buffer[self.offset - size:self.offset]


_entropy = _Entropy()


def _forget_entropy() -> None:
    """A forked worker (gunicorn --preload) must not reuse the bytes its parent had drawn."""
    global _entropy
    _entropy = _Entropy()


os.register_at_fork(after_in_child=_forget_entropy)


def random_uuid() -> str:
    """A random (version 4) UUID's text, as str(uuid.uuid4()), without building a UUID object:
    a mapping makes one per sighting, judgement and relationship. The version digit is 4 and the
    variant digit one of 8, 9, a, b (RFC 4122)."""
    text = _entropy.take(16).hex()
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{'89ab'[int(text[16], 16) & 3]}{text[17:20]}-{text[20:]}"


def new_nonce() -> str:
    """A fresh nonce for a signed request (EdgeGrid and the like): a random UUID's text."""
    return str(uuid.uuid4())


@dataclass
class Runtime:
    clock: object = field(default_factory=SystemClock)
    new_uuid: Callable[[], object] = random_uuid  # its str() is the id's text (tests give UUIDs)
    new_nonce: Callable[[], str] = new_nonce
    session: requests.Session = field(default_factory=new_session)
    jwks_session: requests.Session = field(default_factory=new_session)
