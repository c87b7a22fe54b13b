"""How answers are shaped, each construct on its own small spec: errors that stop the others or
not, data next to errors, errors without a type, data the mappings cannot read, the watchdog's
words, required settings, a base URL from the token, the token read before the body."""
from __future__ import annotations

import json
import textwrap

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from tests.support.relay import RelayUnderTest
from tests.support.specs import acme_head

SPEC = acme_head() + """%(top)s
steps:
  check:
    url: "/ip/{{ observable.value }}"
deliberate:
  steps: [check]
  verdicts:
    - observable: "{{ observable }}"
      disposition: "{{ required(check.disposition) }}"
      valid_time: {}
"""
IPS = [{"type": "ip", "value": f"192.0.2.{n}"} for n in (1, 2, 3)]


def relay(write_spec, top: str = "", routes=(), text: str = SPEC):
    spec = load_spec(write_spec(textwrap.dedent(text % {"top": textwrap.dedent(top)})))
    vendor = StandInVendor(list(routes)).start()
    return RelayUnderTest({"acme": spec}, {"acme": vendor.origin}), vendor


def answers(status_by_ip: dict):
    return [Route(f"/v1/ip/{ip}", CannedAnswer(status, json.dumps({"disposition": 2}).encode()))
            for ip, status in status_by_ip.items()]


@pytest.mark.parametrize(("top", "asked"), [("concurrency: 1", 2), ("concurrency: 1\non_error: continue", 3)])
def test_an_error_stops_the_rest_unless_the_spec_says_continue(write_spec, top, asked):
    test_relay, vendor = relay(write_spec, top, answers({"192.0.2.1": 200, "192.0.2.2": 500, "192.0.2.3": 200}))
    try:
        answer = test_relay.post("/acme/deliberate/observables", IPS, {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert len(vendor.received) == asked
    assert answer["data"]["verdicts"]["count"] == asked - 1 and len(answer["errors"]) == 1


@pytest.mark.parametrize(("top", "expected"), [
    ("", {"errors": [{"code": "invalid argument", "message": 'Invalid JSON payload received. {"_schema": '
                                                             '["Invalid input type."]}', "type": "fatal"}]}),
    ("data_with_errors: always", {"data": {}, "errors": [{"code": "invalid argument", "message": (
        'Invalid JSON payload received. {"_schema": ["Invalid input type."]}'), "type": "fatal"}]}),
    ("input: {code: invalid_payload, type: none}", {"errors": [{"code": "invalid_payload", "message": (
        'Invalid JSON payload received. {"_schema": ["Invalid input type."]}')}]}),
])
def test_data_next_to_errors_and_errors_without_a_type(write_spec, top, expected):
    test_relay, vendor = relay(write_spec, top)
    try:
        assert test_relay.post("/acme/deliberate/observables", raw=b"not json", claims={"key": "k"}).get_json() == \
            expected
    finally:
        vendor.stop()


def test_never_means_errors_alone_even_with_data_gathered(write_spec):
    test_relay, vendor = relay(write_spec, "concurrency: 1\ndata_with_errors: never",
                               answers({"192.0.2.1": 200, "192.0.2.2": 500}))
    try:
        answer = test_relay.post("/acme/deliberate/observables", IPS[:2], {"key": "k"}).get_json()
    finally:
        vendor.stop()
    assert list(answer) == ["errors"]


@pytest.mark.parametrize(("top", "expected"), [
    ("", "The Acme integration failed at acme.yaml:"),
    ("unexpected_data: {code: key error, message: \"The data structure of Acme has changed.\"}",
     "The data structure of Acme has changed."),
])
def test_an_answer_the_mappings_cannot_read_is_said_in_the_specs_words(write_spec, top, expected):
    routes = [Route("/v1/ip/192.0.2.1", CannedAnswer(200, b'{"verdict": 2}'))]  # no `disposition`
    test_relay, vendor = relay(write_spec, top, routes)
    try:
        (error,) = test_relay.post("/acme/deliberate/observables", IPS[:1], {"key": "k"}).get_json()["errors"]
    finally:
        vendor.stop()
    assert error["message"].startswith(expected)
    assert error["code"] == ("key error" if top else "unknown")


def test_the_watchdog_speaks_the_specs_words(write_spec):
    test_relay, vendor = relay(write_spec, "watchdog: {message: Invalid Health Check.}")
    vendor.stop()
    assert test_relay.client.get("/acme/watchdog").get_json() == {"errors": [{
        "code": "health check failed", "message": "Invalid Health Check.", "type": "fatal"}]}


# ------------------------------------------------------------------------------------ on-premises

ON_PREMISES = SPEC.replace("""credentials:
  key: {label: API key}""", """credentials:
  key: {label: API key}
settings:
  host: {label: API host, type: string, required: true}""").replace(
    "  base_url: https://api.acme.test/v1", """  base_url: "https://{{ settings.host }}/api/v1"
  errors:
    - when: {fault: connection}
      error: {code: connection error, message: "Unable to connect to Acme: validate https://{{ settings.host }}/api/v1"}""")


@pytest.mark.parametrize(("host", "expected"), [
    (None, "Authorization failed: Wrong JWT payload structure"),
    ("", "Authorization failed: Wrong JWT payload structure"),
    ("evil.test/x?y", "Unable to connect to Acme: validate https://evil.test/x?y/api/v1"),
    ("user@evil.test", "Unable to connect to Acme: validate https://user@evil.test/api/v1"),
])
def test_a_host_from_the_token_is_required_and_must_be_a_host(write_spec, host, expected):
    test_relay, vendor = relay(write_spec, text=ON_PREMISES)
    claims = {"key": "k", **({} if host is None else {"host": host})}
    try:
        answer = test_relay.post("/acme/deliberate/observables", IPS[:1], claims).get_json()
    finally:
        vendor.stop()
    assert answer["errors"][0]["message"] == expected and vendor.received == []


@pytest.mark.parametrize("host", ["siem.example.com:8443", "siem.example.com", "192.0.2.9"])
def test_the_base_url_takes_the_tokens_host_and_keeps_the_specs_path(write_spec, host):
    """The upstream override keeps path and query: what reaches the vendor shows the rendered path."""
    routes = [Route("/api/v1/ip/192.0.2.1", CannedAnswer(200, b'{"disposition": 3}'))]
    test_relay, vendor = relay(write_spec, routes=routes, text=ON_PREMISES)
    try:
        answer = test_relay.post("/acme/deliberate/observables", IPS[:1],
                                 {"key": "k", "host": host}).get_json()
    finally:
        vendor.stop()
    assert answer["data"]["verdicts"]["docs"][0]["disposition"] == 3
    assert vendor.received[0].headers["X-Key"] == "k"


def test_a_base_url_template_may_read_only_the_token(write_spec):
    from engine.spec.load import check_file
    text = ON_PREMISES.replace("{{ settings.host }}/api/v1\"\n", "{{ observable.value }}/api/v1\"\n", 1)
    _, problems = check_file(write_spec(textwrap.dedent(text % {"top": ""})))
    assert any("unknown name 'observable'" in problem.message and problem.path == ("http", "base_url")
               for problem in problems), [p.format() for p in problems]


def test_the_token_is_read_before_the_body_when_the_spec_says_so(write_spec):
    test_relay, vendor = relay(write_spec, "read_token_first: true")
    vendor.stop()
    answer = test_relay.post("/acme/deliberate/observables", raw=b"null").get_json()  # no token, no body
    assert answer["errors"][0]["message"] == "Authorization failed: Authorization header is missing"
