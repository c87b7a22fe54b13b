"""APIVoid end to end: the spec, the real app, a stand-in APIVoid on loopback.

The stand-in answers with vendors/examples/apivoid (written from APIVoid's API documentation):
for 192.0.2.45 three IP engines, of which "Example Spam BL" and "Example Botnet Feed" list it; for a
domain three engines, of which "Example Phish List" (confidence medium) and "Example Scam Watch"
(confidence low) list it. APIVoid reports most problems in a 200 answer with an `error` text.
"""
import json
import uuid
from pathlib import Path

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "apivoid.yaml")
IP = {"type": "ip", "value": "192.0.2.45"}
DOMAIN = {"type": "domain", "value": "malware-drop.example"}
IPREP = "/iprep/v1/pay-as-you-go/"
DOMAINBL = "/domainbl/v1/pay-as-you-go/"


def claims(**more):
    return {"key": "apivoid-test-key", "aud": "http://localhost/apivoid", **more}


def answer(status: int = 200, body=None) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(body).encode() if body is not None else b"")


def error_text(text: str) -> CannedAnswer:
    """APIVoid's way of saying no: a 200 whose body carries an `error` text."""
    return answer(200, {"elapsed_time": "0.00", "error": text})


def ask(route, body, extra_routes=(), claims_=None):
    with StandInVendor(list(extra_routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"apivoid": SPEC}, {"apivoid": stand_in.origin})
        response = relay.post(f"/apivoid/{route}", body, claims_ or claims())
        return response.get_json(), stand_in.received


def indicator_id(engine: str) -> str:
    return f"transient:indicator-{uuid.uuid5(uuid.NAMESPACE_X500, engine)}"


def test_each_listing_engine_makes_a_sighting_an_indicator_and_their_relationship():
    result, received = ask("observe/observables", [IP])
    data = result["data"]
    assert "errors" not in result
    assert validate_observe_data(data) == []
    assert [r.path for r in received] == [IPREP]
    assert received[0].query == "ip=192.0.2.45&key=apivoid-test-key"

    sightings, indicators = data["sightings"]["docs"], data["indicators"]["docs"]
    assert [s["source"] for s in sightings] == ["Example Spam BL", "Example Botnet Feed"]  # APIVoid's order
    assert sightings[0]["source_uri"] == "https://spam-bl.example/"
    assert sightings[0]["observables"] == [IP]
    assert sightings[0]["observed_time"] == {"start_time": "2026-11-28T12:00:00Z", "end_time": "2026-11-28T12:00:00Z"}
    assert {s["confidence"] for s in sightings} == {"High"}  # IP engines give no confidence
    assert [i["id"] for i in indicators] == [indicator_id("Example Spam BL"), indicator_id("Example Botnet Feed")]
    assert indicators[1]["title"] == indicators[1]["short_description"] == "Feed: Example Botnet Feed"
    links = [(r["relationship_type"], r["source_ref"], r["target_ref"]) for r in data["relationships"]["docs"]]
    assert links == [("member-of", s["id"], i["id"]) for s, i in zip(sightings, indicators)]


def test_a_domain_is_asked_as_a_host_and_keeps_each_engines_confidence():
    result, received = ask("observe/observables", [DOMAIN])
    assert [(r.path, r.query) for r in received] == [(DOMAINBL, "host=malware-drop.example&key=apivoid-test-key")]
    sightings = result["data"]["sightings"]["docs"]
    assert [(s["source"], s["confidence"]) for s in sightings] == [("Example Phish List", "Medium"),
                                                                   ("Example Scam Watch", "Low")]
    assert [i["confidence"] for i in result["data"]["indicators"]["docs"]] == ["Medium", "Low"]


def test_the_entities_limit_keeps_the_first_listing_engines():
    result, _ = ask("observe/observables", [IP], claims_=claims(CTR_ENTITIES_LIMIT=1))
    data = result["data"]
    assert [s["source"] for s in data["sightings"]["docs"]] == ["Example Spam BL"]
    assert data["indicators"]["count"] == data["relationships"]["count"] == 1


def test_an_engine_that_lists_nothing_makes_nothing():
    clean = {"data": {"report": {"ip": IP["value"], "blacklists": {"engines": {
        "0": {"engine": "Example Clean List", "detected": False, "reference": "https://clean-list.example/"}},
        "detections": 0, "engines_count": 1}}}, "success": True}
    result, _ = ask("observe/observables", [IP], [Route(IPREP, answer(200, clean), query=(("ip", IP["value"]),))])
    assert result == {"data": {}}


@pytest.mark.parametrize("text", ["IP address is not valid", "Host is not valid"])
def test_an_observable_apivoid_will_not_look_up_is_no_error(text):
    result, _ = ask("observe/observables", [IP], [Route(IPREP, error_text(text), query=(("ip", IP["value"]),))])
    assert result == {"data": {}}


@pytest.mark.parametrize("text", ["API key is not valid", "API key has been disabled or does not exist"])
def test_a_refused_key_is_an_authorization_error(text):
    result, _ = ask("observe/observables", [IP], [Route(IPREP, error_text(text))])
    assert result == {"errors": [{"code": "authorization error", "message": f"Authorization failed: {text}",
                                  "type": "fatal"}]}


def test_any_other_error_text_is_reported_as_it_is():
    result, _ = ask("observe/observables", [IP], [Route(IPREP, error_text("You do not have enough credits"))])
    assert result == {"errors": [{"code": "unknown", "message": "You do not have enough credits", "type": "fatal"}]}


@pytest.mark.parametrize("status, code", [(500, "internal server error"), (429, "too many requests"),
                                          (403, "forbidden"), (503, "service unavailable")])
def test_a_failed_answer_is_named_by_its_reason_phrase(status, code):
    result, _ = ask("observe/observables", [IP], [Route(IPREP, answer(status))])
    assert result == {"errors": [{"code": code, "message": "An error occurred on the APIVoid side.", "type": "fatal"}]}


def test_what_was_gathered_before_an_error_is_returned_with_it():
    result, _ = ask("observe/observables", [IP, DOMAIN], [Route(DOMAINBL, answer(500))])
    assert result["data"]["sightings"]["count"] == 2
    assert result["errors"] == [{"code": "internal server error", "message": "An error occurred on the APIVoid side.",
                                 "type": "fatal"}]


def test_other_observable_types_make_no_call():
    result, received = ask("observe/observables", [{"type": "sha256", "value": "a" * 64}])
    assert result == {"data": {}}
    assert received == []


def test_a_token_without_the_key_is_refused_before_any_call():
    result, received = ask("observe/observables", [IP], claims_={"aud": "http://localhost/apivoid"})
    assert result == {"errors": [{"code": "authorization error", "type": "fatal",
                                  "message": "Authorization failed: Wrong JWT payload structure"}]}
    assert received == []


def test_health_asks_for_the_account_statistics():
    stats = Route(IPREP, CannedAnswer(200, (ROOT / "vendors/examples/apivoid/stats.json").read_bytes()),
                  query=(("stats", "true"),))
    result, received = ask("health", None, [stats])
    assert result == {"data": {"status": "ok"}}
    assert [(r.path, r.query) for r in received] == [(IPREP, "stats=true&key=apivoid-test-key")]


def test_health_reports_a_refused_key():
    result, _ = ask("health", None, [Route(IPREP, error_text("API key is not valid"), query=(("stats", "true"),))])
    assert result["errors"][0]["message"] == "Authorization failed: API key is not valid"
