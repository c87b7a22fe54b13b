"""AlienVault OTX end to end: the spec, the real app, a stand-in OTX on loopback.

The stand-in answers with vendors/examples/alienvault-otx (written from OTX's API docs): the domain
malware-drop.example.com is named by three pulses, two of which count domains (LOADER and SINKHOLE;
the third holds only URLs and is never read); each pulse's indicator list has the domain's entry,
added 2026-11-18 16:41:03 and expiring 2026-12-18. Tests that need other lists write them here.
"""
import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "alienvault-otx.yaml")
DOMAIN = "malware-drop.example.com"
LOADER, SINKHOLE, URLS_ONLY = "65a1f0c2d4e5b6a7c8d9e0f1", "65b2e1d3c4f5a6b7d8e9f0a2", "65c3d2e4b5a6f7c8e9d0a1b3"
CLAIMS = {"key": "otx-key"}


def json_answer(data, status=200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(data).encode())


def entry(indicator, created, expiration=None):
    return {"id": 1, "indicator": indicator, "type": "domain", "created": created, "content": "", "title": "",
            "description": "", "expiration": expiration, "is_active": 1, "role": None}


def page(*entries, next_page=None):
    return json_answer({"count": len(entries), "previous": None, "next": next_page, "results": list(entries)})


def pulse_list(pulse_id, answer, page_number=None):
    """The stand-in's answer for one pulse's indicator list (for one page of it, when given)."""
    return Route(f"/api/v1/pulses/{pulse_id}/indicators", answer,
                 query=(("page", str(page_number)),) if page_number else ())


def ask(route, observables=({"type": "domain", "value": DOMAIN},), routes=(), **claims):
    """The relay's answer, and the (path, query) of every call the stand-in OTX received."""
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"alienvault-otx": SPEC}, {"alienvault-otx": stand_in.origin})
        got = relay.post(f"/alienvault-otx/{route}", list(observables) if observables is not None else None,
                         {**CLAIMS, **claims}).get_json()
    return got, [(r.path, parse_qs(r.query)) for r in stand_in.received], stand_in.received


def docs(answer, kind):
    return answer["data"][kind]["docs"]


def test_every_pulse_counting_domains_gives_a_sighting_an_indicator_and_a_link_between_them():
    got, calls, received = ask("observe/observables")
    assert "errors" not in got
    assert validate_observe_data(got["data"]) == []
    assert {kind: value["count"] for kind, value in got["data"].items()} == \
        {"sightings": 2, "indicators": 2, "relationships": 2}
    # the pulse of URLs only is left out before its list is asked for
    assert [path for path, _ in calls] == [f"/api/v1/indicators/domain/{DOMAIN}/general",
                                           f"/api/v1/pulses/{LOADER}/indicators",
                                           f"/api/v1/pulses/{SINKHOLE}/indicators"]
    assert calls[1][1] == {"sort": ["-created"], "limit": ["10000"], "page": ["1"]}
    assert all(r.headers["X-OTX-API-KEY"] == "otx-key" for r in received)

    sighting, indicator = docs(got, "sightings")[0], docs(got, "indicators")[0]
    assert {key: sighting[key] for key in ("title", "source_uri", "tlp", "external_ids", "observables",
                                           "observed_time", "confidence", "source")} == {
        "title": "Loader campaign drops stealer via fake invoices",
        "source_uri": f"https://otx.alienvault.com/pulse/{LOADER}", "tlp": "white", "external_ids": [LOADER],
        "observables": [{"type": "domain", "value": DOMAIN}],
        "observed_time": {"start_time": "2026-11-18T16:41:03Z", "end_time": "2026-11-18T16:41:03Z"},
        "confidence": "High", "source": "AlienVault OTX"}
    assert indicator["producer"] == "example-researcher"
    assert indicator["tags"] == ["loader", "stealer", "phishing"]
    assert indicator["valid_time"] == {"start_time": "2026-11-18T16:41:03Z", "end_time": "2026-12-18T00:00:00Z"}
    # the indicator is the pulse: the same id for the same pulse, whatever was looked up
    assert indicator["id"] == "transient:indicator-bc7cbbc5-a747-57f2-bbd3-d1a5ad42c25f"
    # a pulse without a description still describes its sighting and indicator, with ''
    assert docs(got, "sightings")[1]["description"] == docs(got, "indicators")[1]["short_description"] == ""
    links = [(r["source_ref"], r["target_ref"], r["relationship_type"]) for r in docs(got, "relationships")]
    assert links == [(s["id"], i["id"], "member-of")
                     for s, i in zip(docs(got, "sightings"), docs(got, "indicators"))]


def test_a_pulse_list_is_read_page_by_page_until_the_observable_turns_up():
    routes = [pulse_list(LOADER, page(entry("other.example.com", "2026-11-20T00:00:00"),
                                      next_page="https://otx.alienvault.com/api/v1/pulses/x/indicators?page=2"), 1),
              pulse_list(LOADER, page(entry(DOMAIN, "2026-11-02T05:06:07"),
                                      next_page="https://otx.alienvault.com/api/v1/pulses/x/indicators?page=3"), 2),
              pulse_list(SINKHOLE, page(entry("other.example.com", "2026-11-20T00:00:00")))]
    got, calls, _ = ask("observe/observables", routes=routes)
    asked = [(path.split("/")[4], query["page"]) for path, query in calls[1:]]
    assert asked == [(LOADER, ["1"]), (LOADER, ["2"]), (SINKHOLE, ["1"])]  # no page 3: the entry was found
    # SINKHOLE's only page lacks the domain: no sighting from it
    [sighting] = docs(got, "sightings")
    assert sighting["external_ids"] == [LOADER]
    assert sighting["observed_time"]["start_time"] == "2026-11-02T05:06:07Z"
    assert "end_time" not in docs(got, "indicators")[0]["valid_time"]  # no expiration: valid from then on


def test_newest_entries_first_and_no_more_than_the_entities_limit():
    routes = [pulse_list(LOADER, page(entry(DOMAIN, "2026-10-01T00:00:00"))),
              pulse_list(SINKHOLE, page(entry(DOMAIN, "2026-11-01T00:00:00")))]
    both = ask("observe/observables", routes=routes)[0]
    assert [s["external_ids"] for s in docs(both, "sightings")] == [[SINKHOLE], [LOADER]]
    one = ask("observe/observables", routes=routes, CTR_ENTITIES_LIMIT=1)[0]
    assert [s["external_ids"] for s in docs(one, "sightings")] == [[SINKHOLE]]
    assert one["data"]["indicators"]["count"] == one["data"]["relationships"]["count"] == 1


def test_a_pulse_whose_list_cannot_be_read_is_left_out_and_the_others_still_count():
    got, _, _ = ask("observe/observables", routes=[pulse_list(LOADER, json_answer({"detail": "boom"}, 500))])
    assert "errors" not in got
    assert [s["external_ids"] for s in docs(got, "sightings")] == [[SINKHOLE]]


@pytest.mark.parametrize("status, expected", [
    (403, {"code": "authorization error",
           "message": "Authorization failed: Authorization failed on AlienVault OTX side"}),
    (500, {"code": "oops", "message": "Something went wrong. Reason: 500 Internal Server Error."}),
    (429, {"code": "oops", "message": "Something went wrong. Reason: 429 Too Many Requests."}),
])
def test_vendor_errors_become_relay_errors(status, expected):
    failing = Route("/api/v1/indicators/", json_answer({"detail": "no"}, status), prefix=True)
    got, calls, _ = ask("observe/observables", routes=[failing])
    assert got == {"errors": [{**expected, "type": "fatal"}]}
    assert len(calls) == 1


@pytest.mark.parametrize("status", [400, 404])
def test_a_value_otx_does_not_know_finds_nothing(status):
    got, calls, _ = ask("observe/observables", routes=[Route("/api/v1/indicators/", json_answer({}, status),
                                                             prefix=True)])
    assert got == {"data": {}}
    assert len(calls) == 1


def test_every_observable_is_asked_even_after_one_fails_and_what_they_found_comes_with_the_error():
    failing = Route("/api/v1/indicators/IPv4/", json_answer({}, 500), prefix=True)
    got, calls, _ = ask("observe/observables", routes=[failing],
                        observables=[{"type": "ip", "value": "192.0.2.10"}, {"type": "domain", "value": DOMAIN}])
    assert got["errors"] == [{"code": "oops", "message": "Something went wrong. Reason: 500 Internal Server Error.",
                              "type": "fatal"}]
    assert got["data"]["sightings"]["count"] == 2  # the domain's, from the examples
    assert "/api/v1/indicators/IPv4/192.0.2.10/general" in {path for path, _ in calls}


def test_values_keep_at_signs_and_colons_in_the_path_and_email_is_never_looked_up():
    nothing = Route("/api/v1/indicators/", json_answer({}, 404), prefix=True)
    observables = [{"type": "ipv6", "value": "2001:db8::1"}, {"type": "url", "value": "http://example.com/a b"},
                   {"type": "email", "value": "someone@example.com"}, {"type": "sha256", "value": "ab" * 32}]
    _, _, received = ask("observe/observables", observables=observables, routes=[nothing])
    raw = sorted(r.path for r in received)
    assert raw == sorted(["/api/v1/indicators/IPv6/2001:db8::1/general",
                          "/api/v1/indicators/url/http:%2F%2Fexample.com%2Fa%20b/general",
                          f"/api/v1/indicators/file/{'ab' * 32}/general"])


def test_refer_links_every_type_to_its_otx_page_without_a_token():
    relay = RelayUnderTest({"alienvault-otx": SPEC})
    got = relay.post("/alienvault-otx/refer/observables",
                     [{"type": "ipv6", "value": "2001:db8::1"}, {"type": "email", "value": "someone@example.com"},
                      {"type": "user", "value": "admin"}]).get_json()
    assert got == {"data": [
        {"id": "ref-avotx-search-ipv6-2001%3Adb8%3A%3A1", "title": "Search for this IPv6",
         "description": "Lookup this IPv6 on AlienVault OTX", "categories": ["Search", "AlienVault OTX"],
         "url": "https://otx.alienvault.com/indicator/ip/2001:db8::1"},
        {"id": "ref-avotx-search-email-someone%40example.com", "title": "Search for this email",
         "description": "Lookup this email on AlienVault OTX", "categories": ["Search", "AlienVault OTX"],
         "url": "https://otx.alienvault.com/indicator/email/someone@example.com"}]}


@pytest.mark.parametrize("status, expected", [
    (200, {"data": {"status": "ok"}}),
    (403, {"errors": [{"code": "authorization error", "type": "fatal",
                       "message": "Authorization failed: Authorization failed on AlienVault OTX side"}]}),
])
def test_health_asks_who_the_key_belongs_to(status, expected):
    routes = [] if status == 200 else [Route("/api/v1/user/me", json_answer({"detail": "denied"}, status))]
    got, calls, _ = ask("health", observables=None, routes=routes)
    assert got == expected
    assert [path for path, _ in calls] == ["/api/v1/user/me"]
