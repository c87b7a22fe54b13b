"""The whole-request budget, and no vendor call for a client that has gone.

A deadline per call does not bound a request: the attack run asked about 16 observables a vendor
answered in 8 s each and waited 32 s (API Gateway gives up at 29 s), and after the client hung up,
36 of 40 vendor calls still ran, spending the customer's quota. Here the budget is cut to a second
or so and the vendor to a few hundred milliseconds, so the same shapes show in a test's time.
"""
from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from engine import create_app, load_spec
from engine.commands.tokens import mint_hs256
from engine.serving.budget import Budget
from engine.serving.config import ConfigError, RelayConfig
from engine.serving.runtime import FrozenClock, Runtime, SystemClock
from tests.support.misbehaving import SECRET_KEY, MisbehavingVendor, abuseipdb_examples, loopback_session, wait_until

ROOT = Path(__file__).resolve().parent.parent
SPEC = dataclasses.replace(load_spec(ROOT / "vendors" / "abuseipdb.yaml"), concurrency=4)  # rounds of 4


def observables(count: int) -> list:
    return [{"type": "ip", "value": f"192.0.2.{index + 1}"} for index in range(count)]


def slow_abuseipdb(delay: float):
    """The examples, each check answered after `delay` seconds (the categories page at once)."""
    def plan(request):
        answer = abuseipdb_examples(request)
        return dataclasses.replace(answer, delay=delay) if request.path.endswith("/check") else answer
    return plan


def relay(vendor, budget: float, spec=SPEC, clock=None):
    config = RelayConfig(auth_mode="hs256", secret_key=SECRET_KEY, request_budget=budget,
                         upstreams={"ABUSEIPDB": vendor.origin})
    return create_app({"abuseipdb": spec}, config, Runtime(clock=clock or SystemClock(), session=loopback_session()))


def token(base: str = "http://localhost") -> str:
    return mint_hs256({"key": "k", "aud": f"{base}/abuseipdb"}, SECRET_KEY)


def ask(app, count: int) -> dict:
    return app.test_client().post("/abuseipdb/deliberate/observables", json=observables(count),
                                  headers={"Authorization": f"Bearer {token()}"}).get_json()


def checks(vendor) -> list:
    return [request for request in vendor.requests if request.path.endswith("/check")]


def test_a_request_ends_with_its_budget_however_many_observables(tmp_path):
    # 16 observables, 4 at a time, 0.4 s a call: 1.6 s without a budget; the budget is 1 s.
    with MisbehavingVendor(slow_abuseipdb(0.4)) as vendor:
        started = time.monotonic()
        answer = ask(relay(vendor, budget=1.0), 16)
        elapsed = time.monotonic() - started
        calls = len(checks(vendor))

    answered = answer["data"]["verdicts"]["count"]
    assert elapsed < 2, elapsed  # the budget and a little mapping, not 1.6 s and more
    assert 4 <= answered <= 8  # the rounds that fit (two, unless the machine is very busy)
    assert calls <= 12  # no call started once the budget was spent (the third round was cut short)
    assert answer["errors"] == [{"code": "timeout", "type": "fatal", "message": (
        f"No answer from AbuseIPDB in time for {16 - answered} of 16 observables: a relay request may take 1 s "
        "(RELAY_REQUEST_BUDGET); ask about fewer at once.")}]


def test_a_spent_budget_starts_no_call_and_says_so():
    """Driven by the runtime's clock, which each vendor call moves 3 s: no real time passes."""
    clock = FrozenClock(datetime(2026, 12, 1, tzinfo=timezone.utc))

    def three_seconds_a_call(request):
        if request.path.endswith("/check"):
            clock.sleep(3)
        return abuseipdb_examples(request)

    with MisbehavingVendor(three_seconds_a_call) as vendor:
        answer = ask(relay(vendor, budget=5.0, spec=dataclasses.replace(SPEC, concurrency=1), clock=clock), 6)
        calls = len(checks(vendor))

    # One at a time: the second call starts with 2 s left and spends them; the other 4 never start.
    assert calls == answer["data"]["verdicts"]["count"] == 2
    assert answer["errors"] == [{"code": "timeout", "type": "fatal", "message": (
        "No answer from AbuseIPDB in time for 4 of 6 observables: a relay request may take 5 s "
        "(RELAY_REQUEST_BUDGET); ask about fewer at once.")}]


def test_the_budget_cuts_a_single_slow_call_to_what_is_left():
    with MisbehavingVendor(slow_abuseipdb(3.0)) as vendor:
        started = time.monotonic()
        answer = ask(relay(vendor, budget=0.6), 1)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed  # the spec's 10 s timeout was cut to the 0.6 s left
    assert answer["errors"] == [{"code": "timeout", "type": "fatal", "message": (
        "No answer from AbuseIPDB in time for 1 of 1 observable: a relay request may take 0.6 s "
        "(RELAY_REQUEST_BUDGET); ask about fewer at once.")}]


@pytest.mark.parametrize(("value", "problem"), [("0", "more than 0"), ("29", "at most 28"), ("inf", "at most 28"),
                                              ("soon", "seconds")])
def test_an_unusable_budget_stops_the_start(value, problem):
    with pytest.raises(ConfigError, match=problem):
        RelayConfig.from_environ({"RELAY_REQUEST_BUDGET": value})


def test_the_default_budget_is_well_under_api_gateways_29_seconds():
    assert RelayConfig.from_environ({}).request_budget == 20
    assert Budget(20, SystemClock()).call_timeout(25) <= 20


# ------------------------------------------------------------------------------------ the client hangs up

@pytest.fixture
def served(request):
    """The relay under Werkzeug's threaded server (as `relay serve` runs it), a slow vendor behind it."""
    with MisbehavingVendor(slow_abuseipdb(0.3)) as vendor:
        spec = dataclasses.replace(SPEC, concurrency=2)
        server = make_server("127.0.0.1", 0, relay(vendor, budget=20, spec=spec), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_port, vendor
        finally:
            server.shutdown()


def raw_request(port: int, body: bytes) -> socket.socket:
    head = (f"POST /abuseipdb/deliberate/observables HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nAuthorization: Bearer {token(f'http://127.0.0.1:{port}')}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    connection = socket.create_connection(("127.0.0.1", port))
    connection.sendall(head.encode() + body)
    return connection


def test_no_vendor_call_starts_after_the_client_hangs_up(served):
    port, vendor = served
    connection = raw_request(port, json.dumps(observables(40)).encode())
    assert wait_until(lambda: len(checks(vendor)) >= 2)  # the relay is at work
    connection.close()
    # 40 calls, 2 at a time, 0.3 s each would take 6 s; wait until the vendor has been quiet a while.
    seen = -1
    while seen != len(checks(vendor)):
        seen = len(checks(vendor))
        time.sleep(0.8)
    assert seen <= 6, seen  # the calls in flight when it hung up, and none after


def test_a_client_that_stays_gets_its_whole_answer(served):
    port, vendor = served
    connection = raw_request(port, json.dumps(observables(4)).encode())
    connection.settimeout(10)
    received = b""
    while b'"verdicts"' not in received or not received.rstrip().endswith(b"}"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    connection.close()
    body = json.loads(received.split(b"\r\n\r\n", 1)[1])
    assert body["data"]["verdicts"]["count"] == 4 and "errors" not in body
    assert len(checks(vendor)) == 4


def test_a_watch_on_a_socket_tells_a_closed_client_from_a_waiting_one():
    from engine.serving.budget import client_socket_watch
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname())
    accepted, _ = server.accept()
    gone = client_socket_watch({"gunicorn.socket": accepted})
    assert gone() is False
    client.close()
    assert wait_until(gone, 2)
    assert client_socket_watch({})() is False  # Lambda: no socket, the budget alone bounds a request
    accepted.close()
    server.close()


def test_answers_that_keep_their_budget_are_unchanged():
    """A quick vendor under the default budget: the same answer as ever, no budget error."""
    with MisbehavingVendor(abuseipdb_examples) as vendor:
        answer = ask(relay(vendor, budget=20), 3)
    assert answer["data"]["verdicts"]["count"] == 3 and "errors" not in answer
