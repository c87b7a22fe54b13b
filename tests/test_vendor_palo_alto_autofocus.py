"""Palo Alto AutoFocus end to end: the spec, the real app, a stand-in AutoFocus on loopback.

The stand-in answers GET /api/v1.0/tic with TIC summaries written here and in
vendors/examples/palo-alto-autofocus (from AutoFocus's API documentation): a domain whose latest
PAN-DB verdict is PHISHING.
"""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "palo-alto-autofocus.yaml")
TIC = "/api/v1.0/tic"
DOMAIN = {"type": "domain", "value": "login-update.example.com"}
SHA256 = {"type": "sha256", "value": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
URL = {"type": "url", "value": "http://www.example.com/a b/login"}
CLAIMS = {"key": "af-key"}


def tic(verdicts: dict) -> CannedAnswer:
    """A TIC summary whose indicator carries these latest verdicts (WF_SAMPLE, PAN_DB)."""
    body = {"indicator": {"indicatorValue": "x", "indicatorType": "FILEHASH", "latestPanVerdicts": verdicts,
                          "seenByDataSourceIds": list(verdicts)}, "tags": []}
    return CannedAnswer(200, json.dumps(body).encode())


def call(route, body, answer: CannedAnswer | None = None, claims=CLAIMS):
    routes = [Route(TIC, answer)] if answer else routes_from_examples(SPEC)
    with StandInVendor(routes) as stand_in:
        relay = RelayUnderTest({"palo-alto-autofocus": SPEC}, {"palo-alto-autofocus": stand_in.origin})
        return relay.post(f"/palo-alto-autofocus/{route}", body, claims).get_json(), stand_in.received


def test_a_phishing_domain_gets_a_malicious_judgement_and_verdict_for_a_week():
    answer, received = call("observe/observables", [DOMAIN])
    data = answer["data"]
    assert validate_observe_data(data) == []
    [judgement], [verdict] = data["judgements"]["docs"], data["verdicts"]["docs"]
    assert (judgement["disposition"], judgement["disposition_name"]) == (2, "Malicious")
    assert judgement["reason"] == "PHISHING in AutoFocus"
    assert judgement["source_uri"] == \
        "https://autofocus.paloaltonetworks.com/#/search/indicator/domain/login-update.example.com"
    assert judgement["valid_time"] == {"start_time": "2026-11-28T12:00:00Z", "end_time": "2026-12-05T12:00:00Z"}
    assert verdict["judgement_id"] == judgement["id"] and verdict["valid_time"] == judgement["valid_time"]
    [request] = received
    assert request.path == TIC
    assert request.query == "indicatorType=domain&indicatorValue=login-update.example.com&includeTags=true"
    assert request.headers["apiKey"] == "af-key"


@pytest.mark.parametrize("verdicts, disposition", [
    ({"WF_SAMPLE": "GRAYWARE", "PAN_DB": "BENIGN"}, "Suspicious"),  # WildFire's verdict comes first
    ({"WF_SAMPLE": "", "PAN_DB": "C2"}, "Malicious"),              # an empty one gives way to PAN-DB's
    ({"PAN_DB": "BENIGN"}, "Clean"),
])
def test_wildfire_decides_before_pan_db_and_a_file_verdict_never_expires(verdicts, disposition):
    answer, received = call("observe/observables", [SHA256], tic(verdicts))
    [judgement] = answer["data"]["judgements"]["docs"]
    assert judgement["disposition_name"] == disposition
    assert judgement["valid_time"]["end_time"] == "2525-01-01T00:00:00Z"
    assert judgement["source_uri"].endswith("/indicator/sha256/" + SHA256["value"])
    assert "indicatorType=filehash" in received[0].query


def test_a_url_page_quotes_the_whole_url_and_opens_its_summary():
    answer, _ = call("observe/observables", [URL], tic({"PAN_DB": "MALWARE"}))
    assert answer["data"]["judgements"]["docs"][0]["source_uri"] == (
        "https://autofocus.paloaltonetworks.com/#/search/indicator/url/"
        "http%3A%2F%2Fwww.example.com%2Fa%20b%2Flogin/summary")


def test_an_answer_without_a_known_verdict_means_autofocus_changed_its_format():
    answer, _ = call("observe/observables", [DOMAIN], CannedAnswer(200, b'{"indicator": {"latestPanVerdicts": {}}}'))
    assert answer == {"errors": [{"code": "internal error", "type": "fatal",
                                  "message": "The data structure of AutoFocus has changed. The module is broken."}]}


@pytest.mark.parametrize("status, body, expected", [
    (401, b"", {"code": "authorization error", "message": "Authorization failed: wrong AutoFocus credentials"}),
    (409, b"API key not activated", {"code": "authorization error",
                                     "message": "Authorization failed: API key not activated"}),
    (429, b"", {"code": "too many requests",
                "message": "Too many requests have been made to Autofocus. Please, try again later."}),
    (502, b"", {"code": "internal error", "message": "The Autofocus is unavailable. Please, try again later."}),
    (400, b"bad indicator", {"code": "Bad Request", "message": "Unexpected response from AutoFocus: bad indicator"}),
])
def test_vendor_errors_become_relay_errors(status, body, expected):
    answer, _ = call("observe/observables", [DOMAIN], CannedAnswer(status, body, "text/plain"))
    assert answer == {"errors": [{**expected, "type": "fatal"}]}


def test_an_indicator_autofocus_never_saw_is_no_error_even_the_health_domain():
    # The original relay reported a 404 for cisco.com (its health probe's domain) as an error even
    # here; the spec waives that (see the 404 rule): an unknown indicator is simply not reported.
    for observable in (DOMAIN, {"type": "domain", "value": "cisco.com"}):
        answer, _ = call("observe/observables", [observable], CannedAnswer(404, b""))
        assert answer == {"data": {}}


@pytest.mark.parametrize("status, expected", [
    (200, {"data": {"status": "ok"}}),
    (404, {"errors": [{"code": "not found", "message": "Autofocus not founded.", "type": "fatal"}]}),
])
def test_health_looks_up_a_well_known_domain(status, expected):
    answer, received = call("health", None, CannedAnswer(status, b"{}"))
    assert answer == expected
    assert received[0].query == "indicatorType=domain&indicatorValue=cisco.com&includeTags=true"


def test_refer_links_every_supported_type_without_a_token_or_a_call():
    answer, received = call("refer/observables", [DOMAIN, URL, {"type": "md5", "value": "x"}], claims=None)
    assert [ref["url"] for ref in answer["data"]] == [
        "https://autofocus.paloaltonetworks.com/#/search/indicator/domain/login-update.example.com",
        "https://autofocus.paloaltonetworks.com/#/search/indicator/url/http%3A%2F%2Fwww.example.com%2Fa%20b%2Flogin/summary"]
    assert answer["data"][1]["title"] == "Search for this URL"
    assert received == []
