"""Pulsedive end to end: the spec, the real app, a stand-in Pulsedive on loopback.

The stand-in answers with vendors/examples/pulsedive (written from Pulsedive's API docs): the domain
malware.example.com, risk high, last seen 2026-11-20 08:15:42, two risk factors, two threats (linked
2026-10-14 and 2026-11-19), one feed; its links list two addresses linked in the last 90 days (the
relay's clock reads 2026-11-28), one older address and a URL.
"""
import base64
import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "pulsedive.yaml")
EXAMPLES = Path(__file__).resolve().parent.parent / "vendors" / "examples" / "pulsedive"
DOMAIN = [{"type": "domain", "value": "malware.example.com"}]
CLAIMS = {"key": "pd-key"}


def answer(name: str, **changes) -> CannedAnswer:
    data = {**json.loads((EXAMPLES / name).read_text()), **changes}
    return CannedAnswer(200, json.dumps(data).encode())


def pulsedive(info=None, links=None):
    """The stand-in: info.php answers the indicator, or its links when asked `get=links`."""
    return [Route("/api/info.php", info or answer("info.json")),
            Route("/api/info.php", links or answer("links.json"), query=(("get", "links"),))]


def ask(route, routes=None, body=DOMAIN, **claims):
    with StandInVendor(routes or pulsedive()) as stand_in:
        relay = RelayUnderTest({"pulsedive": SPEC}, {"pulsedive": stand_in.origin})
        got = relay.post(f"/pulsedive/{route}", body, {**CLAIMS, **claims}).get_json()
    return got, [parse_qs(r.query) for r in stand_in.received]


def docs(answer, kind):
    return answer["data"][kind]["docs"]


def test_observe_makes_valid_ctim_for_every_risk_factor_threat_and_feed():
    got, queries = ask("observe/observables")
    assert "errors" not in got
    assert validate_observe_data(got["data"]) == []
    assert {kind: value["count"] for kind, value in got["data"].items()} == \
        {"verdicts": 1, "judgements": 1, "sightings": 6, "indicators": 5, "relationships": 5}
    assert queries == [{"indicator": ["malware.example.com"], "key": ["pd-key"]},
                       {"indicator": ["malware.example.com"], "get": ["links"], "key": ["pd-key"]}]
    verdict = docs(got, "verdicts")[0]
    assert (verdict["disposition"], verdict["disposition_name"]) == (2, "Malicious")
    # valid from the last sighting for a quarter of a year (91.25 days), as nothing retired it
    assert verdict["valid_time"] == {"start_time": "2026-11-20T08:15:42Z", "end_time": "2027-02-19T14:15:42Z"}
    judgement = docs(got, "judgements")[0]
    assert (judgement["severity"], judgement["source_uri"]) == ("High", "https://pulsedive.com/indicator/?iid=1234567")


def test_sightings_come_in_order_risk_factors_then_threats_and_feeds_newest_first():
    got, _ = ask("observe/observables")
    assert [s["description"] for s in docs(got, "sightings")] == [
        "found in threat feeds", "newly registered domain", "Threat: Example Phishing Kit",
        "Threat: Example Loader", "Feed: Example Blocklist ", "Active DNS"]
    threat = docs(got, "sightings")[2]
    assert threat["observed_time"] == {"start_time": "2026-11-19T06:45:12Z", "end_time": "2026-11-19T06:45:12Z"}
    assert threat["source_uri"] == "https://pulsedive.com/threat/?tid=305"
    assert "severity" not in docs(got, "sightings")[4]  # a feed says nothing about severity
    feed = docs(got, "indicators")[4]
    assert (feed["producer"], feed["tags"], feed["source_uri"]) == \
        ("Example Research", ["general"], "https://pulsedive.com/feed/?fid=42")


def test_each_sighting_points_at_its_indicator():
    got, _ = ask("observe/observables")
    sightings = [s["id"] for s in docs(got, "sightings")]
    indicators = [i["id"] for i in docs(got, "indicators")]
    links = [(sightings.index(r["source_ref"]), indicators.index(r["target_ref"]), r["relationship_type"])
             for r in docs(got, "relationships")]
    assert links == [(0, 0, "sighting-of"), (1, 1, "sighting-of"), (2, 2, "sighting-of"),
                     (3, 3, "sighting-of"), (4, 4, "member-of")]
    # indicator ids name what they stand for, so the same risk factor is the same indicator everywhere
    assert ask("observe/observables")[0]["data"]["indicators"]["docs"][0]["id"] == indicators[0]


def test_active_dns_relates_the_domain_to_addresses_linked_in_the_last_90_days():
    got, _ = ask("observe/observables")
    active_dns = docs(got, "sightings")[5]
    assert [(r["source"], r["related"]) for r in active_dns["relations"]] == [
        ({"type": "domain", "value": "malware.example.com"}, {"type": "ip", "value": "192.0.2.77"}),
        ({"type": "domain", "value": "malware.example.com"}, {"type": "ipv6", "value": "2001:db8::77"})]
    assert active_dns["relations"][0]["origin"] == "Pulsedive Enrichment Module"


def test_an_address_is_related_from_the_domains_it_served():
    info = answer("info.json", type="ip", indicator="192.0.2.77", riskfactors=[], threats=[], feeds=[])
    links = CannedAnswer(200, json.dumps({"Active DNS": [
        {"iid": 7, "indicator": "malware.example.com", "type": "domain", "stamp_linked": "2026-11-20 08:15:42"},
        {"iid": 8, "indicator": "192.0.2.78", "type": "ip", "stamp_linked": "2026-11-20 08:15:42"}]}).encode())
    got, _ = ask("observe/observables", pulsedive(info, links), body=[{"type": "ip", "value": "192.0.2.77"}])
    [sighting] = docs(got, "sightings")
    assert [(r["source"], r["related"]) for r in sighting["relations"]] == [
        ({"type": "domain", "value": "malware.example.com"}, {"type": "ip", "value": "192.0.2.77"})]


def test_the_indicator_pulsedive_answers_with_is_the_one_reported():
    info = answer("info.json", indicator="landing.example.net", iid=99)
    got, queries = ask("observe/observables", pulsedive(info))
    assert docs(got, "verdicts")[0]["observable"] == {"type": "domain", "value": "landing.example.net"}
    assert all(s["observables"] == [{"type": "domain", "value": "landing.example.net"}] for s in docs(got, "sightings"))
    assert queries[1]["indicator"] == ["landing.example.net"]  # its links are asked about it too


@pytest.mark.parametrize("limit, sightings, asks_links", [(2, 2, False), (5, 5, True), (6, 6, True)])
def test_the_entities_limit_caps_sightings_and_spares_the_links_call_when_full(limit, sightings, asks_links):
    got, queries = ask("observe/observables", CTR_ENTITIES_LIMIT=limit)
    assert got["data"]["sightings"]["count"] == sightings
    assert got["data"]["indicators"]["count"] == min(limit, 5)
    assert (len(queries) == 2) is asks_links
    assert ("Active DNS" in [s["description"] for s in docs(got, "sightings")]) is (limit == 6)


def test_a_retired_indicator_without_risk_is_unknown_until_its_retirement():
    info = answer("info.json", risk="none", retired="No recent activity", stamp_retired="2026-11-25 00:00:00")
    got, _ = ask("observe/observables", pulsedive(info))
    verdict = docs(got, "verdicts")[0]
    assert (verdict["disposition_name"], verdict["valid_time"]["end_time"]) == ("Unknown", "2026-11-25T00:00:00Z")
    assert docs(got, "judgements")[0]["severity"] == "Unknown"
    assert docs(got, "indicators")[2]["severity"] == "None"  # threats carry the risk as Pulsedive sent it


def test_an_active_indicator_without_risk_is_clean():
    got, _ = ask("observe/observables", pulsedive(answer("info.json", risk="none")))
    assert docs(got, "verdicts")[0]["disposition_name"] == "Clean"


def test_an_answer_missing_a_field_every_indicator_has_is_reported_as_a_broken_module():
    info = json.loads((EXAMPLES / "info.json").read_text())
    del info["stamp_retired"]
    got, _ = ask("observe/observables", pulsedive(CannedAnswer(200, json.dumps(info).encode())))
    assert got == {"errors": [{"code": "key error", "type": "fatal",
                               "message": "The data structure of Pulsedive API has changed. The module is broken."}]}


@pytest.mark.parametrize("status, body, expected", [
    (408, {"error": "Request(s) still processing.", "status": "processing"},
     {"code": "request timeout", "message": "Request(s) still processing."}),
    (429, {"error": "Rate limit exceeded."}, {"code": "too many requests", "message": "Rate limit exceeded."}),
    (500, None, {"code": "internal server error", "message": "The Pulsedive API error."}),
])
def test_vendor_errors_become_relay_errors_named_by_the_http_reason(status, body, expected):
    failing = CannedAnswer(status, json.dumps(body).encode() if body else b"<html>oops</html>", "text/html")
    got, _ = ask("observe/observables", pulsedive(failing))
    assert got == {"errors": [{**expected, "type": "fatal"}]}


def test_a_value_pulsedive_does_not_know_gives_nothing():
    missing = CannedAnswer(404, b'{"error": "Indicator not found."}')
    assert ask("observe/observables", pulsedive(missing))[0] == {"data": {}}


def test_links_pulsedive_does_not_have_leave_the_rest():
    got, _ = ask("observe/observables", pulsedive(links=CannedAnswer(404, b'{"error": "Not found."}')))
    assert got["data"]["sightings"]["count"] == 5
    assert "Active DNS" not in [s["description"] for s in docs(got, "sightings")]


def test_refer_links_to_a_search_and_to_the_indicator_page():
    got, queries = ask("refer/observables")
    search, browse = got["data"]
    assert search["id"] == "ref-pulsedive-search-domain-malware.example.com"
    assert search["title"] == "Search for this domain"
    query = json.loads(base64.b64decode(search["url"].split("?q=", 1)[1]))
    assert query["indicator"][0]["raw"] == {"type": "indicator", "value": "malware.example.com"}
    assert browse == {"id": "ref-pulsedive-detail-domain-malware.example.com", "title": "Browse domain",
                      "description": "Browse this domain on Pulsedive", "categories": ["Browse", "Pulsedive"],
                      "url": "https://pulsedive.com/indicator/?iid=1234567"}
    assert queries == [{"indicator": ["malware.example.com"], "key": ["pd-key"]}]


def test_refer_still_links_to_a_search_for_a_value_pulsedive_does_not_know():
    got, _ = ask("refer/observables", pulsedive(CannedAnswer(404, b'{"error": "Indicator not found."}')),
                 body=[{"type": "url", "value": "http://new.example.org/a b"}])
    [search] = got["data"]
    assert search["title"] == "Search for this URL"
    assert search["id"] == "ref-pulsedive-search-url-http%3A%2F%2Fnew.example.org%2Fa%20b"


def test_unsupported_types_need_no_token_and_call_nothing():
    with StandInVendor(pulsedive()) as stand_in:
        relay = RelayUnderTest({"pulsedive": SPEC}, {"pulsedive": stand_in.origin})
        body = [{"type": "sha256", "value": "0" * 64}]
        assert relay.post("/pulsedive/observe/observables", body).get_json() == {"data": {}}
        assert relay.post("/pulsedive/refer/observables", body).get_json() == {"data": []}
    assert stand_in.received == []


@pytest.mark.parametrize("probe, expected", [
    (answer("info.json"), {"data": {"status": "ok"}}),
    (CannedAnswer(401, b'{"error": "Invalid API key."}'),
     {"errors": [{"code": "unauthorized", "message": "Invalid API key.", "type": "fatal"}]}),
])
def test_health_looks_up_an_indicator_by_id_with_the_key(probe, expected):
    got, queries = ask("health", [Route("/api/info.php", probe)], body=None)
    assert got == expected
    assert queries == [{"iid": ["2"], "key": ["pd-key"]}]
