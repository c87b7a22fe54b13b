"""CyberScan end to end: the spec, the real app, a stand-in CyberScan API on loopback.

The stand-in answers with vendors/examples/cyberscan: an access token; example.com at 192.0.2.80
(its CyberScan page /vulnerabilities/example.com/192.0.2.80); three vulnerabilities on 192.0.2.80
(CVE-2023-0001 High on 443/tcp, a weak-cipher finding without a CVE, CVE-2023-0002 Low on 22/tcp).
The API lives on each customer's own host, which the token names (`host`).
"""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "cyberscan.yaml")
DOMAIN = {"type": "domain", "value": "example.com"}
IP = {"type": "ip", "value": "198.51.100.7"}
HOST = "cyberscan.example.com:8443"
CLAIMS = {"api_key": "cs-key", "host": HOST}
TOKEN = "example-access-token-0123456789"  # vendors/examples/cyberscan/token.json
PAGE = "https://www.cyberscan.io/vulnerabilities/example.com/192.0.2.80"


def answer(body, status=200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(body).encode() if body is not None else b"")


def ask(route, body=(DOMAIN,), routes=(), claims=CLAIMS):
    """Answer from `routes` first, else from the spec's examples."""
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"cyberscan": SPEC}, {"cyberscan": stand_in.origin})
        response = relay.post(f"/cyberscan/{route}", list(body) if body is not None else None, claims)
        return response.get_json(), stand_in.received


def calls(received) -> list:
    return [(r.method, r.path) for r in received]


def test_a_domain_is_looked_up_by_its_address_one_sighting_per_vulnerability():
    result, received = ask("observe/observables")
    assert "errors" not in result
    data = result["data"]
    assert validate_observe_data(data) == []
    assert calls(received) == [("POST", "/api/v1/token"), ("GET", "/api/v1/domain/example.com"),
                               ("GET", "/api/v1/vulnerabilities/ip/192.0.2.80")]
    assert json.loads(received[0].body) == {"key": "cs-key"}
    assert "Authorization" not in received[0].headers  # the API key goes in the login body only
    assert {r.headers["Authorization"] for r in received[1:]} == {f"Bearer {TOKEN}"}

    sightings = data["sightings"]["docs"]
    assert [s["title"] for s in sightings] == ["Example HTTP Server 2.4 Request Smuggling",
                                               "SSL/TLS: Weak Cipher Suites Accepted",
                                               "Example SSH Server Information Disclosure"]
    first = sightings[0]
    assert first["short_description"] == "Vulnerability CVE-2023-0001 observed at CyberScan"
    assert first["description"] == "The web server on this port accepts ambiguous request framing."
    assert (first["source"], first["confidence"], first["count"], first["internal"]) == ("CyberScan", "High", 1, True)
    assert first["observables"] == [DOMAIN]
    assert first["observed_time"] == {"start_time": "2026-11-28T12:00:00Z"}  # the relay's clock
    assert first["schema_version"] == "1.1.11"
    # Every field of the vulnerability, in CyberScan's order, as text.
    assert [c["name"] for c in first["data"]["columns"]] == [
        "name", "family", "description", "severity", "port", "protocol", "cve", "cvss", "confidence"]
    assert {c["type"] for c in first["data"]["columns"]} == {"string"}
    assert first["data"]["rows"] == [["Example HTTP Server 2.4 Request Smuggling", "Web Servers",
                                      "The web server on this port accepts ambiguous request framing.",
                                      "High", "443", "tcp", "CVE-2023-0001", "7.5", "80"]]
    assert sightings[1]["data"]["rows"][0][6:8] == ["", "5"]


def test_an_address_is_looked_up_as_it_is():
    vulnerabilities = answer({"ip": IP["value"], "vulnerabilities": [
        {"name": "Open Telnet", "description": "Telnet is reachable.", "cve": "", "port": 23}]})
    result, received = ask("observe/observables", [IP],
                           [Route("/api/v1/vulnerabilities/ip/198.51.100.7", vulnerabilities)])
    assert calls(received) == [("POST", "/api/v1/token"), ("GET", "/api/v1/vulnerabilities/ip/198.51.100.7")]
    [sighting] = result["data"]["sightings"]["docs"]
    assert (sighting["title"], sighting["observables"]) == ("Open Telnet", [IP])
    assert sighting["data"]["rows"] == [["Open Telnet", "Telnet is reachable.", "", "23"]]


def test_one_login_serves_every_observable_of_a_request():
    result, received = ask("observe/observables", [DOMAIN, IP])
    assert [path for _, path in calls(received)].count("/api/v1/token") == 1
    assert ("GET", "/api/v1/vulnerabilities/ip/198.51.100.7") in calls(received)
    assert result["data"]["sightings"]["count"] == 6


def test_the_entities_limit_keeps_the_first_vulnerabilities():
    result, _ = ask("observe/observables", claims={**CLAIMS, "CTR_ENTITIES_LIMIT": 2})
    assert [s["short_description"] for s in result["data"]["sightings"]["docs"]] == [
        "Vulnerability CVE-2023-0001 observed at CyberScan", "Vulnerability  observed at CyberScan"]


@pytest.mark.parametrize("route, vulnerabilities_asked", [
    (Route("/api/v1/domain/example.com", answer({"domain": "example.com", "ip": None})), False),  # no address
    (Route("/api/v1/domain/example.com", answer({"message": "Not found"}, 404)), False),
    (Route("/api/v1/vulnerabilities/ip/192.0.2.80", answer({"message": "Not found"}, 404)), True),
])
def test_what_cyberscan_has_not_scanned_is_no_error(route, vulnerabilities_asked):
    result, received = ask("observe/observables", routes=[route])
    assert result == {"data": {}}
    asked = [path for _, path in calls(received) if path.startswith("/api/v1/vulnerabilities/")]
    assert asked == (["/api/v1/vulnerabilities/ip/192.0.2.80"] if vulnerabilities_asked else [])


@pytest.mark.parametrize("path, status, body, expected", [
    ("/api/v1/token", 403, {"detail": "Invalid key"},
     {"code": "authorization error", "message": "Authorization failed: wrong api_key"}),
    ("/api/v1/token", 401, None, {"code": "authorization error", "message": "Authorization failed: wrong api_key"}),
    ("/api/v1/vulnerabilities/ip/192.0.2.80", 429, None,
     {"code": "too many requests",
      "message": "Too many requests have been made to CyberScan: please, try again later."}),
    ("/api/v1/domain/example.com", 500, None,
     {"code": "unknown", "message": "Unexpected response from CyberScan: HTTP 500 Internal Server Error."}),
])
def test_vendor_errors_become_relay_errors(path, status, body, expected):
    result, _ = ask("observe/observables", routes=[Route(path, answer(body, status))])
    assert result["errors"] == [{**expected, "type": "fatal"}]
    assert "data" not in result


def test_a_failed_login_asks_nothing_else():
    _, received = ask("observe/observables", [DOMAIN, IP], [Route("/api/v1/token", answer(None, 403))])
    assert calls(received) == [("POST", "/api/v1/token")]


def test_refer_links_to_the_cyberscan_page_of_each_observable():
    ip_page = "https://www.cyberscan.io/vulnerabilities/198.51.100.7"
    routes = [Route("/api/v1/ip/198.51.100.7", answer({"ip": IP["value"], "details_page": ip_page}))]
    result, received = ask("refer/observables", [DOMAIN, IP], routes)
    assert result == {"data": [
        {"id": "ref-cyberscan-search-domain-example.com", "title": "Details for this domain",
         "description": "Details for this domain in the CyberScan", "url": PAGE, "categories": ["CyberScan"]},
        {"id": "ref-cyberscan-search-ip-198.51.100.7", "title": "Details for this ip",
         "description": "Details for this ip in the CyberScan", "url": ip_page, "categories": ["CyberScan"]}]}
    assert sorted(calls(received)) == [("GET", "/api/v1/domain/example.com"), ("GET", "/api/v1/ip/198.51.100.7"),
                                       ("POST", "/api/v1/token")]


def test_refer_makes_no_link_where_cyberscan_has_no_page():
    result, _ = ask("refer/observables", routes=[Route("/api/v1/domain/example.com", answer({}, 404))])
    assert result == {"data": []}


def test_health_only_logs_in():
    result, received = ask("health", None)
    assert result == {"data": {"status": "ok"}}
    assert calls(received) == [("POST", "/api/v1/token")]
    result, _ = ask("health", None, [Route("/api/v1/token", answer(None, 403))])
    assert result["errors"][0]["message"] == "Authorization failed: wrong api_key"


@pytest.mark.parametrize("claims", [{"host": HOST}, {"api_key": "cs-key"}, {"api_key": "cs-key", "host": ""}])
def test_a_token_needs_the_key_and_the_host(claims):
    result, received = ask("observe/observables", claims=claims)
    assert result == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": "Authorization failed: Wrong JWT payload structure"}]}
    assert received == []


def test_the_token_is_checked_before_the_body_is_read():
    with StandInVendor(routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"cyberscan": SPEC}, {"cyberscan": stand_in.origin})
        result = relay.post("/cyberscan/observe/observables", raw=b"not json",
                            claims={"host": HOST}).get_json()
    assert result["errors"][0]["message"] == "Authorization failed: Wrong JWT payload structure"


def test_input_errors_are_answered_as_the_validators_words():
    result, received = ask("observe/observables", [{"type": "ip", "value": ""}])
    assert result == {"errors": [{"code": "invalid argument", "type": "fatal",
                                  "message": "{0: {'value': ['Field may not be blank.']}}"}]}
    assert received == []


def test_a_host_with_a_trailing_slash_is_the_same_host():
    result, received = ask("health", None, claims={**CLAIMS, "host": HOST + "/"})
    assert result == {"data": {"status": "ok"}}
    assert calls(received) == [("POST", "/api/v1/token")]


@pytest.mark.parametrize("host", ["evil.example/x?y", "user@evil.example"])
def test_a_host_that_is_no_host_is_never_called(host):
    result, received = ask("health", None, claims={**CLAIMS, "host": host})
    assert result["errors"][0]["code"] == "connection error"
    assert result["errors"][0]["message"].startswith(
        "Unable to connect to CyberScan, validate the configured API endpoint: https://")
    assert received == []


def test_an_unreachable_host_names_the_configured_endpoint():
    stand_in = StandInVendor([]).start()
    closed = stand_in.origin
    stand_in.stop()  # nothing listens there any more
    relay = RelayUnderTest({"cyberscan": SPEC}, {"cyberscan": closed})
    result = relay.post("/cyberscan/health", None, CLAIMS).get_json()
    assert result == {"errors": [{"code": "connection error", "type": "fatal", "message":
                                  f"Unable to connect to CyberScan, validate the configured API endpoint: "
                                  f"https://{HOST}/api/v1"}]}


def test_a_host_without_a_port():
    result, received = ask("health", None, claims={**CLAIMS, "host": "cyberscan.example.com"})
    assert result == {"data": {"status": "ok"}}
    assert calls(received) == [("POST", "/api/v1/token")]
