"""Auth0 Signals end to end: the spec, the real app, a stand-in Auth0 Signals on loopback.

The stand-in answers with vendors/examples/auth0-signals (written from Auth0 Signals' API docs):
192.0.2.77 scores -2 overall, -1 for `badip` (on list EXAMPLE-SSH) and -1 for `history`, 0 for
`baddomain`; the list EXAMPLE-SSH is public, of sensitivity 1. Tests that need other reports put
their own answer in front of the examples.
"""
import json
import uuid
from pathlib import Path

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "auth0-signals.yaml")
EXAMPLES = Path(__file__).resolve().parent.parent / "vendors" / "examples" / "auth0-signals"
IP = {"type": "ip", "value": "192.0.2.77"}
CLAIMS = {"key": "0b6e7f3c-5d1a-4c2e-9f8b-2a7d3e4c5b6a"}
WEEK = {"start_time": "2026-11-28T12:00:00Z", "end_time": "2026-12-05T12:00:00Z"}


def report(**changes) -> dict:
    """The example report of 192.0.2.77, with some of its `fullip` fields changed."""
    fullip = json.loads((EXAMPLES / "ip.json").read_text())["fullip"]
    fullip.update(changes)
    return {"fullip": fullip}


def answer(body, status=200) -> CannedAnswer:
    if isinstance(body, (dict, list)):
        return CannedAnswer(status, json.dumps(body).encode())
    return CannedAnswer(status, body.encode(), "text/plain")


def ask(route, body=(IP,), routes=(), claims=CLAIMS):
    """The relay's answer for a route, and the calls Auth0 Signals received."""
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"auth0-signals": SPEC}, {"auth0-signals": stand_in.origin})
        reply = relay.post(f"/auth0-signals/{route}", list(body) if body is not None else None, claims)
        assert reply.status_code == 200
        return reply.get_json(), stand_in.received


def test_observe_makes_a_verdict_judgements_and_one_sighting_per_blocklist():
    reply, received = ask("observe/observables")
    assert "errors" not in reply
    data = reply["data"]
    assert validate_observe_data(data) == []
    assert {key: value["count"] for key, value in data.items()} == \
        {"verdicts": 1, "judgements": 2, "sightings": 1, "indicators": 1, "relationships": 1}

    verdict = data["verdicts"]["docs"][0]
    assert (verdict["disposition"], verdict["disposition_name"], verdict["valid_time"]) == (3, "Suspicious", WEEK)
    judgements = data["judgements"]["docs"]
    assert [j["reason"] for j in judgements] == ["IP found on blocklist", "IP found on blocklist in recent past"]
    assert {j["source_uri"] for j in judgements} == {"https://auth0.com/signals/ip/192.0.2.77-report"}
    assert all(j["valid_time"] == WEEK and j["priority"] == 90 for j in judgements)

    sighting, indicator, link = (data[key]["docs"][0] for key in ("sightings", "indicators", "relationships"))
    assert indicator["id"] == f"transient:indicator-{uuid.uuid5(uuid.NAMESPACE_X500, 'EXAMPLE-SSH Brute Force')}"
    assert (indicator["short_description"], indicator["tags"], indicator["producer"]) == \
        ("Feed: EXAMPLE-SSH Brute Force", ["reputation", "abuse", "bruteforce"], "Example Abuse Reports")
    assert (sighting["severity"], sighting["tlp"], sighting["source_uri"]) == \
        ("High", "white", "https://blocklist.example.org")
    assert sighting["observed_time"] == {"start_time": WEEK["start_time"], "end_time": WEEK["start_time"]}
    assert (link["relationship_type"], link["source_ref"], link["target_ref"]) == \
        ("member-of", sighting["id"], indicator["id"])
    assert link["id"].startswith("transient:relationships-")

    assert [call.path for call in received] == ["/v2.0/ip/192.0.2.77", "/metadata/badip/lists/EXAMPLE-SSH"]
    assert received[0].headers["X-Auth-Token"] == CLAIMS["key"]


def test_lists_of_the_hostname_are_looked_up_after_the_ips_own():
    domain = {"blacklist": ["DOM-A"], "blacklist_mx": ["MX-B"], "blacklist_ns": [], "score": -1}
    spam = {"name": "Example spam domains", "source": "Example Spam Watch", "site": "https://spam.example.com",
            "visibility": "Public", "sensitivity": "5", "tags": "spam", "description": "Spam senders."}
    private = {"name": "Private MX list", "source": "Example Partner", "site": "https://partner.example.com",
               "visibility": "Private", "sensitivity": "10", "tags": "dns,mx", "description": "Partner feed."}
    reply, received = ask("observe/observables", routes=[
        Route("/v2.0/ip/", answer(report(baddomain={"domain": domain, "score": -1})), prefix=True),
        Route("/metadata/baddomain/lists/DOM-A", answer(spam)),
        Route("/metadata/baddomain/lists/MX-B", answer(private))])
    assert [call.path for call in received][1:] == [
        "/metadata/badip/lists/EXAMPLE-SSH", "/metadata/baddomain/lists/DOM-A", "/metadata/baddomain/lists/MX-B"]
    data = reply["data"]
    assert [j["reason"] for j in data["judgements"]["docs"]][0] == "Associated hostname found on blocklist"
    assert [(s["tlp"], s["severity"]) for s in data["sightings"]["docs"]] == \
        [("white", "High"), ("white", "Medium"), ("amber", "Info")]
    assert [i["tags"] for i in data["indicators"]["docs"]] == [["reputation", "abuse", "bruteforce"], ["spam"],
                                                               ["dns", "mx"]]
    sightings = [s["id"] for s in data["sightings"]["docs"]]
    indicators = [i["id"] for i in data["indicators"]["docs"]]
    assert [(r["source_ref"], r["target_ref"]) for r in data["relationships"]["docs"]] == \
        list(zip(sightings, indicators))


def test_the_entities_limit_bounds_the_lists_looked_up():
    lists = report(badip={"score": -2, "blacklists": ["L1", "L2", "L3"]})
    reply, received = ask("observe/observables", routes=[Route("/v2.0/ip/", answer(lists), prefix=True)],
                          claims={**CLAIMS, "CTR_ENTITIES_LIMIT": 2})
    assert [call.path for call in received][1:] == ["/metadata/badip/lists/L1", "/metadata/badip/lists/L2"]
    assert reply["data"]["sightings"]["count"] == 2


def test_a_list_auth0_no_longer_describes_is_left_out():
    lists = report(badip={"score": -1, "blacklists": ["GONE", "EXAMPLE-SSH"]})
    reply, _ = ask("observe/observables", routes=[
        Route("/v2.0/ip/", answer(lists), prefix=True),
        Route("/metadata/badip/lists/GONE", answer("List not found", 404))])
    assert "errors" not in reply
    assert [i["title"] for i in reply["data"]["indicators"]["docs"]] == ["EXAMPLE-SSH Brute Force"]


@pytest.mark.parametrize("score, disposition", [(0, "Unknown"), (-1, "Suspicious"), (-2, "Suspicious"),
                                                ("-3", "Malicious")])
def test_the_overall_score_decides_the_verdict(score, disposition):
    reply, received = ask("deliberate/observables",
                          routes=[Route("/v2.0/ip/", answer(report(score=score)), prefix=True)])
    assert [v["disposition_name"] for v in reply["data"]["verdicts"]["docs"]] == [disposition]
    assert [call.path for call in received] == ["/v2.0/ip/192.0.2.77"]  # no list is looked up for a verdict


def test_an_address_auth0_cannot_read_is_skipped_and_sent_as_the_original_relay_sent_it():
    odd = {"type": "ip", "value": "*@^"}
    reply, received = ask("observe/observables", body=[odd], routes=[
        Route("/v2.0/ip/", answer("Bad IP format:*@^", 400), prefix=True)])
    assert reply == {"data": {}}
    assert [call.path for call in received] == ["/v2.0/ip/*@%5E"]


def test_a_key_that_is_no_uuid_is_an_authorization_error_though_auth0_answers_400():
    reply, _ = ask("deliberate/observables", routes=[
        Route("/v2.0/ip/", answer("Token must be a valid RFC4122 UUID", 400), prefix=True)])
    assert reply == {"data": {}, "errors": [{"code": "authorization error", "type": "fatal",
                                             "message": "Authorization failed: Token must be a valid RFC4122 UUID"}]}


@pytest.mark.parametrize("status, text, code, message", [
    (401, "Unauthorized. API Key not found.", "authorization error",
     "Authorization failed: Unauthorized. API Key not found."),
    (429, "Too many requests, slow down.", "too many requests",
     "Unexpected response from Auth0 Signals: Too many requests, slow down."),
    (503, "upstream unavailable", "service unavailable", "Unexpected response from Auth0 Signals: upstream unavailable"),
])
def test_vendor_errors_become_relay_errors_next_to_empty_data(status, text, code, message):
    reply, _ = ask("observe/observables", routes=[Route("/v2.0/ip/", answer(text, status), prefix=True)])
    assert reply == {"data": {}, "errors": [{"code": code, "message": message, "type": "fatal"}]}


def test_an_error_keeps_what_was_found_for_the_addresses_before_it():
    other = {"type": "ip", "value": "198.51.100.9"}
    reply, _ = ask("deliberate/observables", body=[IP, other], routes=[
        Route("/v2.0/ip/198.51.100.9", answer("Unauthorized. API Key not found.", 401))])
    assert [v["observable"] for v in reply["data"]["verdicts"]["docs"]] == [IP]
    assert reply["errors"] == [{"code": "authorization error", "type": "fatal",
                                "message": "Authorization failed: Unauthorized. API Key not found."}]


def test_health_asks_for_the_callers_own_report():
    reply, received = ask("health", body=None)
    assert reply == {"data": {"status": "ok"}}
    assert [call.path for call in received] == ["/v2.0/ip"]
    reply, _ = ask("health", body=None, routes=[Route("/v2.0/ip", answer("Unauthorized. API Key not found.", 401))])
    assert reply["errors"][0]["message"] == "Authorization failed: Unauthorized. API Key not found."


def test_refer_links_the_report_page_without_a_token_or_a_call():
    reply, received = ask("refer/observables", claims=None)
    assert reply == {"data": [{"id": "ref-auth0-signals-search-ip-192.0.2.77", "title": "Search for this IP",
                               "description": "Lookup this IP on Auth0 Signals",
                               "url": "https://auth0.com/signals/ip/192.0.2.77-report",
                               "categories": ["Search", "Auth0 Signals"]}]}
    assert received == []


def test_respond_offers_nothing_and_triggers_nothing_without_a_token():
    assert ask("respond/observables", body=None, claims=None) == ({"data": []}, [])
    assert ask("respond/trigger", body=None, claims=None) == ({"data": {"status": "failure"}}, [])


def test_bad_input_is_answered_with_empty_data_next_to_the_error():
    reply, received = ask("observe/observables", body=[{"type": "ip"}])
    assert reply == {"data": {}, "errors": [{
        "code": "invalid argument", "type": "fatal",
        "message": "Invalid JSON payload received. {0: {'value': ['Missing data for required field.']}}"}]}
    assert received == []
