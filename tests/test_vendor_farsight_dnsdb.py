"""Farsight DNSDB end to end: the spec, the real app, a stand-in DNSDB on loopback answering NDJSON.

The stand-in answers with vendors/examples/farsight-dnsdb (written from DNSDB's API docs):
www.example.com has A records (192.0.2.10, 192.0.2.11; 192.0.2.11, 198.51.100.20), an AAAA record
from a zone file (2001:db8::10) and a TXT record; 192.0.2.10 was pointed at by www.example.com
(twice) and mail.example.com. The relay's clock reads 2026-11-28T12:00:00Z.
"""
import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "farsight-dnsdb.yaml")
EXAMPLES = Path(__file__).resolve().parent.parent / "vendors" / "examples" / "farsight-dnsdb"
DOMAIN = [{"type": "domain", "value": "www.example.com"}]
IP = [{"type": "ip", "value": "192.0.2.10"}]
CLAIMS = {"key": "dnsdb-key"}
NINETY_DAYS_AGO = "1788091200"  # 2026-08-30T12:00:00Z


def ndjson(*records) -> CannedAnswer:
    return CannedAnswer(200, "\n".join(json.dumps(r) for r in records).encode(), "application/x-ndjson")


def text(status: int, body: str) -> CannedAnswer:
    return CannedAnswer(status, body.encode(), "text/plain")


def ask(route, body=DOMAIN, routes=(), claims=CLAIMS, **settings):
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"farsight-dnsdb": SPEC}, {"farsight-dnsdb": stand_in.origin})
        got = relay.post(f"/farsight-dnsdb/{route}", body, {**claims, **settings})
        return got.get_json(), stand_in.received


def observe(body=DOMAIN, routes=(), **settings):
    return ask("observe/observables", body, routes, **settings)


def sightings(answer):
    return answer["data"]["sightings"]["docs"]


def resolutions(sighting):
    return [(r["source"]["value"], r["related"]["type"], r["related"]["value"]) for r in sighting["relations"]]


def test_a_domain_gets_one_sighting_of_every_address_it_resolved_to():
    answer, received = observe()
    assert "errors" not in answer
    assert validate_observe_data(answer["data"]) == []
    [sighting] = sightings(answer)
    assert sighting["count"] == 1520 + 36 + 4  # the TXT record is not an address
    assert sighting["description"] == "IP addresses that www.example.com resolves to"
    assert sighting["observed_time"] == {"start_time": "2026-11-28T12:00:00Z", "end_time": "2026-11-28T12:00:00Z"}
    assert sighting["source_uri"] == "https://scout.dnsdb.info/?seed=www.example.com"
    assert resolutions(sighting) == [("www.example.com", "ip", "192.0.2.10"), ("www.example.com", "ip", "192.0.2.11"),
                                     ("www.example.com", "ip", "198.51.100.20"),
                                     ("www.example.com", "ipv6", "2001:db8::10")]
    [call] = received
    assert call.path == "/lookup/rrset/name/www.example.com/"
    # the stray slashes are what the original relay sent, see the spec
    assert parse_qs(call.query) == {"humantime": ["True"], "aggr": ["False//"], "time_last_after": [NINETY_DAYS_AGO]}
    assert (call.headers["X-API-Key"], call.headers["Accept"]) == ("dnsdb-key", "application/json")


def test_an_address_gets_one_sighting_of_the_names_that_resolved_to_it():
    answer, received = observe(IP)
    [sighting] = sightings(answer)
    assert (sighting["count"], sighting["description"]) == (1611, "Hostnames that have resolved to 192.0.2.10")
    assert [(r["source"], r["related"]) for r in sighting["relations"]] == [
        ({"type": "domain", "value": "mail.example.com"}, IP[0]),
        ({"type": "domain", "value": "www.example.com"}, IP[0])]
    assert received[0].path == "/lookup/rdata/ip/192.0.2.10/"


def test_an_ipv6_address_goes_into_the_path_as_it_is():
    _, received = observe([{"type": "ipv6", "value": "2001:db8::10"}])
    assert received[0].path == "/lookup/rdata/ip/2001:db8::10/"


@pytest.mark.parametrize("aggregate", [False, "false"])
def test_without_aggregation_every_record_is_a_sighting_newest_first(aggregate):
    answer, received = observe(AGGREGATE=aggregate)
    assert validate_observe_data(answer["data"]) == []
    docs = sightings(answer)
    assert [s["count"] for s in docs] == [36, 1520, 4]  # last seen 11-27, 11-26, 09-15
    zone, sensor = docs[0], docs[1]
    assert zone["sensor"] == "Zone file import"
    assert zone["observed_time"] == {"start_time": "2026-08-01T16:05:00Z", "end_time": "2026-11-27T16:05:00Z"}
    assert sensor["sensor"] == "Passive DNS replication"
    assert sensor["data"] == {"columns": [{"name": "Bailiwick", "type": "string"}], "rows": [["example.com."]]}
    assert resolutions(sensor) == [("www.example.com", "ip", "192.0.2.10"), ("www.example.com", "ip", "192.0.2.11")]
    assert "time_last_after" not in parse_qs(received[0].query)  # every record, however old


def test_without_aggregation_the_entities_limit_keeps_the_newest_records():
    answer, _ = observe(IP, AGGREGATE=False, CTR_ENTITIES_LIMIT=2)
    docs = sightings(answer)
    assert [s["description"] for s in docs] == ["Hostname that has resolved to 192.0.2.10"] * 2
    assert [s["relations"][0]["source"]["value"] for s in docs] == ["www.example.com", "mail.example.com"]


def test_a_domain_with_no_address_records_gets_nothing():
    txt_only = ndjson({"count": 2, "time_first": "2026-10-01T00:00:00Z", "time_last": "2026-10-02T00:00:00Z",
                       "rrname": "www.example.com.", "rrtype": "TXT", "rdata": ["hello"]})
    answer, _ = observe(routes=[Route("/lookup/rrset/name/", txt_only, prefix=True)])
    assert answer == {"data": {}}


@pytest.mark.parametrize("status, body, expected", [
    (403, "Error: Bad API key", {"code": "authorization error", "message": "Authorization failed: Error: Bad API key"}),
    (401, "Error: Unauthorized", {"code": "unauthorized",
                                  "message": "Unexpected response from Farsight DNSDB: Error: Unauthorized"}),
    (416, "Error: Bad time range", {"code": "invalid argument",
                                    "message": "Unexpected response from Farsight DNSDB: Error: Bad time range"}),
    (429, "Error: Rate limit exceeded", {"code": "too many requests",
                                         "message": "Unexpected response from Farsight DNSDB: Error: Rate limit exceeded"}),
    (418, "Error: Teapot", {"code": "unknown", "message": "Unexpected response from Farsight DNSDB: Error: Teapot"}),
    (503, "Error: Service Unavailable", {"code": "unknown",
                                        "message": "Unexpected response from Farsight DNSDB: Error: Service Unavailable"}),
])
def test_vendor_errors_become_relay_errors(status, body, expected):
    answer, _ = observe(routes=[Route("/lookup/rrset/name/", text(status, body), prefix=True)])
    assert answer == {"errors": [{**expected, "type": "fatal"}]}


def test_not_found_is_no_data():
    answer, _ = observe(routes=[Route("/lookup/rrset/name/", text(404, "Error: no results found"), prefix=True)])
    assert answer == {"data": {}}


def test_observables_are_asked_in_order_and_an_error_keeps_what_was_found_before():
    body = DOMAIN + [{"type": "domain", "value": "gone.example.com"}, {"type": "domain", "value": "late.example.org"},
                     {"type": "domain", "value": "never.example.net"}]
    routes = [Route("/lookup/rrset/name/gone.example.com/", text(404, "Error: no results found")),
              Route("/lookup/rrset/name/late.example.org/", text(429, "Error: Rate limit exceeded"))]
    answer, received = observe(body, routes)
    assert [r.path for r in received] == ["/lookup/rrset/name/www.example.com/", "/lookup/rrset/name/gone.example.com/",
                                          "/lookup/rrset/name/late.example.org/"]
    assert sightings(answer)[0]["observables"] == DOMAIN
    assert answer["errors"] == [{"code": "too many requests", "type": "fatal",
                                 "message": "Unexpected response from Farsight DNSDB: Error: Rate limit exceeded"}]


def test_refer_links_to_scout_without_a_token():
    with StandInVendor([]) as stand_in:
        relay = RelayUnderTest({"farsight-dnsdb": SPEC}, {"farsight-dnsdb": stand_in.origin})
        body = [{"type": "ipv6", "value": "2001:db8::10"}, {"type": "sha256", "value": "0" * 64}]
        answer = relay.post("/farsight-dnsdb/refer/observables", body).get_json()
    assert answer == {"data": [{"id": "ref-farsight-dnsdb-search-ipv6-2001%3Adb8%3A%3A10",
                                "title": "Search for this IPv6", "description": "Lookup this IPv6 on Farsight DNSDB",
                                "url": "https://scout.dnsdb.info/?seed=2001%3Adb8%3A%3A10",
                                "categories": ["Search", "Farsight DNSDB"]}]}
    assert stand_in.received == []


def test_observe_needs_the_key():
    answer, received = ask("observe/observables", DOMAIN, claims={"AGGREGATE": True})
    assert answer["errors"][0]["message"] == "Authorization failed: Wrong JWT payload structure"
    assert received == []


@pytest.mark.parametrize("probe, expected", [
    (None, {"data": {"status": "ok"}}),
    (text(403, "Error: Bad API key"),
     {"errors": [{"code": "authorization error", "message": "Authorization failed: Error: Bad API key", "type": "fatal"}]}),
])
def test_health_looks_up_one_record_of_a_known_name(probe, expected):
    routes = [Route("/lookup/rrset/name/www.farsightsecurity.com/", probe)] if probe else []
    answer, received = ask("health", None, routes)
    assert answer == expected
    assert received[0].path == "/lookup/rrset/name/www.farsightsecurity.com/"
    assert parse_qs(received[0].query) == {"humantime": ["True"], "aggr": ["False/"], "limit": ["1/"]}
