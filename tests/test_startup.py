"""A process starts without garbage collections, and the collector is left as it was found."""
from __future__ import annotations

import gc

import pytest

from engine.startup import without_collections


@pytest.fixture
def collector():
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    (gc.enable if was_enabled else gc.disable)()


def test_no_collection_runs_inside_and_the_collector_comes_back_on(collector):
    gc.enable()
    before = gc.get_stats()[0]["collections"]
    with without_collections():
        assert not gc.isenabled()
        made = [[index] for index in range(50_000)]  # far past the threshold of a young collection
        assert gc.get_stats()[0]["collections"] == before
    assert gc.isenabled() and len(made) == 50_000


def test_a_collector_that_was_off_stays_off(collector):
    gc.disable()
    with without_collections():
        pass
    assert not gc.isenabled()


def test_freeze_sets_aside_what_was_made(collector):
    gc.enable()
    gc.unfreeze()
    with without_collections(freeze=True):
        kept = [[index] for index in range(1000)]
    assert gc.get_freeze_count() >= len(kept)


def test_the_collector_comes_back_after_an_error(collector):
    gc.enable()
    with pytest.raises(RuntimeError), without_collections():
        raise RuntimeError("a spec that does not load")
    assert gc.isenabled()
