"""The threads that look observables up concurrently, shared by every request a process serves.

Starting a thread per observable per request costs more than the lookup's own CPU once a request
asks about twenty observables, so the threads are kept: one pool per process, grown on demand up
to `MAX_WORKERS`. A request never holds more of them than its spec's `concurrency`, and the
request's own thread works through the list too, so a request whose helpers are all busy serving
other requests still finishes (more slowly) instead of waiting in a queue: helpers that have not
started by the time the list is done are cancelled. A task running in a pool thread that asks for
more concurrency runs its items in order: pool threads never wait on the pool, so it cannot
deadlock.
"""
from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from engine.serving.transport import MAX_CONCURRENCY

MAX_WORKERS = 2 * MAX_CONCURRENCY  # two requests at a spec's highest concurrency, at once

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_inside = threading.local()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="relay-observable",
                                       initializer=_mark_as_worker)
        return _pool


def _mark_as_worker() -> None:
    _inside.worker = True


def _forget_pool() -> None:
    """A forked worker (gunicorn --preload) has none of its parent's threads: it starts its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def run_concurrently(task, items: list, limit: int) -> list:
    """[task(item) for item in items], at most `limit` at once; results in the items' order.

    An exception raised by a task is raised here, once every running task has ended."""
    helpers = min(limit, len(items)) - 1
    if helpers <= 0 or getattr(_inside, "worker", False):
        return [task(item) for item in items]
    results: list = [None] * len(items)
    indexes = itertools.count()  # next() on a count is atomic: each item is taken once

    def work_through() -> None:
        while (index := next(indexes)) < len(items):
            results[index] = task(items[index])

    pool = _shared_pool()
    helping = [pool.submit(work_through) for _ in range(helpers)]
    problem = None
    try:
        work_through()
    except BaseException as raised:  # noqa: BLE001 - raised again below, after the helpers end
        problem = raised
    for helper in helping:
        if helper.cancel():  # still queued behind other requests' work: no longer needed
            continue
        try:
            helper.result()
        except BaseException as raised:  # noqa: BLE001
            problem = problem or raised
    if problem is not None:
        raise problem
    return results
