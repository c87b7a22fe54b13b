"""Vendor answers kept when a step asks (`cache: PT10M`): fewer calls for repeated lookups, never an
error kept, never one customer's answer given to another's key, gone when its time is up."""
from __future__ import annotations

import io
import json

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from engine.serving.answercache import AnswerCache
from engine.serving.requestlog import RequestLog
from engine.serving.runtime import FrozenClock
from engine.spec.load import check_file
from tests.support.relay import NOW, RelayUnderTest
from tests.support.specs import acme_head

SPEC = acme_head() + """
steps:
  check:
    url: "/ip/{{ observable.value }}"
    %(cache)s
deliberate:
  steps: [check]
  verdicts:
    - observable: "{{ observable }}"
      disposition: "{{ check.disposition }}"
      valid_time: {}
"""
IP = [{"type": "ip", "value": "192.0.2.1"}]


def relay(write_spec, answer: CannedAnswer, cache: str = "cache: PT10M"):
    spec = load_spec(write_spec(SPEC % {"cache": cache}))
    vendor = StandInVendor([Route("/v1/ip/192.0.2.1", answer)]).start()
    return RelayUnderTest({"acme": spec}, {"acme": vendor.origin}), vendor


def ok(disposition: int = 2) -> CannedAnswer:
    return CannedAnswer(200, json.dumps({"disposition": disposition}).encode())


def lookups(write_spec, answer: CannedAnswer, times: int = 2, cache: str = "cache: PT10M") -> tuple[list, list]:
    """(the relay's answers, the calls the vendor received) for the same lookup made `times` times."""
    test_relay, vendor = relay(write_spec, answer, cache)
    try:
        answers = [test_relay.post("/acme/deliberate/observables", IP, {"key": "k"}).get_json() for _ in range(times)]
    finally:
        vendor.stop()
    return answers, vendor.received


def test_a_repeated_lookup_is_answered_from_the_cache(write_spec):
    (first, again), received = lookups(write_spec, ok())
    assert first == again and first["data"]["verdicts"]["docs"][0]["disposition"] == 2
    assert len(received) == 1


def test_another_key_is_another_entry(write_spec):
    test_relay, vendor = relay(write_spec, ok())
    try:
        test_relay.post("/acme/deliberate/observables", IP, {"key": "tenant-a"})
        test_relay.post("/acme/deliberate/observables", IP, {"key": "tenant-b"})
    finally:
        vendor.stop()
    assert [call.headers["X-Key"] for call in vendor.received] == ["tenant-a", "tenant-b"]


@pytest.mark.parametrize("status", [429, 500, 404])
def test_an_error_is_never_kept(write_spec, status):
    _, received = lookups(write_spec, CannedAnswer(status, b"{}"))
    assert len(received) == 2


def test_an_accepted_answer_that_cannot_be_read_is_not_kept(write_spec):
    answers, received = lookups(write_spec, CannedAnswer(200, b"<html>maintenance</html>"))
    assert [answer["errors"][0]["code"] for answer in answers] == ["unknown", "unknown"]
    assert len(received) == 2


def test_a_kept_answer_is_read_once(write_spec, monkeypatch):
    from engine.serving import steps
    reads = []
    monkeypatch.setattr(steps, "read_body", lambda reader, answer: reads.append(answer) or json.loads(answer.content))
    answers, received = lookups(write_spec, ok(3), times=3)
    assert [answer["data"]["verdicts"]["docs"][0]["disposition"] for answer in answers] == [3, 3, 3]
    assert len(reads) == 1 and len(received) == 1


def test_an_answer_is_kept_for_its_time_to_live_only(write_spec):
    test_relay, vendor = relay(write_spec, ok())
    try:
        test_relay.post("/acme/deliberate/observables", IP, {"key": "k"})
        test_relay.clock.sleep(599)  # the relay's clock: ten minutes are not over
        test_relay.post("/acme/deliberate/observables", IP, {"key": "k"})
        test_relay.clock.sleep(2)
        test_relay.post("/acme/deliberate/observables", IP, {"key": "k"})
    finally:
        vendor.stop()
    assert len(vendor.received) == 2


def test_without_cache_every_lookup_calls(write_spec):
    _, received = lookups(write_spec, ok(), cache="")
    assert len(received) == 2


def test_the_request_log_says_hit_or_miss(write_spec):
    from engine import create_app
    stream = io.StringIO()
    spec = load_spec(write_spec(SPEC % {"cache": "cache: PT10M"}))
    with StandInVendor([Route("/v1/ip/192.0.2.1", ok())]) as vendor:
        test_relay = RelayUnderTest({"acme": spec}, {"acme": vendor.origin})
        app = create_app({"acme": spec}, test_relay.config, request_log=RequestLog(stream, metrics=True))
        for _ in range(2):
            app.test_client().post("/acme/deliberate/observables", json=IP, base_url="http://localhost",
                                   headers={"Authorization": "Bearer " + test_relay.token({"key": "k"}, "/acme/")})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["calls"][0]["cache"] for line in lines] == ["miss", "hit"]
    assert [(line["VendorCalls"], line["CacheHits"]) for line in lines] == [(1, 0), (0, 1)]


def test_the_memory_is_bounded_least_recently_used_first():
    clock = FrozenClock(NOW)
    cache = AnswerCache(clock, max_bytes=3 * (2 * 100 + 512))  # room for three answers and their reads
    answer = type("Answer", (), {"content": b"x" * 100})()
    for key in "abc":
        cache.put(key, answer, 60, "check", {})
    cache.get("a")  # a is used again: b is now the oldest use
    cache.put("d", answer, 60, "check", {})
    kept = [cache.get(key) for key in "abcd"]
    assert [entry and entry.answer for entry in kept] == [answer, None, answer, answer]
    cache.put("huge", type("Answer", (), {"content": b"x" * 10_000})(), 60, "check", {})  # over the bound
    assert cache.get("huge") is None and len(cache) == 3


@pytest.mark.parametrize(("cache", "message"), [
    ("cache: P1M", "expected a duration in days, hours, minutes and seconds"),
    ("cache: PT0S", "'PT0S' keeps nothing"),
])
def test_lint_refuses_a_time_to_live_that_is_not_one(write_spec, cache, message):
    _, problems = check_file(write_spec(SPEC % {"cache": cache}))
    assert any(message in problem.message for problem in problems), [p.message for p in problems]
