"""Vendor faults: a loopback AbuseIPDB that misbehaves on purpose, and what the relay answers.

Every fault must give the spec's relay error (or a clear default), keep the data gathered for the
other observables of the request, never answer HTTP 500, and never fall through to the engine's
catch-all ("Something went wrong." with a stack trace in the log). The vendor is
tests/support/misbehaving.py: it chooses its behaviour per observable (AbuseIPDB's `ipAddress`),
so one observable can fail while the other succeeds.

AbuseIPDB's timeout is cut to 0.5 s here; timing bounds below are generous "did not hang" checks.
"""
from __future__ import annotations

import dataclasses
import logging
import time
import tracemalloc
from pathlib import Path

import pytest

from engine import load_spec
from engine.serving.runtime import new_session
from engine.serving.vendor_http import MAX_BODY_BYTES, VendorClient, VendorFault, VendorRequest
from tests.support.misbehaving import (
    Answer, Close, Drip, DripHead, Endless, Hang, Later, MisbehavingVendor, Raw, RelayAgainst, by_query, closed_port,
    gzip_bomb, json_answer, loopback_session, make_certificate, redirect, server_context, truncated,
)
from tests.support.tls import make_ca

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "vendors" / "examples" / "abuseipdb"
CHECK = (EXAMPLES / "check.json").read_bytes()
CATEGORIES = (EXAMPLES / "categories.html").read_bytes()
GOOD, BAD = "192.0.2.45", "198.51.100.7"
SPEC = load_spec(ROOT / "vendors" / "abuseipdb.yaml")
FAST = dataclasses.replace(SPEC, http=dataclasses.replace(SPEC.http, timeout=0.5))  # 10 s in the real spec
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(CHECK)
DETAIL = "Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details."
RATE_LIMITED = {"errors": [{"detail": DETAIL, "status": 429}]}


def abuseipdb_plan(fault):
    """The categories page and the check answer, except `fault` for ipAddress=BAD."""
    check = by_query("ipAddress", {BAD: fault}, Answer(200, CHECK))
    return lambda request: Answer(200, CATEGORIES, content_type="text/html") \
        if request.path == "/categories" else check(request)


def error(code: str, message: str) -> dict:
    return {"code": code, "message": message, "type": "fatal"}


def assert_no_catch_all(caplog) -> None:
    """A fault is an expected outcome: it must never reach the engine's catch-all for bugs."""
    crashes = [record for record in caplog.records if record.exc_info]
    assert crashes == [], [record.getMessage() for record in crashes]


# (id, behaviour for BAD, expected relay error); `other` is a second loopback server's origin
# (a host the spec never declared), for the redirect faults.
FAULTS = [
    ("no-answer", lambda other: Hang(),
     error("timeout", "AbuseIPDB did not answer in time: no answer within 0.5 s.")),
    ("status-line-then-silence", lambda other: Hang(b"HTTP/1.1 200 OK\r\n"),
     error("timeout", "AbuseIPDB did not answer in time: no answer within 0.5 s.")),
    # The head dripped 4 bytes at a time: a socket timeout restarts with each piece (it held a
    # request 56 s against a 10 s limit); the deadline covers the whole exchange.
    ("status-line-and-headers-drip", lambda other: DripHead(CHECK),
     error("timeout", "AbuseIPDB did not answer in time: no answer within 0.5 s.")),
    ("a-header-at-a-time", lambda other: DripHead(CHECK, interval=0.4, size=20),
     error("timeout", "AbuseIPDB did not answer in time: no answer within 0.5 s.")),
    ("slow-drip", lambda other: Drip(CHECK, interval=0.05, size=1),
     error("timeout", "AbuseIPDB did not answer in time: no complete answer within 0.5 s.")),
    ("half-body-then-silence", lambda other: Hang(HEAD + CHECK[:100]),
     error("timeout", "AbuseIPDB did not answer in time: no complete answer within 0.5 s.")),
    ("429-with-retry-after", lambda other: json_answer(RATE_LIMITED, 429, headers={"Retry-After": "3600"}),
     error("too many requests", DETAIL)),
    ("429-without-retry-after", lambda other: json_answer(RATE_LIMITED, 429),
     error("too many requests", DETAIL)),
    # The spec's message reads the JSON body; without one the relay says what happened instead.
    ("429-no-body-with-retry-after", lambda other: Answer(429, b"", headers={"Retry-After": "120"}),
     error("too many requests", "Too many requests have been made to AbuseIPDB: retry after 120 seconds.")),
    ("429-no-body-without-retry-after", lambda other: Answer(429, b""),
     error("too many requests", "Too many requests have been made to AbuseIPDB: please, try again later.")),
    ("500", lambda other: Answer(500, b"<h1>Internal Server Error</h1>", content_type="text/html"),
     error("internal error", "The Abuse IPDB internal error.")),
    ("502", lambda other: Answer(502, b""),
     error("service unavailable", "The AbuseIPDB is unavailable. Please, try again later.")),
    ("503", lambda other: Answer(503, b"{}"),
     error("service unavailable", "The AbuseIPDB is unavailable. Please, try again later.")),
    ("504", lambda other: Answer(504, b""),
     error("service unavailable", "The AbuseIPDB is unavailable. Please, try again later.")),
    ("521", lambda other: Answer(521, b""),
     error("web server is down", "The AbuseIPDB web server is down. Please, try again later.")),
    ("599-no-rule", lambda other: Answer(599, b""),
     error("unknown", "Unexpected response from AbuseIPDB: HTTP 599 Unknown.")),
    ("oversized-with-length", lambda other: Answer(200, b" " * (MAX_BODY_BYTES + 1)),
     error("unknown", f"AbuseIPDB: the answer exceeds {MAX_BODY_BYTES} bytes.")),
    ("oversized-endless-chunked", lambda other: Endless(),
     error("unknown", f"AbuseIPDB: the answer exceeds {MAX_BODY_BYTES} bytes.")),
    ("gzip-bomb", lambda other: gzip_bomb(100 * 1024 * 1024),
     error("unknown", f"AbuseIPDB: the answer exceeds {MAX_BODY_BYTES} bytes.")),
    ("redirect-to-another-host", lambda other: redirect(other + "/api/v2/check"),
     error("unknown", "AbuseIPDB: the vendor redirected to another host ({other}), which the relay does not follow.")),
    ("redirect-scheme-relative", lambda other: redirect("//" + other.split("://")[1] + "/x", 307),
     error("unknown", "AbuseIPDB: the vendor redirected to another host ({other}), which the relay does not follow.")),
    ("redirect-forever-same-origin", lambda other: redirect(f"/api/v2/check?ipAddress={BAD}"),
     error("unknown", "AbuseIPDB: too many redirects.")),
    ("closed-without-answer", lambda other: Close(),
     error("connection error", "Unable to connect to AbuseIPDB.")),
    ("reset", lambda other: Close(reset=True),
     error("connection error", "Unable to connect to AbuseIPDB.")),
    ("truncated-body", lambda other: truncated(CHECK[:50], len(CHECK)),
     error("connection error", "Unable to connect to AbuseIPDB.")),
    ("not-http", lambda other: Raw(b"SSH-2.0-OpenSSH_9.6\r\n"),
     error("connection error", "Unable to connect to AbuseIPDB.")),
    ("bad-gzip", lambda other: Answer(200, b"not gzip at all", headers={"Content-Encoding": "gzip"}),
     error("connection error", "Unable to connect to AbuseIPDB.")),
]
# Answers that parse as HTTP but not as what the spec reads: the relay names the vendor and the problem.
UNREADABLE = [
    ("malformed-json", lambda other: Answer(200, b'{"data": {"abuseConfidenceScore": '),
     "AbuseIPDB sent an unexpected answer: the answer is not JSON"),
    ("html-200", lambda other: Answer(200, b"<html>Down for maintenance</html>", content_type="text/html"),
     "AbuseIPDB sent an unexpected answer: the answer is not JSON"),
    ("binary-200", lambda other: Answer(200, bytes(range(256)), content_type="application/octet-stream"),
     "AbuseIPDB sent an unexpected answer: the answer is not JSON"),
    # A 200 carrying an error: AbuseIPDB's spec has a `when: {status: 200, body: body.errors}` rule
    # that reports the vendor's own words.
    ("200-carrying-an-error", lambda other: json_answer({"errors": [{"detail": "Invalid IP", "status": 200}]}),
     "Invalid IP"),
]


@pytest.fixture
def other_host():
    """A second loopback server: redirects must never reach it."""
    with MisbehavingVendor(Answer(200, CHECK)) as other:
        yield other


def expected_for(expected: dict, other_host) -> dict:
    return {**expected, "message": expected["message"].replace("{other}", other_host.origin)}


@pytest.mark.parametrize(("make_fault", "expected"), [row[1:] for row in FAULTS], ids=[row[0] for row in FAULTS])
def test_a_vendor_fault_is_the_specs_relay_error_and_other_data_is_kept(make_fault, expected, other_host, caplog):
    # The fault comes a little late, so the good observable has surely started (the first fatal
    # error stops only observables that have not).
    plan = abuseipdb_plan(Later(make_fault(other_host.origin), 0.1))
    observables = [{"type": "ip", "value": GOOD}, {"type": "ip", "value": BAD}]
    with MisbehavingVendor(plan) as vendor:
        started = time.monotonic()
        answer = RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": vendor.origin}).ask(
            "abuseipdb", "deliberate/observables", observables)
        elapsed = time.monotonic() - started

    assert answer["errors"] == [expected_for(expected, other_host)]
    verdicts = answer["data"]["verdicts"]
    assert verdicts["count"] == 1 and verdicts["docs"][0]["observable"] == {"type": "ip", "value": GOOD}
    assert verdicts["docs"][0]["disposition_name"] == "Malicious"
    assert elapsed < 5  # did not hang: the deadline is 0.5 s (a slow drip once held a request for 65 s)
    assert other_host.connections == 0
    assert_no_catch_all(caplog)


@pytest.mark.parametrize(("make_fault", "prefix"), [row[1:] for row in UNREADABLE], ids=[row[0] for row in UNREADABLE])
def test_an_unreadable_answer_is_a_clear_error_and_other_data_is_kept(make_fault, prefix, caplog):
    observables = [{"type": "ip", "value": GOOD}, {"type": "ip", "value": BAD}]
    with MisbehavingVendor(abuseipdb_plan(Later(make_fault(None), 0.1))) as vendor:
        answer = RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": vendor.origin}).ask(
            "abuseipdb", "observe/observables", observables)

    (problem,) = answer["errors"]
    assert problem["code"] == "unknown" and problem["message"].startswith(prefix), problem
    assert [v["observable"]["value"] for v in answer["data"]["verdicts"]["docs"]] == [GOOD]
    assert answer["data"]["sightings"]["count"] == 3
    assert_no_catch_all(caplog)


@pytest.mark.parametrize("route", ["deliberate/observables", "observe/observables", "health"])
def test_a_refused_connection_is_a_connection_error_for_the_whole_request(route, caplog):
    answer = RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": f"http://127.0.0.1:{closed_port()}"}).ask(
        "abuseipdb", route, [{"type": "ip", "value": GOOD}, {"type": "ip", "value": BAD}])

    # Every call of a vendor goes to one origin, so every observable meets the same fault: one error.
    assert answer == {"errors": [error("connection error", "Unable to connect to AbuseIPDB.")]}
    assert_no_catch_all(caplog)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """Certificates a vendor may present: self-signed, and from a CA the relay's session trusts
    but for another host, or expired."""
    folder = tmp_path_factory.mktemp("vendor-certificates")
    ca_key, ca_cert = make_ca("vendor tests CA")
    ca_path = folder / "ca.pem"
    from cryptography.hazmat.primitives import serialization
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return {
        "ca": ca_path,
        "self-signed": make_certificate(folder, label="self-signed"),
        "other-host": make_certificate(folder, names=("vendor.example",), issuer=(ca_key, ca_cert), label="other"),
        "expired": make_certificate(folder, issuer=(ca_key, ca_cert), expired=True, label="expired"),
        "valid": make_certificate(folder, issuer=(ca_key, ca_cert), label="valid"),
    }


@pytest.mark.parametrize(("certificate", "trust_ca", "reason"), [
    ("self-signed", False, "self-signed certificate"),
    ("self-signed", True, "self-signed certificate"),
    ("other-host", True, "IP address mismatch, certificate is not valid for '127.0.0.1'."),
    ("expired", True, "certificate has expired"),
])
def test_a_certificate_the_relay_cannot_verify_is_refused_before_anything_is_sent(certificates, certificate,
                                                                                 trust_ca, reason, caplog):
    session = loopback_session(verify=str(certificates["ca"]) if trust_ca else True)
    with MisbehavingVendor(abuseipdb_plan(Answer(200, CHECK)), tls=server_context(*certificates[certificate])) \
            as vendor:
        answer = RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": vendor.origin}, session=session).ask(
            "abuseipdb", "observe/observables", [{"type": "ip", "value": GOOD}])
        assert vendor.requests == []  # no request (and no API key) went over the unverified connection

    assert answer == {"errors": [error("unknown", f"Unable to verify SSL certificate: {reason}")]}
    assert_no_catch_all(caplog)


def test_a_certificate_from_the_trusted_ca_is_accepted(certificates):
    """The control for the refusals above: the same server with a good certificate answers."""
    session = loopback_session(verify=str(certificates["ca"]))
    with MisbehavingVendor(abuseipdb_plan(Answer(200, CHECK)), tls=server_context(*certificates["valid"])) as vendor:
        answer = RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": vendor.origin}, session=session).ask(
            "abuseipdb", "deliberate/observables", [{"type": "ip", "value": GOOD}])
        assert vendor.requests[0].headers["key"]  # the credential travelled, over verified TLS only

    assert answer["data"]["verdicts"]["count"] == 1


def test_the_environment_ca_bundle_does_not_make_a_self_signed_vendor_trusted(certificates):
    """The engine's own session (verification on, REQUESTS_CA_BUNDLE honoured) refuses it too."""
    with MisbehavingVendor(Answer(200, CHECK), tls=server_context(*certificates["self-signed"])) as vendor:
        fault = VendorClient(new_session(), private_ok=True).send(VendorRequest("GET", vendor.origin + "/api/v2/check"), 2.0)
    assert fault == VendorFault("ssl", "self-signed certificate")


def test_a_port_that_does_not_speak_tls_is_an_error_not_a_hang(caplog):
    plain_http = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    with MisbehavingVendor(on_connect=plain_http) as vendor:
        started = time.monotonic()
        answer = RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": vendor.origin.replace("http:", "https:")}).ask(
            "abuseipdb", "deliberate/observables", [{"type": "ip", "value": GOOD}])
    (problem,) = answer["errors"]
    assert problem["code"] == "unknown" and problem["message"].startswith("Unable to verify SSL certificate: ")
    assert "?" not in problem["message"] and "/api/v2" not in problem["message"]  # no URL in the text
    assert time.monotonic() - started < 10
    assert_no_catch_all(caplog)


def test_a_fault_in_the_per_request_step_stops_the_request_with_its_error(caplog):
    """/observe first reads the categories page once for all observables; a fault there is the answer."""
    def plan(request):
        if request.path == "/categories":
            return Answer(503, b"")
        return Answer(200, CHECK)
    with MisbehavingVendor(plan) as vendor:
        answer = RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": vendor.origin}).ask(
            "abuseipdb", "observe/observables", [{"type": "ip", "value": GOOD}, {"type": "ip", "value": BAD}])
        assert [request.path for request in vendor.requests] == ["/categories"]
    assert answer == {"errors": [error("service unavailable", "The AbuseIPDB is unavailable. Please, try again later.")]}


def test_a_429_is_answered_at_once_and_never_retried():
    """No waiting for Retry-After inside a request: SecureX would give up first, and a retry
    spends more of the customer's quota."""
    with MisbehavingVendor(abuseipdb_plan(json_answer(RATE_LIMITED, 429, headers={"Retry-After": "3600"}))) as vendor:
        started = time.monotonic()
        answer = RelayAgainst({"abuseipdb": SPEC}, {"abuseipdb": vendor.origin}).ask(
            "abuseipdb", "deliberate/observables", [{"type": "ip", "value": BAD}])
        assert len(vendor.requests) == 1
    assert answer == {"errors": [error("too many requests", DETAIL)]}
    assert time.monotonic() - started < 5  # not 3600 s, and not even the spec's 10 s timeout


def test_redirects_within_the_origin_are_followed_with_the_credential(caplog):
    def plan(request):
        if request.path == "/api/v2/check":
            return redirect(f"/api/v2/moved?ipAddress={request.param('ipAddress')}", 307)
        return Answer(200, CHECK)
    with MisbehavingVendor(plan) as vendor:
        answer = RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": vendor.origin}).ask(
            "abuseipdb", "deliberate/observables", [{"type": "ip", "value": GOOD}])
        assert [r.path for r in vendor.requests] == ["/api/v2/check", "/api/v2/moved"]
        assert all(r.headers["key"] for r in vendor.requests)
    assert answer["data"]["verdicts"]["count"] == 1


def test_a_gzip_bomb_is_cut_off_without_inflating_it():
    """100 MiB of zeros in ~100 KiB of gzip: the relay stops at its limit instead of inflating it all."""
    with MisbehavingVendor(gzip_bomb(100 * 1024 * 1024)) as vendor:
        client = VendorClient(loopback_session(), private_ok=True)
        tracemalloc.start()
        try:
            fault = client.send(VendorRequest("GET", vendor.origin + "/bomb"), 10.0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert fault == VendorFault("oversized", f"the answer exceeds {MAX_BODY_BYTES} bytes")
    assert peak < 4 * MAX_BODY_BYTES  # far below the 100 MiB the body inflates to


def test_the_vendor_client_gives_up_a_drip_at_its_deadline():
    with MisbehavingVendor(Drip(b"x" * 10_000, interval=0.02, size=10)) as vendor:
        started = time.monotonic()
        fault = VendorClient(loopback_session(), private_ok=True).send(VendorRequest("GET", vendor.origin + "/drip"), 0.5)
        elapsed = time.monotonic() - started
    assert fault == VendorFault("timeout", "no complete answer within 0.5 s")
    assert elapsed < 5  # the whole drip would take 20 s


@pytest.fixture
def acme(write_spec):
    """A spec with a rule for a 200 that carries an error, and no rule for 429 (the default applies)."""
    return load_spec(write_spec("""
        spec_version: 1
        name: acme
        title: Acme
        version: 1.0.0
        credentials:
          key: {label: API key}
        observable_types: [ip]
        http:
          base_url: https://api.acme.test
          timeout: 1
          auth:
            headers: {X-Key: "{{ credentials.key }}"}
          errors:
            - when: {status: 200, body: body.error}
              error: {code: unknown, message: "Acme says: {{ body.error.message }}"}
            - when: {fault: connection}
              error: {code: connection error, message: "Acme cannot be reached ({{ fault.message }})"}
        steps:
          lookup: {url: /ip, query: {q: "{{ observable.value }}"}}
        deliberate:
          steps: [lookup]
          verdicts:
            - observable: "{{ observable }}"
              disposition: "{{ lookup.disposition }}"
              valid_time: {}
    """))


@pytest.mark.parametrize(("behaviour", "expected"), [
    (json_answer({"error": {"message": "quota of 10 lookups a day used"}}),
     error("unknown", "Acme says: quota of 10 lookups a day used")),
    (Answer(429, b"", headers={"Retry-After": "30"}),
     error("too many requests", "Too many requests have been made to Acme: retry after 30 seconds.")),
    (Answer(429, b"", headers={"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}),
     error("too many requests", "Too many requests have been made to Acme: retry after Wed, 21 Oct 2026 07:28:00 GMT.")),
    (Answer(429, b"", headers={"Retry-After": "soon"}),
     error("too many requests", "Too many requests have been made to Acme: please, try again later.")),
    (Close(), error("connection error", "Acme cannot be reached (Remote end closed connection without response)")),
], ids=["200-with-error-rule", "default-429-seconds", "default-429-date", "default-429-unusable", "fault-message"])
def test_a_specs_own_rules_and_the_defaults(acme, behaviour, expected):
    good = json_answer({"disposition": 1})
    with MisbehavingVendor(by_query("q", {BAD: Later(behaviour, 0.1)}, good)) as vendor:
        answer = RelayAgainst({"acme": acme}, {"acme": vendor.origin}).ask(
            "acme", "deliberate/observables", [{"type": "ip", "value": GOOD}, {"type": "ip", "value": BAD}])
    assert answer["errors"] == [expected]
    assert answer["data"]["verdicts"]["docs"][0]["observable"]["value"] == GOOD


def test_a_429_rule_can_read_retry_after_whatever_its_case(write_spec):
    spec = load_spec(write_spec("""
        spec_version: 1
        name: acme
        title: Acme
        version: 1.0.0
        observable_types: [ip]
        http:
          base_url: https://api.acme.test
          errors:
            - when: {status: 429}
              error: {code: too many requests, message: "Slow down for {{ headers.\\"retry-after\\" }} s"}
        steps:
          lookup: {url: /ip, query: {q: "{{ observable.value }}"}}
        deliberate:
          steps: [lookup]
          verdicts: [{observable: "{{ observable }}", disposition: 1, valid_time: {}}]
    """))
    for header in ("Retry-After", "RETRY-AFTER", "retry-after"):
        with MisbehavingVendor(Answer(429, b"", headers={header: "17"})) as vendor:
            answer = RelayAgainst({"acme": spec}, {"acme": vendor.origin}).ask(
                "acme", "deliberate/observables", [{"type": "ip", "value": GOOD}])
        assert answer == {"errors": [error("too many requests", "Slow down for 17 s")]}, header


def test_faults_are_logged_without_a_stack_trace(caplog):
    """Faults are the vendor's, not the engine's: nothing in the log looks like an engine crash."""
    caplog.set_level(logging.DEBUG)
    with MisbehavingVendor(abuseipdb_plan(Close(reset=True))) as vendor:
        RelayAgainst({"abuseipdb": FAST}, {"abuseipdb": vendor.origin}).ask(
            "abuseipdb", "observe/observables", [{"type": "ip", "value": BAD}])
    assert_no_catch_all(caplog)
    assert "Traceback" not in caplog.text
