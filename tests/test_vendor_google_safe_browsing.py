"""Google Safe Browsing end to end: the spec, the real app, a stand-in Lookup API on loopback.

The stand-in answers threatMatches:find with vendors/examples/google-safe-browsing/threat-matches.json
(written from the Lookup API's documentation): three matches for http://www.example.com/downloads/setup.exe,
UNWANTED_SOFTWARE on WINDOWS cached 300s, MALWARE on LINUX cached 600s, SOCIAL_ENGINEERING on CHROME
cached 150.5s. The relay's clock reads 2026-11-28T12:00:00Z.
"""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "google-safe-browsing.yaml")
NAME = "google-safe-browsing"
FIND = "/v4/threatMatches:find"
LISTED = "http://www.example.com/downloads/setup.exe"
URL = {"type": "url", "value": LISTED}
DOMAIN = {"type": "domain", "value": "example.org"}
CLAIMS = {"key": "test-key"}
REPORT = ("https://transparencyreport.google.com/safe-browsing/search"
          "?url=http:%2F%2Fwww.example.com%2Fdownloads%2Fsetup.exe")


def google_error(status: int, code: str, message: str) -> CannedAnswer:
    return CannedAnswer(status, json.dumps({"error": {"code": status, "message": message, "status": code}}).encode())


def ask(route, body, extra_routes=(), claims=CLAIMS, upstream=None):
    with StandInVendor(list(extra_routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({NAME: SPEC}, {NAME: upstream(stand_in.origin) if upstream else stand_in.origin})
        response = relay.post(f"/{NAME}/{route}", body, claims)
        return response.get_json(), stand_in.received


def entries(request) -> list:
    return [entry["url"] for entry in json.loads(request.body)["threatInfo"]["threatEntries"]]


def test_one_call_asks_about_every_url_and_domain():
    ip = {"type": "ip", "value": "192.0.2.1"}  # not a type Safe Browsing knows: dropped
    _, received = ask("observe/observables", [URL, ip, DOMAIN])
    [call] = received
    assert (call.method, call.path, call.query) == ("POST", FIND, "key=test-key")
    assert call.headers["User-Agent"] == "SecureX Threat Response Integrations <tr-integrations-support@cisco.com>"
    sent = json.loads(call.body)
    assert sent["client"] == {"clientId": "tr-google-safe-browsing-relay", "clientVersion": "2.0.5"}
    assert sent["threatInfo"]["threatEntryTypes"] == ["URL"]
    assert entries(call) == [LISTED, "example.org"]


def test_observe_judges_every_match_gravest_first_and_the_verdict_names_the_gravest():
    answer, _ = ask("observe/observables", [URL, DOMAIN])
    data = answer["data"]
    assert "errors" not in answer
    assert validate_observe_data(data) == []

    judgements = data["judgements"]["docs"]  # the unlisted domain makes nothing
    assert [(j["reason"], j["disposition_name"], j["severity"]) for j in judgements] == [
        ("SOCIAL_ENGINEERING : CHROME", "Malicious", "High"),   # disposition 2, cached 150.5s
        ("MALWARE : LINUX", "Malicious", "High"),               # disposition 2, cached 600s
        ("UNWANTED_SOFTWARE : WINDOWS", "Suspicious", "Medium")]  # disposition 3
    assert [j["valid_time"]["end_time"] for j in judgements] == [
        "2026-11-28T12:02:30.500000Z", "2026-11-28T12:10:00Z", "2026-11-28T12:05:00Z"]
    assert all(j["valid_time"]["start_time"] == "2026-11-28T12:00:00Z" for j in judgements)
    assert all(j["observable"] == URL and j["source_uri"] == REPORT for j in judgements)
    assert {(j["source"], j["confidence"], j["priority"], j["tlp"]) for j in judgements} == \
        {("Google Safe Browsing", "High", 90, "white")}
    assert len({j["id"] for j in judgements}) == 3

    [verdict] = data["verdicts"]["docs"]
    assert verdict["observable"] == URL
    assert (verdict["disposition"], verdict["disposition_name"]) == (2, "Malicious")
    assert verdict["judgement_id"] == judgements[0]["id"]
    assert verdict["valid_time"] == judgements[0]["valid_time"]


def test_deliberate_makes_the_verdict_of_the_gravest_match_alone():
    answer, _ = ask("deliberate/observables", [URL, DOMAIN])
    assert answer == {"data": {"verdicts": {"count": 1, "docs": [{
        "type": "verdict", "observable": URL, "disposition": 2, "disposition_name": "Malicious",
        "valid_time": {"start_time": "2026-11-28T12:00:00Z", "end_time": "2026-11-28T12:02:30.500000Z"}}]}}}


def test_a_value_asked_as_url_and_as_domain_is_sent_once_and_judged_for_both():
    as_domain = {"type": "domain", "value": LISTED}
    answer, received = ask("deliberate/observables", [URL, as_domain])
    assert [entries(call) for call in received] == [[LISTED]]
    assert [v["observable"] for v in answer["data"]["verdicts"]["docs"]] == [URL, as_domain]


def test_nothing_listed_means_no_data():
    answer, _ = ask("observe/observables", [URL, DOMAIN], [Route(FIND, CannedAnswer(200, b"{}"))])
    assert answer == {"data": {}}


def test_values_go_500_a_call():
    many = [{"type": "domain", "value": f"host{n}.example.com"} for n in range(501)]
    answer, received = ask("deliberate/observables", many, [Route(FIND, CannedAnswer(200, b"{}"))])
    assert answer == {"data": {}}
    assert [len(entries(call)) for call in received] == [500, 1]
    assert entries(received[1]) == ["host500.example.com"]


@pytest.mark.parametrize("answer, expected", [
    (google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
     {"code": "invalid argument", "message": "API key not valid. Please pass a valid API key."}),
    (google_error(403, "PERMISSION_DENIED", "Requests to this API are blocked."),
     {"code": "permission denied", "message": "Requests to this API are blocked."}),
    (google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Lookup API requests'."),
     {"code": "resource exhausted", "message": "Quota exceeded for quota metric 'Lookup API requests'."}),
    (google_error(503, "UNAVAILABLE", "The service is currently unavailable."),
     {"code": "unavailable", "message": "The service is currently unavailable."}),
    (CannedAnswer(502, b"<html>Bad Gateway</html>", "text/html"),  # no Google error object: the default
     {"code": "unknown", "message": "Unexpected response from Google Safe Browsing: HTTP 502 Bad Gateway."}),
])
def test_google_errors_are_passed_on_with_their_status_as_the_code(answer, expected):
    result, received = ask("observe/observables", [URL, DOMAIN], [Route(FIND, answer)])
    assert result == {"errors": [{**expected, "type": "fatal"}]}
    assert len(received) == 1  # one call for both observables, one error


def test_a_certificate_that_cannot_be_verified_is_reported_as_such():
    # An https origin served by the plain-http stand-in: the TLS handshake fails.
    result, received = ask("deliberate/observables", [URL], upstream=lambda origin: origin.replace("http:", "https:"))
    [error] = result["errors"]
    assert (error["code"], error["type"]) == ("ssl certificate verification failed", "fatal")
    assert error["message"].startswith("Unable to verify SSL certificate: ") and error["message"].endswith(".")
    assert received == []


def test_refer_links_each_observable_to_the_transparency_report_without_a_token():
    ip = {"type": "ip", "value": "192.0.2.1"}
    answer, received = ask("refer/observables", [DOMAIN, URL, ip], claims=None)
    assert received == []
    assert answer == {"data": [
        {"id": "ref-gsb-search-domain-example.org", "title": "Search for this domain",
         "description": "Check this domain status with Google Safe Browsing",
         "url": "https://transparencyreport.google.com/safe-browsing/search?url=example.org",
         "categories": ["Search", "Google Safe Browsing"]},
        {"id": "ref-gsb-search-url-http%3A%2F%2Fwww.example.com%2Fdownloads%2Fsetup.exe",
         "title": "Search for this URL", "description": "Check this URL status with Google Safe Browsing",
         "url": REPORT, "categories": ["Search", "Google Safe Browsing"]}]}


def test_health_lists_the_threat_lists_with_the_key():
    answer, received = ask("health", None)
    assert answer == {"data": {"status": "ok"}}
    assert [(call.method, call.path, call.query) for call in received] == [("GET", "/v4/threatLists", "key=test-key")]


def test_health_passes_on_a_rejected_key():
    bad_key = google_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
    answer, _ = ask("health", None, [Route("/v4/threatLists", bad_key)])
    assert answer == {"errors": [{"code": "invalid argument", "type": "fatal",
                                  "message": "API key not valid. Please pass a valid API key."}]}


def test_bad_input_and_watchdog_are_worded_like_the_original_relay():
    answer, received = ask("observe/observables", [{"type": "url", "value": ""}], claims=None)
    assert answer == {"errors": [{"code": "invalid argument", "type": "fatal", "message":
                                  'Invalid JSON payload received. {"0": {"value": ["Field may not be blank."]}}.'}]}
    assert received == []
    relay = RelayUnderTest({NAME: SPEC})
    assert relay.client.get(f"/{NAME}/watchdog").get_json() == \
        {"errors": [{"code": "health check failed", "message": "Invalid Health Check.", "type": "fatal"}]}
    assert relay.client.get(f"/{NAME}/watchdog", headers={"Health-Check": "ping"}).get_json() == {"data": "ping"}
