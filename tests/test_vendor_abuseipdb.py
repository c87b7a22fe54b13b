"""AbuseIPDB end to end: the spec, the real app, a stand-in AbuseIPDB on loopback.

The stand-in answers with vendors/examples/abuseipdb (written from AbuseIPDB's API docs): three
reports, newest first after sorting — 2026-11-27 (categories 18, 22), 2026-11-26 (18, 11),
2026-11-25 (14) — abuse confidence score 92, domain example-hosting.test.
"""
import json
from pathlib import Path

import pytest

from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

EXAMPLES = Path(__file__).resolve().parent.parent / "vendors" / "examples" / "abuseipdb"
IP = [{"type": "ip", "value": "192.0.2.45"}]
AUD = "http://localhost/abuseipdb"


def claims(**more):
    return {"key": "test-key", "aud": AUD, **more}


def check_answer(**changes) -> CannedAnswer:
    data = json.loads((EXAMPLES / "check.json").read_text())
    data["data"].update(changes)
    return CannedAnswer(200, json.dumps(data).encode())


def observe(abuseipdb, extra_routes=(), body=IP, **more_claims):
    with StandInVendor(list(extra_routes) + routes_from_examples(abuseipdb)) as stand_in:
        relay = RelayUnderTest({"abuseipdb": abuseipdb}, {"abuseipdb": stand_in.origin})
        answer = relay.post("/abuseipdb/observe/observables", body, claims(**more_claims)).get_json()
        return answer, stand_in.received


def test_observe_makes_valid_ctim_for_every_report(abuseipdb):
    answer, _ = observe(abuseipdb)
    data = answer["data"]
    assert "errors" not in answer
    assert validate_observe_data(data) == []
    assert {key: value["count"] for key, value in data.items()} == \
        {"verdicts": 1, "judgements": 3, "sightings": 3, "indicators": 4, "relationships": 5}
    verdict = data["verdicts"]["docs"][0]
    assert (verdict["disposition"], verdict["disposition_name"]) == (2, "Malicious")  # score 92 > 85
    assert verdict["valid_time"] == {"start_time": "2026-11-28T12:00:00Z", "end_time": "2026-12-28T12:00:00Z"}


def test_judgements_are_newest_first_with_category_titles_as_reason(abuseipdb):
    judgements = observe(abuseipdb)[0]["data"]["judgements"]["docs"]
    assert [j["reason"] for j in judgements] == ["Brute-Force, SSH", "Brute-Force, Email Spam", "Port Scan"]
    assert judgements[0]["valid_time"] == {"start_time": "2026-11-27T18:42:10.000000Z",
                                           "end_time": "2026-12-04T18:42:10.000000Z"}
    assert all(j["source_uri"] == "https://www.abuseipdb.com/check/192.0.2.45" for j in judgements)


def test_one_indicator_per_category_linked_from_each_sighting(abuseipdb):
    data = observe(abuseipdb)[0]["data"]
    indicators = data["indicators"]["docs"]
    assert [i["external_ids"] for i in indicators] == [["18"], ["22"], ["11"], ["14"]]
    assert indicators[0]["title"] == "Brute-Force"
    sightings = [s["id"] for s in data["sightings"]["docs"]]
    links = [(sightings.index(r["source_ref"]), r["target_ref"]) for r in data["relationships"]["docs"]]
    by_category = {i["external_ids"][0]: i["id"] for i in indicators}
    assert links == [(0, by_category["18"]), (0, by_category["22"]), (1, by_category["18"]),
                     (1, by_category["11"]), (2, by_category["14"])]


def test_a_category_without_description_falls_back_to_its_title(abuseipdb):
    reports = [{"reportedAt": "2026-11-27T18:42:10+00:00", "comment": "x", "categories": [15]}]
    answer, _ = observe(abuseipdb, [Route("/api/v2/check", check_answer(reports=reports))])
    indicator = answer["data"]["indicators"]["docs"][0]
    assert indicator["title"] == indicator["description"] == indicator["short_description"] == "Hacking"


def test_sightings_name_the_domain_only_when_there_is_one(abuseipdb):
    sighting = observe(abuseipdb)[0]["data"]["sightings"]["docs"][0]
    assert sighting["relations"][0]["source"] == {"type": "domain", "value": "example-hosting.test"}
    assert sighting["relations"][0]["related"] == IP[0]
    answer, _ = observe(abuseipdb, [Route("/api/v2/check", check_answer(domain=None))])
    assert "relations" not in answer["data"]["sightings"]["docs"][0]


def test_the_entities_limit_keeps_the_newest_reports(abuseipdb):
    data = observe(abuseipdb, CTR_ENTITIES_LIMIT=1)[0]["data"]
    assert data["judgements"]["count"] == data["sightings"]["count"] == 1
    assert [i["external_ids"][0] for i in data["indicators"]["docs"]] == ["18", "22"]


@pytest.mark.parametrize("limit", [0, -3, "many", None])
def test_an_unusable_limit_means_the_default(abuseipdb, limit):
    assert observe(abuseipdb, CTR_ENTITIES_LIMIT=limit)[0]["data"]["judgements"]["count"] == 3


def test_deliberate_calls_only_the_check_endpoint(abuseipdb):
    with StandInVendor(routes_from_examples(abuseipdb)) as stand_in:
        relay = RelayUnderTest({"abuseipdb": abuseipdb}, {"abuseipdb": stand_in.origin})
        answer = relay.post("/abuseipdb/deliberate/observables", IP, claims()).get_json()
    assert list(answer["data"]) == ["verdicts"]
    assert [r.path for r in stand_in.received] == ["/api/v2/check"]


@pytest.mark.parametrize("status, body, expected", [
    (401, {"errors": [{"detail": "Authentication failed.", "status": 401}]},
     {"code": "authorization error", "message": "Authorization failed: Authentication failed."}),
    (429, {"errors": [{"detail": "Daily rate limit exceeded.", "status": 429}]},
     {"code": "too many requests", "message": "Daily rate limit exceeded."}),
    (503, None, {"code": "service unavailable", "message": "The AbuseIPDB is unavailable. Please, try again later."}),
    (418, None, {"code": "unknown", "message": "Unexpected response from AbuseIPDB: HTTP 418 I'm a Teapot."}),
])
def test_vendor_errors_become_relay_errors(abuseipdb, status, body, expected):
    failing = Route("/api/v2/check", CannedAnswer(status, json.dumps(body).encode() if body else b""))
    answer, _ = observe(abuseipdb, [failing])
    assert answer == {"errors": [{**expected, "type": "fatal"}]}


def test_422_means_nothing_to_report(abuseipdb):
    answer, _ = observe(abuseipdb, [Route("/api/v2/check", CannedAnswer(422, b""))])
    assert answer == {"data": {}}


def test_health_probes_the_check_endpoint(abuseipdb):
    with StandInVendor(routes_from_examples(abuseipdb)) as stand_in:
        relay = RelayUnderTest({"abuseipdb": abuseipdb}, {"abuseipdb": stand_in.origin})
        assert relay.post("/abuseipdb/health", None, claims()).get_json() == {"data": {"status": "ok"}}
    assert stand_in.received[0].query == "ipAddress=192.168.1.100"
