"""Dashboard tiles: /tiles, /tiles/tile and /tiles/tile-data from a spec's `tiles:` section.

The vendor is a stand-in on loopback that answers an aggregation request by what it was asked
(so a test sees that each tile asks for its own aggregation over its period); the relay's clock
is frozen, so the period's window is exact.
"""
from __future__ import annotations

import json

import pytest

from engine import load_spec
from engine.commands.lint import lint_paths
from tests.support.misbehaving import MisbehavingVendor, json_answer
from tests.support.relay import RelayUnderTest

SPEC = """
spec_version: 1
name: acme-siem
title: Acme SIEM
version: 1.0.0
credentials:
  key: {label: API key}
observable_types: [ip]
ctim_schema_version: 1.1.6
http:
  base_url: https://siem.acme.test/api
  auth: {headers: {X-Key: "{{ credentials.key }}"}}
  errors:
    - when: {status: 401}
      error: {code: authorization error, message: "Authorization failed: {{ body.message }}"}
steps:
  aggregate:
    method: POST
    url: /aggregate
    json: {from: "{{ period.start_time }}", to: "{{ period.end_time }}", by: "{{ field }}"}
    result: body.buckets
  alerts:
    url: /alerts
    query: {since: "{{ period.start_time }}"}
    result: body.count
  lookup:
    url: /lookup
    query: {ip: "{{ observable.value }}"}
observe:
  steps: [lookup]
  sightings:
    - id: "transient:sighting-1"
      confidence: High
      count: 1
      observed_time: {start_time: "2026-01-01T00:00:00Z"}
      description: "{{ lookup.note || 'seen' }}"
tiles:
  periods: {last_24_hours: P1D, last_7_days: P7D}
  unknown_tile: {code: invalid argument, message: Invalid chart id}
  tile_data:
    observed_time: {start_time: "{{ period.start_time }}", end_time: "{{ period.end_time }}"}
    valid_time: {start_time: "{{ period.start_time }}", end_time: "{{ period.end_time }}"}
    cache_scope: none
  list:
    - id: categories
      type: donut_graph
      title: Categories
      short_description: Events by category
      description: How the period's events spread over categories
      tags: [categories]
      periods: [last_24_hours, last_7_days]
      default_period: last_7_days
      let: {field: category}
      steps: [aggregate]
      tile_data:
        labels: ["{{ aggregate[].key }}"]
        data:
          - for each: bucket in aggregate
            key: "{{ index_of(aggregate[].key, bucket.key) }}"
            value: "{{ bucket.count }}"
    - id: alert_count
      type: metric_group
      title: Alerts
      periods: [last_24_hours]
      steps: [alerts]
      tile_data:
        data:
          - {icon: warning, label: Alerts, value: "{{ alerts }}", value_unit: integer}
"""


def vendor(request):
    if request.headers.get("x-key") != "k":
        return json_answer({"message": "bad key"}, 401)
    if request.path == "/api/alerts":
        return json_answer({"count": 42})
    asked = json.loads(request.body)
    return json_answer({"buckets": [{"key": f"{asked['by']}-a", "count": 5}, {"key": f"{asked['by']}-b", "count": 2}]})


@pytest.fixture
def relay(tmp_path):
    path = tmp_path / "acme-siem.yaml"
    path.write_text(SPEC)
    with MisbehavingVendor(vendor) as stand_in:
        under_test = RelayUnderTest({"acme-siem": load_spec(path)}, {"acme-siem": stand_in.origin})
        under_test.vendor = stand_in
        yield under_test


def post(relay, route, body=None, key="k"):
    claims = {"key": key} if key is not None else None
    return relay.post(f"/acme-siem/tiles{route}", body, claims).get_json()


CATEGORIES = {"id": "categories", "type": "donut_graph", "title": "Categories",
              "description": "How the period's events spread over categories",
              "short_description": "Events by category", "tags": ["categories"],
              "periods": ["last_24_hours", "last_7_days"], "default_period": "last_7_days"}


def test_tiles_lists_the_definitions_in_order_and_tile_gives_one(relay):
    assert post(relay, "") == {"data": [CATEGORIES, {"id": "alert_count", "type": "metric_group", "title": "Alerts",
                                                     "periods": ["last_24_hours"]}]}
    assert post(relay, "/tile", {"tile_id": "categories"}) == {"data": CATEGORIES}
    assert relay.vendor.requests == []  # definitions call no vendor


def test_tile_data_is_made_from_the_tiles_own_aggregation_over_the_period(relay):
    answer = post(relay, "/tile-data", {"tile_id": "categories", "period": "last_7_days"})
    window = {"start_time": "2026-11-21T12:00:00.000000Z", "end_time": "2026-11-28T12:00:00.000000Z"}
    assert answer == {"data": {"observed_time": window, "valid_time": window, "cache_scope": "none",
                               "labels": [["category-a", "category-b"]],
                               "data": [{"key": 0, "value": 5}, {"key": 1, "value": 2}]}}
    sent = relay.vendor.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/api/aggregate")
    assert json.loads(sent.body) == {"from": window["start_time"], "to": window["end_time"], "by": "category"}


def test_each_tile_runs_its_own_steps(relay):
    answer = post(relay, "/tile-data", {"tile_id": "alert_count", "period": "last_24_hours"})
    assert answer["data"]["data"] == [{"icon": "warning", "label": "Alerts", "value": 42, "value_unit": "integer"}]
    assert [r.path for r in relay.vendor.requests] == ["/api/alerts"]
    assert relay.vendor.requests[0].param("since") == "2026-11-27T12:00:00.000000Z"


@pytest.mark.parametrize("route, body, details", [
    ("/tile", {"tile-id": "categories"}, "{'tile_id': ['Missing data for required field.'], 'tile-id': ['Unknown field.']}"),
    ("/tile", {"tile_id": ""}, "{'tile_id': ['Field may not be blank.']}"),
    ("/tile", {"tile_id": 7}, "{'tile_id': ['Not a valid string.']}"),
    ("/tile", [], "{'_schema': ['Invalid input type.']}"),
    ("/tile-data", {"tile_id": "categories", "period": "last_year"},
     "{'period': ['Must be one of: last_24_hours, last_7_days.']}"),
    ("/tile-data", {"tile_id": "categories", "not_period": "x"},
     "{'period': ['Missing data for required field.'], 'not_period': ['Unknown field.']}"),
    ("/tile-data", {"tile_id": "", "period": ""},
     "{'period': ['Must be one of: last_24_hours, last_7_days.'], 'tile_id': ['Field may not be blank.']}"),
])
def test_a_malformed_tile_request_is_invalid_input(relay, route, body, details):
    answer = post(relay, route, body)
    assert answer == {"errors": [{"code": "invalid argument", "type": "fatal",
                                  "message": f"Invalid JSON payload received. {json.dumps(eval(details))}"}]}
    assert relay.vendor.requests == []


def test_an_unknown_tile_or_a_period_it_lacks_is_an_error(relay):
    unknown = {"errors": [{"code": "invalid argument", "message": "Invalid chart id", "type": "fatal"}]}
    assert post(relay, "/tile", {"tile_id": "nope"}) == unknown
    assert post(relay, "/tile-data", {"tile_id": "nope", "period": "last_7_days"}) == unknown
    lacking = post(relay, "/tile-data", {"tile_id": "alert_count", "period": "last_7_days"})
    assert lacking == {"errors": [{"code": "invalid argument", "type": "fatal",
                                   "message": "The tile alert_count has no data for last_7_days; it has: "
                                              "last_24_hours."}]}
    assert relay.vendor.requests == []


def test_tiles_read_the_token_and_a_vendor_error_is_the_relays(relay):
    assert post(relay, "", key=None)["errors"][0]["code"] == "authorization error"
    refused = post(relay, "/tile-data", {"tile_id": "alert_count", "period": "last_24_hours"}, key="wrong")
    assert refused == {"errors": [{"code": "authorization error", "message": "Authorization failed: bad key",
                                   "type": "fatal"}]}


def test_a_spec_without_tiles_has_no_tile_routes(tmp_path):
    path = tmp_path / "acme-siem.yaml"
    without = SPEC.split("tiles:\n  periods")[0]
    without = without[:without.index("  aggregate:")] + without[without.index("  lookup:"):]
    path.write_text(without)
    relay = RelayUnderTest({"acme-siem": load_spec(path)})
    assert relay.post("/acme-siem/tiles", None, {"key": "k"}).status_code == 404


def test_module_type_declares_the_tiles_capability(tmp_path):
    from engine.commands.module_type import capabilities, supported_apis
    path = tmp_path / "acme-siem.yaml"
    path.write_text(SPEC)
    spec = load_spec(path)
    assert supported_apis(spec)[-3:] == ["tiles", "tiles/tile", "tiles/tile-data"]
    assert [c["id"] for c in capabilities(spec)] == ["observe", "tiles"]


def test_relay_try_shows_a_tiles_data(tmp_path, capsys):
    from engine.commands.cli import main
    (tmp_path / "acme-siem.yaml").write_text(SPEC + """
examples:
  observable: {type: ip, value: 192.0.2.1}
  answers:
    aggregate: {file: aggregate.json}
    alerts: {file: alerts.json}
    lookup: {file: lookup.json}
""")
    (tmp_path / "aggregate.json").write_text('{"buckets": [{"key": "dns", "count": 3}]}')
    (tmp_path / "alerts.json").write_text('{"count": 1}')
    (tmp_path / "lookup.json").write_text('{}')
    assert main(["try", "acme-siem", "--endpoint", "tile-data", "--replay", "examples", "--vendors", str(tmp_path),
                 "--claim", "key=k", "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["answer"]["data"]["labels"] == [["dns"]] and trace["steps"][0]["step"] == "aggregate"
    assert main(["try", "acme-siem", "--endpoint", "tile-data", "--tile", "alert_count", "--period", "last_7_days",
                 "--replay", "examples", "--vendors", str(tmp_path), "--claim", "key=k"]) == 2
    assert "the tile alert_count has no period 'last_7_days'" in capsys.readouterr().err
    assert [p.format() for p in lint_paths([tmp_path / "acme-siem.yaml"]).problems] == []


@pytest.mark.parametrize("change, message", [
    (("      periods: [last_24_hours]\n", "      periods: [last_hour]\n"), "no period 'last_hour' in tiles.periods"),
    (("    - id: alert_count", "    - id: categories"), "two tiles have the id 'categories'"),
    (("      type: metric_group", "      type: pie"), "'pie' is not a tile type XDR is known to draw"),
    (("      steps: [alerts]", "      steps: [lookup]"), "step 'lookup' reads the observable, and a tile has none"),
    (("      default_period: last_7_days", "      default_period: last_hour"), "is not one of the tile's periods"),
    (('value: "{{ alerts }}"', 'value: "{{ observable.value }}"'), "unknown name 'observable'"),
])
def test_lint_checks_tiles(tmp_path, change, message):
    path = tmp_path / "acme-siem.yaml"
    path.write_text(SPEC.replace(*change))
    report = lint_paths([path])
    assert any(message in problem.message for problem in report.problems), [p.format() for p in report.problems]
