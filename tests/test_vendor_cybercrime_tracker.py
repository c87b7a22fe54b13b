"""CyberCrime Tracker end to end: a public site (no token), one query.php call per observable, a verdict
and a judgement only for a listed panel, URLs looked up (and named) without their scheme.

The stand-in answers with vendors/examples/cybercrime-tracker: {"success": true, "message":
"Malicious: AZORult"} for query.php and a small web page for the health check.
"""
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from engine import load_spec
from engine.ctim import validate_observe_data
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from tests.support.relay import RelayUnderTest

SPEC = load_spec(Path(__file__).resolve().parent.parent / "vendors" / "cybercrime-tracker.yaml")
URL = [{"type": "url", "value": "http://panel.example.com/admin/login.php"}]
IP = [{"type": "ip", "value": "192.0.2.45"}]
WEEK = {"start_time": "2026-11-28T12:00:00Z", "end_time": "2026-12-05T12:00:00Z"}  # from the frozen clock
KEY_ERROR = {"code": "key error", "type": "fatal",
             "message": "The data structure of CyberCrime Tracker has changed. The module is broken."}


def answer(status=200, body=None) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(body).encode() if body is not None else b"")


def ask(path, body=None, routes=(), headers=None):
    """POST to the relay without any token, the stand-in answering `routes` first, then the examples."""
    with StandInVendor(list(routes) + routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"cybercrime-tracker": SPEC}, {"cybercrime-tracker": stand_in.origin})
        response = relay.post(f"/cybercrime-tracker/{path}", body, headers=headers)
        return response.status_code, response.get_json(), stand_in.received


def looked_up(received) -> list:
    return [dict(parse_qsl(call.query))["url"] for call in received]


def test_a_listed_url_gets_a_malicious_verdict_and_judgement_named_without_its_scheme():
    status, answer_, received = ask("observe/observables", URL)
    assert status == 200 and "errors" not in answer_
    data = answer_["data"]
    assert validate_observe_data(data) == []
    assert [call.path for call in received] == ["/query.php"]
    assert looked_up(received) == ["panel.example.com/admin/login.php"]
    as_looked_up = {"type": "url", "value": "panel.example.com/admin/login.php"}
    assert data["verdicts"] == {"count": 1, "docs": [
        {"type": "verdict", "observable": as_looked_up, "disposition": 2, "valid_time": WEEK}]}
    judgement = data["judgements"]["docs"][0]
    assert judgement["id"].startswith("transient:judgement-")
    assert {key: judgement[key] for key in ("observable", "disposition", "disposition_name", "confidence",
                                            "priority", "severity", "source", "valid_time")} == {
        "observable": as_looked_up, "disposition": 2, "disposition_name": "Malicious", "confidence": "Low",
        "priority": 90, "severity": "Medium", "source": "CyberCrime Tracker", "valid_time": WEEK}
    assert judgement["source_uri"] == \
        "http://cybercrime-tracker.net/index.php?search=panel.example.com/admin/login.php"


def test_deliberate_answers_the_verdict_alone_and_an_ip_as_it_is():
    _, answer_, received = ask("deliberate/observables", IP)
    assert list(answer_["data"]) == ["verdicts"]
    assert answer_["data"]["verdicts"]["docs"][0]["observable"] == IP[0]
    assert looked_up(received) == ["192.0.2.45"]


def test_no_token_is_needed_and_only_the_user_agent_is_sent():
    # ask() sends no Authorization header at all
    _, answer_, received = ask("observe/observables", IP)
    assert answer_["data"]["verdicts"]["count"] == 1
    assert received[0].headers["User-Agent"] == \
        "SecureX Threat Response Integrations <tr-integrations-support@cisco.com>"
    assert "Authorization" not in received[0].headers


def test_a_url_with_its_own_query_is_looked_up_whole():
    url = [{"type": "url", "value": "https://panel.example.com/gate.php?id=7&bot=1"}]
    _, answer_, received = ask("observe/observables", url)
    assert looked_up(received) == ["panel.example.com/gate.php?id=7&bot=1"]  # `&bot=1` is not a parameter of its own
    assert answer_["data"]["judgements"]["docs"][0]["source_uri"] == \
        "http://cybercrime-tracker.net/index.php?search=panel.example.com/gate.php%3Fid%3D7%26bot%3D1"


@pytest.mark.parametrize("message", ["Not listed", "", "malicious (lower case)"])
def test_a_message_not_starting_with_malicious_says_nothing(message):
    _, answer_, _ = ask("observe/observables", IP, [Route("/query.php", answer(body={"success": False,
                                                                                     "message": message}))])
    assert answer_ == {"data": {}}


def test_other_observable_types_are_not_looked_up():
    _, answer_, received = ask("observe/observables", [{"type": "domain", "value": "panel.example.com"}])
    assert answer_ == {"data": {}}
    assert received == []


@pytest.mark.parametrize("status, body, code, message", [
    (404, {"error": "Not Found"}, "not found", "The CyberCrime not found"),
    (500, None, "service unavailable", "The CyberCrime is unavailable. Please, try again later."),
    (503, {"error": "busy"}, "service unavailable", "The CyberCrime is unavailable. Please, try again later."),
    (403, {"error": "Your address is blocked"}, "unknown", "Your address is blocked"),
    (429, None, "unknown", "unexpected error"),
])
def test_vendor_errors_become_relay_errors(status, body, code, message):
    _, answer_, _ = ask("deliberate/observables", IP, [Route("/query.php", answer(status, body))])
    assert answer_ == {"errors": [{"code": code, "message": message, "type": "fatal"}]}


@pytest.mark.parametrize("body", [{"success": True}, {"success": True, "message": 5}])
def test_an_answer_without_a_usable_message_is_a_key_error(body):
    _, answer_, _ = ask("observe/observables", IP, [Route("/query.php", answer(body=body))])
    assert answer_ == {"errors": [KEY_ERROR]}


def test_data_already_found_is_answered_next_to_the_error():
    routes = [Route("/query.php", answer(503), query=(("url", "198.51.100.7"),))]
    _, answer_, received = ask("deliberate/observables", IP + [{"type": "ip", "value": "198.51.100.7"}], routes)
    assert sorted(looked_up(received)) == ["192.0.2.45", "198.51.100.7"]
    assert answer_["data"]["verdicts"]["docs"][0]["observable"] == IP[0]
    assert answer_["errors"] == [{"code": "service unavailable", "type": "fatal",
                                  "message": "The CyberCrime is unavailable. Please, try again later."}]


def test_bad_input_is_an_invalid_payload_error_without_a_type():
    _, answer_, received = ask("observe/observables", [{"type": "ip", "value": ""}])
    assert answer_ == {"errors": [{"code": "invalid_payload", "message":
                                   'Invalid JSON payload received. {"0": {"value": ["Field may not be blank."]}}.'}]}
    assert received == []


def test_health_reads_the_home_page():
    _, answer_, received = ask("health")
    assert answer_ == {"data": {"status": "ok"}}
    assert [(call.method, call.path) for call in received] == [("GET", "/")]


def test_health_reports_the_sites_error():
    _, answer_, _ = ask("health", routes=[Route("/", answer(400, {"error": "Bad request"}))])
    assert answer_ == {"errors": [{"code": "unknown", "message": "Bad request", "type": "fatal"}]}
