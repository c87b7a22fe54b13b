"""The threads shared by every request: a request's concurrency respected, order kept, errors
raised, and no deadlock when the pool is busy or a task asks for concurrency itself."""
from __future__ import annotations

import threading
import time

import pytest

from engine.serving import workers
from engine.serving.workers import run_concurrently
from tests.support.forking import in_forked_child


def test_results_come_back_in_the_order_of_the_items():
    def slow_first(item):
        time.sleep(0.02 if item == 0 else 0)
        return item * 10
    assert run_concurrently(slow_first, list(range(8)), 4) == [0, 10, 20, 30, 40, 50, 60, 70]


def test_no_more_tasks_run_at_once_than_the_limit():
    running, most, lock = [0], [0], threading.Lock()

    def task(item):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return item

    assert run_concurrently(task, list(range(20)), 3) == list(range(20))
    assert most[0] == 3


def test_a_limit_of_one_runs_in_the_calling_thread():
    assert run_concurrently(lambda item: threading.current_thread(), [1, 2, 3], 1) == [threading.current_thread()] * 3


def test_a_failing_task_raises_once_the_others_have_ended():
    finished = []

    def task(item):
        if item == 2:
            raise ValueError("item 2")
        time.sleep(0.01)
        finished.append(item)

    with pytest.raises(ValueError, match="item 2"):
        run_concurrently(task, list(range(6)), 3)
    assert sorted(finished) == [0, 1, 3, 4, 5]


def test_a_task_that_asks_for_concurrency_runs_its_items_in_order_inside_the_pool():
    def inner(item):
        return threading.current_thread().name, item

    def outer(item):
        return run_concurrently(inner, [item, item + 1], 2)

    made = run_concurrently(outer, [0, 10, 20], 3)
    assert [[value for _, value in pair] for pair in made] == [[0, 1], [10, 11], [20, 21]]
    for pair in made:
        assert pair[0][0] == pair[1][0]  # both items of one outer task ran in its own thread


def test_a_request_finishes_when_every_pool_thread_is_busy(monkeypatch):
    monkeypatch.setattr(workers, "_pool", None)
    monkeypatch.setattr(workers, "MAX_WORKERS", 2)
    release = threading.Event()
    blockers = [workers._shared_pool().submit(release.wait) for _ in range(2)]
    try:
        started = time.monotonic()
        assert run_concurrently(lambda item: item + 1, [1, 2, 3, 4], 4) == [2, 3, 4, 5]
        assert time.monotonic() - started < 1  # the calling thread did the work
    finally:
        release.set()
        for blocker in blockers:
            blocker.result()
        workers._shared_pool().shutdown()


def test_a_forked_worker_runs_tasks_on_threads_of_its_own():
    """gunicorn --preload forks workers from a parent whose pool threads do not survive the fork."""
    assert run_concurrently(lambda item: item, [1, 2, 3], 3) == [1, 2, 3]  # the parent's pool exists

    def threads_used():
        names = run_concurrently(lambda item: (time.sleep(0.05), threading.current_thread().name)[1],
                                 list(range(4)), 4)
        return len(set(names))

    assert in_forked_child(threads_used) == "4"
