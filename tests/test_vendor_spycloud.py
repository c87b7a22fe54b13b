"""SpyCloud end to end: the spec, the real app, a stand-in SpyCloud on loopback.

The stand-in answers with vendors/examples/spycloud (written from SpyCloud's API docs) unless a test
routes otherwise: two breach records of j.doe@example.com, both from source 40391 ("Example Stealer
Logs", confidence 2, leaked on market.example.net): one published 2026-09-20 (severity 25, seen
twice), one published 2026-08-11 (severity 20).
"""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "spycloud.yaml")
EXAMPLES = Path(__file__).resolve().parent.parent / "vendors" / "examples" / "spycloud"
EMAIL = {"type": "email", "value": "j.doe@example.com"}
CLAIMS = {"key": "sc-key"}
BREACHES = "/enterprise-v2/breach/data/emails/"
CATALOG = "/enterprise-v2/breach/catalog/"


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


def canned(body, status: int = 200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(body).encode() if body is not None else b"")


def record(source_id: int, published: str, **more) -> dict:
    return {"document_id": f"doc-{source_id}-{published[:10]}", "source_id": source_id,
            "email": EMAIL["value"], "email_domain": "example.com", "spycloud_publish_date": published,
            "severity": 2, **more}


def catalog(source_id: int, **more) -> dict:
    found = example("catalog.json")["results"][0]
    return {"cursor": "", "hits": 1, "results": [{**found, "id": source_id, "title": f"Source {source_id}", **more}]}


def ask(route="observe/observables", routes=(), body=(EMAIL,), **claims):
    """The relay's answer, and the paths the stand-in was asked for."""
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"spycloud": SPEC}, {"spycloud": stand_in.origin})
        got = relay.post(f"/spycloud/{route}", list(body) if body is not None else None,
                         {**CLAIMS, **claims}).get_json()
    return got, [r.path for r in stand_in.received]


def docs(answer, kind):
    return answer["data"][kind]["docs"]


def test_a_sighting_per_breach_record_newest_first_and_an_indicator_per_catalog():
    got, paths = ask()
    assert "errors" not in got
    assert validate_observe_data(got["data"]) == []
    # both records come from one source: its catalog is asked for once
    assert paths == [BREACHES + "j.doe@example.com", CATALOG + "40391"]

    newest, older = docs(got, "sightings")
    assert newest["observed_time"] == {"start_time": "2026-09-20T00:00:00.000000Z",
                                       "end_time": "2026-09-20T00:00:00.000000Z"}
    assert older["observed_time"]["start_time"] == "2026-08-11T00:00:00.000000Z"
    assert (newest["count"], older["count"]) == (2, 1)
    assert newest["severity"] == "High"  # severity 25
    assert newest["description"] == "Present in Example Stealer Logs"
    assert newest["source_uri"] == "https://portal.spycloud.com/breach/catalog/5e8b7c6d-4a3b-4c2d-9e1f-0a9b8c7d6e5f"
    assert newest["external_ids"] == ["6f1c2a3e-8b1d-4c2e-9f3a-1d2b3c4d5e6f", "40391",
                                      "0c9e4b2a-5d6f-4a1b-8c7d-2e3f4a5b6c7d"]
    assert newest["relations"] == [{"origin": "Spycloud Breach Module", "relation": "Leaked_From",
                                    "source": EMAIL, "related": {"type": "domain", "value": "market.example.net"}}]
    assert newest["targets"] == [{"type": "email", "observables": [EMAIL], "observed_time": newest["observed_time"]}]

    [indicator] = docs(got, "indicators")
    assert indicator["id"] == "transient:indicator-bc80e5e0-ef41-560d-9c7f-c17df3ca6eda"  # uuid5 of "40391"
    assert indicator["confidence"] == "Medium"  # SpyCloud confidence 2
    assert indicator["external_ids"] == ["40391", "5e8b7c6d-4a3b-4c2d-9e1f-0a9b8c7d6e5f"]
    assert indicator["valid_time"] == {"start_time": "2026-09-20T00:00:00.000000Z"}
    assert indicator["tags"] == ["email", "password", "target_url", "ip_addresses", "infected_machine_id",
                                 "user_browser"]
    assert [ref["url"] for ref in indicator["external_references"]] == [
        "market.example.net", "https://portal.spycloud.com/breach/catalog/5e8b7c6d-4a3b-4c2d-9e1f-0a9b8c7d6e5f"]


def test_the_data_table_is_the_records_other_fields_in_spyclouds_order():
    got, _ = ask()
    table = docs(got, "sightings")[0]["data"]
    assert [column["name"] for column in table["columns"]] == [
        "email", "target_url", "password", "password_plaintext", "password_type", "user_browser",
        "ip_addresses", "infected_time"]
    assert {column["type"] for column in table["columns"]} == {"string"}
    assert table["rows"] == [["j.doe@example.com", "https://login.example.net/signin", "Winter2026!",
                              "Winter2026!", "plaintext", "Google Chrome", ["198.51.100.77"], "2026-09-02 07:14:55"]]


def test_a_source_without_catalog_is_a_warning_next_to_the_data():
    breaches = {"cursor": "", "hits": 3, "results": [
        record(101, "2026-10-01T00:00:00Z"), record(202, "2026-09-01T00:00:00Z"),
        record(202, "2026-08-01T00:00:00Z", sighting=3)]}
    got, paths = ask(routes=[Route(BREACHES, canned(breaches), prefix=True),
                             Route(CATALOG + "101", canned(catalog(101))),
                             Route(CATALOG + "202", canned({"cursor": "", "hits": 0, "results": []}))])
    assert sorted(paths[1:]) == [CATALOG + "101", CATALOG + "202"]  # one call per source
    assert got["errors"] == [{"code": "not found", "message": "SpyCloud did not return results for 202",
                              "type": "warning"}]  # once, though two records come from 202
    sightings = docs(got, "sightings")
    assert [s["description"] for s in sightings] == ["Present in Source 101", "Present in breach", "Present in breach"]
    assert "source_uri" not in sightings[1] and sightings[1]["relations"] == []
    assert [s["severity"] for s in sightings] == ["Low"] * 3  # severity 2
    assert [i["title"] for i in docs(got, "indicators")] == ["Source 101"]


def test_a_catalog_spycloud_refuses_with_400_is_a_missing_catalog_too():
    got, _ = ask(routes=[Route(CATALOG, canned({"message": "Bad Request"}, 400), prefix=True)])
    assert got["errors"] == [{"code": "not found", "message": "SpyCloud did not return results for 40391",
                              "type": "warning"}]
    assert got["data"]["sightings"]["count"] == 2 and "indicators" not in got["data"]


def test_combo_lists_are_medium_severity_whatever_the_record_says():
    got, _ = ask(routes=[Route(CATALOG, canned(catalog(40391, combo_list_flag=True, site="n/a")), prefix=True)])
    sightings = docs(got, "sightings")
    assert [s["severity"] for s in sightings] == ["Medium", "Medium"]
    assert [s["relations"] for s in sightings] == [[], []]  # the site is "n/a": no domain to relate


def test_the_entities_limit_keeps_the_newest_records_and_asks_only_for_their_catalogs():
    breaches = {"cursor": "", "hits": 2, "results": [record(303, "2026-01-05T00:00:00Z"),
                                                      record(404, "2026-06-05T00:00:00Z")]}
    got, paths = ask(routes=[Route(BREACHES, canned(breaches), prefix=True),
                             Route(CATALOG + "404", canned(catalog(404)))], CTR_ENTITIES_LIMIT=1)
    assert paths == [BREACHES + "j.doe@example.com", CATALOG + "404"]
    assert [s["external_ids"][1] for s in docs(got, "sightings")] == ["404"]
    assert [i["title"] for i in docs(got, "indicators")] == ["Source 404"]


def test_the_address_goes_into_the_path_as_it_is():
    _, paths = ask(body=[{"type": "email", "value": "j.doe+alerts@example.com"}])
    assert paths[0] == BREACHES + "j.doe+alerts@example.com"


def test_only_email_addresses_are_looked_up():
    got, paths = ask(body=[{"type": "domain", "value": "example.com"}])
    assert (got, paths) == ({"data": {}}, [])


def test_400_means_spycloud_has_nothing_to_report():
    got, paths = ask(routes=[Route(BREACHES, canned({"message": "Invalid email"}, 400), prefix=True)])
    assert got == {"data": {}}
    assert len(paths) == 1


@pytest.mark.parametrize("status, body, expected", [
    (401, {"message": "Unauthorized"}, {"code": "authorization error", "message": "Authorization failed: Unauthorized"}),
    (403, None, {"code": "authorization error", "message": "Authorization failed: Forbidden"}),  # no body: the reason
    (404, None, {"code": "not found", "message": "The Spycloud not found."}),
    (429, {"message": "Too Many Requests"},
     {"code": "too many requests", "message": "Too many requests have been made to Spycloud. Please, try again later."}),
    (500, None, {"code": "internal error", "message": "The Spycloud internal error."}),
    (503, None, {"code": "unknown", "message": "Unexpected response from Spycloud: HTTP 503 Service Unavailable."}),
])
def test_vendor_errors_become_relay_errors(status, body, expected):
    got, _ = ask(routes=[Route(BREACHES, canned(body, status), prefix=True)])
    assert got == {"errors": [{**expected, "type": "fatal"}]}


def test_an_error_on_a_later_address_keeps_the_data_gathered():
    second = {"type": "email", "value": "second@example.com"}
    got, _ = ask(body=[EMAIL, second],
                 routes=[Route(BREACHES + "second@example.com", canned({"message": "Forbidden"}, 403))])
    assert got["errors"] == [{"code": "authorization error", "message": "Authorization failed: Forbidden",
                              "type": "fatal"}]
    assert got["data"]["sightings"]["count"] == 2 and got["data"]["indicators"]["count"] == 1


def test_health_reads_the_watchlist():
    got, paths = ask("health", body=None)
    assert got == {"data": {"status": "ok"}}
    assert paths == ["/enterprise-v2/watchlist/example.org"]


def test_health_reports_a_key_spycloud_refuses():
    got, _ = ask("health", body=None, routes=[Route("/enterprise-v2/watchlist/example.org",
                                                    canned({"message": "Unauthorized"}, 401))])
    assert got == {"errors": [{"code": "authorization error", "message": "Authorization failed: Unauthorized",
                               "type": "fatal"}]}


def test_a_token_without_the_api_key_is_refused_before_any_call():
    with StandInVendor(routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"spycloud": SPEC}, {"spycloud": stand_in.origin})
        got = relay.post("/spycloud/observe/observables", [EMAIL], {}).get_json()
    assert got == {"errors": [{"code": "authorization error", "message": "Authorization failed: Wrong JWT payload structure",
                               "type": "fatal"}]}
    assert stand_in.received == []
