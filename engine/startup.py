"""What a process does while it starts: no garbage collections.

Importing Flask, requests and the engine, then loading every spec, makes a few hundred thousand
objects that live as long as the process. The collector, set off by the count of new objects, walks
them again and again while they are made and frees nothing: about a quarter of a cold start.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def without_collections(freeze: bool = False):
    """No collections inside the `with`; `freeze`: what was made is set aside for good (later
    collections do not walk it, and forked workers do not copy the pages it lives on)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if collecting:
            gc.enable()
