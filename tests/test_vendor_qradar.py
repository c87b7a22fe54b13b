"""IBM QRadar end to end: the spec, the real app, a stand-in QRadar console on loopback.

The stand-in answers with vendors/examples/qradar (written from QRadar's REST API docs): the event
columns sourceip, destinationip, identityip and 'Proxy Host'; a search created in state WAIT and
COMPLETED when asked; two events for 198.51.100.7 (from 192.0.2.10 as user alice, then from itself);
the IP reference sets "Blocked Addresses" (holding 198.51.100.7 and 203.0.113.9) and "Watch List"
(empty). Polling is driven by a stand-in whose search states follow a script, on the relay's frozen
clock: a wait moves the clock at once, so the tests never sleep.
"""
import base64
import json
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from tests.support.misbehaving import MisbehavingVendor, json_answer
from tests.support.relay import NOW, RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "vendors" / "examples" / "qradar"
IP = {"type": "ip", "value": "198.51.100.7"}
CLAIMS = {"user": "analyst", "pass": "s3cret", "SERVER_IP": "qradar.example.com"}
SEARCH = "/api/ariel/searches"
SEARCH_ID = json.loads((EXAMPLES / "search.json").read_text())["search_id"]


@pytest.fixture(scope="module")
def qradar():
    return load_spec(ROOT / "vendors" / "qradar.yaml")


def answer(document, status=200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(document).encode())


def call(qradar, path, body, routes=(), **claims):
    """The relay's answer and the calls the stand-in received (hand-written routes win)."""
    with StandInVendor(list(routes) + routes_from_examples(qradar)) as stand_in:
        relay = RelayUnderTest({"qradar": qradar}, {"qradar": stand_in.origin})
        reply = relay.post(f"/qradar/{path}", body, {**CLAIMS, **claims}).get_json()
    return reply, stand_in.received


def form(received) -> dict:
    return dict(parse_qsl(received.body.decode()))


# ---------------------------------------------------------------------------------------- observe


def test_observe_makes_a_sighting_per_event(qradar):
    reply, received = call(qradar, "observe/observables", [IP])
    assert "errors" not in reply
    assert validate_observe_data(reply["data"]) == []
    first, second = reply["data"]["sightings"]["docs"]
    assert first["short_description"] == "Event 'Firewall Permit': A firewall permitted a connection."
    assert first["description"] == ('A QRadar SIEM record retrieved from log source **Firewall @ fw01.example.com** '
                                    'related to **"198.51.100.7"**')
    assert (first["source"], first["confidence"], first["count"], first["observables"]) == \
        ("QRadar SIEM", "High", 1, [IP])
    assert first["observed_time"] == {"start_time": "2026-11-27T10:00:00.250000Z", "end_time": "2026-11-27T10:01:00Z"}
    assert first["targets"] == [{"type": "endpoint", "observed_time": first["observed_time"], "observables": [
        {"type": "ip", "value": "192.0.2.10"}, {"type": "ipv6", "value": "0:0:0:0:0:0:0:0"},
        {"type": "mac_address", "value": "00:00:5E:00:53:01"}, {"type": "user", "value": "alice"}]}]
    assert first["relations"] == [{"origin": "QRadar SIEM", "relation": "Connected_To",
                                   "source": {"type": "ip", "value": "192.0.2.10"}, "related": IP}]
    # An event without an end time ends when it starts; one from the address to itself relates nothing.
    assert second["observed_time"] == {"start_time": "2026-11-27T11:00:00Z", "end_time": "2026-11-27T11:00:00Z"}
    assert "relations" not in second
    assert [(r.method, r.path) for r in received] == [
        ("GET", "/api/ariel/databases/events"), ("POST", SEARCH),
        ("GET", f"{SEARCH}/{SEARCH_ID}"), ("GET", f"{SEARCH}/{SEARCH_ID}/results")]


def test_the_search_looks_for_the_address_in_every_host_column_over_7_days(qradar):
    _, received = call(qradar, "observe/observables", [IP], CTR_ENTITIES_LIMIT=5)
    columns, search = received[0], received[1]
    assert dict(parse_qsl(columns.query)) == {"fields": "columns (name)", "filter": 'object_value_type = "Host"'}
    assert form(search)["query_expression"] == (
        "SELECT starttime, endtime, sourceip, destinationip, sourcev6, sourcemac, username, "
        "LOGSOURCENAME(logsourceid) AS 'logsource_name', QIDDESCRIPTION(qid) AS 'event_descr', "
        "QIDNAME(qid) as 'event_name' FROM events "
        "WHERE sourceip='198.51.100.7' OR destinationip='198.51.100.7' OR identityip='198.51.100.7' "
        "OR 'Proxy Host'='198.51.100.7' "
        "LIMIT 5 START '2026-11-21 12:00:00' STOP '2026-11-28 12:00:00'")
    assert search.headers["Version"] == "15.0"
    assert search.headers["Authorization"] == "Basic " + base64.b64encode(b"analyst:s3cret").decode()


def test_a_quote_in_the_value_cannot_change_the_query(qradar):
    _, received = call(qradar, "observe/observables", [{"type": "ip", "value": "192.0.2.1' OR '1'='1"}])
    query = form(received[1])["query_expression"]
    assert "WHERE sourceip='192.0.2.1'' OR ''1''=''1' OR destinationip=" in query


def test_the_host_columns_are_asked_once_for_all_observables(qradar):
    reply, received = call(qradar, "observe/observables", [IP, {"type": "ip", "value": "192.0.2.99"}])
    assert reply["data"]["sightings"]["count"] == 4
    assert [r.path for r in received].count("/api/ariel/databases/events") == 1
    assert [r.path for r in received].count(SEARCH) == 2


def test_other_types_are_not_looked_up(qradar):
    reply, received = call(qradar, "observe/observables", [{"type": "domain", "value": "example.com"}])
    assert reply == {"data": {}} and received == []


# ---------------------------------------------------------------------------------- search jobs


class Console:
    """A QRadar console whose search answers `states` in turn when asked (the last one repeats)."""

    def __init__(self, created, *states):
        self.created, self.states = created, list(states)

    def __call__(self, request):
        if request.path == "/api/ariel/databases/events":
            return json_answer(json.loads((EXAMPLES / "columns.json").read_text()))
        if request.method == "POST":
            return json_answer({"search_id": "s-1", "status": self.created}, 201)
        if request.path.endswith("/results"):
            return json_answer(json.loads((EXAMPLES / "events.json").read_text()))
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if state == "ERROR":
            return json_answer({"search_id": "s-1", "status": "ERROR", "error_messages": [
                {"code": "1010", "severity": "ERROR", "message": "The search failed: the Ariel server is busy."}]})
        return json_answer({"search_id": "s-1", "status": state, "progress": 50})


def search(qradar, console):
    with MisbehavingVendor(console) as vendor:
        relay = RelayUnderTest({"qradar": qradar}, {"qradar": vendor.origin})
        reply = relay.post("/qradar/observe/observables", [IP], CLAIMS).get_json()
    calls = [f"{r.method} {r.path}" for r in vendor.requests]
    return reply, calls, relay.clock.now() - NOW


def test_a_running_search_is_asked_again_each_second_until_completed(qradar):
    reply, calls, waited = search(qradar, Console("WAIT", "WAIT", "EXECUTE", "SORTING", "COMPLETED"))
    assert calls == ["GET /api/ariel/databases/events", f"POST {SEARCH}"] + [f"GET {SEARCH}/s-1"] * 4 + \
        [f"GET {SEARCH}/s-1/results"]
    assert waited == timedelta(seconds=3)  # at once, then a second before each call after it
    assert reply["data"]["sightings"]["count"] == 2 and "errors" not in reply


def test_a_search_created_complete_is_read_at_once(qradar):
    _, calls, waited = search(qradar, Console("COMPLETED", "EXECUTE"))
    assert calls == ["GET /api/ariel/databases/events", f"POST {SEARCH}", f"GET {SEARCH}/s-1/results"]
    assert waited == timedelta(0)


def test_a_search_still_running_when_time_is_up_is_a_gateway_timeout(qradar):
    reply, calls, waited = search(qradar, Console("WAIT", "EXECUTE"))
    assert reply == {"errors": [{"code": "gateway timeout", "type": "fatal", "message":
                                 "Failed to get search results since search processing is still ongoing "
                                 "on QRadar API side."}]}
    assert f"GET {SEARCH}/s-1/results" not in calls
    # Within the request's budget (20 s), far short of the original's 50 s.
    assert timedelta(seconds=10) < waited < timedelta(seconds=20)
    assert calls.count(f"GET {SEARCH}/s-1") == waited.seconds + 1


def test_a_failed_search_ends_the_polls_at_once(qradar):
    reply, calls, waited = search(qradar, Console("WAIT", "EXECUTE", "ERROR"))
    assert reply == {"errors": [{"code": "unknown", "type": "fatal",
                                 "message": "The search failed: the Ariel server is busy."}]}
    assert calls.count(f"GET {SEARCH}/s-1") == 2 and waited == timedelta(seconds=1)
    reply, _, _ = search(qradar, Console("WAIT", "CANCELED"))
    assert reply["errors"][0]["message"] == "The QRadar search ended with status CANCELED."


# ---------------------------------------------------------------------------------- vendor errors

QRADAR_ERROR = {"http_response": {"code": 422, "message": "The request was well-formed but was unable to be "
                                                          "followed due to semantic errors"},
                "code": 2000, "message": "Invalid AQL: the query expression could not be parsed.",
                "description": "", "details": {}}


@pytest.mark.parametrize("status, body, expected", [
    (401, {"message": "You are unauthorized to access the requested resource."},
     {"code": "authorization error", "message": "Authorization failed: Authorization failed on QRadar side"}),
    (500, {"message": "Internal Error"}, {"code": "internal error", "message": "The QRadar internal error."}),
    (422, QRADAR_ERROR, {"code": "unknown", "message": "Invalid AQL: the query expression could not be parsed."}),
    (503, None, {"code": "unknown", "message": "The QRadar API error."}),
])
def test_vendor_errors_become_relay_errors(qradar, status, body, expected):
    failing = Route(SEARCH, CannedAnswer(status, json.dumps(body).encode() if body else b""), method="POST")
    reply, _ = call(qradar, "observe/observables", [IP], [failing])
    assert reply == {"errors": [{**expected, "type": "fatal"}]}


def test_an_error_stops_the_next_observables_but_keeps_what_was_found(qradar):
    def console(request):  # one search per address; the second one's results fail
        if request.method == "POST":
            found = b"192.0.2.99" not in request.body
            return json_answer({"search_id": "ok" if found else "broken", "status": "COMPLETED"}, 201)
        if request.path == f"{SEARCH}/broken/results":
            return json_answer({"message": "Internal Error"}, 500)
        if request.path.endswith("/results"):
            return json_answer(json.loads((EXAMPLES / "events.json").read_text()))
        return json_answer({"columns": [{"name": "sourceip"}]})

    observables = [IP, {"type": "ip", "value": "192.0.2.99"}, {"type": "ip", "value": "192.0.2.100"}]
    with MisbehavingVendor(console) as vendor:
        relay = RelayUnderTest({"qradar": qradar}, {"qradar": vendor.origin})
        reply = relay.post("/qradar/observe/observables", observables, CLAIMS).get_json()
    assert reply["data"]["sightings"]["count"] == 2
    assert reply["errors"] == [{"code": "internal error", "type": "fatal", "message": "The QRadar internal error."}]
    assert [r.method for r in vendor.requests].count("POST") == 2  # the third address is not searched


def test_a_token_without_the_console_host_is_refused(qradar):
    claims = {key: value for key, value in CLAIMS.items() if key != "SERVER_IP"}
    with StandInVendor(routes_from_examples(qradar)) as stand_in:
        relay = RelayUnderTest({"qradar": qradar}, {"qradar": stand_in.origin})
        reply = relay.post("/qradar/observe/observables", [IP], claims).get_json()
    assert reply["errors"][0]["message"] == "Authorization failed: Wrong JWT payload structure"
    assert stand_in.received == []


# --------------------------------------------------------------------------------- health, refer


def test_health_lists_the_searches(qradar):
    reply, received = call(qradar, "health", None)
    assert reply == {"data": {"status": "ok"}}
    assert [(r.method, r.path) for r in received] == [("GET", SEARCH)]
    reply, _ = call(qradar, "health", None, [Route(SEARCH, answer({"message": "Unauthorized"}, 401), method="GET")])
    assert reply["errors"][0]["code"] == "authorization error"


def test_refer_opens_the_event_viewer_with_the_search_written(qradar):
    reply, received = call(qradar, "refer/observables", [IP, {"type": "ip", "value": "192.0.2.1'x"}])
    plain, quoted = reply["data"]
    assert plain["id"] == "ref-qradar-search-ip-198.51.100.7"
    assert plain["url"].startswith("https://qradar.example.com/console/do/ariel/arielSearch?appName=EventViewer&")
    assert plain["url"].endswith("value(aql)=SELECT * FROM events WHERE sourceip='198.51.100.7' "
                                 "OR destinationip='198.51.100.7' LAST 7 DAYS")
    assert "WHERE sourceip='192.0.2.1''x' OR destinationip='192.0.2.1''x' LAST" in quoted["url"]
    assert received == []


# ------------------------------------------------------------------------------ response actions


def test_the_actions_offered_follow_the_reference_sets(qradar):
    reply, received = call(qradar, "respond/observables", [IP])
    assert [(a["id"], a["title"], a["query-params"]["reference_set_name"]) for a in reply["data"]] == [
        ("qradar-add-to-reference-set", "Add to Watch List Reference Set", "Watch List"),
        ("qradar-add-and-create-reference-set", "Create a Reference Set and add an observable to it",
         "SecureX Investigation"),
        ("qradar-remove-from-reference-set", "Remove from Blocked Addresses Reference Set", "Blocked Addresses")]
    assert reply["data"][2] == {
        "id": "qradar-remove-from-reference-set", "title": "Remove from Blocked Addresses Reference Set",
        "description": "Remove IP from Reference Set", "categories": ["QRadar SIEM"],
        "query-params": {"observable_type": "ip", "observable_value": "198.51.100.7",
                         "reference_set_name": "Blocked Addresses"}}
    # Only the sets that have members are read, for their values.
    assert [(r.path, unquote(r.query)) for r in received] == [
        ("/api/reference_data/sets", 'filter=element_type+=+"IP"&fields=number_of_elements,+name'),
        ("/api/reference_data/sets/Blocked%20Addresses", "fields=data(value)")]


def test_remove_is_offered_where_the_address_is_a_member_and_add_elsewhere(qradar):
    sets = [{"name": "SecureX Investigation", "number_of_elements": 1}, {"name": "Scanners", "number_of_elements": 1}]
    routes = [Route("/api/reference_data/sets", answer(sets), method="GET"),
              Route("/api/reference_data/sets/Scanners", answer({"data": [{"value": "198.51.100.70"}]})),
              Route("/api/reference_data/sets/SecureX%20Investigation", answer({"data": [{"value": "198.51.100.7"}]}))]
    reply, _ = call(qradar, "respond/observables", [IP], routes)
    # 198.51.100.70 is not 198.51.100.7; the SecureX Investigation set exists already, so no "Create".
    assert [(a["id"], a["query-params"]["reference_set_name"]) for a in reply["data"]] == [
        ("qradar-add-to-reference-set", "Scanners"), ("qradar-remove-from-reference-set", "SecureX Investigation")]


def trigger(action_id, reference_set_name="Watch List", **more):
    return {"action-id": action_id, "observable_type": "ip", "observable_value": IP["value"],
            "reference_set_name": reference_set_name, **more}


def test_a_trigger_adds_the_address_to_the_set_it_names_without_asking_first(qradar):
    reply, received = call(qradar, "respond/trigger", trigger("qradar-add-to-reference-set", "Watch List"))
    assert reply == {"data": {"status": "success"}}
    assert [(r.method, r.path, form(r)) for r in received] == [
        ("POST", "/api/reference_data/sets/Watch%20List", {"value": IP["value"], "source": "SecureX Threat Response"})]


def test_add_and_create_makes_the_set_then_adds_the_address(qradar):
    reply, received = call(qradar, "respond/trigger",
                           trigger("qradar-add-and-create-reference-set", "SecureX Investigation"))
    assert reply == {"data": {"status": "success"}}
    assert [(r.method, r.path, form(r)) for r in received] == [
        ("POST", "/api/reference_data/sets", {"element_type": "IP", "name": "SecureX Investigation"}),
        ("POST", "/api/reference_data/sets/SecureX%20Investigation",
         {"value": IP["value"], "source": "SecureX Threat Response"})]


def test_remove_deletes_the_address_from_the_set(qradar):
    reply, received = call(qradar, "respond/trigger", trigger("qradar-remove-from-reference-set", "Blocked Addresses"))
    assert reply == {"data": {"status": "success"}}
    assert [(r.method, r.path) for r in received] == [
        ("DELETE", "/api/reference_data/sets/Blocked%20Addresses/198.51.100.7")]


def test_a_failed_trigger_answers_failure_beside_the_error(qradar):
    taken = Route("/api/reference_data/sets", answer(
        {"code": 1004, "message": "The reference set SecureX Investigation already exists."}, 409), method="POST")
    reply, received = call(qradar, "respond/trigger",
                           trigger("qradar-add-and-create-reference-set", "SecureX Investigation"), [taken])
    assert reply == {"data": {"status": "failure"}, "errors": [
        {"code": "unknown", "type": "fatal", "message": "The reference set SecureX Investigation already exists."}]}
    assert len(received) == 1  # nothing is added to a set that was not made

    unauthorized = Route("/api/reference_data/sets/Watch%20List", answer({"message": "Unauthorized"}, 401))
    reply, _ = call(qradar, "respond/trigger", trigger("qradar-add-to-reference-set"), [unauthorized])
    assert reply == {"data": {"status": "failure"}, "errors": [
        {"code": "authorization error", "type": "fatal",
         "message": "Authorization failed: Authorization failed on QRadar side"}]}


@pytest.mark.parametrize("body, message", [
    (trigger("qradar-block"), "Unsupported action."),
    ({k: v for k, v in trigger("qradar-add-to-reference-set").items() if k != "reference_set_name"},
     "Invalid JSON payload received. {'reference_set_name': ['Missing data for required field.']}"),
])
def test_a_trigger_the_relay_cannot_run_calls_nothing(qradar, body, message):
    reply, received = call(qradar, "respond/trigger", body)
    assert reply == {"data": {"status": "failure"},
                     "errors": [{"code": "invalid argument", "type": "fatal", "message": message}]}
    assert received == []
