"""Have I Been Pwned end to end: the spec, the real app, a stand-in HIBP on loopback.

The stand-in answers with vendors/examples/have-i-been-pwned (written from HIBP's API docs): three
breaches for alice@example.com, newest first after sorting: ExampleShop (2023-08-21, verified,
passwords leaked), ExampleSpamList (2021-01-10, unverified, no domain), ExampleForum (2019-03-14,
verified, no passwords).
"""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.misbehaving import Answer, MisbehavingVendor, RelayAgainst, make_certificate, server_context
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "have-i-been-pwned.yaml")
EXAMPLES = ROOT / "vendors" / "examples" / "have-i-been-pwned"
ALICE = {"type": "email", "value": "alice@example.com"}
BOB = {"type": "email", "value": "bob@example.com"}
ACCOUNT = "/api/v3/breachedaccount/"
CLAIMS = {"key": "hibp-test-key", "aud": "http://localhost/have-i-been-pwned"}


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


def answer(status: int, body=None) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(body).encode() if body is not None else b"")


def ask(route: str, body=(ALICE,), routes=(), claims=CLAIMS):
    """The relay's answer to POST /have-i-been-pwned/<route>, and the calls the stand-in received."""
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"have-i-been-pwned": SPEC}, {"have-i-been-pwned": stand_in.origin})
        reply = relay.post(f"/have-i-been-pwned/{route}", list(body) if body is not None else None, claims)
        return reply.get_json(), stand_in.received


def test_every_breach_makes_an_indicator_a_sighting_and_their_link():
    reply, received = ask("observe/observables")
    assert "errors" not in reply
    data = reply["data"]
    assert validate_observe_data(data) == []
    assert {key: value["count"] for key, value in data.items()} == \
        {"indicators": 3, "sightings": 3, "relationships": 3}
    indicators, sightings = data["indicators"]["docs"], data["sightings"]["docs"]
    # newest breach first
    assert [i["title"] for i in indicators] == ["ExampleShop", "ExampleSpamList", "ExampleForum"]
    assert [s["observed_time"]["start_time"] for s in sightings] == \
        ["2023-08-21T00:00:00Z", "2021-01-10T00:00:00Z", "2019-03-14T00:00:00Z"]
    links = [(r["source_ref"], r["target_ref"]) for r in data["relationships"]["docs"]]
    assert links == [(s["id"], i["id"]) for s, i in zip(sightings, indicators)]
    assert {r["relationship_type"] for r in data["relationships"]["docs"]} == {"sighting-of"}
    # one call, the address percent-encoded in the path, whole records asked for
    [call] = received
    assert (call.path, call.query) == (ACCOUNT + "alice%40example.com", "truncateResponse=false")
    assert call.headers["hibp-api-key"] == "hibp-test-key"
    assert call.headers["User-Agent"] == "SecureX Threat Response Integrations (tr-integrations-support@cisco.com)"


def test_an_indicator_describes_its_breach_in_markdown():
    shop = ask("observe/observables")[0]["data"]["indicators"]["docs"][0]
    assert shop["id"] == "transient:indicator-9ce439e9-7bc2-565f-bb86-f14bee1c2cb0"  # uuid5 of the Name
    assert shop["short_description"] == "Example Shop"
    assert shop["description"] == (
        "In August 2023, the online store **Example Shop** suffered a data breach that exposed customer "
        "records, including *unsalted* password hashes. The data was "
        "[later sold online](https://www.example.org/shop-breach).")
    assert shop["tags"] == ["Email addresses", "Names", "Passwords", "Phone numbers"]
    assert shop["valid_time"] == {"start_time": "2023-08-21T00:00:00Z"}
    assert (shop["producer"], shop["source"], shop["tlp"]) == \
        ("Have I Been Pwned", "Have I Been Pwned Breaches", "white")


def test_verification_and_leaked_passwords_decide_confidence_and_severity():
    data = ask("observe/observables")[0]["data"]
    by_title = {i["title"]: (i["confidence"], i["severity"]) for i in data["indicators"]["docs"]}
    assert by_title == {"ExampleShop": ("High", "High"),        # verified, passwords leaked
                        "ExampleSpamList": ("Medium", "Medium"),  # unverified
                        "ExampleForum": ("High", "Medium")}     # verified, no passwords
    assert [(s["confidence"], s["severity"]) for s in data["sightings"]["docs"]] == \
        [("High", "High"), ("Medium", "Medium"), ("High", "Medium")]


def test_a_sighting_names_the_leaking_domain_only_when_hibp_gives_one():
    shop, spam_list, _ = ask("observe/observables")[0]["data"]["sightings"]["docs"]
    assert shop["description"] == "alice@example.com present in Example Shop breach."
    assert shop["source_uri"] == "https://haveibeenpwned.com/account/alice%40example.com"
    assert shop["targets"] == [{"type": "email", "observables": [ALICE], "observed_time": shop["observed_time"]}]
    assert shop["relations"] == [{
        "origin": "Have I Been Pwned", "origin_uri": "https://haveibeenpwned.com/account/alice%40example.com",
        "relation": "Leaked_From", "source": ALICE, "related": {"type": "domain", "value": "shop.example.com"}}]
    assert "relations" not in spam_list  # Domain is "" for a spam list


def test_the_entities_limit_keeps_the_newest_breaches():
    data = ask("observe/observables", claims={**CLAIMS, "CTR_ENTITIES_LIMIT": 2})[0]["data"]
    assert [i["title"] for i in data["indicators"]["docs"]] == ["ExampleShop", "ExampleSpamList"]
    assert data["sightings"]["count"] == data["relationships"]["count"] == 2


def test_a_breach_shared_by_two_addresses_is_one_indicator_with_two_sightings():
    bob_breaches = [b for b in example("breaches.json") if b["Name"] == "ExampleShop"]
    reply, received = ask("observe/observables", (ALICE, BOB),
                          [Route(ACCOUNT + "bob%40example.com", answer(200, bob_breaches))])
    data = reply["data"]
    assert data["indicators"]["count"] == 3
    assert [s["observables"] for s in data["sightings"]["docs"]].count([BOB]) == 1
    assert data["sightings"]["count"] == data["relationships"]["count"] == 4
    assert [call.path for call in received] == [ACCOUNT + "alice%40example.com", ACCOUNT + "bob%40example.com"]


@pytest.mark.parametrize("status", [404, 400])
def test_an_address_in_no_breach_is_no_data_and_no_error(status):
    reply, _ = ask("observe/observables", routes=[Route(ACCOUNT, answer(status), prefix=True)])
    assert reply == {"data": {}}


def test_only_email_addresses_are_looked_up():
    reply, received = ask("observe/observables", ({"type": "ip", "value": "192.0.2.1"},
                                                  {"type": "domain", "value": "example.com"}))
    assert reply == {"data": {}}
    assert received == []


@pytest.mark.parametrize("status, body, expected", [
    (401, example("error-401.json"),
     {"code": "access denied", "message": "Authorization failed: Access denied due to invalid hibp-api-key."}),
    (429, example("error-429.json"),
     {"code": "too many requests", "message": "Rate limit is exceeded. Try again in 2 seconds."}),
    (503, None, {"code": "service unavailable", "message": "Service temporarily unavailable. Please try again later."}),
    (403, None, {"code": "oops", "message": "Something went wrong."}),
    (500, None, {"code": "oops", "message": "Something went wrong."}),
])
def test_vendor_errors_become_relay_errors(status, body, expected):
    reply, _ = ask("observe/observables", routes=[Route(ACCOUNT, answer(status, body), prefix=True)])
    assert reply == {"errors": [{**expected, "type": "fatal"}]}


def test_a_certificate_that_cannot_be_verified_is_named_as_such(tmp_path):
    tls = server_context(*make_certificate(tmp_path, label="self-signed"))
    with MisbehavingVendor(Answer(200, b"[]"), tls=tls) as vendor:
        relay = RelayAgainst({"have-i-been-pwned": SPEC}, {"have-i-been-pwned": vendor.origin})
        reply = relay.ask("have-i-been-pwned", "observe/observables", [ALICE])
        assert vendor.requests == []  # the key never went over the unverified connection
    assert reply == {"errors": [{"code": "ssl certificate verification failed", "type": "fatal",
                                 "message": "Unable to verify SSL certificate: Self-signed certificate."}]}


def test_an_error_stops_the_addresses_not_asked_yet_and_keeps_what_was_found():
    carol = {"type": "email", "value": "carol@example.com"}
    reply, received = ask("observe/observables", (ALICE, BOB, carol),
                          [Route(ACCOUNT + "bob%40example.com", answer(429, example("error-429.json")))])
    assert reply["errors"] == [{"code": "too many requests", "type": "fatal",
                                "message": "Rate limit is exceeded. Try again in 2 seconds."}]
    assert reply["data"]["sightings"]["count"] == 3  # alice's breaches
    assert [call.path for call in received] == [ACCOUNT + "alice%40example.com", ACCOUNT + "bob%40example.com"]


def test_health_looks_up_a_test_address_by_breach_names_only():
    reply, received = ask("health", body=None)
    assert reply == {"data": {"status": "ok"}}
    [call] = received
    assert (call.path, call.query) == (ACCOUNT + "user%40example.com", "truncateResponse=true")
    assert call.headers["hibp-api-key"] == "hibp-test-key"


def test_health_is_ok_when_the_test_address_is_in_no_breach():
    reply, _ = ask("health", body=None, routes=[Route(ACCOUNT, answer(404), prefix=True)])
    assert reply == {"data": {"status": "ok"}}


def test_health_reports_a_refused_key():
    reply, _ = ask("health", body=None, routes=[Route(ACCOUNT, answer(401, example("error-401.json")), prefix=True)])
    assert reply == {"errors": [{"code": "access denied", "type": "fatal",
                                 "message": "Authorization failed: Access denied due to invalid hibp-api-key."}]}


def test_refer_links_each_address_to_its_hibp_page_without_token_or_call():
    reply, received = ask("refer/observables", (ALICE, {"type": "ip", "value": "192.0.2.1"}), claims=None)
    assert reply == {"data": [{
        "id": "ref-hibp-search-email-alice%40example.com",
        "title": "Search for this email",
        "description": "Check this email status with Have I Been Pwned",
        "url": "https://haveibeenpwned.com/account/alice%40example.com",
        "categories": ["Search", "Have I Been Pwned"],
    }]}
    assert received == []


def test_observe_needs_the_api_key():
    reply, received = ask("observe/observables", claims={"aud": CLAIMS["aud"]})
    assert reply["errors"][0]["message"] == "Authorization failed: Wrong JWT payload structure"
    assert received == []
