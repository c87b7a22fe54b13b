"""Exabeam Data Lake end to end: the spec, the real app, a stand-in Data Lake on loopback.

The stand-in answers with vendors/examples/exabeam (written from Data Lake's search API and
Elasticsearch's aggregation answers): a search that finds two logs mentioning example.com (a proxy
log from 192.0.2.10 and a DNS answer to 192.0.2.44), and one aggregation answer that holds every
tile's aggregation. The relay's clock is frozen at 2026-11-28T12:00:00Z, so the daily indices a
request names are exact.
"""
import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from engine import load_spec
from engine.commands.standin import CannedAnswer, Route, StandInVendor, routes_from_examples
from engine.ctim import validate_observe_data
from tests.support.relay import NOW, RelayUnderTest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "vendors" / "examples" / "exabeam"
DOMAIN = {"type": "domain", "value": "example.com"}
CLAIMS = {"key": "exa-token", "host": "datalake.example.com"}
SEARCH, VISUALIZE, CHECK = "/dl/api/es/search", "/dl/api/es/visualize", "/api/auth/check"
DISCOVER = "https://datalake.example.com/data/app/dataui#/discover"
NOT_AUDIT = "%20AND%20NOT%20(event_subtype:%22Exabeam%20Audit%20Event%22)"


@pytest.fixture(scope="module")
def exabeam():
    return load_spec(ROOT / "vendors" / "exabeam.yaml")


def answer(document, status=200) -> CannedAnswer:
    return CannedAnswer(status, json.dumps(document).encode())


def call(exabeam, path, body=None, routes=(), **claims):
    """The relay's answer and the calls the stand-in received (hand-written routes win)."""
    with StandInVendor(list(routes) + routes_from_examples(exabeam)) as stand_in:
        relay = RelayUnderTest({"exabeam": exabeam}, {"exabeam": stand_in.origin})
        reply = relay.post(f"/exabeam/{path}", body, {**CLAIMS, **claims}).get_json()
    return reply, stand_in.received


def indices(days):
    """The daily indices of the `days` days before the frozen today, yesterday first."""
    return [f"exabeam-{NOW - timedelta(days=n):%Y.%m.%d}" for n in range(1, days + 1)]


def link(lucene, window="now-30d"):
    return (f"{DISCOVER}?_g=(time:(from:{window}))&_a=(interval:(text:Auto,val:auto),query:(query_string:"
            f"(default_field:message,query:'{lucene}')),queryString:'{lucene}',searchExecuted:!t,"
            f"sort:!(indexTime,desc),uiState:(vis:(colors:(Count:%23139df2))))")


# ---------------------------------------------------------------------------------------- observe


def test_observe_makes_a_sighting_per_log(exabeam):
    reply, received = call(exabeam, "observe/observables", [DOMAIN])
    assert "errors" not in reply
    assert validate_observe_data(reply["data"]) == []
    first, second = reply["data"]["sightings"]["docs"]
    hit = json.loads((EXAMPLES / "search.json").read_text())["responses"][0]["hits"]["hits"][0]
    log = hit["_source"]
    assert first["id"] == "transient:sighting-" + str(uuid.uuid5(
        uuid.NAMESPACE_X500, f"Exabeam|example.com|2026-11-27T16:20:39.000Z|{log['message']}"))
    assert (first["source"], first["confidence"], first["count"], first["internal"]) == ("Exabeam", "High", 1, True)
    assert first["title"] == "Log message received by Exabeam in last 30 days contains observable"
    assert first["description"] == f"```\n{log['message']}\n```"
    assert first["short_description"] == "Exabeam received a log from collector-01.example.net containing the observable"
    assert first["external_ids"] == ["lms.kafka.topic_3_18230_4f1c2a9be7d0"]
    assert first["observables"] == [DOMAIN]
    assert first["observed_time"] == {"start_time": "2026-11-27T16:20:39.000Z"}
    assert first["source_uri"] == link("_id:%22lms.kafka.topic_3_18230_4f1c2a9be7d0%22")
    # The log's own fields that hold something: not Exabeam's, the message, vendor or product,
    # nor the false flags and the zero byte count.
    assert dict(zip([c["name"] for c in first["data"]["columns"]], first["data"]["rows"][0])) == {
        "forwarder": "collector-01.example.net", "indexTime": "2026-11-27T16:20:41.733Z",
        "data_type": "web-activity", "src_ip": "192.0.2.10", "dest_ip": "198.51.100.23", "domain": "example.com",
        "url": "https://example.com/downloads/setup.exe", "user": "jdoe", "action": "allowed"}
    assert {c["type"] for c in first["data"]["columns"]} == {"string"}
    assert second["short_description"] == "Exabeam received a log from collector-02.example.net containing the observable"
    assert [(r.method, r.path) for r in received] == [("POST", SEARCH)]


def test_the_search_covers_the_30_daily_indices_before_today(exabeam):
    _, received = call(exabeam, "observe/observables", [DOMAIN])
    sent = received[0]
    assert sent.headers["ExaAuthToken"] == "exa-token"
    assert json.loads(sent.body) == {
        "clusterWithIndices": [{"clusterName": "local", "indices": indices(30)}],
        "size": 101,
        "sortBy": [{"field": "indexTime", "order": "desc"}],
        "query": '"example.com" AND NOT (event_subtype:"Exabeam Audit Event")'}
    assert json.loads(sent.body)["clusterWithIndices"][0]["indices"][::29] == ["exabeam-2026.11.27", "exabeam-2026.10.29"]


def test_a_quote_or_backslash_in_the_value_cannot_end_the_phrase(exabeam):
    hostile = {"type": "user", "value": 'x" OR *:* OR "y\\'}
    _, received = call(exabeam, "observe/observables", [hostile])
    assert json.loads(received[0].body)["query"] == \
        '"x\\" OR *:* OR \\"y\\\\" AND NOT (event_subtype:"Exabeam Audit Event")'


def test_sightings_stop_at_the_entities_limit(exabeam):
    reply, _ = call(exabeam, "observe/observables", [DOMAIN], CTR_ENTITIES_LIMIT=1)
    assert reply["data"]["sightings"]["count"] == 1
    assert reply["data"]["sightings"]["docs"][0]["external_ids"] == ["lms.kafka.topic_3_18230_4f1c2a9be7d0"]


def test_more_logs_than_can_be_shown_is_a_warning_beside_the_sightings(exabeam):
    hit = json.loads((EXAMPLES / "search.json").read_text())["responses"][0]["hits"]["hits"][0]
    many = [{**hit, "_id": f"lms.kafka.topic_3_{n}", "_source": {**hit["_source"], "message": f"log {n}"}}
            for n in range(101)]
    found = Route(SEARCH, answer({"responses": [{"hits": {"total": 5000, "hits": many}}]}), method="POST")
    reply, _ = call(exabeam, "observe/observables", [DOMAIN], [found])
    assert reply["data"]["sightings"]["count"] == 100
    assert reply["errors"] == [{
        "code": "too-many-messages-warning", "type": "warning",
        "message": "There are more messages in Exabeam for example.com than can be displayed in Threat Response. "
                   "Login to the Exabeam console to see all messages."}]


def test_nothing_found_is_no_data(exabeam):
    empty = Route(SEARCH, answer({"responses": [{"hits": {"total": 0, "hits": []}}]}), method="POST")
    reply, _ = call(exabeam, "observe/observables", [DOMAIN], [empty])
    assert reply == {"data": {}}


# ------------------------------------------------------------------------------------------- refer


def test_refer_links_to_the_same_search_in_data_lake(exabeam):
    reply, received = call(exabeam, "refer/observables", [{"type": "ip", "value": "192.0.2.10"}])
    assert reply == {"data": [{
        "id": "ref-exabeam-search-ip-192.0.2.10", "title": "Search for this IP",
        "description": "Search for this IP in Exabeam Data Lake", "categories": ["Search", "Exabeam"],
        "url": link(f"%22192.0.2.10%22{NOT_AUDIT}")}]}
    assert received == []


def test_a_hostile_value_stays_one_phrase_in_the_refer_link(exabeam):
    reply, _ = call(exabeam, "refer/observables", [{"type": "file_name", "value": "a\"b'c!&d#.exe"}])
    reference = reply["data"][0]
    assert reference["title"] == "Search for this file name"
    # Lucene's \" , then Rison's !' and !! , then percent-encoding.
    assert reference["url"] == link(f"%22a%5C%22b%21%27c%21%21%26d%23.exe%22{NOT_AUDIT}")


# ------------------------------------------------------------------------------------------ health


def test_health_checks_the_token(exabeam):
    reply, received = call(exabeam, "health")
    assert reply == {"data": {"status": "ok"}}
    assert [(r.method, r.path, r.headers["ExaAuthToken"]) for r in received] == [("GET", CHECK, "exa-token")]


def test_a_token_without_the_host_is_refused_before_any_call(exabeam):
    with StandInVendor(routes_from_examples(exabeam)) as stand_in:
        relay = RelayUnderTest({"exabeam": exabeam}, {"exabeam": stand_in.origin})
        reply = relay.post("/exabeam/health", None, {"key": "exa-token"}).get_json()
    assert reply == {"errors": [{"code": "authorization error", "type": "fatal",
                                 "message": "Authorization failed: Wrong JWT payload structure"}]}
    assert stand_in.received == []


# ----------------------------------------------------------------------------------- vendor errors


@pytest.mark.parametrize("status, text, expected", [
    (530, "origin unreachable", {"code": "connection error", "message": "Unexpected response from Exabeam: Invalid host"}),
    (522, "timed out", {"code": "connection error", "message": "Unexpected response from Exabeam: Exabeam is down"}),
    (401, "Invalid token", {"code": "Unauthorized", "message": "Unexpected response from Exabeam: Invalid token"}),
    (500, "es query failed", {"code": "Internal Server Error",
                              "message": "Unexpected response from Exabeam: es query failed"}),
])
def test_vendor_errors_become_relay_errors(exabeam, status, text, expected):
    failing = Route(SEARCH, CannedAnswer(status, text.encode(), "text/plain"), method="POST")
    reply, _ = call(exabeam, "observe/observables", [DOMAIN], [failing])
    assert reply == {"errors": [{**expected, "type": "fatal"}]}


def test_a_host_that_does_not_answer_is_a_connection_error(exabeam):
    relay = RelayUnderTest({"exabeam": exabeam}, {"exabeam": "http://127.0.0.1:9"})
    reply = relay.post("/exabeam/health", None, CLAIMS).get_json()
    assert reply == {"errors": [{"code": "connection error", "type": "fatal", "message":
                                 "Unable to connect to Exabeam, validate the configured API endpoint: "
                                 "https://datalake.example.com"}]}


# -------------------------------------------------------------------------------------------- tiles

TILES = ["affected_ips", "activity_types", "categories", "activity_types_per_day", "categories_per_day"]


def test_tiles_lists_five_tiles_and_tile_gives_one_without_calling_data_lake(exabeam):
    listed, received = call(exabeam, "tiles")
    assert [tile["id"] for tile in listed["data"]] == TILES
    assert {tile["id"]: (tile["type"], tile["periods"]) for tile in listed["data"]} == {
        "affected_ips": ("metric_group", ["last_30_days"]),
        "activity_types": ("donut_graph", ["last_30_days"]),
        "categories": ("donut_graph", ["last_30_days"]),
        "activity_types_per_day": ("horizontal_bar_chart", ["last_7_days"]),
        "categories_per_day": ("horizontal_bar_chart", ["last_7_days"])}
    one, _ = call(exabeam, "tiles/tile", {"tile_id": "affected_ips"})
    assert one == {"data": {"id": "affected_ips", "type": "metric_group", "title": "Affected IPs",
                            "short_description": "Affected IPs found in Exabeam Data Lake",
                            "description": "Affected IPs chart shows how many IPs are ransomware, threat or tor",
                            "tags": ["affected_ips"], "periods": ["last_30_days"]}}
    assert received == []


def tile_data(exabeam, tile_id, period):
    reply, received = call(exabeam, "tiles/tile-data", {"tile_id": tile_id, "period": period})
    assert "errors" not in reply
    [sent] = received
    assert (sent.method, sent.path, sent.headers["ExaAuthToken"]) == ("POST", VISUALIZE, "exa-token")
    return reply["data"], json.loads(sent.body)


def test_affected_ips_counts_the_logs_flagged_true(exabeam):
    data, sent = tile_data(exabeam, "affected_ips", "last_30_days")
    # The aggregations go as JSON text, over the 30 daily indices of the period.
    assert isinstance(sent["aggs"], str)
    assert json.loads(sent["aggs"]) == {name: {"terms": {"field": name}} for name in
                                        ["is_ransomware_src_ip", "is_threat_src_ip", "is_tor_src_ip"]}
    assert sent["query"] == {"clusterWithIndices": [{"clusterName": "local", "indices": indices(30)}],
                             "query": '* AND NOT (event_subtype:"Exabeam Audit Event")'}
    assert sent["size"] == 0
    window = {"start_time": "2026-10-29T12:00:00.000", "end_time": "2026-11-28T12:00:00.000"}
    assert (data["observed_time"], data["valid_time"], data["cache_scope"]) == (window, window, "none")
    assert [(m["label"], m["value"], m["icon"], m["value_unit"]) for m in data["data"]] == [
        ("Ransomware IPs", 2, "warning", "integer"), ("Threat IPs", 7, "warning", "integer"),
        ("Tor IPs", 0, "warning", "integer")]  # no bucket for true: none
    assert data["data"][0]["link_uri"] == link(f'is_ransomware_src_ip:"true"{NOT_AUDIT}')


def test_categories_is_a_donut_of_the_terms(exabeam):
    data, sent = tile_data(exabeam, "categories", "last_30_days")
    assert sent["aggs"] == '{"exa_category.keyword": {"terms": {"field": "exa_category.keyword"}}}'
    assert data["labels"] == [["Web", "Network", "Authentication"]]
    assert [(d["key"], d["value"]) for d in data["data"]] == [(0, 1204), (1, 512), (2, 126)]
    assert data["data"][1]["link_uri"] == link(f'exa_category:"Network"{NOT_AUDIT}')


def test_activity_types_is_a_donut_too(exabeam):
    data, sent = tile_data(exabeam, "activity_types", "last_30_days")
    assert json.loads(sent["aggs"]) == {"exa_activity_type.keyword": {"terms": {"field": "exa_activity_type.keyword"}}}
    assert data["labels"] == [["web", "dns", "authentication"]]
    assert data["data"][2] == {"key": 2, "value": 126,
                               "link_uri": link(f'exa_activity_type:"authentication"{NOT_AUDIT}')}


def test_categories_per_day_is_a_bar_per_day_over_the_last_7_indices(exabeam):
    data, sent = tile_data(exabeam, "categories_per_day", "last_7_days")
    assert json.loads(sent["aggs"]) == {"categories_per_day": {
        "date_histogram": {"field": "@timestamp", "interval": "1d", "time_zone": "UTC"},
        "aggs": {"exa_category.keyword": {"terms": {"field": "exa_category.keyword"}}}}}
    assert sent["query"]["clusterWithIndices"][0]["indices"] == indices(7)
    assert data["observed_time"] == {"start_time": "2026-11-21T12:00:00.000", "end_time": "2026-11-28T12:00:00.000"}
    assert (data["key_type"], data["keys"]) == ("timestamp", ["Web", "Network", "Authentication"])
    first, second = data["data"]
    assert (first["key"], first["label"], first["value"]) == (1795651200000, "Nov/26", 263)
    assert first["values"][0] == {"key": "Web", "value": 170,
                                  "link_uri": link(f'exa_category:"Web"{NOT_AUDIT}', "now-1d")}
    assert [(v["key"], v["value"]) for v in second["values"]] == [("Web", 188), ("Network", 93)]
    assert (second["label"], second["value"]) == ("Nov/27", 281)


def test_activity_types_per_day_reads_its_own_histogram(exabeam):
    data, sent = tile_data(exabeam, "activity_types_per_day", "last_7_days")
    assert list(json.loads(sent["aggs"])) == ["activity_types_per_day"]
    assert [(d["label"], d["value"], [v["key"] for v in d["values"]]) for d in data["data"]] == [
        ("Nov/26", 263, ["web", "dns", "authentication"]), ("Nov/27", 281, ["web", "dns"])]


def test_a_term_with_quotes_stays_one_phrase_in_a_tiles_link(exabeam):
    odd = {"aggregations": {"exa_category.keyword": {"buckets": [{"key": 'Print "Jobs"', "doc_count": 3}]}}}
    reply, _ = call(exabeam, "tiles/tile-data", {"tile_id": "categories", "period": "last_30_days"},
                    [Route(VISUALIZE, answer(odd), method="POST")])
    assert reply["data"]["labels"] == [['Print "Jobs"']]
    assert reply["data"]["data"][0]["link_uri"] == link(f'exa_category:"Print %5C%22Jobs%5C%22"{NOT_AUDIT}')


def test_a_vendor_error_on_a_tile_is_the_relays(exabeam):
    failing = Route(VISUALIZE, CannedAnswer(530, b"", "text/plain"), method="POST")
    reply, _ = call(exabeam, "tiles/tile-data", {"tile_id": "categories", "period": "last_30_days"}, [failing])
    assert reply == {"errors": [{"code": "connection error", "type": "fatal",
                                 "message": "Unexpected response from Exabeam: Invalid host"}]}


def test_an_unknown_tile_is_an_invalid_chart_id(exabeam):
    unknown = {"errors": [{"code": "invalid argument", "message": "Invalid chart id", "type": "fatal"}]}
    for route, body in [("tiles/tile", {"tile_id": "top_users"}),
                        ("tiles/tile-data", {"tile_id": "top_users", "period": "last_7_days"})]:
        reply, received = call(exabeam, route, body)
        assert reply == unknown and received == []


def test_a_period_the_tile_lacks_is_an_invalid_argument(exabeam):
    reply, received = call(exabeam, "tiles/tile-data", {"tile_id": "categories", "period": "last_7_days"})
    assert reply == {"errors": [{"code": "invalid argument", "type": "fatal", "message":
                                 "The tile categories has no data for last_7_days; it has: last_30_days."}]}
    assert received == []


@pytest.mark.parametrize("route, body, message", [
    ("tiles/tile", {"tile-id": "categories"},
     "{'tile_id': ['Missing data for required field.'], 'tile-id': ['Unknown field.']}"),
    ("tiles/tile", {"tile_id": ""}, "{'tile_id': ['Field may not be blank.']}"),
    ("tiles/tile-data", {"tile_id": "categories", "period": "last_year"},
     "{'period': ['Must be one of: last_24_hours, last_7_days, last_30_days.']}"),
    ("tiles/tile-data", {"tile_id": "categories"}, "{'period': ['Missing data for required field.']}"),
])
def test_a_malformed_tile_request_is_answered_in_the_validators_words(exabeam, route, body, message):
    reply, received = call(exabeam, route, body)
    assert reply == {"errors": [{"code": "invalid argument", "type": "fatal", "message": message}]}
    assert received == []
