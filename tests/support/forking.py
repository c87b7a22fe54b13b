"""Run a function in a forked child, as gunicorn --preload forks its workers, and get its answer."""
from __future__ import annotations

import os
import select
import signal


def in_forked_child(function, seconds: float = 10) -> str:
    """What `function()` returns (text) in a child forked from this process; "hung" when the child
    does not answer within `seconds` (it is then killed), "failed: ..." when it raises."""
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            try:
                answer = str(function())
            except BaseException as problem:  # noqa: BLE001 - told to the parent, which asserts
                answer = f"failed: {type(problem).__name__}: {problem}"
            os.write(writing, answer.encode())
        finally:
            os._exit(0)
    os.close(writing)
    ready, _, _ = select.select([reading], [], [], seconds)
    if not ready:
        os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    with os.fdopen(reading, "rb") as pipe:
        return pipe.read().decode() if ready else "hung"
