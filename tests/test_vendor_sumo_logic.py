"""Sumo Logic end to end: the spec, the real app, a stand-in Sumo Logic on loopback.

Each search is a job (POST /search/jobs, GET its state until DONE GATHERING RESULTS, GET its
messages, DELETE it): the stand-in tells the log search from the CrowdStrike lookup by the query it
was given and answers each job's states in turn. The relay's clock is frozen and moves only when
the engine waits, so 50 s of polling cost no real time and every wait is seen exactly.

Fixtures are written from Sumo Logic's Search Job API documentation: two log messages (a firewall
log between 198.51.100.23 and 192.0.2.10, a proxy log) and CrowdStrike's record for the address
(`high` confidence, updated 2026-11-25T06:00:00Z, reports CSIT-26114 and CSIR-26120).
"""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from engine import load_spec
from engine.commands.standin import StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from engine.serving.app import create_app
from engine.serving.runtime import Runtime
from tests.support.misbehaving import Answer, MisbehavingVendor, closed_port, json_answer, loopback_session
from tests.support.relay import NOW, RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec(ROOT / "vendors" / "sumo-logic.yaml")
EXAMPLES = ROOT / "vendors" / "examples" / "sumo-logic"
HOST = "api.us2.sumologic.com"
IP = {"type": "ip", "value": "198.51.100.23"}
DONE, GATHERING, NOT_STARTED = "DONE GATHERING RESULTS", "GATHERING RESULTS", "NOT STARTED"
NOW_MS = int(NOW.timestamp() * 1000)

FIREWALL_LOG = {
    "_messageid": "-9223372036854721544",
    "_raw": "<134>Nov 20 08:14:31 fw-edge-01 action=deny src=198.51.100.23 dst=192.0.2.10 dport=443",
    "_messagetime": "1795162471250",  # 2026-11-20T08:14:31.250Z
    "_sourcename": "local use 0 (local0)",
    "_source": "edge-firewall-syslog",
    "_collector": "datacenter-collector",
    "_messagecount": "12",
    "action": "deny",
    "src_ip": "198.51.100.23",
    "dest_ip": "192.0.2.10",
    "src_ipv6": "",  # an empty field is no column
    "dest_port": "443",
}
PROXY_LOG = {
    "_messageid": "-9223372036854698211",
    "_raw": "1795166071000 198.51.100.23 TCP_DENIED/403 GET http://www.example.com/",
    "_messagetime": "1795166071000",
    "_sourcename": "/var/log/squid/access.log",
    "_source": "proxy-access",
    "_collector": "proxy-collector",
    "url": "http://www.example.com/",
    "src_ip": "198.51.100.23",
}
CROWDSTRIKE = {"indicator": "198.51.100.23", "type": "ip_address", "malicious_confidence": "high",
               "last_updated": 1795586400, "reports": ["CSIT-26114", "CSIR-26120"]}


def messages(*maps):
    return {"fields": [{"name": name, "fieldType": "string", "keyField": False} for name in maps[0]] if maps else [],
            "messages": [{"map": one} for one in maps]}


class SumoLogic:
    """A stand-in Sumo Logic. `log` and `threat` are the states each job answers in turn (the last
    one repeats); `found` the message counts they report."""

    def __init__(self, log=(DONE,), threat=(DONE,), log_messages=(FIREWALL_LOG, PROXY_LOG),
                 crowdstrike=CROWDSTRIKE, found=(2, 1), fail=None):
        self.states = {"log-job": list(log), "threat-job": list(threat)}
        self.found = {"log-job": found[0], "threat-job": found[1]}
        lookup = [{**FIREWALL_LOG, "observable": IP["value"], "raw": json.dumps(crowdstrike)}] if crowdstrike else []
        self.messages = {"log-job": messages(*log_messages), "threat-job": messages(*lookup)}
        self.fail = fail  # an Answer for every call

    def __call__(self, request):
        if self.fail is not None:
            return self.fail
        path = request.path.removeprefix("/api/v1")
        if path == "/healthEvents":
            return Answer(200, (EXAMPLES / "health-events.json").read_bytes())
        if request.method == "POST":
            job = "threat-job" if json.loads(request.body)["query"].startswith("| limit 1 |") else "log-job"
            return json_answer({"id": job, "link": {"rel": "self", "href": f"https://{HOST}/api/v1/search/jobs/{job}"}})
        job = path.split("/")[3]
        if request.method == "DELETE":
            return json_answer({"id": job})
        if path.endswith("/messages"):
            return json_answer(self.messages[job])
        states = self.states[job]
        state = states.pop(0) if len(states) > 1 else states[0]
        return json_answer({"state": state, "messageCount": self.found[job], "recordCount": 0,
                            "pendingWarnings": [], "pendingErrors": [], "histogramBuckets": []})


class SumoRelay(RelayUnderTest):
    """The relay under test (its frozen clock) calling `vendor` over the engine's loopback transport;
    `budget` replaces the request's budget (20 s by default)."""

    def __init__(self, vendor: MisbehavingVendor, budget: float | None = None):
        super().__init__({"sumo-logic": SPEC}, {"sumo-logic": vendor.origin})
        if budget is not None:
            self.config = replace(self.config, request_budget=budget)
        self.app = create_app(self.specs, self.config, Runtime(clock=self.clock, session=loopback_session()))
        self.client = self.app.test_client()


def ask(sumo: SumoLogic, route="observe", observables=(IP,), budget=None, **claims):
    """The relay's answer, the vendor calls ("METHOD /path"), the requests, and the time waited."""
    with MisbehavingVendor(sumo) as vendor:
        relay = SumoRelay(vendor, budget)
        claims = {"access_id": "suABCDEF", "access_key": "secret-key", "host": HOST, **claims}
        claims = {name: value for name, value in claims.items() if value is not None}  # None: left out
        path = f"/sumo-logic/{route}" + ("" if route == "health" else "/observables")
        answer = relay.post(path, None if route == "health" else list(observables), claims).get_json()
    calls = [f"{r.method} {r.path.removeprefix('/api/v1')}" for r in vendor.requests]
    return answer, calls, vendor.requests, relay.clock.now() - NOW


def job_calls(job, polls=1):
    return ["POST /search/jobs"] + [f"GET /search/jobs/{job}"] * polls + [
        f"GET /search/jobs/{job}/messages", f"DELETE /search/jobs/{job}"]


def test_a_finished_search_gives_a_sighting_per_message_and_crowdstrikes_verdict():
    answer, calls, requests, waited = ask(SumoLogic())
    assert calls == job_calls("log-job") + job_calls("threat-job") and waited == timedelta(0)
    assert "errors" not in answer and validate_observe_data(answer["data"]) == []
    data = answer["data"]
    assert {key: value["count"] for key, value in data.items()} == {"sightings": 2, "judgements": 1, "verdicts": 1}

    firewall = data["sightings"]["docs"][0]
    assert firewall["id"] == f"transient:sighting-{uuid.uuid5(uuid.NAMESPACE_X500, FIREWALL_LOG['_messageid'])}"
    assert firewall["count"] == 12 and data["sightings"]["docs"][1]["count"] == 1  # no _messagecount: 1
    assert firewall["observed_time"] == {"start_time": "2026-11-20T08:14:31.250+00:00"}
    assert firewall["description"] == f"```\n{FIREWALL_LOG['_raw']}\n```"
    assert firewall["short_description"] == ("datacenter-collector received a log from edge-firewall-syslog - "
                                             "local use 0 (local0) containing the observable")
    # Sumo Logic's own fields (`_...`) and empty ones are left out; the others keep the vendor's order.
    assert firewall["data"] == {"columns": [{"name": name, "type": "string"} for name in
                                            ["action", "src_ip", "dest_ip", "dest_port"]],
                                "rows": [["deny", "198.51.100.23", "192.0.2.10", "443"]]}
    assert firewall["relations"] == [{"origin": "edge-firewall-syslog", "relation": "Connected_To",
                                      "source": {"type": "ip", "value": "198.51.100.23"},
                                      "related": {"type": "ip", "value": "192.0.2.10"}}]
    assert "relations" not in data["sightings"]["docs"][1]  # the proxy log names no destination address
    assert firewall["source_uri"] == ("https://service.us2.sumologic.com/ui/#/search/create?query="
                                      "_messageid+%3D+-9223372036854721544"
                                      "&startTime=1795162471250&endTime=1795162471251")

    [judgement], [verdict] = data["judgements"]["docs"], data["verdicts"]["docs"]
    assert (judgement["disposition"], judgement["disposition_name"], judgement["severity"]) == (2, "Malicious", "High")
    assert judgement["source_uri"] == "https://service.us2.sumologic.com/"
    assert [ref["external_id"] for ref in judgement["external_references"]] == ["CSIT-26114", "CSIR-26120"]
    # An IP's judgement holds 30 days from CrowdStrike's last update.
    assert judgement["valid_time"] == verdict["valid_time"] == {"start_time": "2026-11-25T06:00:00.000+00:00",
                                                                "end_time": "2026-12-25T06:00:00.000+00:00"}
    assert verdict["judgement_id"] == judgement["id"] and verdict["observable"] == IP

    log_search, threat_search = (json.loads(requests[i].body) for i in (0, 4))
    assert log_search == {"query": '"198.51.100.23" | limit 101', "from": NOW_MS - 30 * 86400_000, "to": NOW_MS}
    assert threat_search == {"query": '| limit 1 | "198.51.100.23" as observable | lookup raw from '
                                      'sumo://threat/cs on threat=observable',
                             "from": NOW_MS - 15 * 60_000, "to": NOW_MS}
    assert requests[2].query == {"offset": "0", "limit": "100"}
    assert all(r.headers["authorization"] == "Basic c3VBQkNERUY6c2VjcmV0LWtleQ==" for r in requests)


def test_a_job_is_polled_until_done():
    answer, calls, _, waited = ask(SumoLogic(log=[NOT_STARTED, GATHERING, GATHERING, DONE], threat=[GATHERING, DONE]))
    assert calls == job_calls("log-job", polls=4) + job_calls("threat-job", polls=2)
    assert waited == timedelta(seconds=(0 + 3 + 3) + 1)  # the log search's waits, then the lookup's first
    assert "errors" not in answer and answer["data"]["sightings"]["count"] == 2


def test_a_job_still_gathering_when_time_is_up_gives_its_messages_so_far_and_a_warning():
    # No request budget here: the original's own patience, 50 s after the second call, ends the polls.
    answer, calls, _, waited = ask(SumoLogic(log=[GATHERING]), budget=math.inf)
    # At 0 s, 0 s, 3 s, ... 48 s; the wait after that passes the 50 s, so no 19th call (as the original).
    assert calls == job_calls("log-job", polls=18) + job_calls("threat-job")
    assert waited == timedelta(seconds=51)
    assert answer["errors"] == [{
        "code": "search job did not finish", "type": "warning",
        "message": "The Sumo Logic search job did not finish in the time required for 198.51.100.23"}]
    assert answer["data"]["sightings"]["count"] == 2 and answer["data"]["verdicts"]["count"] == 1


def test_a_job_not_started_in_time_is_an_error_and_is_not_read():
    answer, calls, _, _ = ask(SumoLogic(log=[NOT_STARTED]), budget=math.inf)
    assert calls == ["POST /search/jobs"] + ["GET /search/jobs/log-job"] * 18
    assert answer == {"errors": [{"code": "not started", "type": "fatal",
                                  "message": "The job was not started within the required time for 198.51.100.23"}]}


@pytest.mark.parametrize("state, code", [("CANCELLED", "cancelled"), ("FORCE PAUSED", "force paused")])
def test_a_cancelled_job_is_an_error_and_stops_the_observables_after_it(state, code):
    second = {"type": "domain", "value": "example.com"}
    answer, calls, _, waited = ask(SumoLogic(log=[GATHERING, state]), observables=[IP, second])
    # The polls end at the state: no messages, no delete (as the original), nothing for example.com.
    assert calls == ["POST /search/jobs", "GET /search/jobs/log-job", "GET /search/jobs/log-job"]
    assert waited == timedelta(0)
    assert answer == {"errors": [{"code": code, "type": "fatal",
                                  "message": f"The job was {code} before results could be retrieved for 198.51.100.23"}]}


def test_the_request_budget_ends_the_polls_and_both_jobs_are_still_deleted():
    answer, calls, _, waited = ask(SumoLogic(log=[GATHERING], threat=[GATHERING]), budget=12)
    # The log search is asked at 0 s, 0 s, 3 s, 6 s and 9 s (3 s more would leave nothing of the
    # 12 s); the lookup at 9 s and 10 s, with no room for a 5 s wait. Each gives what it has.
    assert calls == job_calls("log-job", polls=5) + job_calls("threat-job", polls=2)
    assert waited == timedelta(seconds=10)
    assert [error["message"] for error in answer["errors"]] == [
        "The Sumo Logic search job did not finish in the time required for 198.51.100.23",
        "The Crowd Strike search job did not finish in the time required for 198.51.100.23"]
    assert answer["data"]["sightings"]["count"] == 2 and answer["data"]["verdicts"]["count"] == 1


@pytest.mark.parametrize("value, quoted", [
    ('x" OR "y', r'"x\" OR \"y"'),                   # a double quote cannot close the quotes
    ('C:\\Temp\\" | delete', r'"C:\\Temp\\\" | delete"'),  # nor can a backslash escape the one that guards it
])
def test_the_observable_is_quoted_in_both_queries(value, quoted):
    _, _, requests, _ = ask(SumoLogic(), observables=[{"type": "file_path", "value": value}])
    queries = [json.loads(r.body)["query"] for r in requests if r.method == "POST"]
    assert queries == [f"{quoted} | limit 101",
                       f"| limit 1 | {quoted} as observable | lookup raw from sumo://threat/cs on threat=observable"]


def test_more_messages_than_shown_is_a_warning():
    answer, _, _, _ = ask(SumoLogic(found=(101, 1)))
    assert answer["errors"] == [{
        "code": "too-many-messages-warning", "type": "warning",
        "message": "There are more messages in Sumo Logic for 198.51.100.23 than can be displayed in Threat "
                   "Response. Login to the Sumo Logic console to see all messages."}]
    assert answer["data"]["sightings"]["count"] == 2


def test_an_observable_crowdstrike_does_not_know_gets_sightings_only():
    answer, _, _, _ = ask(SumoLogic(crowdstrike=None, found=(2, 0)))
    assert list(answer["data"]) == ["sightings"]


def test_a_domain_judgement_holds_30_days_and_a_hash_forever():
    for observable, end in [({"type": "domain", "value": "example.com"}, "2026-12-25T06:00:00.000+00:00"),
                            ({"type": "sha256", "value": "a" * 64}, "2525-01-01T00:00:00.000Z")]:
        answer, _, _, _ = ask(SumoLogic(), observables=[observable])
        assert answer["data"]["judgements"]["docs"][0]["valid_time"]["end_time"] == end


def test_deliberate_runs_only_the_crowdstrike_lookup():
    answer, calls, _, _ = ask(SumoLogic(), route="deliberate")
    assert calls == job_calls("threat-job")
    [verdict] = answer["data"]["verdicts"]["docs"]
    assert (verdict["disposition"], verdict["disposition_name"]) == (2, "Malicious") and "judgement_id" not in verdict


def test_the_entities_limit_is_the_page_of_messages_asked_for():
    _, _, requests, _ = ask(SumoLogic(), CTR_ENTITIES_LIMIT=5)
    assert [r.query for r in requests if r.path.endswith("/messages")] == [{"offset": "0", "limit": "5"}] * 2


@pytest.mark.parametrize("status, code", [(401, "Unauthorized"), (429, "Too Many Requests"),
                                          (500, "Internal Server Error")])
def test_vendor_errors_become_relay_errors(status, code):
    body = (EXAMPLES / "error-401.json").read_bytes()
    answer, calls, _, _ = ask(SumoLogic(fail=Answer(status, body)))
    assert calls == ["POST /search/jobs"]
    assert answer == {"errors": [{"code": code, "type": "fatal",
                                  "message": f"Unexpected response from SumoLogic: {body.decode()}"}]}


def test_a_host_nobody_answers_on_is_a_connection_error():
    relay = RelayUnderTest({"sumo-logic": SPEC}, {"sumo-logic": f"http://127.0.0.1:{closed_port()}"})
    answer = relay.post("/sumo-logic/observe/observables", [IP],
                        {"access_id": "i", "access_key": "k", "host": HOST}).get_json()
    assert answer == {"errors": [{"code": "connection error", "type": "fatal", "message":
                                  "Unable to connect to Sumo Logic, validate the configured API endpoint: "
                                  "https://api.us2.sumologic.com/api/v1"}]}


def test_health_reads_one_health_event():
    with StandInVendor(routes_from_examples(SPEC)) as stand_in:
        relay = RelayUnderTest({"sumo-logic": SPEC}, {"sumo-logic": stand_in.origin})
        answer = relay.post("/sumo-logic/health", None, {"access_id": "i", "access_key": "k", "host": HOST})
    assert answer.get_json() == {"data": {"status": "ok"}}
    assert [(r.method, r.path, r.query) for r in stand_in.received] == [("GET", "/api/v1/healthEvents", "limit=1")]


def test_health_with_wrong_keys_is_an_error():
    answer, _, _, _ = ask(SumoLogic(fail=Answer(401, (EXAMPLES / "error-401.json").read_bytes())), route="health")
    assert answer["errors"][0]["code"] == "Unauthorized"


def test_a_token_without_the_host_is_refused_before_any_call():
    answer, calls, _, _ = ask(SumoLogic(), host=None)
    assert calls == [] and answer["errors"][0]["message"] == "Authorization failed: Wrong JWT payload structure"


def test_refer_links_the_console_search_without_calling_sumo_logic():
    answer, calls, _, _ = ask(SumoLogic(), route="refer", observables=[{"type": "domain", "value": "a b.example.com"}])
    assert calls == []
    assert answer["data"] == [{
        "id": "ref-sumo-search-domain-a b.example.com", "title": "Search for this domain",
        "description": "Search for this domain in the Sumo Logic console", "categories": ["Search", "SumoLogic"],
        "url": "https://service.us2.sumologic.com/ui/#/search/create?query=%22a+b.example.com%22"
               "&startTime=-30d&endTime=now"}]
