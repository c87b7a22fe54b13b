"""Cyberprotect Threatscore end to end: the spec, the real app, a stand-in Threatscore on loopback.

The stand-in answers with vendors/examples/cyberprotect/score.json (shaped after Threatscore's answers):
one score of 0.62 computed 2024-05-02T08:30:00.125Z, from four engines scoring 0.8, 0.1, 0.4 and null.
The API needs no credentials; the relay still reads its settings from the token.
"""
import json
from pathlib import Path

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "cyberprotect.yaml")
EXAMPLE = json.loads((ROOT / "vendors" / "examples" / "cyberprotect" / "score.json").read_text())
IP = {"type": "ip", "value": "192.0.2.10"}
CLAIMS = {"aud": "http://localhost/cyberprotect"}
WEEK = {"start_time": "2024-05-02T08:30:00.125000Z", "end_time": "2024-05-09T08:30:00.125000Z"}


def answer(status: int = 200, body=None) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(body).encode() if body is not None else b"")


def scores(*entries) -> CannedAnswer:
    return answer(200, {**EXAMPLE, "scores": list(entries)})


def ask(route, body=(IP,), extra_routes=(), **claims):
    with StandInVendor(list(extra_routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"cyberprotect": SPEC}, {"cyberprotect": stand_in.origin})
        response = relay.post(f"/cyberprotect/{route}", list(body) if body is not None else None,
                              {**CLAIMS, **claims})
        return response.get_json(), stand_in.received


def test_observe_makes_a_verdict_per_score_and_a_judgement_per_scoring_engine():
    result, received = ask("observe/observables")
    data = result["data"]
    assert "errors" not in result
    assert validate_observe_data(data) == []
    assert [(r.path, r.query) for r in received] == [("/api/score/192.0.2.10", "")]
    assert "Authorization" not in received[0].headers

    [verdict] = data["verdicts"]["docs"]
    assert (verdict["disposition"], verdict["disposition_name"]) == (2, "Malicious")  # 0.62
    assert verdict["valid_time"] == WEEK  # from Cyberprotect's date, not from the clock

    judgements = data["judgements"]["docs"]  # the engine that gave no score makes none
    assert [(j["reason"], j["disposition_name"]) for j in judgements] == [
        ("Engine: 0a1b2c3d4e5f60718293a4b5c6d7e8f9", "Malicious"),
        ("Engine: 1b2c3d4e5f60718293a4b5c6d7e8f90a", "Clean"),
        ("Engine: 2c3d4e5f60718293a4b5c6d7e8f90a1b", "Suspicious")]
    assert judgements[0]["source_uri"] == "https://threatscore.cyberprotect.cloud/search?query=192.0.2.10"
    assert judgements[0]["valid_time"] == WEEK
    assert (judgements[0]["source"], judgements[0]["priority"]) == ("Threatscore Cyberprotect", 85)


def test_deliberate_makes_only_the_verdict():
    result, _ = ask("deliberate/observables")
    assert list(result["data"]) == ["verdicts"]
    assert result["data"]["verdicts"]["docs"][0]["valid_time"] == WEEK


@pytest.mark.parametrize("score, disposition", [(-0.4, "Clean"), (0, "Clean"), (0.25, "Clean"),
                                                (0.3, "Suspicious"), (0.5, "Suspicious"), (0.51, "Malicious"),
                                                (1, "Malicious")])
def test_the_score_decides_the_disposition(score, disposition):
    entry = {"date": "2024-05-02T08:30:00.000Z", "score": score, "details": []}
    result, _ = ask("deliberate/observables", extra_routes=[Route("/api/score/", scores(entry), prefix=True)])
    assert result["data"]["verdicts"]["docs"][0]["disposition_name"] == disposition


def test_a_verdict_time_without_a_fraction_is_written_without_one():
    entry = {"date": "2024-05-02T08:30:00.000Z", "score": 0.1, "details": [
        {"date": "2024-05-02T08:30:00.000Z", "engineId": "e1", "score": 0.1}]}
    data = ask("observe/observables", extra_routes=[Route("/api/score/", scores(entry), prefix=True)])[0]["data"]
    assert data["verdicts"]["docs"][0]["valid_time"]["start_time"] == "2024-05-02T08:30:00Z"
    assert data["judgements"]["docs"][0]["valid_time"]["start_time"] == "2024-05-02T08:30:00.000000Z"


def test_the_entities_limit_counts_scores_and_details_before_unscored_ones_are_dropped():
    unscored = {"date": "2024-05-01T00:00:00.000Z", "score": None, "details": []}
    details = [{"date": "2024-05-02T08:30:00.000Z", "engineId": "e1", "score": None},
               {"date": "2024-05-02T08:30:00.000Z", "engineId": "e2", "score": 0.9}]
    scored = {"date": "2024-05-02T08:30:00.000Z", "score": 0.9, "details": details}
    routes = [Route("/api/score/", scores(scored, unscored), prefix=True)]
    data = ask("observe/observables", extra_routes=routes, CTR_ENTITIES_LIMIT=1)[0]["data"]
    assert data["verdicts"]["count"] == 1
    assert "judgements" not in data  # the one detail within the limit has no score
    assert ask("observe/observables", extra_routes=routes, CTR_ENTITIES_LIMIT=2)[0]["data"]["judgements"]["count"] == 1
    routes = [Route("/api/score/", scores(unscored, scored), prefix=True)]
    assert ask("observe/observables", extra_routes=routes, CTR_ENTITIES_LIMIT=1)[0] == {"data": {}}


def test_an_observable_cyberprotect_never_scored_is_no_error():
    unknown = answer(404, {"error": {"message": "Observable not found in database"}})
    result, _ = ask("observe/observables", extra_routes=[Route("/api/score/", unknown, prefix=True)])
    assert result == {"data": {}}


@pytest.mark.parametrize("status, body, code, message", [
    (404, {"error": {"type": "Client Error", "code": "404", "message": "Not Found"}},
     "not found", "The Cyberprotect not found"),
    (404, None, "not found", "The Cyberprotect not found"),
    (400, {"error": {"details": "value is not an IP address or a domain"}},
     "unknown", "value is not an IP address or a domain"),
    (500, {"error": {"type": "Server Error", "code": "500", "message": "Internal Error"}}, "unknown", "Internal Error"),
    (502, None, "not found", "The Cyberprotect is not available now."),
    (503, {"error": {"message": "Maintenance"}}, "not found", "The Cyberprotect is not available now."),
])
def test_vendor_errors_become_relay_errors(status, body, code, message):
    failing = Route("/api/score/", answer(status, body), prefix=True)
    result, _ = ask("observe/observables", extra_routes=[failing])
    assert result == {"errors": [{"code": code, "message": message, "type": "fatal"}]}


@pytest.mark.parametrize("entry", [
    {"score": 0.3, "details": []},  # a score without its date
    {"date": "2024-05-02T08:30:00.000Z", "score": 0.3, "details": [{"date": "2024-05-02T08:30:00.000Z", "score": 0.3}]},
])
def test_an_answer_without_the_fields_read_means_the_api_changed(entry):
    broken = Route("/api/score/", scores(entry), prefix=True)
    result, _ = ask("observe/observables", extra_routes=[broken])
    assert result == {"errors": [{"code": "key error", "type": "fatal",
                                  "message": "The data structure of Cyberprotect has changed. The module is broken."}]}


def test_observables_are_asked_in_turn_and_an_error_stops_the_rest():
    failing = Route("/api/score/198.51.100.1", answer(500, {"error": {"message": "Internal Error"}}))
    body = [IP, {"type": "ip", "value": "198.51.100.1"}, {"type": "domain", "value": "example.com"}]
    result, received = ask("deliberate/observables", body, [failing])
    assert [r.path for r in received] == ["/api/score/192.0.2.10", "/api/score/198.51.100.1"]
    assert result["data"]["verdicts"]["count"] == 1  # what came before the error
    assert result["errors"] == [{"code": "unknown", "message": "Internal Error", "type": "fatal"}]


def test_ipv6_and_domains_are_looked_up_and_other_types_are_not():
    body = [{"type": "ipv6", "value": "2001:db8::1"}, {"type": "domain", "value": "example.com"},
            {"type": "sha256", "value": "a" * 64}]
    _, received = ask("deliberate/observables", body)
    assert [r.path for r in received] == ["/api/score/2001:db8::1", "/api/score/example.com"]


def test_health_scores_a_fixed_address():
    result, received = ask("health", None)
    assert result == {"data": {"status": "ok"}}
    assert [r.path for r in received] == ["/api/score/127.0.0.100"]


def test_a_request_without_a_token_is_refused():
    with StandInVendor(routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"cyberprotect": SPEC}, {"cyberprotect": stand_in.origin})
        result = relay.post("/cyberprotect/observe/observables", [IP]).get_json()
    assert result["errors"][0]["code"] == "authorization error"
    assert stand_in.received == []
