"""Step features beyond one GET: conditional calls, NDJSON answers, chained steps, POST bodies."""
import json

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor
from tests.support.relay import RelayUnderTest

SPEC = """
spec_version: 1
name: acme
title: Acme
version: 1.0.0
credentials:
  key: {label: API key}
observable_types: [ip, domain]
http:
  base_url: https://api.acme.test
  auth: {headers: {X-Key: "{{ credentials.key }}"}}
steps:
  resolve:
    if: "observable.type == 'domain'"
    url: "/dns/{{ observable.value }}"
    read: ndjson
  report:
    method: POST
    url: /report
    json:
      ip: "{{ observable.type == 'ip' && observable.value || resolve[0].ip }}"
      ask: [seen, "{{ observable.type }}"]
    result: body.report
observe:
  steps: [resolve, report]
  sightings:
    - count: "{{ report.count }}"
      confidence: High
      id: "transient:sighting-{{ uuid4() }}"
      observed_time: {start_time: "{{ now() }}"}
      description: "{{ report.ip }} via {{ length(resolve || `[]`) }} records"
"""


def run(tmp_path, observable):
    path = tmp_path / "acme.yaml"
    path.write_text(SPEC)
    routes = [Route("/dns/", CannedAnswer(200, b'{"ip": "192.0.2.8"}\n\n{"ip": "192.0.2.9"}\n',
                                          "application/x-ndjson"), prefix=True),
              Route("/report", CannedAnswer(200, b'{"report": {"count": 3, "ip": "192.0.2.8"}}'))]
    with StandInVendor(routes) as stand_in:
        relay = RelayUnderTest({"acme": load_spec(path)}, {"acme": stand_in.origin})
        answer = relay.post("/acme/observe/observables", [observable], {"key": "k"}).get_json()
    return answer, stand_in.received


def test_a_conditional_step_runs_only_when_its_condition_holds(tmp_path):
    answer, received = run(tmp_path, {"type": "ip", "value": "192.0.2.8"})
    assert [r.path for r in received] == ["/report"]
    assert json.loads(received[0].body) == {"ip": "192.0.2.8", "ask": ["seen", "ip"]}
    assert answer["data"]["sightings"]["docs"][0]["description"] == "192.0.2.8 via 0 records"


def test_ndjson_records_feed_the_next_step(tmp_path):
    answer, received = run(tmp_path, {"type": "domain", "value": "example.test"})
    assert [r.path for r in received] == ["/dns/example.test", "/report"]
    assert json.loads(received[1].body)["ip"] == "192.0.2.8"
    assert received[1].headers["X-Key"] == "k"
    sighting = answer["data"]["sightings"]["docs"][0]
    assert sighting["count"] == 3 and sighting["description"] == "192.0.2.8 via 2 records"
