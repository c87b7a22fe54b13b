"""The relay API contract: routes, envelopes, input validation, routing by vendor and at the root.

The relay is the real Flask app; the vendor is a stand-in on loopback answering with the spec's
example answers, so every vendor call is real HTTP.
"""
import json

import pytest

from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

CLAIMS = {"key": "secret-api-key", "aud": "http://localhost/abuseipdb"}
IP = [{"type": "ip", "value": "192.0.2.45"}]


@pytest.fixture
def vendor(abuseipdb):
    with StandInVendor(routes_from_examples(abuseipdb)) as stand_in:
        yield stand_in


@pytest.fixture
def relay(abuseipdb, vendor):
    return RelayUnderTest({"abuseipdb": abuseipdb}, {"abuseipdb": vendor.origin})


def test_version_is_not_enveloped_and_needs_no_token(relay):
    answer = relay.post("/abuseipdb/version")
    assert answer.status_code == 200 and answer.get_json() == {"version": "2.0.7"}


def test_watchdog_echoes_the_health_check_header(relay):
    assert relay.client.get("/abuseipdb/watchdog", headers={"Health-Check": "ping-1"}).get_json() == \
        {"data": "ping-1"}
    assert relay.client.get("/abuseipdb/watchdog").get_json() == \
        {"errors": [{"code": "health check failed", "message": "Invalid Health Check", "type": "fatal"}]}


@pytest.mark.parametrize("path", ["/abuseipdb/refer/observables", "/abuseipdb/respond/observables",
                                  "/abuseipdb/respond/trigger", "/abuseipdb/tiles", "/abuseipdb/tiles/tile",
                                  "/abuseipdb/tiles/tile-data", "/nobody/health", "/health", "/no/such/route"])
def test_undeclared_routes_answer_like_cisco_relays(relay, path):
    answer = relay.post(path, IP, CLAIMS)
    assert answer.status_code == 404
    body = answer.get_json()
    assert body["code"] == 404 and body["reason"] == "werkzeug.exceptions.NotFound" and body["message"]


def test_a_wrong_method_is_a_405_in_the_same_shape(relay):
    answer = relay.client.get("/abuseipdb/observe/observables")
    assert answer.status_code == 405
    assert answer.get_json()["reason"] == "werkzeug.exceptions.MethodNotAllowed"


@pytest.mark.parametrize("raw, details", [
    (b"not json", {"_schema": ["Invalid input type."]}),
    (b"", {"_schema": ["Invalid input type."]}),
    (json.dumps({"type": "ip", "value": "1.1.1.1"}), {"_schema": ["Invalid input type."]}),
    (json.dumps([{"type": "ip"}]), {"0": {"value": ["Missing data for required field."]}}),
    (json.dumps([{"value": "1.1.1.1"}]), {"0": {"type": ["Missing data for required field."]}}),
    (json.dumps([{"type": "ip", "value": ""}]), {"0": {"value": ["Field may not be blank."]}}),
    (json.dumps([{"type": " ", "value": "x"}]), {"0": {"type": ["Field may not be blank."]}}),
    (json.dumps([{"type": "ip", "value": 7}]), {"0": {"value": ["Not a valid string."]}}),
    (json.dumps([IP[0], {"type": "ip", "value": "x", "extra": 1}]), {"1": {"extra": ["Unknown field."]}}),
    (json.dumps(["ip"]), {"0": {"_schema": ["Invalid input type."]}}),
])
def test_bad_bodies_are_invalid_argument_errors(relay, vendor, raw, details):
    answer = relay.post("/abuseipdb/observe/observables", raw=raw, claims=CLAIMS)
    assert answer.status_code == 200
    assert answer.get_json() == {"errors": [{
        "code": "invalid argument", "type": "fatal",
        "message": "Invalid JSON payload received. " + json.dumps(details)}]}
    assert vendor.received == []


def test_unsupported_types_are_dropped_before_the_token_is_read(relay, vendor):
    answer = relay.post("/abuseipdb/observe/observables", [{"type": "domain", "value": "example.test"}])
    assert answer.get_json() == {"data": {}}
    assert vendor.received == []


def test_types_are_lower_cased_and_repeats_dropped(relay, vendor):
    body = [{"type": "IP", "value": "192.0.2.45"}, {"type": "ip", "value": "192.0.2.45"}]
    answer = relay.post("/abuseipdb/deliberate/observables", body, CLAIMS).get_json()
    assert answer["data"]["verdicts"]["count"] == 1
    assert len(vendor.received) == 1


def test_credentials_reach_the_vendor_only_on_its_api_origin(relay, vendor):
    relay.post("/abuseipdb/observe/observables", IP, CLAIMS)
    by_path = {request.path: request for request in vendor.received}
    assert by_path["/api/v2/check"].headers["Key"] == "secret-api-key"
    assert by_path["/api/v2/check"].query == "ipAddress=192.0.2.45&maxAgeInDays=30&verbose=true"
    assert "Key" not in by_path["/categories"].headers  # the public categories page gets no key


def test_the_root_serves_relay_vendor_with_the_root_as_audience(abuseipdb, vendor):
    relay = RelayUnderTest({"abuseipdb": abuseipdb}, {"abuseipdb": vendor.origin}, root_vendor="abuseipdb")
    claims = {"key": "k", "aud": "http://localhost"}
    assert relay.post("/deliberate/observables", IP, claims).get_json()["data"]["verdicts"]["count"] == 1
    wrong = relay.post("/deliberate/observables", IP, {"key": "k", "aud": "http://localhost/abuseipdb"})
    assert wrong.get_json()["errors"][0]["message"] == "Authorization failed: Wrong configuration-token-audience"


def test_partial_data_is_kept_next_to_the_error(abuseipdb):
    example = routes_from_examples(abuseipdb)
    limited = Route("/api/v2/check", CannedAnswer(429, b'{"errors": [{"detail": "Slow down", "status": 429}]}'),
                    query=(("ipAddress", "192.0.2.99"),))
    with StandInVendor(example + [limited]) as stand_in:
        relay = RelayUnderTest({"abuseipdb": abuseipdb}, {"abuseipdb": stand_in.origin})
        body = IP + [{"type": "ip", "value": "192.0.2.99"}]
        answer = relay.post("/abuseipdb/deliberate/observables", body, CLAIMS).get_json()
    assert answer["errors"] == [{"code": "too many requests", "message": "Slow down", "type": "fatal"}]
    assert [v["observable"]["value"] for v in answer["data"]["verdicts"]["docs"]] == ["192.0.2.45"]


def test_a_spec_failing_on_live_data_is_a_relay_error_not_a_500(write_spec, caplog):
    from engine import load_spec
    path = write_spec("""
        spec_version: 1
        name: acme
        title: Acme
        version: 1.0.0
        observable_types: [ip]
        http: {base_url: "https://api.acme.test"}
        steps:
          lookup: {url: /ip, query: {q: "{{ observable.value }}"}}
        deliberate:
          steps: [lookup]
          verdicts:
            - observable: "{{ observable }}"
              disposition: 2
              valid_time: {start_time: "{{ time_add(lookup.first_seen, 'P1D') }}"}
    """)
    spec = load_spec(path)
    answer_body = b'{"first_seen": "last tuesday"}'
    with StandInVendor([Route("/ip", CannedAnswer(200, answer_body))]) as stand_in:
        relay = RelayUnderTest({"acme": spec}, {"acme": stand_in.origin})
        answer = relay.post("/acme/deliberate/observables", IP, {})
    assert answer.status_code == 200
    error = answer.get_json()["errors"][0]
    assert error["code"] == "unknown"
    assert "acme.yaml:14 deliberate.verdicts[0].valid_time.start_time" in error["message"]
    assert "not an ISO-8601 time: 'last tuesday'" in error["message"]
    logged = caplog.text
    assert "acme.yaml:14 deliberate.verdicts[0].valid_time.start_time" in logged and "ip 192.0.2.45" in logged
